// normkit/functors/softmax.hpp - y = exp((x - max) / T) / sum exp((x - max) / T).
#pragma once

#include "../statistics/extrema.hpp"
#include "common.hpp"

namespace normkit::detail {

// What an all -inf (fully masked) slice becomes.
template <class A>
SliceMap<A> masked_slice(MaskedSlice policy) {
  return policy == MaskedSlice::zeros ? SliceMap<A>::constant(A(0)) : nan_slice<A>();
}

template <class T>
void check_temperature(const char* functor, T temperature) {
  if (!(temperature > T(0)) || !std::isfinite(temperature) || !std::isfinite(T(1) / temperature))
    fail<option_error>(functor, "temperature must be finite and > 0 (with a finite reciprocal), got ", temperature);
}

}  // namespace normkit::detail

namespace normkit {

/// Softmax with the maximum subtracted first, so no input overflows exp; exp
/// runs once per element (the output is written, then divided by its sum). A
/// slice that is all -inf (fully masked) follows `masked`: NaN (PyTorch's
/// result) or zeros (what masked attention wants). A +inf or NaN in a slice
/// makes it NaN (under NanPolicy::propagate). `temperature` divides the
/// logits: softmax(x / temperature) (default 1).
template <class T>
struct Softmax {
  using value_type = T;
  using statistic = stats::Maximum;
  using map = ext::ExpMap;
  static constexpr const char* name = "Softmax";
  static constexpr bool backward_from_output = true;

  MaskedSlice masked = MaskedSlice::nan;
  NanPolicy nan_policy = NanPolicy::propagate;
  T temperature = 1;

  void validate(detail::Index) const {
    detail::check_policy(name, masked);
    detail::check_temperature(name, temperature);
  }

  template <class Total>
  auto finalize(const Total& t) const {
    using A = detail::wide_t<Total>;
    if (t.nan) return detail::nan_slice<A>();
    if (t.hi == -detail::infinity<A>()) return detail::masked_slice<A>(masked);  // also: no non-NaN value
    return detail::SliceMap<A>{t.hi, A(T(1) / temperature), 0};  // ExpMap: exp((x - max) * scale), / its sum
  }

  /// dx = y * (dy - sum dy * y) / temperature, from the output y.
  struct Gradient {
    using value_type = T;
    using statistic = stats::LeanDot;
    static constexpr std::size_t inputs = 2;  // y, dy
    static constexpr bool zeroes_skipped = true;

    struct map : ext::CoefficientMap<2> {  // dx = y * (a * dy + b)
      template <bool, bool, class V, std::size_t K>
      static V apply(const std::array<V, 2>& p, const std::array<V, K>& in, const V&, const V&) {
        return in[0] * detail::mul_add(p[0], in[1], p[1]);
      }
    };

    Softmax f;
    NanPolicy nan_policy;

    template <class Total>
    auto finalize(const Total& t) const {
      using A = detail::wide_t<Total>;
      using C = ext::Coefficients<A, 2>;
      if (std::isnan(t.d.value())) return C::constant(detail::quiet_nan<A>());  // a NaN in y or dy
      const A k = A(T(1) / f.temperature);
      return C{{k, -k * t.d.value()}};
    }
  };
  Gradient gradient() const { return {*this, nan_policy}; }

  NORMKIT_CALL_OPERATORS
  NORMKIT_BACKWARD_OPERATORS
};

}  // namespace normkit
