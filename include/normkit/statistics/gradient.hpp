// normkit/statistics/gradient.hpp - the reductions the backward kernels need:
// the forward's statistic of x (or y) together with sums over dy in the same
// walk. Operand 0 is x (or the forward's output y), operand 1 is dy, and
// load.gamma(j) the weight at the lane's position (1 without gamma).
//
// Under SkipNan a NaN in operand 0 removes the position from every sum,
// whatever dy holds there. Without it NaNs are recorded (nan_seen) so that
// the kernel can write a NaN slice.
#pragma once

#include <cmath>
#include <limits>

#include "common.hpp"
#include "moments.hpp"

namespace normkit::stats {

// dy with the positions of NaN x removed (SkipNan), else dy.
template <bool SkipNan, class V>
V screen_dy(const V& x, const V& dy) {
  if constexpr (SkipNan)
    return detail::lane_select(detail::is_nan(x), V(0), dy);
  else
    return dy;
}

/// sum dy and max |y| (LogSoftmax backward, from the forward's output y: the
/// largest |y| tells a fully masked slice, all zeros, from a real one).
/// Softmax's backward, sum dy * y, is Dot.
struct OutputSum {
  enum : std::size_t { count, dy_sum, max_abs, nan_seen, fields };

  template <bool SkipNan, bool Fold, class V, class Load>
  std::array<V, fields> reduce(const Load& load, Index steps) const {
    Ways<V> n = ways_of(V(0)), s = n, m = n, nan = n;
    for_steps<V>(steps, [&](Index j, int k) {
      const V raw = load(j);
      const V dy = screen_dy<SkipNan>(raw, load.template at<1>(j));
      const V y = screen<SkipNan>(raw, V(0), n[k]);
      note_nan<SkipNan>(y, nan[k]);
      s[k] = s[k] + dy;
      m[k] = detail::vmax(m[k], detail::vabs(y));
    });
    return {count_of<SkipNan, Fold>(n, steps), fold<Fold, Sum>(s), fold<Fold, Max>(m), fold<Fold, Max>(nan)};
  }

  template <class A>
  struct Total {
    A n = 0, m = 0;
    CompensatedSum<A> s;
    bool nan = false;

    template <class S>
    void add(const std::array<S, fields>& lane) {
      n += A(lane[count]);
      s.add(A(lane[dy_sum]));
      m = m > A(lane[max_abs]) ? m : A(lane[max_abs]);
      nan = nan || lane[nan_seen] != S(0);
    }
  };

  template <class T, class A>
  static bool needs_rescue(const Total<A>&) {
    return false;
  }
};

/// sum x (or sum |x|) and sum dy * x (SumToOne and L1Norm backward).
template <bool Absolute>
struct LinearDot {
  enum : std::size_t { count, sum, dot, nan_seen, fields };

  template <bool SkipNan, bool Fold, class V, class Load>
  std::array<V, fields> reduce(const Load& load, Index steps) const {
    Ways<V> n = ways_of(V(0)), s = n, d = n, nan = n;
    for_steps<V>(steps, [&](Index j, int k) {
      const V raw = load(j);
      const V dy = screen_dy<SkipNan>(raw, load.template at<1>(j));
      const V x = screen<SkipNan>(raw, V(0), n[k]);
      note_nan<SkipNan>(x, nan[k]);
      s[k] = s[k] + (Absolute ? detail::vabs(x) : x);
      d[k] = detail::mul_add(dy, x, d[k]);
    });
    return {count_of<SkipNan, Fold>(n, steps), fold<Fold, Sum>(s), fold<Fold, Sum>(d), fold<Fold, Max>(nan)};
  }

  template <class A>
  struct Total {
    A n = 0;
    CompensatedSum<A> s, d;
    bool nan = false;

    template <class S>
    void add(const std::array<S, fields>& lane) {
      n += A(lane[count]);
      s.add(A(lane[sum]));
      d.add(A(lane[dot]));
      nan = nan || lane[nan_seen] != S(0);
    }
  };

  // As LinearSum: block partials overflow before the true sum does.
  template <class T, class A>
  static bool needs_rescue(const Total<A>& t) {
    return !std::isfinite(t.s.value()) && !t.nan;
  }
};

/// sum x^2, max |x| and sum g * x with g = dy * gamma (L2Norm and RMSNorm
/// backward).
struct SquareDot {
  enum : std::size_t { count, sum_sq, max_abs, dot, nan_seen, fields };

  template <bool SkipNan, bool Fold, class V, class Load>
  std::array<V, fields> reduce(const Load& load, Index steps) const {
    Ways<V> n = ways_of(V(0)), s = n, m = n, d = n, nan = n;
    for_steps<V>(steps, [&](Index j, int k) {
      const V raw = load(j);
      const V g = screen_dy<SkipNan>(raw, load.template at<1>(j) * load.gamma(j));
      const V x = screen<SkipNan>(raw, V(0), n[k]);
      note_nan<SkipNan>(x, nan[k]);
      s[k] = detail::mul_add(x, x, s[k]);
      m[k] = detail::vmax(m[k], detail::vabs(x));
      d[k] = detail::mul_add(g, x, d[k]);
    });
    return {count_of<SkipNan, Fold>(n, steps), fold<Fold, Sum>(s), fold<Fold, Max>(m), fold<Fold, Sum>(d),
            fold<Fold, Max>(nan)};
  }

  template <class A>
  struct Total {
    A n = 0, m = 0;
    CompensatedSum<A> s, d;
    bool nan = false;

    template <class S>
    void add(const std::array<S, fields>& lane) {
      n += A(lane[count]);
      s.add(A(lane[sum_sq]));
      d.add(A(lane[dot]));
      m = m > A(lane[max_abs]) ? m : A(lane[max_abs]);
      nan = nan || lane[nan_seen] != S(0);
    }
    A value() const { return s.value(); }
  };

  // As SumSquares: squares that overflow or underflow the element type.
  template <class T, class A>
  static bool needs_rescue(const Total<A>& t) {
    return !t.nan && (std::isinf(t.value()) || !std::isfinite(t.d.value()) ||
                      (t.m > A(0) && t.m * t.m < tiny_square<T, A>()));
  }
};

/// Moments of x (count, mean, M2, min, max: see moments.hpp) with sum g and
/// sum g * (x - mean), g = dy * gamma (ZScore and LayerNorm backward). The
/// second sum is taken from each block's shift and moved to the slice's
/// origin when blocks merge, so it is as accurate as M2 at large offsets.
struct MomentsDot {
  enum : std::size_t { count, shift, dev_sum, dev_sq, min, max, g_sum, g_dev, fields };

  template <bool SkipNan, bool Fold, class V, class Load>
  std::array<V, fields> reduce(const Load& load, Index steps) const {
    const auto m = Moments{}.template reduce<SkipNan, Fold, V>(load, steps);
    const V center = m[Moments::shift];
    Ways<V> gs = ways_of(V(0)), gd = gs;
    for_steps<V>(steps, [&](Index j, int k) {
      const V x = load.again(j);
      const V g = screen_dy<SkipNan>(x, load.template at<1>(j) * load.gamma(j));
      V d = x - center;
      if constexpr (SkipNan) d = detail::lane_select(detail::is_nan(x), V(0), d);
      gs[k] = gs[k] + g;
      gd[k] = detail::mul_add(g, d, gd[k]);
    });
    return {m[Moments::count], center, m[Moments::dev_sum], m[Moments::dev_sq], m[Moments::min], m[Moments::max],
            fold<Fold, Sum>(gs), fold<Fold, Sum>(gd)};
  }

  template <class A>
  struct Total {
    using wide_type = A;
    Moments::Total<A> moments;
    A g = 0, gx = 0;  // sum g, and sum g * (x - origin)
    bool first = true;

    template <class S>
    void add(const std::array<S, fields>& lane) {
      if (A(lane[count]) == A(0)) return;
      std::array<S, Moments::fields> m;
      for (std::size_t f = 0; f < Moments::fields; ++f) m[f] = lane[f];
      moments.add(m);
      const A shift_b = A(lane[shift]);
      const A g_b = A(lane[g_sum]);
      // sum g (x - origin) = sum g (x - shift_b) + (shift_b - origin) sum g
      const A moved = shift_b - moments.origin;
      gx += A(lane[g_dev]) + (moved != A(0) ? moved * g_b : A(0));
      g += g_b;
    }

    /// sum g * (x - mean).
    A centered_dot() const { return gx - moments.mean * g; }
  };

  template <class T, class A>
  static bool needs_exact(const Total<A>& t) {
    return Moments::template needs_exact<T>(t.moments);
  }
  template <class T, class A>
  static bool needs_rescue(const Total<A>& t) {
    return Moments::template needs_rescue<T>(t.moments);
  }
};

/// max |x|, how many entries reach it, and sum dy * x (MaxNorm backward).
struct MaxDot {
  enum : std::size_t { count, max_abs, ties, dot, nan_seen, fields };

  template <bool SkipNan, bool Fold, class V, class Load>
  std::array<V, fields> reduce(const Load& load, Index steps) const {
    Ways<V> n = ways_of(V(0)), m = n, nan = n;
    for_steps<V>(steps, [&](Index j, int k) {
      const V x = screen<SkipNan>(load(j), V(0), n[k]);
      note_nan<SkipNan>(x, nan[k]);
      m[k] = detail::vmax(m[k], detail::vabs(x));
    });
    const V top = fold<Fold, Max>(m);
    Ways<V> c = ways_of(V(0)), d = c;
    for_steps<V>(steps, [&](Index j, int k) {
      const V raw = load.again(j);
      const V dy = screen_dy<SkipNan>(raw, load.template at<1>(j));
      const V x = SkipNan ? detail::lane_select(detail::is_nan(raw), V(0), raw) : raw;
      c[k] = c[k] + detail::lane_select(detail::vabs(x) == top, V(1), V(0));
      d[k] = detail::mul_add(dy, x, d[k]);
    });
    return {count_of<SkipNan, Fold>(n, steps), top, fold<Fold, Sum>(c), fold<Fold, Sum>(d), fold<Fold, Max>(nan)};
  }

  template <class A>
  struct Total {
    A n = 0, m = 0, c = 0;
    CompensatedSum<A> d;
    bool nan = false;

    template <class S>
    void add(const std::array<S, fields>& lane) {
      const A mb = A(lane[max_abs]);
      n += A(lane[count]);
      d.add(A(lane[dot]));
      nan = nan || lane[nan_seen] != S(0);
      if (mb > m) m = mb, c = A(lane[ties]);
      else if (mb == m) c += A(lane[ties]);
    }
  };

  template <class T, class A>
  static bool needs_rescue(const Total<A>&) {
    return false;
  }
};

/// min, max, how many entries reach each, sum dy and sum dy * (x - min)
/// (MinMax backward). The last is kept relative to the running minimum and
/// moved when the minimum falls.
struct RangeDot {
  enum : std::size_t { count, min, max, ties_min, ties_max, dy_sum, dy_dev, nan_seen, fields };

  template <bool SkipNan, bool Fold, class V, class Load>
  std::array<V, fields> reduce(const Load& load, Index steps) const {
    using S = detail::scalar_of<V>;
    const V inf(detail::infinity<S>());
    Ways<V> n = ways_of(V(0)), nan = n, lo = ways_of(inf), hi = ways_of(V(-inf));
    for_steps<V>(steps, [&](Index j, int k) {
      const V x = load(j);
      if constexpr (SkipNan) {
        const auto missing = detail::is_nan(x);
        n[k] = n[k] + detail::lane_select(missing, V(0), V(1));
        lo[k] = detail::vmin(lo[k], detail::lane_select(missing, inf, x));
        hi[k] = detail::vmax(hi[k], detail::lane_select(missing, V(-inf), x));
      } else {
        note_nan<SkipNan>(x, nan[k]);
        lo[k] = detail::vmin(lo[k], x);
        hi[k] = detail::vmax(hi[k], x);
      }
    });
    const V bottom = fold<Fold, Min>(lo), top = fold<Fold, Max>(hi);
    // The deviations are taken from a finite base (an empty lane's min is +inf).
    const V base = detail::lane_select(bottom == inf, V(0), bottom);
    Ways<V> cl = ways_of(V(0)), ch = cl, s = cl, d = cl;
    for_steps<V>(steps, [&](Index j, int k) {
      const V raw = load.again(j);
      const V dy = screen_dy<SkipNan>(raw, load.template at<1>(j));
      const V x = SkipNan ? detail::lane_select(detail::is_nan(raw), base, raw) : raw;
      cl[k] = cl[k] + detail::lane_select(raw == bottom, V(1), V(0));  // a NaN is no tie
      ch[k] = ch[k] + detail::lane_select(raw == top, V(1), V(0));
      s[k] = s[k] + dy;
      d[k] = detail::mul_add(dy, x - base, d[k]);
    });
    return {count_of<SkipNan, Fold>(n, steps), bottom, top, fold<Fold, Sum>(cl), fold<Fold, Sum>(ch),
            fold<Fold, Sum>(s), fold<Fold, Sum>(d), fold<Fold, Max>(nan)};
  }

  template <class A>
  struct Total {
    A n = 0, lo = detail::infinity<A>(), hi = -detail::infinity<A>(), c_lo = 0, c_hi = 0;
    A s = 0, d = 0;  // sum dy, sum dy * (x - lo)
    bool nan = false;

    template <class S>
    void add(const std::array<S, fields>& lane) {
      const A nb = A(lane[count]);
      nan = nan || lane[nan_seen] != S(0);
      if (nb == A(0)) return;
      const A lo_b = A(lane[min]), hi_b = A(lane[max]), s_b = A(lane[dy_sum]), d_b = A(lane[dy_dev]);
      if (n == A(0)) {
        lo = lo_b, hi = hi_b, c_lo = A(lane[ties_min]), c_hi = A(lane[ties_max]), s = s_b, d = d_b, n = nb;
        return;
      }
      const A new_lo = lo < lo_b ? lo : lo_b;
      d += (lo - new_lo) * s + d_b + (lo_b - new_lo) * s_b;
      s += s_b;
      c_lo = lo_b < lo ? A(lane[ties_min]) : lo_b == lo ? c_lo + A(lane[ties_min]) : c_lo;
      c_hi = hi_b > hi ? A(lane[ties_max]) : hi_b == hi ? c_hi + A(lane[ties_max]) : c_hi;
      lo = new_lo;
      hi = hi > hi_b ? hi : hi_b;
      n += nb;
    }
  };

  template <class T, class A>
  static bool needs_rescue(const Total<A>&) {
    return false;
  }
};

/// sum g * x with g = dy * gamma, and max |x| (the backward of SumToOne,
/// L1Norm, L2Norm, PowerNorm and RMSNorm from saved statistics: the forward's
/// own statistic is not reduced again).
struct Dot {
  enum : std::size_t { count, dot, max_abs, nan_seen, fields };

  template <bool SkipNan, bool Fold, class V, class Load>
  std::array<V, fields> reduce(const Load& load, Index steps) const {
    Ways<V> n = ways_of(V(0)), d = n, m = n, nan = n;
    for_steps<V>(steps, [&](Index j, int k) {
      const V raw = load(j);
      const V g = screen_dy<SkipNan>(raw, load.template at<1>(j) * load.gamma(j));
      const V x = screen<SkipNan>(raw, V(0), n[k]);
      note_nan<SkipNan>(x, nan[k]);
      d[k] = detail::mul_add(g, x, d[k]);
      m[k] = detail::vmax(m[k], detail::vabs(x));
    });
    return {count_of<SkipNan, Fold>(n, steps), fold<Fold, Sum>(d), fold<Fold, Max>(m), fold<Fold, Max>(nan)};
  }

  template <class A>
  struct Total {
    A n = 0, m = 0;
    CompensatedSum<A> d;
    bool nan = false;

    template <class S>
    void add(const std::array<S, fields>& lane) {
      n += A(lane[count]);
      d.add(A(lane[dot]));
      m = m > A(lane[max_abs]) ? m : A(lane[max_abs]);
      nan = nan || lane[nan_seen] != S(0);
    }
  };

  // Products that overflow, or that underflow the element type (tiny x).
  template <class T, class A>
  static bool needs_rescue(const Total<A>& t) {
    return !t.nan && (!std::isfinite(t.d.value()) || (t.m > A(0) && t.m * t.m < tiny_square<T, A>()));
  }
};

/// sum dy * y alone (Softmax's backward, from its output y). A NaN in y or dy,
/// and an overflowing product, already show in the sum as NaN or inf; neither
/// a NaN flag nor a range is reduced beside it (Dot's four fields cost the
/// softmax backward a compare, a blend and a max per vector). A sum that is not
/// finite is reduced again in long double: an overflow comes out right, a NaN
/// stays NaN. Products that underflow are not rescued: y of a softmax has a
/// largest value of at least 1/n, next to which they weigh nothing.
struct LeanDot {
  enum : std::size_t { count, dot, fields };

  template <bool SkipNan, bool Fold, class V, class Load>
  std::array<V, fields> reduce(const Load& load, Index steps) const {
    Ways<V> n = ways_of(V(0)), d = n;
    for_steps<V>(steps, [&](Index j, int k) {
      const V raw = load(j);
      const V dy = screen_dy<SkipNan>(raw, load.template at<1>(j));
      d[k] = detail::mul_add(dy, screen<SkipNan>(raw, V(0), n[k]), d[k]);
    });
    return {count_of<SkipNan, Fold>(n, steps), fold<Fold, Sum>(d)};
  }

  template <class A>
  struct Total {
    A n = 0;
    CompensatedSum<A> d;

    template <class S>
    void add(const std::array<S, fields>& lane) {
      n += A(lane[count]);
      d.add(A(lane[dot]));
    }
  };

  template <class T, class A>
  static bool needs_rescue(const Total<A>& t) {
    return !std::isfinite(t.d.value());
  }
};

/// sum g and sum g * (x - origin), g = dy * gamma, with x's range (the
/// backward of ZScore and LayerNorm from a saved mean: MomentsDot without the
/// moments). The deviations are taken from a shift near the data, so the
/// products keep their precision at large offsets: in one pass from the
/// block's first value where the block is finite, else (and under SkipNan)
/// in two passes from the block's mean.
struct CenteredDot {
  enum : std::size_t { count, shift, g_sum, g_dev, min, max, fields };

  template <bool SkipNan, bool Fold, class V, class Load>
  std::array<V, fields> reduce(const Load& load, Index steps) const {
    if constexpr (!SkipNan) {
      using S = detail::scalar_of<V>;
      const V inf(detail::infinity<S>());
      V origin = load.again(0);
      if constexpr (Fold && !detail::is_scalar_lane<V>) origin = V(detail::lanes_of(origin)[0]);
      Ways<V> gs = ways_of(V(0)), gd = gs, lo = ways_of(inf), hi = ways_of(V(-inf));
      for_steps<V>(steps, [&](Index j, int k) {
        const V x = load(j);
        const V g = load.template at<1>(j) * load.gamma(j);
        gs[k] = gs[k] + g;
        gd[k] = detail::mul_add(g, x - origin, gd[k]);
        lo[k] = detail::vmin(lo[k], x);
        hi[k] = detail::vmax(hi[k], x);
      });
      const V g_total = fold<Fold, Sum>(gs), d_total = fold<Fold, Sum>(gd);
      // A NaN or an infinity in x, dy or gamma, or a product that overflowed,
      // leaves a sum that is not finite: such blocks keep the two-pass
      // centring, whose NaN and range rules the kernels rely on.
      if (finite(g_total - g_total + (d_total - d_total)))
        return {count_of<SkipNan, Fold>(gs, steps), origin, g_total, d_total, fold<Fold, Min>(lo), fold<Fold, Max>(hi)};
    }
    return two_pass<SkipNan, Fold, V>(load, steps);
  }

  // Every lane 0 (x - x is 0 for finite x, NaN otherwise).
  template <class V>
  static bool finite(const V& zero) {
    if constexpr (detail::is_scalar_lane<V>) {
      return zero == V(0);
    } else {
      for (const auto l : detail::lanes_of(zero))
        if (!(l == 0)) return false;
      return true;
    }
  }

  template <bool SkipNan, bool Fold, class V, class Load>
  std::array<V, fields> two_pass(const Load& load, Index steps) const {
    // Moments' first pass (kept apart: sharing it changed the forward's machine code).
    using S = detail::scalar_of<V>;
    const V inf(detail::infinity<S>());
    Ways<V> n = ways_of(V(0)), sum = n, lo = ways_of(inf), hi = ways_of(V(-inf));
    for_steps<V>(steps, [&](Index j, int k) {
      const V x = load(j);  // a block that left the one pass is fetched twice: rare
      sum[k] = sum[k] + screen<SkipNan>(x, V(0), n[k]);
      if constexpr (SkipNan) {
        const auto nan = detail::is_nan(x);
        lo[k] = detail::vmin(lo[k], detail::lane_select(nan, inf, x));
        hi[k] = detail::vmax(hi[k], detail::lane_select(nan, V(-inf), x));
      } else {
        lo[k] = detail::vmin(lo[k], x);
        hi[k] = detail::vmax(hi[k], x);
      }
    });
    const V counted = count_of<SkipNan, Fold>(n, steps);
    const V center = fold<Fold, Sum>(sum) / detail::vmax(counted, V(1));
    Ways<V> gs = ways_of(V(0)), gd = gs;
    for_steps<V>(steps, [&](Index j, int k) {
      const V x = load.again(j);
      const V g = screen_dy<SkipNan>(x, load.template at<1>(j) * load.gamma(j));
      V d = x - center;
      if constexpr (SkipNan) d = detail::lane_select(detail::is_nan(x), V(0), d);
      gs[k] = gs[k] + g;
      gd[k] = detail::mul_add(g, d, gd[k]);
    });
    return {counted, center, fold<Fold, Sum>(gs), fold<Fold, Sum>(gd), fold<Fold, Min>(lo), fold<Fold, Max>(hi)};
  }

  template <class A>
  struct Total {
    A n = 0, origin = 0, g = 0, gx = 0;  // sum g, and sum g * (x - origin)
    A lo = detail::infinity<A>(), hi = -detail::infinity<A>();
    bool nan = false;

    template <class S>
    void add(const std::array<S, fields>& lane) {
      const A nb = A(lane[count]);
      if (nb == A(0)) return;
      const A shift_b = A(lane[shift]);
      nan = nan || std::isnan(shift_b);
      lo = lo < A(lane[min]) ? lo : A(lane[min]);
      hi = hi > A(lane[max]) ? hi : A(lane[max]);
      if (n == A(0)) origin = shift_b;
      const A moved = shift_b - origin, g_b = A(lane[g_sum]);
      gx += A(lane[g_dev]) + (moved != A(0) ? moved * g_b : A(0));
      g += g_b;
      n += nb;
    }

    /// sum g * (x - mean).
    A centered_dot(A mean) const { return gx - (mean - origin) * g; }
  };

  // centered_dot moves gx by (mean - origin) * g, where |mean - origin| <=
  // range: totals near the wide type's overflow are reduced again in long
  // double, as are deviations whose squares underflow.
  template <class T, class A>
  static bool needs_rescue(const Total<A>& t) {
    const A range = t.hi - t.lo, huge = std::numeric_limits<A>::max() / 4;
    return !t.nan && (!(std::fabs(t.gx) < huge) ||
                      (range > A(0) && (!(range * std::fabs(t.g) < huge) || range * range < tiny_square<T, A>())));
  }
};

}  // namespace normkit::stats
