// normkit/detail/lanes.hpp - one vocabulary for SIMD batches and scalars.
//
// The statistics and maps are written once over a "lane type" V, which is
// either an xsimd batch (several slices or several elements at once) or a
// plain scalar (tails, and the long double rescue pass). These overloads give
// both the same meaning, including the NaN behaviour of max/min, which follows
// x86 maxps: max(a, b) is b when either is NaN.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <type_traits>
#include <xsimd/xsimd.hpp>

namespace normkit::detail {

template <class T>
using Batch = xsimd::batch<T>;

template <class V>
struct lane_traits {  // scalars: float, double, long double
  using scalar = V;
  using mask = bool;
  static constexpr std::size_t width = 1;
};

template <class T, class A>
struct lane_traits<xsimd::batch<T, A>> {
  using scalar = T;
  using mask = xsimd::batch_bool<T, A>;
  static constexpr std::size_t width = xsimd::batch<T, A>::size;
};

// G batches side by side, used as one lane type. A strided chunk loads its
// whole row segment (G * width contiguous values) per step, so every pass
// walks a chunk row by row in one run, the order the hardware prefetchers
// follow, while the statistics stay written once over V. Operations apply
// batch by batch; G independent batches also give the adders parallel work.
template <class V, std::size_t G>
struct Wide {
  using part_type = V;
  std::array<V, G> part;

  Wide() = default;
  template <class S, class = std::enable_if_t<std::is_arithmetic<S>::value>>
  Wide(S value) {  // broadcast, as V(value)
    part.fill(V(value));
  }

  template <class T>
  static Wide load_unaligned(const T* p) {
    Wide w;
    for (std::size_t g = 0; g < G; ++g) w.part[g] = V::load_unaligned(p + g * V::size);
    return w;
  }
  template <class T>
  void store_unaligned(T* p) const {
    for (std::size_t g = 0; g < G; ++g) part[g].store_unaligned(p + g * V::size);
  }
};

template <class V>
struct is_wide_t : std::false_type {};
template <class V, std::size_t G>
struct is_wide_t<Wide<V, G>> : std::true_type {};
template <class V>
inline constexpr bool is_wide = is_wide_t<V>::value;

template <class V, std::size_t G>
struct lane_traits<Wide<V, G>> {
  using scalar = typename lane_traits<V>::scalar;
  using mask = Wide<typename lane_traits<V>::mask, G>;
  static constexpr std::size_t width = G * lane_traits<V>::width;
};

// f applied batch by batch to Wide operands.
template <class F, class A0, std::size_t G, class... A>
auto each(const F& f, const Wide<A0, G>& a0, const A&... a) {
  Wide<decltype(f(a0.part[0], a.part[0]...)), G> r;
  for (std::size_t g = 0; g < G; ++g) r.part[g] = f(a0.part[g], a.part[g]...);
  return r;
}

#define NORMKIT_WIDE_OPERATOR(op)                                                \
  template <class V, std::size_t G>                                              \
  auto operator op(const Wide<V, G>& a, const Wide<V, G>& b) {                   \
    return each([](const auto& x, const auto& y) { return x op y; }, a, b);      \
  }
NORMKIT_WIDE_OPERATOR(+)
NORMKIT_WIDE_OPERATOR(-)
NORMKIT_WIDE_OPERATOR(*)
NORMKIT_WIDE_OPERATOR(/)
NORMKIT_WIDE_OPERATOR(==)
NORMKIT_WIDE_OPERATOR(!=)
#undef NORMKIT_WIDE_OPERATOR

template <class V, std::size_t G>
Wide<V, G> operator-(const Wide<V, G>& a) {
  return each([](const V& x) { return -x; }, a);
}

template <class V>
using scalar_of = typename lane_traits<V>::scalar;
template <class V>
inline constexpr std::size_t width_of = lane_traits<V>::width;

template <class V>
constexpr bool is_scalar_lane = std::is_floating_point<V>::value;

// --- element loads: batches read `width` consecutive values, scalars one,
// converting (float -> long double in the rescue pass) on the way.
template <class V, class T>
V lane_load(const T* p) {
  if constexpr (is_scalar_lane<V>)
    return static_cast<V>(*p);
  else
    return V::load_unaligned(p);
}

template <class V, class T>
void lane_store(T* p, const V& v) {
  if constexpr (is_scalar_lane<V>)
    *p = static_cast<T>(v);
  else
    v.store_unaligned(p);
}

// Non-temporal store of a batch to an address aligned to its size: the line
// goes to memory without being read first (no read-for-ownership) and
// without evicting what the cache holds. Scalars, Wide parts and targets
// without such an instruction store normally. stream_fence() orders these
// stores before whatever the thread does next (another thread reading y).
template <class V, class T>
void lane_stream(T* p, const V& v) {
  if constexpr (is_wide<V>) {
    for (std::size_t g = 0; g < v.part.size(); ++g) lane_stream(p + g * width_of<typename V::part_type>, v.part[g]);
  } else if constexpr (is_scalar_lane<V>) {
    *p = static_cast<T>(v);
  } else {
    constexpr bool single = std::is_same<T, float>::value;
#if defined(__AVX512F__)
    if constexpr (sizeof(V) == 64) {
      if constexpr (single) _mm512_stream_ps(p, v); else _mm512_stream_pd(p, v);
      return;
    }
#endif
#if defined(__AVX__)
    if constexpr (sizeof(V) == 32) {
      if constexpr (single) _mm256_stream_ps(p, v); else _mm256_stream_pd(p, v);
      return;
    }
#endif
#if defined(__SSE2__)
    if constexpr (sizeof(V) == 16) {
      if constexpr (single) _mm_stream_ps(p, v); else _mm_stream_pd(p, v);
      return;
    }
#endif
    (void)single;
    v.store_aligned(p);
  }
}

inline void stream_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// A hint to bring the cache lines of one lane of V at p in for reading soon
// (a batch fits one line; a Wide lane spans several).
template <class V, class T>
void prefetch_lane(const T* p) {
#if defined(__GNUC__) || defined(__clang__)
  const char* bytes = reinterpret_cast<const char*>(p);
  for (std::size_t offset = 0; offset < sizeof(T) * width_of<V>; offset += 64) __builtin_prefetch(bytes + offset, 0, 3);
#else
  (void)p;
#endif
}

// --- arithmetic
template <class V>
V vmax(const V& a, const V& b) {
  if constexpr (is_wide<V>)
    return each([](const auto& x, const auto& y) { return vmax(x, y); }, a, b);
  else if constexpr (is_scalar_lane<V>)
    return a > b ? a : b;
  else
    return xsimd::max(a, b);
}

template <class V>
V vmin(const V& a, const V& b) {
  if constexpr (is_wide<V>)
    return each([](const auto& x, const auto& y) { return vmin(x, y); }, a, b);
  else if constexpr (is_scalar_lane<V>)
    return a < b ? a : b;
  else
    return xsimd::min(a, b);
}

template <class V>
V vabs(const V& a) {
  if constexpr (is_wide<V>)
    return each([](const auto& x) { return vabs(x); }, a);
  else if constexpr (is_scalar_lane<V>)
    return std::fabs(a);
  else
    return xsimd::abs(a);
}

#if defined(__AVX512F__)
// e^a for 16 floats: k = round(a / ln 2), r = a - k ln 2 (ln 2 in two parts,
// so k ln2_hi is exact), e^r by its Taylor series to r^7 (truncation below
// 0.1 ulp for |r| <= ln(2)/2), then scaled by 2^k with vscalefps, which
// overflows to inf and underflows to 0 as e^a does. Clamping a at -110, where
// e^a is 0 in float, makes -inf give 0 rather than NaN; max(lo, a) returns a
// NaN a unchanged. About half the instructions of xsimd's exp, which needs
// the integer exponent trick and selects for its range.
inline __m512 exp_avx512(__m512 a) {
  const __m512 x = _mm512_max_ps(_mm512_set1_ps(-110.0f), a);
  const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  for (const float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f})
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
  return _mm512_scalef_ps(p, k);
}

// The same for 8 doubles: ln 2 split at 33 bits (k ln2_hi exact for |k| <
// 2^20), the series to r^13 (truncation below 0.05 ulp), clamp at -760.
inline __m512d exp_avx512(__m512d a) {
  const __m512d x = _mm512_max_pd(_mm512_set1_pd(-760.0), a);
  const __m512d k = _mm512_roundscale_pd(_mm512_mul_pd(x, _mm512_set1_pd(1.4426950408889634)),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512d r = _mm512_fnmadd_pd(k, _mm512_set1_pd(0.6931471804855391), x);
  r = _mm512_fnmadd_pd(k, _mm512_set1_pd(7.440617110012397e-11), r);
  __m512d p = _mm512_set1_pd(1.0 / 6227020800);  // 1/13!, then Horner down to 1/1! and 1
  for (const double c : {1.0 / 479001600, 1.0 / 39916800, 1.0 / 3628800, 1.0 / 362880, 1.0 / 40320, 1.0 / 5040,
                         1.0 / 720, 1.0 / 120, 1.0 / 24, 1.0 / 6, 0.5, 1.0, 1.0})
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(c));
  return _mm512_scalef_pd(p, k);
}
#endif

// xsimd's exp converts its scaled argument to an integer, which is undefined
// for NaN, infinities and huge magnitudes. Arguments are clamped to where the
// result is already 0 or inf (float: below -104 or above 89; double: -746,
// 710), and NaN lanes are passed through. AVX-512 batches use exp_avx512
// instead.
template <class V>
[[gnu::always_inline]] inline V vexp(const V& a) {  // inline: a call per batch spills it to memory
  if constexpr (is_wide<V>) {
    return each([](const auto& x) { return vexp(x); }, a);
  } else if constexpr (is_scalar_lane<V>) {
    return std::exp(a);
  } else {
    using S = scalar_of<V>;
    constexpr bool single = std::is_same<S, float>::value;
#if defined(__AVX512F__)
    if constexpr (sizeof(V) == 64) return V(exp_avx512(a));
#endif
    const V lo(single ? S(-104) : S(-746)), hi(single ? S(89) : S(710));
    return xsimd::select(xsimd::isnan(a), a, xsimd::exp(xsimd::min(xsimd::max(a, lo), hi)));
  }
}

// a^b for a >= 0 and b >= 0, as e^(b ln a) through vexp, whose clamps make
// every base and exponent safe: a NaN base gives NaN, +inf gives inf, 0
// gives 0 and a huge exponent 0 or inf, with b = 0 giving 1 in every case
// (std::pow's values). xsimd::pow would convert NaN, infinite or huge
// arguments of its exp to integers, which is undefined behaviour.
template <class V>
V vpow(const V& a, const V& b) {
  if constexpr (is_wide<V>) {
    return each([](const auto& x, const auto& y) { return vpow(x, y); }, a, b);
  } else if constexpr (is_scalar_lane<V>) {
    return std::pow(a, b);
  } else {
    using S = scalar_of<V>;
    const V hi(std::is_same<S, float>::value ? S(89) : S(710));  // e^hi is inf already; exp_avx512 takes no inf
    const V t = b * xsimd::log(a);
    return xsimd::select(b == V(0), V(1), vexp(xsimd::select(t > hi, hi, t)));
  }
}

// a*b + c. Batches use the fused instruction where the target has one; the
// scalar form is left to the compiler (no slow libm fma on targets without).
template <class V>
V mul_add(const V& a, const V& b, const V& c) {
  if constexpr (is_wide<V>)
    return each([](const auto& x, const auto& y, const auto& z) { return mul_add(x, y, z); }, a, b, c);
  else if constexpr (is_scalar_lane<V>)
    return a * b + c;
  else
    return xsimd::fma(a, b, c);
}

// a*b - c
template <class V>
V mul_sub(const V& a, const V& b, const V& c) {
  if constexpr (is_wide<V>)
    return each([](const auto& x, const auto& y, const auto& z) { return mul_sub(x, y, z); }, a, b, c);
  else if constexpr (is_scalar_lane<V>)
    return a * b - c;
  else
    return xsimd::fms(a, b, c);
}

// Whether the target has a fused multiply-add: then fused_mul_sub rounds
// once, for batches and scalars alike.
#if defined(__FMA__) || defined(__AVX512F__)
inline constexpr bool has_fused_multiply_add = true;
#else
inline constexpr bool has_fused_multiply_add = false;
#endif

// a*b - c rounded once; only where has_fused_multiply_add (without it, std::fma
// is a slow library call and xsimd::fms two roundings).
template <class V>
V fused_mul_sub(const V& a, const V& b, const V& c) {
  static_assert(has_fused_multiply_add && sizeof(V) > 0, "fused_mul_sub: the target has no fused multiply-add");
  if constexpr (is_wide<V>)
    return each([](const auto& x, const auto& y, const auto& z) { return fused_mul_sub(x, y, z); }, a, b, c);
  else if constexpr (is_scalar_lane<V>)
    return std::fma(a, b, -c);
  else
    return xsimd::fms(a, b, c);
}

// --- masks
template <class V>
typename lane_traits<V>::mask is_nan(const V& a) {
  if constexpr (is_wide<V>)
    return each([](const auto& x) { return is_nan(x); }, a);
  else if constexpr (is_scalar_lane<V>)
    return a != a;
  else
    return xsimd::isnan(a);
}

template <class V>
typename lane_traits<V>::mask is_finite(const V& a) {
  if constexpr (is_scalar_lane<V>)
    return std::isfinite(a);
  else
    return xsimd::isfinite(a);
}

// a and b, a or b: for masks lane by lane, for the bools of scalar lanes
// without clang's warning about bitwise operators on bool (both sides are
// evaluated either way).
template <class M>
M both(const M& a, const M& b) {
  if constexpr (std::is_same<M, bool>::value)
    return a && b;
  else
    return a & b;
}
template <class M>
M either(const M& a, const M& b) {
  if constexpr (std::is_same<M, bool>::value)
    return a || b;
  else
    return a | b;
}

template <class V>
V lane_select(const typename lane_traits<V>::mask& m, const V& a, const V& b) {
  if constexpr (is_wide<V>)
    return each([](const auto& c, const auto& x, const auto& y) { return lane_select(c, x, y); }, m, a, b);
  else if constexpr (is_scalar_lane<V>)
    return m ? a : b;
  else
    return xsimd::select(m, a, b);
}

// Lane j of v, for every j at once.
template <class V>
std::array<scalar_of<V>, width_of<V>> lanes_of(const V& v) {
  std::array<scalar_of<V>, width_of<V>> out;
  lane_store(out.data(), v);
  return out;
}

// What `field` gives for each of width_of<D> consecutive totals, as lanes
// (a mask where it gives bool): a data member, or a callable such as a
// lambda calling value(). For finalize_lanes and the statistics' lane tests.
template <class D, class Total, class Field>
auto lanes_across(const Total* totals, const Field& field) {
  using A = scalar_of<D>;
  using M = std::decay_t<decltype(std::invoke(field, totals[0]))>;
  alignas(64) std::array<A, width_of<D>> v;
  for (std::size_t l = 0; l < width_of<D>; ++l) {
    const M value = std::invoke(field, totals[l]);
    if constexpr (std::is_same<M, bool>::value)
      v[l] = value ? A(1) : A(0);
    else
      v[l] = A(value);
  }
  const D lanes = D::load_aligned(v.data());
  if constexpr (std::is_same<M, bool>::value)
    return lanes != D(0);
  else
    return lanes;
}

// Each lane of a batch of doubles rounded to T and back (for float, as
// static_cast rounds), four lanes per instruction pair where the target has one.
template <class T, class D>
D round_to(const D& d) {
  if constexpr (std::is_same<T, scalar_of<D>>::value) {
    return d;
  } else {
    static_assert(std::is_same<scalar_of<D>, double>::value && std::is_same<T, float>::value, "round_to: double to float");
#if defined(__AVX512F__)
    if constexpr (sizeof(D) == 64) return D(_mm512_cvtps_pd(_mm512_cvtpd_ps(d)));
#endif
#if defined(__AVX__)
    if constexpr (sizeof(D) == 32) return D(_mm256_cvtps_pd(_mm256_cvtpd_ps(d)));
#endif
#if defined(__SSE2__)
    if constexpr (sizeof(D) == 16) return D(_mm_cvtps_pd(_mm_cvtpd_ps(d)));
#endif
    auto v = lanes_of(d);
    for (auto& e : v) e = double(float(e));
    return D::load_unaligned(v.data());
  }
}

// Horizontal combination of the lanes under op (sum, max, min, ...),
// broadcast back to every lane, so the result can keep flowing through
// lane-typed code: log2(width) rounds of "combine with the lanes rotated by
// half the remaining distance", all in registers.
template <std::size_t Shift>
struct rotated_by {
  static constexpr std::size_t get(std::size_t i, std::size_t n) { return (i + Shift) % n; }
};

template <std::size_t Shift, class V, class Op>
V butterfly(const V& v, Op op) {
  if constexpr (Shift == 0) {
    return v;
  } else {
    using Index = xsimd::batch<xsimd::as_unsigned_integer_t<scalar_of<V>>, typename V::arch_type>;
    return butterfly<Shift / 2>(op(v, xsimd::swizzle(v, xsimd::make_batch_constant<Index, rotated_by<Shift>>())), op);
  }
}

template <class V, class Op>
V across(const V& v, Op op) {
  if constexpr (is_scalar_lane<V>)
    return v;
  else
    return butterfly<width_of<V> / 2>(v, op);
}

// The sum of a lane's values in its element type, pairwise: a Wide's parts
// halved in turn, then a batch's butterfly (log2 of the width rounds, so
// the error stays within that many roundings of the sum of magnitudes).
template <class V>
scalar_of<V> lane_sum(const V& v) {
  if constexpr (is_scalar_lane<V>) {
    return v;
  } else if constexpr (is_wide<V>) {
    auto parts = v.part;
    std::size_t live = parts.size();
    while (live > 1) {
      const std::size_t half = live / 2;
      for (std::size_t g = 0; g < half; ++g) parts[g] = parts[g] + parts[live - 1 - g];
      live -= half;
    }
    return lane_sum(parts[0]);
  } else {
    return across(v, [](const V& a, const V& b) { return a + b; }).get(0);
  }
}

template <class T>
constexpr T infinity() {
  return std::numeric_limits<T>::infinity();
}

template <class T>
constexpr T quiet_nan() {
  return std::numeric_limits<T>::quiet_NaN();
}

}  // namespace normkit::detail
