// normkit/statistics/common.hpp - shared pieces of the statistics.
//
// A statistic reduces one block of a slice in two layers:
//  * `reduce<SkipNan, Fold, V>(load, steps)` runs over `steps` lane values
//    (load(j) gives the j-th) in the element type and returns one partial per
//    lane (a std::array of V, field 0 being the count of values taken). With
//    Fold the lanes hold parts of one slice: the kernel combines them (and
//    shares shifts/maxima across them) so every lane holds the block's
//    partial, and one lane is merged; without Fold each lane is its own slice;
//  * `Total<A>::add(lane)` merges one lane's partial into the slice's running
//    total, kept in a wide type A (double, or long double in the rescue pass).
// Blocks are short, so the element-type part never accumulates enough to lose
// accuracy, and the wide totals make 10^6-element slices sum accurately.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <limits>

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

// Without SkipNan every value counts, so the count needs no per-element work.
template <bool SkipNan, class V>
void finish_count(V& count, Index steps) {
  if constexpr (!SkipNan) count = V(static_cast<detail::scalar_of<V>>(steps));
}

// Lane combination when the lanes are one slice (Fold), identity otherwise.
template <bool Fold, class V>
V fold_sum(const V& v) {
  if constexpr (Fold)
    return detail::across_sum(v);
  else
    return v;
}

template <bool Fold, class V>
V fold_max(const V& v) {
  if constexpr (Fold)
    return detail::across_max(v);
  else
    return v;
}

template <bool Fold, class V>
V fold_min(const V& v) {
  if constexpr (Fold)
    return detail::across_min(v);
  else
    return v;
}

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
    const A t = sum + x;
    // Which operand lost bits depends on which is larger; an infinite sum has
    // nothing to compensate (and inf - inf would poison the carry).
    if (std::isfinite(t)) carry += (sum >= x || sum <= -x) ? (sum - t) + x : (x - t) + sum;
    sum = t;
  }
  A value() const { return sum + carry; }
};

}  // namespace normkit::stats
