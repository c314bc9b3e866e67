// normkit/functors/power_norm.hpp - y = x / max(||x||_p, epsilon), runtime p.
//
// Written only against the public protocol (normkit/ext.hpp): a statistic
// object holding p, a forward that reuses ext::SliceMap, and a backward map
// of its own.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>

#include "../ext.hpp"

namespace normkit {
namespace stats {

/// max |x| and sum (|x| / max)^p, merged at the larger maximum, so that
/// neither |x|^p overflows nor small terms vanish (1 <= p < inf). With Dot,
/// also sum dy * x (operand 1) for the backward. Each block's partial
/// carries p, so that totals (default-constructed) rescale merges with it.
template <bool Dot>
struct PowerSum {
  enum : std::size_t { count, max_abs, scaled, power, dot, nan_seen, fields };

  double p = 2;

  template <bool SkipNan, bool Fold, class V, class Load>
  std::array<V, fields> reduce(const Load& load, Index steps) const {
    using S = ext::scalar_of<V>;
    ext::Ways<V> n = ext::ways_of(V(0)), m = n, nan = n;
    ext::for_steps<V>(steps, [&](Index j, int k) {
      const V x = ext::screen<SkipNan>(load(j), V(0), n[k]);
      ext::note_nan<SkipNan>(x, nan[k]);
      m[k] = ext::vmax(m[k], ext::vabs(x));
    });
    const V top = ext::fold<Fold, ext::Max>(m);
    const V inverse = V(1) / ext::lane_select(top == V(0), V(1), top);
    const V exponent(static_cast<S>(p));
    ext::Ways<V> s = ext::ways_of(V(0)), d = s;
    ext::for_steps<V>(steps, [&](Index j, int k) {
      V x = load.again(j);
      if constexpr (SkipNan) x = ext::lane_select(ext::is_nan(x), V(0), x);
      s[k] = s[k] + ext::vpow(ext::vabs(x) * inverse, exponent);
      if constexpr (Dot) {
        V dy = load.template at<1>(j);
        if constexpr (SkipNan) dy = ext::lane_select(ext::is_nan(load.again(j)), V(0), dy);
        d[k] = ext::mul_add(dy, x, d[k]);
      }
    });
    return {ext::count_of<SkipNan, Fold>(n, steps), top, ext::fold<Fold, ext::Sum>(s), exponent,
            ext::fold<Fold, ext::Sum>(d), ext::fold<Fold, ext::Max>(nan)};
  }

  template <class A>
  struct Total {
    A n = 0, m = 0, s = 0, p = 2;  // sum (|x| / m)^p
    ext::CompensatedSum<A> d;
    bool nan = false;

    template <class S>
    void add(const std::array<S, fields>& lane) {
      const A mb = A(lane[max_abs]), sb = A(lane[scaled]);
      p = A(lane[power]);
      n += A(lane[count]);
      nan = nan || lane[nan_seen] != S(0);
      d.add(A(lane[dot]));
      if (mb == A(0)) return;
      if (mb > m) {
        s = (m == A(0) ? A(0) : s * std::pow(m / mb, p)) + sb;
        m = mb;
      } else {
        s += sb * std::pow(mb / m, p);
      }
    }

    /// ||x||_p (inf for an infinite element, NaN for a NaN).
    A norm() const { return std::isinf(m) ? m : m * std::pow(s, A(1) / p); }
  };

  template <class T, class A>
  static bool needs_rescue(const Total<A>&) {
    return false;
  }
};

}  // namespace stats

/// Unit p-norm per slice, as PyTorch F.normalize(x, p): y = x / max(||x||_p,
/// epsilon) for any runtime 1 <= p < inf (p = 1: L1Norm, p = 2: L2Norm). The
/// norm is taken relative to max |x|, so no power overflows. With epsilon = 0
/// a zero slice stays zero; an infinite element makes its slice [NaN where x
/// is ±inf, 0 elsewhere].
template <class T>
struct PowerNorm {
  using value_type = T;
  using statistic = stats::PowerSum<false>;
  static constexpr const char* name = "PowerNorm";
  static constexpr bool backward_from_output = false;

  T p = 2;
  T epsilon = T(1e-12);
  NanPolicy nan_policy = NanPolicy::propagate;

  void validate(ext::Index) const {
    if (!(p >= T(1)) || !std::isfinite(p)) ext::fail<option_error>(name, "p must be finite and >= 1, got ", p);
    ext::check_epsilon(name, epsilon);
  }

  statistic make_statistic() const { return {double(p)}; }

  /// The options a saved statistic depends on (normkit::Saved checks them).
  auto options() const { return std::make_tuple(p, epsilon, nan_policy); }

  /// What normkit::forward saves per slice: the norm ||x||_p (unclamped).
  static constexpr std::array<const char*, 1> saved_names{"norm"};
  template <class Total>
  std::array<double, 1> save(const Total& t) const {
    return {t.nan ? ext::quiet_nan<double>() : double(t.norm())};
  }

  template <class Total>
  auto finalize(const Total& t) const {
    using A = ext::wide_t<Total>;
    if (t.nan) return ext::nan_slice<A>();
    const A norm = t.norm();
    return ext::divide_by<A>(norm > A(epsilon) || std::isnan(norm) ? norm : A(epsilon));
  }

  /// dx = dy / N - sign(x) (|x| / N)^(p-1) (sum dy * x) / N^2 where the norm
  /// N is not clamped (sign(0) = 0); dy / epsilon where it is; 0 for a zero
  /// slice with epsilon = 0.
  struct Gradient {
    using value_type = T;
    using statistic = stats::PowerSum<true>;
    using saved_statistic = ext::Dot;  // with the saved norm
    static constexpr std::size_t inputs = 2;  // x, dy
    static constexpr bool zeroes_skipped = true;

    // dx = a * dy + b * sign(x) * (|x| * q)^e
    struct map : ext::CoefficientMap<4> {
      template <bool, bool, class V, std::size_t K>
      static V apply(const std::array<V, 4>& c, const std::array<V, K>& in, const V&, const V&) {
        const V x = in[0], magnitude = ext::vabs(x);
        const V signed_power = ext::vpow(magnitude * c[2], c[3]) * (x / magnitude);
        return ext::mul_add(c[1], ext::lane_select(x == V(0), V(0), signed_power), c[0] * in[1]);
      }
    };

    PowerNorm f;
    NanPolicy nan_policy;

    statistic make_statistic() const { return {double(f.p)}; }

    template <class Total>
    auto finalize(const Total& t) const {
      return coefficients<ext::wide_t<Total>>(t.nan, t.norm(), t.d.value());
    }
    template <class Total>
    auto finalize(const Total& t, const std::array<double, 1>& saved) const {
      using A = ext::wide_t<Total>;
      return coefficients<A>(t.nan, A(saved[0]), t.d.value());
    }

    template <class A>
    ext::Coefficients<A, 4> coefficients(bool nan, A norm, A dot) const {
      using C = ext::Coefficients<A, 4>;
      const A eps = A(f.epsilon);
      if (nan || !std::isfinite(norm)) return C::constant(ext::quiet_nan<A>());
      if (!(norm > eps)) return eps == A(0) ? C::constant(A(0)) : C{{A(1) / eps, 0, 0, 1}};
      return C{{A(1) / norm, -dot / (norm * norm), A(1) / norm, A(f.p) - A(1)}};
    }
  };
  Gradient gradient() const { return {*this, nan_policy}; }

  NORMKIT_CALL_OPERATORS
  NORMKIT_BACKWARD_OPERATORS
};

}  // namespace normkit
