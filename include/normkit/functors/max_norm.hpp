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

  T epsilon = 0;
  NanPolicy nan_policy = NanPolicy::propagate;

  void validate(detail::Index) const {
    detail::check_epsilon(name, epsilon);
  }

  template <class Total>
  auto finalize(const Total& t) const {
    using A = detail::wide_t<Total>;
    if (t.nan) return detail::nan_slice<A>();
    return detail::divide_by<A>(t.m > A(epsilon) ? t.m : A(epsilon));
  }

  NORMKIT_CALL_OPERATORS
};

}  // namespace normkit
