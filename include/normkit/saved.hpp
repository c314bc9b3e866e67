// normkit/saved.hpp - per-slice statistics out of a forward and into its
// backward.
//
//     auto [y, saved] = normkit::forward(x, ln, axes);          // y, and mean / rstd per slice
//     saved["mean"]                                              // a tensor shaped like x, normalized axes of size 1
//     auto dx = normkit::backward(ln, x, dy, axes, saved);       // no second reduction of the moments
//
// Every functor whose backward reads x saves what that backward needs
// (F::saved_names); LogSoftmax saves max and log-sum-exp for losses (its
// backward reads y). Statistics are kept in double whatever the element
// type: a float mean of 1e4 + 1e-2 N(0, 1) data is off by up to 5e-4, 5 % of
// the spread, which a float backward from it would carry into every x_hat.
#pragma once

#include <array>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <unsupported/Eigen/CXX11/Tensor>

#include "affine.hpp"
#include "axes.hpp"
#include "backward.hpp"
#include "detail/operands.hpp"
#include "detail/saved_kernels.hpp"
#include "errors.hpp"
#include "normalize.hpp"

namespace normkit {

/// Whether functor F saves per-slice statistics (normkit::forward).
template <class F>
inline constexpr bool saves_statistics_v = detail::saves_statistics<F>::value;

/// The per-slice statistics of one forward call of F on a rank-Rank tensor
/// of layout Layout (a matrix is rank 2, in its storage order). Each field
/// is an Eigen::Tensor<double, Rank, Layout> of x's shape with the
/// normalized axes of size 1 (PyTorch's keepdim), named by F::saved_names:
///   SumToOne "sum"; L1Norm, L2Norm, PowerNorm, MaxNorm "norm" (unclamped);
///   MinMax "min", "max"; ZScore "mean", "std"; LayerNorm "mean", "rstd";
///   RMSNorm "rstd"; LogSoftmax "max", "logsumexp".
/// It also records the forward's options, x's shape and the axes, which a
/// backward taking it checks against its own.
template <class F, int Rank, int Layout = Eigen::ColMajor>
class Saved {
  static_assert(detail::saves_statistics<F>::value,
                "normkit::Saved: this functor saves no statistics (Softmax: its backward reads the output y; "
                "LogSoftmax saves max and logsumexp)");

 public:
  static constexpr std::size_t size = F::saved_names.size();
  static constexpr int rank = Rank;
  static constexpr bool row_major = Layout == Eigen::RowMajor;
  using Field = Eigen::Tensor<double, Rank, Layout>;

  /// Whether a forward has filled it.
  bool empty() const { return !filled_; }
  /// The options of the forward that filled it.
  const F& functor() const { return functor_; }
  /// x's shape, and the normalized axes [first, last).
  const std::array<Eigen::Index, Rank>& input_dimensions() const { return dims_; }
  AxisRange axes() const { return axes_; }

  /// The names of the fields, in order.
  static constexpr const auto& names() { return F::saved_names; }
  const Field& field(std::size_t k) const { return fields_.at(k); }
  /// The field called `name`; throws std::out_of_range for another name.
  const Field& operator[](std::string_view name) const { return fields_[index_of(name)]; }

  // For forward / backward: resize, record, and where the fields go.
  template <class Operand>
  std::array<double*, detail::max_saved> prepare(const F& f, const Operand& x, AxisRange r) {
    functor_ = f;
    axes_ = r;
    std::array<Eigen::Index, Rank> kept;
    for (int a = 0; a < Rank; ++a) {
      dims_[a] = x.dimension(a);
      kept[a] = a >= r.first && a < r.last ? 1 : dims_[a];
    }
    std::array<double*, detail::max_saved> out{};
    for (std::size_t k = 0; k < size; ++k) {
      fields_[k].resize(kept);
      out[k] = fields_[k].data();
    }
    filled_ = true;
    return out;
  }

  template <class Operand>
  void check(const F& f, const Operand& x, AxisRange r) const {
    if (!filled_) detail::fail<shape_error>(F::name, "::backward: the saved statistics are empty (no forward filled them)");
    if (functor_.options() != f.options())
      detail::fail<option_error>(F::name,
                                 "::backward: the saved statistics come from a forward with other options");
    bool same = r.first == axes_.first && r.last == axes_.last;
    for (int a = 0; a < Rank; ++a) same = same && x.dimension(a) == dims_[a];
    for (std::size_t k = 0; k < size; ++k)
      for (int a = 0; a < Rank; ++a)
        same = same && fields_[k].dimension(a) == (a >= r.first && a < r.last ? 1 : dims_[a]);
    if (!same)
      detail::fail<shape_error>(F::name, "::backward: the saved statistics are of x with shape ", shape(dims_),
                                " over axes [", axes_.first, ", ", axes_.last, "), not of this x (shape ",
                                detail::shape_string(x.x), ") over axes [", r.first, ", ", r.last, ")");
  }

  std::array<const double*, detail::max_saved> field_data() const {
    std::array<const double*, detail::max_saved> p{};
    for (std::size_t k = 0; k < size; ++k) p[k] = fields_[k].data();
    return p;
  }

 private:
  static std::size_t index_of(std::string_view name) {
    for (std::size_t k = 0; k < size; ++k)
      if (name == F::saved_names[k]) return k;
    throw std::out_of_range("normkit::Saved: " + std::string(F::name) + " saves no statistic called \"" +
                            std::string(name) + "\"");
  }

  static std::string shape(const std::array<Eigen::Index, Rank>& d) {
    std::string s = "(";
    for (int a = 0; a < Rank; ++a) s += (a ? ", " : "") + std::to_string(d[a]);
    return s + ")";
  }

  F functor_{};
  std::array<Eigen::Index, Rank> dims_{};
  AxisRange axes_{0, 0};
  std::array<Field, size> fields_;
  bool filled_ = false;
};

/// The Saved type for functor F applied to objects of type X.
template <class F, class X>
using saved_t = Saved<F, decltype(detail::operand(std::declval<const X&>()))::rank,
                      decltype(detail::operand(std::declval<const X&>()))::row_major ? Eigen::RowMajor
                                                                                    : Eigen::ColMajor>;

/// y = f(x) along axes as a new object, and the per-slice statistics.
template <class X, class F, class = std::enable_if_t<detail::is_operand<X>>>
auto forward(const X& x, const F& f, const Axes& axes) {
  return detail::with_addressable(x, [&](const auto& xs) {
    std::pair<std::decay_t<decltype(detail::make_like(xs))>, saved_t<F, X>> result{detail::make_like(xs), {}};
    detail::normalize_checked(xs, f, axes, result.first, nullptr, detail::Serial{}, &result.second);
    return result;
  });
}

/// y = f(x) into out, and the statistics into saved (resized as needed).
template <class X, class F, class Out, int R, int L,
          class = std::enable_if_t<detail::is_operand<X> && detail::is_operand<Out>>>
void forward(const X& x, const F& f, const Axes& axes, Out&& out, Saved<F, R, L>& saved) {
  static_assert(detail::has_direct_access<Out>(), "normkit: the output must be a Tensor, TensorMap, Matrix, Array or Map");
  detail::normalize_checked(x, f, axes, out, nullptr, detail::Serial{}, &saved);
}

template <class X, class F, class Out, int R, int L, class Device,
          class = std::enable_if_t<detail::is_operand<X> && detail::is_operand<Out> &&
                                   detail::is_parallel_device<Device>::value>>
void forward(const X& x, const F& f, const Axes& axes, Out&& out, Saved<F, R, L>& saved, const Device& device) {
  static_assert(detail::has_direct_access<Out>(), "normkit: the output must be a Tensor, TensorMap, Matrix, Array or Map");
  detail::normalize_checked(x, f, axes, out, nullptr, detail::OnDevice<Device>{device}, &saved);
}

/// LayerNorm / RMSNorm with gamma (and beta).
template <class X, class F, class = std::enable_if_t<detail::is_operand<X>>>
auto forward(const X& x, const F& f, const Axes& axes, const Affine<typename F::value_type>& w) {
  static_assert(detail::accepts_weights<F>::value, "normkit: only LayerNorm and RMSNorm take gamma/beta");
  return detail::with_addressable(x, [&](const auto& xs) {
    std::pair<std::decay_t<decltype(detail::make_like(xs))>, saved_t<F, X>> result{detail::make_like(xs), {}};
    detail::normalize_checked(xs, f, axes, result.first, &w, detail::Serial{}, &result.second);
    return result;
  });
}

template <class X, class F, class Out, int R, int L,
          class = std::enable_if_t<detail::is_operand<X> && detail::is_operand<Out>>>
void forward(const X& x, const F& f, const Axes& axes, const Affine<typename F::value_type>& w, Out&& out,
             Saved<F, R, L>& saved) {
  static_assert(detail::accepts_weights<F>::value, "normkit: only LayerNorm and RMSNorm take gamma/beta");
  static_assert(detail::has_direct_access<Out>(), "normkit: the output must be a Tensor, TensorMap, Matrix, Array or Map");
  detail::normalize_checked(x, f, axes, out, &w, detail::Serial{}, &saved);
}

template <class X, class F, class Out, int R, int L, class Device,
          class = std::enable_if_t<detail::is_operand<X> && detail::is_operand<Out> &&
                                   detail::is_parallel_device<Device>::value>>
void forward(const X& x, const F& f, const Axes& axes, const Affine<typename F::value_type>& w, Out&& out,
             Saved<F, R, L>& saved, const Device& device) {
  static_assert(detail::accepts_weights<F>::value, "normkit: only LayerNorm and RMSNorm take gamma/beta");
  static_assert(detail::has_direct_access<Out>(), "normkit: the output must be a Tensor, TensorMap, Matrix, Array or Map");
  detail::normalize_checked(x, f, axes, out, &w, detail::OnDevice<Device>{device}, &saved);
}

/// dx from x, dy and the statistics its forward saved, as a new object.
template <class F, class X, class Dy, int R, int L,
          class = std::enable_if_t<detail::is_operand<X> && detail::is_operand<Dy>>>
auto backward(const F& f, const X& x, const Dy& dy, const Axes& axes, const Saved<F, R, L>& saved) {
  return detail::with_addressable(x, [&](const auto& xs) {
    auto out = detail::make_like(xs);
    detail::backward_checked(f, xs, dy, axes, out, nullptr, nullptr, detail::Serial{}, &saved);
    return out;
  });
}

/// dx into out (which may be dy itself).
template <class F, class X, class Dy, class Out, int R, int L,
          class = std::enable_if_t<detail::is_operand<X> && detail::is_operand<Dy> && detail::is_operand<Out>>>
void backward(const F& f, const X& x, const Dy& dy, const Axes& axes, Out&& out, const Saved<F, R, L>& saved) {
  static_assert(detail::has_direct_access<Out>(), "normkit: dx must be a Tensor, TensorMap, Matrix, Array or Map");
  detail::backward_checked(f, x, dy, axes, out, nullptr, nullptr, detail::Serial{}, &saved);
}

template <class F, class X, class Dy, class Out, int R, int L, class Device,
          class = std::enable_if_t<detail::is_operand<X> && detail::is_operand<Dy> && detail::is_operand<Out> &&
                                   detail::is_parallel_device<Device>::value>>
void backward(const F& f, const X& x, const Dy& dy, const Axes& axes, Out&& out, const Saved<F, R, L>& saved,
              const Device& device) {
  static_assert(detail::has_direct_access<Out>(), "normkit: dx must be a Tensor, TensorMap, Matrix, Array or Map");
  detail::backward_checked(f, x, dy, axes, out, nullptr, nullptr, detail::OnDevice<Device>{device}, &saved);
}

/// LayerNorm / RMSNorm with gamma (and beta): dx, and optionally dgamma/dbeta.
template <class F, class X, class Dy, class Out, int R, int L,
          class = std::enable_if_t<detail::is_operand<X> && detail::is_operand<Dy> && detail::is_operand<Out>>>
void backward(const F& f, const X& x, const Dy& dy, const Axes& axes, const Affine<typename F::value_type>& w,
              Out&& out, const AffineGrads<typename F::value_type>& grads, const Saved<F, R, L>& saved) {
  static_assert(detail::accepts_weights<F>::value, "normkit: only LayerNorm and RMSNorm take gamma/beta");
  static_assert(detail::has_direct_access<Out>(), "normkit: dx must be a Tensor, TensorMap, Matrix, Array or Map");
  detail::backward_checked(f, x, dy, axes, out, &w, &grads, detail::Serial{}, &saved);
}

template <class F, class X, class Dy, class Out, int R, int L, class Device,
          class = std::enable_if_t<detail::is_operand<X> && detail::is_operand<Dy> && detail::is_operand<Out> &&
                                   detail::is_parallel_device<Device>::value>>
void backward(const F& f, const X& x, const Dy& dy, const Axes& axes, const Affine<typename F::value_type>& w,
              Out&& out, const AffineGrads<typename F::value_type>& grads, const Saved<F, R, L>& saved,
              const Device& device) {
  static_assert(detail::accepts_weights<F>::value, "normkit: only LayerNorm and RMSNorm take gamma/beta");
  static_assert(detail::has_direct_access<Out>(), "normkit: dx must be a Tensor, TensorMap, Matrix, Array or Map");
  detail::backward_checked(f, x, dy, axes, out, &w, &grads, detail::OnDevice<Device>{device}, &saved);
}

}  // namespace normkit
