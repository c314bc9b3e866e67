// normkit/functors/max_norm.hpp - y = x / max(max |x|, epsilon).
#pragma once

#include "../statistics/extrema.hpp"
#include "common.hpp"

namespace normkit {

/// Largest magnitude of each slice scaled to 1, as scikit-learn
/// normalize(norm='max'): a zero slice stays zero. epsilon (default 0) sets a
/// floor under the divisor. An infinite element makes its slice
/// [NaN where x is ±inf, 0 elsewhere].
template <class T>
struct MaxNorm {
  using value_type = T;
  using statistic = stats::MaxAbs;
  static constexpr const char* name = "MaxNorm";
  static constexpr bool backward_from_output = false;

  T epsilon = 0;
  NanPolicy nan_policy = NanPolicy::propagate;

  void validate(detail::Index) const {
    detail::check_epsilon(name, epsilon);
  }

  /// The options a saved statistic depends on (normkit::Saved checks them).
  auto options() const { return std::make_tuple(epsilon, nan_policy); }

  /// What normkit::forward saves per slice: the norm max |x| (unclamped).
  static constexpr std::array<const char*, 1> saved_names{"norm"};
  template <class Total>
  std::array<double, 1> save(const Total& t) const {
    return {t.nan ? detail::quiet_nan<double>() : double(t.m)};
  }

  template <class Total>
  auto finalize(const Total& t) const {
    using A = detail::wide_t<Total>;
    if (t.nan) return detail::nan_slice<A>();
    return detail::divide_by<A>(t.m > A(epsilon) ? t.m : A(epsilon));
  }

  /// dx = dy / M - sign(x) [|x| = M] (sum dy * x) / (M^2 c) where M = max |x|
  /// is not clamped: the max's share is split evenly among the c entries
  /// that reach it (as PyTorch's amax). dy / epsilon where M is clamped; 0
  /// for a zero slice with epsilon = 0; NaN for an infinite element.
  struct Gradient {
    using value_type = T;
    using statistic = stats::MaxDot;
    // With the saved norm the ties are still counted, which takes max |x|
    // again: the same reduction, and the saved value is the divisor.
    using saved_statistic = stats::MaxDot;
    static constexpr std::size_t inputs = 2;  // x, dy
    static constexpr bool zeroes_skipped = true;

    struct map : ext::CoefficientMap<3> {  // dx = a * dy + [|x| = M] b * sign(x)
      template <bool, bool, class V, std::size_t K>
      static V apply(const std::array<V, 3>& p, const std::array<V, K>& in, const V&, const V&) {
        const V magnitude = detail::vabs(in[0]);
        const V share = detail::lane_select(magnitude == p[2], p[1] * (in[0] / magnitude), V(0));
        return detail::mul_add(p[0], in[1], share);
      }
    };

    MaxNorm f;
    NanPolicy nan_policy;

    template <class Total>
    auto finalize(const Total& t) const {
      return coefficients<detail::wide_t<Total>>(t, t.m);
    }
    template <class Total>
    auto finalize(const Total& t, const std::array<double, 1>& saved) const {
      using A = detail::wide_t<Total>;
      return coefficients<A>(t, A(saved[0]));
    }

    template <class A, class Total>
    ext::Coefficients<A, 3> coefficients(const Total& t, A m) const {
      using C = ext::Coefficients<A, 3>;
      const A eps = A(f.epsilon);
      if (t.nan || !std::isfinite(m)) return C::constant(detail::quiet_nan<A>());
      if (!(m > eps)) return eps == A(0) ? C::constant(A(0)) : C{{A(1) / eps, 0, -1}};
      return C{{A(1) / m, -t.d.value() / (m * m * t.c), m}};
    }
  };
  Gradient gradient() const { return {*this, nan_policy}; }

  NORMKIT_CALL_OPERATORS
  NORMKIT_BACKWARD_OPERATORS
};

}  // namespace normkit
