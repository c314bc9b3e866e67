// tests/thread_pool.cpp - the ThreadPoolDevice overloads (own executable:
// EIGEN_USE_THREADS must be defined before the first Eigen include of a
// translation unit, and the other tests do not use it).
//
// Tiles are computed the same way whichever thread runs them, so threaded
// results must be bit-identical to the single-threaded call, for contiguous
// slices, strided chunks (full Wide chunks, partial chunks, scalar leftovers)
// and NaN-raise scans.
#define CATCH_CONFIG_MAIN
#define EIGEN_USE_THREADS
#include <catch2/catch.hpp>
#include <cstring>
#include <normkit/normkit.hpp>
#include <string>
#include <unsupported/Eigen/CXX11/ThreadPool>

#include "engine_instances.hpp"
#include "reference.hpp"

namespace {

using Eigen::Index;

template <class A, class B>
bool same_bits(const A& a, const B& b) {
  return a.size() == b.size() &&
         std::memcmp(a.data(), b.data(), sizeof(*a.data()) * static_cast<std::size_t>(a.size())) == 0;
}

struct Pool {
  Eigen::ThreadPool pool{3};  // more threads than cores: ranges interleave
  Eigen::ThreadPoolDevice device{&pool, 3};
};

// Shapes [d0, d1, d2] whose axes give contiguous rows, strided chunks with
// full and partial Wide groups, and leftover scalar slices.
const std::array<Index, 3> kShapes[] = {{7, 33, 129}, {3, 300, 17}, {2, 1000, 5}, {40, 3, 260}};

template <class F, int L>
void threaded_matches_serial(const F& f, Pool& p) {
  using T = typename F::value_type;
  unsigned seed = 500;
  for (const auto& dims : kShapes) {
    Eigen::Tensor<T, 3, L> x = ref::random_tensor<T, 3, L>(dims, ++seed);
    ref::add_nans(x, seed, 0.002);  // every NaN policy gets something to do
    for (int axis = 0; axis < 3; ++axis) {
      INFO(F::name << " layout " << L << " dims " << dims[0] << "x" << dims[1] << "x" << dims[2] << " axis " << axis);
      const Eigen::Tensor<T, 3, L> serial = f(x, axis);
      Eigen::Tensor<T, 3, L> threaded(x.dimensions());
      normkit::normalize(x, f, axis, threaded, p.device);
      CHECK(same_bits(serial, threaded));
      Eigen::Tensor<T, 3, L> inplace = x;
      normkit::normalize_inplace(inplace, f, axis, p.device);
      CHECK(same_bits(serial, inplace));
    }
  }
}

template <class F>
void every_layout_and_policy(F f, Pool& p) {
  for (auto policy : {normkit::NanPolicy::propagate, normkit::NanPolicy::ignore, normkit::NanPolicy::zero}) {
    f.nan_policy = policy;
    threaded_matches_serial<F, Eigen::ColMajor>(f, p);
    threaded_matches_serial<F, Eigen::RowMajor>(f, p);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("threaded calls are bit-identical to serial ones", "[threads]", float, double) {
  Pool p;
  using T = TestType;
#define NORMKIT_TEST_THREADED(Functor) every_layout_and_policy(normkit::Functor<T>{}, p);
  NORMKIT_FUNCTORS(NORMKIT_TEST_THREADED)
#undef NORMKIT_TEST_THREADED
}

TEST_CASE("threaded LayerNorm with gamma and beta is bit-identical to serial", "[threads]") {
  Pool p;
  const auto x = ref::random_tensor<float, 3, Eigen::RowMajor>({5, 300, 48}, 77);
  Eigen::Tensor<float, 1> gamma = ref::random_tensor<float, 1, Eigen::ColMajor>({300}, 78);
  Eigen::Tensor<float, 1> beta = ref::random_tensor<float, 1, Eigen::ColMajor>({300}, 79);
  const normkit::LayerNorm<float> f;
  const auto w = normkit::affine(gamma, beta);
  const Eigen::Tensor<float, 3, Eigen::RowMajor> serial = normkit::normalize(x, f, 1, w);
  Eigen::Tensor<float, 3, Eigen::RowMajor> threaded(x.dimensions());
  normkit::normalize(x, f, 1, w, threaded, p.device);
  CHECK(same_bits(serial, threaded));
}

TEST_CASE("threaded NanPolicy::raise names the same NaN and writes nothing", "[threads]") {
  Pool p;
  normkit::L2Norm<float> f;
  f.nan_policy = normkit::NanPolicy::raise;
  // Two NaNs: along axis 0 the first slice holding one is column 0 (its NaN
  // is at row 200); along axis 1 it is row 123.
  Eigen::Tensor<float, 2, Eigen::RowMajor> x = ref::random_tensor<float, 2, Eigen::RowMajor>({300, 40}, 80);
  x(123, 39) = std::numeric_limits<float>::quiet_NaN();
  x(200, 0) = std::numeric_limits<float>::quiet_NaN();
  const std::string expected[] = {"NaN at index (200, 0)", "NaN at index (123, 39)"};
  for (int axis = 0; axis < 2; ++axis) {
    Eigen::Tensor<float, 2, Eigen::RowMajor> out(x.dimensions());
    out.setConstant(42);
    CHECK_THROWS_WITH(normkit::normalize(x, f, axis, out, p.device), Catch::Contains(expected[axis]));
    CHECK_THROWS_WITH(f(x, axis, out), Catch::Contains(expected[axis]));
    for (Index i = 0; i < out.size(); ++i) REQUIRE(out.data()[i] == 42.0f);
  }
}

namespace {

// The backward of F on every shape, axis and layout: dx (and LayerNorm's
// dgamma, dbeta, reduced over the non-normalized positions) threaded equals
// serial bit for bit.
template <class F, int L>
void threaded_backward_matches_serial(const F& f, Pool& p) {
  using T = typename F::value_type;
  unsigned seed = 900;
  for (const auto& dims : kShapes) {
    Eigen::Tensor<T, 3, L> x = ref::random_tensor<T, 3, L>(dims, ++seed);
    const Eigen::Tensor<T, 3, L> dy = ref::random_tensor<T, 3, L>(dims, ++seed);
    ref::add_nans(x, seed, 0.002);
    for (int axis = 0; axis < 3; ++axis) {
      INFO(F::name << " backward, layout " << L << " dims " << dims[0] << "x" << dims[1] << "x" << dims[2]
                   << " axis " << axis << " policy " << normkit::to_string(f.nan_policy));
      const Eigen::Tensor<T, 3, L> saved = F::backward_from_output ? Eigen::Tensor<T, 3, L>(f(x, axis)) : x;
      Eigen::Tensor<T, 3, L> serial(x.dimensions()), threaded(x.dimensions());
      if constexpr (normkit::accepts_affine_v<F>) {
        const Eigen::Tensor<T, 1> gamma = ref::random_tensor<T, 1, Eigen::ColMajor>({dims[axis]}, seed + 1);
        const Eigen::Tensor<T, 1> beta = ref::random_tensor<T, 1, Eigen::ColMajor>({dims[axis]}, seed + 2);
        Eigen::Tensor<T, 1> dg1(dims[axis]), db1(dims[axis]), dg2(dims[axis]), db2(dims[axis]);
        const auto w = normkit::affine(gamma, beta);
        f.backward(saved, dy, axis, w, serial, normkit::affine_grads(dg1, db1));
        f.backward(saved, dy, axis, w, threaded, normkit::affine_grads(dg2, db2), p.device);
        CHECK(same_bits(dg1, dg2));
        CHECK(same_bits(db1, db2));
      } else {
        f.backward(saved, dy, axis, serial);
        f.backward(saved, dy, axis, threaded, p.device);
      }
      CHECK(same_bits(serial, threaded));
    }
  }
}

template <class F>
void backward_every_layout_and_policy(F f, Pool& p) {
  for (auto policy : {normkit::NanPolicy::propagate, normkit::NanPolicy::ignore}) {
    f.nan_policy = policy;
    threaded_backward_matches_serial<F, Eigen::ColMajor>(f, p);
    threaded_backward_matches_serial<F, Eigen::RowMajor>(f, p);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("threaded backward is bit-identical to serial, dgamma and dbeta included", "[threads][backward]",
                   float, double) {
  Pool p;
  using T = TestType;
#define NORMKIT_TEST_THREADED(Functor) backward_every_layout_and_policy(normkit::Functor<T>{}, p);
  NORMKIT_FUNCTORS(NORMKIT_TEST_THREADED)
#undef NORMKIT_TEST_THREADED
}

namespace {

// normkit::forward / backward with saved statistics: the statistics, y and dx
// threaded equal serial bit for bit.
template <class F, int L>
void threaded_saved_matches_serial(const F& f, Pool& p) {
  using T = typename F::value_type;
  unsigned seed = 1300;
  for (const auto& dims : kShapes) {
    Eigen::Tensor<T, 3, L> x = ref::random_tensor<T, 3, L>(dims, ++seed);
    const Eigen::Tensor<T, 3, L> dy = ref::random_tensor<T, 3, L>(dims, ++seed);
    ref::add_nans(x, seed, 0.002);
    for (int axis = 0; axis < 3; ++axis) {
      INFO(F::name << " saved statistics, layout " << L << " dims " << dims[0] << "x" << dims[1] << "x" << dims[2]
                   << " axis " << axis << " policy " << normkit::to_string(f.nan_policy));
      auto [serial_y, serial_saved] = normkit::forward(x, f, axis);
      Eigen::Tensor<T, 3, L> y(x.dimensions());
      normkit::saved_t<F, Eigen::Tensor<T, 3, L>> saved;
      normkit::forward(x, f, axis, y, saved, p.device);
      CHECK(same_bits(serial_y, y));
      for (std::size_t k = 0; k < saved.size; ++k) CHECK(same_bits(serial_saved.field(k), saved.field(k)));
      if constexpr (!F::backward_from_output) {
        const Eigen::Tensor<T, 3, L> serial = normkit::backward(f, x, dy, axis, saved);
        Eigen::Tensor<T, 3, L> threaded(x.dimensions());
        normkit::backward(f, x, dy, axis, threaded, saved, p.device);
        CHECK(same_bits(serial, threaded));
      }
    }
  }
}

template <class F>
void saved_every_layout_and_policy(F f, Pool& p) {
  if constexpr (normkit::saves_statistics_v<F>) {
    for (auto policy : {normkit::NanPolicy::propagate, normkit::NanPolicy::ignore}) {
      f.nan_policy = policy;
      threaded_saved_matches_serial<F, Eigen::ColMajor>(f, p);
      threaded_saved_matches_serial<F, Eigen::RowMajor>(f, p);
    }
  } else {
    (void)f, (void)p;
  }
}

}  // namespace

// One functor per kind of saved statistic (the slice index the engine passes
// is the same code for all), float and double lane widths between them.
TEST_CASE("threaded forward / backward with saved statistics are bit-identical to serial", "[threads][saved]") {
  Pool p;
  saved_every_layout_and_policy(normkit::LayerNorm<float>{}, p);   // mean, rstd: CenteredDot
  saved_every_layout_and_policy(normkit::MinMax<double>{}, p);     // min, max: RangeDot
  saved_every_layout_and_policy(normkit::L2Norm<double>{}, p);     // norm: Dot
  saved_every_layout_and_policy(normkit::LogSoftmax<float>{}, p);  // max, logsumexp: forward only
}
