// normkit/statistics/linear_sum.hpp - sum x (SumToOne) or sum |x| (L1Norm).
#pragma once

#include <cmath>

#include "common.hpp"

namespace normkit::stats {

template <bool Absolute>
struct LinearSum {
  enum : std::size_t { count, sum, nan_seen, fields };

  // A NaN sum can also come from +inf and -inf, which SumToOne treats as a
  // degenerate slice rather than a NaN one, hence the separate NaN record.
  template <bool SkipNan, bool Fold, class V, class Load>
  static std::array<V, fields> reduce(const Load& load, Index steps) {
    V n(0), s(0), nan(0);
    for (Index j = 0; j < steps; ++j) {
      const V x = screen<SkipNan>(load(j), V(0), n);
      note_nan<SkipNan>(x, nan);
      s = s + (Absolute ? detail::vabs(x) : x);
    }
    finish_count<SkipNan>(n, steps);
    return {fold_sum<Fold>(n), fold_sum<Fold>(s), fold_max<Fold>(nan)};
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
  // total is recomputed in long double (which also confirms a real infinity).
  template <class T, class A>
  static bool needs_rescue(const Total<A>& t) {
    return std::isinf(t.value());
  }
};

}  // namespace normkit::stats
