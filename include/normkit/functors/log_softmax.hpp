// normkit/functors/log_softmax.hpp - y = (x - max) / T - log(sum exp((x - max) / T)).
#pragma once

#include "../statistics/log_sum_exp.hpp"
#include "common.hpp"
#include "softmax.hpp"

namespace normkit {

/// Log-softmax, computed as (x - max) - log sum exp(x - max) so that neither
/// the exponentials overflow nor the subtraction loses the small terms. The
/// same `masked`, NaN and `temperature` rules as Softmax.
template <class T>
struct LogSoftmax {
  using value_type = T;
  using statistic = stats::LogSumExp;
  static constexpr const char* name = "LogSoftmax";
  static constexpr bool backward_from_output = true;

  MaskedSlice masked = MaskedSlice::nan;
  NanPolicy nan_policy = NanPolicy::propagate;
  T temperature = 1;

  void validate(detail::Index) const {
    detail::check_policy(name, masked);
    detail::check_temperature(name, temperature);
  }

  /// The options a saved statistic depends on (normkit::Saved checks them).
  auto options() const { return std::make_tuple(masked, nan_policy, temperature); }

  /// What normkit::forward saves per slice (for a loss: the backward reads
  /// y): the maximum of x and log sum exp(x / temperature), NaN for a NaN
  /// slice and -inf for a fully masked one.
  static constexpr std::array<const char*, 2> saved_names{"max", "logsumexp"};
  template <class Total>
  std::array<double, 2> save(const Total& t) const {
    using A = detail::wide_t<Total>;
    if (std::isnan(t.s)) return {detail::quiet_nan<double>(), detail::quiet_nan<double>()};
    if (t.m == -detail::infinity<A>()) return {double(t.m), double(t.m)};
    return {double(t.m), double(t.m * A(T(1) / temperature) + std::log(t.s))};
  }

  // The statistic sums exp((x - max) * k) with the same k the map uses.
  statistic make_statistic() const { return {double(T(1) / temperature)}; }

  template <class Total>
  auto finalize(const Total& t) const {
    using A = detail::wide_t<Total>;
    if (std::isnan(t.s)) return detail::nan_slice<A>();
    if (t.m == -detail::infinity<A>()) return detail::masked_slice<A>(masked);
    return detail::SliceMap<A>{t.m, A(T(1) / temperature), -std::log(t.s)};
  }

  /// dx = (dy - exp(y) * sum dy) / temperature, from the output y.
  struct Gradient {
    using value_type = T;
    using statistic = stats::OutputSum;
    static constexpr std::size_t inputs = 2;  // y, dy
    static constexpr bool zeroes_skipped = true;

    struct map : ext::CoefficientMap<2> {  // dx = a * dy + b * exp(y)
      template <bool, bool, class V, std::size_t K>
      static V apply(const std::array<V, 2>& p, const std::array<V, K>& in, const V&, const V&) {
        return detail::mul_add(detail::vexp(in[0]), p[1], in[1] * p[0]);
      }
    };

    LogSoftmax f;
    NanPolicy nan_policy;

    // Under NanPolicy::zero the forward wrote 0 at NaN inputs, which y cannot
    // tell from a log-probability of 0.
    void validate() const {
      if (nan_policy == NanPolicy::zero)
        detail::fail<option_error>(name, "::backward: nan_policy = zero cannot be differentiated from y (the zeroed "
                                   "NaN positions look like log-probabilities of 0); use ignore");
    }

    template <class Total>
    auto finalize(const Total& t) const {
      using A = detail::wide_t<Total>;
      using C = ext::Coefficients<A, 2>;
      if (t.nan) return C::constant(detail::quiet_nan<A>());
      // All zeros in more than one position is no log-softmax output: a masked slice.
      if (f.masked == MaskedSlice::zeros && t.n > A(1) && t.m == A(0)) return C::constant(A(0));
      const A k = A(T(1) / f.temperature);
      return C{{k, -k * t.s.value()}};
    }
  };
  Gradient gradient() const { return {*this, nan_policy}; }

  NORMKIT_CALL_OPERATORS
  NORMKIT_BACKWARD_OPERATORS
};

}  // namespace normkit
