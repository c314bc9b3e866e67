// normkit/statistics/sum_squares.hpp - sum x^2 and max |x| (L2Norm, RMSNorm).
//
// max |x| only tells whether every square underflowed; batch lanes leave it
// out (two of three operations per element) and report the bound +inf, and
// the few slices whose sum of squares is small enough for that to matter are
// reduced again with it (needs_exact). Scalar lanes always keep it.
#pragma once

#include <cmath>

#include "common.hpp"

namespace normkit::stats {

struct SumSquares {
  enum : std::size_t { count, sum_sq, max_abs, fields };

  template <bool SkipNan, bool Fold, class V, class Load>
  static std::array<V, fields> reduce(const Load& load, Index steps) {
    constexpr bool max_abs_kept = wants_exact<Load>::value || detail::is_scalar_lane<V>;
    Ways<V> n = ways_of(V(0)), s = n, m = n;
    for_steps<V>(steps, [&](Index j, int k) {
      const V x = screen<SkipNan>(load(j), V(0), n[k]);
      s[k] = detail::mul_add(x, x, s[k]);
      if constexpr (max_abs_kept) m[k] = detail::vmax(m[k], detail::vabs(x));
    });
    if constexpr (!max_abs_kept)
      return {count_of<SkipNan, Fold>(n, steps), fold<Fold, Sum>(s), V(detail::infinity<detail::scalar_of<V>>())};
    else
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

  // A total without max |x| (+inf: a batch pass) whose sum of squares is
  // below n * tiny_square, which every slice needs_rescue would flag for
  // underflow has (sum <= n * max^2), is reduced again with it: zero slices,
  // and slices of tiny values.
  template <class T, class A>
  static bool needs_exact(const Total<A>& t) {
    return bool(exact_test<T>(t.n, t.value(), t.m));
  }

  // Squares in the element type overflow for |x| beyond sqrt(max) and lose
  // their low bits (or vanish) once x^2 < min_normal / epsilon; such slices
  // are recomputed in long double, whose range holds every square.
  template <class T, class A>
  static bool needs_rescue(const Total<A>& t) {
    return bool(rescue_test<T>(t.value(), t.m));
  }

  // The same tests for width_of<D> consecutive totals at once, in lanes.
  template <class T, class D, class A>
  static auto needs_exact_lanes(const Total<A>* t) {
    return exact_test<T>(detail::lanes_across<D>(t, &Total<A>::n), detail::lanes_across<D>(t, &Total<A>::value),
                         detail::lanes_across<D>(t, &Total<A>::m));
  }
  template <class T, class D, class A>
  static auto needs_rescue_lanes(const Total<A>* t) {
    return rescue_test<T>(detail::lanes_across<D>(t, &Total<A>::value), detail::lanes_across<D>(t, &Total<A>::m));
  }

  // Written once over V, the wide type or a batch of it.
  template <class T, class V>
  static auto exact_test(const V& n, const V& sum, const V& m) {
    using A = detail::scalar_of<V>;
    return detail::both(m == V(detail::infinity<A>()), sum < n * V(tiny_square<T, A>()));
  }
  template <class T, class V>
  static auto rescue_test(const V& sum, const V& m) {
    using A = detail::scalar_of<V>;
    return detail::either(detail::vabs(sum) == V(detail::infinity<A>()),
                          detail::both(m > V(0), m * m < V(tiny_square<T, A>())));
  }
};

}  // namespace normkit::stats
