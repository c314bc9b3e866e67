// normkit/detail/slice_view.hpp - any tensor and axis range as [outer, n, inner].
//
// Element (o, k, i) - slice (o, i), position k along it - lives at
// data[o * outer_stride + k * step + i]. The inner index always has stride 1,
// so inner == 1 with step == 1 means each slice is contiguous; inner > 1 means
// the normalized axis is strided and `inner` neighbouring slices sit side by
// side in memory, which is what the vertical SIMD path exploits.
#pragma once

#include <cstddef>

namespace normkit::detail {

using Index = std::ptrdiff_t;

template <class T>
struct SliceView {
  T* data;
  Index outer;
  Index n;
  Index inner;
  Index outer_stride;
  Index step;

  bool contiguous() const { return inner == 1 && step == 1; }
  Index slices() const { return outer * inner; }
};

// The view of a dense tensor (strides implied by the layout) normalized over
// axes [first, last): the product of the dims before, inside and after the
// range, with "before" and "after" trading roles between the layouts because
// the contiguous end differs.
template <class T, class Dims>
SliceView<T> tensor_view(T* data, const Dims& dims, int rank, bool row_major, int first, int last) {
  Index before = 1, n = 1, after = 1;
  for (int a = 0; a < rank; ++a) (a < first ? before : a < last ? n : after) *= static_cast<Index>(dims[a]);
  const Index inner = row_major ? after : before;
  const Index outer = row_major ? before : after;
  return {data, outer, n, inner, n * inner, inner};
}

}  // namespace normkit::detail
