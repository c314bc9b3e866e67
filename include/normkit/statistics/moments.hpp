// normkit/statistics/moments.hpp - count, mean, M2 = sum (x - mean)^2, min, max
// (ZScore, LayerNorm).
//
// Each block is reduced twice from cache: first its mean (per lane, or shared
// by the lanes of one slice: the "shift"), then the deviations from it, sum d and sum d^2. Because d is small
// next to x, data like 1e6 + N(0,1) keep their variance in float, and
// sum d^2 - (sum d)^2 / n corrects for the shift not being the exact mean.
// Blocks then merge with Chan's formula in the wide type. min and max tell a
// constant slice exactly (min == max) rather than by a rounded variance; batch
// lanes leave them out (they were two of the first pass's five operations per
// element) and report the bounds -inf and +inf, and the few slices whose
// variance cannot tell them from a constant one (or whose squares may have
// underflowed) are reduced again with them (needs_exact). Scalar lanes (tails,
// the rescue) always keep them.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "common.hpp"

namespace normkit::stats {

struct Moments {
  enum : std::size_t { count, shift, dev_sum, dev_sq, min, max, fields };

  template <bool SkipNan, bool Fold, class V, class Load>
  static std::array<V, fields> reduce(const Load& load, Index steps) {
    using S = detail::scalar_of<V>;
    constexpr bool extrema = wants_exact<Load>::value || detail::is_scalar_lane<V>;
    const V inf(detail::infinity<S>());
    Ways<V> n = ways_of(V(0)), sum = n, lo = ways_of(inf), hi = ways_of(V(-inf));
    for_steps<V>(steps, [&](Index j, int k) {
      const V x = load(j);
      sum[k] = sum[k] + screen<SkipNan>(x, V(0), n[k]);
      if constexpr (!extrema) {
        // left out: see needs_exact
      } else if constexpr (SkipNan) {
        const auto nan = detail::is_nan(x);
        lo[k] = detail::vmin(lo[k], detail::lane_select(nan, inf, x));
        hi[k] = detail::vmax(hi[k], detail::lane_select(nan, V(-inf), x));
      } else {
        lo[k] = detail::vmin(lo[k], x);
        hi[k] = detail::vmax(hi[k], x);
      }
    });
    const V count = count_of<SkipNan, Fold>(n, steps);
    const V center = fold<Fold, Sum>(sum) / detail::vmax(count, V(1));
    Ways<V> d1 = ways_of(V(0)), d2 = d1;
    for_steps<V>(steps, [&](Index j, int k) {
      const V x = load.again(j);
      V d = x - center;
      if constexpr (SkipNan) d = detail::lane_select(detail::is_nan(x), V(0), d);
      d1[k] = d1[k] + d;
      d2[k] = detail::mul_add(d, d, d2[k]);
    });
    if constexpr (!extrema)
      return {count, center, fold<Fold, Sum>(d1), fold<Fold, Sum>(d2), V(-inf), inf};
    else
      return {count, center, fold<Fold, Sum>(d1), fold<Fold, Sum>(d2), fold<Fold, Min>(lo), fold<Fold, Max>(hi)};
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
      // Two divisions per block, not four: strided chunks merge a block per
      // lane (z-score, float, ~4 MiB, RowMajor axis 0: 0.35 -> 0.38 of y = c*x).
      const A d1 = A(lane[dev_sum]);
      const A d1_mean = d1 / nb;
      const A m2_b = A(lane[dev_sq]) - d1 * d1_mean;
      const A clamped_m2_b = m2_b < A(0) ? A(0) : m2_b;  // keeps NaN
      if (n == A(0)) {  // the first block sets the origin
        n = nb, origin = A(lane[shift]), mean = d1_mean, m2 = clamped_m2_b;
        return;
      }
      const A mean_b = (A(lane[shift]) - origin) + d1_mean;
      const A total = n + nb;
      const A delta = mean_b - mean;
      const A weight = nb / total;
      mean += delta * weight;
      m2 += clamped_m2_b + delta * delta * (n * weight);
      n = total;
    }

    /// The mean, or a constant slice's value exactly.
    A center() const { return hi == lo ? lo : origin + mean; }
  };

  // A total without extrema (lo -inf, hi +inf: a batch pass) whose variance
  // is within the rounding of a constant slice's (a spread below T's epsilon
  // times the mean), or small enough that range^2 may be below tiny_square
  // (m2 <= n * range^2), is reduced again with them: min == max is then
  // exact, and needs_rescue sees the range. Every other slice has min < max,
  // so leaving them out changes no result.
  template <class T, class A>
  static bool needs_exact(const Total<A>& t) {
    return bool(exact_test<T>(t.n, t.origin + t.mean, t.m2, t.lo, t.hi));
  }

  // Deviations whose squares overflow, or are so small that their squares
  // underflow in the element type, are recomputed in long double.
  template <class T, class A>
  static bool needs_rescue(const Total<A>& t) {
    return bool(rescue_test<T>(t.origin + t.mean, t.m2, t.lo, t.hi));
  }

  // The same tests for width_of<D> consecutive totals at once, in lanes.
  template <class T, class D, class A>
  static auto needs_exact_lanes(const Total<A>* t) {
    using detail::lanes_across;
    return exact_test<T>(lanes_across<D>(t, &Total<A>::n),
                         lanes_across<D>(t, &Total<A>::origin) + lanes_across<D>(t, &Total<A>::mean),
                         lanes_across<D>(t, &Total<A>::m2), lanes_across<D>(t, &Total<A>::lo),
                         lanes_across<D>(t, &Total<A>::hi));
  }
  template <class T, class D, class A>
  static auto needs_rescue_lanes(const Total<A>* t) {
    using detail::lanes_across;
    return rescue_test<T>(lanes_across<D>(t, &Total<A>::origin) + lanes_across<D>(t, &Total<A>::mean),
                          lanes_across<D>(t, &Total<A>::m2), lanes_across<D>(t, &Total<A>::lo),
                          lanes_across<D>(t, &Total<A>::hi));
  }

  // Written once over V, the wide type or a batch of it (the results are
  // masks for batches).
  template <class T, class V>
  static auto exact_test(const V& n, const V& mean, const V& m2, const V& lo, const V& hi) {
    using A = detail::scalar_of<V>;
    const V inf(detail::infinity<A>()), tiny(tiny_square<T, A>());
    const V spread = V(A(std::numeric_limits<T>::epsilon())) * mean, spread2 = spread * spread;
    const V floor = detail::lane_select(spread2 < tiny, tiny, spread2);  // std::max's NaN handling
    return detail::both(detail::both(lo == -inf, hi == inf), m2 <= n * floor);
  }
  template <class T, class V>
  static auto rescue_test(const V& mean, const V& m2, const V& lo, const V& hi) {
    using A = detail::scalar_of<V>;
    const V range = hi - lo;
    return detail::either(detail::either(!detail::is_finite(m2), !detail::is_finite(mean)),
                          detail::both(range > V(0), range * range < V(tiny_square<T, A>())));
  }
};

}  // namespace normkit::stats
