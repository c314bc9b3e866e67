// normkit/statistics/sum_squares.hpp - sum x^2 and max |x| (L2Norm, RMSNorm).
#pragma once

#include <cmath>

#include "common.hpp"

namespace normkit::stats {

struct SumSquares {
  enum : std::size_t { count, sum_sq, max_abs, fields };

  template <bool SkipNan, bool Fold, class V, class Load>
  static std::array<V, fields> reduce(const Load& load, Index steps) {
    Ways<V> n = ways_of(V(0)), s = n, m = n;
    for_steps<V>(steps, [&](Index j, int k) {
      const V x = screen<SkipNan>(load(j), V(0), n[k]);
      s[k] = detail::mul_add(x, x, s[k]);
      m[k] = detail::vmax(m[k], detail::vabs(x));
    });
    return {count_of<SkipNan, Fold>(n, steps), fold<Fold, Sum>(s), fold<Fold, Max>(m)};
  }

  template <class A>
  struct Total {
    A n = 0;
    CompensatedSum<A> s;
    A m = 0;

    template <class S>
    void add(const std::array<S, fields>& lane) {
      n += A(lane[count]);
      s.add(A(lane[sum_sq]));
      m = m > A(lane[max_abs]) ? m : A(lane[max_abs]);
    }
    A value() const { return s.value(); }
  };

  // Squares in the element type overflow for |x| beyond sqrt(max) and lose
  // their low bits (or vanish) once x^2 < min_normal / epsilon; such slices
  // are recomputed in long double, whose range holds every square.
  template <class T, class A>
  static bool needs_rescue(const Total<A>& t) {
    return std::isinf(t.value()) || (t.m > A(0) && t.m * t.m < tiny_square<T, A>());
  }
};

}  // namespace normkit::stats
