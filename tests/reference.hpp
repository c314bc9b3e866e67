// Independent long-double reference for the normkit tests.
//
// Written from the API contract only (no normkit code is used or included), so
// that it can catch the library's mistakes. Everything is computed in long
// double with plain two-pass textbook formulas; slices are gathered with
// multi-index element access rather than stride arithmetic.
#pragma once

#include <unsupported/Eigen/CXX11/Tensor>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace ref {

// Squares of any finite or subnormal double must neither overflow nor flush to
// zero, so that sum(x^2) needs no scaling (the L2 overflow-safety tests rely on it).
static_assert(std::numeric_limits<long double>::max_exponent >
                      2 * std::numeric_limits<double>::max_exponent &&
                  std::numeric_limits<long double>::min_exponent <
                      2 * (std::numeric_limits<double>::min_exponent -
                           std::numeric_limits<double>::digits),
              "long double must have a wider exponent range than double squared");

using Slice = std::vector<long double>;

// Mirrors of the library's policies (normkit's NanPolicy::raise is an error
// path, tested directly, so it has no reference counterpart).
enum class NanPolicy { propagate, ignore, zero };
enum class Degenerate { uniform, zeros, nan };
enum class MaskedSlice { nan, zeros };

namespace detail {

inline long double qnan() { return std::numeric_limits<long double>::quiet_NaN(); }

// Applies `kernel` (statistics + normalization of a NaN-free, non-empty slice)
// under the NaN policy: propagate -> any NaN poisons the slice; ignore/zero ->
// the kernel sees only the non-NaN elements and NaN positions become NaN;
// zero then writes every NaN output (from a NaN input or not) as 0.
template <class Kernel>
Slice with_policy(const Slice& x, NanPolicy policy, Kernel kernel) {
    Slice valid;
    for (long double v : x)
        if (!std::isnan(v)) valid.push_back(v);
    if (valid.size() < x.size() && policy == NanPolicy::propagate) return Slice(x.size(), qnan());
    const Slice y = valid.empty() ? Slice{} : kernel(valid);
    Slice out(x.size());
    for (std::size_t i = 0, j = 0; i < x.size(); ++i)
        out[i] = std::isnan(x[i]) ? qnan() : y[j++];
    if (policy == NanPolicy::zero)
        for (long double& v : out)
            if (std::isnan(v)) v = 0.0L;
    return out;
}

// y*gamma + beta on the positions whose input was not NaN (NaN-input outputs
// keep their policy value; under propagate y is already all NaN).
inline Slice affine(const Slice& x, Slice y, const Slice* gamma, const Slice* beta) {
    if ((gamma && gamma->size() != x.size()) || (beta && beta->size() != x.size()))
        throw std::invalid_argument("ref: gamma/beta length differs from the slice length");
    for (std::size_t i = 0; i < x.size(); ++i)
        if (!std::isnan(x[i])) y[i] = y[i] * (gamma ? (*gamma)[i] : 1.0L) + (beta ? (*beta)[i] : 0.0L);
    return y;
}

inline long double sum(const Slice& x) { return std::accumulate(x.begin(), x.end(), 0.0L); }
inline long double mean(const Slice& x) { return sum(x) / static_cast<long double>(x.size()); }

inline long double sum_sq(const Slice& x) {
    long double s = 0;
    for (long double v : x) s += v * v;
    return s;
}

// x / d, with an all-zero result when d == 0 (the "zero slice" rule).
inline Slice divide_or_zero(Slice x, long double d) {
    for (long double& v : x) v = d == 0 ? 0.0L : v / d;
    return x;
}

}  // namespace detail

// ---------------------------------------------------------------- slice functions

inline Slice sum_to_one(const Slice& x, long double eps, Degenerate degenerate, bool add_epsilon,
                        NanPolicy nan = NanPolicy::propagate) {
    return detail::with_policy(x, nan, [&](Slice v) {
        const long double s = detail::sum(v);
        const bool degen = !add_epsilon && (!std::isfinite(s) || std::fabs(s) <= eps);
        for (long double& e : v) {
            if (add_epsilon) e = e / (s + eps);
            else if (!degen) e = e / s;
            else if (degenerate == Degenerate::uniform) e = 1.0L / static_cast<long double>(v.size());
            else e = degenerate == Degenerate::zeros ? 0.0L : detail::qnan();
        }
        return v;
    });
}

inline Slice l1(const Slice& x, long double eps, NanPolicy nan = NanPolicy::propagate) {
    return detail::with_policy(x, nan, [&](const Slice& v) {
        long double s = 0;
        for (long double e : v) s += std::fabs(e);
        return detail::divide_or_zero(v, std::max(s, eps));
    });
}

inline Slice l2(const Slice& x, long double eps, bool clamp_squared, NanPolicy nan = NanPolicy::propagate) {
    return detail::with_policy(x, nan, [&](const Slice& v) {
        const long double ss = detail::sum_sq(v);
        return detail::divide_or_zero(v, clamp_squared ? std::sqrt(std::max(ss, eps))
                                                       : std::max(std::sqrt(ss), eps));
    });
}

inline Slice max_norm(const Slice& x, long double eps, NanPolicy nan = NanPolicy::propagate) {
    return detail::with_policy(x, nan, [&](const Slice& v) {
        long double m = 0;
        for (long double e : v) m = std::max(m, std::fabs(e));
        return detail::divide_or_zero(v, std::max(m, eps));
    });
}

inline Slice min_max(const Slice& x, long double lo, long double hi, NanPolicy nan = NanPolicy::propagate) {
    return detail::with_policy(x, nan, [&](Slice v) {
        const auto [mn_it, mx_it] = std::minmax_element(v.begin(), v.end());
        const long double mn = *mn_it, mx = *mx_it;
        for (long double& e : v) e = mx == mn ? lo : (e - mn) / (mx - mn) * (hi - lo) + lo;
        return v;
    });
}

// n - ddof <= 0 (possible under ignore) just follows the formula (NaN / 0 outputs).
inline Slice z_score(const Slice& x, int ddof, long double eps, bool add_epsilon,
                     NanPolicy nan = NanPolicy::propagate) {
    return detail::with_policy(x, nan, [&](Slice v) {
        // Too few values for the requested ddof (possible under ignore): undefined.
        if (static_cast<long double>(v.size()) - ddof <= 0) return Slice(v.size(), detail::qnan());
        const long double m = detail::mean(v);
        long double ss = 0;
        for (long double e : v) ss += (e - m) * (e - m);
        const long double sd = std::sqrt(ss / (static_cast<long double>(v.size()) - ddof));
        // Checked explicitly: the long double mean of equal values need not equal them.
        const bool constant = std::all_of(v.begin(), v.end(), [&](long double e) { return e == v[0]; });
        for (long double& e : v) {
            if (add_epsilon) e = (e - m) / (sd + eps);
            else e = (sd <= eps || constant) ? 0.0L : (e - m) / sd;
        }
        return v;
    });
}

inline Slice layer_norm(const Slice& x, long double eps, const Slice* gamma = nullptr,
                        const Slice* beta = nullptr, NanPolicy nan = NanPolicy::propagate) {
    const Slice y = detail::with_policy(x, nan, [&](Slice v) {
        const long double m = detail::mean(v);
        long double ss = 0;
        for (long double e : v) ss += (e - m) * (e - m);
        const long double denom = std::sqrt(ss / static_cast<long double>(v.size()) + eps);
        for (long double& e : v) e = (e - m) / denom;
        return v;
    });
    return detail::affine(x, y, gamma, beta);
}

inline Slice rms_norm(const Slice& x, long double eps, const Slice* gamma = nullptr,
                      const Slice* beta = nullptr, NanPolicy nan = NanPolicy::propagate) {
    const Slice y = detail::with_policy(x, nan, [&](const Slice& v) {
        const long double rms = std::sqrt(detail::sum_sq(v) / static_cast<long double>(v.size()) + eps);
        Slice r = v;
        for (long double& e : r) e /= rms;
        return r;
    });
    return detail::affine(x, y, gamma, beta);
}

namespace detail {
// Shared softmax core: calls out(e, m, s) per element with m = max, s = sum exp(x-m).
template <class Out>
Slice softmax_like(const Slice& x, MaskedSlice masked, NanPolicy nan, Out out) {
    return with_policy(x, nan, [&](Slice v) {
        const long double m = *std::max_element(v.begin(), v.end());
        if (m == -std::numeric_limits<long double>::infinity())
            return Slice(v.size(), masked == MaskedSlice::nan ? detail::qnan() : 0.0L);
        long double s = 0;
        for (long double e : v) s += std::exp(e - m);
        for (long double& e : v) e = out(e, m, s);
        return v;
    });
}
}  // namespace detail

inline Slice softmax(const Slice& x, MaskedSlice masked, NanPolicy nan = NanPolicy::propagate) {
    return detail::softmax_like(x, masked, nan,
                                [](long double e, long double m, long double s) { return std::exp(e - m) / s; });
}

inline Slice log_softmax(const Slice& x, MaskedSlice masked, NanPolicy nan = NanPolicy::propagate) {
    return detail::softmax_like(x, masked, nan,
                                [](long double e, long double m, long double s) { return e - m - std::log(s); });
}

// ---------------------------------------------------------------- apply along axes

template <int R>
using Index = std::array<Eigen::Index, static_cast<std::size_t>(R)>;

namespace detail {

// Odometer step over the dims in `fast_to_slow` (first one varies fastest);
// false once every listed dim has wrapped back to 0.
template <int R>
bool next_index(Index<R>& idx, const Index<R>& extent, const std::vector<int>& fast_to_slow) {
    for (int d : fast_to_slow) {
        if (++idx[d] < extent[d]) return true;
        idx[d] = 0;
    }
    return false;
}

// The dims of `dims` ordered fastest-first as in memory for layout L.
template <int L>
std::vector<int> layout_order(std::vector<int> dims) {
    if (L == Eigen::RowMajor) std::reverse(dims.begin(), dims.end());
    return dims;
}

template <int R>
std::vector<int> all_dims() {
    std::vector<int> d(R);
    std::iota(d.begin(), d.end(), 0);
    return d;
}

}  // namespace detail

// Applies `f` (Slice -> Slice of the same length) to every slice of `x` over
// `axes` (non-negative, adjacent, any order). A slice lists the elements of the
// normalized dims flattened in the tensor's own layout order: for RowMajor the
// LAST normalized axis varies fastest, for ColMajor the FIRST one does. Gamma /
// beta vectors for the slice functions use this same order (see flatten()).
template <class S, int R, int L, class F>
Eigen::Tensor<long double, R, L> apply(const Eigen::Tensor<S, R, L>& x, std::vector<int> axes, F&& f) {
    std::sort(axes.begin(), axes.end());
    if (axes.empty() || axes.front() < 0 || axes.back() >= R ||
        axes.back() - axes.front() + 1 != static_cast<int>(axes.size()) ||
        std::adjacent_find(axes.begin(), axes.end()) != axes.end())
        throw std::invalid_argument("ref::apply: axes must be distinct, adjacent and in [0, rank)");

    std::vector<int> outer;
    for (int d = 0; d < R; ++d)
        if (!std::binary_search(axes.begin(), axes.end(), d)) outer.push_back(d);
    outer = detail::layout_order<L>(outer);  // slices are visited in layout order too
    const std::vector<int> inner = detail::layout_order<L>(axes);

    Eigen::Tensor<long double, R, L> y(x.dimensions());
    if (x.size() == 0) return y;
    Index<R> extent{}, idx{};
    for (int d = 0; d < R; ++d) extent[d] = x.dimension(d);
    do {
        Slice s;
        do s.push_back(static_cast<long double>(x(idx)));
        while (detail::next_index<R>(idx, extent, inner));
        const Slice r = f(s);
        if (r.size() != s.size()) throw std::logic_error("ref::apply: slice function changed the length");
        std::size_t k = 0;
        do y(idx) = r[k++];
        while (detail::next_index<R>(idx, extent, inner));
    } while (detail::next_index<R>(idx, extent, outer));
    return y;
}

// Gamma/beta variant: f(slice, gamma, beta) with gamma/beta flat in the slice
// order (nullptr = absent), e.g. a lambda forwarding to ref::layer_norm.
template <class S, int R, int L, class F>
Eigen::Tensor<long double, R, L> apply_affine(const Eigen::Tensor<S, R, L>& x, std::vector<int> axes,
                                              F&& f, const Slice* gamma, const Slice* beta) {
    return apply(x, std::move(axes), [&](const Slice& s) { return f(s, gamma, beta); });
}

// All elements of `t` in its layout order: turns a gamma/beta tensor shaped like
// the normalized dims into the flat vector apply_affine expects.
template <class S, int R, int L>
Slice flatten(const Eigen::Tensor<S, R, L>& t) {
    Slice out;
    if (t.size() == 0) return out;
    Index<R> extent{}, idx{};
    for (int d = 0; d < R; ++d) extent[d] = t.dimension(d);
    const std::vector<int> order = detail::layout_order<L>(detail::all_dims<R>());
    do out.push_back(static_cast<long double>(t(idx)));
    while (detail::next_index<R>(idx, extent, order));
    return out;
}

// ---------------------------------------------------------------- comparison

struct CompareResult {
    bool ok = true;
    long double worst = 0;        // max |actual-expected| / (abs_tol + rel_tol*|expected|); > 1 fails
    Eigen::Index index = -1;      // flat index (layout order) of the worst element
    std::size_t failures = 0;     // number of failing elements
    std::string message;          // describes the worst element
};

// Element-wise |a - e| <= abs_tol + rel_tol*|e|. NaN matches only NaN and an
// infinity only the same-signed infinity; any other NaN/inf pairing fails.
template <class S, int R, int L>
CompareResult compare(const Eigen::Tensor<S, R, L>& actual, const Eigen::Tensor<long double, R, L>& expected,
                      long double rel_tol, long double abs_tol) {
    CompareResult res;
    for (int d = 0; d < R; ++d) {
        if (actual.dimension(d) != expected.dimension(d)) {
            std::ostringstream os;
            os << "shape mismatch in dim " << d << ": actual " << actual.dimension(d) << ", expected "
               << expected.dimension(d);
            res.ok = false;
            res.worst = std::numeric_limits<long double>::infinity();
            res.message = os.str();
            return res;
        }
    }
    if (actual.size() == 0) return res;

    Index<R> extent{}, idx{}, worst_idx{};
    for (int d = 0; d < R; ++d) extent[d] = actual.dimension(d);
    const std::vector<int> order = detail::layout_order<L>(detail::all_dims<R>());
    Eigen::Index flat = 0;
    do {
        const long double a = static_cast<long double>(actual(idx)), e = expected(idx);
        long double score;
        if (std::isnan(a) || std::isnan(e) || std::isinf(a) || std::isinf(e)) {
            const bool same = (std::isnan(a) && std::isnan(e)) || a == e;
            score = same ? 0.0L : std::numeric_limits<long double>::infinity();
        } else {
            const long double diff = std::fabs(a - e), tol = abs_tol + rel_tol * std::fabs(e);
            score = diff == 0 ? 0.0L : (tol == 0 ? std::numeric_limits<long double>::infinity() : diff / tol);
        }
        if (score > 1) ++res.failures;
        if (res.index < 0 || score > res.worst) {
            res.worst = score;
            res.index = flat;
            worst_idx = idx;
        }
        ++flat;
    } while (detail::next_index<R>(idx, extent, order));

    res.ok = res.failures == 0;
    std::ostringstream os;
    os.precision(std::numeric_limits<long double>::max_digits10);
    os << (res.ok ? "ok" : "MISMATCH") << " (" << res.failures << " of " << actual.size()
       << " elements fail); worst at flat index " << res.index << " (";
    for (int d = 0; d < R; ++d) os << (d ? "," : "") << worst_idx[d];
    os << "): actual " << static_cast<long double>(actual(worst_idx)) << ", expected " << expected(worst_idx)
       << ", error/tolerance " << res.worst << " (rel_tol " << rel_tol << ", abs_tol " << abs_tol << ")";
    res.message = os.str();
    return res;
}

// ---------------------------------------------------------------- data generators
// Deterministic for a given seed and standard library. T: any Eigen dense
// object with data() and size() (Tensor, TensorFixedSize, TensorMap, Matrix).

template <class T>
void fill_normal(T& t, unsigned seed, double mean, double sd) {
    std::mt19937 gen(seed);
    std::normal_distribution<double> dist(mean, sd);
    for (Eigen::Index i = 0; i < t.size(); ++i) t.data()[i] = static_cast<typename T::Scalar>(dist(gen));
}

template <class T>
void fill_uniform(T& t, unsigned seed, double lo, double hi) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<double> dist(lo, hi);
    for (Eigen::Index i = 0; i < t.size(); ++i) t.data()[i] = static_cast<typename T::Scalar>(dist(gen));
}

// New tensors / matrices of normal(0.5, 2) data, the API tests' default.
template <class S, int R, int L>
Eigen::Tensor<S, R, L> random_tensor(const std::array<Eigen::Index, R>& dims, unsigned seed) {
    Eigen::Tensor<S, R, L> t(dims);
    fill_normal(t, seed, 0.5, 2.0);
    return t;
}

template <class M>
M random_matrix(Eigen::Index rows, Eigen::Index cols, unsigned seed) {
    M m(rows, cols);
    fill_normal(m, seed, 0.5, 2.0);
    return m;
}

// Overwrites round(fraction * size) distinct, randomly chosen elements with NaN.
template <class T>
void add_nans(T& t, unsigned seed, double fraction) {
    std::vector<Eigen::Index> pos(static_cast<std::size_t>(t.size()));
    std::iota(pos.begin(), pos.end(), Eigen::Index{0});
    std::mt19937 gen(seed);
    std::shuffle(pos.begin(), pos.end(), gen);
    const auto count = static_cast<std::size_t>(std::llround(fraction * static_cast<double>(pos.size())));
    for (std::size_t i = 0; i < std::min(count, pos.size()); ++i)
        t.data()[pos[i]] = std::numeric_limits<typename T::Scalar>::quiet_NaN();
}

}  // namespace ref
