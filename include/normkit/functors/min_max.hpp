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
  static constexpr bool backward_from_output = false;

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

  /// With r = (hi - lo) / (max - min) and u = (x - min) / (max - min):
  /// dx = r dy - [x = min] r sum dy (1 - u) / c_min - [x = max] r sum dy u / c_max,
  /// the extremes' shares split evenly among their ties. A constant slice
  /// (written as lo) passes no gradient; an infinite element gives NaN.
  struct Gradient {
    using value_type = T;
    using statistic = stats::RangeDot;
    static constexpr std::size_t inputs = 2;  // x, dy
    static constexpr bool zeroes_skipped = true;

    // dx = r * dy + [x = min] b_min + [x = max] b_max
    struct map : ext::CoefficientMap<5> {
      template <bool, bool, class V, std::size_t K>
      static V apply(const std::array<V, 5>& p, const std::array<V, K>& in, const V&, const V&) {
        const V at_min = detail::lane_select(in[0] == p[3], p[1], V(0));
        const V at_max = detail::lane_select(in[0] == p[4], p[2], V(0));
        return detail::mul_add(p[0], in[1], at_min + at_max);
      }
    };

    MinMax f;
    NanPolicy nan_policy;

    template <class Total>
    auto finalize(const Total& t) const {
      using A = detail::wide_t<Total>;
      using C = ext::Coefficients<A, 5>;
      if (t.nan) return C::constant(detail::quiet_nan<A>());
      if (t.n == A(0) || t.hi == t.lo) return C::constant(A(0));
      if (!std::isfinite(t.lo) || !std::isfinite(t.hi)) return C::constant(detail::quiet_nan<A>());
      using R = long double;  // max - min of doubles can exceed the double range
      const R range = R(t.hi) - R(t.lo), r = (R(f.hi) - R(f.lo)) / range;
      const R up = R(t.d) / range;  // sum dy * u
      return C{{A(r), A(-r * (R(t.s) - up) / R(t.c_lo)), A(-r * up / R(t.c_hi)), t.lo, t.hi}};
    }
  };
  Gradient gradient() const { return {*this, nan_policy}; }

  NORMKIT_CALL_OPERATORS
  NORMKIT_BACKWARD_OPERATORS
};

}  // namespace normkit
