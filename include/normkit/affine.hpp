// normkit/affine.hpp - elementwise gamma / beta for LayerNorm and RMSNorm.
//
//     ln(x, {1, 2, 3}, normkit::affine(gamma, beta))
//
// gamma and beta are indexed by position within the normalized slice. Pass
// either a tensor with exactly the normalized dimensions (and the same layout
// as x), or any rank-1 tensor / vector whose size is the slice length. They are
// referenced, not copied: keep them alive for the call.
#pragma once

#include <Eigen/Core>
#include <array>
#include <sstream>
#include <string>
#include <type_traits>
#include <unsupported/Eigen/CXX11/Tensor>

#include "axes.hpp"
#include "detail/operands.hpp"
#include "errors.hpp"

namespace normkit {

template <class T>
struct Weight {
  using value_type = T;
  const T* data = nullptr;
  int rank = 0;  // 1 for vectors
  bool row_major = false;
  std::array<detail::Index, 8> dims{};

  explicit operator bool() const { return data != nullptr; }

  std::string shape() const {
    std::ostringstream out;
    out << '(';
    for (int a = 0; a < rank; ++a) out << (a ? ", " : "") << dims[a];
    out << ')';
    return out.str();
  }
};

template <class T>
struct Affine {
  Weight<T> gamma;
  Weight<T> beta;
};

namespace detail {

template <class X>
auto weight_of(const X& w) {
  static_assert(is_operand<X> && has_direct_access<X>(),
                "normkit::affine: gamma and beta must be Eigen tensors, tensor maps, vectors or matrices with storage");
  using S = typename decltype(operand(w))::Scalar;
  Weight<S> out;
  out.data = w.data();
  if constexpr (is_tensor<X>) {
    out.rank = Eigen::internal::traits<X>::NumDimensions;
    static_assert(Eigen::internal::traits<X>::NumDimensions <= 8, "normkit::affine: at most 8 dimensions");
    out.row_major = static_cast<int>(Eigen::internal::traits<X>::Layout) == static_cast<int>(Eigen::RowMajor);
    for (int a = 0; a < out.rank; ++a) out.dims[a] = static_cast<Index>(w.dimension(a));
  } else {
    if (w.rows() != 1 && w.cols() != 1)
      fail<shape_error>("affine", "gamma/beta given as a matrix must be a vector, got shape ", shape_string(w));
    if (w.innerStride() != 1) fail<shape_error>("affine", "gamma/beta vectors must have inner stride 1");
    out.rank = 1;
    out.dims[0] = static_cast<Index>(w.size());
  }
  if (out.rank == 1) out.row_major = false;
  return out;
}

// Checks a weight against the normalized dims [first, last) of x.
template <class T, class Operand>
void check_weight(const char* functor, const char* which, const Weight<T>& w, const Operand& x, AxisRange r) {
  if (!w) return;
  Index n = 1;
  bool same_dims = w.rank == r.last - r.first;
  for (int a = r.first; a < r.last; ++a) {
    n *= x.dimension(a);
    if (same_dims && w.dims[a - r.first] != x.dimension(a)) same_dims = false;
  }
  Index size = 1;
  for (int a = 0; a < w.rank; ++a) size *= w.dims[a];
  if (!(same_dims || (w.rank == 1 && size == n)))
    fail<shape_error>(functor, which, " has shape ", w.shape(), " but the normalized dimensions of x have ", n,
                      " elements; pass the normalized dimensions or a vector of that length");
  if (w.rank > 1 && w.row_major != Operand::row_major)
    fail<shape_error>(functor, which, " is ", w.row_major ? "RowMajor" : "ColMajor", " but x is ",
                      Operand::row_major ? "RowMajor" : "ColMajor", "; their layouts must match");
}

}  // namespace detail

/// gamma only (y = normalized(x) * gamma).
template <class G>
auto affine(const G& gamma) {
  auto g = detail::weight_of(gamma);
  return Affine<typename decltype(g)::value_type>{g, {}};
}

/// gamma and beta (y = normalized(x) * gamma + beta).
template <class G, class B>
auto affine(const G& gamma, const B& beta) {
  auto g = detail::weight_of(gamma);
  auto b = detail::weight_of(beta);
  static_assert(std::is_same<decltype(g), decltype(b)>::value,
                "normkit::affine: gamma and beta must have the same scalar type");
  return Affine<typename decltype(g)::value_type>{g, b};
}

}  // namespace normkit
