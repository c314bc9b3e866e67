// normkit/functors/min_max.hpp - y = (x - min) / (max - min) * (hi - lo) + lo.
#pragma once

#include "../statistics/extrema.hpp"
#include "common.hpp"

namespace normkit {

/// Rescales each slice onto [lo, hi] (default [0, 1]), as scikit-learn's
/// MinMaxScaler; a constant slice maps to lo. The range max - min is formed in
/// a wider type, so slices spanning more than the largest float still scale
/// correctly. A slice containing an infinity is NaN (except where constant).
template <class T>
struct MinMax {
  using value_type = T;
  using statistic = stats::MinMaxRange;
  static constexpr const char* name = "MinMax";

  T lo = 0;
  T hi = 1;
  NanPolicy nan_policy = NanPolicy::propagate;

  void validate(detail::Index) const {
    if (!(lo < hi) || !std::isfinite(lo) || !std::isfinite(hi))
      detail::fail<option_error>(name, "needs finite lo < hi, got lo = ", lo, ", hi = ", hi);
  }

  template <class Total>
  auto finalize(const Total& t) const {
    using A = detail::wide_t<Total>;
    if (t.nan) return detail::nan_slice<A>();
    if (t.n == A(0) || t.hi == t.lo) return detail::SliceMap<A>::constant(A(lo));
    // long double: max - min of doubles can exceed the double range.
    using R = long double;
    const R scale = (R(hi) - R(lo)) / (R(t.hi) - R(t.lo));
    return detail::scaled_by<A>(t.lo, scale, A(lo));
  }

  NORMKIT_CALL_OPERATORS
};

}  // namespace normkit
