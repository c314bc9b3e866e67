// normkit/ext/map.hpp - how a kernel's per-slice decision becomes the
// element-wise map: the map protocol and the maps normkit ships.
//
// A map kind is a type with
//   static constexpr std::size_t fields;            // per-slice parameters
//   template <class T, class A> static Params<T, fields> lower(const D<A>&);
//       // the kernel's decision (finalize's result, in the wide type A) as
//       // element-type parameters, plus an optional constant fill
//   template <class V, std::size_t K>
//   static V apply(const std::array<V, fields>& p, const std::array<V, K>& in,
//                  const V& gamma, const V& beta);  // one lane of output
// and optionally
//   static constexpr bool renormalizes = true;   // y is then divided by its sum
//   static constexpr std::size_t position_sums;  // per-position sums (dgamma, dbeta):
//   template <class V, std::size_t K> static void sums(p, in, gamma, std::array<V, position_sums>&);
// The engine handles the fill, the NaN policy, stores, tails and threads; a
// map only says what one lane of output is. `in[0]` is the operand whose NaNs
// the policy looks at (x, or the forward's output), `in[1]` the next (dy).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>

#include "../detail/lanes.hpp"
#include "../detail/slice_map.hpp"

namespace normkit::ext {

/// Element-type parameters of one slice: `fields` numbers, or a constant fill.
template <class T, std::size_t F>
struct Params {
  std::array<T, F> p{};
  bool fill = false;
  T fill_value = 0;
};

/// A decision that is a plain list of coefficients in the wide type (what the
/// backward kernels use), or a constant fill.
template <class A, std::size_t F>
struct Coefficients {
  std::array<A, F> c{};
  bool fill = false;
  A fill_value = 0;

  static Coefficients constant(A value) {
    Coefficients k;
    k.fill = true;
    k.fill_value = value;
    return k;
  }
};

/// Maps whose decision is a Coefficients<A, F>: lower rounds each to T.
template <std::size_t F>
struct CoefficientMap {
  static constexpr std::size_t fields = F;

  template <class T, class A>
  static Params<T, F> lower(const Coefficients<A, F>& k) {
    Params<T, F> out;
    for (std::size_t i = 0; i < F; ++i) out.p[i] = T(k.c[i]);
    out.fill = k.fill;
    out.fill_value = T(k.fill_value);
    return out;
  }
};

/// y = ((x * prescale - center) * scale + offset) * gamma + beta: the forward
/// map of every normalization whose output is affine in x per slice. The
/// decision is a detail::SliceMap (center split in two parts, scales split by
/// a power of two) so that float keeps its accuracy; see divided_by.
struct AffineMap {
  static constexpr std::size_t fields = 4;  // prescale, center, scale, offset

  template <class T, class A>
  static Params<T, fields> lower(const detail::SliceMap<A>& m) {
    const detail::MapParams<T> q = detail::to_params<T>(m);
    return {{q.prescale, q.center, q.scale, q.offset}, q.fill != T(0), q.fill_value};
  }

  /// lower for width_of<D> decisions at once (the engine's batched decide):
  /// to_params's common case, a scale that T holds as a normal number, the
  /// same operations in lanes, written to out[0, width_of<D>); the other
  /// lanes are added to unsure (what they hold in out is then meaningless).
  template <class T, class D>
  static void lower_lanes(const detail::SliceMapLanes<D>& m, typename detail::lane_traits<D>::mask& unsure,
                          Params<T, fields>* out) {
    using A = detail::scalar_of<D>;
    const D magnitude = detail::vabs(m.scale);
    unsure = unsure | !((magnitude >= D(A(2 * std::numeric_limits<T>::min()))) &
                        (magnitude <= D(A(std::numeric_limits<T>::max()))));
    const D center_hi = detail::round_to<T>(m.center);
    const D center_lo = detail::lane_select(detail::is_finite(m.center), m.center - center_hi, D(0)) + m.center_lo;
    const D offset = detail::lane_select(center_lo != D(0), detail::mul_add(-center_lo, m.scale, m.offset), m.offset);
    const auto c = detail::lanes_of(center_hi), s = detail::lanes_of(m.scale), f = detail::lanes_of(offset);
    for (std::size_t l = 0; l < detail::width_of<D>; ++l) out[l] = {{T(1), T(c[l]), T(s[l]), T(f[l])}, false, T(0)};
  }

  template <bool HasGamma, bool HasBeta, class V, std::size_t K>
  static V apply(const std::array<V, fields>& p, const std::array<V, K>& in, const V& gamma, const V& beta) {
    V y = detail::mul_add(detail::mul_sub(in[0], p[0], p[1]), p[2], p[3]);
    if constexpr (HasGamma && HasBeta)
      y = detail::mul_add(y, gamma, beta);
    else if constexpr (HasGamma)
      y = y * gamma;
    else if constexpr (HasBeta)
      y = y + beta;
    return y;
  }
};

/// y = exp((x - center) * scale), then divided by its sum over the slice
/// (softmax; scale = 1 / temperature). The center should be the slice's
/// maximum, so that no exponent is positive. Same decision as AffineMap (the
/// offset is not used). exp runs once per element: the output is written,
/// summed, and rescaled in a second pass.
///
/// On targets with a fused multiply-add the map is exp(x * a - b), one fused
/// operation before exp: a = scale and b = center * scale, rounded once (x * a
/// is exact inside the fused operation). b's rounding shifts every exponent
/// of the slice by the same amount, which the division by the sum cancels.
/// With scale = 1 this is exactly exp(x - center). Once |b| reaches 2^30
/// (float) or 2^62 (double), the shift could overflow exp, so a and b are
/// divided by a power of two that keeps |b| below it: neighbouring values
/// then stay at least 32 (float) or 256 (double) apart in the exponent, and an
/// output that is exactly below e^-32 = 1.3e-14 (float) or e^-256 (double) of
/// the largest may come out as large as that. Without a fused multiply-add
/// (baseline x86-64), x * a would be rounded at the offset's magnitude, so the
/// map stays exp((x * prescale - center) * scale).
struct ExpMap {
  static constexpr bool fused = detail::has_fused_multiply_add;
  static constexpr std::size_t fields = fused ? 2 : 3;  // a, b; or prescale, center, scale
  static constexpr bool renormalizes = true;

  template <class T, class A>
  static Params<T, fields> lower(const detail::SliceMap<A>& m) {
    const Params<T, 4> q = AffineMap::lower<T>(m);  // {prescale, center, scale, offset}
    if (q.fill) return {{}, true, q.fill_value};
    if constexpr (!fused) {
      return {{q.p[0], q.p[1], q.p[2]}, false, T(0)};
    } else {
      if (q.p[2] == T(1)) return {{q.p[0], q.p[1]}, false, T(0)};
      const A a = A(q.p[0]) * A(q.p[2]), b = A(q.p[1]) * A(q.p[2]);
      // 2^(digits + 6) (float) or 2^(digits + 9) (double): b's rounding stays
      // below half of ln(max()), 88 or 709.
      const int limit = std::numeric_limits<T>::digits + std::ilogb(std::log(std::numeric_limits<T>::max()));
      int shift = 0;
      if (std::isfinite(b) && b != A(0)) shift = std::max(0, std::ilogb(b) + 1 - limit);
      return {{T(std::ldexp(a, -shift)), T(std::ldexp(b, -shift))}, false, T(0)};
    }
  }

  template <bool HasGamma, bool HasBeta, class V, std::size_t K>
  static V apply(const std::array<V, fields>& p, const std::array<V, K>& in, const V&, const V&) {
    if constexpr (fused)
      return detail::vexp(detail::fused_mul_sub(in[0], p[0], p[1]));
    else
      return detail::vexp(detail::mul_sub(in[0], p[0], p[1]) * p[2]);
  }
};

/// dx = a * (dy * gamma) + c * (x - center) + b: the backward of every
/// normalization that is affine in x per slice (sum-to-one, L2, z-score, ...).
/// Decision: Coefficients<A, 4> {a, b, c, center}, or a constant fill. The
/// center is split into its element-type value and a remainder folded into
/// b, so that x - center keeps float accuracy at large offsets.
struct LinearGradMap {
  static constexpr std::size_t fields = 4;  // a, b, c, center

  template <class T, class A, std::size_t F>
  static Params<T, F> lower(const Coefficients<A, F>& k) {
    Params<T, F> out;
    for (std::size_t i = 0; i < F; ++i) out.p[i] = T(k.c[i]);
    const T center = T(k.c[3]);
    const A rest = std::isfinite(k.c[3]) ? k.c[3] - A(center) : A(0);
    if (rest != A(0) && k.c[2] != A(0)) out.p[1] = T(k.c[1] - k.c[2] * rest);
    out.fill = k.fill;
    out.fill_value = T(k.fill_value);
    return out;
  }

  template <bool HasGamma, bool HasBeta, class V, std::size_t K>
  static V apply(const std::array<V, fields>& p, const std::array<V, K>& in, const V& gamma, const V&) {
    const V g = HasGamma ? in[1] * gamma : in[1];
    return detail::mul_add(p[2], in[0] - p[3], detail::mul_add(p[0], g, p[1]));
  }
};

/// LinearGradMap plus the sums gamma and beta need: per position,
/// dy * (x - center) * h (= dy * x_hat) and dy. Decision:
/// Coefficients<A, 6> {a, b, c, center, h, 0}; lower sets the last field to
/// the part of center * h that the element-type center misses.
struct AffineGradMap {
  static constexpr std::size_t fields = 6;  // a, b, c, center, h, (center - T(center)) * h
  static constexpr std::size_t position_sums = 2;

  template <class T, class A>
  static Params<T, fields> lower(const Coefficients<A, fields>& k) {
    Params<T, fields> out = LinearGradMap::lower<T>(k);
    const A rest = std::isfinite(k.c[3]) ? k.c[3] - A(T(k.c[3])) : A(0);
    out.p[5] = T(rest * k.c[4]);
    return out;
  }

  template <bool HasGamma, bool HasBeta, class V, std::size_t K>
  static V apply(const std::array<V, fields>& p, const std::array<V, K>& in, const V& gamma, const V&) {
    const V g = HasGamma ? in[1] * gamma : in[1];
    return detail::mul_add(p[2], in[0] - p[3], detail::mul_add(p[0], g, p[1]));
  }

  template <bool HasGamma, class V, std::size_t K>
  static void sums(const std::array<V, fields>& p, const std::array<V, K>& in, const V&, std::array<V, 2>& s) {
    s[0] = in[1] * detail::mul_sub(in[0] - p[3], p[4], p[5]);
    s[1] = in[1];
  }
};

}  // namespace normkit::ext
