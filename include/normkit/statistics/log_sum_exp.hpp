// normkit/statistics/log_sum_exp.hpp - max and sum exp(x - max) (Softmax,
// LogSoftmax).
//
// Per block: the lane maxima, then the sum of exp(x - lane max) from cache, so
// exp never overflows; blocks merge by rescaling to the larger maximum. A lane
// that is all -inf contributes nothing (exp is taken relative to 0 there, not
// -inf, which would give NaN). A NaN or a +inf makes the sum NaN, as IEEE
// arithmetic and PyTorch do.
#pragma once

#include <cmath>

#include "common.hpp"

namespace normkit::stats {

struct LogSumExp {
  enum : std::size_t { count, max, sum_exp, fields };

  template <bool SkipNan, bool Fold, class V, class Load>
  static std::array<V, fields> reduce(const Load& load, Index steps) {
    using S = detail::scalar_of<V>;
    const V minus_inf(-detail::infinity<S>());
    V n(0), m(minus_inf);
    for (Index j = 0; j < steps; ++j) m = detail::vmax(m, screen<SkipNan>(load(j), minus_inf, n));
    finish_count<SkipNan>(n, steps);
    m = fold_max<Fold>(m);
    const V base = detail::lane_select(m == minus_inf, V(0), m);
    V s(0);
    for (Index j = 0; j < steps; ++j) {
      V x = load(j);
      if constexpr (SkipNan) x = detail::lane_select(detail::is_nan(x), minus_inf, x);
      s = s + detail::vexp(x - base);
    }
    return {fold_sum<Fold>(n), m, fold_sum<Fold>(s)};
  }

  template <class A>
  struct Total {
    A n = 0, m = -detail::infinity<A>(), s = 0;

    template <class S>
    void add(const std::array<S, fields>& lane) {
      const A mb = A(lane[max]), sb = A(lane[sum_exp]);
      n += A(lane[count]);
      if (std::isnan(sb) || std::isnan(s)) {
        s = detail::quiet_nan<A>();
        return;
      }
      const A top = m > mb ? m : mb;
      if (top == -detail::infinity<A>()) return;
      s = (m == -detail::infinity<A>() ? A(0) : s * std::exp(m - top)) +
          (mb == -detail::infinity<A>() ? A(0) : sb * std::exp(mb - top));
      m = top;
    }
  };

  template <class T, class A>
  static bool needs_rescue(const Total<A>&) {
    return false;
  }
};

}  // namespace normkit::stats
