// normkit/detail/operands.hpp - what normkit accepts as input and output, seen
// uniformly as a data pointer, a shape and a way to build a SliceView.
//
//  * Eigen tensors: Tensor, TensorMap (const or not) and TensorFixedSize are
//    used in place; any other tensor expression (a + b, TensorRef, ...) is
//    evaluated into a Tensor first.
//  * Eigen dense objects: Matrix, Array, Map, Block, ... as rank 2, axis 0
//    normalizing each column and axis 1 each row. They are used in place when
//    their elements are directly addressable with inner stride 1; otherwise an
//    input is evaluated first (an output is rejected).
#pragma once

#include <Eigen/Core>
#include <array>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <unsupported/Eigen/CXX11/Tensor>

#include "../axes.hpp"
#include "../errors.hpp"
#include "slice_view.hpp"

namespace normkit::detail {

template <class X>
using bare = std::remove_cv_t<std::remove_reference_t<X>>;

// Derived-to-base tests: Eigen types derive from their bases with another
// Derived (a VectorBlock is a DenseBase<Block<...>>), so is_base_of misses them.
template <class D>
std::true_type derives_tensor(const Eigen::TensorBase<D, Eigen::ReadOnlyAccessors>*);
std::false_type derives_tensor(...);
template <class D>
std::true_type derives_dense(const Eigen::DenseBase<D>*);
std::false_type derives_dense(...);

template <class X>
constexpr bool is_tensor = decltype(derives_tensor(std::declval<bare<X>*>()))::value;

template <class X>
constexpr bool is_dense = decltype(derives_dense(std::declval<bare<X>*>()))::value;

template <class X>
constexpr bool is_operand = is_tensor<X> || is_dense<X>;

// Tensors whose storage normkit can address directly.
template <class X>
struct is_stored_tensor : std::false_type {};
template <class S, int R, int O, class I>
struct is_stored_tensor<Eigen::Tensor<S, R, O, I>> : std::true_type {};
template <class S, class D, int O, class I>
struct is_stored_tensor<Eigen::TensorFixedSize<S, D, O, I>> : std::true_type {};
template <class P, int O, template <class> class M>
struct is_stored_tensor<Eigen::TensorMap<P, O, M>> : std::true_type {};

template <class X>
std::string shape_string(const X& x) {
  std::ostringstream out;
  out << '(';
  if constexpr (is_tensor<X>) {
    for (int a = 0; a < Eigen::internal::traits<X>::NumDimensions; ++a) out << (a ? ", " : "") << x.dimension(a);
  } else {
    out << x.rows() << ", " << x.cols();
  }
  out << ')';
  return out.str();
}

// A tensor with directly addressable, densely packed storage.
template <class X>
struct TensorOperand {
  using Traits = Eigen::internal::traits<bare<X>>;
  using Scalar = std::remove_const_t<typename Traits::Scalar>;
  static constexpr int rank = Traits::NumDimensions;
  static constexpr bool row_major = static_cast<int>(Traits::Layout) == static_cast<int>(Eigen::RowMajor);
  static_assert(rank >= 1, "normkit: rank-0 tensors have no axis to normalize");

  X& x;

  auto* data() const { return x.data(); }
  Index size() const { return static_cast<Index>(x.size()); }
  Index dimension(int a) const { return static_cast<Index>(x.dimension(a)); }

  template <class T>
  SliceView<T> view(T* p, AxisRange r) const {
    return tensor_view(p, x.dimensions(), rank, row_major, r.first, r.last);
  }

  // "(i0, i1, ...)" of the element at a storage offset, for error messages.
  std::string index_of(Index offset) const {
    Index index[rank];
    for (int s = 0; s < rank; ++s) {
      const int a = row_major ? rank - 1 - s : s;
      index[a] = offset % dimension(a);
      offset /= dimension(a);
    }
    std::ostringstream out;
    out << '(';
    for (int a = 0; a < rank; ++a) out << (a ? ", " : "") << index[a];
    out << ')';
    return out.str();
  }
};

// A dense Eigen object with inner stride 1, as rank 2.
template <class X>
struct DenseOperand {
  using Scalar = typename bare<X>::Scalar;
  static constexpr int rank = 2;
  static constexpr bool row_major = bare<X>::IsRowMajor;

  X& x;

  auto* data() const { return x.data(); }
  Index size() const { return static_cast<Index>(x.size()); }
  Index dimension(int a) const { return static_cast<Index>(a == 0 ? x.rows() : x.cols()); }

  template <class T>
  SliceView<T> view(T* p, AxisRange r) const {
    const Index rows = dimension(0), cols = dimension(1), ld = static_cast<Index>(x.outerStride());
    // Memory order: (major, minor) = (col, row) for column-major, (row, col) otherwise.
    const Index minor = row_major ? cols : rows, major = row_major ? rows : cols;
    if (r.last - r.first == 2) return {p, 1, rows * cols, 1, 0, 1};  // contiguity checked by the caller
    const bool along_minor = (r.first == 0) != row_major;
    if (along_minor) return {p, major, minor, 1, ld, 1};
    return {p, 1, major, minor, 0, ld};
  }

  bool packed() const { return x.outerStride() == (row_major ? x.cols() : x.rows()); }

  std::string index_of(Index offset) const {
    const Index ld = static_cast<Index>(x.outerStride());
    const Index major = offset / ld, minor = offset % ld;
    std::ostringstream out;
    out << '(' << (row_major ? major : minor) << ", " << (row_major ? minor : major) << ')';
    return out.str();
  }
};

template <class X>
constexpr bool has_direct_access() {
  if constexpr (is_tensor<X>)
    return is_stored_tensor<bare<X>>::value;
  else
    return (static_cast<int>(bare<X>::Flags) & Eigen::DirectAccessBit) != 0;
}

template <class X>
auto operand(X& x) {
  if constexpr (is_tensor<X>)
    return TensorOperand<X>{x};
  else
    return DenseOperand<X>{x};
}

template <class X>
struct is_fixed_tensor : std::false_type {};
template <class S, class D, int O, class I>
struct is_fixed_tensor<Eigen::TensorFixedSize<S, D, O, I>> : std::true_type {};

// The plain (owning) type an input evaluates to and a new output is made of.
template <class X, class = void>
struct plain_of;
template <class X>
struct plain_of<X, std::enable_if_t<is_dense<X>>> {
  using type = typename bare<X>::PlainObject;
};
template <class X>
struct plain_of<X, std::enable_if_t<is_tensor<X> && !is_fixed_tensor<X>::value>> {
  using Traits = Eigen::internal::traits<bare<X>>;
  using type = Eigen::Tensor<std::remove_const_t<typename Traits::Scalar>, Traits::NumDimensions, Traits::Layout,
                             typename Traits::Index>;
};
template <class X>
struct plain_of<X, std::enable_if_t<is_fixed_tensor<X>::value>> {
  using type = X;
};
template <class X>
using plain_t = typename plain_of<bare<X>>::type;

// A new object shaped like x (uninitialised: normkit writes every element).
template <class X>
plain_t<X> make_like(const X& x) {
  if constexpr (is_dense<X>)
    return plain_t<X>(x.rows(), x.cols());
  else if constexpr (is_fixed_tensor<plain_t<X>>::value)
    return plain_t<X>();
  else
    return plain_t<X>(x.dimensions());
}

}  // namespace normkit::detail
