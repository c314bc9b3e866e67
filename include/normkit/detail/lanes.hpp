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

// --- arithmetic
template <class V>
V vmax(const V& a, const V& b) {
  if constexpr (is_scalar_lane<V>)
    return a > b ? a : b;
  else
    return xsimd::max(a, b);
}

template <class V>
V vmin(const V& a, const V& b) {
  if constexpr (is_scalar_lane<V>)
    return a < b ? a : b;
  else
    return xsimd::min(a, b);
}

template <class V>
V vabs(const V& a) {
  if constexpr (is_scalar_lane<V>)
    return std::fabs(a);
  else
    return xsimd::abs(a);
}

// xsimd's exp converts its scaled argument to an integer, which is undefined
// for NaN, infinities and huge magnitudes. Arguments are clamped to where the
// result is already 0 or inf (float: below -104 or above 89; double: -746,
// 710), and NaN lanes are passed through.
template <class V>
V vexp(const V& a) {
  if constexpr (is_scalar_lane<V>) {
    return std::exp(a);
  } else {
    using S = scalar_of<V>;
    constexpr bool single = std::is_same<S, float>::value;
    const V lo(single ? S(-104) : S(-746)), hi(single ? S(89) : S(710));
    return xsimd::select(xsimd::isnan(a), a, xsimd::exp(xsimd::min(xsimd::max(a, lo), hi)));
  }
}

// a*b + c. Batches use the fused instruction where the target has one; the
// scalar form is left to the compiler (no slow libm fma on targets without).
template <class V>
V mul_add(const V& a, const V& b, const V& c) {
  if constexpr (is_scalar_lane<V>)
    return a * b + c;
  else
    return xsimd::fma(a, b, c);
}

// a*b - c
template <class V>
V mul_sub(const V& a, const V& b, const V& c) {
  if constexpr (is_scalar_lane<V>)
    return a * b - c;
  else
    return xsimd::fms(a, b, c);
}

// --- masks
template <class V>
typename lane_traits<V>::mask is_nan(const V& a) {
  if constexpr (is_scalar_lane<V>)
    return a != a;
  else
    return xsimd::isnan(a);
}

template <class V>
V lane_select(const typename lane_traits<V>::mask& m, const V& a, const V& b) {
  if constexpr (is_scalar_lane<V>)
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

// Horizontal sum / max / min of the lanes, broadcast back to every lane, so
// the result can keep flowing through lane-typed code. max/min keep the
// maxps NaN rule of vmax/vmin.
template <class V>
V across_sum(const V& v) {
  if constexpr (is_scalar_lane<V>)
    return v;
  else
    return V(xsimd::hadd(v));
}

template <class V, class Op>
V across(const V& v, Op op) {
  if constexpr (is_scalar_lane<V>) {
    return v;
  } else {
    const auto lanes = lanes_of(v);
    scalar_of<V> r = lanes[0];
    for (std::size_t l = 1; l < lanes.size(); ++l) r = op(r, lanes[l]);
    return V(r);
  }
}

template <class V>
V across_max(const V& v) {
  return across(v, [](auto a, auto b) { return vmax(a, b); });
}

template <class V>
V across_min(const V& v) {
  return across(v, [](auto a, auto b) { return vmin(a, b); });
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
