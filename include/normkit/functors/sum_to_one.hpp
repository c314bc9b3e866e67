// normkit/functors/sum_to_one.hpp - y = x / sum(x).
#pragma once

#include "../statistics/linear_sum.hpp"
#include "common.hpp"

namespace normkit {

/// Divides each slice by its sum so it sums to one (a probability vector from
/// non-negative weights, the Keras "normalize to sum 1" layer).
///  * A slice is degenerate when |sum| <= epsilon or the sum is not finite
///    (infinite elements; +inf and -inf together make it NaN); `degenerate`
///    then picks its output: 1/n (default, still sums to one), zeros or NaN.
///  * add_epsilon = true reproduces the Keras-tutorial form x / (sum + epsilon)
///    exactly, with no degenerate handling (a zero sum divides by epsilon).
template <class T>
struct SumToOne {
  using value_type = T;
  using statistic = stats::LinearSum<false>;
  static constexpr const char* name = "SumToOne";
  static constexpr bool backward_from_output = false;

  T epsilon = 0;
  Degenerate degenerate = Degenerate::uniform;
  bool add_epsilon = false;
  NanPolicy nan_policy = NanPolicy::propagate;

  void validate(detail::Index) const {
    detail::check_epsilon(name, epsilon);
    detail::check_policy(name, degenerate);
  }

  /// The options a saved statistic depends on (normkit::Saved checks them).
  auto options() const { return std::make_tuple(epsilon, degenerate, add_epsilon, nan_policy); }

  /// What normkit::forward saves per slice: the sum of the slice.
  static constexpr std::array<const char*, 1> saved_names{"sum"};
  template <class Total>
  std::array<double, 1> save(const Total& t) const {
    return {double(t.value())};
  }

  template <class Total>
  auto finalize(const Total& t) const {
    using A = detail::wide_t<Total>;
    const A sum = t.value();
    if (t.nan) return detail::nan_slice<A>();
    if (add_epsilon) return detail::divided_by<A>(0, sum + A(epsilon), 0);
    if (!(std::fabs(sum) > A(epsilon)) || !std::isfinite(sum)) {
      switch (degenerate) {
        case Degenerate::uniform:
          return detail::SliceMap<A>::constant(A(1) / t.n);
        case Degenerate::zeros:
          return detail::SliceMap<A>::constant(A(0));
        default:
          return detail::nan_slice<A>();
      }
    }
    return detail::divided_by<A>(0, sum, 0);
  }

  /// dx = (dy - sum dy * y) / d with d = sum (or sum + epsilon); 0 for a
  /// degenerate slice written as 1/n or zeros, NaN for one written as NaN.
  struct Gradient {
    using value_type = T;
    using statistic = stats::LinearDot<false>;
    using saved_statistic = stats::Dot;  // with the saved sum
    using map = ext::LinearGradMap;
    static constexpr std::size_t inputs = 2;  // x, dy
    static constexpr bool zeroes_skipped = true;

    SumToOne f;
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
    ext::Coefficients<A, 4> coefficients(bool nan, A sum, A dot) const {
      using C = ext::Coefficients<A, 4>;
      if (nan) return C::constant(detail::quiet_nan<A>());
      A d = sum;
      if (f.add_epsilon) {
        d = sum + A(f.epsilon);
      } else if (!(std::fabs(sum) > A(f.epsilon)) || !std::isfinite(sum)) {
        return C::constant(f.degenerate == Degenerate::nan ? detail::quiet_nan<A>() : A(0));
      }
      return C{{A(1) / d, -dot / (d * d), 0, 0}};
    }
  };
  Gradient gradient() const { return {*this, nan_policy}; }

  NORMKIT_CALL_OPERATORS
  NORMKIT_BACKWARD_OPERATORS
};

}  // namespace normkit
