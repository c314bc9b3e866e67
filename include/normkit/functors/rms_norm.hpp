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

  /// The options a saved statistic depends on (normkit::Saved checks them).
  auto options() const { return std::make_tuple(epsilon, nan_policy); }

  /// What normkit::forward saves per slice: rstd = 1 / sqrt(mean(x^2) + epsilon).
  static constexpr std::array<const char*, 1> saved_names{"rstd"};
  template <class Total>
  std::array<double, 1> save(const Total& t) const {
    using A = detail::wide_t<Total>;
    return {double(A(1) / std::sqrt(t.value() / t.n + A(epsilon)))};
  }

  template <class Total>
  auto finalize(const Total& t) const {
    using A = detail::wide_t<Total>;
    const A mean_sq = t.value() / t.n;
    if (std::isnan(mean_sq)) return detail::nan_slice<A>();
    return detail::divided_by<A>(0, std::sqrt(mean_sq + A(epsilon)), 0);
  }

  /// finalize for width_of<D> slices at once (the engine's batched decide);
  /// the lanes it is unsure of are left to finalize.
  template <class D, class Total>
  detail::SliceMapLanes<D> finalize_lanes(const Total* t) const {
    const D mean_sq = detail::lanes_across<D>(t, &Total::value) / detail::lanes_across<D>(t, &Total::n);
    auto m = detail::divided_by_lanes(xsimd::sqrt(mean_sq + D(epsilon)));
    m.unsure = m.unsure | xsimd::isnan(mean_sq);
    return m;
  }

  /// With r = 1 / sqrt(mean(x^2) + eps) and g = dy * gamma:
  /// dx = r * g - x * r^3 * mean(g * x); dgamma = sum dy * x * r, dbeta = sum dy.
  struct Gradient {
    using value_type = T;
    using statistic = stats::SquareDot;
    using saved_statistic = stats::Dot;  // with the saved rstd
    using map = ext::AffineGradMap;
    static constexpr std::size_t inputs = 2;  // x, dy
    static constexpr bool zeroes_skipped = true;
    static constexpr bool accepts_weights = true;

    RMSNorm f;
    NanPolicy nan_policy;

    template <class Total>
    auto finalize(const Total& t) const {
      using A = detail::wide_t<Total>;
      return coefficients<A>(t.nan, t.n, A(1) / std::sqrt(t.value() / t.n + A(f.epsilon)), t.d.value());
    }
    template <class Total>
    auto finalize(const Total& t, const std::array<double, 1>& saved) const {
      using A = detail::wide_t<Total>;
      return coefficients<A>(t.nan, t.n, A(saved[0]), t.d.value());
    }

    template <class A>
    ext::Coefficients<A, 6> coefficients(bool nan, A n, A r, A dot) const {
      using C = ext::Coefficients<A, 6>;
      if (nan || std::isnan(r)) {  // x * r, and so every dgamma term of the slice, is NaN
        C k = C::constant(detail::quiet_nan<A>());
        k.c[4] = detail::quiet_nan<A>();
        return k;
      }
      return C{{r, 0, -r * r * r * dot / n, 0, r, 0}};
    }
  };
  Gradient gradient() const { return {*this, nan_policy}; }

  NORMKIT_CALL_OPERATORS
  NORMKIT_WEIGHTED_CALL_OPERATORS
  NORMKIT_BACKWARD_OPERATORS
  NORMKIT_WEIGHTED_BACKWARD_OPERATORS
};

}  // namespace normkit
