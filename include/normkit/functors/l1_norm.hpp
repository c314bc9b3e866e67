// normkit/functors/l1_norm.hpp - y = x / max(sum |x|, epsilon).
#pragma once

#include "../statistics/linear_sum.hpp"
#include "common.hpp"

namespace normkit {

/// Unit L1 norm per slice, as PyTorch F.normalize(p=1) (epsilon 1e-12 keeps
/// tiny slices from blowing up). With epsilon = 0 a zero slice stays zero.
/// An infinite element makes its slice [NaN where x is ±inf, 0 elsewhere].
template <class T>
struct L1Norm {
  using value_type = T;
  using statistic = stats::LinearSum<true>;
  static constexpr const char* name = "L1Norm";
  static constexpr bool backward_from_output = false;

  T epsilon = T(1e-12);
  NanPolicy nan_policy = NanPolicy::propagate;

  void validate(detail::Index) const {
    detail::check_epsilon(name, epsilon);
  }

  /// The options a saved statistic depends on (normkit::Saved checks them).
  auto options() const { return std::make_tuple(epsilon, nan_policy); }

  /// What normkit::forward saves per slice: the norm sum |x| (unclamped).
  static constexpr std::array<const char*, 1> saved_names{"norm"};
  template <class Total>
  std::array<double, 1> save(const Total& t) const {
    return {double(t.value())};
  }

  template <class Total>
  auto finalize(const Total& t) const {
    using A = detail::wide_t<Total>;
    const A sum = t.value();
    return detail::divide_by<A>(sum > A(epsilon) || std::isnan(sum) ? sum : A(epsilon));
  }

  /// dx = dy / N - sign(x) (sum dy * x) / N^2 where N = sum |x| is not
  /// clamped (sign(0) = 0: the subgradient 0 at a zero entry); dy / epsilon
  /// where it is; 0 for a zero slice with epsilon = 0; NaN for an infinite
  /// element.
  struct Gradient {
    using value_type = T;
    using statistic = stats::LinearDot<true>;
    using saved_statistic = stats::Dot;  // with the saved norm
    static constexpr std::size_t inputs = 2;  // x, dy
    static constexpr bool zeroes_skipped = true;

    struct map : ext::CoefficientMap<2> {  // dx = a * dy + b * sign(x)
      template <bool, bool, class V, std::size_t K>
      static V apply(const std::array<V, 2>& p, const std::array<V, K>& in, const V&, const V&) {
        const V sign = detail::lane_select(in[0] == V(0), V(0), in[0] / detail::vabs(in[0]));
        return detail::mul_add(p[1], sign, p[0] * in[1]);
      }
    };

    L1Norm f;
    NanPolicy nan_policy;

    template <class Total>
    auto finalize(const Total& t) const {
      return coefficients<detail::wide_t<Total>>(t.nan, t.s.value(), t.d.value());
    }
    template <class Total>
    auto finalize(const Total& t, const std::array<double, 1>& saved) const {
      using A = detail::wide_t<Total>;
      return coefficients<A>(t.nan, A(saved[0]), t.d.value());
    }

    template <class A>
    ext::Coefficients<A, 2> coefficients(bool nan, A sum, A dot) const {
      using C = ext::Coefficients<A, 2>;
      const A eps = A(f.epsilon);
      if (nan || !std::isfinite(sum)) return C::constant(detail::quiet_nan<A>());
      if (!(sum > eps)) return eps == A(0) ? C::constant(A(0)) : C{{A(1) / eps, 0}};
      return C{{A(1) / sum, -dot / (sum * sum)}};
    }
  };
  Gradient gradient() const { return {*this, nan_policy}; }

  NORMKIT_CALL_OPERATORS
  NORMKIT_BACKWARD_OPERATORS
};

}  // namespace normkit
