// normkit/statistics/common.hpp - shared pieces of the statistics.
//
// A statistic reduces one block of a slice in two layers:
//  * `reduce<SkipNan, V>(load, steps)` runs over `steps` lane values
//    (load(j) gives the j-th) in the element type and returns one partial per
//    lane (a std::array of V, field 0 being the count of values taken);
//  * `Total<A>::add(lane)` merges one lane's partial into the slice's running
//    total, kept in a wide type A (double, or long double in the rescue pass).
// Blocks are short, so the element-type part never accumulates enough to lose
// accuracy, and the wide totals make 10^6-element slices sum accurately.
#pragma once

#include <array>
#include <cstddef>

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

// Without SkipNan every value counts, so the count needs no per-element work.
template <bool SkipNan, class V>
void finish_count(V& count, Index steps) {
  if constexpr (!SkipNan) count = V(static_cast<detail::scalar_of<V>>(steps));
}

// Neumaier-compensated running sum of block partials.
template <class A>
struct CompensatedSum {
  A sum = 0;
  A carry = 0;

  void add(A x) {
    const A t = sum + x;
    // Which operand lost bits depends on which is larger.
    carry += (sum >= x || sum <= -x) ? (sum - t) + x : (x - t) + sum;
    sum = t;
  }
  A value() const { return sum + carry; }
};

}  // namespace normkit::stats
