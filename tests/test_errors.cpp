// Error paths: each invalid call throws the documented normkit exception, whose
// message starts with "normkit::<where>: " and names the offending values, and
// nothing is written - outputs pre-filled with 42 stay 42 and in-place inputs
// keep their bits.
#include <catch2/catch.hpp>

#include <normkit/normkit.hpp>

#include "engine_instances.hpp"

#include "reference.hpp"

#include <array>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using Eigen::ColMajor;
using Eigen::RowMajor;
using normkit::NanPolicy;
using Tensor3 = Eigen::Tensor<float, 3>;
using Tensor3R = Eigen::Tensor<float, 3, RowMajor>;
using MatrixXfR = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, RowMajor>;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// what() starts with `prefix` and contains every one of `parts`.
class MessageIs : public Catch::MatcherBase<std::exception> {
 public:
  MessageIs(std::string prefix, std::vector<std::string> parts) : prefix_(std::move(prefix)), parts_(std::move(parts)) {}

  bool match(const std::exception& e) const override {
    const std::string what = e.what();
    if (what.compare(0, prefix_.size(), prefix_) != 0) return false;
    for (const std::string& p : parts_)
      if (what.find(p) == std::string::npos) return false;
    return true;
  }

  std::string describe() const override {
    std::string d = "message starts with \"" + prefix_ + "\" and contains";
    for (const std::string& p : parts_) d += " \"" + p + "\"";
    return d;
  }

 private:
  std::string prefix_;
  std::vector<std::string> parts_;
};

template <class F>
MessageIs from(const std::vector<std::string>& parts) {
  return MessageIs(std::string("normkit::") + F::name + ": ", parts);
}

template <class A, class B>
bool same_bits(const A& a, const B& b) {
  if (static_cast<Eigen::Index>(a.size()) == 0) return b.size() == 0;  // memcmp on null data is UB
  return static_cast<Eigen::Index>(a.size()) == static_cast<Eigen::Index>(b.size()) &&
         std::memcmp(a.data(), b.data(), sizeof(*a.data()) * static_cast<std::size_t>(a.size())) == 0;
}

template <class A>
bool all_42(const A& a) {
  for (Eigen::Index i = 0; i < static_cast<Eigen::Index>(a.size()); ++i)
    if (!(a.data()[i] == 42)) return false;
  return true;
}

// Dense object (possibly a Block) element by element.
template <class M>
bool dense_all_42(const M& m) {
  return (m.array() == typename M::Scalar(42)).all();
}

template <class X>
X filled_42(const X& x) {
  X out = x;
  out.setConstant(42);
  return out;
}

using ref::random_matrix;
using ref::random_tensor;

// Every call form of f on x (a plain Tensor or Matrix) throws Error matching
// `what`; outputs and the in-place input are untouched.
template <class Error, class F, class X>
void expect_throws(const F& f, const X& x, const normkit::Axes& axes, const MessageIs& what) {
  INFO("axes " << axes.str());
  CHECK_THROWS_MATCHES(f(x, axes), Error, what);
  CHECK_THROWS_MATCHES(normkit::normalize(x, f, axes), Error, what);
  X out = filled_42(x);
  CHECK_THROWS_MATCHES(f(x, axes, out), Error, what);
  CHECK(all_42(out));
  CHECK_THROWS_MATCHES(normkit::normalize(x, f, axes, out), Error, what);
  CHECK(all_42(out));
  X z = x;
  CHECK_THROWS_MATCHES(f.inplace(z, axes), Error, what);
  CHECK(same_bits(z, x));
  CHECK_THROWS_MATCHES(normkit::normalize_inplace(z, f, axes), Error, what);
  CHECK(same_bits(z, x));
}

// The same for the affine forms of LayerNorm / RMSNorm.
template <class Error, class F, class X, class W>
void expect_affine_throws(const F& f, const X& x, const normkit::Axes& axes, const W& w, const MessageIs& what) {
  INFO("axes " << axes.str());
  CHECK_THROWS_MATCHES(f(x, axes, w), Error, what);
  X out = filled_42(x);
  CHECK_THROWS_MATCHES(f(x, axes, w, out), Error, what);
  CHECK(all_42(out));
  CHECK_THROWS_MATCHES(normkit::normalize(x, f, axes, w, out), Error, what);
  CHECK(all_42(out));
  X z = x;
  CHECK_THROWS_MATCHES(f.inplace(z, axes, w), Error, what);
  CHECK(same_bits(z, x));
}

}  // namespace

TEST_CASE("normkit exceptions derive from std::invalid_argument / std::domain_error", "[errors]") {
  static_assert(std::is_base_of<std::invalid_argument, normkit::axis_error>::value, "axis_error");
  static_assert(std::is_base_of<std::invalid_argument, normkit::shape_error>::value, "shape_error");
  static_assert(std::is_base_of<std::invalid_argument, normkit::option_error>::value, "option_error");
  static_assert(std::is_base_of<std::domain_error, normkit::nan_error>::value, "nan_error");
  const Tensor3 x = random_tensor<float, 3, ColMajor>({2, 3, 4}, 1);
  const normkit::L2Norm<float> f{};
  Tensor3 out(2, 3, 4), wrong(3, 2, 4);
  out.setConstant(42);
  wrong.setConstant(42);
  CHECK_THROWS_AS(f(x, 3, out), std::invalid_argument);
  CHECK_THROWS_AS(f(x, 0, wrong), std::invalid_argument);
  CHECK_THROWS_AS((normkit::L2Norm<float>{-1.f}(x, 0, out)), std::invalid_argument);
  Tensor3 xn = x;
  xn(1, 1, 1) = kNaN;
  const Tensor3 xn0 = xn;
  CHECK_THROWS_AS((normkit::L2Norm<float>{1e-12f, false, NanPolicy::raise}(xn, 0, out)), std::domain_error);
  CHECK_THROWS_AS((normkit::L2Norm<float>{1e-12f, false, NanPolicy::raise}.inplace(xn, 0)), std::domain_error);
  CHECK(all_42(out));
  CHECK(all_42(wrong));
  CHECK(same_bits(xn, xn0));
}

TEST_CASE("axis out of range names the axis and the rank", "[errors]") {
  using F = normkit::L2Norm<float>;
  const F f{};
  const Tensor3 x = random_tensor<float, 3, ColMajor>({2, 3, 4}, 2);
  const Tensor3R xr = random_tensor<float, 3, RowMajor>({2, 3, 4}, 3);
  for (int axis : {3, 4, 100, -4, -5}) {
    const MessageIs what = from<F>({"axis " + std::to_string(axis) + " ", "rank 3"});
    expect_throws<normkit::axis_error>(f, x, axis, what);
    expect_throws<normkit::axis_error>(f, xr, axis, what);
  }
  expect_throws<normkit::axis_error>(f, x, {1, 3}, from<F>({"axis 3 ", "rank 3"}));
  expect_throws<normkit::axis_error>(f, x, {-4, -3}, from<F>({"axis -4 ", "rank 3"}));

  const Eigen::MatrixXf m = random_matrix<Eigen::MatrixXf>(5, 7, 4);
  expect_throws<normkit::axis_error>(f, m, 2, from<F>({"axis 2 ", "rank 2"}));
  expect_throws<normkit::axis_error>(f, m, -3, from<F>({"axis -3 ", "rank 2"}));
  expect_throws<normkit::axis_error>(f, m, {1, 2}, from<F>({"axis 2 ", "rank 2"}));

  const Eigen::Tensor<float, 1> v = random_tensor<float, 1, ColMajor>({6}, 5);
  expect_throws<normkit::axis_error>(f, v, 1, from<F>({"axis 1 ", "rank 1"}));
  expect_throws<normkit::axis_error>(f, v, -2, from<F>({"axis -2 ", "rank 1"}));

  const Eigen::Tensor<float, 5> x5 = random_tensor<float, 5, ColMajor>({2, 1, 2, 1, 2}, 6);
  expect_throws<normkit::axis_error>(normkit::LayerNorm<float>{}, x5, 5,
                                     from<normkit::LayerNorm<float>>({"axis 5 ", "rank 5"}));
}

TEST_CASE("duplicate and non-adjacent axes", "[errors]") {
  using F = normkit::Softmax<float>;
  const F f{};
  const Tensor3 x = random_tensor<float, 3, ColMajor>({2, 3, 4}, 7);
  expect_throws<normkit::axis_error>(f, x, {1, 1}, from<F>({"{1, 1}", "axis 1 twice"}));
  expect_throws<normkit::axis_error>(f, x, {1, -2}, from<F>({"{1, -2}", "axis 1 twice"}));  // -2 is axis 1
  expect_throws<normkit::axis_error>(f, x, {0, 1, 0}, from<F>({"{0, 1, 0}", "twice"}));
  expect_throws<normkit::axis_error>(f, x, {0, 2}, from<F>({"{0, 2}", "adjacent"}));
  expect_throws<normkit::axis_error>(f, x, {2, 0}, from<F>({"{2, 0}", "adjacent"}));
  expect_throws<normkit::axis_error>(f, x, {0, -1}, from<F>({"{0, -1}", "adjacent"}));
  const Eigen::Tensor<float, 4, RowMajor> x4 = random_tensor<float, 4, RowMajor>({2, 2, 2, 2}, 8);
  expect_throws<normkit::axis_error>(f, x4, {0, 1, 3}, from<F>({"{0, 1, 3}", "adjacent"}));
  const Eigen::MatrixXf m = random_matrix<Eigen::MatrixXf>(5, 7, 9);
  expect_throws<normkit::axis_error>(f, m, {0, 0}, from<F>({"{0, 0}", "twice"}));

  // No axes, or more than 8: rejected when the Axes is built.
  const std::initializer_list<int> none{}, nine{0, 1, 2, 3, 4, 5, 6, 7, 8};
  CHECK_THROWS_MATCHES(normkit::Axes(none), normkit::axis_error, MessageIs("normkit::Axes: ", {"got 0"}));
  CHECK_THROWS_MATCHES(normkit::Axes(nine), normkit::axis_error, MessageIs("normkit::Axes: ", {"got 9"}));
}

TEST_CASE("output shape mismatch names both shapes", "[errors]") {
  using F = normkit::ZScore<float>;
  const F f{};
  const Tensor3 x = random_tensor<float, 3, ColMajor>({2, 3, 4}, 10);
  const MessageIs what = from<F>({"(2, 4, 3)", "(2, 3, 4)"});
  Tensor3 out(2, 4, 3);  // same size, other shape
  out.setConstant(42);
  for (int axis = 0; axis < 3; ++axis) {
    CHECK_THROWS_MATCHES(f(x, axis, out), normkit::shape_error, what);
    CHECK_THROWS_MATCHES(normkit::normalize(x, f, axis, out), normkit::shape_error, what);
  }
  CHECK(all_42(out));
  std::vector<float> buf(24, 42.f);
  CHECK_THROWS_MATCHES(f(x, 1, Eigen::TensorMap<Tensor3>(buf.data(), 2, 4, 3)), normkit::shape_error, what);
  CHECK(all_42(buf));
  Tensor3 bigger(2, 3, 5);
  bigger.setConstant(42);
  CHECK_THROWS_MATCHES(f(x, 2, bigger), normkit::shape_error, from<F>({"(2, 3, 5)", "(2, 3, 4)"}));
  CHECK(all_42(bigger));

  const Eigen::MatrixXf m = random_matrix<Eigen::MatrixXf>(5, 7, 11);
  Eigen::MatrixXf mout(7, 5);
  mout.setConstant(42);
  CHECK_THROWS_MATCHES(f(m, 0, mout), normkit::shape_error, from<F>({"(7, 5)", "(5, 7)"}));
  CHECK(all_42(mout));
  Eigen::MatrixXf big(9, 9);
  big.setConstant(42);
  CHECK_THROWS_MATCHES(f(m, 1, big.block(1, 1, 5, 6)), normkit::shape_error, from<F>({"(5, 6)", "(5, 7)"}));
  CHECK(all_42(big));

  // The affine forms check the output too.
  using LN = normkit::LayerNorm<float>;
  const Eigen::VectorXf g = Eigen::VectorXf::Ones(4);
  CHECK_THROWS_MATCHES(LN{}(x, 2, normkit::affine(g, g), out), normkit::shape_error, from<LN>({"(2, 4, 3)", "(2, 3, 4)"}));
  CHECK(all_42(out));
}

TEST_CASE("gamma / beta shape and layout mismatch", "[errors]") {
  const Tensor3 x = random_tensor<float, 3, ColMajor>({4, 3, 5}, 12);
  const Tensor3R xr = random_tensor<float, 3, RowMajor>({4, 3, 5}, 13);
  const normkit::Axes axes{1, 2};  // 3 x 5 = 15 elements
  const Eigen::Tensor<float, 2> good = random_tensor<float, 2, ColMajor>({3, 5}, 14);
  const Eigen::Tensor<float, 2, RowMajor> good_r = random_tensor<float, 2, RowMajor>({3, 5}, 15);
  const Eigen::Tensor<float, 2> swapped = random_tensor<float, 2, ColMajor>({5, 3}, 16);
  const Eigen::Tensor<float, 2> small = random_tensor<float, 2, ColMajor>({3, 4}, 17);
  const Eigen::Tensor<float, 3> rank3 = random_tensor<float, 3, ColMajor>({1, 3, 5}, 18);
  const Eigen::VectorXf v14 = Eigen::VectorXf::Ones(14);
  const Eigen::Tensor<float, 1> t16 = random_tensor<float, 1, ColMajor>({16}, 19);

  const auto for_both = [&](const auto& f) {
    using F = std::decay_t<decltype(f)>;
    using E = normkit::shape_error;
    expect_affine_throws<E>(f, x, axes, normkit::affine(swapped), from<F>({"gamma", "(5, 3)", "15"}));
    expect_affine_throws<E>(f, x, axes, normkit::affine(v14), from<F>({"gamma", "(14)", "15"}));
    expect_affine_throws<E>(f, x, axes, normkit::affine(t16, good), from<F>({"gamma", "(16)", "15"}));
    expect_affine_throws<E>(f, x, axes, normkit::affine(good, small), from<F>({"beta", "(3, 4)", "15"}));
    expect_affine_throws<E>(f, x, axes, normkit::affine(rank3), from<F>({"gamma", "(1, 3, 5)"}));
    // A single axis: gamma must then have that axis' length.
    expect_affine_throws<E>(f, x, -1, normkit::affine(good), from<F>({"gamma", "(3, 5)", "5"}));
    // Layouts: a multi-dimensional gamma/beta must have x's layout.
    expect_affine_throws<E>(f, x, axes, normkit::affine(good_r), from<F>({"gamma", "RowMajor", "ColMajor"}));
    expect_affine_throws<E>(f, xr, axes, normkit::affine(good_r, good), from<F>({"beta", "ColMajor", "RowMajor"}));
  };
  SECTION("LayerNorm") { for_both(normkit::LayerNorm<float>{}); }
  SECTION("RMSNorm") { for_both(normkit::RMSNorm<float>{}); }
  SECTION("a matrix gamma must be a vector") {
    const Eigen::MatrixXf g = Eigen::MatrixXf::Zero(3, 5);
    CHECK_THROWS_MATCHES(normkit::affine(g), normkit::shape_error, MessageIs("normkit::affine: ", {"vector", "(3, 5)"}));
  }
}

TEST_CASE("empty tensor or matrix", "[errors]") {
  using F = normkit::LayerNorm<float>;
  const F f{};
  const Tensor3 x(2, 0, 3);
  for (int axis = -3; axis < 3; ++axis) expect_throws<normkit::shape_error>(f, x, axis, from<F>({"empty", "(2, 0, 3)"}));
  expect_throws<normkit::shape_error>(f, x, {0, 1}, from<F>({"empty", "(2, 0, 3)"}));
  const Tensor3R xr(0, 2, 2);
  expect_throws<normkit::shape_error>(normkit::Softmax<float>{}, xr, 2,
                                      from<normkit::Softmax<float>>({"empty", "(0, 2, 2)"}));
  const Eigen::MatrixXf m(0, 4);
  expect_throws<normkit::shape_error>(f, m, 1, from<F>({"empty", "(0, 4)"}));
  const Eigen::Tensor<float, 1> v(0);
  expect_throws<normkit::shape_error>(normkit::SumToOne<float>{}, v, 0,
                                      from<normkit::SumToOne<float>>({"empty", "(0)"}));
}

namespace {

template <class F>
void bad_epsilon(F f) {
  using S = typename F::value_type;
  const auto x = random_tensor<S, 3, ColMajor>({2, 3, 4}, 20);
  f.epsilon = S(-1e-3);
  expect_throws<normkit::option_error>(f, x, 1, from<F>({"epsilon", "-0.001"}));
  f.epsilon = std::numeric_limits<S>::quiet_NaN();
  expect_throws<normkit::option_error>(f, x, 1, from<F>({"epsilon", "nan"}));
}

}  // namespace

TEST_CASE("negative or NaN epsilon", "[errors]") {
  bad_epsilon(normkit::SumToOne<float>{});
  bad_epsilon(normkit::L1Norm<float>{});
  bad_epsilon(normkit::L2Norm<float>{});
  bad_epsilon(normkit::MaxNorm<float>{});
  bad_epsilon(normkit::ZScore<float>{});
  bad_epsilon(normkit::LayerNorm<float>{});
  bad_epsilon(normkit::RMSNorm<float>{});
  SECTION("also through the affine forms") {
    using LN = normkit::LayerNorm<float>;
    const Tensor3 x = random_tensor<float, 3, ColMajor>({2, 3, 4}, 21);
    const Eigen::VectorXf g = Eigen::VectorXf::Ones(4);
    expect_affine_throws<normkit::option_error>(LN{-1e-3f}, x, 2, normkit::affine(g, g), from<LN>({"epsilon", "-0.001"}));
  }
}

TEST_CASE("MinMax needs lo < hi", "[errors]") {
  using F = normkit::MinMax<float>;
  const Tensor3 x = random_tensor<float, 3, ColMajor>({2, 3, 4}, 22);
  expect_throws<normkit::option_error>(F{1.f, 1.f}, x, 0, from<F>({"lo = 1", "hi = 1"}));
  expect_throws<normkit::option_error>(F{2.f, -1.f}, x, 2, from<F>({"lo = 2", "hi = -1"}));
  expect_throws<normkit::option_error>(F{kNaN, 1.f}, x, 1, from<F>({"lo = nan", "hi = 1"}));
  CHECK_NOTHROW((F{-1.f, -0.5f}(x, 0)));
}

TEST_CASE("ZScore ddof must be in [0, n)", "[errors]") {
  using F = normkit::ZScore<float>;
  const Tensor3 x = random_tensor<float, 3, ColMajor>({2, 3, 4}, 23);
  expect_throws<normkit::option_error>(F{4}, x, 2, from<F>({"ddof", "length 4", "got 4"}));
  expect_throws<normkit::option_error>(F{9}, x, -1, from<F>({"ddof", "length 4", "got 9"}));
  expect_throws<normkit::option_error>(F{2}, x, 0, from<F>({"ddof", "length 2", "got 2"}));
  expect_throws<normkit::option_error>(F{12}, x, {1, 2}, from<F>({"ddof", "length 12", "got 12"}));
  expect_throws<normkit::option_error>(F{-1}, x, 1, from<F>({"ddof", "got -1"}));
  const Eigen::MatrixXf m = random_matrix<Eigen::MatrixXf>(5, 7, 24);
  expect_throws<normkit::option_error>(F{7}, m, 1, from<F>({"ddof", "length 7", "got 7"}));
  // The largest valid ddof is accepted.
  CHECK_NOTHROW(F{3}(x, 2));
  CHECK_NOTHROW(F{11}(x, {1, 2}));
  CHECK_NOTHROW(F{6}(m, 1));
}

namespace {

// Enum values cast from out-of-range ints are option_errors, for every functor.
template <class F>
void bad_nan_policy(F f) {
  const Tensor3 x = random_tensor<float, 3, ColMajor>({2, 3, 4}, 25);
  for (int v : {4, -1, 1000}) {
    f.nan_policy = static_cast<NanPolicy>(v);
    expect_throws<normkit::option_error>(f, x, 1, from<F>({"nan_policy", std::to_string(v)}));
  }
}

// NanPolicy::raise: nan_error naming the first NaN's index, before any write.
template <class F>
void raise_on_nan(F f) {
  f.nan_policy = NanPolicy::raise;
  Tensor3 x = random_tensor<float, 3, ColMajor>({2, 3, 4}, 26);
  Tensor3R xr = random_tensor<float, 3, RowMajor>({2, 3, 4}, 27);
  F propagate = f;
  propagate.nan_policy = NanPolicy::propagate;
  for (int axis = 0; axis < 3; ++axis) {  // without a NaN, raise computes what propagate does
    CHECK(same_bits(f(x, axis), propagate(x, axis)));
    CHECK(same_bits(f(xr, axis), propagate(xr, axis)));
  }
  x(1, 2, 3) = kNaN;
  xr(0, 1, 2) = kNaN;
  for (int axis = -3; axis < 3; ++axis) {
    expect_throws<normkit::nan_error>(f, x, axis, from<F>({"NaN at index (1, 2, 3)"}));
    expect_throws<normkit::nan_error>(f, xr, axis, from<F>({"NaN at index (0, 1, 2)"}));
  }
  expect_throws<normkit::nan_error>(f, x, {0, 1, 2}, from<F>({"NaN at index (1, 2, 3)"}));

  Eigen::MatrixXf m = random_matrix<Eigen::MatrixXf>(5, 7, 28);
  m(3, 5) = kNaN;
  const MatrixXfR mr = m;
  for (int axis = 0; axis < 2; ++axis) {
    expect_throws<normkit::nan_error>(f, m, axis, from<F>({"NaN at index (3, 5)"}));
    expect_throws<normkit::nan_error>(f, mr, axis, from<F>({"NaN at index (3, 5)"}));
  }

  // A Block of a bigger matrix: the index is within the block.
  Eigen::MatrixXf big = random_matrix<Eigen::MatrixXf>(9, 11, 29);
  big(1 + 2, 3 + 4) = kNaN;
  const Eigen::MatrixXf before = big;
  auto blk = big.block(1, 3, 5, 7);
  for (int axis = 0; axis < 2; ++axis) {
    const MessageIs what = from<F>({"NaN at index (2, 4)"});
    CHECK_THROWS_MATCHES(f(blk, axis), normkit::nan_error, what);
    Eigen::MatrixXf out(5, 7);
    out.setConstant(42);
    CHECK_THROWS_MATCHES(f(blk, axis, out), normkit::nan_error, what);
    CHECK(all_42(out));
    CHECK_THROWS_MATCHES(f.inplace(blk, axis), normkit::nan_error, what);
    CHECK(same_bits(big, before));
  }
}

}  // namespace

TEST_CASE("enum values outside their enum are option_errors", "[errors]") {
  bad_nan_policy(normkit::SumToOne<float>{});
  bad_nan_policy(normkit::L1Norm<float>{});
  bad_nan_policy(normkit::L2Norm<float>{});
  bad_nan_policy(normkit::MaxNorm<float>{});
  bad_nan_policy(normkit::MinMax<float>{});
  bad_nan_policy(normkit::ZScore<float>{});
  bad_nan_policy(normkit::LayerNorm<float>{});
  bad_nan_policy(normkit::RMSNorm<float>{});
  bad_nan_policy(normkit::Softmax<float>{});
  bad_nan_policy(normkit::LogSoftmax<float>{});

  const Tensor3 x = random_tensor<float, 3, ColMajor>({2, 3, 4}, 30);
  for (int v : {3, -1}) {
    using S1 = normkit::SumToOne<float>;
    S1 s{};
    s.degenerate = static_cast<normkit::Degenerate>(v);
    expect_throws<normkit::option_error>(s, x, 0, from<S1>({"degenerate", std::to_string(v)}));
  }
  for (int v : {2, -1}) {
    const auto masked = static_cast<normkit::MaskedSlice>(v);
    expect_throws<normkit::option_error>(normkit::Softmax<float>{masked}, x, 2,
                                         from<normkit::Softmax<float>>({"masked", std::to_string(v)}));
    expect_throws<normkit::option_error>(normkit::LogSoftmax<float>{masked}, x, 2,
                                         from<normkit::LogSoftmax<float>>({"masked", std::to_string(v)}));
  }
  SECTION("also through the affine forms") {
    using RMS = normkit::RMSNorm<float>;
    const Eigen::VectorXf g = Eigen::VectorXf::Ones(4);
    expect_affine_throws<normkit::option_error>(RMS{1e-6f, static_cast<NanPolicy>(7)}, x, 2, normkit::affine(g),
                                                from<RMS>({"nan_policy", "7"}));
  }
}

TEST_CASE("NanPolicy::raise throws nan_error naming the NaN's index", "[errors]") {
  raise_on_nan(normkit::SumToOne<float>{});
  raise_on_nan(normkit::L1Norm<float>{});
  raise_on_nan(normkit::L2Norm<float>{});
  raise_on_nan(normkit::MaxNorm<float>{});
  raise_on_nan(normkit::MinMax<float>{});
  raise_on_nan(normkit::ZScore<float>{});
  raise_on_nan(normkit::LayerNorm<float>{});
  raise_on_nan(normkit::RMSNorm<float>{});
  raise_on_nan(normkit::Softmax<float>{});
  raise_on_nan(normkit::LogSoftmax<float>{});
  SECTION("also through the affine forms") {
    using LN = normkit::LayerNorm<float>;
    Tensor3 x = random_tensor<float, 3, ColMajor>({2, 3, 4}, 31);
    x(0, 2, 1) = kNaN;
    const Eigen::VectorXf g = Eigen::VectorXf::Ones(12);
    expect_affine_throws<normkit::nan_error>(LN{1e-5f, NanPolicy::raise}, x, {1, 2}, normkit::affine(g, g),
                                             from<LN>({"NaN at index (0, 2, 1)"}));
  }
}

TEST_CASE("strided dense objects: both axes need packed storage, outputs need inner stride 1", "[errors]") {
  using F = normkit::L1Norm<float>;
  const F f{};
  const Eigen::MatrixXf m = random_matrix<Eigen::MatrixXf>(5, 7, 32);
  Eigen::MatrixXf big(9, 11);
  big.setConstant(42);
  // Bug B2: the output Block used to be written as if packed, outside its bounds.
  CHECK_THROWS_AS(f(m, {0, 1}, big.block(2, 3, 5, 7)), normkit::shape_error);
  CHECK(all_42(big));

  big.block(2, 3, 5, 7) = m;
  const Eigen::MatrixXf before = big;
  const MessageIs packed = from<F>({"packed"});
  CHECK_THROWS_MATCHES(f(big.block(2, 3, 5, 7), {0, 1}), normkit::shape_error, packed);
  CHECK_THROWS_MATCHES(f.inplace(big.block(2, 3, 5, 7), {0, 1}), normkit::shape_error, packed);
  CHECK(same_bits(big, before));

  // A row of a ColMajor matrix has inner stride 9: not writable.
  Eigen::MatrixXf out(9, 11);
  out.setConstant(42);
  const Eigen::RowVectorXf r = m.row(0);
  CHECK_THROWS_MATCHES(f(r, 1, out.row(4).leftCols(7)), normkit::shape_error, from<F>({"inner stride"}));
  CHECK(all_42(out));
  CHECK_THROWS_MATCHES(f.inplace(big.row(3), 1), normkit::shape_error, from<F>({"inner stride"}));
  CHECK(same_bits(big, before));
}
