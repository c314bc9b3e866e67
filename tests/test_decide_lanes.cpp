// The batched decide (finalize_lanes, the statistics' lane tests and
// AffineMap::lower_lanes) against one slice at a time: every functor that
// decides in lanes gives the output it gives with finalize_lanes hidden, bit
// for bit, on rows that mix ordinary slices with every kind the lanes leave
// to the scalar path (constant, zero, NaN, infinite, huge, tiny, subnormal,
// one ulp apart, large offsets, negative), at every lane position, on the
// contiguous path (groups of short slices). The strided path (chunks), which
// decides one slice at a time today, is compared too.
#include <catch2/catch.hpp>

#include <normkit/normkit.hpp>

#include "engine_instances.hpp"
#include "reference.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace {

using Index = Eigen::Index;
template <class T>
using Mat = Eigen::Tensor<T, 2, Eigen::RowMajor>;

// F with finalize_lanes hidden: the engine then decides one slice at a time.
template <class F>
struct OneAtATime : F {
  explicit OneAtATime(const F& f) : F(f) {}
  template <class D, class Total>
  void finalize_lanes(const Total*) const = delete;
};

constexpr int kinds = 13;

// Row r of a tensor whose rows are slices: mostly ordinary data, and every
// third row one of the kinds the lanes are unsure of, so that each kind
// lands in several lane positions.
template <class T>
void fill_row(T* row, Index n, int kind, std::mt19937& rng) {
  using L = std::numeric_limits<T>;
  std::uniform_real_distribution<double> u(0.5, 2.0);
  const bool single = sizeof(T) == 4;
  for (Index j = 0; j < n; ++j) {
    const double v = u(rng);
    switch (kind) {
      case 0: row[j] = T(v); break;
      case 1: row[j] = T(3.25); break;                                   // constant
      case 2: row[j] = T(0); break;                                      // zero
      case 3: row[j] = j == n / 2 ? L::quiet_NaN() : T(v); break;         // NaN
      case 4: row[j] = j == n - 1 ? L::infinity() : T(v); break;          // +inf
      case 5: row[j] = T(v * (single ? 1e30 : 1e200)); break;            // squares overflow
      case 6: row[j] = T(v * (single ? 1e-30 : 1e-200)); break;          // squares underflow
      case 7: row[j] = T(v) * L::denorm_min() * T(8); break;             // subnormal
      case 8: row[j] = j % 2 ? T(1e4) : std::nextafter(T(1e4), T(2e4)); break;  // one ulp apart
      case 9: row[j] = T((single ? 1e6 : 1e12) + v); break;              // large offset
      case 10: row[j] = T(-v); break;                                    // negative
      case 11: row[j] = j == 0 ? -L::infinity() : T(v); break;           // -inf
      default: row[j] = T(v) * L::max() / T(4); break;                   // near the largest value
    }
  }
}

template <class T>
Mat<T> mixed_rows(Index rows, Index n, unsigned seed) {
  Mat<T> x(rows, n);
  std::mt19937 rng(seed);
  for (Index r = 0; r < rows; ++r) fill_row(x.data() + r * n, n, r % 3 == 1 ? 1 + int(r / 3) % (kinds - 1) : 0, rng);
  return x;
}

template <class T>
bool same_bits(const Mat<T>& a, const Mat<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(T) * std::size_t(a.size())) == 0;
}

template <class T>
Index first_difference(const Mat<T>& a, const Mat<T>& b) {
  for (Index i = 0; i < a.size(); ++i)
    if (std::memcmp(a.data() + i, b.data() + i, sizeof(T)) != 0) return i;
  return -1;
}

// f and OneAtATime<f> on the rows (axis 1) and on their transpose (axis 0,
// strided), with gamma and beta when the functor takes them.
template <class F>
void agrees(const F& f, Index rows, Index n, unsigned seed) {
  using T = typename F::value_type;
  const Mat<T> x = mixed_rows<T>(rows, n, seed);
  const Mat<T> xt = x.shuffle(Eigen::array<int, 2>{1, 0});
  const OneAtATime<F> alone(f);
  for (int axis : {1, 0}) {
    const Mat<T>& in = axis == 1 ? x : xt;
    INFO(F::name << " rows " << rows << " n " << n << " axis " << axis);
    Mat<T> lanes(in.dimensions()), one(in.dimensions());
    normkit::normalize(in, f, {axis}, lanes);
    normkit::normalize(in, alone, {axis}, one);
    INFO("first difference at " << first_difference(lanes, one));
    CHECK(same_bits(lanes, one));
    if constexpr (normkit::detail::accepts_weights<F>::value) {
      Eigen::Tensor<T, 1> gamma(n), beta(n);
      ref::fill_uniform(gamma, seed + 1, -2.0, 2.0);
      ref::fill_uniform(beta, seed + 2, -1.0, 1.0);
      normkit::normalize(in, f, {axis}, normkit::affine(gamma, beta), lanes);
      normkit::normalize(in, alone, {axis}, normkit::affine(gamma, beta), one);
      INFO("with gamma and beta; first difference at " << first_difference(lanes, one));
      CHECK(same_bits(lanes, one));
    }
  }
}

template <class F>
void agrees_on_shapes(const F& f, Index shortest = 1) {
  // Groups of short slices (1 to 256 elements, bodies and tails), and strided
  // chunks from a few batches to whole Wide chunks with leftover slices.
  unsigned seed = 1;
  for (Index n : {1, 3, 8, 16, 37, 64, 100, 256})
    for (Index rows : {40, 150})
      if (n >= shortest) agrees(f, rows, n, seed++);
}

template <class T>
void every_lane_functor() {
  using normkit::NanPolicy;
  for (NanPolicy p : {NanPolicy::propagate, NanPolicy::ignore}) {
    agrees_on_shapes(normkit::LayerNorm<T>{T(1e-5), p});
    agrees_on_shapes(normkit::LayerNorm<T>{T(0), p});
    agrees_on_shapes(normkit::ZScore<T>{0, T(0), false, p});
    agrees_on_shapes(normkit::ZScore<T>{1, T(1e-3), false, p}, 2);
    agrees_on_shapes(normkit::ZScore<T>{0, T(1e-3), true, p});
    agrees_on_shapes(normkit::L2Norm<T>{T(1e-12), false, p});
    agrees_on_shapes(normkit::L2Norm<T>{T(1e-3), true, p});
    agrees_on_shapes(normkit::L2Norm<T>{T(0), false, p});
    agrees_on_shapes(normkit::RMSNorm<T>{T(1e-6), p});
    agrees_on_shapes(normkit::RMSNorm<T>{T(0), p});
  }
}

}  // namespace

TEST_CASE("decide in lanes: the same output as one slice at a time, float", "[lanes]") {
  every_lane_functor<float>();
}

TEST_CASE("decide in lanes: the same output as one slice at a time, double", "[lanes]") {
  every_lane_functor<double>();
}

TEST_CASE("decide in lanes: hiding finalize_lanes turns the batched decide off", "[lanes]") {
  using D = normkit::detail::Batch<double>;
  using Total = normkit::stats::Moments::Total<double>;
  STATIC_REQUIRE(normkit::detail::decides_lanes<normkit::LayerNorm<float>, Total>::value);
  STATIC_REQUIRE(!normkit::detail::decides_lanes<OneAtATime<normkit::LayerNorm<float>>, Total>::value);
  STATIC_REQUIRE(normkit::detail::has_lower_lanes<normkit::ext::AffineMap, float>::value);
  STATIC_REQUIRE(normkit::detail::has_exact_lanes<normkit::stats::Moments, float>::value);
  (void)sizeof(D);
}
