// normkit/statistics/common.hpp - shared pieces of the statistics.
//
// A statistic reduces one block of a slice in two layers:
//  * `reduce<SkipNan, Fold, V>(load, steps)` runs over `steps` lane values
//    in the element type (load(j) gives the j-th; a statistic that reads the
//    block twice reads it the second time, from cache, with load.again(j))
//    and returns one partial per lane (a std::array of V, field 0 being the
//    count of values taken). With Fold the lanes hold parts of one slice: the
//    kernel combines them (and shares shifts/maxima across them) so every
//    lane holds the block's partial, and one lane is merged; without Fold
//    each lane is its own slice;
//  * `Total<A>::add(lane)` merges one lane's partial into the slice's running
//    total, kept in a wide type A (double, or long double in the rescue pass).
// Blocks are short, so the element-type part never accumulates enough to lose
// accuracy, and the wide totals make 10^6-element slices sum accurately.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>

#include "../detail/lanes.hpp"

namespace normkit::stats {

using Index = std::ptrdiff_t;

// The value a statistic accumulates for x: itself, or under SkipNan the
// neutral value when x is NaN (and then it is not counted).
template <bool SkipNan, class V>
V screen(const V& x, const V& neutral, V& count) {
  if constexpr (SkipNan) {
    const auto nan = detail::is_nan(x);
    count = count + detail::lane_select(nan, V(0), V(1));
    return detail::lane_select(nan, neutral, x);
  } else {
    (void)neutral;
    (void)count;
    return x;
  }
}

// Without SkipNan, records in `seen` (as 1) that a NaN was taken.
template <bool SkipNan, class V>
void note_nan(const V& x, V& seen) {
  if constexpr (!SkipNan) seen = detail::lane_select(detail::is_nan(x), V(1), seen);
}

// Independent accumulators per running quantity. One register would make
// every step wait for the previous add (3-4 cycles) and leave the SIMD units
// mostly idle; `ways` of them taken in turn keep the adders busy, and the
// statistic combines them once per block. The blocks get as many times
// longer, so fewer block totals are merged in the wide type (on strided
// chunks that merge, one per lane, costs more than the reduction itself).
// Scalar lanes, which run tails and the rare long double pass, take one.
template <class V>
inline constexpr int ways = detail::is_scalar_lane<V> ? 1 : 4;

template <class V>
using Ways = std::array<V, ways<V>>;

template <class V>
Ways<V> ways_of(const V& v) {
  Ways<V> w;
  w.fill(v);
  return w;
}

// Calls step(j, k) for j in [0, steps), k naming the accumulator of step j:
// on a batch the accumulators take turns, step by step, so their chains run
// in parallel; a Wide lane's batches already run in parallel, so each
// accumulator takes a quarter of the steps in a row, and only one set of
// them is live at a time (fewer registers spilled).
// Everything must inline for the accumulators to stay in registers, which
// compilers' size heuristics would not always do for several calls of step.
template <class V, class Step>
[[gnu::always_inline, gnu::flatten]] inline void for_steps(Index steps, const Step& step) {
  Index j = 0;
  if constexpr (detail::is_wide<V>) {
    const Index quarter = (steps + 3) / 4;
    const auto run = [&](int k) {
      for (const Index end = std::min(steps, (k + 1) * quarter); j < end; ++j) step(j, k);
    };
    run(0);
    run(1);
    run(2);
    run(3);
  } else if constexpr (ways<V> == 4) {
    for (; j + 4 <= steps; j += 4) {
      step(j, 0);
      step(j + 1, 1);
      step(j + 2, 2);
      step(j + 3, 3);
    }
  }
  for (; j < steps; ++j) step(j, 0);
}

// How accumulators, and the lanes of one slice, combine.
struct Sum {
  template <class V>
  V operator()(const V& a, const V& b) const { return a + b; }
};
struct Max {
  template <class V>
  V operator()(const V& a, const V& b) const { return detail::vmax(a, b); }
};
struct Min {
  template <class V>
  V operator()(const V& a, const V& b) const { return detail::vmin(a, b); }
};

// The accumulators combined by Op; with Fold (the lanes are one slice) also
// across the lanes, so every lane holds the result.
template <bool Fold, class Op, class V>
V fold(const Ways<V>& acc) {
  const Op op;
  V v = acc[0];
  for (std::size_t k = 1; k < acc.size(); ++k) v = op(v, acc[k]);
  if constexpr (Fold)
    return detail::across(v, op);
  else
    return v;
}

// The count of values taken: counted per element under SkipNan, else every
// step of every folded lane.
template <bool SkipNan, bool Fold, class V>
V count_of(const Ways<V>& counted, Index steps) {
  if constexpr (SkipNan) {
    return fold<Fold, Sum>(counted);
  } else {
    const Index lanes = Fold ? Index(detail::width_of<V>) : 1;
    return V(static_cast<detail::scalar_of<V>>(steps * lanes));
  }
}

// Whether a block load asks for every field exactly (Load::exact): the
// engine's second pass over a slice that a statistic's needs_exact flagged.
template <class Load, class = void>
struct wants_exact : std::false_type {};
template <class Load>
struct wants_exact<Load, std::enable_if_t<Load::exact>> : std::true_type {};

// Below this a square in T has lost bits to gradual underflow.
template <class T, class A>
constexpr A tiny_square() {
  return A(std::numeric_limits<T>::min()) / A(std::numeric_limits<T>::epsilon());
}

// Neumaier-compensated running sum of block partials.
template <class A>
struct CompensatedSum {
  A sum = 0;
  A carry = 0;

  void add(A x) {
    // 0 + x is exact: the first block of a slice (the only one of a short
    // slice) skips the compensation (rows of 64 floats: sum-to-one 1.1x).
    if (sum == A(0)) {
      sum = x;
      return;
    }
    const A t = sum + x;
    // Which operand lost bits depends on which is larger; an infinite sum has
    // nothing to compensate (and inf - inf would poison the carry).
    if (std::isfinite(t)) carry += (sum >= x || sum <= -x) ? (sum - t) + x : (x - t) + sum;
    sum = t;
  }
  A value() const { return sum + carry; }
};

}  // namespace normkit::stats
