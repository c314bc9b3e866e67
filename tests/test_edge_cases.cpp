// Edge cases for every functor, checked against the long-double reference or
// exact values: degenerate slices, each NaN policy on the contiguous and the
// strided path (NaNs in the SIMD body and in the tail), infinities, values at
// the ends of the float/double range, large offsets and 10^6-element slices.
//
// Shapes are chosen so both code paths have a SIMD body and a scalar tail for
// any vector width up to 16 floats: contiguous slices of 37 elements
// (37 = 2*16 + 5 = 4*8 + 5 = 9*4 + 1) and 19 strided slices side by side
// (19 = 16 + 3 = 2*8 + 3 = 4*4 + 3).
#include <catch2/catch.hpp>

#include <normkit/normkit.hpp>

#include "engine_instances.hpp"

#include "reference.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using ref::Slice;
using ld = long double;
using normkit::NanPolicy;
template <class T>
using Mat = Eigen::Tensor<T, 2, Eigen::RowMajor>;
using Expected = Eigen::Tensor<ld, 2, Eigen::RowMajor>;

template <class T>
constexpr bool is_float = std::is_same<T, float>::value;
template <class T>
constexpr ld rel_tol() { return is_float<T> ? 1e-5L : 1e-12L; }
template <class T>
constexpr ld abs_tol() { return is_float<T> ? 1e-6L : 1e-13L; }
template <class T>
constexpr ld ulps(int k) { return k * static_cast<ld>(std::numeric_limits<T>::epsilon()); }
template <class T>
T nan() { return std::numeric_limits<T>::quiet_NaN(); }
template <class T>
T inf() { return std::numeric_limits<T>::infinity(); }

template <class T>
Mat<T> rows(const std::vector<std::vector<double>>& r) {
    Mat<T> m(static_cast<Eigen::Index>(r.size()), static_cast<Eigen::Index>(r[0].size()));
    for (std::size_t i = 0; i < r.size(); ++i)
        for (std::size_t j = 0; j < r[i].size(); ++j) m(i, j) = static_cast<T>(r[i][j]);
    return m;
}

template <class T>
Mat<T> transposed(const Mat<T>& m) {
    return m.shuffle(Eigen::array<int, 2>{1, 0});
}

template <class T>
void check_ref(const Mat<T>& actual, const Expected& expected, ld rel, ld abs) {
    const auto r = ref::compare(actual, expected, rel, abs);
    INFO(r.message);
    CHECK(r.ok);
}

// tol (relative, and absolute for these O(1) values) allows rounding where the value is not exact.
template <class T>
void check_exact(const Mat<T>& actual, const std::vector<std::vector<double>>& want, ld tol = 0) {
    Expected e(actual.dimensions());
    for (Eigen::Index i = 0; i < e.dimension(0); ++i)
        for (Eigen::Index j = 0; j < e.dimension(1); ++j) e(i, j) = static_cast<T>(want[i][j]);
    check_ref(actual, e, tol, tol);
}

// ------------------------------------------------------------- every functor

enum class Fn { sum_to_one, l1, l2, max_norm, min_max, z_score, layer_norm, rms_norm, softmax, log_softmax };
const std::array<Fn, 10> all_fns{Fn::sum_to_one, Fn::l1,         Fn::l2,       Fn::max_norm, Fn::min_max,
                                 Fn::z_score,    Fn::layer_norm, Fn::rms_norm, Fn::softmax,  Fn::log_softmax};

const char* name(Fn f) {
    switch (f) {
        case Fn::sum_to_one: return "SumToOne";
        case Fn::l1: return "L1Norm";
        case Fn::l2: return "L2Norm";
        case Fn::max_norm: return "MaxNorm";
        case Fn::min_max: return "MinMax";
        case Fn::z_score: return "ZScore";
        case Fn::layer_norm: return "LayerNorm";
        case Fn::rms_norm: return "RMSNorm";
        case Fn::softmax: return "Softmax";
        case Fn::log_softmax: return "LogSoftmax";
    }
    return "?";
}

ref::NanPolicy to_ref(NanPolicy p) {
    return p == NanPolicy::ignore ? ref::NanPolicy::ignore
           : p == NanPolicy::zero ? ref::NanPolicy::zero
                                  : ref::NanPolicy::propagate;
}

// Every call goes through f(x, axis, out) so each functor type is instantiated once.
template <class F, class T>
Mat<T> run(const F& f, const Mat<T>& x, int axis) {
    Mat<T> out(x.dimensions());
    f(x, axis, out);
    return out;
}

// The functors with their default options, except MinMax on [-1, 2] so that
// its constant-slice value lo is distinguishable from a zeroed NaN.
template <class T>
void apply(Fn f, const Mat<T>& x, int axis, NanPolicy p, Mat<T>& out) {
    switch (f) {
        case Fn::sum_to_one: normkit::SumToOne<T>{T(0), normkit::Degenerate::uniform, false, p}(x, axis, out); break;
        case Fn::l1: normkit::L1Norm<T>{T(1e-12), p}(x, axis, out); break;
        case Fn::l2: normkit::L2Norm<T>{T(1e-12), false, p}(x, axis, out); break;
        case Fn::max_norm: normkit::MaxNorm<T>{T(0), p}(x, axis, out); break;
        case Fn::min_max: normkit::MinMax<T>{T(-1), T(2), p}(x, axis, out); break;
        case Fn::z_score: normkit::ZScore<T>{0, T(0), false, p}(x, axis, out); break;
        case Fn::layer_norm: normkit::LayerNorm<T>{T(1e-5), p}(x, axis, out); break;
        case Fn::rms_norm: normkit::RMSNorm<T>{T(1e-6), p}(x, axis, out); break;
        case Fn::softmax: normkit::Softmax<T>{normkit::MaskedSlice::nan, p}(x, axis, out); break;
        case Fn::log_softmax: normkit::LogSoftmax<T>{normkit::MaskedSlice::nan, p}(x, axis, out); break;
    }
}

template <class T>
Mat<T> apply(Fn f, const Mat<T>& x, int axis, NanPolicy p = NanPolicy::propagate) {
    Mat<T> out(x.dimensions());
    apply(f, x, axis, p, out);
    return out;
}

// The same options in the reference (epsilons rounded to T as the library sees them).
template <class T>
Slice reference(Fn f, const Slice& s, ref::NanPolicy p) {
    switch (f) {
        case Fn::sum_to_one: return ref::sum_to_one(s, 0, ref::Degenerate::uniform, false, p);
        case Fn::l1: return ref::l1(s, T(1e-12), p);
        case Fn::l2: return ref::l2(s, T(1e-12), false, p);
        case Fn::max_norm: return ref::max_norm(s, 0, p);
        case Fn::min_max: return ref::min_max(s, -1, 2, p);
        case Fn::z_score: return ref::z_score(s, 0, 0, false, p);
        case Fn::layer_norm: return ref::layer_norm(s, T(1e-5), nullptr, nullptr, p);
        case Fn::rms_norm: return ref::rms_norm(s, T(1e-6), nullptr, nullptr, p);
        case Fn::softmax: return ref::softmax(s, ref::MaskedSlice::nan, p);
        case Fn::log_softmax: return ref::log_softmax(s, ref::MaskedSlice::nan, p);
    }
    return {};
}

template <class T>
Expected expected(Fn f, const Mat<T>& x, int axis, NanPolicy p = NanPolicy::propagate) {
    return ref::apply(x, {axis}, [&](const Slice& s) { return reference<T>(f, s, to_ref(p)); });
}

// Each functor on x along axis, against the reference.
template <class T>
void all_against_ref(const Mat<T>& x, int axis, NanPolicy p = NanPolicy::propagate) {
    for (Fn f : all_fns) {
        INFO(name(f) << " along axis " << axis << ", nan_policy " << normkit::to_string(p));
        check_ref(apply(f, x, axis, p), expected(f, x, axis, p), rel_tol<T>(), abs_tol<T>());
    }
}

// Contiguous (axis 1 of x) and strided (axis 0 of x transposed).
template <class T>
void all_against_ref_both_paths(const Mat<T>& x, NanPolicy p = NanPolicy::propagate) {
    all_against_ref(x, 1, p);
    all_against_ref(transposed(x), 0, p);
}

// ------------------------------------------------------------- degenerate slices

template <class T>
void degenerate_slices() {
    std::vector<double> zeros(37, 0.0), constant(37, 14.62), negative(37, -3.0), mixed(37);
    for (std::size_t i = 0; i < mixed.size(); ++i) mixed[i] = std::sin(double(i));
    INFO((is_float<T> ? "float" : "double"));
    {
        INFO("zero and constant slices next to a regular one");
        all_against_ref_both_paths(rows<T>({zeros, constant, mixed, negative}));
    }
    {
        INFO("single-element slices");
        const Mat<T> x = rows<T>({{0.0}, {2.5}, {-7.0}, {1e-3}, {0.0}});
        all_against_ref(x, 1);
        all_against_ref(transposed(x), 0);
        all_against_ref(x, 0);  // and one 5-element slice, for contrast
    }
}

template <class T>
void constant_exact() {
    INFO((is_float<T> ? "float" : "double"));
    // 14.62 is not representable: a mean computed by summing would not equal it.
    Mat<T> x(1, 1000), xs(1000, 3);
    x.setConstant(T(14.62));
    xs.setConstant(T(14.62));
    const auto all_equal = [](const Mat<T>& y, T v) {
        for (Eigen::Index i = 0; i < y.size(); ++i)
            if (!(y.data()[i] == v)) return false;
        return true;
    };
    const auto all_nan = [](const Mat<T>& y) {
        for (Eigen::Index i = 0; i < y.size(); ++i)
            if (!std::isnan(y.data()[i])) return false;
        return true;
    };
    for (int ddof : {0, 1}) {
        CHECK(all_equal(run(normkit::ZScore<T>{ddof}, x, 1), 0));
        CHECK(all_equal(run(normkit::ZScore<T>{ddof}, xs, 0), 0));
    }
    CHECK(all_equal(run(normkit::MinMax<T>{T(-2), T(5)}, x, 1), T(-2)));
    CHECK(all_equal(run(normkit::MinMax<T>{T(-2), T(5)}, xs, 0), T(-2)));
    CHECK(all_equal(run(normkit::LayerNorm<T>{}, x, 1), 0));
    CHECK(all_equal(run(normkit::LayerNorm<T>{}, xs, 0), 0));

    // LayerNorm of a constant slice is exactly beta, whatever gamma.
    Eigen::Tensor<T, 1> gamma(1000), beta(1000);
    ref::fill_normal(gamma, 5, 1, 1);
    ref::fill_normal(beta, 6, 0, 3);
    Mat<T> y(1, 1000), ys(1000, 3);
    normkit::LayerNorm<T>{}(x, 1, normkit::affine(gamma, beta), y);
    normkit::LayerNorm<T>{}(xs, 0, normkit::affine(gamma, beta), ys);
    bool is_beta = true;
    for (Eigen::Index i = 0; i < 1000; ++i) {
        is_beta = is_beta && y(0, i) == beta(i);
        for (int c = 0; c < 3; ++c) is_beta = is_beta && ys(i, c) == beta(i);
    }
    CHECK(is_beta);

    // epsilon = 0: L1/L2/MaxNorm keep a zero slice zero, RMSNorm and LayerNorm follow 0/0.
    Mat<T> z = rows<T>({std::vector<double>(37, 0.0)}), c3 = rows<T>({std::vector<double>(37, 3.0)});
    for (const Mat<T>& zz : {z, Mat<T>(transposed(z))}) {
        const int axis = zz.dimension(0) == 1 ? 1 : 0;
        CHECK(all_equal(run(normkit::L1Norm<T>{0}, zz, axis), 0));
        CHECK(all_equal(run(normkit::L2Norm<T>{0}, zz, axis), 0));
        CHECK(all_equal(run(normkit::L2Norm<T>{0, true}, zz, axis), 0));
        CHECK(all_equal(run(normkit::MaxNorm<T>{0}, zz, axis), 0));
        CHECK(all_nan(run(normkit::RMSNorm<T>{0}, zz, axis)));
    }
    CHECK(all_nan(run(normkit::LayerNorm<T>{0}, c3, 1)));
    CHECK(all_nan(run(normkit::LayerNorm<T>{0}, Mat<T>(transposed(c3)), 0)));
}

// Moments (ZScore, LayerNorm) leaves min and max out of its batch lanes and
// reduces again, with them, a slice whose spread is within the rounding of a
// constant one (Moments::needs_exact); SumSquares (L2Norm, RMSNorm) leaves
// out max |x| and reduces again a slice whose sum of squares may have
// underflowed. Such slices at every tail length, in both layouts: constants
// (one of them subnormal), zeros, slices one ulp of their mean apart, spread
// below T's epsilon times the mean (the second pass finds them not
// constant), values whose squares underflow, beside regular data.
// The exact outputs of a slice holding at most two values, u apart: its
// deviations from the mean are u * (1 - p) and -u * p, p the share of the
// larger value. (The long double reference cannot resolve double values one
// ulp apart near 1e15: its own ulp there is 1e-4.)
template <class T>
Slice two_valued(Fn f, const Slice& s) {
    const ld lo = *std::min_element(s.begin(), s.end()), hi = *std::max_element(s.begin(), s.end());
    const ld u = hi - lo, p = ld(std::count(s.begin(), s.end(), hi)) / ld(s.size());
    const ld eps = f == Fn::layer_norm ? ld(T(1e-5)) : 0;
    Slice y;
    for (const ld v : s) y.push_back(u == 0 ? 0 : u * ((v == hi ? 1 : 0) - p) / std::sqrt(u * u * p * (1 - p) + eps));
    return y;
}

template <class T>
void near_constant_slices() {
    INFO((is_float<T> ? "float" : "double"));
    const double big = is_float<T> ? 1e6 : 1e15;
    const double ulp = double(std::nextafter(T(big), T(2 * big))) - big;
    for (std::size_t n : {1, 3, 15, 16, 17, 64, 100, 768, 4099}) {
        INFO("slices of " << n);
        std::vector<double> constant(n, 14.62), zeros(n, 0.0);
        std::vector<double> subnormal(n, double(std::numeric_limits<T>::denorm_min()) * 3);
        std::vector<double> one_ulp(n, big), alternating(n, big), regular(n), tiny(n);
        one_ulp[n / 2] = big + ulp;
        for (std::size_t i = 0; i < n; ++i) {
            alternating[i] = big + (i % 2 ? ulp : 0);
            regular[i] = std::cos(double(i)) * 3;
            tiny[i] = (is_float<T> ? 1e-30 : 1e-200) * double(1 + i % 3);
        }
        // Copies: strided, 161, 70 and 115 slices side by side fill whole
        // chunks, a partial chunk and scalar lanes on every target.
        std::vector<std::vector<double>> all, far, near;
        for (int copy = 0; copy < 23; ++copy) {
            for (const auto* r : {&regular, &tiny, &constant, &zeros, &subnormal, &one_ulp, &alternating})
                all.push_back(*r);
            for (const auto* r : {&constant, &zeros, &subnormal, &one_ulp, &alternating})
                near.push_back(*r);
        }
        for (int copy = 0; copy < 70; ++copy) far.push_back(copy % 2 ? tiny : regular);
        // A few flagged slices among 161 regular ones: strided chunks that
        // reduce again only the batches holding them.
        std::vector<std::vector<double>> sparse;
        for (int copy = 0; copy < 161; ++copy) sparse.push_back(copy % 50 == 3 ? zeros : copy % 50 == 20 ? tiny : regular);
        const Mat<T> x = rows<T>(all), spread = rows<T>(far), close = rows<T>(near), few = rows<T>(sparse);
        for (const bool strided : {false, true}) {
            const int axis = strided ? 0 : 1;
            const auto laid = [&](const Mat<T>& m) { return strided ? Mat<T>(transposed(m)) : m; };
            const Mat<T> at = laid(x), close_at = laid(close), spread_at = laid(spread), few_at = laid(few);
            for (Fn f : {Fn::l2, Fn::rms_norm}) {
                INFO(name(f) << " along axis " << axis);
                check_ref(apply(f, at, axis), expected(f, at, axis), rel_tol<T>(), abs_tol<T>());
            }
            for (Fn f : {Fn::l2, Fn::rms_norm, Fn::z_score, Fn::layer_norm}) {
                INFO(name(f) << " along axis " << axis << ", a few zero and tiny slices among regular ones");
                check_ref(apply(f, few_at, axis), expected(f, few_at, axis), rel_tol<T>(), abs_tol<T>());
            }
            for (Fn f : {Fn::z_score, Fn::layer_norm}) {
                INFO(name(f) << " along axis " << axis << ", regular and tiny values");
                check_ref(apply(f, spread_at, axis), expected(f, spread_at, axis), rel_tol<T>(), abs_tol<T>());
            }
            for (Fn f : {Fn::z_score, Fn::layer_norm}) {
                INFO(name(f) << " along axis " << axis << ", one or two values, one ulp apart (exact outputs)");
                const Expected e = ref::apply(close_at, {axis}, [&](const Slice& s) { return two_valued<T>(f, s); });
                check_ref(apply(f, close_at, axis), e, rel_tol<T>(), abs_tol<T>());
            }
        }
    }
}

// ------------------------------------------------------------- NaN policies

// Rows of 37 (at = their row indices): NaN in the SIMD body, NaN in the tail, NaNs first and
// mid-slice, all NaN, a constant slice with NaNs, and a zero-sum slice with a
// NaN (SumToOne degenerate). The other rows are regular data.
template <class T>
Mat<T> nan_rows(Eigen::Index count, const std::array<Eigen::Index, 6>& at, unsigned seed) {
    Mat<T> x(count, 37);
    ref::fill_uniform(x, seed, -1, 3);  // sums well away from 0
    const Eigen::Index body = at[0], tail = at[1], first = at[2], all = at[3], constant = at[4], zero_sum = at[5];
    x(body, 3) = nan<T>();
    x(tail, 36) = nan<T>();
    x(first, 0) = x(first, 20) = nan<T>();
    for (Eigen::Index j = 0; j < 37; ++j) {
        x(all, j) = nan<T>();
        x(constant, j) = j == 5 || j == 36 ? nan<T>() : T(2.5);
        x(zero_sum, j) = j == 36 ? nan<T>() : j % 2 ? T(-1.25) : T(1.25);
    }
    return x;
}

// The index the nan_error message must name: the first NaN in memory order.
template <class T>
std::string first_nan(const Mat<T>& x) {
    for (Eigen::Index i = 0; i < x.dimension(0); ++i)
        for (Eigen::Index j = 0; j < x.dimension(1); ++j)
            if (std::isnan(x(i, j))) return "(" + std::to_string(i) + ", " + std::to_string(j) + ")";
    return "none";
}

template <class T>
bool slice_has_nan(const Mat<T>& x, int axis, Eigen::Index s) {
    for (Eigen::Index k = 0; k < x.dimension(axis); ++k)
        if (std::isnan(axis == 1 ? x(s, k) : x(k, s))) return true;
    return false;
}

template <class T>
void nan_policies(const Mat<T>& x, int axis) {
    const Eigen::Index slices = x.dimension(1 - axis);
    Mat<T> clean = x;  // NaN-free twin: the slices without NaN must not notice the NaNs
    for (Eigen::Index i = 0; i < clean.size(); ++i)
        if (std::isnan(clean.data()[i])) clean.data()[i] = 0;
    for (Fn f : all_fns) {
        INFO(name(f) << " along axis " << axis << " of " << x.dimension(0) << "x" << x.dimension(1));
        for (NanPolicy p : {NanPolicy::propagate, NanPolicy::ignore, NanPolicy::zero}) {
            INFO("nan_policy " << normkit::to_string(p));
            check_ref(apply(f, x, axis, p), expected(f, x, axis, p), rel_tol<T>(), abs_tol<T>());
        }
        {  // propagate: untouched slices are bit-identical to a NaN-free run
            const Mat<T> y = apply(f, x, axis), y_clean = apply(f, clean, axis);
            Eigen::Index differing = 0;
            for (Eigen::Index s = 0; s < slices; ++s) {
                if (slice_has_nan(x, axis, s)) continue;
                for (Eigen::Index k = 0; k < x.dimension(axis); ++k) {
                    const T a = axis == 1 ? y(s, k) : y(k, s), b = axis == 1 ? y_clean(s, k) : y_clean(k, s);
                    differing += !(a == b);
                }
            }
            CHECK(differing == 0);
        }
        {  // raise: throws naming the index, output untouched
            Mat<T> out(x.dimensions());
            out.setConstant(T(777));
            std::string message;
            try {
                apply(f, x, axis, NanPolicy::raise, out);
            } catch (const normkit::nan_error& e) {
                message = e.what();
            }
            INFO("message: " << message);
            CHECK_THAT(message, Catch::Contains(std::string("normkit::") + name(f)));
            CHECK_THAT(message, Catch::Contains("index " + first_nan(x)));
            bool untouched = true;
            for (Eigen::Index i = 0; i < out.size(); ++i) untouched = untouched && out.data()[i] == T(777);
            CHECK(untouched);
            // Without NaNs, raise is propagate.
            const Mat<T> y_raise = apply(f, clean, axis, NanPolicy::raise);
            check_ref(y_raise, Expected(apply(f, clean, axis).template cast<ld>()), 0, 0);
        }
    }
}

template <class T>
void nan_policy_cases() {
    INFO((is_float<T> ? "float" : "double"));
    {
        INFO("contiguous"); nan_policies(nan_rows<T>(8, {0, 2, 3, 4, 5, 6}, 11), 1); }
    // Strided: the NaN slices sit both among the SIMD lanes (columns < 16) and
    // among the scalar leftovers (16..18).
    {
        INFO("strided"); nan_policies(transposed(nan_rows<T>(19, {2, 17, 0, 18, 9, 16}, 12)), 0); }
}

// ------------------------------------------------------------- infinities

template <class T>
void infinities() {
    INFO((is_float<T> ? "float" : "double"));
    const double i = std::numeric_limits<double>::infinity();
    // Every functor against the reference, which encodes the documented IEEE results.
    all_against_ref_both_paths(rows<T>({{i, 1, 2, 3}, {-i, 1, 2, 3}, {i, -i, 1, 2}, {i, i, 1, 2}, {-i, -i, -i, -i},
                                        {i, i, i, i}, {-i, 0.5, -i, 1.5}, {1, 2, 3, 4}}));

    const auto l2 = normkit::L2Norm<T>{};
    check_exact(run(l2, rows<T>({{i, 1}, {-i, 1}, {1, 2}}), 1), {{NAN, 0}, {NAN, 0}, {1 / std::sqrt(5.0), 2 / std::sqrt(5.0)}}, ulps<T>(2));
    check_exact(run(normkit::L1Norm<T>{}, rows<T>({{i, -1}}), 1), {{NAN, -0.0}});
    check_exact(run(normkit::MaxNorm<T>{}, rows<T>({{-i, 1}}), 1), {{NAN, 0}});

    const normkit::Softmax<T> sm_nan{normkit::MaskedSlice::nan}, sm_zero{normkit::MaskedSlice::zeros};
    const normkit::LogSoftmax<T> lsm_nan{normkit::MaskedSlice::nan}, lsm_zero{normkit::MaskedSlice::zeros};
    for (const auto& masked : {rows<T>({{i, 1, 2}, {-i, -i, -i}}), transposed(rows<T>({{i, 1, 2}, {-i, -i, -i}}))}) {
        const int axis = masked.dimension(1) == 3 ? 1 : 0;
        const auto back = [&](const Mat<T>& y) { return axis == 1 ? y : Mat<T>(transposed(y)); };
        check_exact(back(run(sm_nan, masked, axis)), {{NAN, NAN, NAN}, {NAN, NAN, NAN}});
        check_exact(back(run(sm_zero, masked, axis)), {{NAN, NAN, NAN}, {0, 0, 0}});
        check_exact(back(run(lsm_nan, masked, axis)), {{NAN, NAN, NAN}, {NAN, NAN, NAN}});
        check_exact(back(run(lsm_zero, masked, axis)), {{NAN, NAN, NAN}, {0, 0, 0}});
    }

    // Masked attention: -inf positions in the body and the tail are exactly 0
    // (log: -inf); the rest is the softmax of the unmasked entries.
    Mat<T> att(3, 37);
    ref::fill_normal(att, 21, 0, 2);
    for (Eigen::Index j : {0, 4, 17, 33, 36}) att(0, j) = att(2, j) = -inf<T>();
    for (const bool strided : {false, true}) {
        INFO((strided ? "strided" : "contiguous"));
        const Mat<T> x = strided ? Mat<T>(transposed(att)) : att;
        const int axis = strided ? 0 : 1;
        const Mat<T> p = run(sm_zero, x, axis), lp = run(lsm_zero, x, axis);
        bool exact = true;
        for (Eigen::Index k = 0; k < x.size(); ++k)
            if (x.data()[k] == -inf<T>()) exact = exact && p.data()[k] == 0 && lp.data()[k] == -inf<T>();
        CHECK(exact);
        check_ref(p, expected(Fn::softmax, x, axis), rel_tol<T>(), abs_tol<T>());
        check_ref(lp, expected(Fn::log_softmax, x, axis), rel_tol<T>(), abs_tol<T>());
    }
}

template <class T>
void sum_to_one_degenerate() {
    INFO((is_float<T> ? "float" : "double"));
    using normkit::Degenerate;
    const double i = std::numeric_limits<double>::infinity();
    // sum 0; sum +inf; sum -inf; sum NaN (+inf - inf, degenerate too); a regular row
    const Mat<T> x = rows<T>({{1, -1, 2, -2}, {i, 1, 2, 3}, {-i, 1, 2, 3}, {i, -i, 1, 2}, {1, 1, 1, 5}});
    const std::vector<double> regular{0.125, 0.125, 0.125, 0.625};
    for (const bool strided : {false, true}) {
        INFO((strided ? "strided" : "contiguous"));
        const auto go = [&](const normkit::SumToOne<T>& f) {
            return strided ? Mat<T>(transposed(run(f, Mat<T>(transposed(x)), 0))) : run(f, x, 1);
        };
        const std::vector<double> q(4, 0.25), z(4, 0.0), n(4, NAN);
        // A NaN sum from +inf and -inf is "not finite" too: degenerate, not NaN.
        check_exact(go({T(0), Degenerate::uniform}), {q, q, q, q, regular});
        check_exact(go({T(0), Degenerate::zeros}), {z, z, z, z, regular});
        check_exact(go({T(0), Degenerate::nan}), {n, n, n, n, regular});
    }
    // |sum| <= epsilon is degenerate; just above it is not.
    check_exact(run(normkit::SumToOne<T>{T(0.5), Degenerate::zeros}, rows<T>({{0.25, 0.25}, {0.25, 0.375}}), 1),
                {{0, 0}, {0.4, 0.6}}, ulps<T>(2));
    check_exact(run(normkit::SumToOne<T>{T(0.5), Degenerate::uniform}, rows<T>({{-0.25, 0.5}}), 1), {{0.5, 0.5}});
    // add_epsilon: the Keras form x / (sum + eps), with no degenerate handling.
    const normkit::SumToOne<T> keras{T(0.5), Degenerate::nan, true};
    // The last row's sum -0.5 + eps is +0: x / +0 is -inf (the formula taken literally).
    check_exact(run(keras, rows<T>({{1, -1}, {1, 3}, {0, 0}, {-0.25, -0.25}}), 1),
                {{2, -2}, {1 / 4.5, 3 / 4.5}, {0, 0}, {-INFINITY, -INFINITY}}, ulps<T>(2));
    check_exact(run(normkit::SumToOne<T>{T(1), Degenerate::nan, true}, rows<T>({{1, 3}}), 1), {{0.2, 0.6}}, ulps<T>(2));
}

// ------------------------------------------------------------- huge and tiny values

template <class T>
void huge_and_tiny() {
    INFO((is_float<T> ? "float" : "double"));
    // Near the top of the range: sum x^2 (and for L2 even the norm) overflows T.
    const double big = is_float<T> ? 3e38 : 1.7e308;
    Mat<T> x(3, 1000);
    for (Eigen::Index j = 0; j < 1000; ++j) {
        x(0, j) = T(big);
        x(1, j) = T(j % 3 ? -big : big * 0.5);
        x(2, j) = T(big * (0.25 + 0.75 * std::fabs(std::sin(double(j)))));
    }
    const auto few_ulp = [&](const Mat<T>& mx, int axis, Fn f, const auto& functor) {
        INFO(name(f) << " along axis " << axis);
        const Expected e = ref::apply(mx, {axis}, [&](const Slice& s) {
            switch (f) {
                case Fn::l2: return ref::l2(s, 0, false);
                case Fn::rms_norm: return ref::rms_norm(s, 0);
                case Fn::l1: return ref::l1(s, 0);
                case Fn::sum_to_one: return ref::sum_to_one(s, 0, ref::Degenerate::uniform, false);
                case Fn::max_norm: return ref::max_norm(s, 0);
                case Fn::z_score: return ref::z_score(s, 0, 0, false);
                case Fn::layer_norm: return ref::layer_norm(s, 0);
                default: return ref::min_max(s, 0, 1);
            }
        });
        // ZScore/LayerNorm outputs come from a difference (x - mean): a few ulp of the output's scale.
        check_ref(run(functor, mx, axis), e, ulps<T>(4), ulps<T>(4));
    };
    const auto all = [&](const Mat<T>& mx, int axis) {
        few_ulp(mx, axis, Fn::l2, normkit::L2Norm<T>{0});
        few_ulp(mx, axis, Fn::rms_norm, normkit::RMSNorm<T>{0});
        few_ulp(mx, axis, Fn::l1, normkit::L1Norm<T>{0});
        few_ulp(mx, axis, Fn::sum_to_one, normkit::SumToOne<T>{0});
        few_ulp(mx, axis, Fn::max_norm, normkit::MaxNorm<T>{0});
        few_ulp(mx, axis, Fn::z_score, normkit::ZScore<T>{});
        few_ulp(mx, axis, Fn::layer_norm, normkit::LayerNorm<T>{0});
        few_ulp(mx, axis, Fn::min_max, normkit::MinMax<T>{});
    };
    {
        INFO("near max, contiguous"); all(x, 1); }
    {
        INFO("near max, strided"); all(transposed(x), 0); }

    // Subnormals, epsilon 0: squares underflow to zero in T.
    const double tiny = is_float<T> ? 1e-40 : 1e-310;
    Mat<T> s(3, 37);
    for (Eigen::Index j = 0; j < 37; ++j) {
        s(0, j) = T(tiny);
        s(1, j) = T(tiny * ((j % 5) - 2));
        s(2, j) = j == 36 ? std::numeric_limits<T>::denorm_min() : T(0);
    }
    {
        INFO("subnormal, contiguous"); all(s, 1); }
    {
        INFO("subnormal, strided"); all(transposed(s), 0); }

    {
        INFO("exact values");
        // x / sqrt(n) for n equal elements; MinMax across a range wider than T's maximum.
        check_ref(run(normkit::L2Norm<T>{0}, Mat<T>(x.slice(Eigen::array<Eigen::Index, 2>{0, 0},
                                                             Eigen::array<Eigen::Index, 2>{1, 1000})), 1),
                  Expected(Expected(1, 1000).setConstant(1 / std::sqrt(1000.0L))), ulps<T>(4), 0);
        check_exact(run(normkit::RMSNorm<T>{}, rows<T>({{big, big, -big}}), 1), {{1, 1, -1}}, ulps<T>(2));
        check_exact(run(normkit::L2Norm<T>{0}, rows<T>({{0, 0, double(std::numeric_limits<T>::denorm_min())}}), 1),
                    {{0, 0, 1}}, ulps<T>(2));
        check_exact(run(normkit::MinMax<T>{}, rows<T>({{-big, 0, big, big / 2}}), 1), {{0, 0.5, 1, 0.75}}, ulps<T>(2));
        check_exact(run(normkit::MinMax<T>{T(-1), T(1)}, rows<T>({{-big, 0, big}}), 1), {{-1, 0, 1}}, ulps<T>(2));
        check_exact(run(normkit::ZScore<T>{}, rows<T>({{big, -big, big, -big}}), 1), {{1, -1, 1, -1}}, ulps<T>(2));
        check_exact(run(normkit::MaxNorm<T>{}, rows<T>({{big, -big / 2}}), 1), {{1, -0.5}}, ulps<T>(2));
    }

    {
        INFO("clamp_squared (TensorFlow form)");
        // x * rsqrt(max(sum x^2, eps)): eps clamps the squared norm, not the norm.
        const normkit::L2Norm<T> tf{T(1e-2), true}, pt{T(1e-2), false};
        const Mat<T> small = rows<T>({{3e-2, 4e-2}, {3, 4}, {0, 0}});
        const Expected e_tf = ref::apply(small, {1}, [](const Slice& v) { return ref::l2(v, T(1e-2), true); });
        const Expected e_pt = ref::apply(small, {1}, [](const Slice& v) { return ref::l2(v, T(1e-2), false); });
        check_ref(run(tf, small, 1), e_tf, ulps<T>(4), 0);
        check_ref(run(pt, small, 1), e_pt, ulps<T>(4), 0);
        CHECK(std::fabs(run(tf, small, 1)(0, 0) - 0.3) < 1e-6);  // sqrt(max(0.0025, 0.01)) = 0.1
        CHECK(std::fabs(run(pt, small, 1)(0, 0) - 0.6) < 1e-6);  // norm 0.05 > 0.01
        few_ulp(x, 1, Fn::l2, normkit::L2Norm<T>{0, true});
        few_ulp(s, 1, Fn::l2, normkit::L2Norm<T>{0, true});
    }
}

// ------------------------------------------------------------- large offsets

template <class T>
void offset_case(double offset, double sd, unsigned seed) {
    INFO((is_float<T> ? "float" : "double") << ": " << offset << " + " << sd << " * N(0,1)");
    Mat<T> x(2, 4099);  // a row per slice; 4099 is odd for every SIMD width
    ref::fill_normal(x, seed, offset, sd);
    const normkit::ZScore<T> zs{};
    const normkit::LayerNorm<T> ln{T(0)};  // no epsilon, so std 1 is exact in theory
    for (const bool strided : {false, true}) {
        INFO((strided ? "strided" : "contiguous"));
        const Mat<T> in = strided ? Mat<T>(transposed(x)) : x;
        const int axis = strided ? 0 : 1;
        for (const bool layer : {false, true}) {
            INFO((layer ? "LayerNorm" : "ZScore"));
            const Mat<T> y = layer ? run(ln, in, axis) : run(zs, in, axis);
            const Expected e = ref::apply(in, {axis}, [&](const Slice& s) {
                return layer ? ref::layer_norm(s, 0) : ref::z_score(s, 0, 0, false);
            });
            // float: the mean is kept in double and its low part folded into the map, so the
            // O(1) outputs are good to a few ulp. double: the mean itself is a double, whose
            // rounding (~1-2 ulp of the offset) shows in the output divided by sd.
            const ld mean_ulps = is_float<T> ? 0 : 2 * offset * ulps<T>(1) / sd;
            check_ref(y, e, rel_tol<T>(), abs_tol<T>() + mean_ulps);
            ref::apply(y, {axis}, [&](const Slice& s) {
                const ld m = std::accumulate(s.begin(), s.end(), 0.0L) / s.size();
                ld v = 0;
                for (ld e : s) v += (e - m) * (e - m);
                CHECK(std::fabs(m) < 1e-5L + mean_ulps);
                CHECK(std::fabs(std::sqrt(v / s.size()) - 1) < 1e-5L);
                return s;
            });
        }
    }
}

// ------------------------------------------------------------- long slices

template <class T>
void long_slice(const Mat<T>& x, int axis) {
    INFO("axis " << axis << " of " << x.dimension(0) << "x" << x.dimension(1));
    // Float tolerances: 1e-6 relative is ~10 ulp, far below the ~1e-2 error of a
    // naive float running sum over 10^6 elements.
    const ld rel = 1e-6L;
    check_ref(run(normkit::SumToOne<T>{}, x, axis), expected(Fn::sum_to_one, x, axis), rel, 0);
    check_ref(run(normkit::L2Norm<T>{}, x, axis), expected(Fn::l2, x, axis), rel, 0);
    check_ref(run(normkit::ZScore<T>{}, x, axis), expected(Fn::z_score, x, axis), rel, 1e-6L);
    check_ref(run(normkit::Softmax<T>{}, x, axis), expected(Fn::softmax, x, axis), 2e-6L, 0);  // exp: 1.5 ulp
}

}  // namespace

TEST_CASE("edge: zero constant and single-element slices", "[edge]") {
    degenerate_slices<float>();
    degenerate_slices<double>();
}

TEST_CASE("edge: constant slices give exact values", "[edge]") {
    constant_exact<float>();
    constant_exact<double>();
}

TEST_CASE("edge: slices too narrow to tell from a constant one", "[edge]") {
    near_constant_slices<float>();
    near_constant_slices<double>();
}

TEST_CASE("edge: NaN policies for every functor", "[edge]") {
    nan_policy_cases<float>();
    nan_policy_cases<double>();
}

TEST_CASE("edge: infinities under propagate", "[edge]") {
    infinities<float>();
    infinities<double>();
}

TEST_CASE("edge: SumToOne degenerate slices and add_epsilon", "[edge]") {
    sum_to_one_degenerate<float>();
    sum_to_one_degenerate<double>();
}

TEST_CASE("edge: values near the ends of the range", "[edge]") {
    huge_and_tiny<float>();
    huge_and_tiny<double>();
}

TEST_CASE("edge: large offsets", "[edge]") {
    offset_case<float>(1e4, 1e-2, 31);
    offset_case<float>(1e6, 1, 32);
    offset_case<double>(1e12, 1, 33);
    offset_case<double>(1e6, 1e-6, 34);

    // Exact: mean 40001.5, population std sqrt(1.25).
    const auto x = rows<float>({{40000, 40001, 40002, 40003}});
    const Expected e = ref::apply(x, {1}, [](const Slice& s) { return ref::z_score(s, 0, 0, false); });
    check_ref(run(normkit::ZScore<float>{}, x, 1), e, ulps<float>(2), 0);
    CHECK(std::fabs(e(0, 0) + 3 / std::sqrt(5.0L)) < 1e-15L);
    check_ref(run(normkit::LayerNorm<float>{0}, x, 1), e, ulps<float>(2), 0);
}

TEST_CASE("edge: 10^6-element slices", "[edge]") {
    Mat<float> tenths(1, 1000000);
    tenths.setConstant(0.1f);
    const Mat<float> y = run(normkit::SumToOne<float>{}, tenths, 1);
    ld total = 0, worst = 0;
    for (Eigen::Index i = 0; i < y.size(); ++i) {
        total += y.data()[i];
        worst = std::max(worst, std::fabs(y.data()[i] * 1e6L - 1));
    }
    INFO("worst relative error " << static_cast<double>(worst) << ", sum " << static_cast<double>(total));
    CHECK(worst < 1e-6L);
    CHECK(std::fabs(total - 1) < 1e-6L);

    Mat<float> x(1, 1000000), xs(1000000, 3);
    ref::fill_uniform(x, 41, 0, 5);
    ref::fill_uniform(xs, 42, 0, 5);
    long_slice(x, 1);
    long_slice(xs, 0);
}
