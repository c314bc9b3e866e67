// normkit's backward passes against central finite differences of its own
// double forward, float against double, on the guard cases and the error
// paths (the cases and tolerances: backward_cases.hpp).
#include "backward_cases.hpp"

using namespace backward_test;


namespace {

// dx from normkit's double backward against central differences of
// L = sum dy * f(x) computed with normkit's double forward, on inputs away
// from kinks: |x| >= 0.05 (L1, p-norms), positive data (SumToOne), continuous
// random data (no ties). For the affine functors also dgamma / dbeta.
template <int L, std::size_t R, class F>
void fd_check(const Case<F>& c, const std::array<Index, R>& dims, const std::vector<int>& axes, P nan,
              double nan_fraction) {
  using T = double;
  using Tensor = Eigen::Tensor<T, static_cast<int>(R), L>;
  using Vec = Eigen::Tensor<T, 1, L>;
  if (nan == P::zero && std::is_same<F, normkit::LogSoftmax<T>>::value) return;
  Config cfg{axes, nan, nan_fraction};
  Trial<T, L, R> t(c.name + " fd", c.data, dims, cfg);
  if (t.n < c.min_length) return;
  INFO(t.description);
  for (Index i = 0; i < t.x.size(); ++i) {
    T& v = t.x.data()[i];
    if (!std::isnan(v)) v = v >= 0 ? v + 0.05 : v - 0.05;
  }
  F f = c.f;
  f.nan_policy = to_normkit(nan);
  const normkit::Axes ax = make_axes(axes);
  Vec gamma(t.n), beta(t.n);
  for (Index k = 0; k < t.n; ++k) {
    gamma(k) = t.gamma(k);
    beta(k) = t.beta(k);
  }
  const auto forward = [&](const Tensor& x, const Vec& g, const Vec& b) -> Tensor {
    if constexpr (normkit::accepts_affine_v<F>) {
      if (c.weights == Weights::gamma) return f(x, ax, normkit::affine(g));
      if (c.weights == Weights::gamma_beta) return f(x, ax, normkit::affine(g, b));
    }
    return f(x, ax);
  };
  const auto loss = [&](const Tensor& y) {
    long double l = 0;
    for (Index i = 0; i < y.size(); ++i)
      if (!std::isnan(t.x.data()[i])) l += static_cast<long double>(t.dy.data()[i]) * y.data()[i];
    return l;
  };
  Tensor dx(dims);
  Vec dgamma(t.n), dbeta(t.n);
  dgamma.setConstant(-7.25);
  dbeta.setConstant(-7.25);
  if constexpr (normkit::accepts_affine_v<F>) {
    if (c.weights == Weights::gamma) f.backward(t.x, t.dy, ax, normkit::affine(gamma), dx, normkit::affine_grads(dgamma));
    if (c.weights == Weights::gamma_beta)
      f.backward(t.x, t.dy, ax, normkit::affine(gamma, beta), dx, normkit::affine_grads(dgamma, dbeta));
  }
  if (c.weights == Weights::none) dx = f.backward(from_output<F> ? Tensor(f(t.x, ax)) : t.x, t.dy, ax);

  // Per-slice scale: max |dx| over the slice, floor 1e-3 max |dy|.
  Tensor scale(dims);
  ref::Index<static_cast<int>(R)> extent{};
  for (std::size_t d = 0; d < R; ++d) extent[d] = dims[d];
  ref::bwd::for_each_slice<static_cast<int>(R), L>(extent, t.axes, [&](const auto& at) {
    double s = 0, d = 0;
    for (const auto& i : at)
      if (!std::isnan(t.x(i))) {
        s = std::max(s, std::fabs(dx(i)));
        d = std::max(d, std::fabs(t.dy(i)));
      }
    for (const auto& i : at) scale(i) = std::max(s, 1e-3 * d);
  });
  for (Index i = 0; i < t.x.size(); ++i) {
    const T x0 = t.x.data()[i];
    if (std::isnan(x0)) {
      INFO("NaN input at flat index " << i);
      REQUIRE(dx.data()[i] == 0);
      continue;
    }
    const T h = 1e-6 * std::max(1.0, std::fabs(x0));
    Tensor xp = t.x, xm = t.x;
    xp.data()[i] = x0 + h;
    xm.data()[i] = x0 - h;
    const long double fd =
        (loss(forward(xp, gamma, beta)) - loss(forward(xm, gamma, beta))) / (xp.data()[i] - xm.data()[i]);
    INFO("flat index " << i << ": backward " << dx.data()[i] << ", central difference " << static_cast<double>(fd)
                       << ", slice scale " << scale.data()[i]);
    REQUIRE(std::fabs(fd - dx.data()[i]) <= 1e-6L * scale.data()[i]);
  }
  for (int which = 0; which < 2; ++which) {
    if (c.weights == Weights::none || (which == 1 && c.weights != Weights::gamma_beta)) continue;
    Vec& p = which ? beta : gamma;
    const Vec& an = which ? dbeta : dgamma;
    double pscale = 0;
    for (Index k = 0; k < t.n; ++k) pscale = std::max(pscale, std::fabs(an(k)));
    for (Index k = 0; k < t.n; ++k) {
      const T p0 = p(k), h = 1e-6 * std::max(1.0, std::fabs(p0));
      p(k) = p0 + h;
      const long double lp = loss(forward(t.x, gamma, beta));
      p(k) = p0 - h;
      const long double lm = loss(forward(t.x, gamma, beta));
      p(k) = p0;
      const long double fd = (lp - lm) / (2 * h);
      INFO((which ? "dbeta[" : "dgamma[") << k << "]: backward " << an(k) << ", central difference "
                                          << static_cast<double>(fd));
      REQUIRE(std::fabs(fd - an(k)) <= 1e-6L * std::max(pscale, 1e-12));
    }
  }
}

}  // namespace

TEST_CASE("backward: central differences of normkit's double forward", "[backward][fd]") {
  for_each_case<double>([&](const auto& c) {
    fd_check<Eigen::ColMajor>(c, std::array<Index, 2>{5, 7}, {0}, P::propagate, 0);
    fd_check<Eigen::RowMajor>(c, std::array<Index, 2>{5, 7}, {1}, P::propagate, 0);
    fd_check<Eigen::RowMajor>(c, std::array<Index, 3>{3, 4, 5}, {1, 2}, P::propagate, 0);
    fd_check<Eigen::ColMajor>(c, std::array<Index, 3>{3, 4, 5}, {0, 1}, P::propagate, 0);
    fd_check<Eigen::RowMajor>(c, std::array<Index, 1>{17}, {0}, P::propagate, 0);
  });
}

TEST_CASE("backward: central differences under NanPolicy::ignore / zero (dx 0 at NaN inputs)", "[backward][fd][nan]") {
  for (P p : {P::ignore, P::zero}) {
    INFO("nan policy " << to_string(p));
    for_each_case<double>([&](const auto& c) {
      fd_check<Eigen::RowMajor>(c, std::array<Index, 2>{6, 7}, {1}, p, 0.15);
      fd_check<Eigen::ColMajor>(c, std::array<Index, 3>{4, 3, 5}, {0, 1}, p, 0.15);
    });
  }
}

// ============================================================== float vs double

namespace {

template <int L, std::size_t R, class Ff, class Fd>
void float_vs_double(const Case<Ff>& cf, const Case<Fd>& cd, const std::array<Index, R>& dims,
                     const std::vector<int>& axes) {
  constexpr int Rk = static_cast<int>(R);
  const Trial<double, L, R> t(cd.name + " float vs double", cd.data, dims, Config{axes});
  if (t.n < cd.min_length) return;
  INFO(t.description);
  const Eigen::Tensor<float, Rk, L> xf = t.x.template cast<float>(), dyf = t.dy.template cast<float>();
  const Eigen::Tensor<double, Rk, L> xd = xf.template cast<double>(), dyd = dyf.template cast<double>();
  const Eigen::Tensor<float, 1, L> gf = Eigen::TensorMap<const Eigen::Tensor<double, 1, L>>(t.gamma.data(), t.n)
                                            .template cast<float>();
  const Eigen::Tensor<double, 1, L> gd = gf.template cast<double>();
  const normkit::Axes ax = make_axes(axes);
  Eigen::Tensor<float, Rk, L> dxf;
  Eigen::Tensor<double, Rk, L> dxd;
  if constexpr (normkit::accepts_affine_v<Fd>) {
    if (cd.weights != Weights::none) {
      dxf = cf.f.backward(xf, dyf, ax, normkit::affine(gf));
      dxd = cd.f.backward(xd, dyd, ax, normkit::affine(gd));
    }
  }
  if (cd.weights == Weights::none) {
    if constexpr (from_output<Fd>) {
      dxf = cf.f.backward(Eigen::Tensor<float, Rk, L>(cf.f(xf, ax)), dyf, ax);
      dxd = cd.f.backward(Eigen::Tensor<double, Rk, L>(cd.f(xd, ax)), dyd, ax);
    } else {
      dxf = cf.f.backward(xf, dyf, ax);
      dxd = cd.f.backward(xd, dyd, ax);
    }
  }
  // Tolerance scale from the double case's reference at the double saved values.
  Eigen::Tensor<double, Rk, L> saved_d = xd;
  if constexpr (from_output<Fd>) saved_d = cd.f(xd, ax);
  const Slice gs(gd.data(), gd.data() + t.n);
  const Slice* g_ptr = cd.weights == Weights::none ? nullptr : &gs;
  const Expected<Rk, L> scale = expected_backward(
      saved_d, dyd, axes, [&](const Slice& s, const Slice& d) { return cd.ref(s, d, g_ptr, P::propagate).dx; },
      [&](const Slice& s) { return cd.direct(s, g_ptr); });
  const Verdict v =
      compare(dxf, Eigen::Tensor<long double, Rk, L>(dxd.template cast<long double>()), scale.scale, 1e-5L);
  INFO(v.message);
  REQUIRE(v.ok);
}

}  // namespace

TEST_CASE("backward: float within 1e-5 of the slice scale of double", "[backward][float]") {
  for_each_case_pair([&](const auto& cf, const auto& cd) {
    for (Index n : {1, 7, 33, 100}) {
      float_vs_double<Eigen::RowMajor>(cf, cd, std::array<Index, 2>{4, n}, {1});
      float_vs_double<Eigen::ColMajor>(cf, cd, std::array<Index, 2>{4, n}, {1});
    }
    float_vs_double<Eigen::RowMajor>(cf, cd, std::array<Index, 3>{3, 6, 7}, {1, 2});
  });
}

// ============================================================== guard cases

namespace {

// Rows of a RowMajor matrix (axis 1 = each row is a slice): normkit's backward
// of f on those rows against the reference, and returned for direct checks.
template <class T, class F>
Eigen::Tensor<T, 2, Eigen::RowMajor> rows_backward(const F& f, const std::vector<Slice>& rows,
                                                   const std::vector<Slice>& dys, const RefBwd& rf, P nan,
                                                   const Slice* gamma = nullptr, const Slice* beta = nullptr) {
  using M = Eigen::Tensor<T, 2, Eigen::RowMajor>;
  const Index r = static_cast<Index>(rows.size()), n = static_cast<Index>(rows[0].size());
  M x(r, n), dy(r, n);
  for (Index i = 0; i < r; ++i)
    for (Index j = 0; j < n; ++j) {
      x(i, j) = static_cast<T>(rows[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)]);
      dy(i, j) = static_cast<T>(dys[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)]);
    }
  M saved = x, dx;
  if constexpr (from_output<F>) saved = f(x, 1);
  Eigen::Tensor<T, 1> g(n), b(n);
  for (Index j = 0; j < n; ++j) {
    g(j) = gamma ? static_cast<T>((*gamma)[static_cast<std::size_t>(j)]) : T(1);
    b(j) = beta ? static_cast<T>((*beta)[static_cast<std::size_t>(j)]) : T(0);
  }
  Slice gs(static_cast<std::size_t>(n));
  for (Index j = 0; j < n; ++j) gs[static_cast<std::size_t>(j)] = g(j);
  if constexpr (normkit::accepts_affine_v<F>) {
    if (gamma) dx = f.backward(saved, dy, 1, beta ? normkit::affine(g, b) : normkit::affine(g));
  }
  if (!gamma) dx = f.backward(saved, dy, 1);
  const Verdict v = compare_to_ref(
      dx, saved, dy, {1}, [&](const Slice& s, const Slice& d) { return rf(s, d, gamma ? &gs : nullptr, nan).dx; }, {},
      rel_tol<T>);
  INFO(v.message);
  REQUIRE(v.ok);
  return dx;
}

template <class M>
bool row_is(const M& dx, Index row, long double value) {
  for (Index j = 0; j < dx.dimension(1); ++j)
    if (!(std::isnan(value) ? std::isnan(dx(row, j)) : dx(row, j) == value)) return false;
  return true;
}

template <class M>
bool row_all_nan(const M& dx, Index row) {
  return row_is(dx, row, std::numeric_limits<long double>::quiet_NaN());
}

template <class M>
bool row_finite(const M& dx, Index row) {
  for (Index j = 0; j < dx.dimension(1); ++j)
    if (!std::isfinite(dx(row, j))) return false;
  return true;
}

const long double kInf = std::numeric_limits<long double>::infinity();
const long double kNaN = std::numeric_limits<long double>::quiet_NaN();

}  // namespace

TEMPLATE_TEST_CASE("backward guards: zero slices, eps clamps, infinite elements of the norms", "[backward][guards]",
                   float, double) {
  using T = TestType;
  const std::vector<Slice> rows{{0, 0, 0, 0}, {1e-3L, -2e-3L, 0, 5e-4L}, {1, -2, 0.5L, 3}, {kInf, 1, 2, 3},
                                {1, -kInf, 2, 3}};
  const std::vector<Slice> dys{{0.5, -1.5, 2, 1}, {1, 2, 3, 4}, {-1, 0.5, 2, 1}, {1, 1, 1, 1}, {1, 2, 1, 2}};
  const auto plain_of = [](auto fn) { return plain(fn); };
  SECTION("epsilon 0: a zero slice gives dx = 0") {
    const auto d1 = rows_backward<T>(normkit::L1Norm<T>{T(0)}, rows, dys,
                                     plain_of([](const Slice& s, const Slice& d, P p) { return ref::l1_backward(s, d, 0, p); }),
                                     P::propagate);
    const auto d2 = rows_backward<T>(normkit::L2Norm<T>{T(0)}, rows, dys,
                                     plain_of([](const Slice& s, const Slice& d, P p) {
                                       return ref::l2_backward(s, d, 0, false, p);
                                     }),
                                     P::propagate);
    // Spec gap: clamp_squared with epsilon 0 on a zero slice (see reference_backward.hpp): 0.
    const auto d2c = rows_backward<T>(normkit::L2Norm<T>{T(0), true}, rows, dys,
                                      plain_of([](const Slice& s, const Slice& d, P p) {
                                        return ref::l2_backward(s, d, 0, true, p);
                                      }),
                                      P::propagate);
    const auto dp = rows_backward<T>(normkit::PowerNorm<T>{T(3), T(0)}, rows, dys,
                                     plain_of([](const Slice& s, const Slice& d, P p) {
                                       return ref::power_norm_backward(s, d, 3, 0, p);
                                     }),
                                     P::propagate);
    const auto dm = rows_backward<T>(normkit::MaxNorm<T>{T(0)}, rows, dys,
                                     plain_of([](const Slice& s, const Slice& d, P p) {
                                       return ref::max_norm_backward(s, d, 0, p);
                                     }),
                                     P::propagate);
    for (const auto* d : {&d1, &d2, &d2c, &dp, &dm}) {
      CHECK(row_is(*d, 0, 0));
      CHECK(row_finite(*d, 1));
      CHECK(row_finite(*d, 2));
      // An infinite element: a NaN slice (spec for L1 / L2; MaxNorm / PowerNorm: see reference_backward.hpp).
      CHECK(row_all_nan(*d, 3));
      CHECK(row_all_nan(*d, 4));
    }
  }
  SECTION("epsilon clamps: dx = dy / eps (clamp_squared: dy / sqrt(eps))") {
    const auto d1 = rows_backward<T>(normkit::L1Norm<T>{T(0.25)}, rows, dys,
                                     plain_of([](const Slice& s, const Slice& d, P p) {
                                       return ref::l1_backward(s, d, 0.25L, p);
                                     }),
                                     P::propagate);
    const auto d2 = rows_backward<T>(normkit::L2Norm<T>{T(0.25)}, rows, dys,
                                     plain_of([](const Slice& s, const Slice& d, P p) {
                                       return ref::l2_backward(s, d, 0.25L, false, p);
                                     }),
                                     P::propagate);
    const auto d2c = rows_backward<T>(normkit::L2Norm<T>{T(0.0625), true}, rows, dys,
                                      plain_of([](const Slice& s, const Slice& d, P p) {
                                        return ref::l2_backward(s, d, 0.0625L, true, p);
                                      }),
                                      P::propagate);
    const auto dp = rows_backward<T>(normkit::PowerNorm<T>{T(1.5), T(0.25)}, rows, dys,
                                     plain_of([](const Slice& s, const Slice& d, P p) {
                                       return ref::power_norm_backward(s, d, 1.5L, 0.25L, p);
                                     }),
                                     P::propagate);
    const auto dm = rows_backward<T>(normkit::MaxNorm<T>{T(0.25)}, rows, dys,
                                     plain_of([](const Slice& s, const Slice& d, P p) {
                                       return ref::max_norm_backward(s, d, 0.25L, p);
                                     }),
                                     P::propagate);
    for (const auto* d : {&d1, &d2, &d2c, &dp, &dm})
      for (Index r = 0; r < 2; ++r)
        for (Index j = 0; j < 4; ++j) {
          INFO("row " << r << ", element " << j);
          CHECK((*d)(r, j) == Approx(static_cast<double>(dys[static_cast<std::size_t>(r)][static_cast<std::size_t>(j)]) * 4)
                                  .epsilon(sizeof(T) == 4 ? 1e-6 : 1e-15));
        }
  }
  SECTION("L1 / PowerNorm(p 1): sign(0) = 0") {
    const auto d = rows_backward<T>(normkit::L1Norm<T>{}, {{0, 2, -1}}, {{0.5, -1.5, 2}},
                                    plain_of([](const Slice& s, const Slice& e, P p) {
                                      return ref::l1_backward(s, e, 1e-12L, p);
                                    }),
                                    P::propagate);
    CHECK(d(0, 0) == Approx(0.5 / 3).epsilon(1e-6));  // dy/N only
    rows_backward<T>(normkit::PowerNorm<T>{T(1)}, {{0, 2, -1}}, {{0.5, -1.5, 2}},
                     plain_of([](const Slice& s, const Slice& e, P p) {
                       return ref::power_norm_backward(s, e, 1, 1e-12L, p);
                     }),
                     P::propagate);
  }
}

TEMPLATE_TEST_CASE("backward guards: SumToOne degenerate slices", "[backward][guards]", float, double) {
  using T = TestType;
  using ref::Degenerate;
  const std::vector<Slice> rows{{1, -3, 2}, {kInf, 1, 2}, {0.25, 0.25, 0}, {1, 2, 3}};
  const std::vector<Slice> dys{{0.5, -1.5, 2}, {1, 2, 3}, {1, -1, 2}, {1, 2, -1}};
  for (const auto& modes : {std::pair{normkit::Degenerate::uniform, Degenerate::uniform},
                            std::pair{normkit::Degenerate::zeros, Degenerate::zeros},
                            std::pair{normkit::Degenerate::nan, Degenerate::nan}}) {
    const normkit::Degenerate nk = modes.first;  // plain variables: clang 14 captures no structured binding
    const Degenerate d = modes.second;
    INFO("degenerate " << static_cast<int>(d));
    const auto dx = rows_backward<T>(normkit::SumToOne<T>{T(0.5), nk}, rows, dys,
                                     plain([d](const Slice& s, const Slice& e, P p) {
                                       return ref::sum_to_one_backward(s, e, 0.5L, d, false, p);
                                     }),
                                     P::propagate);
    for (Index r = 0; r < 3; ++r) CHECK((d == Degenerate::nan ? row_all_nan(dx, r) : row_is(dx, r, 0)));
    CHECK(row_finite(dx, 3));
    // add_epsilon never degenerates.
    const auto da = rows_backward<T>(normkit::SumToOne<T>{T(0.5), nk, true}, {rows[0], rows[2], rows[3]},
                                     {dys[0], dys[2], dys[3]},
                                     plain([d](const Slice& s, const Slice& e, P p) {
                                       return ref::sum_to_one_backward(s, e, 0.5L, d, true, p);
                                     }),
                                     P::propagate);
    CHECK(row_finite(da, 0));
  }
}

TEMPLATE_TEST_CASE("backward guards: constant slices, ties, ddof", "[backward][guards]", float, double) {
  using T = TestType;
  const std::vector<Slice> rows{{1.5, 1.5, 1.5, 1.5}, {2, -2, 1, 0.5}, {0, 4, 0, 4}, {-3, 3, 3, 1}};
  const std::vector<Slice> dys{{0.5, -1.5, 2, 1}, {1, 3, -1, 2}, {1, 2, 3, 4}, {1, 1, 1, -2}};
  SECTION("MinMax: constant slice 0, ties split evenly") {
    const auto dx = rows_backward<T>(normkit::MinMax<T>{}, rows, dys,
                                     plain([](const Slice& s, const Slice& e, P p) {
                                       return ref::min_max_backward(s, e, 0, 1, p);
                                     }),
                                     P::propagate);
    CHECK(row_is(dx, 0, 0));
    // Row 2: m = 0 (c 2), M = 4 (c 2), r = 1/4, u = (0, 1, 0, 1): to_min = 1 + 3, to_max = 2 + 4.
    CHECK(dx(2, 0) == Approx(0.25 * 1 - 0.25 * 4 / 2));
    CHECK(dx(2, 1) == Approx(0.25 * 2 - 0.25 * 6 / 2));
  }
  SECTION("MaxNorm: ties split evenly with their signs") {
    const auto dx = rows_backward<T>(normkit::MaxNorm<T>{}, rows, dys,
                                     plain([](const Slice& s, const Slice& e, P p) {
                                       return ref::max_norm_backward(s, e, 0, p);
                                     }),
                                     P::propagate);
    // Row 1: M = 2, c = 2, sum dy*x = 2 - 6 - 1 + 1 = -4.
    CHECK(dx(1, 0) == Approx(1 / 2.0 + 4 / 4.0 / 2));
    CHECK(dx(1, 1) == Approx(3 / 2.0 - 4 / 4.0 / 2));
    CHECK(dx(1, 2) == Approx(-1 / 2.0));
  }
  SECTION("ZScore: constant slice 0, add_epsilon (dy - mean dy) / eps, sigma <= eps 0") {
    const auto dz = rows_backward<T>(normkit::ZScore<T>{}, rows, dys,
                                     plain([](const Slice& s, const Slice& e, P p) {
                                       return ref::z_score_backward(s, e, 0, 0, false, p);
                                     }),
                                     P::propagate);
    CHECK(row_is(dz, 0, 0));
    const auto de = rows_backward<T>(normkit::ZScore<T>{0, T(0.5), true}, rows, dys,
                                     plain([](const Slice& s, const Slice& e, P p) {
                                       return ref::z_score_backward(s, e, 0, 0.5L, true, p);
                                     }),
                                     P::propagate);
    CHECK(de(0, 0) == Approx((0.5 - 0.5) / 0.5).margin(1e-6));
    CHECK(de(0, 2) == Approx((2 - 0.5) / 0.5));
    const auto ds = rows_backward<T>(normkit::ZScore<T>{1, T(100)}, rows, dys,
                                     plain([](const Slice& s, const Slice& e, P p) {
                                       return ref::z_score_backward(s, e, 1, 100, false, p);
                                     }),
                                     P::propagate);
    for (Index r = 0; r < 4; ++r) CHECK(row_is(ds, r, 0));
  }
  SECTION("LayerNorm: constant slice with eps > 0 is smooth; eps = 0 gives 0; RMSNorm zero slice") {
    const Slice gamma{2, 1, 0.5, 1.5}, beta{0.1, 0.2, 0.3, 0.4};
    const auto dl = rows_backward<T>(normkit::LayerNorm<T>{T(0.25)}, rows, dys,
                                     [](const Slice& s, const Slice& e, const Slice* g, P p) {
                                       return ref::layer_norm_backward_affine(s, e, 0.25L, g, p);
                                     },
                                     P::propagate, &gamma, &beta);
    // rstd = 2, g = dy*gamma = (1, -1.5, 1, 1.5), mean 0.5: dx = 2 (g - 0.5).
    CHECK(dl(0, 0) == Approx(1.0));
    CHECK(dl(0, 1) == Approx(-4.0));
    const auto d0 = rows_backward<T>(normkit::LayerNorm<T>{T(0)}, rows, dys,
                                     [](const Slice& s, const Slice& e, const Slice* g, P p) {
                                       return ref::layer_norm_backward_affine(s, e, 0, g, p);
                                     },
                                     P::propagate, &gamma, &beta);
    CHECK(row_is(d0, 0, 0));
    const auto dr = rows_backward<T>(normkit::RMSNorm<T>{T(0.25)}, {{0, 0, 0, 0}}, {dys[0]},
                                     [](const Slice& s, const Slice& e, const Slice* g, P p) {
                                       return ref::rms_norm_backward_affine(s, e, 0.25L, g, p);
                                     },
                                     P::propagate, &gamma);
    CHECK(dr(0, 0) == Approx(2.0));  // g / sqrt(eps)
  }
}

TEMPLATE_TEST_CASE("backward guards: masked softmax rows", "[backward][guards]", float, double) {
  using T = TestType;
  using NM = normkit::MaskedSlice;
  const std::vector<Slice> rows{{-kInf, -kInf, -kInf}, {1, -kInf, 2}, {0.5, 1, -1}};
  const std::vector<Slice> dys{{1, 2, 3}, {1, -2, 0.5}, {0.5, 1, 2}};
  const long double t = 0.5L;
  for (NM m : {NM::zeros, NM::nan}) {
    INFO("masked " << (m == NM::zeros ? "zeros" : "nan"));
    const auto ds = rows_backward<T>(normkit::Softmax<T>{m, normkit::NanPolicy::propagate, T(0.5)}, rows, dys,
                                     plain([t](const Slice& y, const Slice& e, P p) {
                                       return ref::softmax_backward(y, e, t, p);
                                     }),
                                     P::propagate);
    CHECK((m == NM::zeros ? row_is(ds, 0, 0) : row_all_nan(ds, 0)));
    CHECK(ds(1, 1) == 0);  // a masked entry of a partly masked row
    CHECK(row_finite(ds, 2));
    const ref::MaskedSlice rm = m == NM::zeros ? ref::MaskedSlice::zeros : ref::MaskedSlice::nan;
    const auto dl = rows_backward<T>(normkit::LogSoftmax<T>{m, normkit::NanPolicy::propagate, T(0.5)}, rows, dys,
                                     plain([t, rm](const Slice& y, const Slice& e, P p) {
                                       return ref::log_softmax_backward(y, e, t, rm, p);
                                     }),
                                     P::propagate);
    CHECK((m == NM::zeros ? row_is(dl, 0, 0) : row_all_nan(dl, 0)));
    CHECK(dl(1, 1) == Approx(-2 / 0.5));  // the formula's value there: dy / temperature
  }
}

TEMPLATE_TEST_CASE("backward guards: NaN policies row by row", "[backward][guards][nan]", float, double) {
  using T = TestType;
  const std::vector<Slice> rows{{1, kNaN, 2, -0.5}, {0.3, 1, 2, -0.5}, {kNaN, kNaN, kNaN, kNaN}};
  std::vector<Slice> dys{{1, kNaN, 2, 1}, {0.5, -1, 2, 1}, {1, 2, 3, 4}};
  for_each_case<T>([&](const auto& c) {
    using F = std::decay_t<decltype(c.f)>;
    if (c.min_length > 4) return;
    const Slice gamma{1.2, 0.8, 1.1, 0.9};
    for (P p : {P::propagate, P::ignore, P::zero}) {
      if (p == P::zero && std::is_same<F, normkit::LogSoftmax<T>>::value) continue;
      INFO(c.name << ", nan policy " << to_string(p));
      F f = c.f;
      f.nan_policy = to_normkit(p);
      // Softmax under zero saves 0 (not NaN) for a NaN input, so a NaN dy
      // there would reach the sums (0 * NaN): a finite dy then.
      std::vector<Slice> d = dys;
      if (from_output<F> && p == P::zero) d[0][1] = 7;
      const auto dx = rows_backward<T>(f, rows, d, c.ref, p, c.weights == Weights::none ? nullptr : &gamma);
      if (p == P::propagate) {
        CHECK(row_all_nan(dx, 0));
        CHECK(row_all_nan(dx, 2));
      } else {
        CHECK(dx(0, 1) == 0);  // whatever dy holds there
        CHECK(row_is(dx, 2, 0));
      }
      CHECK(row_finite(dx, 1));
    }
  });
}

// ============================================================== errors

namespace {

template <class E>
bool message_has(const E& e, std::initializer_list<std::string> parts) {
  const std::string what = e.what();
  for (const std::string& p : parts)
    if (what.find(p) == std::string::npos) return false;
  return true;
}

// Runs call(); it must throw E whose message starts with "normkit::<name>",
// contains every one of `parts` and (if given) at least one of `any`.
template <class E, class Call>
void require_error(Call&& call, const std::string& name, std::initializer_list<std::string> parts,
                   std::initializer_list<std::string> any = {}) {
  bool thrown = false;
  try {
    call();
  } catch (const E& e) {
    thrown = true;
    INFO("message: " << e.what());
    CHECK(std::string(e.what()).rfind("normkit::" + name, 0) == 0);
    CHECK(message_has(e, parts));
    bool found = any.size() == 0;
    for (const std::string& a : any) found = found || message_has(e, {a});
    CHECK(found);
  }
  CHECK(thrown);
}

template <class A>
bool all_42(const A& a) {
  for (Index i = 0; i < static_cast<Index>(a.size()); ++i)
    if (!(a.data()[i] == 42)) return false;
  return true;
}

}  // namespace

TEST_CASE("backward errors: shapes of dy, dx, dgamma, dbeta; nothing written", "[backward][errors]") {
  using T3 = Eigen::Tensor<double, 3>;
  const T3 x = ref::random_tensor<double, 3, Eigen::ColMajor>({3, 4, 5}, 1);
  const T3 dy = ref::random_tensor<double, 3, Eigen::ColMajor>({3, 4, 5}, 2);
  const T3 dy_bad = ref::random_tensor<double, 3, Eigen::ColMajor>({3, 4, 6}, 3);
  T3 dx(3, 4, 5), dx_bad(3, 5, 5);
  dx.setConstant(42);
  dx_bad.setConstant(42);
  const normkit::L2Norm<double> l2{};
  require_error<normkit::shape_error>([&] { l2.backward(x, dy_bad, 2, dx); }, "L2Norm", {"(3, 4, 6)", "(3, 4, 5)"});
  CHECK(all_42(dx));
  require_error<normkit::shape_error>([&] { (void)l2.backward(x, dy_bad, 2); }, "L2Norm", {"(3, 4, 6)", "(3, 4, 5)"});
  require_error<normkit::shape_error>([&] { l2.backward(x, dy, 2, dx_bad); }, "L2Norm", {"(3, 5, 5)", "(3, 4, 5)"});
  CHECK(all_42(dx_bad));
  const normkit::Softmax<double> sm{};
  require_error<normkit::shape_error>([&] { sm.backward(sm(x, 0), dy_bad, 0, dx); }, "Softmax",
                                      {"(3, 4, 6)", "(3, 4, 5)"});
  CHECK(all_42(dx));

  // Matrix operands.
  const Eigen::MatrixXd m = ref::random_matrix<Eigen::MatrixXd>(5, 7, 4);
  const Eigen::MatrixXd dm_bad = ref::random_matrix<Eigen::MatrixXd>(7, 5, 5);
  Eigen::MatrixXd dmx = Eigen::MatrixXd::Constant(5, 7, 42);
  require_error<normkit::shape_error>([&] { l2.backward(m, dm_bad, 1, dmx); }, "L2Norm", {"(7, 5)", "(5, 7)"});
  CHECK(all_42(dmx));

  // dgamma / dbeta of the wrong length or shape.
  const normkit::LayerNorm<double> ln{};
  Eigen::Tensor<double, 1> g(5), b(5), dg(5), db(5), dg_bad(6), db_bad(4);
  g.setConstant(1.5);
  b.setConstant(0.5);
  for (auto* t : {&dg, &db, &dg_bad, &db_bad}) t->setConstant(42);
  require_error<normkit::shape_error>(
      [&] { ln.backward(x, dy, 2, normkit::affine(g, b), dx, normkit::affine_grads(dg_bad, db)); }, "LayerNorm",
      {"dgamma", "(6)"}, {"(5)", " 5 "});  // the needed shape, or its element count
  CHECK(all_42(dx));
  CHECK(all_42(dg_bad));
  CHECK(all_42(db));
  require_error<normkit::shape_error>(
      [&] { ln.backward(x, dy, 2, normkit::affine(g, b), dx, normkit::affine_grads(dg, db_bad)); }, "LayerNorm",
      {"dbeta", "(4)"}, {"(5)", " 5 "});
  CHECK(all_42(dx));
  CHECK(all_42(dg));
  // A tensor dgamma must have the normalized dims.
  Eigen::Tensor<double, 2> g2(4, 5), b2(4, 5), dg2_bad(5, 4);
  g2.setConstant(1);
  b2.setConstant(0);
  dg2_bad.setConstant(42);
  Eigen::Tensor<double, 2> db2(4, 5);
  db2.setConstant(42);
  require_error<normkit::shape_error>(
      [&] { ln.backward(x, dy, {1, 2}, normkit::affine(g2, b2), dx, normkit::affine_grads(dg2_bad, db2)); },
      "LayerNorm", {"dgamma", "(5, 4)"}, {"(4, 5)", " 20 "});
  CHECK(all_42(dx));
  CHECK(all_42(db2));
  // gamma itself of the wrong length, as in the forward.
  Eigen::Tensor<double, 1> g_bad(6);
  g_bad.setConstant(1);
  require_error<normkit::shape_error>([&] { ln.backward(x, dy, 2, normkit::affine(g_bad), dx); }, "LayerNorm",
                                      {"gamma"});
  CHECK(all_42(dx));
}

TEST_CASE("backward errors: axes, options, NaN under raise; nothing written", "[backward][errors]") {
  using T3 = Eigen::Tensor<float, 3>;
  T3 x = ref::random_tensor<float, 3, Eigen::ColMajor>({3, 4, 5}, 11);
  const T3 dy = ref::random_tensor<float, 3, Eigen::ColMajor>({3, 4, 5}, 12);
  T3 dx(3, 4, 5);
  dx.setConstant(42);
  const normkit::L1Norm<float> l1{};
  CHECK_THROWS_AS(l1.backward(x, dy, 3, dx), normkit::axis_error);
  CHECK_THROWS_AS((l1.backward(x, dy, {0, 2}, dx)), normkit::axis_error);  // not adjacent
  CHECK(all_42(dx));
  CHECK_THROWS_AS(normkit::ZScore<float>{4}.backward(x, dy, 1, dx), normkit::option_error);  // ddof >= n
  CHECK_THROWS_AS((normkit::Softmax<float>{normkit::MaskedSlice::nan, normkit::NanPolicy::propagate, 0.f}.backward(
                      x, dy, 1, dx)),
                  normkit::option_error);
  CHECK_THROWS_AS((normkit::PowerNorm<float>{0.5f}.backward(x, dy, 1, dx)), normkit::option_error);
  CHECK_THROWS_AS((normkit::L2Norm<float>{-1.f}.backward(x, dy, 1, dx)), normkit::option_error);
  // LogSoftmax::backward rejects NanPolicy::zero (zeroed NaN positions cannot be told from y).
  CHECK_THROWS_AS((normkit::LogSoftmax<float>{normkit::MaskedSlice::nan, normkit::NanPolicy::zero}.backward(
                      x, dy, 1, dx)),
                  normkit::option_error);
  CHECK(all_42(dx));
  // raise: nan_error before anything is written.
  x(1, 2, 3) = std::numeric_limits<float>::quiet_NaN();
  normkit::MinMax<float> mm{};
  mm.nan_policy = normkit::NanPolicy::raise;
  CHECK_THROWS_AS(mm.backward(x, dy, 0, dx), normkit::nan_error);
  CHECK(all_42(dx));
  T3 alias = dy;
  CHECK_THROWS_AS(mm.backward(x, alias, 0, alias), normkit::nan_error);
  CHECK(first_difference(alias, dy) == -1);
  normkit::Softmax<float> sm{};
  sm.nan_policy = normkit::NanPolicy::raise;
  CHECK_THROWS_AS(sm.backward(x, dy, 2, dx), normkit::nan_error);  // saved = y with a NaN
  CHECK(all_42(dx));
}

// ============================================================== operands

namespace {

template <class M>
Eigen::Tensor<typename M::Scalar, 2> to_tensor(const M& m) {
  Eigen::Tensor<typename M::Scalar, 2> t(m.rows(), m.cols());
  for (Index j = 0; j < m.cols(); ++j)
    for (Index i = 0; i < m.rows(); ++i) t(i, j) = m(i, j);
  return t;
}

// Dense operands: backward returns the plain type, matches the reference
// (axis 0 = each column, 1 = each row), into a Map and into dy itself are
// bit-identical.
template <class M, class F>
void dense_forms(const F& f, const RefBwd& rf) {
  using S = typename M::Scalar;
  const M x = ref::random_matrix<M>(5, 7, 21);
  const M dy = ref::random_matrix<M>(5, 7, 22);
  for (int axis : {0, 1, -1}) {
    INFO("axis " << axis);
    M saved = x;
    if constexpr (from_output<F>) saved = f(x, axis);
    const auto dx = f.backward(saved, dy, axis);
    static_assert(std::is_same<std::decay_t<decltype(dx)>, M>::value, "dense in -> same PlainObject out");
    const std::vector<int> resolved{axis < 0 ? axis + 2 : axis};
    const Verdict v = compare_to_ref(
        to_tensor(dx), to_tensor(saved), to_tensor(dy), resolved,
        [&](const Slice& s, const Slice& d) { return rf(s, d, nullptr, P::propagate).dx; }, {}, rel_tol<S>);
    INFO(v.message);
    CHECK(v.ok);
    std::vector<S> buf(35, S(42));
    f.backward(saved, dy, axis, Eigen::Map<M>(buf.data(), 5, 7));
    CHECK(first_difference(Eigen::Map<M>(buf.data(), 5, 7), dx) == -1);
    M alias = dy;
    f.backward(saved, alias, axis, alias);
    CHECK(first_difference(alias, dx) == -1);
    M out = M::Constant(5, 7, S(42));
    f.backward(saved, dy, axis, out);
    CHECK(first_difference(out, dx) == -1);
  }
}

}  // namespace

TEST_CASE("backward with Matrix, Array, Map operands", "[backward][api]") {
  using MatrixXfR = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const RefBwd l2 = plain([](const Slice& s, const Slice& d, P p) { return ref::l2_backward(s, d, 1e-12L, false, p); });
  const RefBwd sm = plain([](const Slice& y, const Slice& d, P p) { return ref::softmax_backward(y, d, 1, p); });
  const RefBwd z = plain([](const Slice& s, const Slice& d, P p) { return ref::z_score_backward(s, d, 0, 0, false, p); });
  SECTION("MatrixXd") { dense_forms<Eigen::MatrixXd>(normkit::L2Norm<double>{}, l2); }
  SECTION("RowMajor MatrixXf") { dense_forms<MatrixXfR>(normkit::Softmax<float>{}, sm); }
  SECTION("ArrayXXd") { dense_forms<Eigen::ArrayXXd>(normkit::ZScore<double>{}, z); }
  SECTION("VectorXf and LayerNorm affine with dgamma / dbeta as vectors") {
    const normkit::LayerNorm<float> ln{};
    const Eigen::MatrixXf x = ref::random_matrix<Eigen::MatrixXf>(6, 8, 31);
    const Eigen::MatrixXf dy = ref::random_matrix<Eigen::MatrixXf>(6, 8, 32);
    const Eigen::VectorXf g = ref::random_matrix<Eigen::VectorXf>(8, 1, 33);
    const Eigen::RowVectorXf b = ref::random_matrix<Eigen::RowVectorXf>(1, 8, 34);
    Eigen::MatrixXf dx(6, 8);
    Eigen::VectorXf dg = Eigen::VectorXf::Constant(8, 42);
    Eigen::RowVectorXf db = Eigen::RowVectorXf::Constant(8, 42);
    ln.backward(x, dy, 1, normkit::affine(g, b), dx, normkit::affine_grads(dg, db));
    const Slice gs(g.data(), g.data() + 8);
    const auto want = ref::apply_affine_backward(to_tensor(x), to_tensor(dy), {1}, [&](const Slice& s, const Slice& d) {
      return ref::layer_norm_backward_affine(s, d, static_cast<long double>(ln.epsilon), &gs);
    });
    const Verdict v = compare_to_ref(
        to_tensor(dx), to_tensor(x), to_tensor(dy), {1},
        [&](const Slice& s, const Slice& d) {
          return ref::layer_norm_backward(s, d, static_cast<long double>(ln.epsilon), &gs);
        },
        {}, rel_tol<float>);
    INFO(v.message);
    CHECK(v.ok);
    for (Index k = 0; k < 8; ++k) {
      CHECK(dg(k) == Approx(static_cast<double>(want.dgamma[static_cast<std::size_t>(k)])).epsilon(1e-4).margin(1e-5));
      CHECK(db(k) == Approx(static_cast<double>(want.dbeta[static_cast<std::size_t>(k)])).epsilon(1e-4).margin(1e-5));
    }
    const auto dx_new = ln.backward(x, dy, 1, normkit::affine(g, b));
    static_assert(std::is_same<std::decay_t<decltype(dx_new)>, Eigen::MatrixXf>::value, "MatrixXf -> MatrixXf");
    CHECK(first_difference(dx_new, dx) == -1);

    const Eigen::VectorXf v1 = ref::random_matrix<Eigen::VectorXf>(9, 1, 35);
    const Eigen::VectorXf dv = ref::random_matrix<Eigen::VectorXf>(9, 1, 36);
    const normkit::MaxNorm<float> mn{};
    const auto dxv = mn.backward(v1, dv, 0);
    static_assert(std::is_same<std::decay_t<decltype(dxv)>, Eigen::VectorXf>::value, "VectorXf -> VectorXf");
    Slice s(v1.data(), v1.data() + 9), d(dv.data(), dv.data() + 9);
    const Slice want_v = ref::max_norm_backward(s, d, 0);
    for (Index i = 0; i < 9; ++i)
      CHECK(dxv(i) == Approx(static_cast<double>(want_v[static_cast<std::size_t>(i)])).epsilon(1e-5).margin(1e-6));
  }
  SECTION("TensorMap in and out") {
    const Eigen::Tensor<double, 3, Eigen::RowMajor> x = ref::random_tensor<double, 3, Eigen::RowMajor>({3, 4, 5}, 41);
    const Eigen::Tensor<double, 3, Eigen::RowMajor> dy = ref::random_tensor<double, 3, Eigen::RowMajor>({3, 4, 5}, 42);
    const normkit::RMSNorm<double> f{};
    const auto dx = f.backward(x, dy, {1, 2});
    const Eigen::TensorMap<const Eigen::Tensor<double, 3, Eigen::RowMajor>> xm(x.data(), 3, 4, 5), dym(dy.data(), 3, 4, 5);
    std::vector<double> buf(60, 42);
    f.backward(xm, dym, {-2, -1}, Eigen::TensorMap<Eigen::Tensor<double, 3, Eigen::RowMajor>>(buf.data(), 3, 4, 5));
    CHECK(std::memcmp(buf.data(), dx.data(), sizeof(double) * 60) == 0);
  }
}
