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

  T epsilon = 0;
  Degenerate degenerate = Degenerate::uniform;
  bool add_epsilon = false;
  NanPolicy nan_policy = NanPolicy::propagate;

  void validate(detail::Index) const {
    detail::check_epsilon(name, epsilon);
    detail::check_policy(name, degenerate);
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

  NORMKIT_CALL_OPERATORS
};

}  // namespace normkit
