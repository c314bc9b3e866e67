// normkit/statistics/moments.hpp - count, mean, M2 = sum (x - mean)^2, min, max
// (ZScore, LayerNorm).
//
// Each block is reduced twice from cache: first its mean (per lane, or shared
// by the lanes of one slice: the "shift"), then the deviations from it, sum d and sum d^2. Because d is small
// next to x, data like 1e6 + N(0,1) keep their variance in float, and
// sum d^2 - (sum d)^2 / n corrects for the shift not being the exact mean.
// Blocks then merge with Chan's formula in the wide type. min and max are kept
// so that a constant slice is recognised exactly (min == max) rather than by a
// rounded variance.
#pragma once

#include <cmath>

#include "common.hpp"

namespace normkit::stats {

struct Moments {
  enum : std::size_t { count, shift, dev_sum, dev_sq, min, max, fields };

  template <bool SkipNan, bool Fold, class V, class Load>
  static std::array<V, fields> reduce(const Load& load, Index steps) {
    using S = detail::scalar_of<V>;
    V n(0), sum(0), lo(detail::infinity<S>()), hi(-detail::infinity<S>());
    for (Index j = 0; j < steps; ++j) {
      const V x = load(j);
      sum = sum + screen<SkipNan>(x, V(0), n);
      if constexpr (SkipNan) {
        const auto nan = detail::is_nan(x);
        lo = detail::vmin(lo, detail::lane_select(nan, V(detail::infinity<S>()), x));
        hi = detail::vmax(hi, detail::lane_select(nan, V(-detail::infinity<S>()), x));
      } else {
        lo = detail::vmin(lo, x);
        hi = detail::vmax(hi, x);
      }
    }
    finish_count<SkipNan>(n, steps);
    n = fold_sum<Fold>(n);
    const V center = fold_sum<Fold>(sum) / detail::vmax(n, V(1));
    V d1(0), d2(0);
    for (Index j = 0; j < steps; ++j) {
      const V x = load(j);
      V d = x - center;
      if constexpr (SkipNan) d = detail::lane_select(detail::is_nan(x), V(0), d);
      d1 = d1 + d;
      d2 = detail::mul_add(d, d, d2);
    }
    return {n, center, fold_sum<Fold>(d1), fold_sum<Fold>(d2), fold_min<Fold>(lo), fold_max<Fold>(hi)};
  }

  // The mean is kept relative to an origin (the first block's shift, an exact
  // element-type value near the data): merging hundreds of blocks then rounds
  // relative to the spread, not to the offset, and x - origin is exact.
  template <class A>
  struct Total {
    A n = 0, origin = 0, mean = 0, m2 = 0;  // mean: of x - origin
    A lo = detail::infinity<A>(), hi = -detail::infinity<A>();
    bool nan = false;  // a NaN was taken (the shift is NaN; infinities alone leave it ±inf)

    template <class S>
    void add(const std::array<S, fields>& lane) {
      const A nb = A(lane[count]);
      if (nb == A(0)) return;
      nan = nan || std::isnan(A(lane[shift]));
      lo = lo < A(lane[min]) ? lo : A(lane[min]);
      hi = hi > A(lane[max]) ? hi : A(lane[max]);
      const A d1 = A(lane[dev_sum]);
      const A m2_b = A(lane[dev_sq]) - d1 * d1 / nb;
      const A clamped_m2_b = m2_b < A(0) ? A(0) : m2_b;  // keeps NaN
      if (n == A(0)) {  // the first block sets the origin
        n = nb, origin = A(lane[shift]), mean = d1 / nb, m2 = clamped_m2_b;
        return;
      }
      const A mean_b = (A(lane[shift]) - origin) + d1 / nb;
      const A total = n + nb;
      const A delta = mean_b - mean;
      mean += delta * (nb / total);
      m2 += clamped_m2_b + delta * delta * (n * nb / total);
      n = total;
    }
  };

  // Deviations whose squares overflow, or are so small that their squares
  // underflow in the element type, are recomputed in long double.
  template <class T, class A>
  static bool needs_rescue(const Total<A>& t) {
    const A range = t.hi - t.lo;
    return !std::isfinite(t.m2) || !std::isfinite(t.origin + t.mean) || (range > A(0) && range * range < tiny_square<T, A>());
  }
};

}  // namespace normkit::stats
