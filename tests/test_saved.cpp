// Saved statistics (normkit/saved.hpp): normkit::forward returns per-slice
// statistics, normkit::backward takes them.
//  * forward(x, f, axes) writes y bit-identical to f(x, axes), and every
//    field against a long-double reference of that slice (relative 1e-9 of
//    the value plus the slice's spread: the statistics are double);
//  * backward(f, x, dy, axes, saved) against backward(f, x, dy, axes), which
//    test_backward holds to the long-double reference: within 1e-5 (float) /
//    1e-12 (double) of |dx| + max |dx| + the terms that cancel on the slice
//    (the saved path reduces other sums, so the two round differently);
//    dgamma / dbeta too;
//  * at large offsets in float (1e4 + 1e-2 N(0, 1)), LayerNorm and ZScore
//    from saved statistics against the long-double reference backward;
//  * both layouts, rank 3, every single axis and axis pairs, SIMD tails,
//    NanPolicy::ignore with NaNs, Matrix operands, and every error path
//    (empty, other options, other shape or axes, unknown field name) with
//    outputs untouched.
#include <catch2/catch.hpp>

#include <normkit/normkit.hpp>

#include "engine_instances.hpp"
#include "reference.hpp"
#include "reference_backward.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Index = Eigen::Index;
using ref::Slice;

template <class T>
constexpr long double tolerance() {
  return std::is_same<T, float>::value ? 1e-5L : 1e-12L;
}

Slice valid(const Slice& x, normkit::NanPolicy policy) {
  if (policy == normkit::NanPolicy::propagate || policy == normkit::NanPolicy::raise) return x;
  Slice v;
  for (long double e : x)
    if (!std::isnan(e)) v.push_back(e);
  return v;
}

long double sum_of(const Slice& x) { return std::accumulate(x.begin(), x.end(), 0.0L); }
long double mean_of(const Slice& x) { return sum_of(x) / static_cast<long double>(x.size()); }
long double m2_of(const Slice& x) {
  const long double m = mean_of(x);
  long double s = 0;
  for (long double e : x) s += (e - m) * (e - m);
  return s;
}

// The reference statistics of one slice (non-NaN values), in F::saved_names order.
template <class T>
std::vector<long double> expected(const normkit::SumToOne<T>&, const Slice& x) { return {sum_of(x)}; }
template <class T>
std::vector<long double> expected(const normkit::L1Norm<T>&, const Slice& x) {
  long double s = 0;
  for (long double e : x) s += std::fabs(e);
  return {s};
}
template <class T>
std::vector<long double> expected(const normkit::L2Norm<T>&, const Slice& x) {
  long double s = 0;
  for (long double e : x) s += e * e;
  return {std::sqrt(s)};
}
template <class T>
std::vector<long double> expected(const normkit::PowerNorm<T>& f, const Slice& x) {
  long double s = 0;
  for (long double e : x) s += std::pow(std::fabs(e), static_cast<long double>(f.p));
  return {std::pow(s, 1.0L / static_cast<long double>(f.p))};
}
template <class T>
std::vector<long double> expected(const normkit::MaxNorm<T>&, const Slice& x) {
  long double m = 0;
  for (long double e : x) m = std::max(m, std::fabs(e));
  return {m};
}
template <class T>
std::vector<long double> expected(const normkit::MinMax<T>&, const Slice& x) {
  return {*std::min_element(x.begin(), x.end()), *std::max_element(x.begin(), x.end())};
}
template <class T>
std::vector<long double> expected(const normkit::ZScore<T>& f, const Slice& x) {
  return {mean_of(x), std::sqrt(m2_of(x) / static_cast<long double>(static_cast<int>(x.size()) - f.ddof))};
}
template <class T>
std::vector<long double> expected(const normkit::LayerNorm<T>& f, const Slice& x) {
  return {mean_of(x), 1.0L / std::sqrt(m2_of(x) / static_cast<long double>(x.size()) + f.epsilon)};
}
template <class T>
std::vector<long double> expected(const normkit::RMSNorm<T>& f, const Slice& x) {
  long double s = 0;
  for (long double e : x) s += e * e;
  return {1.0L / std::sqrt(s / static_cast<long double>(x.size()) + f.epsilon)};
}
template <class T>
std::vector<long double> expected(const normkit::LogSoftmax<T>& f, const Slice& x) {
  const long double m = *std::max_element(x.begin(), x.end()), k = 1.0L / static_cast<long double>(f.temperature);
  long double s = 0;
  for (long double e : x) s += std::exp((e - m) * k);
  return {m, m * k + std::log(s)};
}

template <class T, int L>
Eigen::Tensor<T, 3, L> data(const std::array<Index, 3>& dims, unsigned seed, double offset = 0.5, double sd = 2) {
  Eigen::Tensor<T, 3, L> t(dims);
  ref::fill_normal(t, seed, offset, sd);
  return t;
}

template <class S, int L>
long double max_abs(const Eigen::Tensor<S, 3, L>& t) {
  long double m = 0;
  for (Index i = 0; i < t.size(); ++i)
    if (!std::isnan(t.data()[i])) m = std::max(m, std::fabs(static_cast<long double>(t.data()[i])));
  return m;
}

template <class T, int L>
bool bit_identical(const Eigen::Tensor<T, 3, L>& a, const Eigen::Tensor<T, 3, L>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(T) * std::size_t(a.size())) == 0;
}

// The fields of `saved` against the reference statistics of every slice.
template <class F, class Saved, class X>
void check_fields(const F& f, const Saved& saved, const X& x, std::vector<int> axes) {
  constexpr int L = X::Layout;
  using T = typename F::value_type;
  REQUIRE_FALSE(saved.empty());
  for (std::size_t k = 0; k < Saved::size; ++k)
    for (int a = 0; a < 3; ++a)
      REQUIRE(saved.field(k).dimension(a) ==
              (std::find(axes.begin(), axes.end(), a) != axes.end() ? 1 : x.dimension(a)));
  long double worst = 0;
  ref::bwd::for_each_slice<3, L>(ref::bwd::extent_of(x), axes, [&](const std::vector<ref::Index<3>>& at) {
    Slice s;
    for (const auto& i : at) s.push_back(static_cast<long double>(x(i)));
    const Slice v = valid(s, f.nan_policy);
    if (v.empty()) return;
    const auto e = expected(f, v);
    const long double spread = *std::max_element(v.begin(), v.end()) - *std::min_element(v.begin(), v.end());
    ref::Index<3> p = at.front();
    for (int a : axes) p[std::size_t(a)] = 0;
    for (std::size_t k = 0; k < Saved::size; ++k) {
      const long double got = saved.field(k)(p), bound = tolerance<T>() * (std::fabs(e[k]) + spread);
      INFO(F::name << " field " << Saved::names()[k] << ": got " << got << ", expected " << e[k]);
      const long double err = std::fabs(got - e[k]);
      CHECK(err <= bound);
      worst = std::max(worst, bound > 0 ? err / bound : 0);
    }
  });
}

// Per element: the size of the terms that cancel into dx on its slice,
// slope * max |dy|, where slope = spread(y) / spread(x) is the map's scale
// (1/N, rstd, 1/std, (hi - lo) / range, times gamma). Slices of two
// elements z-score to +-1 whatever x is: their dx is 0 up to rounding of
// terms this large.
template <class T, int L>
Eigen::Tensor<long double, 3, L> cancelled_terms(const Eigen::Tensor<T, 3, L>& x, const Eigen::Tensor<T, 3, L>& y,
                                                 const Eigen::Tensor<T, 3, L>& dy, std::vector<int> axes) {
  Eigen::Tensor<long double, 3, L> scale(x.dimensions());
  scale.setZero();
  ref::bwd::for_each_slice<3, L>(ref::bwd::extent_of(x), axes, [&](const std::vector<ref::Index<3>>& at) {
    long double xl = INFINITY, xh = -INFINITY, yl = INFINITY, yh = -INFINITY, g = 0;
    for (const auto& i : at) {
      if (std::isnan(x(i)) || std::isnan(y(i))) continue;
      xl = std::min<long double>(xl, x(i)), xh = std::max<long double>(xh, x(i));
      yl = std::min<long double>(yl, y(i)), yh = std::max<long double>(yh, y(i));
      g = std::max(g, std::fabs(static_cast<long double>(dy(i))));
    }
    const long double slope = xh > xl ? (yh - yl) / (xh - xl) : 0;
    for (const auto& i : at) scale(i) = 4 * slope * g;
  });
  return scale;
}

// |got - want| <= rel (|want| + scale + max |want|), NaN matching NaN.
template <class T, int L>
void check_close(const Eigen::Tensor<T, 3, L>& got, const Eigen::Tensor<T, 3, L>& want,
                 const Eigen::Tensor<long double, 3, L>& scale) {
  const long double rel = tolerance<T>(), top = max_abs(want);
  long double worst = 0;
  Index failures = 0, at = 0;
  for (Index i = 0; i < want.size(); ++i) {
    const long double a = got.data()[i], e = want.data()[i];
    if (std::isnan(a) || std::isnan(e)) {
      if (std::isnan(a) != std::isnan(e)) ++failures, at = i;
      continue;
    }
    const long double ratio = std::fabs(a - e) / (rel * (std::fabs(e) + scale.data()[i] + top));
    if (ratio > 1) ++failures, at = i;
    worst = std::max(worst, ratio);
  }
  INFO(failures << " elements off, e.g. flat index " << at << ": " << got.data()[at] << " vs " << want.data()[at]
                << "; worst error / bound " << worst);
  CHECK(failures == 0);
}

template <class F, class T, int L>
void check_case(const F& f, const Eigen::Tensor<T, 3, L>& x, const Eigen::Tensor<T, 3, L>& dy, std::vector<int> axes) {
  const normkit::Axes ax = axes.size() == 1 ? normkit::Axes(axes[0]) : normkit::Axes{axes[0], axes[1]};
  INFO(F::name << (L == Eigen::RowMajor ? " RowMajor" : " ColMajor") << " shape (" << x.dimension(0) << ", "
               << x.dimension(1) << ", " << x.dimension(2) << ") axes [" << axes.front() << ", " << axes.back()
               << "], nan_policy " << int(f.nan_policy));
  auto [y, saved] = normkit::forward(x, f, ax);
  const Eigen::Tensor<T, 3, L> plain = normkit::normalize(x, f, ax);
  CHECK(bit_identical(y, plain));
  check_fields(f, saved, x, axes);
  if constexpr (!F::backward_from_output) {
    const Eigen::Tensor<T, 3, L> want = f.backward(x, dy, ax);
    const Eigen::Tensor<T, 3, L> got = normkit::backward(f, x, dy, ax, saved);
    check_close(got, want, cancelled_terms(x, y, dy, axes));
    // Into dx, and into dy itself: the same bits.
    Eigen::Tensor<T, 3, L> into(x.dimensions()), over = dy;
    normkit::backward(f, x, dy, ax, into, saved);
    normkit::backward(f, x, over, ax, over, saved);
    CHECK(bit_identical(into, got));
    CHECK(bit_identical(over, got));
  }
}

template <class F>
void every_axis_and_layout(const F& f, unsigned seed, double offset = 0.5) {
  using T = typename F::value_type;
  for (const auto& dims : {std::array<Index, 3>{3, 5, 19}, std::array<Index, 3>{17, 2, 8}}) {
    for (const auto& axes : {std::vector<int>{0}, std::vector<int>{1}, std::vector<int>{2}, std::vector<int>{0, 1},
                             std::vector<int>{1, 2}}) {
      check_case(f, data<T, Eigen::ColMajor>(dims, seed, offset), data<T, Eigen::ColMajor>(dims, seed + 1), axes);
      check_case(f, data<T, Eigen::RowMajor>(dims, seed, offset), data<T, Eigen::RowMajor>(dims, seed + 1), axes);
    }
  }
}

template <class T>
void every_functor(normkit::NanPolicy policy) {
  using namespace normkit;
  every_axis_and_layout(SumToOne<T>{T(0), Degenerate::uniform, false, policy}, 11, 3.0);
  every_axis_and_layout(L1Norm<T>{T(1e-12), policy}, 12);
  every_axis_and_layout(L2Norm<T>{T(1e-12), false, policy}, 13);
  every_axis_and_layout(L2Norm<T>{T(1e-6), true, policy}, 14);
  every_axis_and_layout(PowerNorm<T>{T(3), T(1e-12), policy}, 15);
  every_axis_and_layout(MaxNorm<T>{T(0), policy}, 16);
  every_axis_and_layout(MinMax<T>{T(-1), T(2), policy}, 17);
  every_axis_and_layout(ZScore<T>{0, T(0), false, policy}, 18);
  every_axis_and_layout(ZScore<T>{1, T(1e-3), true, policy}, 19);
  every_axis_and_layout(LayerNorm<T>{T(1e-5), policy}, 20, 100.0);
  every_axis_and_layout(RMSNorm<T>{T(1e-6), policy}, 21);
  every_axis_and_layout(LogSoftmax<T>{MaskedSlice::nan, policy, T(0.5)}, 22);
}

}  // namespace

TEMPLATE_TEST_CASE("saved statistics: every functor, axis set and layout", "[saved]", float, double) {
  every_functor<TestType>(normkit::NanPolicy::propagate);
}

TEMPLATE_TEST_CASE("saved statistics: NanPolicy::ignore with NaNs, SIMD tails", "[saved][nan]", float, double) {
  using T = TestType;
  const normkit::LayerNorm<T> ln{T(1e-5), normkit::NanPolicy::ignore};
  const normkit::ZScore<T> z{0, T(0), false, normkit::NanPolicy::ignore};
  const normkit::L2Norm<T> l2{T(1e-12), false, normkit::NanPolicy::zero};
  const normkit::MinMax<T> mm{T(0), T(1), normkit::NanPolicy::ignore};
  for (Index n : {Index(1), Index(3), Index(7), Index(8), Index(9), Index(16), Index(17), Index(33), Index(67)}) {
    for (const auto& dims : {std::array<Index, 3>{5, n, 3}, std::array<Index, 3>{2, 3, n}}) {
      auto x = data<T, Eigen::ColMajor>(dims, 30 + unsigned(n), 2.0);
      ref::add_nans(x, 31 + unsigned(n), 0.1);
      const auto dy = data<T, Eigen::ColMajor>(dims, 32 + unsigned(n));
      for (const auto& axes : {std::vector<int>{1}, std::vector<int>{2}}) {
        check_case(ln, x, dy, axes);
        check_case(z, x, dy, axes);
        check_case(l2, x, dy, axes);
        check_case(mm, x, dy, axes);
      }
    }
  }
}

TEMPLATE_TEST_CASE("saved statistics: LayerNorm / RMSNorm dgamma and dbeta", "[saved][affine]", float, double) {
  using T = TestType;
  const auto x = data<T, Eigen::RowMajor>({6, 4, 37}, 40, 5.0);
  const auto dy = data<T, Eigen::RowMajor>({6, 4, 37}, 41);
  Eigen::Tensor<T, 2, Eigen::RowMajor> gamma(4, 37), beta(4, 37);
  ref::fill_normal(gamma, 42, 1.0, 0.5);
  ref::fill_normal(beta, 43, 0.0, 0.5);
  const long double rel = tolerance<T>();
  const auto both = [&](const auto& f, bool with_beta) {
    using F = std::decay_t<decltype(f)>;
    INFO(F::name);
    const auto w = with_beta ? normkit::affine(gamma, beta) : normkit::affine(gamma);
    Eigen::Tensor<T, 3, Eigen::RowMajor> y(x.dimensions()), dx(x.dimensions()), dx_saved(x.dimensions());
    normkit::saved_t<F, decltype(x)> saved;
    normkit::forward(x, f, {1, 2}, w, y, saved);
    const Eigen::Tensor<T, 3, Eigen::RowMajor> plain = f(x, {1, 2}, w);
    CHECK(bit_identical(y, plain));
    Eigen::Tensor<T, 2, Eigen::RowMajor> dg(4, 37), db(4, 37), dg_saved(4, 37), db_saved(4, 37);
    f.backward(x, dy, {1, 2}, w, dx, normkit::affine_grads(dg, db));
    normkit::backward(f, x, dy, {1, 2}, w, dx_saved, normkit::affine_grads(dg_saved, db_saved), saved);
    check_close(dx_saved, dx, cancelled_terms(x, y, dy, {1, 2}));
    for (Index i = 0; i < dg.size(); ++i) {
      CHECK(std::fabs(dg_saved.data()[i] - dg.data()[i]) <= 10 * rel * (1 + std::fabs(dg.data()[i])));
      CHECK(db_saved.data()[i] == db.data()[i]);  // sum dy either way
    }
  };
  both(normkit::LayerNorm<T>{}, true);
  both(normkit::LayerNorm<T>{}, false);
  both(normkit::RMSNorm<T>{}, false);
}

// ZScore and LayerNorm from saved statistics reduce stats::CenteredDot in one
// pass where a block is finite; a NaN, an infinity or products near overflow
// must still give what the recomputing backward gives: NaN where it is NaN,
// the same infinities, the rest within 1e-4 (1 + |dx|) (huge values go
// through the long double pass on both sides).
TEMPLATE_TEST_CASE("saved statistics: NaN, infinite and huge x agree with the recomputing backward",
                   "[saved][edge]", float, double) {
  using T = TestType;
  const T inf = std::numeric_limits<T>::infinity(), big = std::numeric_limits<T>::max() / 4;
  const normkit::LayerNorm<T> ln{};
  const normkit::ZScore<T> z{};
  Index compared = 0;
  const auto agree = [&](const auto& f, const Eigen::Tensor<T, 3, Eigen::RowMajor>& x,
                         const Eigen::Tensor<T, 3, Eigen::RowMajor>& dy, int axis) {
    auto [y, saved] = normkit::forward(x, f, axis);
    const Eigen::Tensor<T, 3, Eigen::RowMajor> want = f.backward(x, dy, axis),
                                               got = normkit::backward(f, x, dy, axis, saved);
    Index off = 0, at = 0;
    for (Index i = 0; i < want.size(); ++i) {
      const T a = got.data()[i], e = want.data()[i];
      const bool same = std::isnan(a) ? std::isnan(e)
                                      : a == e || std::fabs(double(a) - double(e)) <= 1e-4 * (1 + std::fabs(double(e)));
      if (!same) ++off, at = i;
      ++compared;
    }
    INFO(std::decay_t<decltype(f)>::name << " axis " << axis << ": " << off << " elements differ, e.g. flat index "
                                         << at << ": " << got.data()[at] << " vs " << want.data()[at]);
    CHECK(off == 0);
  };
  for (Index n : {Index(1), Index(8), Index(9), Index(67)}) {
    for (int kind = 0; kind < 4; ++kind) {
      for (Index pos : {Index(0), Index(5), Index(40)}) {
        for (int axis : {1, 2}) {
          const std::array<Index, 3> dims = axis == 1 ? std::array<Index, 3>{3, n, 4} : std::array<Index, 3>{4, 3, n};
          auto x = data<T, Eigen::RowMajor>(dims, 50 + unsigned(n), 0.5);
          auto dy = data<T, Eigen::RowMajor>(dims, 51 + unsigned(n));
          const Index i = pos % x.size();
          if (kind == 0) x.data()[i] = std::numeric_limits<T>::quiet_NaN();
          if (kind == 1) x.data()[i] = inf;
          if (kind == 2) x.data()[i] = -inf;
          if (kind == 3) x.data()[i] = big, dy.data()[i] = big;  // g * (x - shift) overflows T
          INFO("n " << n << " kind " << kind << " at " << i);
          agree(ln, x, dy, axis);
          agree(z, x, dy, axis);
        }
      }
    }
  }
  CHECK(compared > 0);
}

TEST_CASE("saved statistics: float LayerNorm / ZScore backward at a 1e4 offset", "[saved][accuracy]") {
  // The saved mean is a double: a float one would be off by up to half a
  // float ulp of 1e4 (4.9e-4), 5 % of the spread.
  const auto x = data<float, Eigen::RowMajor>({64, 1, 768}, 50, 1e4, 1e-2);
  const auto dy = data<float, Eigen::RowMajor>({64, 1, 768}, 51);
  const auto check = [&](const auto& f, auto reference) {
    using F = std::decay_t<decltype(f)>;
    auto [y, saved] = normkit::forward(x, f, 2);
    const Eigen::Tensor<float, 3, Eigen::RowMajor> dx = normkit::backward(f, x, dy, 2, saved);
    const auto want = ref::apply_backward(x, dy, {2}, reference);
    // Bound: 1e-5 of the slice's largest |dx| (~84 float ulp), as test_backward.
    const auto r = ref::compare(dx, want, 1e-5L, 1e-5L * max_abs(want));
    INFO(F::name << ": " << r.message);
    CHECK(r.ok);
    CHECK(r.worst < 0.1L);  // measured: see docs/backward.md
  };
  check(normkit::LayerNorm<float>{}, [](const Slice& s, const Slice& g) {
    return ref::layer_norm_backward(s, g, static_cast<long double>(1e-5f));
  });
  check(normkit::ZScore<float>{}, [](const Slice& s, const Slice& g) {
    return ref::z_score_backward(s, g, 0, 0, false);
  });
}

TEST_CASE("saved statistics: Matrix operands, fields by name", "[saved][api]") {
  using M = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const M x = ref::random_matrix<M>(7, 13, 60), dy = ref::random_matrix<M>(7, 13, 61);
  const normkit::ZScore<double> z;
  for (int axis : {0, 1}) {
    auto [y, saved] = normkit::forward(x, z, axis);
    static_assert(std::is_same<decltype(saved), normkit::Saved<normkit::ZScore<double>, 2, Eigen::RowMajor>>::value);
    const auto& mean = saved["mean"];
    const auto& sd = saved["std"];
    REQUIRE(mean.dimension(0) == (axis == 0 ? 1 : 7));
    REQUIRE(mean.dimension(1) == (axis == 0 ? 13 : 1));
    for (Index s = 0; s < (axis == 0 ? 13 : 7); ++s) {
      const Eigen::VectorXd v = axis == 0 ? Eigen::VectorXd(x.col(s)) : Eigen::VectorXd(x.row(s).transpose());
      const double m = v.mean(), d = std::sqrt((v.array() - m).square().sum() / double(v.size()));
      CHECK(std::fabs((axis == 0 ? mean(0, s) : mean(s, 0)) - m) <= 1e-12 * (1 + std::fabs(m)));
      CHECK(std::fabs((axis == 0 ? sd(0, s) : sd(s, 0)) - d) <= 1e-12 * d);
    }
    const M dx = normkit::backward(z, x, dy, axis, saved), want = z.backward(x, dy, axis);
    CHECK((dx - want).cwiseAbs().maxCoeff() <= 1e-12 * want.cwiseAbs().maxCoeff());
  }
  auto [y, saved] = normkit::forward(x, normkit::ZScore<double>{}, 1);
  CHECK_THROWS_AS(saved["rstd"], std::out_of_range);
  CHECK_THROWS_WITH(saved["rstd"], Catch::Contains("ZScore saves no statistic called \"rstd\""));
  CHECK(std::string(saved.names()[1]) == "std");
}

TEST_CASE("saved statistics: errors before anything is written", "[saved][errors]") {
  using T3 = Eigen::Tensor<float, 3>;
  const T3 x = data<float, Eigen::ColMajor>({4, 6, 5}, 70), dy = data<float, Eigen::ColMajor>({4, 6, 5}, 71);
  const normkit::LayerNorm<float> ln;
  auto [y, saved] = normkit::forward(x, ln, 1);
  T3 dx(4, 6, 5);
  dx.setConstant(7.0f);
  const auto untouched = [&] {
    for (Index i = 0; i < dx.size(); ++i)
      if (dx.data()[i] != 7.0f) return false;
    return true;
  };

  normkit::saved_t<normkit::LayerNorm<float>, T3> empty;
  CHECK(empty.empty());
  CHECK_THROWS_AS(normkit::backward(ln, x, dy, 1, dx, empty), normkit::shape_error);
  CHECK_THROWS_WITH(normkit::backward(ln, x, dy, 1, dx, empty), Catch::Contains("saved statistics are empty"));
  CHECK(untouched());

  const normkit::LayerNorm<float> other{1e-3f};
  CHECK_THROWS_AS(normkit::backward(other, x, dy, 1, dx, saved), normkit::option_error);
  CHECK_THROWS_WITH(normkit::backward(other, x, dy, 1, dx, saved), Catch::Contains("other options"));
  const normkit::LayerNorm<float> ignoring{1e-5f, normkit::NanPolicy::ignore};
  CHECK_THROWS_AS(normkit::backward(ignoring, x, dy, 1, dx, saved), normkit::option_error);
  CHECK(untouched());

  CHECK_THROWS_AS(normkit::backward(ln, x, dy, 2, dx, saved), normkit::shape_error);
  CHECK_THROWS_WITH(normkit::backward(ln, x, dy, {1, 2}, dx, saved), Catch::Contains("over axes [1, 2)"));
  const T3 x2 = data<float, Eigen::ColMajor>({4, 6, 6}, 72), dy2 = data<float, Eigen::ColMajor>({4, 6, 6}, 73);
  T3 dx2(4, 6, 6);
  dx2.setConstant(7.0f);
  CHECK_THROWS_WITH(normkit::backward(ln, x2, dy2, 1, dx2, saved),
                    Catch::Contains("of x with shape (4, 6, 5)") && Catch::Contains("(shape (4, 6, 6))"));
  CHECK(dx2(0, 0, 0) == 7.0f);
  CHECK(untouched());

  // A forward that fails leaves the statistics as they were.
  normkit::saved_t<normkit::LayerNorm<float>, T3> kept;
  T3 out(4, 6, 5);
  normkit::forward(x, ln, 1, out, kept);
  const Eigen::Tensor<double, 3> before = kept["mean"];
  T3 wrong(4, 6, 4);
  CHECK_THROWS_AS(normkit::forward(x, ln, 1, wrong, kept), normkit::shape_error);
  CHECK_THROWS_AS(normkit::forward(x, normkit::LayerNorm<float>{-1.0f}, 1, out, kept), normkit::option_error);
  const Eigen::Tensor<double, 0> same = (kept["mean"] - before).abs().maximum();
  CHECK(same() == 0.0);
  CHECK(kept.functor().epsilon == 1e-5f);
}
