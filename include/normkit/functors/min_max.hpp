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

  /// The options a saved statistic depends on (normkit::Saved checks them).
  auto options() const { return std::make_tuple(lo, hi, nan_policy); }

  /// What normkit::forward saves per slice: its minimum and maximum (NaN for
  /// a NaN slice; +inf and -inf for a slice with no value under ignore/zero).
  static constexpr std::array<const char*, 2> saved_names{"min", "max"};
  template <class Total>
  std::array<double, 2> save(const Total& t) const {
    if (t.nan) return {detail::quiet_nan<double>(), detail::quiet_nan<double>()};
    return {double(t.lo), double(t.hi)};
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
    // The ties of the saved extremes are counted by the same reduction
    // (comparisons with x); the saved values give the range.
    using saved_statistic = stats::RangeDot;
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
      return coefficients<detail::wide_t<Total>>(t, t.lo, t.hi);
    }
    template <class Total>
    auto finalize(const Total& t, const std::array<double, 2>& saved) const {
      using A = detail::wide_t<Total>;
      return coefficients<A>(t, A(saved[0]), A(saved[1]));
    }

    template <class A, class Total>
    ext::Coefficients<A, 5> coefficients(const Total& t, A lo, A hi) const {
      using C = ext::Coefficients<A, 5>;
      if (t.nan || std::isnan(lo) || std::isnan(hi)) return C::constant(detail::quiet_nan<A>());
      if (t.n == A(0) || hi == lo) return C::constant(A(0));
      if (!std::isfinite(lo) || !std::isfinite(hi)) return C::constant(detail::quiet_nan<A>());
      using R = long double;  // max - min of doubles can exceed the double range
      const R range = R(hi) - R(lo), r = (R(f.hi) - R(f.lo)) / range;
      const R up = (R(t.d) + (R(t.lo) - R(lo)) * R(t.s)) / range;  // sum dy * u (t.d is taken from t.lo)
      return C{{A(r), A(-r * (R(t.s) - up) / R(t.c_lo)), A(-r * up / R(t.c_hi)), lo, hi}};
    }
  };
  Gradient gradient() const { return {*this, nan_policy}; }

  NORMKIT_CALL_OPERATORS
  NORMKIT_BACKWARD_OPERATORS
};

}  // namespace normkit
