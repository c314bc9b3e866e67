// normkit/statistics/linear_sum.hpp - sum x (SumToOne) or sum |x| (L1Norm).
#pragma once

#include <cmath>

#include "common.hpp"

namespace normkit::stats {

template <bool Absolute>
struct LinearSum {
  enum : std::size_t { count, sum, nan_seen, fields };

  // A NaN sum can also come from +inf and -inf, which SumToOne treats as a
  // degenerate slice rather than a NaN one, hence the separate NaN record; a
  // sum of |x| is NaN only for a NaN input and needs none. Batches skip the
  // record (a compare and a blend per element, as much as the sum itself): a
  // NaN sum sends the slice to the rescue pass, whose scalar lanes keep it.
  template <bool SkipNan, bool Fold, class V, class Load>
  static std::array<V, fields> reduce(const Load& load, Index steps) {
    Ways<V> n = ways_of(V(0)), s = n, nan = n;
    for_steps<V>(steps, [&](Index j, int k) {
      const V x = screen<SkipNan>(load(j), V(0), n[k]);
      if constexpr (!Absolute && detail::is_scalar_lane<V>) note_nan<SkipNan>(x, nan[k]);
      s[k] = s[k] + (Absolute ? detail::vabs(x) : x);
    });
    return {count_of<SkipNan, Fold>(n, steps), fold<Fold, Sum>(s), fold<Fold, Max>(nan)};
  }

  template <class A>
  struct Total {
    A n = 0;
    CompensatedSum<A> s;
    bool nan = false;

    template <class S>
    void add(const std::array<S, fields>& lane) {
      n += A(lane[count]);
      s.add(A(lane[sum]));
      nan = nan || lane[nan_seen] != S(0);
    }
    A value() const { return s.value(); }
  };

  // A float block partial overflows long before the true sum does; an infinite
  // total is recomputed in long double (which also confirms a real infinity),
  // and so is a NaN sum of x, to tell a NaN input from +inf with -inf.
  template <class T, class A>
  static bool needs_rescue(const Total<A>& t) {
    return Absolute ? std::isinf(t.value()) : !std::isfinite(t.value());
  }
};

}  // namespace normkit::stats
