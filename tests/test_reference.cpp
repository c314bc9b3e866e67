// Checks the long-double reference itself against hand-computed values, so the
// library tests can trust it.
#include <catch2/catch.hpp>

#include "reference.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace {

using ref::Slice;
const long double inf = std::numeric_limits<long double>::infinity();
const long double qnan = std::numeric_limits<long double>::quiet_NaN();

// Element-wise match with NaN == NaN (the reference itself is exact to ~1e-18).
void check(const Slice& got, const Slice& want, double tol = 1e-6) {
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        INFO("element " << i << ": got " << static_cast<double>(got[i]) << ", want "
                        << static_cast<double>(want[i]));
        if (std::isnan(want[i])) CHECK(std::isnan(got[i]));
        else if (std::isinf(want[i])) CHECK(got[i] == want[i]);
        else CHECK(static_cast<double>(got[i]) == Approx(static_cast<double>(want[i])).margin(tol).epsilon(tol));
    }
}

const Slice x5{1, 2, 4, 5, 6};

}  // namespace

TEST_CASE("reference sum_to_one", "[reference]") {
    using ref::Degenerate;
    check(ref::sum_to_one(x5, 0, Degenerate::uniform, false),
          {0.0555556, 0.111111, 0.222222, 0.277778, 0.333333});
    // sum 0 and sum inf are degenerate
    check(ref::sum_to_one({1, -1}, 0, Degenerate::uniform, false), {0.5, 0.5});
    check(ref::sum_to_one({1, -1}, 0, Degenerate::zeros, false), {0, 0});
    check(ref::sum_to_one({1, -1}, 0, Degenerate::nan, false), {qnan, qnan});
    check(ref::sum_to_one({inf, 1, 2}, 0, Degenerate::uniform, false), {1 / 3.0L, 1 / 3.0L, 1 / 3.0L});
    // |sum| <= eps is degenerate, just above is not
    check(ref::sum_to_one({0.25, 0.25}, 0.5, Degenerate::zeros, false), {0, 0});
    check(ref::sum_to_one({0.25, 0.25}, 0.49, Degenerate::zeros, false), {0.5, 0.5});
    // add_epsilon: plain x/(sum+eps), no degenerate handling
    check(ref::sum_to_one({1, -1}, 0.5, Degenerate::uniform, true), {2, -2});
    check(ref::sum_to_one({1, 3}, 1, Degenerate::uniform, true), {0.2, 0.6});
}

TEST_CASE("reference l1 / l2 / max_norm", "[reference]") {
    check(ref::l1({1, -3}, 1e-12L), {0.25, -0.75});
    check(ref::l1({0, 0}, 0), {0, 0});
    check(ref::l1({0.1, -0.1}, 1), {0.1, -0.1});  // eps clamps the denominator

    check(ref::l2({3, 4}, 1e-12L, false), {0.6, 0.8});
    check(ref::l2({3e-7, 4e-7}, 1e-3L, false), {3e-4, 4e-4}, 1e-12);
    check(ref::l2({3e-2, 4e-2}, 1e-2L, true), {0.3, 0.4}, 1e-12);  // x / sqrt(max(0.0025, 0.01))
    check(ref::l2({0, 0}, 0, false), {0, 0});
    check(ref::l2({0, 0}, 0, true), {0, 0});
    check(ref::l2({inf, 1}, 1e-12L, false), {qnan, 0});
    // No overflow for doubles near the top of the range.
    const long double big = std::numeric_limits<double>::max();
    check(ref::l2({big, big}, 0, false), {std::sqrt(0.5L), std::sqrt(0.5L)}, 1e-15);
    const long double tiny = std::numeric_limits<double>::denorm_min();
    check(ref::l2({3 * tiny, 4 * tiny}, 0, false), {0.6, 0.8}, 1e-15);

    check(ref::max_norm({-4, 2}, 0), {-1, 0.5});
    check(ref::max_norm({0, 0}, 0), {0, 0});
    check(ref::max_norm({0.5, -0.25}, 2), {0.25, -0.125});
}

TEST_CASE("reference min_max", "[reference]") {
    check(ref::min_max({2, 4, 6}, 0, 1), {0, 0.5, 1});
    check(ref::min_max({2, 4, 6}, -1, 1), {-1, 0, 1});
    check(ref::min_max({3, 3, 3}, -2, 5), {-2, -2, -2});
}

TEST_CASE("reference z_score", "[reference]") {
    // column {1,2,3}: mean 2, population variance 2/3
    check(ref::z_score({1, 2, 3}, 0, 0, false), {-1.2247449, 0, 1.2247449});
    check(ref::z_score({1, 2, 3}, 1, 0, false), {-1, 0, 1});
    check(ref::z_score({1, 2, 3}, 1, 1, true), {-0.5, 0, 0.5});
    check(ref::z_score({0.1L, 0.1L, 0.1L}, 0, 0, false), {0, 0, 0});
    check(ref::z_score({1, 3}, 0, 1, false), {0, 0});    // std == eps -> 0
    check(ref::z_score({1, 3}, 0, 0.99L, false), {-1, 1});
}

TEST_CASE("reference layer_norm / rms_norm", "[reference]") {
    check(ref::layer_norm({1, 2, 3}, 0), {-1.2247449, 0, 1.2247449});
    const Slice g{1, 2, 3}, b{0, 1, 0};
    check(ref::layer_norm({1, 2, 3}, 0, &g, &b), {-1.2247449, 1, 3.6742346});
    check(ref::layer_norm({1, 2, 3}, 0, nullptr, &b), {-1.2247449, 1, 1.2247449});
    check(ref::layer_norm({1, 3}, 3), {-0.5, 0.5});  // var 1, sqrt(1+3) = 2

    check(ref::rms_norm({3, 4}, 0), {0.8485281, 1.1313708});  // rms = sqrt(12.5)
    check(ref::rms_norm({1, 1}, 3), {0.5, 0.5});
    const Slice g2{1, 2}, b2{0, 1};
    check(ref::rms_norm({3, 4}, 0, &g2, &b2), {0.8485281, 3.2627417});
}

TEST_CASE("reference softmax / log_softmax", "[reference]") {
    using ref::MaskedSlice;
    check(ref::softmax(x5, MaskedSlice::nan), {0.00440888, 0.0119846, 0.0885547, 0.240717, 0.654335});
    check(ref::log_softmax(x5, MaskedSlice::nan),
          {std::log(0.00440888L), std::log(0.0119846L), std::log(0.0885547L), std::log(0.240717L),
           std::log(0.654335L)},
          1e-5);
    // shift invariance, large inputs do not overflow
    check(ref::softmax({1001, 1002, 1004, 1005, 1006}, MaskedSlice::nan),
          {0.00440888, 0.0119846, 0.0885547, 0.240717, 0.654335});
    check(ref::softmax({-inf, 0, 0}, MaskedSlice::nan), {0, 0.5, 0.5});
    check(ref::log_softmax({-inf, 0, 0}, MaskedSlice::nan), {-inf, -std::log(2.0L), -std::log(2.0L)});
    // all -inf: masked rule
    check(ref::softmax({-inf, -inf}, MaskedSlice::nan), {qnan, qnan});
    check(ref::softmax({-inf, -inf}, MaskedSlice::zeros), {0, 0});
    check(ref::log_softmax({-inf, -inf}, MaskedSlice::zeros), {0, 0});
    // +inf poisons the slice by IEEE
    check(ref::softmax({inf, 1}, MaskedSlice::zeros), {qnan, qnan});
    check(ref::log_softmax({inf, 1}, MaskedSlice::zeros), {qnan, qnan});
}

TEST_CASE("reference NaN policies", "[reference]") {
    using ref::NanPolicy;
    const Slice x{1, qnan, 3};
    const auto s2o = [&](NanPolicy p) { return ref::sum_to_one(x, 0, ref::Degenerate::uniform, false, p); };
    check(s2o(NanPolicy::propagate), {qnan, qnan, qnan});
    check(s2o(NanPolicy::ignore), {0.25, qnan, 0.75});
    check(s2o(NanPolicy::zero), {0.25, 0, 0.75});

    // n counts only non-NaN elements
    check(ref::sum_to_one({1, -1, qnan}, 0, ref::Degenerate::uniform, false, NanPolicy::ignore), {0.5, 0.5, qnan});
    check(ref::z_score({1, qnan, 3}, 0, 0, false, NanPolicy::zero), {-1, 0, 1});
    check(ref::softmax({qnan, 0, 0}, ref::MaskedSlice::nan, NanPolicy::ignore), {qnan, 0.5, 0.5});
    check(ref::softmax({qnan, -inf}, ref::MaskedSlice::zeros, NanPolicy::ignore), {qnan, 0});

    // all-NaN slices
    check(ref::l2({qnan, qnan}, 1e-12L, false, NanPolicy::ignore), {qnan, qnan});
    check(ref::l2({qnan, qnan}, 1e-12L, false, NanPolicy::zero), {0, 0});

    // affine is applied only where the input was not NaN; gamma/beta stay position-aligned
    const Slice g{2, 5, 2}, b{1, 7, 1};
    check(ref::layer_norm(x, 0, &g, &b, NanPolicy::propagate), {qnan, qnan, qnan});
    check(ref::layer_norm(x, 0, &g, &b, NanPolicy::ignore), {-1, qnan, 3});
    check(ref::layer_norm(x, 0, &g, &b, NanPolicy::zero), {-1, 0, 3});
    check(ref::rms_norm({qnan, 3, 4}, 0, &g, &b, NanPolicy::zero), {0, 5 * 3 / std::sqrt(12.5L) + 7, 3.2627417});

    const Slice short_gamma{1};
    CHECK_THROWS_AS(ref::layer_norm({1, 2}, 0, &short_gamma), std::invalid_argument);
}

namespace {
// t(i,j,k) = 100i + 10j + k, so every value names its own index.
template <int L>
Eigen::Tensor<double, 3, L> coded_2x3x4() {
    Eigen::Tensor<double, 3, L> t(2, 3, 4);
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j)
            for (int k = 0; k < 4; ++k) t(i, j, k) = 100 * i + 10 * j + k;
    return t;
}

// Runs ref::apply and records the slices it hands to the function.
template <int L>
std::vector<Slice> gathered(const Eigen::Tensor<double, 3, L>& t, std::vector<int> axes) {
    std::vector<Slice> seen;
    ref::apply(t, std::move(axes), [&](const Slice& s) {
        seen.push_back(s);
        return s;
    });
    return seen;
}

// Position of each element within its slice.
Slice positions(const Slice& s) {
    Slice p(s.size());
    for (std::size_t i = 0; i < p.size(); ++i) p[i] = static_cast<long double>(i);
    return p;
}
}  // namespace

TEST_CASE("reference apply: gather order follows the layout", "[reference]") {
    const auto row = coded_2x3x4<Eigen::RowMajor>();
    const auto col = coded_2x3x4<Eigen::ColMajor>();

    SECTION("axes {1,2}") {
        const auto r = gathered(row, {1, 2}), c = gathered(col, {1, 2});
        REQUIRE(r.size() == 2);
        REQUIRE(c.size() == 2);
        check(r[1], {100, 101, 102, 103, 110, 111, 112, 113, 120, 121, 122, 123});  // k fastest
        check(c[1], {100, 110, 120, 101, 111, 121, 102, 112, 122, 103, 113, 123});  // j fastest
        const auto pr = ref::apply(row, {1, 2}, positions);
        const auto pc = ref::apply(col, {1, 2}, positions);
        CHECK(pr(1, 1, 2) == 6);  // 1*4 + 2
        CHECK(pc(1, 1, 2) == 7);  // 1 + 2*3
        CHECK(pr(0, 2, 3) == 11);
        CHECK(pc(0, 2, 3) == 11);
    }
    SECTION("single axes") {
        for (const auto& s : gathered(row, {0})) REQUIRE(s.size() == 2);
        const auto r1 = gathered(row, {1});
        REQUIRE(r1.size() == 8);
        check(r1[5], {101, 111, 121});  // slices also come in layout order: (i=1, k=1)
        CHECK(gathered(col, {2}).size() == 6);
        // a reduction over axis 1 normalizes the j-column for each (i, k)
        const auto y = ref::apply(col, {1}, [](const Slice& s) {
            return ref::sum_to_one(s, 0, ref::Degenerate::uniform, false);
        });
        CHECK(static_cast<double>(y(1, 2, 3)) == Approx(123.0 / (103 + 113 + 123)));
    }
    SECTION("axes {0,1,2} and order of the list") {
        const auto r = gathered(row, {2, 0, 1});
        REQUIRE(r.size() == 1);
        CHECK(r[0][5] == 11);   // (0,1,1)
        CHECK(gathered(col, {0, 1, 2})[0][5] == 120);  // (1,2,0)
    }
    SECTION("invalid axes throw") {
        CHECK_THROWS_AS(gathered(row, {0, 2}), std::invalid_argument);
        CHECK_THROWS_AS(gathered(row, {3}), std::invalid_argument);
        CHECK_THROWS_AS(gathered(row, {1, 1}), std::invalid_argument);
        CHECK_THROWS_AS(gathered(row, {}), std::invalid_argument);
    }
}

TEST_CASE("reference apply_affine and flatten share the slice order", "[reference]") {
    Eigen::Tensor<float, 2, Eigen::ColMajor> g(3, 4);
    for (int j = 0; j < 3; ++j)
        for (int k = 0; k < 4; ++k) g(j, k) = static_cast<float>(10 * j + k);
    const Slice gf = ref::flatten(g);
    check(Slice(gf.begin(), gf.begin() + 4), {0, 10, 20, 1});

    const auto col = coded_2x3x4<Eigen::ColMajor>();
    const Slice zeros(12, 0.0L);
    // a slice function returning gamma must reproduce g in every slice
    const auto y = ref::apply_affine(
        col, {1, 2}, [](const Slice&, const Slice* gamma, const Slice*) { return *gamma; }, &gf, &zeros);
    CHECK(y(1, 2, 1) == 21);
    CHECK(y(0, 1, 3) == 13);

    const auto ln = ref::apply_affine(
        col, {1, 2}, [](const Slice& s, const Slice* gm, const Slice* bt) { return ref::layer_norm(s, 0, gm, bt); },
        &gf, nullptr);
    // (1,1,2) is position 1 + 2*3 = 7 of slice i=1, scaled by gf[7] = g(1,2)
    const Slice s1{100, 110, 120, 101, 111, 121, 102, 112, 122, 103, 113, 123};
    CHECK(ln(1, 1, 2) == ref::layer_norm(s1, 0, &gf, nullptr)[7]);
    CHECK(gf[7] == 12);
    CHECK(ln(0, 0, 0) == 0);  // gamma g(0,0) = 0
}

TEST_CASE("reference compare", "[reference]") {
    Eigen::Tensor<float, 2, Eigen::RowMajor> a(2, 2);
    Eigen::Tensor<long double, 2, Eigen::RowMajor> e(2, 2);
    a.setValues({{1.0f, std::numeric_limits<float>::quiet_NaN()}, {std::numeric_limits<float>::infinity(), 2.0f}});
    e.setValues({{1.0L, qnan}, {inf, 2.0L}});
    auto r = ref::compare(a, e, 1e-6L, 0);
    CHECK(r.ok);
    CHECK(r.failures == 0);

    a(1, 1) = 2.001f;
    r = ref::compare(a, e, 1e-6L, 0);
    CHECK_FALSE(r.ok);
    CHECK(r.index == 3);
    CHECK(r.message.find("flat index 3 (1,1)") != std::string::npos);
    CHECK(ref::compare(a, e, 1e-3L, 0).ok);
    CHECK(ref::compare(a, e, 0, 2e-3L).ok);

    a(1, 1) = 2.0f;
    a(1, 0) = -std::numeric_limits<float>::infinity();
    r = ref::compare(a, e, 1, 1);
    CHECK_FALSE(r.ok);
    CHECK(r.index == 2);

    a(1, 0) = std::numeric_limits<float>::infinity();
    a(0, 0) = std::numeric_limits<float>::quiet_NaN();  // NaN where a number is expected
    CHECK_FALSE(ref::compare(a, e, 1, 1).ok);
    a(0, 0) = 1.0f;
    e(0, 1) = 0;  // number where NaN is produced
    CHECK_FALSE(ref::compare(a, e, 1, 1).ok);

    // flat index follows the layout: ColMajor (1,0) is flat 1
    Eigen::Tensor<double, 2, Eigen::ColMajor> ac(2, 2);
    Eigen::Tensor<long double, 2, Eigen::ColMajor> ec(2, 2);
    ac.setZero();
    ec.setZero();
    ac(1, 0) = 1;
    CHECK(ref::compare(ac, ec, 0, 0.5L).index == 1);

    Eigen::Tensor<long double, 2, Eigen::ColMajor> wrong(2, 3);
    wrong.setZero();
    CHECK_FALSE(ref::compare(ac, wrong, 1, 1).ok);
}

TEST_CASE("reference generators", "[reference]") {
    Eigen::Tensor<double, 2> a(50, 40), b(50, 40);
    ref::fill_normal(a, 7, 3.0, 2.0);
    ref::fill_normal(b, 7, 3.0, 2.0);
    const Eigen::Tensor<long double, 2> bl = b.cast<long double>();
    CHECK(ref::compare(a, bl, 0, 0).ok);  // deterministic
    CHECK(std::accumulate(a.data(), a.data() + a.size(), 0.0) / static_cast<double>(a.size()) ==
          Approx(3.0).margin(0.2));

    Eigen::Tensor<float, 3, Eigen::RowMajor> u(10, 10, 10);
    ref::fill_uniform(u, 1, -2.0, 5.0);
    const auto [lo, hi] = std::minmax_element(u.data(), u.data() + u.size());
    CHECK(*lo >= -2.0f);
    CHECK(*hi <= 5.0f);
    ref::add_nans(u, 3, 0.25);
    int nans = 0;
    for (Eigen::Index i = 0; i < u.size(); ++i) nans += std::isnan(u.data()[i]) ? 1 : 0;
    CHECK(nans == 250);
}
