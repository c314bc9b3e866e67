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

  template <class Total>
  auto finalize(const Total& t) const {
    using A = detail::wide_t<Total>;
    if (t.nan) return detail::nan_slice<A>();
    const bool constant = t.hi == t.lo;  // centred exactly on its value
    auto map = detail::divided_by<A>(constant ? t.lo : t.origin, std::sqrt((constant ? A(0) : t.m2 / t.n) + A(epsilon)), 0);
    if (!constant) map.center_lo = t.mean;
    return map;
  }

  /// With rstd = 1 / sqrt(var + eps), x_hat = (x - mean) * rstd, g = dy * gamma:
  /// dx = rstd * (g - mean(g) - x_hat * mean(g * x_hat)); dgamma = sum dy * x_hat,
  /// dbeta = sum dy. A constant slice with eps > 0 is no guard (the formula is
  /// smooth there); with eps = 0 its output was the constant beta: dx = 0.
  struct Gradient {
    using value_type = T;
    using statistic = stats::MomentsDot;
    using map = ext::AffineGradMap;
    static constexpr std::size_t inputs = 2;  // x, dy
    static constexpr bool zeroes_skipped = true;
    static constexpr bool accepts_weights = true;

    LayerNorm f;
    NanPolicy nan_policy;

    template <class Total>
    auto finalize(const Total& t) const {
      using A = detail::wide_t<Total>;
      using C = ext::Coefficients<A, 6>;
      const auto& m = t.moments;
      if (m.nan) {  // x_hat, and so every dgamma term of the slice, is NaN
        C k = C::constant(detail::quiet_nan<A>());
        k.c[4] = detail::quiet_nan<A>();
        return k;
      }
      const bool constant = m.hi == m.lo;
      const A var = constant ? A(0) : m.m2 / m.n;
      const A center = constant ? m.lo : m.origin + m.mean;
      if (constant && f.epsilon == T(0)) {
        C k = C::constant(A(0));
        k.c[3] = center;  // x_hat = 0 for dgamma
        return k;
      }
      const A rstd = A(1) / std::sqrt(var + A(f.epsilon));
      const A dot = constant ? A(0) : t.centered_dot();
      return C{{rstd, -rstd * t.g / m.n, -rstd * rstd * rstd * dot / m.n, center, rstd, 0}};
    }
  };
  Gradient gradient() const { return {*this, nan_policy}; }

  NORMKIT_CALL_OPERATORS
  NORMKIT_WEIGHTED_CALL_OPERATORS
  NORMKIT_BACKWARD_OPERATORS
  NORMKIT_WEIGHTED_BACKWARD_OPERATORS
};

}  // namespace normkit
