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

#include <cmath>
#include <limits>

namespace normkit::detail {

template <class A>
struct SliceMap {
  A center = 0;
  A scale = 1;
  A offset = 0;
  bool fill = false;  // write fill_value instead of the map
  A fill_value = 0;

  static SliceMap constant(A value) { return {0, 0, 0, true, value}; }
};

template <class T>
struct MapParams {
  T prescale, center, scale, offset;
  T fill;  // 1 where the slice is a constant fill, else 0
  T fill_value;
};

template <class T, class A>
MapParams<T> to_params(const SliceMap<A>& m) {
  if (m.fill) return {T(1), T(0), T(0), T(0), T(1), T(m.fill_value)};
  A prescale = 1;
  const A magnitude = std::fabs(m.scale);
  if (std::isfinite(m.scale) && magnitude != A(0) &&
      (magnitude < A(std::numeric_limits<T>::min()) || magnitude > A(std::numeric_limits<T>::max()))) {
    const int limit = std::numeric_limits<T>::max_exponent - 2;
    int e = std::ilogb(magnitude);
    e = e < -limit ? -limit : e > limit ? limit : e;
    prescale = std::ldexp(A(1), e);
  }
  const A center = m.center * prescale;
  const T center_hi = T(center);
  const A scale = m.scale / prescale;
  // An infinite center has no rounding to fold (and inf - inf would be NaN).
  const A offset = std::isfinite(center) ? m.offset - (center - A(center_hi)) * scale : m.offset;
  return {T(prescale), center_hi, T(scale), T(offset), T(0), T(0)};
}

}  // namespace normkit::detail
