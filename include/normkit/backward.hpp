// normkit/backward.hpp - gradients: dx from dy, for every functor.
//
//     auto dx = f.backward(saved, dy, axes);            // new object shaped like saved
//     f.backward(saved, dy, axes, dx);                   // into dx (dx may be dy itself)
//     ln.backward(x, dy, axes, normkit::affine(gamma, beta), dx,
//                 normkit::affine_grads(dgamma, dbeta));  // LayerNorm / RMSNorm
// `saved` is the forward's input x, or its output y for the functors whose
// backward_from_output is true (Softmax, LogSoftmax). Every check runs before
// the first write, as in the forward; the gradient of each guard is
// documented in docs/backward.md.
#pragma once

#include <array>
#include <type_traits>
#include <utility>
#include <vector>

#include "affine.hpp"
#include "axes.hpp"
#include "detail/engine.hpp"
#include "detail/saved_kernels.hpp"
#include "detail/operands.hpp"
#include "errors.hpp"
#include "normalize.hpp"
#include "policy.hpp"

namespace normkit {

/// Where LayerNorm / RMSNorm write d(loss)/d(gamma) and d(loss)/d(beta):
/// writable objects of gamma's (and beta's) shape. Overwritten, not
/// accumulated into.
template <class T>
struct AffineGrads {
  T* dgamma = nullptr;
  T* dbeta = nullptr;
  Weight<T> gamma_shape;  // dims, for the shape checks
  Weight<T> beta_shape;
};

namespace detail {

template <class G>
auto writable_weight(G& g) {
  static_assert(!std::is_const<std::remove_pointer_t<decltype(g.data())>>::value,
                "normkit::affine_grads: dgamma / dbeta must be writable");
  auto w = weight_of(g);
  using S = typename decltype(w)::value_type;
  return std::pair<S*, Weight<S>>{g.data(), w};
}

template <class K, class = void>
struct has_validate : std::false_type {};
template <class K>
struct has_validate<K, std::void_t<decltype(std::declval<const K&>().validate())>> : std::true_type {};

template <class F, class Operand>
void check_gradient_shape(const char* what, const Operand& saved, const Operand& other, const char* saved_name) {
  for (int a = 0; a < Operand::rank; ++a)
    if (saved.dimension(a) != other.dimension(a))
      fail<shape_error>(F::name, "::backward: ", what, " has shape ", shape_string(other.x), " but ", saved_name,
                        " has shape ", shape_string(saved.x));
}

template <class Saved, class Dy>
void check_operands_match() {
  static_assert(Saved::rank == Dy::rank, "normkit: dy must have the rank of x");
  static_assert(Saved::row_major == Dy::row_major, "normkit: dy must have the layout / storage order of x");
}

// stats: a const normkit::Saved (saved.hpp) whose statistics replace the
// forward's reduction, or null.
template <class F, class X, class Dy, class Out, class Executor = Serial, class SavedT = void>
void backward_checked(const F& f, const X& saved_, const Dy& dy_, const Axes& axes, Out&& out_,
                      const Affine<typename F::value_type>* w, const AffineGrads<typename F::value_type>* grads,
                      const Executor& executor = {}, const SavedT* stats = nullptr) {
  using T = typename F::value_type;
  const char* saved_name = F::backward_from_output ? "y" : "x";
  with_addressable(saved_, [&](const auto& ss) {
    with_addressable(dy_, [&](const auto& dys) {
      const auto saved = operand(ss);
      const auto dy = operand(dys);
      auto out = operand(out_);
      check_scalar<F, decltype(saved)>();
      check_scalar<F, decltype(dy)>();
      check_scalar<F, decltype(out)>();
      check_operands_match<decltype(saved), decltype(dy)>();
      check_operands_match<decltype(saved), decltype(out)>();
      const AxisRange r = check_input(f, saved, axes);
      const auto kernel = f.gradient();
      if constexpr (has_validate<std::decay_t<decltype(kernel)>>::value) kernel.validate();
      check_gradient_shape<F>("dy", saved, dy, saved_name);
      check_output<F>(saved, out);
      check_packed<F>(out, r, "dx");
      check_packed<F>(dy, r, "dy");
      if constexpr (!std::is_void<SavedT>::value) {
        static_assert(!F::backward_from_output,
                      "normkit::backward: Softmax and LogSoftmax differentiate from their output y and take no "
                      "saved statistics");
        static_assert(SavedT::rank == decltype(saved)::rank && SavedT::row_major == decltype(saved)::row_major,
                      "normkit::backward: the Saved statistics must have x's rank and layout");
        stats->check(f, saved, r);
      }
      Weights<T> weights;
      if (w) {
        check_weight(F::name, "gamma", w->gamma, saved, r);
        check_weight(F::name, "beta", w->beta, saved, r);
        weights = {w->gamma.data, w->beta.data};
      }
      Index n = 1;
      for (int a = r.first; a < r.last; ++a) n *= saved.dimension(a);
      if (grads) {
        if (grads->dgamma) {
          if (!w || !w->gamma) fail<shape_error>(F::name, "::backward: dgamma requested without gamma");
          check_weight(F::name, "dgamma", grads->gamma_shape, saved, r);
        }
        if (grads->dbeta) check_weight(F::name, "dbeta", grads->beta_shape, saved, r);
      }
      const SliceView<const T> xv = saved.view(static_cast<const T*>(saved.data()), r);
      const SliceView<const T> dyv = dy.view(static_cast<const T*>(dy.data()), r);
      if (xv.outer_stride != dyv.outer_stride || xv.step != dyv.step)
        fail<shape_error>(F::name, "::backward: dy must have the same strides as ", saved_name,
                          " (a block of a matrix with another leading dimension); copy it first");
      if (f.nan_policy == NanPolicy::raise) {
        const Index at = find_nan(xv, executor);
        if (at >= 0)
          fail<nan_error>(F::name, "::backward: NaN at index ", saved.index_of(at), " of ", saved_name,
                          " (nan_policy = raise)");
      }
      const Inputs<T, 2> in{{xv.data, dyv.data}, xv.outer, xv.n, xv.inner, xv.outer_stride, xv.step};
      using Map = typename map_of<std::decay_t<decltype(kernel)>>::type;
      constexpr std::size_t P = position_sums_of<Map>::value;
      const bool wanted = P > 0 && grads && (grads->dgamma || grads->dbeta);
      std::vector<double> sums(wanted ? std::size_t(n) * P : 0);
      if constexpr (std::is_void<SavedT>::value)
        run(kernel, in, out.view(out.data(), r), weights, executor, wanted ? sums.data() : nullptr);
      else
        run_from_saved<F>(kernel, in, out.view(out.data(), r), weights, executor, wanted ? sums.data() : nullptr,
                          stats->field_data());
      if (wanted && grads->dgamma)
        for (Index e = 0; e < n; ++e) grads->dgamma[e] = T(sums[std::size_t(e)]);
      if (wanted && grads->dbeta)
        for (Index e = 0; e < n; ++e) grads->dbeta[e] = T(sums[std::size_t(n + e)]);
    });
  });
}

}  // namespace detail

/// dgamma only (RMSNorm, or LayerNorm without beta).
template <class G>
auto affine_grads(G&& dgamma) {
  auto [p, shape] = detail::writable_weight(dgamma);
  using S = typename decltype(shape)::value_type;
  return AffineGrads<S>{p, nullptr, shape, {}};
}

/// dgamma and dbeta.
template <class G, class B>
auto affine_grads(G&& dgamma, B&& dbeta) {
  auto [p, gs] = detail::writable_weight(dgamma);
  auto [q, bs] = detail::writable_weight(dbeta);
  static_assert(std::is_same<decltype(gs), decltype(bs)>::value,
                "normkit::affine_grads: dgamma and dbeta must have the same scalar type");
  using S = typename decltype(gs)::value_type;
  return AffineGrads<S>{p, q, gs, bs};
}

/// dx for f at `saved` (x, or y where F::backward_from_output), as a new
/// object of saved's shape and layout.
template <class F, class X, class Dy, class = std::enable_if_t<detail::is_operand<X> && detail::is_operand<Dy>>>
auto backward(const F& f, const X& saved, const Dy& dy, const Axes& axes) {
  return detail::with_addressable(saved, [&](const auto& xs) {
    auto out = detail::make_like(xs);
    detail::backward_checked(f, xs, dy, axes, out, nullptr, nullptr);
    return out;
  });
}

/// dx into out (which may be dy itself).
template <class F, class X, class Dy, class Out,
          class = std::enable_if_t<detail::is_operand<X> && detail::is_operand<Dy> && detail::is_operand<Out>>>
void backward(const F& f, const X& saved, const Dy& dy, const Axes& axes, Out&& out) {
  static_assert(detail::has_direct_access<Out>(), "normkit: dx must be a Tensor, TensorMap, Matrix, Array or Map");
  detail::backward_checked(f, saved, dy, axes, out, nullptr, nullptr);
}

template <class F, class X, class Dy, class Out, class Device,
          class = std::enable_if_t<detail::is_operand<X> && detail::is_operand<Dy> && detail::is_operand<Out> &&
                                   detail::is_parallel_device<Device>::value>>
void backward(const F& f, const X& saved, const Dy& dy, const Axes& axes, Out&& out, const Device& device) {
  static_assert(detail::has_direct_access<Out>(), "normkit: dx must be a Tensor, TensorMap, Matrix, Array or Map");
  detail::backward_checked(f, saved, dy, axes, out, nullptr, nullptr, detail::OnDevice<Device>{device});
}

/// LayerNorm / RMSNorm with gamma (and beta): dx, and optionally dgamma/dbeta.
template <class F, class X, class Dy, class = std::enable_if_t<detail::is_operand<X> && detail::is_operand<Dy>>>
auto backward(const F& f, const X& x, const Dy& dy, const Axes& axes, const Affine<typename F::value_type>& w) {
  static_assert(detail::accepts_weights<F>::value, "normkit: only LayerNorm and RMSNorm take gamma/beta");
  return detail::with_addressable(x, [&](const auto& xs) {
    auto out = detail::make_like(xs);
    detail::backward_checked(f, xs, dy, axes, out, &w, nullptr);
    return out;
  });
}

template <class F, class X, class Dy, class Out,
          class = std::enable_if_t<detail::is_operand<X> && detail::is_operand<Dy> && detail::is_operand<Out>>>
void backward(const F& f, const X& x, const Dy& dy, const Axes& axes, const Affine<typename F::value_type>& w,
              Out&& out, const AffineGrads<typename F::value_type>& grads = {}) {
  static_assert(detail::accepts_weights<F>::value, "normkit: only LayerNorm and RMSNorm take gamma/beta");
  static_assert(detail::has_direct_access<Out>(), "normkit: dx must be a Tensor, TensorMap, Matrix, Array or Map");
  detail::backward_checked(f, x, dy, axes, out, &w, &grads);
}

template <class F, class X, class Dy, class Out, class Device,
          class = std::enable_if_t<detail::is_operand<X> && detail::is_operand<Dy> && detail::is_operand<Out> &&
                                   detail::is_parallel_device<Device>::value>>
void backward(const F& f, const X& x, const Dy& dy, const Axes& axes, const Affine<typename F::value_type>& w,
              Out&& out, const AffineGrads<typename F::value_type>& grads, const Device& device) {
  static_assert(detail::accepts_weights<F>::value, "normkit: only LayerNorm and RMSNorm take gamma/beta");
  static_assert(detail::has_direct_access<Out>(), "normkit: dx must be a Tensor, TensorMap, Matrix, Array or Map");
  detail::backward_checked(f, x, dy, axes, out, &w, &grads, detail::OnDevice<Device>{device});
}

}  // namespace normkit

// The backward members every functor with a gradient shares.
#define NORMKIT_BACKWARD_OPERATORS                                                                                \
  template <class X, class Dy, class = std::enable_if_t<::normkit::detail::is_operand<X>>>                        \
  auto backward(const X& saved, const Dy& dy, const ::normkit::Axes& axes) const {                                \
    return ::normkit::backward(*this, saved, dy, axes);                                                           \
  }                                                                                                               \
  template <class X, class Dy, class Out, class = std::enable_if_t<::normkit::detail::is_operand<Out>>>           \
  void backward(const X& saved, const Dy& dy, const ::normkit::Axes& axes, Out&& dx) const {                      \
    ::normkit::backward(*this, saved, dy, axes, std::forward<Out>(dx));                                           \
  }                                                                                                               \
  template <class X, class Dy, class Out, class Device,                                                            \
            class = std::enable_if_t<::normkit::detail::is_parallel_device<Device>::value>>                       \
  void backward(const X& saved, const Dy& dy, const ::normkit::Axes& axes, Out&& dx, const Device& device) const { \
    ::normkit::backward(*this, saved, dy, axes, std::forward<Out>(dx), device);                                   \
  }

#define NORMKIT_WEIGHTED_BACKWARD_OPERATORS                                                                       \
  template <class X, class Dy>                                                                                    \
  auto backward(const X& x, const Dy& dy, const ::normkit::Axes& axes, const ::normkit::Affine<T>& w) const {     \
    return ::normkit::backward(*this, x, dy, axes, w);                                                            \
  }                                                                                                               \
  template <class X, class Dy, class Out>                                                                         \
  void backward(const X& x, const Dy& dy, const ::normkit::Axes& axes, const ::normkit::Affine<T>& w, Out&& dx,  \
                const ::normkit::AffineGrads<T>& grads = {}) const {                                              \
    ::normkit::backward(*this, x, dy, axes, w, std::forward<Out>(dx), grads);                                     \
  }                                                                                                               \
  template <class X, class Dy, class Out, class Device,                                                           \
            class = std::enable_if_t<::normkit::detail::is_parallel_device<Device>::value>>                       \
  void backward(const X& x, const Dy& dy, const ::normkit::Axes& axes, const ::normkit::Affine<T>& w, Out&& dx,  \
                const ::normkit::AffineGrads<T>& grads, const Device& device) const {                             \
    ::normkit::backward(*this, x, dy, axes, w, std::forward<Out>(dx), grads, device);                             \
  }
