// normkit/statistics/extrema.hpp - max |x| (MaxNorm), min/max (MinMax) and
// max alone (Softmax).
//
// max/min drop NaNs (maxps semantics), so without SkipNan these also record
// whether a NaN was seen (note_nan), for the propagate policy.
#pragma once

#include "common.hpp"

namespace normkit::stats {

struct MaxAbs {
  enum : std::size_t { count, max_abs, nan_seen, fields };

  template <bool SkipNan, bool Fold, class V, class Load>
  static std::array<V, fields> reduce(const Load& load, Index steps) {
    Ways<V> n = ways_of(V(0)), m = n, nan = n;
    for_steps<V>(steps, [&](Index j, int k) {
      const V x = screen<SkipNan>(load(j), V(0), n[k]);
      note_nan<SkipNan>(x, nan[k]);
      m[k] = detail::vmax(m[k], detail::vabs(x));
    });
    return {count_of<SkipNan, Fold>(n, steps), fold<Fold, Max>(m), fold<Fold, Max>(nan)};
  }

  template <class A>
  struct Total {
    A n = 0, m = 0;
    bool nan = false;

    template <class S>
    void add(const std::array<S, fields>& lane) {
      n += A(lane[count]);
      m = m > A(lane[max_abs]) ? m : A(lane[max_abs]);
      nan = nan || lane[nan_seen] != S(0);
    }
  };

  template <class T, class A>
  static bool needs_rescue(const Total<A>&) {
    return false;
  }
};

// The largest element and, with WithMin, the smallest (NaNs excluded, but
// recorded without SkipNan). A slice with no non-NaN value has lo = +inf and
// hi = -inf.
template <bool WithMin>
struct Extrema {
  enum : std::size_t { count, min, max, nan_seen, fields };

  template <bool SkipNan, bool Fold, class V, class Load>
  static std::array<V, fields> reduce(const Load& load, Index steps) {
    using S = detail::scalar_of<V>;
    const V inf(detail::infinity<S>());
    Ways<V> n = ways_of(V(0)), nan = n, lo = ways_of(inf), hi = ways_of(V(-inf));
    for_steps<V>(steps, [&](Index j, int k) {
      const V x = load(j);
      if constexpr (SkipNan) {
        const auto missing = detail::is_nan(x);
        n[k] = n[k] + detail::lane_select(missing, V(0), V(1));
        if constexpr (WithMin) lo[k] = detail::vmin(lo[k], detail::lane_select(missing, inf, x));
        hi[k] = detail::vmax(hi[k], detail::lane_select(missing, V(-inf), x));
      } else {
        note_nan<SkipNan>(x, nan[k]);
        if constexpr (WithMin) lo[k] = detail::vmin(lo[k], x);
        hi[k] = detail::vmax(hi[k], x);
      }
    });
    return {count_of<SkipNan, Fold>(n, steps), fold<Fold, Min>(lo), fold<Fold, Max>(hi), fold<Fold, Max>(nan)};
  }

  template <class A>
  struct Total {
    A n = 0, lo = detail::infinity<A>(), hi = -detail::infinity<A>();
    bool nan = false;

    template <class S>
    void add(const std::array<S, fields>& lane) {
      n += A(lane[count]);
      lo = lo < A(lane[min]) ? lo : A(lane[min]);
      hi = hi > A(lane[max]) ? hi : A(lane[max]);
      nan = nan || lane[nan_seen] != S(0);
    }
  };

  template <class T, class A>
  static bool needs_rescue(const Total<A>&) {
    return false;
  }
};

using MinMaxRange = Extrema<true>;
using Maximum = Extrema<false>;

}  // namespace normkit::stats
