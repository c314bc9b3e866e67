// bench/bench_normalize.cpp - normkit vs a hand-written Eigen Tensor expression,
// oneDNN and libtorch, against two memory-bound floors on the same buffers
// (and two bounds: what two passes over memory, and exp, cost on their own);
// and the backward passes (dx from x and dy) of normkit and the peers against
// floor_axpby, the loop that reads two tensors and writes one.
//
// Benchmarks are named op/impl/type/layout/cols:C/MiB:M (floors: op "floor";
// backward: op <op>_backward) and carry the same numbers as counters (cols,
// len, mib, strided, threads) so bench/report.py can parse either. Every
// implementation is compared with the long-double reference of
// tests/reference.hpp (backward: tests/reference_backward.hpp) before it is
// timed; a mismatch is reported with SkipWithError (and makes --smoke exit
// non-zero).
//
//   normkit_bench [--smoke] [--sizes=4,256] [--impls=normkit,torch,...] [--passes=forward,backward]
//                 [Google Benchmark flags]
//   --smoke:  tiny shapes (64 KiB) and --benchmark_min_time=0.001, for the CTest smoke test
//   --sizes:  tensor sizes in MiB (default 4,256)
//   --impls:  register only these (normkit normkit_mt normkit_saved eigen_naive onednn torch
//             floor_scale floor_memcpy floor_scale_mt bound_two_pass bound_exp floor_axpby); bench/run.sh
//             times the _mt impls unpinned (2 threads), the rest on one core. eigen_naive has no
//             backward; normkit_saved is the backward from the forward's saved statistics (no
//             Softmax / LogSoftmax); floor_axpby is the backward's floor, the other floors and
//             bounds the forward's
//   --passes: forward, backward or both (default)
//
// EIGEN_USE_THREADS comes from CMake: it must precede every Tensor include.
#include <benchmark/benchmark.h>

#include <normkit/normkit.hpp>
#include <unsupported/Eigen/CXX11/Tensor>

// The engine's instantiations come from the objects bench/CMakeLists.txt
// links in (built once, in parallel); a build that changes the engine's code
// (normkit_bench_nostream) compiles its own here instead.
#ifndef NORMKIT_BENCH_OWN_ENGINE
#include "engine_instances.hpp"
#endif

#include "bench_ops.hpp"
#include "reference.hpp"
#include "reference_backward.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace bench {
namespace {

using Eigen::Index;
using Runner = std::function<void()>;

constexpr int kThreads = 2;

// ------------------------------------------------------------------ shapes

enum class Layout { rowmajor, rowmajor_axis0, colmajor_last };
constexpr const char* kLayoutNames[] = {"rowmajor", "rowmajor_axis0", "colmajor_last"};

// A 2-D tensor [d0, d1] normalized along `axis`:
//   rowmajor:       RowMajor [rows, cols], axis 1 (contiguous rows)
//   rowmajor_axis0: RowMajor [n, 768], axis 0 (slices of length n, stride 768)
//   colmajor_last:  ColMajor [n, 768], axis 1 (the last axis of Eigen's default
//                   layout: slices of length 768, stride n)
struct Shape {
  Layout layout;
  Index cols;  // the label: the row length, or 768 for the strided layouts
  Index d0, d1;
  int axis;
  Geometry geo;
  Index size() const { return d0 * d1; }
};

Shape make_shape(Layout layout, Index cols, Index elements) {
  const Index n = std::max<Index>(1, elements / cols);  // >= 1 row for --smoke
  switch (layout) {
    case Layout::rowmajor:
      return {layout, cols, n, cols, 1, {n, cols, cols, 1}};
    case Layout::rowmajor_axis0:
      return {layout, cols, n, cols, 0, {cols, n, 1, cols}};
    case Layout::colmajor_last:
      return {layout, cols, n, cols, 1, {n, cols, 1, n}};
  }
  throw std::logic_error("make_shape: unknown layout");
}

template <class T, int L>
using InMap = Eigen::TensorMap<const Eigen::Tensor<T, 2, L>>;
template <class T, int L>
using OutMap = Eigen::TensorMap<Eigen::Tensor<T, 2, L>>;

// Calls fn(x_map, y_map) with maps of the shape's layout.
template <class T, class Fn>
decltype(auto) with_views(const Shape& s, const T* x, T* y, Fn&& fn) {
  if (s.layout == Layout::colmajor_last)
    return fn(InMap<T, Eigen::ColMajor>(x, s.d0, s.d1), OutMap<T, Eigen::ColMajor>(y, s.d0, s.d1));
  return fn(InMap<T, Eigen::RowMajor>(x, s.d0, s.d1), OutMap<T, Eigen::RowMajor>(y, s.d0, s.d1));
}

// Calls fn(saved_map, dy_map, dx_map) with maps of the shape's layout.
template <class T, class Fn>
decltype(auto) with_views(const Shape& s, const T* saved, const T* dy, T* dx, Fn&& fn) {
  if (s.layout == Layout::colmajor_last)
    return fn(InMap<T, Eigen::ColMajor>(saved, s.d0, s.d1), InMap<T, Eigen::ColMajor>(dy, s.d0, s.d1),
              OutMap<T, Eigen::ColMajor>(dx, s.d0, s.d1));
  return fn(InMap<T, Eigen::RowMajor>(saved, s.d0, s.d1), InMap<T, Eigen::RowMajor>(dy, s.d0, s.d1),
            OutMap<T, Eigen::RowMajor>(dx, s.d0, s.d1));
}

// ------------------------------------------------------------------ implementations

// The floors are the loops every ratio is taken against; the bounds (also op
// "floor") time the least work some normalizations cannot avoid, to say how
// close to the floor they can get at all. floor_axpby is the backward's floor:
// a backward reads two tensors (x or y, and dy) and writes one (dx).
enum class Impl {
  normkit,
  normkit_mt,
  normkit_saved,
  eigen_naive,
  onednn,
  torch,
  floor_scale,
  floor_memcpy,
  floor_scale_mt,
  bound_two_pass,
  bound_exp,
  floor_axpby
};
constexpr const char* kImplNames[] = {"normkit",        "normkit_mt", "normkit_saved", "eigen_naive", "onednn",
                                      "torch",          "floor_scale", "floor_memcpy", "floor_scale_mt",
                                      "bound_two_pass", "bound_exp",  "floor_axpby"};
constexpr Impl kOpImpls[] = {Impl::normkit, Impl::normkit_mt, Impl::normkit_saved, Impl::eigen_naive, Impl::onednn,
                             Impl::torch};
constexpr Impl kFloors[] = {Impl::floor_scale, Impl::floor_memcpy, Impl::floor_scale_mt, Impl::bound_two_pass,
                            Impl::bound_exp, Impl::floor_axpby};
// Impls that run on the thread pool.
constexpr bool threaded(Impl impl) { return impl == Impl::normkit_mt || impl == Impl::floor_scale_mt; }
// The pass a floor is the floor of.
constexpr Pass floor_pass(Impl impl) { return impl == Impl::floor_axpby ? Pass::backward : Pass::forward; }

// What the impls need to know about one problem; gamma/beta are nullptr when the op has none.
// Backward: x is what the backward reads (x, or the forward's output where
// backward_from_output), y receives dx, dgamma/dbeta are nullptr when the op has none.
template <class T>
struct Listed;

template <class T>
struct Problem {
  Op op;
  Pass pass;
  Shape shape;
  const T* x;
  T* y;
  const T* gamma;
  const T* beta;
  const T* dy = nullptr;
  T* dgamma = nullptr;
  T* dbeta = nullptr;
  const Listed<T>* listed = nullptr;  // a functor of the list without a curated op (op is then unused)
};

// Calls fn(functor) with the normkit functor of op, configured like the reference.
template <class T, class Fn>
decltype(auto) with_functor(Op op, Fn&& fn) {
  switch (op) {
    case Op::sum_to_one: return fn(normkit::SumToOne<T>{});
    case Op::l1: return fn(normkit::L1Norm<T>{T(kNormEps)});
    case Op::l2: return fn(normkit::L2Norm<T>{T(kNormEps)});
    case Op::max_norm: return fn(normkit::MaxNorm<T>{});
    case Op::min_max: return fn(normkit::MinMax<T>{});
    case Op::z_score: return fn(normkit::ZScore<T>{});
    case Op::layer_norm:
    case Op::layer_norm_noaffine: return fn(normkit::LayerNorm<T>{T(kLayerNormEps)});
    case Op::rms_norm: return fn(normkit::RMSNorm<T>{T(kRmsNormEps)});
    case Op::softmax: return fn(normkit::Softmax<T>{});
    case Op::log_softmax: return fn(normkit::LogSoftmax<T>{});
  }
  throw std::logic_error("with_functor: unknown op");
}

// normkit into the preallocated output; split over `dev` when it is given.
template <class T>
Runner normkit_runner(const Problem<T>& p, const Eigen::ThreadPoolDevice* dev) {
  return with_views(p.shape, p.x, p.y, [&](auto x, auto y) {
    return with_functor<T>(p.op, [&](auto f) -> Runner {
      using F = decltype(f);
      const int axis = p.shape.axis;
      if constexpr (normkit::accepts_affine_v<F>) {
        if (p.gamma) {
          const Index len = p.shape.geo.len;
          const Eigen::TensorMap<const Eigen::Tensor<T, 1>> g(p.gamma, len), b(p.beta ? p.beta : p.gamma, len);
          const normkit::Affine<T> w = p.beta ? normkit::affine(g, b) : normkit::affine(g);
          if (dev) return [=]() mutable { f(x, axis, w, y, *dev); };
          return [=]() mutable { f(x, axis, w, y); };
        }
      }
      if (dev) return [=]() mutable { f(x, axis, y, *dev); };
      return [=]() mutable { f(x, axis, y); };
    });
  });
}

// normkit's backward into the preallocated dx (and dgamma / dbeta).
template <class T>
Runner normkit_backward_runner(const Problem<T>& p, const Eigen::ThreadPoolDevice* dev) {
  return with_views(p.shape, p.x, p.dy, p.y, [&](auto saved, auto dy, auto dx) {
    return with_functor<T>(p.op, [&](auto f) -> Runner {
      using F = decltype(f);
      const int axis = p.shape.axis;
      if constexpr (normkit::accepts_affine_v<F>) {
        if (p.gamma) {
          const Index len = p.shape.geo.len;
          const Eigen::TensorMap<const Eigen::Tensor<T, 1>> g(p.gamma, len), b(p.beta ? p.beta : p.gamma, len);
          const normkit::Affine<T> w = p.beta ? normkit::affine(g, b) : normkit::affine(g);
          const Eigen::TensorMap<Eigen::Tensor<T, 1>> dg(p.dgamma, len), db(p.dbeta ? p.dbeta : p.dgamma, len);
          const normkit::AffineGrads<T> grads = p.dbeta ? normkit::affine_grads(dg, db) : normkit::affine_grads(dg);
          if (dev) return [=]() mutable { f.backward(saved, dy, axis, w, dx, grads, *dev); };
          return [=]() mutable { f.backward(saved, dy, axis, w, dx, grads); };
        }
      }
      if (dev) return [=]() mutable { f.backward(saved, dy, axis, dx, *dev); };
      return [=]() mutable { f.backward(saved, dy, axis, dx); };
    });
  });
}

// normkit's backward from the statistics its forward saved (normkit::forward,
// docs/backward.md), as a training step calls it and as the peers' backwards
// take the forward's mean and rstd. The forward runs once, untimed, when the
// runner is built (its y goes to dx, which the backward overwrites).
template <class T>
Runner normkit_saved_runner(const Problem<T>& p) {
  return with_views(p.shape, p.x, p.dy, p.y, [&](auto x, auto dy, auto dx) {
    return with_functor<T>(p.op, [&](auto f) -> Runner {
      using F = decltype(f);
      if constexpr (F::backward_from_output) {
        return {};
      } else {
        const int axis = p.shape.axis;
        normkit::saved_t<F, decltype(x)> saved;
        if constexpr (normkit::accepts_affine_v<F>) {
          if (p.gamma) {
            const Index len = p.shape.geo.len;
            const Eigen::TensorMap<const Eigen::Tensor<T, 1>> g(p.gamma, len), b(p.beta ? p.beta : p.gamma, len);
            const normkit::Affine<T> w = p.beta ? normkit::affine(g, b) : normkit::affine(g);
            const Eigen::TensorMap<Eigen::Tensor<T, 1>> dg(p.dgamma, len), db(p.dbeta ? p.dbeta : p.dgamma, len);
            const normkit::AffineGrads<T> grads = p.dbeta ? normkit::affine_grads(dg, db) : normkit::affine_grads(dg);
            normkit::forward(x, f, axis, w, dx, saved);
            return [=]() mutable { normkit::backward(f, x, dy, axis, w, dx, grads, saved); };
          }
        }
        normkit::forward(x, f, axis, dx, saved);
        return [=]() mutable { normkit::backward(f, x, dy, axis, dx, saved); };
      }
    });
  });
}

// ------------------------------------------------------------------ the list

// Every functor of NORMKIT_FUNCTORS (include/normkit/functors.hpp) is timed.
// The curated ops above add what a functor of the list cannot bring by
// itself: the options the peers use, the peers, and the long-double
// reference. Any other functor of the list is a listed case: normkit alone,
// forward and backward, default-constructed, on positive data, checked
// against its own double forward (backward) evaluated slice by slice (one
// slice as a rank-1 tensor: no geometry, blocking or threads in common with
// the timed call). Its accuracy is the unit tests' business; the check keeps
// the harness honest. A new normalization is in the benchmark with its line
// in the list.
template <template <class> class F>
struct curated : std::false_type {};
template <> struct curated<normkit::SumToOne> : std::true_type {};
template <> struct curated<normkit::L1Norm> : std::true_type {};
template <> struct curated<normkit::L2Norm> : std::true_type {};
template <> struct curated<normkit::MaxNorm> : std::true_type {};
template <> struct curated<normkit::MinMax> : std::true_type {};
template <> struct curated<normkit::ZScore> : std::true_type {};
template <> struct curated<normkit::LayerNorm> : std::true_type {};
template <> struct curated<normkit::RMSNorm> : std::true_type {};
template <> struct curated<normkit::Softmax> : std::true_type {};
template <> struct curated<normkit::LogSoftmax> : std::true_type {};

// "PowerNorm" -> "power_norm", "L2Norm" -> "l2_norm".
std::string snake_case(const std::string& name) {
  std::string out;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool upper = std::isupper(static_cast<unsigned char>(c)) != 0;
    if (upper && i > 0 && !std::isupper(static_cast<unsigned char>(name[i - 1]))) out += '_';
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// One listed functor for element type T: its name and what the harness calls.
template <class T>
struct Listed {
  std::string name;
  bool backward_from_output;
  std::function<Runner(const Problem<T>&, const Eigen::ThreadPoolDevice*)> forward, backward;
  // The double forward (backward) of one slice, from x (from what the backward reads, and dy).
  std::function<ref::Slice(const ref::Slice&)> slice_forward;
  std::function<ref::Slice(const ref::Slice&, const ref::Slice&)> slice_backward;
};

template <template <class> class F>
ref::Slice double_slice(const ref::Slice& x, const ref::Slice* dy) {
  const Index n = static_cast<Index>(x.size());
  Eigen::Tensor<double, 1> xt(n), dyt(n);
  for (Index i = 0; i < n; ++i) xt(i) = static_cast<double>(x[i]), dyt(i) = dy ? static_cast<double>((*dy)[i]) : 0;
  const Eigen::Tensor<double, 1> r = dy ? Eigen::Tensor<double, 1>(F<double>{}.backward(xt, dyt, 0))
                                        : Eigen::Tensor<double, 1>(F<double>{}(xt, 0));
  return ref::Slice(r.data(), r.data() + n);
}

template <class T, template <class> class F>
Listed<T> make_listed(const char* name) {
  Listed<T> l;
  l.name = snake_case(name);
  l.backward_from_output = F<T>::backward_from_output;
  l.forward = [](const Problem<T>& p, const Eigen::ThreadPoolDevice* dev) {
    return with_views(p.shape, p.x, p.y, [&](auto x, auto y) -> Runner {
      const F<T> f{};
      const int axis = p.shape.axis;
      if (dev) return [=]() mutable { f(x, axis, y, *dev); };
      return [=]() mutable { f(x, axis, y); };
    });
  };
  l.backward = [](const Problem<T>& p, const Eigen::ThreadPoolDevice* dev) {
    return with_views(p.shape, p.x, p.dy, p.y, [&](auto saved, auto dy, auto dx) -> Runner {
      const F<T> f{};
      const int axis = p.shape.axis;
      if (dev) return [=]() mutable { f.backward(saved, dy, axis, dx, *dev); };
      return [=]() mutable { f.backward(saved, dy, axis, dx); };
    });
  };
  l.slice_forward = [](const ref::Slice& x) { return double_slice<F>(x, nullptr); };
  l.slice_backward = [](const ref::Slice& x, const ref::Slice& dy) { return double_slice<F>(x, &dy); };
  return l;
}

template <class T>
const std::vector<Listed<T>>& listed_functors() {
  static const std::vector<Listed<T>> all = [] {
    std::vector<Listed<T>> v;
#define NORMKIT_BENCH_LISTED(Name) \
  if constexpr (!curated<normkit::Name>::value) v.push_back(make_listed<T, normkit::Name>(#Name));
    NORMKIT_FUNCTORS(NORMKIT_BENCH_LISTED)
#undef NORMKIT_BENCH_LISTED
    return v;
  }();
  return all;
}

// The Eigen Tensor code a user writes: reductions, then reshape + broadcast.
// Statistics are evaluated into small tensors first: left inline inside the
// broadcast, a partial reduction is recomputed for every element (O(len^2):
// 273 ms instead of 0.8 ms for sum_to_one on 4 MiB with len 4096).
template <class T, class X, class Y>
void eigen_naive(Op op, int axis, const X& x, Y& y, const T* gamma, const T* beta) {
  constexpr int L = Eigen::internal::traits<X>::Layout;
  using Stat = Eigen::Tensor<T, 1, L>;
  using Vec = Eigen::TensorMap<const Eigen::Tensor<T, 1, L>>;
  const Index len = x.dimension(axis);
  const Eigen::array<Index, 1> red{axis};
  Eigen::array<Index, 2> keep{x.dimension(0), x.dimension(1)}, bc{1, 1}, wshape{1, 1}, wbc = keep;
  keep[axis] = 1;
  bc[axis] = len;
  wshape[axis] = len;
  wbc[axis] = 1;
  const auto per_slice = [&](const auto& s) { return s.reshape(keep).broadcast(bc); };
  const auto per_position = [&](const T* w) { return Vec(w, len).reshape(wshape).broadcast(wbc); };
  switch (op) {
    case Op::sum_to_one: {
      const Stat s = x.sum(red);
      y = x / per_slice(s);
      return;
    }
    case Op::l1: {
      const Stat s = x.abs().sum(red).cwiseMax(T(kNormEps));
      y = x / per_slice(s);
      return;
    }
    case Op::l2: {
      const Stat s = x.square().sum(red).sqrt().cwiseMax(T(kNormEps));
      y = x / per_slice(s);
      return;
    }
    case Op::max_norm: {
      const Stat s = x.abs().maximum(red);
      y = x / per_slice(s);
      return;
    }
    case Op::min_max: {
      const Stat lo = x.minimum(red);
      const Stat range = x.maximum(red) - lo;
      y = (x - per_slice(lo)) / per_slice(range);
      return;
    }
    case Op::z_score:
    case Op::layer_norm:
    case Op::layer_norm_noaffine: {
      const Stat mean = x.mean(red);
      const Stat var = (x - per_slice(mean)).square().mean(red);
      if (op == Op::z_score) {
        y = (x - per_slice(mean)) / per_slice(var.sqrt());
      } else if (op == Op::layer_norm_noaffine) {
        y = (x - per_slice(mean)) * per_slice((var + T(kLayerNormEps)).rsqrt());
      } else {
        y = (x - per_slice(mean)) * per_slice((var + T(kLayerNormEps)).rsqrt()) * per_position(gamma) +
            per_position(beta);
      }
      return;
    }
    case Op::rms_norm: {
      const Stat ms = x.square().mean(red);
      y = x * per_slice((ms + T(kRmsNormEps)).rsqrt()) * per_position(gamma);
      return;
    }
    case Op::softmax:
    case Op::log_softmax: {
      const Stat m = x.maximum(red);
      const Stat s = (x - per_slice(m)).exp().sum(red);
      if (op == Op::softmax) y = (x - per_slice(m)).exp() / per_slice(s);
      else y = x - per_slice(m) - per_slice(s.log());
      return;
    }
  }
}

const Eigen::ThreadPoolDevice& pool_device() {
  static Eigen::ThreadPool pool(kThreads);
  static const Eigen::ThreadPoolDevice device(&pool, kThreads);
  return device;
}

// The floors and bounds (no op): y from x, floor_axpby y from x and z.
template <class T>
Runner make_floor(Impl impl, Index n, const T* x, T* y, const T* z, const Eigen::ThreadPoolDevice* dev) {
  switch (impl) {
    case Impl::floor_scale:  // the cheapest map that reads x and writes y
      return [=] {
        const T c = T(0.5);
        for (Index i = 0; i < n; ++i) y[i] = c * x[i];
      };
    case Impl::floor_memcpy:
      return [=] { std::memcpy(y, x, static_cast<std::size_t>(n) * sizeof(T)); };
    case Impl::bound_two_pass:  // x read once (its sum), then mapped as floor_scale
      return [=] {
        using B = normkit::detail::Batch<T>;
        constexpr Index W = static_cast<Index>(B::size);
        B a(T(0)), b(T(0)), c(T(0)), d(T(0));  // four chains, so the adds keep up with the loads
        Index i = 0;
        for (; i + 4 * W <= n; i += 4 * W) {
          a += B::load_unaligned(x + i), b += B::load_unaligned(x + i + W);
          c += B::load_unaligned(x + i + 2 * W), d += B::load_unaligned(x + i + 3 * W);
        }
        T sum = xsimd::hadd(a + b + c + d);
        for (; i < n; ++i) sum += x[i];
        const T scale = sum != T(0) ? T(0.5) : T(1);  // depends on the sum, so the first pass is not dropped
        for (Index j = 0; j < n; ++j) y[j] = scale * x[j];
      };
    case Impl::bound_exp:  // y = exp(x - 1) with normkit's exp kernel: the per-element work of softmax
      return [=] {
        using B = normkit::detail::Batch<T>;
        constexpr Index W = static_cast<Index>(B::size);
        Index i = 0;
        for (; i + W <= n; i += W) normkit::detail::vexp(B::load_unaligned(x + i) - B(T(1))).store_unaligned(y + i);
        for (; i < n; ++i) y[i] = std::exp(x[i] - T(1));
      };
    case Impl::floor_scale_mt:  // floor_scale split over the pool as normkit_mt is: what 2 threads can gain here
      return [=] {
        constexpr Index tiles = 64;
        const Index per = (n + tiles - 1) / tiles;
        const double bytes = double(per) * sizeof(T);
        dev->parallelFor(tiles, Eigen::TensorOpCost(bytes, bytes, double(per)), [=](Index first, Index last) {
          const T c = T(0.5);
          for (Index i = first * per, end = std::min(n, last * per); i < end; ++i) y[i] = c * x[i];
        });
      };
    case Impl::floor_axpby:  // the cheapest map that reads two tensors and writes one: y = a*x + b*z
      return [=] {
        const T a = T(0.5), b = T(0.25);
        for (Index i = 0; i < n; ++i) y[i] = a * x[i] + b * z[i];
      };
    default:
      break;
  }
  return nullptr;
}

template <class T>
PeerProblem peer_problem(const Problem<T>& p) {
  return {p.op, p.pass, std::is_same<T, double>::value, p.shape.geo, p.x, p.y, p.gamma, p.beta, p.dy, p.dgamma,
          p.dbeta};
}

// The timed callable, and what the reference check runs: the timed callable,
// then (peers) the untimed copy of results the library allocated itself.
struct Runners {
  Runner timed, checked;
};

template <class R>
Runners shared_runner(std::unique_ptr<R> r) {
  std::shared_ptr<R> s(std::move(r));
  return {[s] { s->run(); }, [s] {
            s->run();
            s->publish();
          }};
}

// Builds the callables of impl for p; `dev` is only used by the threaded impls.
template <class T>
Runners make_runners(Impl impl, const Problem<T>& p, const Eigen::ThreadPoolDevice* dev) {
  const Index n = p.shape.size();
  const T* x = p.x;
  T* y = p.y;
  const bool backward = p.pass == Pass::backward;
  [[maybe_unused]] const bool is_double = std::is_same<T, double>::value;
  Runner run;
  switch (impl) {
    case Impl::normkit:
    case Impl::normkit_mt: {
      const Eigen::ThreadPoolDevice* on = impl == Impl::normkit_mt ? dev : nullptr;
      if (p.listed)
        run = backward ? p.listed->backward(p, on) : p.listed->forward(p, on);
      else
        run = backward ? normkit_backward_runner(p, on) : normkit_runner(p, on);
      break;
    }
    case Impl::normkit_saved:
      if (backward && !p.listed) run = normkit_saved_runner(p);
      break;
    case Impl::eigen_naive:
      if (backward) break;
      run = with_views(p.shape, x, y, [&](auto xv, auto yv) -> Runner {
        return [=]() mutable { eigen_naive(p.op, p.shape.axis, xv, yv, p.gamma, p.beta); };
      });
      break;
    case Impl::onednn:
#ifdef NORMKIT_BENCH_HAVE_ONEDNN
      if (onednn_supports(p.op, is_double, p.pass)) return shared_runner(make_onednn(peer_problem(p)));
#endif
      break;
    case Impl::torch:
#ifdef NORMKIT_BENCH_HAVE_TORCH
      if (torch_supports(p.op, is_double, p.pass)) return shared_runner(make_torch(peer_problem(p)));
#endif
      break;
    default:
      run = make_floor(impl, n, x, y, p.dy, dev);
  }
  return {run, run};
}

// Whether impl has an implementation of op's pass for T (without building it).
template <class T>
bool available(Impl impl, [[maybe_unused]] Op op, Pass pass) {
  [[maybe_unused]] const bool is_double = std::is_same<T, double>::value;
  switch (impl) {
    case Impl::normkit_saved:  // Softmax and LogSoftmax differentiate their output: nothing saved
      return pass == Pass::backward && !backward_from_output(op);
    case Impl::eigen_naive:
      return pass == Pass::forward;
    case Impl::onednn:
#ifdef NORMKIT_BENCH_HAVE_ONEDNN
      return onednn_supports(op, is_double, pass);
#else
      return false;
#endif
    case Impl::torch:
#ifdef NORMKIT_BENCH_HAVE_TORCH
      return torch_supports(op, is_double, pass);
#else
      return false;
#endif
    default:
      return true;
  }
}

// ------------------------------------------------------------------ buffers

// The buffers of the current type and size, shared by every op, shape and impl:
// x and y (which a backward's dx goes to), and for the backward dy and the
// forward output the softmax family's backward reads (`saved`). One set is
// alive at a time (4 x 256 MiB at most; the backward's two are allocated on
// the first backward case). x is refilled only when the type, size or kind of
// data changes; benchmarks are registered type > size > op so that happens
// twice per size.
template <class T>
struct Buffers {
  const T* x;
  T* y;
  const T* dy;  // backward only, else nullptr
  T* saved;
};

class Arena {
 public:
  // fill: positive uniform (sum_to_one), normal(0, 1), or nullopt = any (floors).
  template <class T>
  Buffers<T> get(Index n, std::optional<bool> positive, bool backward) {
    const std::size_t bytes = (static_cast<std::size_t>(n) * sizeof(T) + 63) / 64 * 64;
    if (bytes > capacity_) {
      for (auto* b : {&x_, &y_, &dy_, &saved_}) b->reset();
      x_.reset(allocate(bytes));
      y_.reset(allocate(bytes));
      capacity_ = bytes;
      tag_.clear();
      dy_tag_.clear();
      saved_tag_.clear();
      ++epoch_;
    }
    if (backward && !dy_) {
      dy_.reset(allocate(capacity_));
      saved_.reset(allocate(capacity_));
      ++epoch_;
    }
    const bool pos = positive.value_or(tag_.empty() ? false : tag_.back() == '+');
    const std::string data = std::string(typeid(T).name()) + std::to_string(n);
    const std::string tag = data + (pos ? '+' : 'N');
    T* x = static_cast<T*>(x_.get());
    if (tag != tag_) {
      Eigen::TensorMap<Eigen::Tensor<T, 1>> xm(x, n);
      if (pos) ref::fill_uniform(xm, 43, 0.01, 1.0);
      else ref::fill_normal(xm, 42, 0.0, 1.0);
      tag_ = tag;
      ++generation_;
    }
    T* dy = static_cast<T*>(dy_.get());
    if (backward && data != dy_tag_) {
      Eigen::TensorMap<Eigen::Tensor<T, 1>> dym(dy, n);
      ref::fill_normal(dym, 44, 0.0, 1.0);
      dy_tag_ = data;
    }
    return {x, static_cast<T*>(y_.get()), backward ? dy : nullptr, static_cast<T*>(saved_.get())};
  }
  // Changes whenever x gets new contents (keys the reference cache).
  unsigned generation() const { return generation_; }
  // Changes whenever a buffer moves (runners bound to the old ones are stale).
  unsigned epoch() const { return epoch_; }
  // Makes `saved` hold what fill() writes there, unless it already holds what
  // was filled under the same key (the same op and shape on the same x).
  template <class Fill>
  void ensure_saved(const std::string& key, Fill&& fill) {
    const std::string tag = key + '/' + std::to_string(generation_) + '/' + std::to_string(epoch_);
    if (tag == saved_tag_) return;
    saved_tag_.clear();  // in case fill throws
    fill();
    saved_tag_ = tag;
  }

 private:
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  static void* allocate(std::size_t bytes) {
    void* p = std::aligned_alloc(64, bytes);
    if (!p) throw std::bad_alloc();
    return p;
  }
  std::unique_ptr<void, Free> x_, y_, dy_, saved_;
  std::size_t capacity_ = 0;
  std::string tag_, dy_tag_, saved_tag_;
  unsigned generation_ = 0, epoch_ = 0;
};

Arena& arena() {
  static Arena a;
  return a;
}

// ------------------------------------------------------------------ reference check

ref::Slice reference_slice(Op op, const ref::Slice& x, const ref::Slice* gamma, const ref::Slice* beta) {
  switch (op) {
    case Op::sum_to_one: return ref::sum_to_one(x, 0, ref::Degenerate::uniform, false);
    case Op::l1: return ref::l1(x, kNormEps);
    case Op::l2: return ref::l2(x, kNormEps, false);
    case Op::max_norm: return ref::max_norm(x, 0);
    case Op::min_max: return ref::min_max(x, 0, 1);
    case Op::z_score: return ref::z_score(x, 0, 0, false);
    case Op::layer_norm:
    case Op::layer_norm_noaffine: return ref::layer_norm(x, kLayerNormEps, gamma, beta);
    case Op::rms_norm: return ref::rms_norm(x, kRmsNormEps, gamma, beta);
    case Op::softmax: return ref::softmax(x, ref::MaskedSlice::nan);
    case Op::log_softmax: return ref::log_softmax(x, ref::MaskedSlice::nan);
  }
  throw std::logic_error("reference_slice: unknown op");
}

template <class T>
ref::Slice gather(const T* p, const Geometry& g, Index slice) {
  ref::Slice v(static_cast<std::size_t>(g.len));
  for (Index i = 0; i < g.len; ++i) v[i] = static_cast<long double>(p[slice * g.slice_stride + i * g.step]);
  return v;
}

// All slices up to 4 MiB (cheap), else the first and the last 8.
std::vector<Index> sample_slices(const Shape& s, std::size_t bytes) {
  std::vector<Index> out;
  const Index n = s.geo.slices;
  for (Index i = 0; i < n; ++i)
    if (bytes <= (4u << 20) || i < 8 || i >= n - 8) out.push_back(i);
  return out;
}

// The expected values of the sampled slices, concatenated. One entry is cached:
// all impls of one (op, shape) run back to back on the same x.
template <class T>
const Eigen::Tensor<long double, 1>& expected(const Problem<T>& p, const std::vector<Index>& sample) {
  static std::string key;
  static Eigen::Tensor<long double, 1> values;
  std::ostringstream k;
  k << (p.listed ? p.listed->name : std::to_string(static_cast<int>(p.op))) << '/' << typeid(T).name() << '/'
    << static_cast<int>(p.shape.layout) << '/' << p.shape.d0 << 'x' << p.shape.d1 << '/' << arena().generation();
  if (k.str() == key) return values;
  const Geometry& g = p.shape.geo;
  std::optional<ref::Slice> gamma, beta;
  if (p.gamma) gamma = gather(p.gamma, {1, g.len, 0, 1}, 0);
  if (p.beta) beta = gather(p.beta, {1, g.len, 0, 1}, 0);
  values.resize(static_cast<Index>(sample.size()) * g.len);
  Index at = 0;
  for (Index s : sample)
    for (long double v : p.listed ? p.listed->slice_forward(gather(p.x, g, s))
                                  : reference_slice(p.op, gather(p.x, g, s), gamma ? &*gamma : nullptr,
                                                    beta ? &*beta : nullptr))
      values(at++) = v;
  key = k.str();
  return values;
}

// Runs `run` once on a NaN-poisoned y and compares the sampled slices with the
// reference; returns an error message, empty when everything matches.
template <class T>
std::string check(const Problem<T>& p, const Runner& run) {
  const Geometry& g = p.shape.geo;
  std::fill_n(p.y, p.shape.size(), std::numeric_limits<T>::quiet_NaN());
  run();
  const std::vector<Index> sample = sample_slices(p.shape, static_cast<std::size_t>(p.shape.size()) * sizeof(T));
  Eigen::Tensor<T, 1> actual(static_cast<Index>(sample.size()) * g.len);
  Index at = 0;
  for (Index s : sample)
    for (Index i = 0; i < g.len; ++i) actual(at++) = p.y[s * g.slice_stride + i * g.step];
  const bool is_float = std::is_same<T, float>::value;
  const ref::CompareResult r = ref::compare(actual, expected(p, sample), is_float ? 1e-4L : 1e-10L,
                                            is_float ? 1e-5L : 1e-10L);
  if (r.ok) return {};
  return "reference mismatch over " + std::to_string(sample.size()) + " of " + std::to_string(g.slices) +
         " slices: " + r.message;
}

// dx of one slice from what the backward reads (x, or y for the softmax
// family) and dy, with the options with_functor gives normkit; for
// layer_norm / rms_norm also the slice's dgamma (and dbeta) contributions.
ref::AffineBackward reference_backward_slice(Op op, const ref::Slice& saved, const ref::Slice& dy,
                                             const ref::Slice* gamma) {
  switch (op) {
    case Op::sum_to_one: return {ref::sum_to_one_backward(saved, dy, 0, ref::Degenerate::uniform, false), {}, {}};
    case Op::l1: return {ref::l1_backward(saved, dy, kNormEps), {}, {}};
    case Op::l2: return {ref::l2_backward(saved, dy, kNormEps, false), {}, {}};
    case Op::max_norm: return {ref::max_norm_backward(saved, dy, 0), {}, {}};
    case Op::min_max: return {ref::min_max_backward(saved, dy, 0, 1), {}, {}};
    case Op::z_score: return {ref::z_score_backward(saved, dy, 0, 0, false), {}, {}};
    case Op::layer_norm: return ref::layer_norm_backward_affine(saved, dy, kLayerNormEps, gamma);
    case Op::layer_norm_noaffine: return {ref::layer_norm_backward(saved, dy, kLayerNormEps), {}, {}};
    case Op::rms_norm: {
      ref::AffineBackward r = ref::rms_norm_backward_affine(saved, dy, kRmsNormEps, gamma);
      r.dbeta.clear();  // no beta
      return r;
    }
    case Op::softmax: return {ref::softmax_backward(saved, dy), {}, {}};
    case Op::log_softmax: return {ref::log_softmax_backward(saved, dy), {}, {}};
  }
  throw std::logic_error("reference_backward_slice: unknown op");
}

struct BackwardExpected {
  Eigen::Tensor<long double, 1> dx;             // the sampled slices, concatenated
  Eigen::Tensor<long double, 1> dgamma, dbeta;  // summed over every slice; empty when the op has none
  // max over positions k of sqrt(sum over slices of contribution_k^2): the
  // scale of the rounding error of summing the contributions in T
  long double dgamma_spread = 0, dbeta_spread = 0;
};

// The expected backward of the sampled slices (dgamma / dbeta: of every slice,
// so at sizes above 4 MiB the reference runs over the whole tensor for
// layer_norm and rms_norm). One entry is cached, as for the forward.
template <class T>
const BackwardExpected& expected_backward(const Problem<T>& p, const std::vector<Index>& sample) {
  static std::string key;
  static BackwardExpected e;
  std::ostringstream k;
  k << (p.listed ? p.listed->name : std::to_string(static_cast<int>(p.op))) << '/' << typeid(T).name() << '/'
    << static_cast<int>(p.shape.layout) << '/' << p.shape.d0 << 'x' << p.shape.d1 << '/' << arena().generation();
  if (k.str() == key) return e;
  key.clear();
  const Geometry& g = p.shape.geo;
  const std::size_t len = static_cast<std::size_t>(g.len);
  std::optional<ref::Slice> gamma;
  if (p.gamma) gamma = gather(p.gamma, {1, g.len, 0, 1}, 0);
  const bool grads = p.dgamma != nullptr;
  e = BackwardExpected{};
  e.dx.resize(static_cast<Index>(sample.size()) * g.len);
  std::vector<long double> dgamma(grads ? len : 0), dbeta(grads ? len : 0), sq_gamma(dgamma), sq_beta(dbeta);
  bool has_dbeta = false;
  std::size_t next = 0;
  Index at = 0;
  for (Index s = 0; s < g.slices; ++s) {
    const bool sampled = next < sample.size() && sample[next] == s;
    if (!sampled && !grads) continue;
    if (sampled) ++next;
    const ref::AffineBackward r =
        p.listed ? ref::AffineBackward{p.listed->slice_backward(gather(p.x, g, s), gather(p.dy, g, s)), {}, {}}
                 : reference_backward_slice(p.op, gather(p.x, g, s), gather(p.dy, g, s), gamma ? &*gamma : nullptr);
    if (sampled)
      for (long double v : r.dx) e.dx(at++) = v;
    if (!grads) continue;
    for (std::size_t i = 0; i < len; ++i) {
      dgamma[i] += r.dgamma[i], sq_gamma[i] += r.dgamma[i] * r.dgamma[i];
      if (!r.dbeta.empty()) dbeta[i] += r.dbeta[i], sq_beta[i] += r.dbeta[i] * r.dbeta[i], has_dbeta = true;
    }
  }
  const auto to_tensor = [](const std::vector<long double>& v, Eigen::Tensor<long double, 1>& t) {
    t.resize(static_cast<Index>(v.size()));
    std::copy(v.begin(), v.end(), t.data());
  };
  to_tensor(dgamma, e.dgamma);
  if (has_dbeta) to_tensor(dbeta, e.dbeta);
  for (std::size_t i = 0; i < sq_gamma.size(); ++i) {
    e.dgamma_spread = std::max(e.dgamma_spread, std::sqrt(sq_gamma[i]));
    e.dbeta_spread = std::max(e.dbeta_spread, std::sqrt(sq_beta[i]));
  }
  key = k.str();
  return e;
}

// Runs `run` once on a NaN-poisoned dx (dgamma, dbeta) and compares dx over
// the sampled slices, and dgamma / dbeta, with the reference; returns an error
// message, empty when everything matches. dx takes the forward's relative
// tolerance, with the absolute one relative to the rms of the expected dx (the
// softmax family's and sum_to_one's dx scale as 1 / len). dgamma / dbeta are
// sums over every slice: the absolute tolerance allows 4 eps sqrt(slices)
// times their spread (what summing them in T in any order rounds to).
template <class T>
std::string check_backward(const Problem<T>& p, const Runner& run) {
  const Geometry& g = p.shape.geo;
  constexpr T nan = std::numeric_limits<T>::quiet_NaN();
  std::fill_n(p.y, p.shape.size(), nan);
  if (p.dgamma) std::fill_n(p.dgamma, g.len, nan);
  if (p.dbeta) std::fill_n(p.dbeta, g.len, nan);
  run();
  const std::vector<Index> sample = sample_slices(p.shape, static_cast<std::size_t>(p.shape.size()) * sizeof(T));
  Eigen::Tensor<T, 1> actual(static_cast<Index>(sample.size()) * g.len);
  Index at = 0;
  for (Index s : sample)
    for (Index i = 0; i < g.len; ++i) actual(at++) = p.y[s * g.slice_stride + i * g.step];
  const BackwardExpected& e = expected_backward(p, sample);
  const bool is_float = std::is_same<T, float>::value;
  const long double rel = is_float ? 1e-4L : 1e-10L;
  long double sq = 0;
  for (Index i = 0; i < e.dx.size(); ++i) sq += std::isfinite(e.dx(i)) ? e.dx(i) * e.dx(i) : 0;
  const long double rms = e.dx.size() ? std::sqrt(sq / static_cast<long double>(e.dx.size())) : 0;
  std::string error;
  const ref::CompareResult r = ref::compare(actual, e.dx, rel, (is_float ? 1e-5L : 1e-10L) * rms);
  if (!r.ok)
    error = "dx: reference mismatch over " + std::to_string(sample.size()) + " of " + std::to_string(g.slices) +
            " slices: " + r.message;
  const long double sum_tol = 4 * static_cast<long double>(std::numeric_limits<T>::epsilon()) *
                              std::sqrt(static_cast<long double>(g.slices));
  const auto check_sum = [&](const char* what, const T* got, const Eigen::Tensor<long double, 1>& want,
                             long double spread) {
    if (!got || !error.empty()) return;
    const Eigen::TensorMap<const Eigen::Tensor<T, 1>> a(got, g.len);
    const ref::CompareResult c = ref::compare(Eigen::Tensor<T, 1>(a), want, rel, sum_tol * spread);
    if (!c.ok) error = std::string(what) + ": reference mismatch: " + c.message;
  };
  check_sum("dgamma", p.dgamma, e.dgamma, e.dgamma_spread);
  check_sum("dbeta", p.dbeta, e.dbeta, e.dbeta_spread);
  return error;
}

// ------------------------------------------------------------------ benchmarks

std::atomic<int> g_failed_cases{0};

template <class T>
struct Case {
  Impl impl;
  std::optional<Op> op;  // none for the floors and the listed functors
  Pass pass;             // the floors': floor_pass(impl)
  Shape shape;
  double mib;            // nominal size
  Runner run{};          // bound to the buffers of `bound_epoch`; rebuilt (and rechecked) if they move
  unsigned bound_epoch = 0;
  std::string error{};
  bool counted = false;
  std::vector<T> gamma{}, beta{}, dgamma{}, dbeta{};
  const Listed<T>* listed = nullptr;
};

// The case whose runner is alive. Google Benchmark runs one case to the end
// before the next, and a peer's runner holds its own copies of the tensors
// (libtorch's backward at 256 MiB: about 1 GiB), so the previous case's runner
// is released when another starts: keeping them all exhausted 24 GiB.
inline std::function<void()>& release_previous_runner() {
  static std::function<void()> release;
  return release;
}

template <class T>
void run_case(benchmark::State& state, Case<T>& c) {
  auto& release = release_previous_runner();
  if (!c.run) {
    if (release) release();
    release = [&c] { c.run = nullptr; };
  }
  const Index n = c.shape.size();
  const auto info = c.op ? &kOps[static_cast<int>(*c.op)] : nullptr;
  state.counters["cols"] = static_cast<double>(c.shape.cols);
  state.counters["len"] = static_cast<double>(c.shape.geo.len);
  state.counters["mib"] = c.mib;
  state.counters["strided"] = static_cast<double>(c.shape.layout);
  state.counters["threads"] = threaded(c.impl) ? kThreads : 1;
  const bool backward = c.pass == Pass::backward;
  try {
    const std::optional<bool> positive =
        c.listed ? std::optional<bool>(true) : info ? std::optional<bool>(info->positive_data) : std::nullopt;
    const Buffers<T> b = arena().get<T>(n, positive, backward);
    const T* in = b.x;
    const bool from_output = c.listed ? c.listed->backward_from_output : c.op && backward_from_output(*c.op);
    if (backward && from_output) {  // its backward reads y: normkit's forward output
      std::ostringstream key;
      key << (c.listed ? c.listed->name.c_str() : info->name) << '/' << typeid(T).name() << '/'
          << static_cast<int>(c.shape.layout) << '/' << c.shape.d0 << 'x' << c.shape.d1;
      arena().ensure_saved(key.str(), [&] {
        Problem<T> forward{c.op.value_or(Op::sum_to_one), Pass::forward, c.shape, b.x, b.saved, nullptr, nullptr};
        forward.listed = c.listed;
        (c.listed ? c.listed->forward(forward, nullptr) : normkit_runner(forward, nullptr))();
      });
      in = b.saved;
    }
    if (!c.run || c.bound_epoch != arena().epoch()) {
      const std::size_t len = static_cast<std::size_t>(c.shape.geo.len);
      if (info && info->gamma && c.gamma.empty()) {  // deterministic per-position weights
        c.gamma.resize(len);
        c.beta.resize(info->beta ? len : 0);
        Eigen::TensorMap<Eigen::Tensor<T, 1>> g(c.gamma.data(), c.shape.geo.len), bt(c.beta.data(), c.beta.size());
        ref::fill_uniform(g, 7, 0.5, 1.5);
        ref::fill_normal(bt, 8, 0.0, 0.5);
        if (backward) {
          c.dgamma.resize(len);
          c.dbeta.resize(c.beta.size());
        }
      }
      const auto data_or_null = [](auto& v) { return v.empty() ? nullptr : v.data(); };
      const Problem<T> p{c.op.value_or(Op::sum_to_one), c.pass, c.shape, in, b.y, data_or_null(c.gamma),
                         data_or_null(c.beta), b.dy, data_or_null(c.dgamma), data_or_null(c.dbeta), c.listed};
      const Runners r = make_runners(c.impl, p, threaded(c.impl) ? &pool_device() : nullptr);
      if (!r.timed) throw std::logic_error("no implementation");
      c.run = r.timed;
      c.bound_epoch = arena().epoch();
      const bool checked = c.op || c.listed;
      c.error = !checked ? std::string() : backward ? check_backward(p, r.checked) : check(p, r.checked);
      // The check ran the op once; an unchecked loop (a floor) runs once untimed too, so
      // that no timed call pays the first touch of a fresh output's pages.
      if (!checked) r.timed();
    }
  } catch (const std::exception& e) {
    c.error = std::string("exception: ") + e.what();
  }
  if (!c.error.empty()) {
    if (!c.counted) ++g_failed_cases, c.counted = true;
    state.SkipWithError(c.error.c_str());
    return;
  }
  for (auto _ : state) {
    c.run();
    benchmark::ClobberMemory();
  }
  // Forward: x read, y written; backward: x (or y) and dy read, dx written.
  state.SetBytesProcessed(state.iterations() * (backward ? 3 : 2) * n * static_cast<std::int64_t>(sizeof(T)));
}

template <class T>
void register_case(const char* type, Case<T> c) {
  std::ostringstream name;
  const bool is_op = c.op || c.listed;
  name << (c.listed ? c.listed->name.c_str() : c.op ? kOps[static_cast<int>(*c.op)].name : "floor")
       << (is_op ? kPassSuffix[static_cast<int>(c.pass)] : "")
       << '/' << kImplNames[static_cast<int>(c.impl)] << '/' << type << '/'
       << kLayoutNames[static_cast<int>(c.shape.layout)] << "/cols:" << c.shape.cols << "/MiB:" << c.mib;
  auto shared = std::make_shared<Case<T>>(std::move(c));
  benchmark::RegisterBenchmark(name.str().c_str(), [shared](benchmark::State& s) { run_case(s, *shared); })
      ->UseRealTime()  // the threaded impls work on pool threads too
      ->Unit(benchmark::kMicrosecond);
}

const std::pair<Layout, Index> kShapes[] = {
    {Layout::rowmajor, 64},        {Layout::rowmajor, 768},      {Layout::rowmajor, 4096},
    {Layout::rowmajor, 32768},     {Layout::rowmajor_axis0, 768}, {Layout::colmajor_last, 768},
};

// Registration order = run order: type > size > (floors, then op) > pass > shape > impl.
struct Selection {
  std::vector<std::size_t> sizes_kib;
  std::vector<bool> impls;   // by Impl
  std::vector<bool> passes;  // by Pass
};

template <class T>
void register_type(const char* type, const Selection& sel) {
  const auto selected = [&](Impl impl) { return sel.impls[static_cast<std::size_t>(impl)]; };
  for (std::size_t kib : sel.sizes_kib) {
    const Index elements = static_cast<Index>(kib * 1024 / sizeof(T));
    const double mib = static_cast<double>(kib) / 1024;
    for (const auto& [layout, cols] : kShapes)
      for (Impl impl : kFloors)
        if (selected(impl) && sel.passes[static_cast<std::size_t>(floor_pass(impl))])
          register_case<T>(type, {impl, std::nullopt, floor_pass(impl), make_shape(layout, cols, elements), mib});
    for (const OpInfo& op : kOps)
      for (const Pass pass : {Pass::forward, Pass::backward}) {
        if (!sel.passes[static_cast<std::size_t>(pass)] || (pass == Pass::forward && !op.forward)) continue;
        for (const auto& [layout, cols] : kShapes) {
          const Shape shape = make_shape(layout, cols, elements);
          for (Impl impl : kOpImpls)
            if (selected(impl) && available<T>(impl, op.op, pass))
              register_case<T>(type, {impl, op.op, pass, shape, mib});
        }
      }
    for (const Listed<T>& listed : listed_functors<T>())
      for (const Pass pass : {Pass::forward, Pass::backward}) {
        if (!sel.passes[static_cast<std::size_t>(pass)]) continue;
        for (const auto& [layout, cols] : kShapes)
          for (Impl impl : {Impl::normkit, Impl::normkit_mt})
            if (selected(impl)) {
              Case<T> c{impl, std::nullopt, pass, make_shape(layout, cols, elements), mib};
              c.listed = &listed;
              register_case<T>(type, std::move(c));
            }
      }
  }
}

// Removes the first argument starting with `prefix` from argv and returns what
// follows the prefix (nullopt if absent).
std::optional<std::string> take_arg(int& argc, char** argv, const char* prefix) {
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], prefix, std::strlen(prefix)) == 0) {
      std::string value = argv[i] + std::strlen(prefix);
      std::copy(argv + i + 1, argv + argc, argv + i);
      --argc;
      return value;
    }
  return std::nullopt;
}

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> out;
  std::istringstream in(list);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  // Our own flags go first: Google Benchmark rejects what it does not know.
  const bool smoke = bench::take_arg(argc, argv, "--smoke").has_value();
  const auto sizes = bench::take_arg(argc, argv, "--sizes=");
  const auto impls = bench::take_arg(argc, argv, "--impls=");
  const auto passes = bench::take_arg(argc, argv, "--passes=");
  bench::Selection sel;
  sel.passes.assign(std::size(bench::kPassSuffix), !passes);
  for (const std::string& name : bench::split(passes.value_or(""))) {
    if (name != "forward" && name != "backward") {
      std::fprintf(stderr, "--passes: unknown pass '%s' (forward, backward)\n", name.c_str());
      return 1;
    }
    sel.passes[static_cast<std::size_t>(name == "forward" ? bench::Pass::forward : bench::Pass::backward)] = true;
  }
  for (const std::string& mib : bench::split(sizes.value_or(smoke ? "0.0625" : "4,256")))
    sel.sizes_kib.push_back(static_cast<std::size_t>(std::stod(mib) * 1024));
  sel.impls.assign(std::size(bench::kImplNames), !impls);
  for (const std::string& name : bench::split(impls.value_or(""))) {
    const auto* it = std::find_if(std::begin(bench::kImplNames), std::end(bench::kImplNames),
                                  [&](const char* known) { return name == known; });
    if (it == std::end(bench::kImplNames)) {
      std::fprintf(stderr, "--impls: unknown implementation '%s'\n", name.c_str());
      return 1;
    }
    sel.impls[static_cast<std::size_t>(it - std::begin(bench::kImplNames))] = true;
  }

  std::vector<char*> args(argv, argv + argc);
  static char smoke_min_time[] = "--benchmark_min_time=0.001";
  const bool has_min_time = std::any_of(args.begin(), args.end(), [](const char* a) {
    return std::strncmp(a, "--benchmark_min_time", 20) == 0;
  });
  if (smoke && !has_min_time) args.push_back(smoke_min_time);
  int n = static_cast<int>(args.size());
  args.push_back(nullptr);

#ifdef NORMKIT_BENCH_HAVE_TORCH
  bench::torch_init();
#endif
  bench::register_type<float>("float", sel);
  bench::register_type<double>("double", sel);
  std::string peers;
#ifdef NORMKIT_BENCH_HAVE_ONEDNN
  peers += "onednn ";
#endif
#ifdef NORMKIT_BENCH_HAVE_TORCH
  peers += "torch";
#endif
  benchmark::AddCustomContext("peers", peers.empty() ? "none" : peers);

  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (const int failed = bench::g_failed_cases.load()) {
    std::fprintf(stderr, "%d benchmark(s) failed the reference check or threw (see error_message)\n", failed);
    if (smoke) return 1;
  }
  return 0;
}
