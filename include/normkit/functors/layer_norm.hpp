// normkit/functors/layer_norm.hpp - y = (x - mean) / sqrt(var + eps) * gamma + beta.
#pragma once

#include "../statistics/moments.hpp"
#include "common.hpp"

namespace normkit {

/// Layer normalization over one axis or several adjacent axes (the C, H, W of
/// N, C, H, W, like PyTorch's normalized_shape), with the population variance
/// and epsilon inside the square root (default 1e-5, PyTorch's; Keras uses
/// 1e-3). gamma and beta are optional: f(x, axes, normkit::affine(gamma, beta)).
/// Mean and variance are computed without cancellation, so large offsets such
/// as 1e4 + 1e-2 N(0, 1) in float normalize correctly; a constant slice gives
/// exactly beta.
template <class T>
struct LayerNorm {
  using value_type = T;
  using statistic = stats::Moments;
  static constexpr const char* name = "LayerNorm";
  static constexpr bool accepts_weights = true;

  T epsilon = T(1e-5);
  NanPolicy nan_policy = NanPolicy::propagate;

  void validate(detail::Index) const {
    detail::check_epsilon(name, epsilon);
  }

  template <class Total>
  auto finalize(const Total& t) const {
    using A = detail::wide_t<Total>;
    if (t.nan) return detail::nan_slice<A>();
    const bool constant = t.hi == t.lo;  // centred exactly on its value
    auto map = detail::divided_by<A>(constant ? t.lo : t.origin, std::sqrt((constant ? A(0) : t.m2 / t.n) + A(epsilon)), 0);
    if (!constant) map.center_lo = t.mean;
    return map;
  }

  NORMKIT_CALL_OPERATORS
  NORMKIT_WEIGHTED_CALL_OPERATORS
};

}  // namespace normkit
