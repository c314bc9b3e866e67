// normkit/functors/log_softmax.hpp - y = x - max - log(sum exp(x - max)).
#pragma once

#include "../statistics/log_sum_exp.hpp"
#include "common.hpp"
#include "softmax.hpp"

namespace normkit {

/// Log-softmax, computed as (x - max) - log sum exp(x - max) so that neither
/// the exponentials overflow nor the subtraction loses the small terms. The
/// same `masked` and NaN rules as Softmax.
template <class T>
struct LogSoftmax {
  using value_type = T;
  using statistic = stats::LogSumExp;
  static constexpr const char* name = "LogSoftmax";

  MaskedSlice masked = MaskedSlice::nan;
  NanPolicy nan_policy = NanPolicy::propagate;

  void validate(detail::Index) const {
    detail::check_policy(name, masked);
  }

  template <class Total>
  auto finalize(const Total& t) const {
    using A = detail::wide_t<Total>;
    if (std::isnan(t.s)) return detail::nan_slice<A>();
    if (t.m == -detail::infinity<A>()) return detail::masked_slice<A>(masked);
    return detail::SliceMap<A>{t.m, A(1), -std::log(t.s)};
  }

  NORMKIT_CALL_OPERATORS
};

}  // namespace normkit
