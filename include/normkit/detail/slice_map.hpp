// normkit/detail/slice_map.hpp - what a functor decides per slice, and how it
// becomes the per-element map.
//
// A functor's finalize turns the slice statistic into a SliceMap in the wide
// type: y = (x - center) * scale + offset, or a constant fill. to_params then
// prepares it for the element type so the map costs two fused operations,
//     y = (x * prescale - center_hi) * scale + offset',
// with care for what rounding to float would otherwise break:
//  * the center is split into hi + lo and the lo part folded into the offset,
//    so a mean like 1e6 + 0.3 still centres exactly;
//  * a scale outside the element type's normal range (1 / norm of subnormal or
//    near-FLT_MAX data) is split into a power-of-two prescale, which is exact,
//    and a remainder near 1.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>

#include "lanes.hpp"

namespace normkit::detail {

template <class A>
struct SliceMap {
  A center = 0;  // y = (x - center - center_lo) * scale + offset
  A scale = 1;  // times 2^scale_exp: 1/d for d near the limits of A overflows A
  A offset = 0;
  bool fill = false;  // write fill_value instead of the map
  A fill_value = 0;
  int scale_exp = 0;
  A center_lo = 0;  // a small correction to center, e.g. the mean minus an element

  static SliceMap constant(A value) { return {0, 0, 0, true, value}; }
};

// The decisions of width_of<D> slices at once, lanes across slices (D: a
// batch of the wide type): what a kernel's optional finalize_lanes returns,
// so that a group of short slices is decided in vector registers rather than
// one slice at a time through branches and scalar divisions. It covers
// the common case only: lanes marked unsure (NaN, constant or degenerate
// slices, scales near the limits) are decided again by the scalar finalize.
template <class D>
struct SliceMapLanes {
  using A = scalar_of<D>;
  static constexpr std::size_t width = width_of<D>;

  D center, scale, offset = D(0), center_lo = D(0);
  typename lane_traits<D>::mask unsure;

  // Lane l as the SliceMap finalize would have returned (valid where not unsure).
  void split(std::array<SliceMap<A>, width>& maps, std::array<bool, width>& unsure_at) const {
    const auto c = lanes_of(center), s = lanes_of(scale), f = lanes_of(offset), lo = lanes_of(center_lo),
               u = lanes_of(lane_select(unsure, D(1), D(0)));
    for (std::size_t l = 0; l < width; ++l) {
      maps[l] = {c[l], s[l], f[l]};
      maps[l].center_lo = lo[l];
      unsure_at[l] = u[l] != A(0);
    }
  }
};

// Lanes where d is a finite, nonzero number whose reciprocal is finite: where
// divided_by(center, d, offset) is {center, 1 / d, offset}, with no split.
template <class D>
typename lane_traits<D>::mask plain_divisor(const D& d) {
  return xsimd::isfinite(d) & (d != D(0)) & xsimd::isfinite(D(1) / d);
}

// y = x / d in lanes, for a d that plain_divisor accepts (other lanes unsure).
template <class D>
SliceMapLanes<D> divided_by_lanes(const D& d) {
  SliceMapLanes<D> m;
  m.center = D(0);
  m.scale = D(1) / d;
  m.unsure = !plain_divisor(d);
  return m;
}

// y = (x - center) / d + offset, for any d (subnormal too; 0 gives inf).
template <class A>
SliceMap<A> divided_by(A center, A d, A offset) {
  if (std::isfinite(d) && d != A(0) && !std::isfinite(A(1) / d)) {
    const int e = std::ilogb(d);
    return {center, A(1) / std::ldexp(d, -e), offset, false, 0, -e};
  }
  return {center, A(1) / d, offset};
}

// y = (x - center) * scale + offset, for a scale computed in long double.
template <class A>
SliceMap<A> scaled_by(A center, long double scale, A offset) {
  if (std::isfinite(scale) && scale != 0.0L && !std::isfinite(A(scale))) {
    const int e = std::ilogb(scale);
    return {center, A(std::ldexp(scale, -e)), offset, false, 0, e};
  }
  return {center, A(scale), offset};
}

template <class T>
struct MapParams {
  T prescale, center, scale, offset;
  T fill;  // 1 where the slice is a constant fill, else 0
  T fill_value;
};

// c - a * b, rounded once where the target has a fused multiply-add (as
// mul_add in lanes), so that a decision lowered in lanes (lower_lanes) and
// one lowered alone agree bit for bit whatever the compiler contracts.
template <class A>
A minus_product(A c, A a, A b) {
  if constexpr (has_fused_multiply_add)
    return std::fma(-a, b, c);
  else
    return c - a * b;
}

template <class T, class A>
MapParams<T> to_params(const SliceMap<A>& m) {
  if (m.fill) return {T(1), T(0), T(0), T(0), T(1), T(m.fill_value)};
  A prescale = 1, scale = m.scale;
  const A magnitude = std::fabs(m.scale);
  // Common case first: a scale that T holds as a normal number needs no split
  // (2 * min() is 2^min_exponent, the bound the exponent test below uses).
  const bool normal_in_t = m.scale_exp == 0 && magnitude >= A(2 * std::numeric_limits<T>::min()) &&
                           magnitude <= A(std::numeric_limits<T>::max());
  if (!normal_in_t && std::isfinite(m.scale) && magnitude != A(0)) {
    const int e = std::ilogb(magnitude) + m.scale_exp;  // of the true scale
    if (m.scale_exp != 0 || e < std::numeric_limits<T>::min_exponent || e >= std::numeric_limits<T>::max_exponent) {
      const int limit = std::numeric_limits<T>::max_exponent - 2;
      const int k = e < -limit ? -limit : e > limit ? limit : e;
      prescale = std::ldexp(A(1), k);
      scale = std::ldexp(m.scale, m.scale_exp - k);
    }
  }
  const A center = m.center * prescale;
  const T center_hi = T(center);
  // Fold the part of the center that T cannot hold into the offset (nothing
  // to fold for an exact or infinite center; 0 * inf would be NaN).
  const A center_lo = (std::isfinite(center) ? center - A(center_hi) : A(0)) + m.center_lo * prescale;
  const A offset = center_lo != A(0) ? minus_product(m.offset, center_lo, scale) : m.offset;
  return {T(prescale), center_hi, T(scale), T(offset), T(0), T(0)};
}

}  // namespace normkit::detail
