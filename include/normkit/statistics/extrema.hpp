// normkit/statistics/extrema.hpp - max |x| (MaxNorm) and min/max (MinMax).
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
    V n(0), m(0), nan(0);
    for (Index j = 0; j < steps; ++j) {
      const V x = screen<SkipNan>(load(j), V(0), n);
      note_nan<SkipNan>(x, nan);
      m = detail::vmax(m, detail::vabs(x));
    }
    finish_count<SkipNan>(n, steps);
    return {fold_sum<Fold>(n), fold_max<Fold>(m), fold_max<Fold>(nan)};
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

struct MinMaxRange {
  enum : std::size_t { count, min, max, nan_seen, fields };

  template <bool SkipNan, bool Fold, class V, class Load>
  static std::array<V, fields> reduce(const Load& load, Index steps) {
    using S = detail::scalar_of<V>;
    V n(0), lo(detail::infinity<S>()), hi(-detail::infinity<S>()), nan(0);
    for (Index j = 0; j < steps; ++j) {
      const V x = load(j);
      note_nan<SkipNan>(x, nan);
      lo = detail::vmin(lo, screen<SkipNan>(x, V(detail::infinity<S>()), n));
      if constexpr (SkipNan)
        hi = detail::vmax(hi, detail::lane_select(detail::is_nan(x), V(-detail::infinity<S>()), x));
      else
        hi = detail::vmax(hi, x);
    }
    finish_count<SkipNan>(n, steps);
    return {fold_sum<Fold>(n), fold_min<Fold>(lo), fold_max<Fold>(hi), fold_max<Fold>(nan)};
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

}  // namespace normkit::stats
