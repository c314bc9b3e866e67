// normkit/functors/rms_norm.hpp - y = x / sqrt(mean(x^2) + eps) * gamma.
#pragma once

#include "../statistics/sum_squares.hpp"
#include "common.hpp"

namespace normkit {

/// Root-mean-square normalization (LLaMA, T5). epsilon defaults to 1e-6, but
/// it must match the checkpoint's (LLaMA-2 uses 1e-5): set it explicitly.
/// gamma is optional (and beta, for variants with a bias):
/// f(x, axes, normkit::affine(gamma)). Overflow- and underflow-safe like L2Norm.
/// With epsilon = 0 a zero slice is NaN (0/0), as the formula says.
template <class T>
struct RMSNorm {
  using value_type = T;
  using statistic = stats::SumSquares;
  static constexpr const char* name = "RMSNorm";
  static constexpr bool backward_from_output = false;
  static constexpr bool accepts_weights = true;

  T epsilon = T(1e-6);
  NanPolicy nan_policy = NanPolicy::propagate;

  void validate(detail::Index) const {
    detail::check_epsilon(name, epsilon);
  }

  template <class Total>
  auto finalize(const Total& t) const {
    using A = detail::wide_t<Total>;
    const A mean_sq = t.value() / t.n;
    if (std::isnan(mean_sq)) return detail::nan_slice<A>();
    return detail::divided_by<A>(0, std::sqrt(mean_sq + A(epsilon)), 0);
  }

  /// With r = 1 / sqrt(mean(x^2) + eps) and g = dy * gamma:
  /// dx = r * g - x * r^3 * mean(g * x); dgamma = sum dy * x * r, dbeta = sum dy.
  struct Gradient {
    using value_type = T;
    using statistic = stats::SquareDot;
    using map = ext::AffineGradMap;
    static constexpr std::size_t inputs = 2;  // x, dy
    static constexpr bool zeroes_skipped = true;
    static constexpr bool accepts_weights = true;

    RMSNorm f;
    NanPolicy nan_policy;

    template <class Total>
    auto finalize(const Total& t) const {
      using A = detail::wide_t<Total>;
      using C = ext::Coefficients<A, 6>;
      const A mean_sq = t.value() / t.n;
      if (t.nan || std::isnan(mean_sq)) {  // x * r, and so every dgamma term of the slice, is NaN
        C k = C::constant(detail::quiet_nan<A>());
        k.c[4] = detail::quiet_nan<A>();
        return k;
      }
      const A r = A(1) / std::sqrt(mean_sq + A(f.epsilon));
      return C{{r, 0, -r * r * r * t.d.value() / t.n, 0, r, 0}};
    }
  };
  Gradient gradient() const { return {*this, nan_policy}; }

  NORMKIT_CALL_OPERATORS
  NORMKIT_WEIGHTED_CALL_OPERATORS
  NORMKIT_BACKWARD_OPERATORS
  NORMKIT_WEIGHTED_BACKWARD_OPERATORS
};

}  // namespace normkit
