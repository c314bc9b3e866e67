// Call forms and operand kinds: every way of calling a functor returns the
// documented type, agrees with the long-double reference, and is bit-identical
// to the other call forms whenever the input is walked the same way (the
// engine's results depend only on the input's memory walk, not on where the
// output lives or on its alignment).
#include <catch2/catch.hpp>

#include <normkit/normkit.hpp>

#include "engine_instances.hpp"

#include "reference.hpp"

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using Eigen::ColMajor;
using Eigen::RowMajor;
using normkit::NanPolicy;
using MatrixXfR = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, RowMajor>;

template <class S>
struct Tol;
template <>
struct Tol<float> {
  static constexpr long double rel = 1e-5L, abs = 1e-6L;
};
template <>
struct Tol<double> {
  static constexpr long double rel = 1e-12L, abs = 1e-13L;
};

// Bitwise equality of two packed objects with data() and size() (NaN-safe).
template <class A, class B>
bool same_bits(const A& a, const B& b) {
  return static_cast<Eigen::Index>(a.size()) == static_cast<Eigen::Index>(b.size()) &&
         std::memcmp(a.data(), b.data(), sizeof(*a.data()) * static_cast<std::size_t>(a.size())) == 0;
}

template <class A, class B>
bool same_tensor(const A& a, const B& b) {
  constexpr int R = Eigen::internal::traits<A>::NumDimensions;
  static_assert(R == Eigen::internal::traits<B>::NumDimensions, "rank");
  for (int d = 0; d < R; ++d)
    if (a.dimension(d) != b.dimension(d)) return false;
  return same_bits(a, b);
}

// Dense objects compared element by element (a Block is not packed).
template <class A, class B>
bool same_matrix(const A& a, const B& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return false;
  for (Eigen::Index j = 0; j < a.cols(); ++j)
    for (Eigen::Index i = 0; i < a.rows(); ++i) {
      const auto va = a(i, j), vb = b(i, j);
      if (std::memcmp(&va, &vb, sizeof va) != 0) return false;
    }
  return true;
}

using ref::random_matrix;
using ref::random_tensor;

// Any dense object as a ColMajor rank-2 tensor (index (i, j) = element (i, j)).
template <class M>
Eigen::Tensor<typename M::Scalar, 2> to_tensor(const M& m) {
  Eigen::Tensor<typename M::Scalar, 2> t(m.rows(), m.cols());
  for (Eigen::Index j = 0; j < m.cols(); ++j)
    for (Eigen::Index i = 0; i < m.rows(); ++i) t(i, j) = m(i, j);
  return t;
}

template <class S, int R, int L, class F>
void check_ref(const Eigen::Tensor<S, R, L>& y, const Eigen::Tensor<S, R, L>& x, const std::vector<int>& axes, F&& fn) {
  const ref::CompareResult res = ref::compare(y, ref::apply(x, axes, fn), Tol<S>::rel, Tol<S>::abs);
  INFO(res.message);
  CHECK(res.ok);
}

template <class M, class X, class F>
void check_matrix_ref(const M& y, const X& x, const std::vector<int>& axes, F&& fn) {
  check_ref(to_tensor(y), to_tensor(x), axes, fn);
}

// Adjacent axes first .. first + count - 1 as normkit::Axes (built at run time).
normkit::Axes adjacent_axes(int first, int count) {
  switch (count) {
    case 1: return first;
    case 2: return {first, first + 1};
    case 3: return {first, first + 1, first + 2};
    case 4: return {first, first + 1, first + 2, first + 3};
    case 5: return {first, first + 1, first + 2, first + 3, first + 4};
    default: return {first, first + 1, first + 2, first + 3, first + 4, first + 5};
  }
}

std::vector<int> range(int first, int count) {
  std::vector<int> v;
  for (int a = first; a < first + count; ++a) v.push_back(a);
  return v;
}

// The axes given to normkit and the same axes resolved for the reference.
struct AxisCase {
  normkit::Axes axes;
  std::vector<int> resolved;
};

// All forms for a rank-3 tensor input; y = f(x, axes) is checked against the
// reference, every other form bit for bit against y.
template <class S, int L, class F, class Fn>
void tensor_call_forms(const F& f, Fn fn) {
  using T = Eigen::Tensor<S, 3, L>;
  using Map = Eigen::TensorMap<T>;
  using CMap = Eigen::TensorMap<const T>;
  const T x = random_tensor<S, 3, L>({3, 4, 5}, 11);
  const std::vector<AxisCase> cases{{0, {0}},         {1, {1}},           {2, {2}},        {-1, {2}},
                                    {-3, {0}},        {{0, 1}, {0, 1}},   {{2, 1}, {1, 2}}, {{-2, -1}, {1, 2}},
                                    {{0, 1, 2}, {0, 1, 2}}};
  for (const AxisCase& c : cases) {
    INFO("axes " << c.axes.str());
    const auto y = f(x, c.axes);
    static_assert(std::is_same<decltype(y), const T>::value, "Tensor in -> same Tensor out");
    check_ref(y, x, c.resolved, fn);

    T out(x.dimensions());
    out.setConstant(42);
    f(x, c.axes, out);
    CHECK(same_tensor(out, y));

    std::vector<S> buf(static_cast<std::size_t>(x.size()), S(42));
    Map map(buf.data(), x.dimensions());
    f(x, c.axes, map);
    CHECK(same_tensor(map, y));

    std::vector<S> buf2(buf.size(), S(42));
    f(x, c.axes, Map(buf2.data(), x.dimensions()));  // rvalue TensorMap output
    CHECK(same_tensor(Map(buf2.data(), x.dimensions()), y));

    const T yn = normkit::normalize(x, f, c.axes);
    CHECK(same_tensor(yn, y));
    out.setConstant(42);
    normkit::normalize(x, f, c.axes, out);
    CHECK(same_tensor(out, y));

    const CMap cx(x.data(), x.dimensions());
    const auto yc = f(cx, c.axes);
    static_assert(std::is_same<decltype(yc), const T>::value, "const TensorMap in -> Tensor out");
    CHECK(same_tensor(yc, y));
    out.setConstant(42);
    f(cx, c.axes, out);
    CHECK(same_tensor(out, y));

    std::vector<S> xbuf(x.data(), x.data() + x.size());
    Map mx(xbuf.data(), x.dimensions());
    const auto ym = f(mx, c.axes);
    static_assert(std::is_same<decltype(ym), const T>::value, "TensorMap in -> Tensor out");
    CHECK(same_tensor(ym, y));

    T z = x;
    f.inplace(z, c.axes);
    CHECK(same_tensor(z, y));
    f.inplace(mx, c.axes);
    CHECK(same_tensor(mx, y));
    std::vector<S> xbuf2(x.data(), x.data() + x.size());
    f.inplace(Map(xbuf2.data(), x.dimensions()), c.axes);  // rvalue TensorMap in place
    CHECK(same_tensor(Map(xbuf2.data(), x.dimensions()), y));
    z = x;
    normkit::normalize_inplace(z, f, c.axes);
    CHECK(same_tensor(z, y));

    // Expressions are evaluated first: same bits as calling on the evaluated tensor.
    const auto ysum = f(x + x, c.axes);
    static_assert(std::is_same<decltype(ysum), const T>::value, "tensor expression in -> Tensor out");
    const T xsum = x + x;
    CHECK(same_tensor(ysum, f(xsum, c.axes)));
    check_ref(ysum, xsum, c.resolved, fn);
    const auto yscaled = f(x * S(2), c.axes);
    CHECK(same_tensor(yscaled, ysum));  // x * 2 == x + x exactly
  }
}

}  // namespace

TEST_CASE("Tensor, TensorMap and const TensorMap call forms agree with the reference and each other", "[api]") {
  SECTION("L2Norm<float> ColMajor") {
    tensor_call_forms<float, ColMajor>(normkit::L2Norm<float>{}, [](const ref::Slice& s) { return ref::l2(s, 1e-12L, false); });
  }
  SECTION("L2Norm<float> RowMajor") {
    tensor_call_forms<float, RowMajor>(normkit::L2Norm<float>{}, [](const ref::Slice& s) { return ref::l2(s, 1e-12L, false); });
  }
  SECTION("ZScore<double> RowMajor") {
    tensor_call_forms<double, RowMajor>(normkit::ZScore<double>{},
                                        [](const ref::Slice& s) { return ref::z_score(s, 0, 0, false); });
  }
  SECTION("Softmax<double> ColMajor") {
    tensor_call_forms<double, ColMajor>(normkit::Softmax<double>{},
                                        [](const ref::Slice& s) { return ref::softmax(s, ref::MaskedSlice::nan); });
  }
}

namespace {

template <int L>
void fixed_size_forms() {
  using Fixed = Eigen::TensorFixedSize<float, Eigen::Sizes<3, 4, 5>, L>;
  using T = Eigen::Tensor<float, 3, L>;
  const normkit::MinMax<float> f{};
  const T x = random_tensor<float, 3, L>({3, 4, 5}, 12);
  Fixed xf;
  std::memcpy(xf.data(), x.data(), sizeof(float) * 60);
  for (int axis = -3; axis < 3; ++axis) {
    INFO("axis " << axis);
    const auto y = f(xf, axis);
    static_assert(std::is_same<decltype(y), const Fixed>::value, "TensorFixedSize in -> same TensorFixedSize out");
    const T yt = f(x, axis);  // same layout, same walk
    CHECK(same_bits(y, yt));
    check_ref(yt, x, {(axis + 3) % 3}, [](const ref::Slice& s) { return ref::min_max(s, 0, 1); });

    Fixed out;
    out.setConstant(42);
    f(xf, axis, out);
    CHECK(same_bits(out, y));
    out.setConstant(42);
    f(x, axis, out);  // Tensor in, TensorFixedSize out
    CHECK(same_bits(out, y));
    const Fixed yn = normkit::normalize(xf, f, axis);
    CHECK(same_bits(yn, y));

    Fixed z = xf;
    f.inplace(z, axis);
    CHECK(same_bits(z, y));
  }
}

}  // namespace

TEST_CASE("TensorFixedSize in gives the same TensorFixedSize out", "[api]") {
  SECTION("ColMajor") { fixed_size_forms<ColMajor>(); }
  SECTION("RowMajor") { fixed_size_forms<RowMajor>(); }
}

TEST_CASE("return types of f(x, axes) for every operand kind", "[api]") {
  const normkit::L2Norm<float> f{};
  const normkit::ZScore<double> fd{};

  Eigen::MatrixXf m = random_matrix<Eigen::MatrixXf>(5, 7, 1);
  static_assert(std::is_same<decltype(f(m, 0)), Eigen::MatrixXf>::value, "MatrixXf -> MatrixXf");
  MatrixXfR mr = m;
  static_assert(std::is_same<decltype(f(mr, 0)), MatrixXfR>::value, "RowMajor Matrix -> RowMajor Matrix");
  const Eigen::ArrayXXd a = random_matrix<Eigen::ArrayXXd>(5, 7, 2);
  static_assert(std::is_same<decltype(fd(a, 1)), Eigen::ArrayXXd>::value, "ArrayXXd -> ArrayXXd");
  const Eigen::VectorXf v = random_matrix<Eigen::VectorXf>(9, 1, 3);
  static_assert(std::is_same<decltype(f(v, 0)), Eigen::VectorXf>::value, "VectorXf -> VectorXf");
  const Eigen::RowVectorXf rv = v.transpose();
  static_assert(std::is_same<decltype(f(rv, 1)), Eigen::RowVectorXf>::value, "RowVectorXf -> RowVectorXf");
  const Eigen::Matrix<float, 3, 4> fixed = m.topLeftCorner<3, 4>();
  static_assert(std::is_same<decltype(f(fixed, 0)), Eigen::Matrix<float, 3, 4>>::value, "fixed Matrix -> same");
  const Eigen::Map<const Eigen::MatrixXf> cmap(m.data(), 5, 7);
  static_assert(std::is_same<decltype(f(cmap, 0)), Eigen::MatrixXf>::value, "Map -> PlainObject");
  static_assert(std::is_same<decltype(f(m.block(1, 1, 3, 4), 0)), Eigen::MatrixXf>::value, "Block -> PlainObject");
  static_assert(std::is_same<decltype(f(m * 2.f, 0)), Eigen::MatrixXf>::value, "expression -> PlainObject");

  // The values: each column (axis 0) of a unit L2 norm, shapes preserved.
  const Eigen::MatrixXf y = f(m, 0);
  REQUIRE(y.rows() == 5);
  REQUIRE(y.cols() == 7);
  for (Eigen::Index j = 0; j < 7; ++j) CHECK(y.col(j).norm() == Approx(1.f).epsilon(1e-5));
  const Eigen::ArrayXXd za = fd(a, 1);
  check_matrix_ref(za, a, {1}, [](const ref::Slice& s) { return ref::z_score(s, 0, 0, false); });
  const Eigen::VectorXf yv = f(v, 0);
  CHECK(yv.norm() == Approx(1.f).epsilon(1e-5));
  CHECK(same_bits(f(rv, 1), yv));  // one contiguous slice either way
  // VectorXf axis 1: every element is its own slice, so L2 leaves its sign
  // (x * (1 / |x|): within an ulp of +-1).
  const Eigen::VectorXf signs = f(v, 1);
  for (Eigen::Index i = 0; i < 9; ++i) CHECK(signs(i) == Approx(v(i) > 0 ? 1.f : -1.f).epsilon(1e-6));
  // (the same values copied from m, not from `fixed`: g++ 12 warns, wrongly,
  // that Eigen's vectorized copy of a 3x4 object reads past it)
  CHECK(same_matrix(f(fixed, 0), f(Eigen::MatrixXf(m.topLeftCorner(3, 4)), 0)));
  CHECK(same_matrix(f(cmap, 0), y));
}

namespace {

// All forms for a dense input of type M (5 x 7), axis 0 (each column) and 1
// (each row), both for the plain object and for a Block of a bigger matrix
// (outer stride != rows/cols).
template <class M, class F, class Fn>
void matrix_call_forms(const F& f, Fn fn) {
  using S = typename M::Scalar;
  const M x = random_matrix<M>(5, 7, 21);
  const std::vector<AxisCase> cases{{0, {0}}, {1, {1}}, {-1, {1}}, {-2, {0}}, {{0, 1}, {0, 1}}};
  for (const AxisCase& c : cases) {
    INFO("axes " << c.axes.str());
    const bool both = c.resolved.size() == 2;
    const auto y = f(x, c.axes);
    static_assert(std::is_same<decltype(y), const M>::value, "dense in -> PlainObject out");
    check_matrix_ref(y, x, c.resolved, fn);

    M out(5, 7);
    out.setConstant(42);
    f(x, c.axes, out);
    CHECK(same_matrix(out, y));
    out.setConstant(42);
    normkit::normalize(x, f, c.axes, out);
    CHECK(same_matrix(out, y));
    CHECK(same_matrix(normkit::normalize(x, f, c.axes), y));

    std::vector<S> buf(35, S(42));
    Eigen::Map<M> map(buf.data(), 5, 7);
    f(x, c.axes, map);
    CHECK(same_matrix(map, y));
    std::vector<S> buf2(35, S(42));
    f(x, c.axes, Eigen::Map<M>(buf2.data(), 5, 7));  // rvalue Map output
    CHECK(same_matrix(Eigen::Map<M>(buf2.data(), 5, 7), y));

    M z = x;
    f.inplace(z, c.axes);
    CHECK(same_matrix(z, y));
    std::vector<S> xbuf(x.data(), x.data() + 35);
    f.inplace(Eigen::Map<M>(xbuf.data(), 5, 7), c.axes);
    CHECK(same_matrix(Eigen::Map<M>(xbuf.data(), 5, 7), y));

    // Matrix expressions are evaluated first.
    CHECK(same_matrix(f(x * S(2), c.axes), f(M(x * S(2)), c.axes)));
    check_matrix_ref(f(x * S(2), c.axes), M(x * S(2)), c.resolved, fn);
    // transpose(): a 7 x 5 view of the other storage order; axis k still means index k.
    check_matrix_ref(f(x.transpose(), c.axes), M(x.transpose()), c.resolved, fn);

    if (both) continue;  // a strided Block over both axes is an error (test_errors.cpp)

    // A Block of a bigger matrix: outer stride 9 (ColMajor) or 11 (RowMajor).
    M big(9, 11);
    big.setConstant(42);
    f(x, c.axes, big.block(2, 3, 5, 7));  // rvalue Block output
    CHECK(same_matrix(big.block(2, 3, 5, 7), y));
    M frame = big;
    frame.block(2, 3, 5, 7).setConstant(42);
    CHECK((frame.array() == S(42)).all());  // nothing written outside the block

    big.setConstant(42);
    auto blk = big.block(2, 3, 5, 7);
    blk = x;
    CHECK(same_matrix(f(blk, c.axes), y));  // Block input, same walk
    const auto yb = f(blk, c.axes);
    static_assert(std::is_same<decltype(yb), const M>::value, "Block in -> PlainObject out");
    f.inplace(blk, c.axes);
    CHECK(same_matrix(blk, y));
    blk = x;
    f.inplace(big.block(2, 3, 5, 7), c.axes);  // rvalue Block in place
    CHECK(same_matrix(big.block(2, 3, 5, 7), y));
    frame = big;
    frame.block(2, 3, 5, 7).setConstant(42);
    CHECK((frame.array() == S(42)).all());

    // A Map with an outer stride, in place.
    std::vector<S> sbuf(static_cast<std::size_t>(M::IsRowMajor ? 5 * 10 : 8 * 7), S(42));
    Eigen::Map<M, 0, Eigen::OuterStride<>> smap(sbuf.data(), 5, 7, Eigen::OuterStride<>(M::IsRowMajor ? 10 : 8));
    smap = x;
    f.inplace(smap, c.axes);
    CHECK(same_matrix(smap, y));
  }
}

}  // namespace

TEST_CASE("Matrix, Array, Map and Block call forms; axis 0 = each column, axis 1 = each row", "[api]") {
  const auto l1 = [](const ref::Slice& s) { return ref::l1(s, 1e-12L); };
  SECTION("MatrixXf") { matrix_call_forms<Eigen::MatrixXf>(normkit::L1Norm<float>{}, l1); }
  SECTION("RowMajor MatrixXf") { matrix_call_forms<MatrixXfR>(normkit::L1Norm<float>{}, l1); }
  SECTION("ArrayXXd") {
    matrix_call_forms<Eigen::ArrayXXd>(normkit::LogSoftmax<double>{},
                                       [](const ref::Slice& s) { return ref::log_softmax(s, ref::MaskedSlice::nan); });
  }
}

TEST_CASE("matrix axis semantics: axis 0 normalizes each column, axis 1 each row", "[api]") {
  // Checked directly (not through the reference's index convention): every
  // column / row of a MinMax result spans exactly [0, 1].
  const normkit::MinMax<float> f{};
  // The minimum maps to exactly 0; the maximum to 1 up to the rounding of the scale.
  const auto spans_unit = [](const auto& v) { return v.minCoeff() == 0.f && std::fabs(v.maxCoeff() - 1.f) <= 1e-6f; };
  const Eigen::MatrixXf m = random_matrix<Eigen::MatrixXf>(6, 9, 31);
  const MatrixXfR mr = m;
  Eigen::MatrixXf big(10, 12);
  big.setZero();
  big.block(1, 2, 6, 9) = m;
  MatrixXfR bigr(10, 12);
  bigr.setZero();
  bigr.block(1, 2, 6, 9) = m;
  const Eigen::MatrixXf outs[] = {f(m, 0), f(mr, 0), f(big.block(1, 2, 6, 9), 0), f(bigr.block(1, 2, 6, 9), 0)};
  for (const Eigen::MatrixXf& y : outs)
    for (Eigen::Index j = 0; j < 9; ++j) CHECK(spans_unit(y.col(j)));
  const Eigen::MatrixXf rows[] = {f(m, 1), f(mr, 1), f(big.block(1, 2, 6, 9), 1), f(bigr.block(1, 2, 6, 9), 1)};
  for (const Eigen::MatrixXf& y : rows)
    for (Eigen::Index i = 0; i < 6; ++i) CHECK(spans_unit(y.row(i)));
}

TEST_CASE("output of the other storage order gets the right values", "[api]") {
  // Eigen assigns between storage orders freely, so an output Matrix of the
  // other storage order must get the same values (bug B1: the engine walked
  // the output with the input's strides).
  // Compared with the reference, not bit for bit: the other walk may round differently.
  const normkit::L1Norm<float> f{};
  const auto l1 = [](const ref::Slice& s) { return ref::l1(s, 1e-12L); };
  const Eigen::MatrixXf m = random_matrix<Eigen::MatrixXf>(5, 7, 41);
  const MatrixXfR mr = m;
  for (int axis = 0; axis < 2; ++axis) {
    INFO("axis " << axis);
    MatrixXfR out(5, 7);
    out.setConstant(42);
    f(m, axis, out);
    check_matrix_ref(out, m, {axis}, l1);
    Eigen::MatrixXf back(5, 7);
    back.setConstant(42);
    f(mr, axis, back);
    check_matrix_ref(back, m, {axis}, l1);
    // Into a Block of the other storage order.
    MatrixXfR big(8, 9);
    big.setConstant(42);
    f(m, axis, big.block(1, 2, 5, 7));
    check_matrix_ref(big.block(1, 2, 5, 7), m, {axis}, l1);
  }
}

TEST_CASE("rank 1, 5 and 6 tensors over every axis range", "[api]") {
  SECTION("rank 1") {
    const normkit::Softmax<float> f{};
    const auto x = random_tensor<float, 1, ColMajor>({17}, 51);
    const auto fn = [](const ref::Slice& s) { return ref::softmax(s, ref::MaskedSlice::nan); };
    for (int axis : {0, -1}) {
      const auto y = f(x, axis);
      static_assert(std::is_same<decltype(y), const Eigen::Tensor<float, 1>>::value, "rank 1");
      check_ref(y, x, {0}, fn);
      std::vector<float> buf(x.data(), x.data() + 17);
      f.inplace(Eigen::TensorMap<Eigen::Tensor<float, 1>>(buf.data(), 17), axis);
      CHECK(std::memcmp(buf.data(), y.data(), sizeof(float) * 17) == 0);
    }
  }
  SECTION("rank 5 ColMajor LayerNorm<float>") {
    const normkit::LayerNorm<float> f{};
    const auto x = random_tensor<float, 5, ColMajor>({2, 3, 2, 3, 4}, 52);
    const auto fn = [](const ref::Slice& s) { return ref::layer_norm(s, 1e-5L); };
    for (int first = 0; first < 5; ++first)
      for (int count = 1; first + count <= 5; ++count) {
        INFO("axes " << first << " .. " << first + count - 1);
        const auto y = f(x, adjacent_axes(first, count));
        check_ref(y, x, range(first, count), fn);
        auto z = x;
        f.inplace(z, adjacent_axes(first - 5, count));  // the same axes counted from the end
        CHECK(same_tensor(z, y));
      }
  }
  SECTION("rank 6 RowMajor Softmax<double>") {
    const normkit::Softmax<double> f{};
    const auto x = random_tensor<double, 6, RowMajor>({2, 3, 2, 2, 3, 2}, 53);
    const auto fn = [](const ref::Slice& s) { return ref::softmax(s, ref::MaskedSlice::nan); };
    for (int first = 0; first < 6; ++first)
      for (int count = 1; first + count <= 6; ++count) {
        INFO("axes " << first << " .. " << first + count - 1);
        const auto y = f(x, adjacent_axes(first, count));
        static_assert(std::is_same<decltype(y), const Eigen::Tensor<double, 6, RowMajor>>::value, "rank 6");
        check_ref(y, x, range(first, count), fn);
        auto z = x;
        f.inplace(z, adjacent_axes(first, count));
        CHECK(same_tensor(z, y));
      }
  }
}

namespace {

// In place must be bit-identical to out of place, for every axis range, both
// layouts, a matrix, and the NaN policies that write (NaN-sprinkled input).
template <class F>
void inplace_matches(F f) {
  using S = typename F::value_type;
  auto xc = random_tensor<S, 3, ColMajor>({5, 6, 7}, 61);
  auto xr = random_tensor<S, 3, RowMajor>({5, 6, 7}, 62);
  ref::add_nans(xc, 63, 0.05);
  ref::add_nans(xr, 64, 0.05);
  auto m = random_matrix<Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>>(9, 13, 65);
  ref::add_nans(m, 66, 0.05);
  for (NanPolicy p : {NanPolicy::propagate, NanPolicy::ignore, NanPolicy::zero}) {
    f.nan_policy = p;
    for (int first = 0; first < 3; ++first)
      for (int count = 1; first + count <= 3; ++count) {
        INFO("nan_policy " << normkit::to_string(p) << ", axes " << first << " .. " << first + count - 1);
        const normkit::Axes axes = adjacent_axes(first, count);
        auto zc = xc;
        f.inplace(zc, axes);
        CHECK(same_tensor(zc, f(xc, axes)));
        auto zr = xr;
        f.inplace(zr, axes);
        CHECK(same_tensor(zr, f(xr, axes)));
      }
    for (int axis = 0; axis < 2; ++axis) {
      auto z = m;
      f.inplace(z, axis);
      CHECK(same_matrix(z, f(m, axis)));
    }
  }
}

}  // namespace

// float only: double shares the engine code and is covered in place by the
// ZScore / Softmax / LogSoftmax call-form tests; ten more engines cost compile time.
TEST_CASE("in place is bit-identical to out of place for every functor", "[api]") {
  using T = float;
  inplace_matches(normkit::SumToOne<T>{});
  inplace_matches(normkit::L1Norm<T>{});
  inplace_matches(normkit::L2Norm<T>{});
  inplace_matches(normkit::MaxNorm<T>{});
  inplace_matches(normkit::MinMax<T>{});
  inplace_matches(normkit::ZScore<T>{});
  inplace_matches(normkit::LayerNorm<T>{});
  inplace_matches(normkit::RMSNorm<T>{});
  inplace_matches(normkit::Softmax<T>{});
  inplace_matches(normkit::LogSoftmax<T>{});
}

namespace {

// gamma / beta for a rank-3 x (4, 3, 5) normalized over {1, 2} (15 elements)
// given as a Tensor of the normalized dims, a TensorMap of it, a rank-1
// Tensor and a VectorXf: all the same data in layout order, so all forms give
// the same bits, which match the reference.
template <int L, class F, class Fn>
void affine_forms(const F& f, Fn fn) {
  using T3 = Eigen::Tensor<float, 3, L>;
  using T2 = Eigen::Tensor<float, 2, L>;
  const T3 x = random_tensor<float, 3, L>({4, 3, 5}, 71);
  const T2 g = random_tensor<float, 2, L>({3, 5}, 72);
  const T2 b = random_tensor<float, 2, L>({3, 5}, 73);
  const ref::Slice gs = ref::flatten(g), bs = ref::flatten(b);
  const Eigen::TensorMap<const T2> gm(g.data(), 3, 5), bm(b.data(), 3, 5);
  Eigen::Tensor<float, 1> g1(15), b1(15);
  std::memcpy(g1.data(), g.data(), sizeof(float) * 15);
  std::memcpy(b1.data(), b.data(), sizeof(float) * 15);
  const Eigen::VectorXf gv = Eigen::Map<const Eigen::VectorXf>(g.data(), 15);
  const Eigen::VectorXf bv = Eigen::Map<const Eigen::VectorXf>(b.data(), 15);
  const normkit::Axes axes{1, 2};

  const T3 y = f(x, axes, normkit::affine(g, b));
  check_ref(y, x, {1, 2}, [&](const ref::Slice& s) { return fn(s, &gs, &bs); });
  CHECK(same_tensor(f(x, axes, normkit::affine(gm, bm)), y));
  CHECK(same_tensor(f(x, axes, normkit::affine(g1, b1)), y));
  CHECK(same_tensor(f(x, axes, normkit::affine(gv, bv)), y));
  CHECK(same_tensor(f(x, axes, normkit::affine(gv, bm)), y));  // mixed kinds
  CHECK(same_tensor(normkit::normalize(x, f, axes, normkit::affine(g, b)), y));

  T3 out(x.dimensions());
  out.setConstant(42);
  f(x, axes, normkit::affine(g1, b1), out);
  CHECK(same_tensor(out, y));
  out.setConstant(42);
  normkit::normalize(x, f, axes, normkit::affine(gv, bv), out);
  CHECK(same_tensor(out, y));
  T3 z = x;
  f.inplace(z, axes, normkit::affine(gm, bm));
  CHECK(same_tensor(z, y));
  z = x;
  normkit::normalize_inplace(z, f, axes, normkit::affine(g, b));
  CHECK(same_tensor(z, y));

  // gamma only.
  const T3 yg = f(x, axes, normkit::affine(gv));
  check_ref(yg, x, {1, 2}, [&](const ref::Slice& s) { return fn(s, &gs, nullptr); });
  CHECK(same_tensor(f(x, axes, normkit::affine(g)), yg));

  // One axis (the last, 5 elements): a rank-1 gamma / beta.
  const Eigen::VectorXf g5 = gv.head(5), b5 = bv.head(5);
  const ref::Slice g5s(g5.data(), g5.data() + 5), b5s(b5.data(), b5.data() + 5);
  const T3 y5 = f(x, -1, normkit::affine(g5, b5));
  check_ref(y5, x, {2}, [&](const ref::Slice& s) { return fn(s, &g5s, &b5s); });
  Eigen::Tensor<float, 1> g5t(5);
  std::memcpy(g5t.data(), g5.data(), sizeof(float) * 5);
  Eigen::Tensor<float, 1> b5t(5);
  std::memcpy(b5t.data(), b5.data(), sizeof(float) * 5);
  CHECK(same_tensor(f(x, 2, normkit::affine(g5t, b5t)), y5));
}

}  // namespace

TEST_CASE("LayerNorm / RMSNorm affine with gamma/beta as Tensor, TensorMap, rank-1 Tensor, VectorXf", "[api]") {
  const auto ln = [](const ref::Slice& s, const ref::Slice* g, const ref::Slice* b) {
    return ref::layer_norm(s, 1e-5L, g, b);
  };
  const auto rms = [](const ref::Slice& s, const ref::Slice* g, const ref::Slice* b) {
    return ref::rms_norm(s, 1e-6L, g, b);
  };
  SECTION("LayerNorm ColMajor") { affine_forms<ColMajor>(normkit::LayerNorm<float>{}, ln); }
  SECTION("LayerNorm RowMajor") { affine_forms<RowMajor>(normkit::LayerNorm<float>{}, ln); }
  SECTION("RMSNorm ColMajor") { affine_forms<ColMajor>(normkit::RMSNorm<float>{}, rms); }
  SECTION("RMSNorm RowMajor") { affine_forms<RowMajor>(normkit::RMSNorm<float>{}, rms); }
  SECTION("Matrix rows with a VectorXf gamma and a RowVectorXf beta, into a Block") {
    const normkit::LayerNorm<float> f{};
    const Eigen::MatrixXf m = random_matrix<Eigen::MatrixXf>(6, 8, 74);
    const Eigen::VectorXf g = random_matrix<Eigen::VectorXf>(8, 1, 75);
    const Eigen::RowVectorXf b = random_matrix<Eigen::RowVectorXf>(1, 8, 76);
    const ref::Slice gs(g.data(), g.data() + 8), bs(b.data(), b.data() + 8);
    const Eigen::MatrixXf y = f(m, 1, normkit::affine(g, b));
    check_matrix_ref(y, m, {1}, [&](const ref::Slice& s) { return ln(s, &gs, &bs); });
    Eigen::MatrixXf big(9, 10);
    big.setConstant(42);
    f(m, 1, normkit::affine(g, b), big.block(1, 1, 6, 8));
    CHECK(same_matrix(big.block(1, 1, 6, 8), y));
    auto blk = big.block(1, 1, 6, 8);
    blk = m;
    f.inplace(blk, 1, normkit::affine(g, b));
    CHECK(same_matrix(blk, y));
  }
}

TEST_CASE("functors are aggregates: C++17 brace initialization and field assignment", "[api]") {
  static_assert(std::is_aggregate<normkit::SumToOne<float>>::value && std::is_aggregate<normkit::L1Norm<float>>::value &&
                    std::is_aggregate<normkit::L2Norm<float>>::value && std::is_aggregate<normkit::MaxNorm<float>>::value &&
                    std::is_aggregate<normkit::MinMax<float>>::value && std::is_aggregate<normkit::ZScore<float>>::value &&
                    std::is_aggregate<normkit::LayerNorm<float>>::value && std::is_aggregate<normkit::RMSNorm<float>>::value &&
                    std::is_aggregate<normkit::Softmax<float>>::value && std::is_aggregate<normkit::LogSoftmax<float>>::value,
                "functors must stay aggregates");

  SECTION("defaults as documented") {
    const normkit::SumToOne<float> s{};
    CHECK(s.epsilon == 0.f);
    CHECK(s.degenerate == normkit::Degenerate::uniform);
    CHECK_FALSE(s.add_epsilon);
    CHECK(s.nan_policy == NanPolicy::propagate);
    CHECK(normkit::L1Norm<double>{}.epsilon == 1e-12);
    CHECK(normkit::L2Norm<float>{}.epsilon == 1e-12f);
    CHECK_FALSE(normkit::L2Norm<float>{}.clamp_squared);
    CHECK(normkit::MaxNorm<float>{}.epsilon == 0.f);
    CHECK(normkit::MinMax<float>{}.lo == 0.f);
    CHECK(normkit::MinMax<float>{}.hi == 1.f);
    const normkit::ZScore<double> z{};
    CHECK(z.ddof == 0);
    CHECK(z.epsilon == 0.0);
    CHECK_FALSE(z.add_epsilon);
    CHECK(normkit::LayerNorm<float>{}.epsilon == 1e-5f);
    CHECK(normkit::RMSNorm<double>{}.epsilon == 1e-6);
    CHECK(normkit::Softmax<float>{}.masked == normkit::MaskedSlice::nan);
    CHECK(normkit::LogSoftmax<float>{}.masked == normkit::MaskedSlice::nan);
    CHECK(normkit::LogSoftmax<float>{}.nan_policy == NanPolicy::propagate);
  }

  SECTION("brace forms take effect, and equal field assignment") {
    const auto x = random_tensor<float, 2, ColMajor>({6, 5}, 81);
    const Eigen::Tensor<double, 2> xd = x.cast<double>();

    const normkit::LayerNorm<float> ln{1e-3f};
    CHECK(ln.epsilon == 1e-3f);
    CHECK(ln.nan_policy == NanPolicy::propagate);
    check_ref(ln(x, 0), x, {0}, [](const ref::Slice& s) { return ref::layer_norm(s, 1e-3L); });
    normkit::LayerNorm<float> ln2;
    ln2.epsilon = 1e-3f;
    CHECK(same_tensor(ln2(x, 0), ln(x, 0)));

    const normkit::ZScore<double> z{1};  // ddof = 1: sample std
    CHECK(z.ddof == 1);
    CHECK(z.epsilon == 0.0);
    check_ref(z(xd, 1), xd, {1}, [](const ref::Slice& s) { return ref::z_score(s, 1, 0, false); });
    normkit::ZScore<double> z2;
    z2.ddof = 1;
    CHECK(same_tensor(z2(xd, 1), z(xd, 1)));

    const normkit::MinMax<float> mm{-1.f, 1.f};
    CHECK(mm.lo == -1.f);
    CHECK(mm.hi == 1.f);
    const auto ym = mm(x, 0);
    check_ref(ym, x, {0}, [](const ref::Slice& s) { return ref::min_max(s, -1, 1); });
    const Eigen::Tensor<float, 0> lo = ym.minimum(), hi = ym.maximum();
    CHECK(lo() == -1.f);
    CHECK(hi() == Approx(1.f).margin(1e-6));
    normkit::MinMax<float> mm2;
    mm2.lo = -1.f;
    mm2.hi = 1.f;
    CHECK(same_tensor(mm2(x, 0), ym));

    const normkit::SumToOne<float> s{0.5f, normkit::Degenerate::zeros, true, NanPolicy::zero};
    CHECK(s.epsilon == 0.5f);
    CHECK(s.degenerate == normkit::Degenerate::zeros);
    CHECK(s.add_epsilon);
    CHECK(s.nan_policy == NanPolicy::zero);
    check_ref(s(x, 1), x, {1},
              [](const ref::Slice& v) { return ref::sum_to_one(v, 0.5L, ref::Degenerate::zeros, true, ref::NanPolicy::zero); });

    const normkit::L2Norm<float> l2{1e-2f, true};
    CHECK(l2.clamp_squared);
    check_ref(l2(x, 0), x, {0}, [](const ref::Slice& v) { return ref::l2(v, 1e-2L, true); });

    const normkit::Softmax<float> sm{normkit::MaskedSlice::zeros, NanPolicy::ignore};
    CHECK(sm.masked == normkit::MaskedSlice::zeros);
    CHECK(sm.nan_policy == NanPolicy::ignore);
    normkit::Softmax<float> sm2;
    sm2.masked = normkit::MaskedSlice::zeros;
    sm2.nan_policy = NanPolicy::ignore;
    CHECK(same_tensor(sm2(x, 1), sm(x, 1)));
  }
}

TEST_CASE("VectorBlock (head/segment) operands", "[api]") {
  // v.segment() is a VectorBlock, a class derived from Block (bug B4).
  const normkit::L1Norm<float> f{};
  Eigen::VectorXf v = random_matrix<Eigen::VectorXf>(12, 1, 91);
  const Eigen::VectorXf part = v.segment(3, 6);
  const Eigen::VectorXf y = f(part, 0);
  const auto ys = f(v.segment(3, 6), 0);
  static_assert(std::is_same<decltype(ys), const Eigen::VectorXf>::value, "VectorBlock in -> PlainObject out");
  CHECK(same_matrix(ys, y));
  Eigen::VectorXf out = Eigen::VectorXf::Constant(12, 42.f);
  f(part, 0, out.head(6));
  CHECK(same_matrix(out.head(6), y));
  CHECK((out.tail(6).array() == 42.f).all());
  f.inplace(v.segment(3, 6), 0);
  CHECK(same_matrix(v.segment(3, 6), y));
}
