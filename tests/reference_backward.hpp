// Independent long-double reference for the BACKWARD passes of the normkit
// functors (vector-Jacobian products dx = J^T dy, per slice).
//
// Written from the backward spec only (no normkit code is used or included):
// every formula and guard rule is spelled out with plain loops in long double,
// next to the forward reference (reference.hpp), whose policies and slice
// conventions it shares. It also adds the forwards reference.hpp lacks:
// PowerNorm, and Softmax / LogSoftmax with a temperature.
//
// `saved` is the forward's input x, except for softmax / log_softmax, whose
// backward takes the forward's OUTPUT y (as normkit's backward does).
//
// NaN rules (spec): under NanPolicy::ignore / zero a slice's statistics and
// sums run over the positions where `saved` is not NaN (n counts them), and dx
// is 0 at the NaN positions of `saved` whatever dy holds there; under propagate
// a slice with a NaN in `saved` gives NaN dx everywhere in that slice.
//
// Points the spec leaves open, and what this reference does (each one is
// named in the tests that depend on it):
//  * L2Norm clamp_squared with epsilon = 0 on a zero slice: the forward writes
//    zeros (the zero-slice rule), so dx = 0 as for the unclamped form (the
//    literal "dy / sqrt(eps)" would be dy / 0).
//  * MaxNorm / PowerNorm with an infinite element: a NaN slice, as the spec
//    says for L1Norm / L2Norm (the literal formulas give NaN as well).
//  * Softmax / LogSoftmax under ignore / zero with a fully masked slice
//    written as NaN: every position of `saved` is NaN, so the NaN rule gives
//    dx = 0 (under propagate: NaN, as the spec says).
//  * LayerNorm / RMSNorm dgamma / dbeta for a slice that propagate poisons
//    (a NaN in x): the literal formulas, i.e. NaN contributions to dgamma
//    (dy * xh with xh NaN) but dy to dbeta (nothing is skipped under
//    propagate), although the slice's forward output is NaN whatever beta is.
//  * Anything else about infinite inputs (MinMax, ZScore, LayerNorm, RMSNorm):
//    the formulas are evaluated literally.
#pragma once

#include "reference.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <vector>

namespace ref {

namespace bwd {

inline long double qnan() { return std::numeric_limits<long double>::quiet_NaN(); }

inline long double sign(long double v) { return v > 0 ? 1.0L : (v < 0 ? -1.0L : 0.0L); }

inline long double dot(const Slice& a, const Slice& b) {
    long double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

inline bool any_infinite(const Slice& v) {
    return std::any_of(v.begin(), v.end(), [](long double e) { return std::isinf(e); });
}

inline bool all_equal(const Slice& v) {
    return std::all_of(v.begin(), v.end(), [&](long double e) { return e == v[0]; });
}

// The non-NaN positions of `saved` with the matching dy (and gamma) entries.
struct Valid {
    std::vector<std::size_t> pos;
    Slice x, dy, gamma;
};

inline Valid gather(const Slice& saved, const Slice& dy, const Slice* gamma) {
    if (dy.size() != saved.size()) throw std::invalid_argument("ref: dy length differs from the slice length");
    if (gamma && gamma->size() != saved.size())
        throw std::invalid_argument("ref: gamma length differs from the slice length");
    Valid v;
    for (std::size_t i = 0; i < saved.size(); ++i) {
        if (std::isnan(saved[i])) continue;
        v.pos.push_back(i);
        v.x.push_back(saved[i]);
        v.dy.push_back(dy[i]);
        v.gamma.push_back(gamma ? (*gamma)[i] : 1.0L);
    }
    return v;
}

// Applies a backward kernel (dx of a NaN-free, non-empty slice) under the
// spec's NaN rules.
template <class Kernel>
Slice with_policy(const Slice& saved, const Slice& dy, NanPolicy policy, Kernel kernel) {
    const Valid v = gather(saved, dy, nullptr);
    if (v.pos.size() < saved.size() && policy == NanPolicy::propagate) return Slice(saved.size(), qnan());
    Slice dx(saved.size(), 0.0L);  // NaN positions: 0
    if (v.pos.empty()) return dx;
    const Slice d = kernel(v.x, v.dy);
    if (d.size() != v.x.size()) throw std::logic_error("ref: backward kernel changed the length");
    for (std::size_t j = 0; j < v.pos.size(); ++j) dx[v.pos[j]] = d[j];
    return dx;
}

// v * factor, elementwise.
inline Slice scaled(Slice v, long double factor) {
    for (long double& e : v) e *= factor;
    return v;
}

}  // namespace bwd

// ---------------------------------------------------------------- new forwards

// PowerNorm: y = x / max((sum |x|^p)^(1/p), eps); a zero slice with eps = 0
// stays zero (as L2Norm). p >= 1.
inline Slice power_norm(const Slice& x, long double p, long double eps, NanPolicy nan = NanPolicy::propagate) {
    return detail::with_policy(x, nan, [&](const Slice& v) {
        long double s = 0;
        for (long double e : v) s += std::pow(std::fabs(e), p);
        return detail::divide_or_zero(v, std::max(std::pow(s, 1.0L / p), eps));
    });
}

// Softmax / LogSoftmax with a temperature: the plain forms of reference.hpp
// applied to (x - m) / temperature, m the slice's largest finite value (both
// are unchanged by a shift, and x / temperature itself would be rounded to
// 2^-64 of |x / temperature|: 2e-13 relative at x = 1e6, t = 0.3).
// -inf and NaN stay what they are.
namespace detail {
inline Slice scaled_logits(const Slice& x, long double temperature) {
    long double m = -std::numeric_limits<long double>::infinity();
    for (long double e : x)
        if (std::isfinite(e)) m = std::max(m, e);
    Slice s = x;
    for (long double& e : s) e = (std::isfinite(m) ? e - m : e) / temperature;
    return s;
}
}  // namespace detail

inline Slice softmax(const Slice& x, MaskedSlice masked, NanPolicy nan, long double temperature) {
    return softmax(detail::scaled_logits(x, temperature), masked, nan);
}

inline Slice log_softmax(const Slice& x, MaskedSlice masked, NanPolicy nan, long double temperature) {
    return log_softmax(detail::scaled_logits(x, temperature), masked, nan);
}

// ---------------------------------------------------------------- backward slice functions
// Each returns dx for one slice: saved (x, or y for the softmax family) and dy.

// s = sum x, y = x/s: dx = (dy - sum dy*y) / s. add_epsilon: d = s + eps in
// place of s. Degenerate (|s| <= eps or s not finite, without add_epsilon):
// 0 for uniform / zeros, NaN for nan.
inline Slice sum_to_one_backward(const Slice& x, const Slice& dy, long double eps, Degenerate degenerate,
                                 bool add_epsilon, NanPolicy nan = NanPolicy::propagate) {
    return bwd::with_policy(x, dy, nan, [&](const Slice& v, const Slice& g) {
        const long double s = detail::sum(v);
        if (!add_epsilon && (!std::isfinite(s) || std::fabs(s) <= eps))
            return Slice(v.size(), degenerate == Degenerate::nan ? bwd::qnan() : 0.0L);
        const long double d = add_epsilon ? s + eps : s;
        long double gy = 0;
        for (std::size_t i = 0; i < v.size(); ++i) gy += g[i] * (v[i] / d);
        Slice dx(v.size());
        for (std::size_t i = 0; i < v.size(); ++i) dx[i] = (g[i] - gy) / d;
        return dx;
    });
}

// N = sum |x|. N > eps: dx = dy/N - sign(x) (sum dy*x) / N^2; N <= eps with
// eps > 0: dy/eps; zero slice with eps = 0: 0; an infinite element: NaN.
inline Slice l1_backward(const Slice& x, const Slice& dy, long double eps, NanPolicy nan = NanPolicy::propagate) {
    return bwd::with_policy(x, dy, nan, [&](const Slice& v, const Slice& g) {
        if (bwd::any_infinite(v)) return Slice(v.size(), bwd::qnan());
        long double N = 0;
        for (long double e : v) N += std::fabs(e);
        if (N > eps) {
            const long double gx = bwd::dot(g, v);
            Slice dx(v.size());
            for (std::size_t i = 0; i < v.size(); ++i) dx[i] = g[i] / N - bwd::sign(v[i]) * gx / (N * N);
            return dx;
        }
        return eps > 0 ? bwd::scaled(g, 1.0L / eps) : Slice(v.size(), 0.0L);
    });
}

// The p-norm family (L2 = p 2): N > eps (clamp_squared: S = N^p > eps):
// dx = dy/N - sign(x)|x|^(p-1) (sum dy*x) / N^(p+1); otherwise dy/eps
// (clamp_squared: dy/sqrt(eps)); a zero slice with eps = 0: 0; an infinite
// element: NaN.
namespace bwd {
inline Slice p_norm_backward(const Slice& x, const Slice& dy, long double p, long double eps, bool clamp_squared,
                             NanPolicy nan) {
    return with_policy(x, dy, nan, [&](const Slice& v, const Slice& g) {
        if (any_infinite(v)) return Slice(v.size(), qnan());
        long double S = 0;
        for (long double e : v) S += p == 2 ? e * e : std::pow(std::fabs(e), p);
        const long double N = p == 2 ? std::sqrt(S) : std::pow(S, 1.0L / p);
        if (clamp_squared ? S > eps : N > eps) {
            const long double gx = dot(g, v);
            const long double Np1 = p == 2 ? N * N * N : std::pow(N, p + 1);
            Slice dx(v.size());
            for (std::size_t i = 0; i < v.size(); ++i) {
                const long double a = std::fabs(v[i]);
                const long double ap = p == 2 ? a : (a == 0 ? 0.0L : std::pow(a, p - 1));
                dx[i] = g[i] / N - sign(v[i]) * ap * gx / Np1;
            }
            return dx;
        }
        if (eps == 0) return Slice(v.size(), 0.0L);  // a zero slice: the output stays zero
        return scaled(g, 1.0L / (clamp_squared ? std::sqrt(eps) : eps));
    });
}
}  // namespace bwd

inline Slice l2_backward(const Slice& x, const Slice& dy, long double eps, bool clamp_squared,
                         NanPolicy nan = NanPolicy::propagate) {
    return bwd::p_norm_backward(x, dy, 2, eps, clamp_squared, nan);
}

inline Slice power_norm_backward(const Slice& x, const Slice& dy, long double p, long double eps,
                                 NanPolicy nan = NanPolicy::propagate) {
    return bwd::p_norm_backward(x, dy, p, eps, false, nan);
}

// M = max |x|. M > eps: dx = dy/M - (sum dy*x)/M^2 * sign(x_i) [|x_i| = M] / c
// (c entries with |x| = M share the gradient); M <= eps, eps > 0: dy/eps; a
// zero slice with eps = 0: 0; an infinite element: NaN.
inline Slice max_norm_backward(const Slice& x, const Slice& dy, long double eps,
                               NanPolicy nan = NanPolicy::propagate) {
    return bwd::with_policy(x, dy, nan, [&](const Slice& v, const Slice& g) {
        if (bwd::any_infinite(v)) return Slice(v.size(), bwd::qnan());
        long double M = 0;
        for (long double e : v) M = std::max(M, std::fabs(e));
        if (M > eps) {
            long double c = 0;
            for (long double e : v) c += std::fabs(e) == M ? 1 : 0;
            const long double gx = bwd::dot(g, v);
            Slice dx(v.size());
            for (std::size_t i = 0; i < v.size(); ++i)
                dx[i] = g[i] / M - (std::fabs(v[i]) == M ? gx / (M * M) * bwd::sign(v[i]) / c : 0.0L);
            return dx;
        }
        return eps > 0 ? bwd::scaled(g, 1.0L / eps) : Slice(v.size(), 0.0L);
    });
}

// r = (hi-lo)/(M-m), u = (x-m)/(M-m):
// dx_i = r dy_i - [x_i = m]/c_m r sum dy(1-u) - [x_i = M]/c_M r sum dy u;
// a constant slice: 0.
inline Slice min_max_backward(const Slice& x, const Slice& dy, long double lo, long double hi,
                              NanPolicy nan = NanPolicy::propagate) {
    return bwd::with_policy(x, dy, nan, [&](const Slice& v, const Slice& g) {
        const long double m = *std::min_element(v.begin(), v.end());
        const long double M = *std::max_element(v.begin(), v.end());
        if (m == M) return Slice(v.size(), 0.0L);
        const long double r = (hi - lo) / (M - m);
        long double cm = 0, cM = 0, to_min = 0, to_max = 0;
        for (std::size_t i = 0; i < v.size(); ++i) {
            const long double u = (v[i] - m) / (M - m);
            to_min += g[i] * (1 - u);
            to_max += g[i] * u;
            cm += v[i] == m ? 1 : 0;
            cM += v[i] == M ? 1 : 0;
        }
        Slice dx(v.size());
        for (std::size_t i = 0; i < v.size(); ++i)
            dx[i] = r * g[i] - (v[i] == m ? r * to_min / cm : 0.0L) - (v[i] == M ? r * to_max / cM : 0.0L);
        return dx;
    });
}

// k = n - ddof, sigma = sqrt(sum (x-mu)^2 / k), xh = (x-mu)/sigma:
//   dx = (dy - mean(dy) - xh (sum dy*xh) / k) / sigma;
// add_epsilon (d = sigma + eps):
//   dx = (dy - mean(dy))/d - (x-mu)(sum dy(x-mu)) / (k sigma d^2),
//   a constant slice: (dy - mean(dy))/eps;
// a constant slice or sigma <= eps without add_epsilon: 0; k <= 0: NaN.
inline Slice z_score_backward(const Slice& x, const Slice& dy, int ddof, long double eps, bool add_epsilon,
                              NanPolicy nan = NanPolicy::propagate) {
    return bwd::with_policy(x, dy, nan, [&](const Slice& v, const Slice& g) {
        const long double n = static_cast<long double>(v.size()), k = n - ddof;
        if (k <= 0) return Slice(v.size(), bwd::qnan());
        const long double mg = detail::mean(g);
        Slice dx(v.size());
        if (bwd::all_equal(v)) {
            for (std::size_t i = 0; i < v.size(); ++i) dx[i] = add_epsilon ? (g[i] - mg) / eps : 0.0L;
            return dx;
        }
        const long double mu = detail::mean(v);
        long double ss = 0, gc = 0;
        for (std::size_t i = 0; i < v.size(); ++i) {
            ss += (v[i] - mu) * (v[i] - mu);
            gc += g[i] * (v[i] - mu);
        }
        const long double sigma = std::sqrt(ss / k);
        if (add_epsilon) {
            const long double d = sigma + eps;
            for (std::size_t i = 0; i < v.size(); ++i)
                dx[i] = (g[i] - mg) / d - (v[i] - mu) * gc / (k * sigma * d * d);
            return dx;
        }
        if (sigma <= eps) return Slice(v.size(), 0.0L);
        long double gxh = 0;
        for (std::size_t i = 0; i < v.size(); ++i) gxh += g[i] * (v[i] - mu) / sigma;
        for (std::size_t i = 0; i < v.size(); ++i) dx[i] = (g[i] - mg - (v[i] - mu) / sigma * gxh / k) / sigma;
        return dx;
    });
}

// dx of LayerNorm / RMSNorm together with this slice's contributions to
// dgamma / dbeta (flat in slice order; dgamma[k] = dy_k xh_k, dbeta[k] = dy_k;
// 0 at NaN positions under ignore / zero; for a slice propagate poisons, NaN
// to dgamma and dy_k to dbeta).
struct AffineBackward {
    Slice dx, dgamma, dbeta;
};

namespace bwd {
// kernel(valid) fills dx, dgamma, dbeta for the valid positions.
template <class Kernel>
AffineBackward affine_with_policy(const Slice& x, const Slice& dy, const Slice* gamma, NanPolicy policy,
                                  Kernel kernel) {
    const Valid v = gather(x, dy, gamma);
    const std::size_t n = x.size();
    if (v.pos.size() < n && policy == NanPolicy::propagate) return {Slice(n, qnan()), Slice(n, qnan()), dy};
    AffineBackward out{Slice(n, 0.0L), Slice(n, 0.0L), Slice(n, 0.0L)};
    if (v.pos.empty()) return out;
    AffineBackward part{Slice(v.pos.size()), Slice(v.pos.size()), Slice(v.pos.size())};
    kernel(v, part);
    for (std::size_t j = 0; j < v.pos.size(); ++j) {
        out.dx[v.pos[j]] = part.dx[j];
        out.dgamma[v.pos[j]] = part.dgamma[j];
        out.dbeta[v.pos[j]] = part.dbeta[j];
    }
    return out;
}
}  // namespace bwd

// rstd = 1/sqrt(var + eps) (population var), xh = (x-mu) rstd, g = dy*gamma:
// dx = rstd (g - mean(g) - xh mean(g xh)); a constant slice has xh = 0 exactly
// (dx = rstd (g - mean g)), except with eps = 0, where its output is the guard
// beta and dx = 0.
inline AffineBackward layer_norm_backward_affine(const Slice& x, const Slice& dy, long double eps,
                                                 const Slice* gamma = nullptr,
                                                 NanPolicy nan = NanPolicy::propagate) {
    return bwd::affine_with_policy(x, dy, gamma, nan, [&](const bwd::Valid& v, AffineBackward& out) {
        const std::size_t n = v.x.size();
        const bool constant = bwd::all_equal(v.x);
        for (std::size_t i = 0; i < n; ++i) out.dbeta[i] = v.dy[i];
        if (constant && eps == 0) {
            for (std::size_t i = 0; i < n; ++i) out.dx[i] = out.dgamma[i] = 0;
            return;
        }
        const long double mu = detail::mean(v.x);
        long double ss = 0;
        for (long double e : v.x) ss += (e - mu) * (e - mu);
        const long double rstd = 1.0L / std::sqrt((constant ? 0.0L : ss / static_cast<long double>(n)) + eps);
        Slice xh(n), g(n);
        for (std::size_t i = 0; i < n; ++i) {
            xh[i] = constant ? 0.0L : (v.x[i] - mu) * rstd;
            g[i] = v.dy[i] * v.gamma[i];
        }
        const long double mg = detail::mean(g), mgx = bwd::dot(g, xh) / static_cast<long double>(n);
        for (std::size_t i = 0; i < n; ++i) {
            out.dx[i] = rstd * (g[i] - mg - xh[i] * mgx);
            out.dgamma[i] = v.dy[i] * xh[i];
        }
    });
}

inline Slice layer_norm_backward(const Slice& x, const Slice& dy, long double eps, const Slice* gamma = nullptr,
                                 NanPolicy nan = NanPolicy::propagate) {
    return layer_norm_backward_affine(x, dy, eps, gamma, nan).dx;
}

// r = 1/sqrt(mean(x^2) + eps), g = dy*gamma: dx = r (g - x r^2 mean(g x));
// dgamma[k] = dy_k x_k r, dbeta[k] = dy_k.
inline AffineBackward rms_norm_backward_affine(const Slice& x, const Slice& dy, long double eps,
                                               const Slice* gamma = nullptr, NanPolicy nan = NanPolicy::propagate) {
    return bwd::affine_with_policy(x, dy, gamma, nan, [&](const bwd::Valid& v, AffineBackward& out) {
        const std::size_t n = v.x.size();
        const long double r = 1.0L / std::sqrt(detail::sum_sq(v.x) / static_cast<long double>(n) + eps);
        long double gx = 0;
        for (std::size_t i = 0; i < n; ++i) gx += v.dy[i] * v.gamma[i] * v.x[i];
        const long double mgx = gx / static_cast<long double>(n);
        for (std::size_t i = 0; i < n; ++i) {
            out.dx[i] = r * (v.dy[i] * v.gamma[i] - v.x[i] * r * r * mgx);
            out.dgamma[i] = v.dy[i] * v.x[i] * r;
            out.dbeta[i] = v.dy[i];
        }
    });
}

inline Slice rms_norm_backward(const Slice& x, const Slice& dy, long double eps, const Slice* gamma = nullptr,
                               NanPolicy nan = NanPolicy::propagate) {
    return rms_norm_backward_affine(x, dy, eps, gamma, nan).dx;
}

// From the output y: dx = y (dy - sum dy*y) / temperature. A fully masked
// slice written as zeros gives 0 by the formula; one written as NaN is a NaN
// slice (propagate) or all NaN positions (ignore / zero: 0).
inline Slice softmax_backward(const Slice& y, const Slice& dy, long double temperature = 1,
                              NanPolicy nan = NanPolicy::propagate) {
    return bwd::with_policy(y, dy, nan, [&](const Slice& v, const Slice& g) {
        const long double gy = bwd::dot(g, v);
        Slice dx(v.size());
        for (std::size_t i = 0; i < v.size(); ++i) dx[i] = v[i] * (g[i] - gy) / temperature;
        return dx;
    });
}

// From the output y: dx = (dy - exp(y) sum dy) / temperature. Under
// MaskedSlice::zeros a slice whose n > 1 outputs are all exactly 0 is a fully
// masked slice: dx = 0. NanPolicy::zero is rejected (std::invalid_argument;
// normkit: option_error): zeroed NaN positions cannot be told from y.
inline Slice log_softmax_backward(const Slice& y, const Slice& dy, long double temperature = 1,
                                  MaskedSlice masked = MaskedSlice::nan, NanPolicy nan = NanPolicy::propagate) {
    if (nan == NanPolicy::zero)
        throw std::invalid_argument("ref::log_softmax_backward: NanPolicy::zero cannot be differentiated from y");
    return bwd::with_policy(y, dy, nan, [&](const Slice& v, const Slice& g) {
        if (masked == MaskedSlice::zeros && v.size() > 1 &&
            std::all_of(v.begin(), v.end(), [](long double e) { return e == 0; }))
            return Slice(v.size(), 0.0L);
        const long double sg = detail::sum(g);
        Slice dx(v.size());
        for (std::size_t i = 0; i < v.size(); ++i) dx[i] = (g[i] - std::exp(v[i]) * sg) / temperature;
        return dx;
    });
}

// ---------------------------------------------------------------- apply along axes

namespace bwd {

// Visits every slice of a rank-R tensor over `axes` as reference.hpp's apply()
// does (slice elements in layout order, slices in layout order), calling
// visit(std::vector<Index<R>> positions) once per slice.
template <int R, int L, class Visit>
void for_each_slice(const Index<R>& extent, std::vector<int> axes, Visit&& visit) {
    std::sort(axes.begin(), axes.end());
    if (axes.empty() || axes.front() < 0 || axes.back() >= R ||
        axes.back() - axes.front() + 1 != static_cast<int>(axes.size()) ||
        std::adjacent_find(axes.begin(), axes.end()) != axes.end())
        throw std::invalid_argument("ref: axes must be distinct, adjacent and in [0, rank)");
    std::vector<int> outer;
    for (int d = 0; d < R; ++d)
        if (!std::binary_search(axes.begin(), axes.end(), d)) outer.push_back(d);
    outer = detail::layout_order<L>(outer);
    const std::vector<int> inner = detail::layout_order<L>(axes);
    for (int d = 0; d < R; ++d)
        if (extent[d] == 0) return;
    Index<R> idx{};
    do {
        std::vector<Index<R>> positions;
        do positions.push_back(idx);
        while (detail::next_index<R>(idx, extent, inner));
        visit(positions);
    } while (detail::next_index<R>(idx, extent, outer));
}

template <class S, int R, int L>
Index<R> extent_of(const Eigen::Tensor<S, R, L>& t) {
    Index<R> e{};
    for (int d = 0; d < R; ++d) e[d] = t.dimension(d);
    return e;
}

template <class S, class D, int R, int L>
void check_same_shape(const Eigen::Tensor<S, R, L>& a, const Eigen::Tensor<D, R, L>& b) {
    for (int d = 0; d < R; ++d)
        if (a.dimension(d) != b.dimension(d)) throw std::invalid_argument("ref: saved and dy shapes differ");
}

}  // namespace bwd

// dx of a whole tensor: f(saved_slice, dy_slice) -> dx_slice for every slice
// over `axes` (non-negative, adjacent), slices gathered as apply() does.
template <class S, class D, int R, int L, class F>
Eigen::Tensor<long double, R, L> apply_backward(const Eigen::Tensor<S, R, L>& saved, const Eigen::Tensor<D, R, L>& dy,
                                                std::vector<int> axes, F&& f) {
    bwd::check_same_shape(saved, dy);
    Eigen::Tensor<long double, R, L> dx(saved.dimensions());
    bwd::for_each_slice<R, L>(bwd::extent_of(saved), std::move(axes), [&](const std::vector<Index<R>>& at) {
        Slice s, g;
        for (const auto& i : at) {
            s.push_back(static_cast<long double>(saved(i)));
            g.push_back(static_cast<long double>(dy(i)));
        }
        const Slice r = f(s, g);
        if (r.size() != s.size()) throw std::logic_error("ref::apply_backward: slice function changed the length");
        for (std::size_t k = 0; k < at.size(); ++k) dx(at[k]) = r[k];
    });
    return dx;
}

// LayerNorm / RMSNorm over a tensor: dx plus dgamma / dbeta summed over every
// slice (flat, in slice order: the order of flatten() of a gamma tensor shaped
// like the normalized dims). f(x_slice, dy_slice) -> AffineBackward.
template <int R, int L>
struct TensorAffineBackward {
    Eigen::Tensor<long double, R, L> dx;
    Slice dgamma, dbeta;
};

template <class S, class D, int R, int L, class F>
TensorAffineBackward<R, L> apply_affine_backward(const Eigen::Tensor<S, R, L>& x, const Eigen::Tensor<D, R, L>& dy,
                                                 std::vector<int> axes, F&& f) {
    bwd::check_same_shape(x, dy);
    TensorAffineBackward<R, L> out{Eigen::Tensor<long double, R, L>(x.dimensions()), {}, {}};
    bwd::for_each_slice<R, L>(bwd::extent_of(x), std::move(axes), [&](const std::vector<Index<R>>& at) {
        Slice s, g;
        for (const auto& i : at) {
            s.push_back(static_cast<long double>(x(i)));
            g.push_back(static_cast<long double>(dy(i)));
        }
        const AffineBackward r = f(s, g);
        if (r.dx.size() != s.size() || r.dgamma.size() != s.size() || r.dbeta.size() != s.size())
            throw std::logic_error("ref::apply_affine_backward: slice function changed the length");
        if (out.dgamma.empty()) {
            out.dgamma.assign(s.size(), 0.0L);
            out.dbeta.assign(s.size(), 0.0L);
        }
        for (std::size_t k = 0; k < at.size(); ++k) {
            out.dx(at[k]) = r.dx[k];
            out.dgamma[k] += r.dgamma[k];
            out.dbeta[k] += r.dbeta[k];
        }
    });
    return out;
}

}  // namespace ref
