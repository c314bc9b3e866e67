// normkit/functors/softmax.hpp - y = exp(x - max) / sum exp(x - max).
#pragma once

#include "../statistics/log_sum_exp.hpp"
#include "common.hpp"

namespace normkit::detail {

// What an all -inf (fully masked) slice becomes.
template <class A>
SliceMap<A> masked_slice(MaskedSlice policy) {
  return policy == MaskedSlice::zeros ? SliceMap<A>::constant(A(0)) : nan_slice<A>();
}

}  // namespace normkit::detail

namespace normkit {

/// Softmax with the maximum subtracted first, so no input overflows exp. A
/// slice that is all -inf (fully masked) follows `masked`: NaN (PyTorch's
/// result) or zeros (what masked attention wants). A +inf or NaN in a slice
/// makes it NaN (under NanPolicy::propagate).
template <class T>
struct Softmax {
  using value_type = T;
  using statistic = stats::LogSumExp;
  static constexpr const char* name = "Softmax";
  static constexpr bool exponential = true;
  static constexpr bool accepts_weights = false;

  MaskedSlice masked = MaskedSlice::nan;
  NanPolicy nan_policy = NanPolicy::propagate;

  void validate(detail::Index) const {
    detail::require_float<T>();
    detail::check_policy(name, masked);
  }

  template <class Total>
  auto finalize(const Total& t) const {
    using A = detail::wide_t<Total>;
    if (std::isnan(t.s)) return detail::nan_slice<A>();
    if (t.m == -detail::infinity<A>()) return detail::masked_slice<A>(masked);
    return detail::SliceMap<A>{t.m, A(1) / t.s, 0};
  }

  NORMKIT_CALL_OPERATORS
};

}  // namespace normkit
