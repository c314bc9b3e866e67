// normkit/functors/l2_norm.hpp - y = x / max(||x||_2, epsilon).
#pragma once

#include "../statistics/sum_squares.hpp"
#include "common.hpp"

namespace normkit {

/// Unit L2 norm per slice (embeddings, cosine similarity), as PyTorch
/// F.normalize (epsilon 1e-12 clamps the norm). clamp_squared = true gives the
/// TensorFlow form x * rsqrt(max(sum x^2, epsilon)), where epsilon clamps the
/// squared norm. Exact to rounding for any finite input: slices whose squares
/// overflow (|x| near FLT_MAX) or underflow (subnormals) are recomputed in
/// long double. With epsilon = 0 a zero slice stays zero; an infinite element
/// makes its slice [NaN where x is ±inf, 0 elsewhere].
template <class T>
struct L2Norm {
  using value_type = T;
  using statistic = stats::SumSquares;
  static constexpr const char* name = "L2Norm";
  static constexpr bool backward_from_output = false;

  T epsilon = T(1e-12);
  bool clamp_squared = false;
  NanPolicy nan_policy = NanPolicy::propagate;

  void validate(detail::Index) const {
    detail::check_epsilon(name, epsilon);
  }

  /// The options a saved statistic depends on (normkit::Saved checks them).
  auto options() const { return std::make_tuple(epsilon, clamp_squared, nan_policy); }

  /// What normkit::forward saves per slice: the norm sqrt(sum x^2) (unclamped).
  static constexpr std::array<const char*, 1> saved_names{"norm"};
  template <class Total>
  std::array<double, 1> save(const Total& t) const {
    return {double(std::sqrt(t.value()))};
  }

  template <class Total>
  auto finalize(const Total& t) const {
    using A = detail::wide_t<Total>;
    const A sum_sq = t.value(), eps = A(epsilon);
    if (clamp_squared) return detail::divide_by<A>(std::sqrt(sum_sq > eps || std::isnan(sum_sq) ? sum_sq : eps));
    const A norm = std::sqrt(sum_sq);
    return detail::divide_by<A>(norm > eps || std::isnan(norm) ? norm : eps);
  }

  /// finalize for width_of<D> slices at once (the engine's batched decide);
  /// the lanes it is unsure of are left to finalize.
  template <class D, class Total>
  detail::SliceMapLanes<D> finalize_lanes(const Total* t) const {
    const D sum_sq = detail::lanes_across<D>(t, &Total::value), eps(epsilon);
    const D d = clamp_squared ? xsimd::sqrt(xsimd::select(sum_sq > eps, sum_sq, eps))
                              : xsimd::select(xsimd::sqrt(sum_sq) > eps, xsimd::sqrt(sum_sq), eps);
    auto m = detail::divided_by_lanes(d);
    m.unsure = m.unsure | xsimd::isnan(sum_sq);
    return m;
  }

  /// dx = dy / N - x * (sum dy * x) / N^3 where the norm N is not clamped;
  /// dy / epsilon (sqrt(epsilon) with clamp_squared) where it is; 0 for a
  /// zero slice with epsilon = 0.
  struct Gradient {
    using value_type = T;
    using statistic = stats::SquareDot;
    using saved_statistic = stats::Dot;  // with the saved norm
    using map = ext::LinearGradMap;
    static constexpr std::size_t inputs = 2;  // x, dy
    static constexpr bool zeroes_skipped = true;

    L2Norm f;
    NanPolicy nan_policy;

    template <class Total>
    auto finalize(const Total& t) const {
      using A = detail::wide_t<Total>;
      return coefficients<A>(t.nan, t.value(), std::sqrt(t.value()), t.d.value());
    }
    template <class Total>
    auto finalize(const Total& t, const std::array<double, 1>& saved) const {
      using A = detail::wide_t<Total>;
      const A norm = A(saved[0]);
      return coefficients<A>(t.nan, norm * norm, norm, t.d.value());
    }

    template <class A>
    ext::Coefficients<A, 4> coefficients(bool nan, A sum_sq, A norm, A dot) const {
      using C = ext::Coefficients<A, 4>;
      const A eps = A(f.epsilon);
      if (nan || !std::isfinite(sum_sq)) return C::constant(detail::quiet_nan<A>());
      const bool clamped = f.clamp_squared ? !(sum_sq > eps) : !(norm > eps);
      if (clamped) {
        if (eps == A(0)) return C::constant(A(0));
        return C{{A(1) / (f.clamp_squared ? std::sqrt(eps) : eps), 0, 0, 0}};
      }
      return C{{A(1) / norm, 0, -dot / (norm * norm * norm), 0}};
    }
  };
  Gradient gradient() const { return {*this, nan_policy}; }

  NORMKIT_CALL_OPERATORS
  NORMKIT_BACKWARD_OPERATORS
};

}  // namespace normkit
