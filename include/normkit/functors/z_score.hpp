// normkit/functors/z_score.hpp - y = (x - mean) / std.
#pragma once

#include "../statistics/moments.hpp"
#include "common.hpp"

namespace normkit {

/// Standardizes each slice to mean 0 and standard deviation 1, as
/// scikit-learn's StandardScaler (ddof = 0, population std; ddof = 1 for the
/// sample std). A constant slice, or one whose std is <= epsilon (default 0),
/// maps to 0 - constant slices are recognised exactly, not by a rounded std.
/// add_epsilon = true gives the tutorial form (x - mean) / (std + epsilon).
/// Mean and variance are computed without cancellation (shifted blocks merged
/// with Chan's formula), so data like 1e6 + N(0, 1) in float standardize
/// correctly. Under NanPolicy::ignore a slice with n - ddof <= 0 valid values
/// is NaN.
template <class T>
struct ZScore {
  using value_type = T;
  using statistic = stats::Moments;
  static constexpr const char* name = "ZScore";
  static constexpr bool backward_from_output = false;

  int ddof = 0;
  T epsilon = 0;
  bool add_epsilon = false;
  NanPolicy nan_policy = NanPolicy::propagate;

  void validate(detail::Index n) const {
    detail::check_epsilon(name, epsilon);
    if (ddof < 0 || ddof >= n)
      detail::fail<option_error>(name, "ddof must be >= 0 and below the slice length ", n, ", got ", ddof);
  }

  /// The options a saved statistic depends on (normkit::Saved checks them).
  auto options() const { return std::make_tuple(ddof, epsilon, add_epsilon, nan_policy); }

  /// What normkit::forward saves per slice: the mean and the standard
  /// deviation (with ddof; 0 for a constant slice, NaN where n - ddof <= 0).
  static constexpr std::array<const char*, 2> saved_names{"mean", "std"};
  template <class Total>
  std::array<double, 2> save(const Total& t) const {
    using A = detail::wide_t<Total>;
    const double nan = detail::quiet_nan<double>();
    if (t.nan) return {nan, nan};
    const double mean = double(t.center());
    if (!(t.n - A(ddof) > A(0))) return {mean, nan};
    return {mean, t.hi == t.lo ? 0.0 : double(std::sqrt(t.m2 / (t.n - A(ddof))))};
  }

  template <class Total>
  auto finalize(const Total& t) const {
    using A = detail::wide_t<Total>;
    if (t.nan || t.n - A(ddof) <= A(0)) return detail::nan_slice<A>();
    const bool constant = t.hi == t.lo;  // exact, also for a slice of equal infinities
    const A sd = constant ? A(0) : std::sqrt(t.m2 / (t.n - A(ddof)));
    if (constant) return add_epsilon ? detail::divided_by<A>(t.lo, sd + A(epsilon), 0) : detail::SliceMap<A>::constant(0);
    if (!add_epsilon && sd <= A(epsilon)) return detail::SliceMap<A>::constant(A(0));
    auto map = detail::divided_by<A>(t.origin, add_epsilon ? sd + A(epsilon) : sd, 0);
    map.center_lo = t.mean;
    return map;
  }

  /// finalize for width_of<D> slices at once (the engine's batched decide):
  /// the same operations in lanes; NaN, constant and degenerate slices, and
  /// divisors divided_by would split, are left to finalize.
  template <class D, class Total>
  detail::SliceMapLanes<D> finalize_lanes(const Total* t) const {
    using detail::lanes_across;
    const D m = lanes_across<D>(t, &Total::n) - D(ddof);
    const D lo = lanes_across<D>(t, &Total::lo), hi = lanes_across<D>(t, &Total::hi);
    const D sd = xsimd::sqrt(lanes_across<D>(t, &Total::m2) / m);
    const D d = add_epsilon ? sd + D(epsilon) : sd;
    detail::SliceMapLanes<D> map;
    map.center = lanes_across<D>(t, &Total::origin);
    map.scale = D(1) / d;
    map.center_lo = lanes_across<D>(t, &Total::mean);
    map.unsure = lanes_across<D>(t, &Total::nan) | !(m > D(0)) | (hi == lo) | !detail::plain_divisor(d);
    if (!add_epsilon) map.unsure = map.unsure | (sd <= D(epsilon));
    return map;
  }

  /// With sd the std, x_hat = (x - mean) / sd, m = n - ddof:
  /// dx = (dy - mean(dy) - x_hat * (sum dy * x_hat) / m) / sd; add_epsilon
  /// divides by sd + epsilon instead (and differentiates it). A slice written
  /// as 0 (constant, or sd <= epsilon) passes no gradient.
  struct Gradient {
    using value_type = T;
    using statistic = stats::MomentsDot;
    using saved_statistic = stats::CenteredDot;  // with the saved mean and std
    using map = ext::LinearGradMap;
    static constexpr std::size_t inputs = 2;  // x, dy
    static constexpr bool zeroes_skipped = true;

    ZScore f;
    NanPolicy nan_policy;

    template <class Total>
    auto finalize(const Total& t) const {
      using A = detail::wide_t<Total>;
      const auto& mo = t.moments;
      const A m = mo.n - A(f.ddof);
      const bool constant = mo.hi == mo.lo;
      const A sd = constant || !(m > A(0)) ? A(0) : std::sqrt(mo.m2 / m);
      return coefficients<A>(mo.nan, mo.n, mo.center(), sd, constant, t.g,
                             constant ? A(0) : t.centered_dot());
    }
    template <class Total>
    auto finalize(const Total& t, const std::array<double, 2>& saved) const {
      using A = detail::wide_t<Total>;
      const A mean = A(saved[0]), sd = A(saved[1]);
      const bool nan = t.nan || std::isnan(mean) || std::isnan(sd);
      return coefficients<A>(nan, t.n, mean, sd, sd == A(0), t.g, t.centered_dot(mean));
    }

    // center: the mean (or a constant slice's value); dot: sum g * (x - mean).
    template <class A>
    ext::Coefficients<A, 4> coefficients(bool nan, A n, A center, A sd, bool constant, A g, A dot) const {
      using C = ext::Coefficients<A, 4>;
      const A m = n - A(f.ddof);
      if (nan || !(m > A(0))) return C::constant(detail::quiet_nan<A>());
      if (!f.add_epsilon && (constant || sd <= A(f.epsilon))) return C::constant(A(0));
      const A d = f.add_epsilon ? sd + A(f.epsilon) : sd;
      const A b = -g / (n * d);
      if (constant) return C{{A(1) / d, b, 0, center}};
      return C{{A(1) / d, b, -dot / (m * sd * d * d), center}};
    }
  };
  Gradient gradient() const { return {*this, nan_policy}; }

  NORMKIT_CALL_OPERATORS
  NORMKIT_BACKWARD_OPERATORS
};

}  // namespace normkit
