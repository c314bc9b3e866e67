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

  T epsilon = T(1e-12);
  NanPolicy nan_policy = NanPolicy::propagate;

  void validate(detail::Index) const {
    detail::check_epsilon(name, epsilon);
  }

  template <class Total>
  auto finalize(const Total& t) const {
    using A = detail::wide_t<Total>;
    const A sum = t.value();
    return detail::divide_by<A>(sum > A(epsilon) || std::isnan(sum) ? sum : A(epsilon));
  }

  NORMKIT_CALL_OPERATORS
};

}  // namespace normkit
