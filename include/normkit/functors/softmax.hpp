// normkit/functors/softmax.hpp - y = exp(x - max) / sum exp(x - max).
#pragma once

#include "../statistics/extrema.hpp"
#include "common.hpp"

namespace normkit::detail {

// What an all -inf (fully masked) slice becomes.
template <class A>
SliceMap<A> masked_slice(MaskedSlice policy) {
  return policy == MaskedSlice::zeros ? SliceMap<A>::constant(A(0)) : nan_slice<A>();
}

}  // namespace normkit::detail

namespace normkit {

/// Softmax with the maximum subtracted first, so no input overflows exp; exp
/// runs once per element (the output is written, then divided by its sum). A
/// slice that is all -inf (fully masked) follows `masked`: NaN (PyTorch's
/// result) or zeros (what masked attention wants). A +inf or NaN in a slice
/// makes it NaN (under NanPolicy::propagate).
template <class T>
struct Softmax {
  using value_type = T;
  using statistic = stats::Maximum;
  static constexpr const char* name = "Softmax";
  static constexpr bool exponential = true;

  MaskedSlice masked = MaskedSlice::nan;
  NanPolicy nan_policy = NanPolicy::propagate;

  void validate(detail::Index) const {
    detail::check_policy(name, masked);
  }

  template <class Total>
  auto finalize(const Total& t) const {
    using A = detail::wide_t<Total>;
    if (t.nan) return detail::nan_slice<A>();
    if (t.hi == -detail::infinity<A>()) return detail::masked_slice<A>(masked);  // also: no non-NaN value
    return detail::SliceMap<A>{t.hi, 1, 0};  // the engine divides exp(x - max) by its sum
  }

  NORMKIT_CALL_OPERATORS
};

}  // namespace normkit
