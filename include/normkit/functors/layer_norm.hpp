// normkit/functors/layer_norm.hpp - y = (x - mean) / sqrt(var + eps) * gamma + beta.
#pragma once

#include "../statistics/moments.hpp"
#include "common.hpp"

namespace normkit {

/// Layer normalization over one axis or several adjacent axes (the C, H, W of
/// N, C, H, W, like PyTorch's normalized_shape), with the population variance
/// and epsilon inside the square root (default 1e-5, PyTorch's; Keras uses
/// 1e-3). gamma and beta are optional: f(x, axes, normkit::affine(gamma, beta)).
/// Mean and variance are computed without cancellation, so large offsets such
/// as 1e4 + 1e-2 N(0, 1) in float normalize correctly; a constant slice gives
/// exactly beta.
template <class T>
struct LayerNorm {
  using value_type = T;
  using statistic = stats::Moments;
  static constexpr const char* name = "LayerNorm";
  static constexpr bool backward_from_output = false;
  static constexpr bool accepts_weights = true;

  T epsilon = T(1e-5);
  NanPolicy nan_policy = NanPolicy::propagate;

  void validate(detail::Index) const {
    detail::check_epsilon(name, epsilon);
  }

  /// The options a saved statistic depends on (normkit::Saved checks them).
  auto options() const { return std::make_tuple(epsilon, nan_policy); }

  /// What normkit::forward saves per slice, as PyTorch's native_layer_norm:
  /// the mean and rstd = 1 / sqrt(var + epsilon) (+inf for a constant slice
  /// with epsilon = 0).
  static constexpr std::array<const char*, 2> saved_names{"mean", "rstd"};
  template <class Total>
  std::array<double, 2> save(const Total& t) const {
    using A = detail::wide_t<Total>;
    const double nan = detail::quiet_nan<double>();
    if (t.nan) return {nan, nan};
    const A var = t.hi == t.lo ? A(0) : t.m2 / t.n;
    return {double(t.center()), double(A(1) / std::sqrt(var + A(epsilon)))};
  }

  template <class Total>
  auto finalize(const Total& t) const {
    using A = detail::wide_t<Total>;
    if (t.nan) return detail::nan_slice<A>();
    const bool constant = t.hi == t.lo;  // centred exactly on its value
    auto map = detail::divided_by<A>(constant ? t.lo : t.origin, std::sqrt((constant ? A(0) : t.m2 / t.n) + A(epsilon)), 0);
    if (!constant) map.center_lo = t.mean;
    return map;
  }

  /// finalize for width_of<D> slices at once (the engine's batched decide):
  /// the same operations in lanes; NaN and constant slices, and divisors
  /// divided_by would split, are left to finalize.
  template <class D, class Total>
  detail::SliceMapLanes<D> finalize_lanes(const Total* t) const {
    using detail::lanes_across;
    const D lo = lanes_across<D>(t, &Total::lo), hi = lanes_across<D>(t, &Total::hi);
    const D d = xsimd::sqrt(lanes_across<D>(t, &Total::m2) / lanes_across<D>(t, &Total::n) + D(epsilon));
    detail::SliceMapLanes<D> m;
    m.center = lanes_across<D>(t, &Total::origin);
    m.scale = D(1) / d;
    m.center_lo = lanes_across<D>(t, &Total::mean);
    m.unsure = lanes_across<D>(t, &Total::nan) | (hi == lo) | !detail::plain_divisor(d);
    return m;
  }

  /// With rstd = 1 / sqrt(var + eps), x_hat = (x - mean) * rstd, g = dy * gamma:
  /// dx = rstd * (g - mean(g) - x_hat * mean(g * x_hat)); dgamma = sum dy * x_hat,
  /// dbeta = sum dy. A constant slice with eps > 0 is no guard (the formula is
  /// smooth there); with eps = 0 its output was the constant beta: dx = 0.
  struct Gradient {
    using value_type = T;
    using statistic = stats::MomentsDot;
    using saved_statistic = stats::CenteredDot;  // with the saved mean and rstd
    using map = ext::AffineGradMap;
    static constexpr std::size_t inputs = 2;  // x, dy
    static constexpr bool zeroes_skipped = true;
    static constexpr bool accepts_weights = true;

    LayerNorm f;
    NanPolicy nan_policy;

    template <class Total>
    auto finalize(const Total& t) const {
      using A = detail::wide_t<Total>;
      const auto& m = t.moments;
      const bool constant = m.hi == m.lo;
      const A var = constant ? A(0) : m.m2 / m.n;
      const A rstd = constant && f.epsilon == T(0) ? detail::infinity<A>() : A(1) / std::sqrt(var + A(f.epsilon));
      return coefficients<A>(m.nan, m.n, m.center(), rstd, t.g,
                             constant ? A(0) : t.centered_dot());
    }
    template <class Total>
    auto finalize(const Total& t, const std::array<double, 2>& saved) const {
      using A = detail::wide_t<Total>;
      const A mean = A(saved[0]), rstd = A(saved[1]);
      const bool nan = t.nan || std::isnan(mean) || std::isnan(rstd);
      return coefficients<A>(nan, t.n, mean, rstd, t.g, std::isinf(rstd) ? A(0) : t.centered_dot(mean));
    }

    // center: the mean (or a constant slice's value); rstd +inf: a constant
    // slice with epsilon = 0; dot: sum g * (x - mean).
    template <class A>
    ext::Coefficients<A, 6> coefficients(bool nan, A n, A center, A rstd, A g, A dot) const {
      using C = ext::Coefficients<A, 6>;
      if (nan) {  // x_hat, and so every dgamma term of the slice, is NaN
        C k = C::constant(detail::quiet_nan<A>());
        k.c[4] = detail::quiet_nan<A>();
        return k;
      }
      if (std::isinf(rstd)) {
        C k = C::constant(A(0));
        k.c[3] = center;  // x_hat = 0 for dgamma
        return k;
      }
      return C{{rstd, -rstd * g / n, -rstd * rstd * rstd * dot / n, center, rstd, 0}};
    }
  };
  Gradient gradient() const { return {*this, nan_policy}; }

  NORMKIT_CALL_OPERATORS
  NORMKIT_WEIGHTED_CALL_OPERATORS
  NORMKIT_BACKWARD_OPERATORS
  NORMKIT_WEIGHTED_BACKWARD_OPERATORS
};

}  // namespace normkit
