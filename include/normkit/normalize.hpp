// normkit/normalize.hpp - the entry points every functor's call operators use.
//
//     auto y = normkit::normalize(x, functor, axes);        // new object
//     normkit::normalize(x, functor, axes, out);            // into out
//     normkit::normalize_inplace(x, functor, axes);
// LayerNorm and RMSNorm also take normkit::affine(gamma, beta) after axes.
//
// Everything is checked before the first write: axes, the functor's options,
// shapes of out / gamma / beta, and (NanPolicy::raise) the input for NaNs.
#pragma once

#include <type_traits>
#include <utility>

#include "affine.hpp"
#include "axes.hpp"
#include "detail/engine.hpp"
#include "detail/saved_kernels.hpp"
#include "detail/operands.hpp"
#include "errors.hpp"
#include "policy.hpp"

namespace normkit {
namespace detail {

template <class F, class Operand>
void check_scalar() {
  static_assert(std::is_same<typename F::value_type, float>::value || std::is_same<typename F::value_type, double>::value,
                "normkit functors are defined for float and double");
  static_assert(std::is_same<typename F::value_type, std::remove_const_t<typename Operand::Scalar>>::value,
                "normkit: the functor's scalar type (e.g. L2Norm<float>) must match the tensor's scalar type");
}

// Over both axes of a matrix the slice is its whole storage, which must then
// be one packed run (not a block of a larger matrix).
template <class F, class Operand>
void check_packed(const Operand& x, AxisRange r, const char* which) {
  if constexpr (is_dense<decltype(x.x)>) {
    if (r.last - r.first == 2 && !x.packed())
      fail<shape_error>(F::name, "normalizing ", which,
                        " over both axes needs packed storage, but it is a block with outer stride ", x.x.outerStride(),
                        "; copy it first");
  }
}

template <class F, class Operand>
AxisRange check_input(const F& f, const Operand& x, const Axes& axes) {
  const AxisRange r = resolve_axes(F::name, axes, Operand::rank);
  if (x.size() == 0) fail<shape_error>(F::name, "x is empty (shape ", shape_string(x.x), ")");
  check_packed<F>(x, r, "x");
  Index n = 1;
  for (int a = r.first; a < r.last; ++a) n *= x.dimension(a);
  check_policy(F::name, f.nan_policy);
  f.validate(n);
  return r;
}

template <class F, class In, class Out>
void check_output(const In& x, const Out& out) {
  static_assert(!std::is_const<std::remove_pointer_t<decltype(out.data())>>::value,
                "normkit: the output must be writable (not a TensorMap of a const tensor)");
  static_assert(In::rank == Out::rank, "normkit: the output must have the input's rank");
  bool same = true;
  for (int a = 0; a < In::rank; ++a) same = same && x.dimension(a) == out.dimension(a);
  if (!same)
    fail<shape_error>(F::name, "output has shape ", shape_string(out.x), " but x has shape ", shape_string(x.x));
  if constexpr (is_dense<decltype(out.x)>) {
    if (out.x.innerStride() != 1) fail<shape_error>(F::name, "output must have inner stride 1");
  }
}

// Evaluates x when normkit cannot address its storage directly.
template <class X, class Body>
decltype(auto) with_addressable(const X& x, Body&& body) {
  if constexpr (!has_direct_access<X>()) {
    const plain_t<X> evaluated = x;
    return body(evaluated);
  } else if constexpr (is_dense<X>) {
    if (x.innerStride() != 1) {
      const plain_t<X> evaluated = x;
      return body(evaluated);
    }
    return body(x);
  } else {
    return body(x);
  }
}

// Eigen devices that can split work: ThreadPoolDevice (needs EIGEN_USE_THREADS
// defined before the first Eigen include, as Eigen itself requires).
template <class D, class = void>
struct is_parallel_device : std::false_type {};
template <class D>
struct is_parallel_device<D, decltype((void)std::declval<const D&>().numThreads())> : std::true_type {};

// saved: a normkit::Saved to fill with the per-slice statistics (saved.hpp).
template <class F, class X, class Out, class Executor = Serial, class SavedT = void>
void normalize_checked(const X& x_, const F& f, const Axes& axes, Out&& out_, const Affine<typename F::value_type>* w,
                       const Executor& executor = {}, SavedT* saved = nullptr) {
  using T = typename F::value_type;
  constexpr bool reorder = [] {
    if constexpr (is_dense<X> && is_dense<Out>)
      return bool(bare<X>::IsRowMajor) != bool(bare<Out>::IsRowMajor);
    else
      return false;
  }();
  if constexpr (reorder) {
    // The engine walks input and output alike: give x the output's storage order.
    using Reordered =
        Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, bare<Out>::IsRowMajor ? Eigen::RowMajor : Eigen::ColMajor>;
    static_assert(std::is_void<SavedT>::value,
                  "normkit::forward: x and the output must have the same storage order to save statistics");
    const Reordered reordered = x_;
    normalize_checked(reordered, f, axes, std::forward<Out>(out_), w, executor);
  } else {
    with_addressable(x_, [&](const auto& xs) {
      const auto x = operand(xs);
      auto out = operand(out_);
      check_scalar<F, decltype(x)>();
      check_scalar<F, decltype(out)>();
      static_assert(
          decltype(x)::row_major == decltype(out)::row_major,
          "normkit: input and output must have the same layout / storage order (as in Eigen tensor assignments)");
      const AxisRange r = check_input(f, x, axes);
      check_output<F>(x, out);
      check_packed<F>(out, r, "the output");
      Weights<T> weights;
      if (w) {
        check_weight(F::name, "gamma", w->gamma, x, r);
        check_weight(F::name, "beta", w->beta, x, r);
        weights = {w->gamma.data, w->beta.data};
      }
      const SliceView<const T> in = x.view(static_cast<const T*>(x.data()), r);
      if (f.nan_policy == NanPolicy::raise) {
        const Index at = find_nan(in, executor);
        if (at >= 0) fail<nan_error>(F::name, "NaN at index ", x.index_of(at), " of x (nan_policy = raise)");
      }
      if constexpr (std::is_void<SavedT>::value) {
        run(f, in, out.view(out.data(), r), weights, executor);
      } else {
        static_assert(SavedT::rank == decltype(x)::rank && SavedT::row_major == decltype(x)::row_major,
                      "normkit::forward: the Saved statistics must have x's rank and layout (normkit::saved_t)");
        run_saving(f, in, out.view(out.data(), r), weights, executor, saved->prepare(f, x, r));
      }
    });
  }
}

}  // namespace detail

/// Whether functor F takes normkit::affine(gamma, beta) (LayerNorm, RMSNorm).
template <class F>
inline constexpr bool accepts_affine_v = detail::accepts_weights<F>::value;

/// A new object of x's shape and layout (an Eigen::Tensor, the same
/// TensorFixedSize, or the Matrix/Array plain type) holding f applied along axes.
template <class X, class F, class = std::enable_if_t<detail::is_operand<X>>>
auto normalize(const X& x, const F& f, const Axes& axes) {
  return detail::with_addressable(x, [&](const auto& xs) {
    auto out = detail::make_like(xs);
    detail::normalize_checked(xs, f, axes, out, nullptr);
    return out;
  });
}

/// Writes f applied along axes into out, which must have x's shape.
template <class X, class F, class Out, class = std::enable_if_t<detail::is_operand<X> && detail::is_operand<Out>>>
void normalize(const X& x, const F& f, const Axes& axes, Out&& out) {
  static_assert(detail::has_direct_access<Out>(),
                "normkit: the output must be a Tensor, TensorMap, Matrix, Array or Map");
  detail::normalize_checked(x, f, axes, out, nullptr);
}

/// Replaces x by f applied along axes (bit-identical to the out-of-place call).
template <class X, class F, class = std::enable_if_t<detail::is_operand<X>>>
void normalize_inplace(X&& x, const F& f, const Axes& axes) {
  static_assert(detail::has_direct_access<X>(), "normkit: in-place needs a Tensor, TensorMap, Matrix, Array or Map");
  detail::normalize_checked(x, f, axes, x, nullptr);
}

template <class X, class F, class = std::enable_if_t<detail::is_operand<X>>>
auto normalize(const X& x, const F& f, const Axes& axes, const Affine<typename F::value_type>& w) {
  static_assert(detail::accepts_weights<F>::value, "normkit: only LayerNorm and RMSNorm take gamma/beta");
  return detail::with_addressable(x, [&](const auto& xs) {
    auto out = detail::make_like(xs);
    detail::normalize_checked(xs, f, axes, out, &w);
    return out;
  });
}

template <class X, class F, class Out, class = std::enable_if_t<detail::is_operand<X> && detail::is_operand<Out>>>
void normalize(const X& x, const F& f, const Axes& axes, const Affine<typename F::value_type>& w, Out&& out) {
  static_assert(detail::accepts_weights<F>::value, "normkit: only LayerNorm and RMSNorm take gamma/beta");
  static_assert(detail::has_direct_access<Out>(),
                "normkit: the output must be a Tensor, TensorMap, Matrix, Array or Map");
  detail::normalize_checked(x, f, axes, out, &w);
}

template <class X, class F, class = std::enable_if_t<detail::is_operand<X>>>
void normalize_inplace(X&& x, const F& f, const Axes& axes, const Affine<typename F::value_type>& w) {
  static_assert(detail::accepts_weights<F>::value, "normkit: only LayerNorm and RMSNorm take gamma/beta");
  static_assert(detail::has_direct_access<X>(), "normkit: in-place needs a Tensor, TensorMap, Matrix, Array or Map");
  detail::normalize_checked(x, f, axes, x, &w);
}

/// Multithreaded: the slices (on a strided axis, blocks of the contiguous
/// dimension) are split across the threads of an Eigen::ThreadPoolDevice.
/// Results are bit-identical to the single-threaded call.
template <class X, class F, class Out, class Device,
          class = std::enable_if_t<detail::is_operand<X> && detail::is_operand<Out> &&
                                   detail::is_parallel_device<Device>::value>>
void normalize(const X& x, const F& f, const Axes& axes, Out&& out, const Device& device) {
  static_assert(detail::has_direct_access<Out>(),
                "normkit: the output must be a Tensor, TensorMap, Matrix, Array or Map");
  detail::normalize_checked(x, f, axes, out, nullptr, detail::OnDevice<Device>{device});
}

template <class X, class F, class Device,
          class = std::enable_if_t<detail::is_operand<X> && detail::is_parallel_device<Device>::value>>
void normalize_inplace(X&& x, const F& f, const Axes& axes, const Device& device) {
  static_assert(detail::has_direct_access<X>(), "normkit: in-place needs a Tensor, TensorMap, Matrix, Array or Map");
  detail::normalize_checked(x, f, axes, x, nullptr, detail::OnDevice<Device>{device});
}

template <class X, class F, class Out, class Device,
          class = std::enable_if_t<detail::is_operand<X> && detail::is_operand<Out> &&
                                   detail::is_parallel_device<Device>::value>>
void normalize(const X& x, const F& f, const Axes& axes, const Affine<typename F::value_type>& w, Out&& out,
               const Device& device) {
  static_assert(detail::accepts_weights<F>::value, "normkit: only LayerNorm and RMSNorm take gamma/beta");
  static_assert(detail::has_direct_access<Out>(),
                "normkit: the output must be a Tensor, TensorMap, Matrix, Array or Map");
  detail::normalize_checked(x, f, axes, out, &w, detail::OnDevice<Device>{device});
}

template <class X, class F, class Device,
          class = std::enable_if_t<detail::is_operand<X> && detail::is_parallel_device<Device>::value>>
void normalize_inplace(X&& x, const F& f, const Axes& axes, const Affine<typename F::value_type>& w,
                       const Device& device) {
  static_assert(detail::accepts_weights<F>::value, "normkit: only LayerNorm and RMSNorm take gamma/beta");
  static_assert(detail::has_direct_access<X>(), "normkit: in-place needs a Tensor, TensorMap, Matrix, Array or Map");
  detail::normalize_checked(x, f, axes, x, &w, detail::OnDevice<Device>{device});
}

}  // namespace normkit

// The call operators every functor shares: f(x, axes), f(x, axes, out) and
// f.inplace(x, axes). A macro, because the functors must stay aggregates
// (no base class) for C++20 designated initializers and C++17 braces.
#define NORMKIT_CALL_OPERATORS                                                                                     \
  template <class X, class = std::enable_if_t<::normkit::detail::is_operand<X>>>                                   \
  auto operator()(const X& x, const ::normkit::Axes& axes) const {                                                 \
    return ::normkit::normalize(x, *this, axes);                                                                   \
  }                                                                                                                \
  template <class X, class Out,                                                                                    \
            class = std::enable_if_t<::normkit::detail::is_operand<X>&& ::normkit::detail::is_operand<Out>>>       \
  void operator()(const X& x, const ::normkit::Axes& axes, Out&& out) const {                                      \
    ::normkit::normalize(x, *this, axes, std::forward<Out>(out));                                                  \
  }                                                                                                                \
  template <class X>                                                                                               \
  void inplace(X&& x, const ::normkit::Axes& axes) const {                                                         \
    ::normkit::normalize_inplace(std::forward<X>(x), *this, axes);                                                 \
  }                                                                                                                \
  template <class X, class Out, class Device,                                                                      \
            class = std::enable_if_t<::normkit::detail::is_parallel_device<Device>::value>>                        \
  void operator()(const X& x, const ::normkit::Axes& axes, Out&& out, const Device& device) const {                \
    ::normkit::normalize(x, *this, axes, std::forward<Out>(out), device);                                          \
  }                                                                                                                \
  template <class X, class Device, class = std::enable_if_t<::normkit::detail::is_parallel_device<Device>::value>> \
  void inplace(X&& x, const ::normkit::Axes& axes, const Device& device) const {                                   \
    ::normkit::normalize_inplace(std::forward<X>(x), *this, axes, device);                                         \
  }

// LayerNorm and RMSNorm add the same three forms with normkit::affine(...).
#define NORMKIT_WEIGHTED_CALL_OPERATORS                                                                            \
  template <class X, class = std::enable_if_t<::normkit::detail::is_operand<X>>>                                   \
  auto operator()(const X& x, const ::normkit::Axes& axes, const ::normkit::Affine<T>& w) const {                  \
    return ::normkit::normalize(x, *this, axes, w);                                                                \
  }                                                                                                                \
  template <class X, class Out,                                                                                    \
            class = std::enable_if_t<::normkit::detail::is_operand<X>&& ::normkit::detail::is_operand<Out>>>       \
  void operator()(const X& x, const ::normkit::Axes& axes, const ::normkit::Affine<T>& w, Out&& out) const {       \
    ::normkit::normalize(x, *this, axes, w, std::forward<Out>(out));                                               \
  }                                                                                                                \
  template <class X>                                                                                               \
  void inplace(X&& x, const ::normkit::Axes& axes, const ::normkit::Affine<T>& w) const {                          \
    ::normkit::normalize_inplace(std::forward<X>(x), *this, axes, w);                                              \
  }                                                                                                                \
  template <class X, class Out, class Device,                                                                      \
            class = std::enable_if_t<::normkit::detail::is_parallel_device<Device>::value>>                        \
  void operator()(const X& x, const ::normkit::Axes& axes, const ::normkit::Affine<T>& w, Out&& out,               \
                  const Device& device) const {                                                                    \
    ::normkit::normalize(x, *this, axes, w, std::forward<Out>(out), device);                                       \
  }                                                                                                                \
  template <class X, class Device, class = std::enable_if_t<::normkit::detail::is_parallel_device<Device>::value>> \
  void inplace(X&& x, const ::normkit::Axes& axes, const ::normkit::Affine<T>& w, const Device& device) const {    \
    ::normkit::normalize_inplace(std::forward<X>(x), *this, axes, w, device);                                      \
  }
