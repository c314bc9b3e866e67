// Mathematical properties every functor's output must satisfy, checked on
// random tensors of several shapes, both layouts, float and double, along
// contiguous, strided and multi-axis slices. The properties are computed in
// long double from the library's own output, so they are independent of the
// reference implementation.
#include <catch2/catch.hpp>

#include <normkit/normkit.hpp>

#include "engine_instances.hpp"

#include "reference.hpp"

#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <type_traits>
#include <vector>

namespace {

using ref::Slice;
using ld = long double;

template <class T>
constexpr ld tol() {  // a few ulp of accumulated rounding over a slice
    return std::is_same<T, float>::value ? 1e-5L : 1e-12L;
}

normkit::Axes make_axes(const std::vector<int>& a) {
    return a.size() == 1 ? normkit::Axes(a[0]) : normkit::Axes{a[0], a[1]};
}

std::string axes_str(const std::vector<int>& a) {
    std::string s;
    for (int v : a) s += (s.empty() ? "" : ",") + std::to_string(v);
    return "{" + s + "}";
}

// Calls `f` on every slice of `t` over `axes` (ref::apply does the gathering;
// std::function keeps ref::apply to one instantiation per tensor type).
template <class T, int L>
void for_each_slice(const Eigen::Tensor<T, 3, L>& t, const std::vector<int>& axes,
                    const std::function<void(const Slice&)>& f) {
    ref::apply(t, axes, std::function<Slice(const Slice&)>([&](const Slice& s) {
                   f(s);
                   return s;
               }));
}

ld sum(const Slice& s) {
    ld r = 0;
    for (ld v : s) r += v;
    return r;
}

ld mean(const Slice& s) { return sum(s) / static_cast<ld>(s.size()); }

ld central_sq(const Slice& s) {
    const ld m = mean(s);
    ld r = 0;
    for (ld v : s) r += (v - m) * (v - m);
    return r;
}

// Tracks the largest |value - target| over all slices and reports it once.
struct Worst {
    ld err = 0;
    void see(ld value, ld target) {
        const ld e = std::isnan(value) ? std::numeric_limits<ld>::infinity() : std::fabs(value - target);
        err = std::max(err, e);
    }
};

template <class T, int L>
void expect_same(const Eigen::Tensor<T, 3, L>& again, const Eigen::Tensor<T, 3, L>& once, ld rel, ld abs) {
    const Eigen::Tensor<long double, 3, L> expected = once.template cast<long double>();
    const auto r = ref::compare(again, expected, rel, abs);
    INFO(r.message);
    CHECK(r.ok);
}

template <class T, int L>
void check_properties() {
    using Tn = Eigen::Tensor<T, 3, L>;
    using normkit::NanPolicy;
    const ld eps_t = tol<T>();
    const std::array<std::array<Eigen::Index, 3>, 4> shapes{{{4, 5, 6}, {3, 37, 2}, {2, 3, 19}, {1, 70, 1}}};
    const std::vector<std::vector<int>> axes_sets{{0}, {1}, {2}, {0, 1}, {1, 2}};
    unsigned seed = 100;
    for (const auto& shape : shapes) {
        for (const auto& axes_v : axes_sets) {
            const normkit::Axes axes = make_axes(axes_v);
            INFO("shape (" << shape[0] << "," << shape[1] << "," << shape[2] << ") axes " << axes_str(axes_v)
                           << (L == Eigen::RowMajor ? " RowMajor" : " ColMajor"));
            Tn x(shape[0], shape[1], shape[2]), pos(shape[0], shape[1], shape[2]);
            ref::fill_normal(x, seed++, 0.5, 2.0);
            ref::fill_uniform(pos, seed++, 0.1, 2.0);  // SumToOne needs sums away from 0

            {  // SumToOne: slices sum to 1; applying it again changes nothing.
                const normkit::SumToOne<T> f{};
                const Tn y = f(pos, axes);
                Worst w;
                for_each_slice(y, axes_v, [&](const Slice& s) { w.see(sum(s), 1); });
                INFO("SumToOne worst |sum - 1| = " << static_cast<double>(w.err));
                CHECK(w.err <= eps_t);
                expect_same(Tn(f(y, axes)), y, eps_t, 0);
            }
            {  // L1: sum |y| = 1, sign preserved.
                const Tn y = normkit::L1Norm<T>{}(x, axes);
                Worst w;
                for_each_slice(y, axes_v, [&](const Slice& s) {
                    ld a = 0;
                    for (ld v : s) a += std::fabs(v);
                    w.see(a, 1);
                });
                INFO("L1 worst |sum|y| - 1| = " << static_cast<double>(w.err));
                CHECK(w.err <= eps_t);
                Eigen::Index flipped = 0;
                for (Eigen::Index i = 0; i < x.size(); ++i) flipped += x.data()[i] * y.data()[i] < 0;
                CHECK(flipped == 0);
            }
            {  // L2: unit norm; idempotent.
                const normkit::L2Norm<T> f{};
                const Tn y = f(x, axes);
                Worst w;
                for_each_slice(y, axes_v, [&](const Slice& s) {
                    ld q = 0;
                    for (ld v : s) q += v * v;
                    w.see(std::sqrt(q), 1);
                });
                INFO("L2 worst |norm - 1| = " << static_cast<double>(w.err));
                CHECK(w.err <= eps_t);
                expect_same(Tn(f(y, axes)), y, eps_t, eps_t * 1e-3L);
            }
            {  // MaxNorm: max |y| = 1 (to rounding of x * (1/max)); idempotent.
                const normkit::MaxNorm<T> f{};
                const Tn y = f(x, axes);
                Worst w;
                for_each_slice(y, axes_v, [&](const Slice& s) {
                    ld m = 0;
                    for (ld v : s) m = std::max(m, std::fabs(v));
                    w.see(m, 1);
                });
                INFO("MaxNorm worst |max|y| - 1| = " << static_cast<double>(w.err));
                CHECK(w.err <= 4 * std::numeric_limits<T>::epsilon());
                expect_same(Tn(f(y, axes)), y, eps_t, eps_t * 1e-3L);
            }
            for (const auto& range : {std::array<T, 2>{0, 1}, std::array<T, 2>{-1, 1}, std::array<T, 2>{-3, T(7.5)}}) {
                // MinMax: min -> lo exactly, max -> hi (to rounding), nothing outside; idempotent.
                const normkit::MinMax<T> f{range[0], range[1]};
                const Tn y = f(x, axes);
                const ld lo = range[0], hi = range[1], ulp_hi = 4 * std::numeric_limits<T>::epsilon() * (hi - lo);
                ld worst_min = 0, worst_max = 0, below = 0, above = 0;
                for_each_slice(y, axes_v, [&](const Slice& s) {
                    if (s.size() < 2) return;  // a one-element slice is constant -> lo
                    const auto mm = std::minmax_element(s.begin(), s.end());
                    worst_min = std::max(worst_min, std::fabs(*mm.first - lo));
                    worst_max = std::max(worst_max, std::fabs(*mm.second - hi));
                    below = std::max(below, lo - *mm.first);
                    above = std::max(above, *mm.second - hi);
                });
                INFO("MinMax [" << static_cast<double>(lo) << ", " << static_cast<double>(hi) << "]: worst |min - lo| "
                                << static_cast<double>(worst_min) << ", |max - hi| " << static_cast<double>(worst_max)
                                << ", overshoot " << static_cast<double>(above));
                CHECK(worst_min == 0);
                CHECK(below <= 0);
                CHECK(worst_max <= ulp_hi);
                CHECK(above <= ulp_hi);
                expect_same(Tn(f(y, axes)), y, eps_t, eps_t * (hi - lo));
            }
            Eigen::Index n = 1;
            for (int a : axes_v) n *= shape[a];
            for (int ddof : {0, 1}) {  // ZScore: mean 0, std (same ddof) 1; idempotent.
                if (ddof >= n) continue;  // an option_error, tested elsewhere
                const normkit::ZScore<T> f{ddof};
                const Tn y = f(x, axes);
                Worst wm, ws;
                for_each_slice(y, axes_v, [&](const Slice& s) {
                    wm.see(mean(s), 0);
                    if (s.size() > 1) ws.see(std::sqrt(central_sq(s) / (static_cast<ld>(s.size()) - ddof)), 1);
                });
                INFO("ZScore ddof " << ddof << ": worst |mean| " << static_cast<double>(wm.err) << ", |std - 1| "
                                    << static_cast<double>(ws.err));
                CHECK(wm.err <= eps_t);
                CHECK(ws.err <= eps_t);
                expect_same(Tn(f(y, axes)), y, 10 * eps_t, 10 * eps_t);  // second pass re-rounds a unit-scale slice
            }
            {  // LayerNorm: mean 0, population variance var/(var+eps) (eps large enough to matter).
                const T eps = T(0.25);
                const Tn y = normkit::LayerNorm<T>{eps}(x, axes);
                std::vector<ld> var_x;
                for_each_slice(x, axes_v, [&](const Slice& s) { var_x.push_back(central_sq(s) / s.size()); });
                Worst wm, wv;
                std::size_t k = 0;
                for_each_slice(y, axes_v, [&](const Slice& s) {
                    const ld v = var_x[k++];
                    wm.see(mean(s), 0);
                    wv.see(central_sq(s) / s.size(), v / (v + eps));
                });
                INFO("LayerNorm: worst |mean| " << static_cast<double>(wm.err) << ", |var - var/(var+eps)| "
                                                << static_cast<double>(wv.err));
                CHECK(wm.err <= eps_t);
                CHECK(wv.err <= eps_t);
            }
            {  // RMSNorm: mean(y^2) = ms/(ms+eps).
                const T eps = T(0.25);
                const Tn y = normkit::RMSNorm<T>{eps}(x, axes);
                std::vector<ld> ms_x;
                for_each_slice(x, axes_v, [&](const Slice& s) {
                    ld q = 0;
                    for (ld v : s) q += v * v;
                    ms_x.push_back(q / s.size());
                });
                Worst w;
                std::size_t k = 0;
                for_each_slice(y, axes_v, [&](const Slice& s) {
                    const ld ms = ms_x[k++];
                    ld q = 0;
                    for (ld v : s) q += v * v;
                    w.see(q / s.size(), ms / (ms + eps));
                });
                INFO("RMSNorm worst |mean(y^2) - ms/(ms+eps)| = " << static_cast<double>(w.err));
                CHECK(w.err <= eps_t);
            }
            {  // Softmax sums to 1 within [0, 1]; exp(LogSoftmax) sums to 1 and equals log(softmax).
                Tn xs = x * T(4);  // wider spread: probabilities from ~1e-10 to ~1
                const Tn p = normkit::Softmax<T>{}(xs, axes);
                const Tn lp = normkit::LogSoftmax<T>{}(xs, axes);
                Worst w, wl;
                bool in_unit = true, non_positive = true;
                for_each_slice(p, axes_v, [&](const Slice& s) {
                    w.see(sum(s), 1);
                    for (ld v : s) in_unit = in_unit && v >= 0 && v <= 1;
                });
                for_each_slice(lp, axes_v, [&](const Slice& s) {
                    ld e = 0;
                    for (ld v : s) {
                        e += std::exp(v);
                        non_positive = non_positive && v <= 0;
                    }
                    wl.see(e, 1);
                });
                INFO("Softmax worst |sum - 1| " << static_cast<double>(w.err) << "; exp(LogSoftmax) "
                                                << static_cast<double>(wl.err));
                CHECK(in_unit);
                CHECK(non_positive);
                CHECK(w.err <= eps_t);
                CHECK(wl.err <= eps_t);
                // log(p) has absolute error = relative error of p, plus rounding of |lp| itself.
                const Tn log_p = p.log();
                expect_same(log_p, lp, 8 * std::numeric_limits<T>::epsilon(), 8 * std::numeric_limits<T>::epsilon());
            }
        }
    }
}

}  // namespace

TEST_CASE("properties: float RowMajor", "[properties]") { check_properties<float, Eigen::RowMajor>(); }
TEST_CASE("properties: float ColMajor", "[properties]") { check_properties<float, Eigen::ColMajor>(); }
TEST_CASE("properties: double RowMajor", "[properties]") { check_properties<double, Eigen::RowMajor>(); }
TEST_CASE("properties: double ColMajor", "[properties]") { check_properties<double, Eigen::ColMajor>(); }
