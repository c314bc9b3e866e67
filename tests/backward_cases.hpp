// tests/backward_cases.hpp - what the backward tests share (test_backward.cpp:
// the reference comparisons; test_backward_checks.cpp: finite differences,
// float against double, guards and errors): the functor cases with their
// reference backwards, and the checker that runs one case on one shape.
// Two files so that the two halves compile in parallel.
//
// normkit's backward passes (f.backward(saved, dy, axes[, dx]) and the
// LayerNorm / RMSNorm affine forms with dgamma / dbeta) checked
//  * against the independent long-double reference (reference_backward.hpp)
//    for every functor configuration, float and double, ranks 1-4, every
//    single axis and adjacent axis sets (several spellings), both layouts,
//    SIMD tail lengths on contiguous and strided axes, and NaN policies;
//    the three call forms (new object, into dx, into dy itself) must agree
//    bit for bit;
//  * against central finite differences of normkit's own double forward
//    (tie-free random inputs, away from kinks);
//  * float against double;
//  * on the guard cases (zero / constant slices, eps clamps, ties, masked
//    softmax rows, infinite elements, NaN policies) and the error paths
//    (shape_error naming both shapes, axis_error, option_error, nan_error;
//    nothing written);
//  * with Matrix / Array / Map operands.
//
// Tolerances. dx is compared element by element against a per-slice scale:
// |actual - expected| <= rel (|expected| + scale), where scale is the largest
// of max |dx|, max_i (|J|^T |dy|)_i (the magnitude of the terms that cancel
// into dx_i, J from the reference) and max |dy| times the formula's direct
// coefficient (1/N, rstd, ...; covers slices whose Jacobian cancels to 0,
// e.g. one-element slices). rel = 1e-5 for float (~84 ulp of the scale) and
// 1e-12 for double; measured worst with the first implementation: 0.016 and
// 0.045 of those bounds. dgamma / dbeta: the same rel against the sum of
// |contributions|. float vs double: within 1e-5 of the same scale (measured
// worst 3e-7). Central differences of normkit's double forward: relative
// error < 1e-6 of the slice's largest |dx| (floor 1e-3 max |dy|).
//
// Spec gaps this file takes a side on (see reference_backward.hpp): L2Norm
// clamp_squared with epsilon 0 on a zero slice (dx 0), MaxNorm / PowerNorm
// with an infinite element (NaN slice), a fully masked NaN softmax row under
// ignore / zero (dx 0), dgamma / dbeta of a slice propagate poisons (dgamma
// NaN at every position, dbeta = sum dy), and Softmax under NanPolicy::zero
// (the zeroed positions are ordinary y = 0, so dy must be finite there).
#pragma once

#include <catch2/catch.hpp>

#include <normkit/normkit.hpp>

#include "engine_instances.hpp"

#include "reference.hpp"
#include "reference_backward.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace backward_test {

using Index = Eigen::Index;
using ref::Slice;
using P = ref::NanPolicy;

enum class Data { normal, positive };
enum class Weights { none, gamma, gamma_beta };
// Where dgamma / dbeta are written: a rank-1 Tensor, an Eigen vector, or a
// tensor with the normalized dims.
enum class GradShape { flat, vector, tensor };

// Reference backward of one slice: dx, plus the slice's dgamma / dbeta
// contributions for the affine functors (empty otherwise).
using RefBwd = std::function<ref::AffineBackward(const Slice& saved, const Slice& dy, const Slice* gamma, P)>;

// Tolerance scale: the magnitude of the direct coefficient a in
// dx_i = a dy_i + (coupling terms) for a slice (1/N for the norms, r for
// MinMax, rstd max|gamma| for LayerNorm, y/t for Softmax, ...), which bounds
// the rounding error of slices whose Jacobian cancels to (near) 0.
using Direct = std::function<long double(const Slice& saved, const Slice* gamma)>;

template <class F>
struct Case {
  std::string name;
  F f;
  RefBwd ref;
  Direct direct;
  Weights weights = Weights::none;
  Data data = Data::normal;
  Index min_length = 1;  // ZScore with ddof = 1 rejects shorter slices (option_error)
};

template <class Fn>
RefBwd plain(Fn fn) {  // a dx-only reference as a RefBwd
  return [fn](const Slice& s, const Slice& d, const Slice*, P p) { return ref::AffineBackward{fn(s, d, p), {}, {}}; };
}

inline Slice valid_of(const Slice& s) {
  Slice v;
  for (long double e : s)
    if (!std::isnan(e)) v.push_back(e);
  return v;
}

inline long double inv(long double d) { return d > 0 && std::isfinite(d) ? 1 / d : 0; }

inline long double max_abs(const Slice& v) {
  long double m = 0;
  for (long double e : v)
    if (std::isfinite(e)) m = std::max(m, std::fabs(e));
  return m;
}

inline Direct sum_direct(long double eps, bool add_epsilon) {
  return [=](const Slice& x, const Slice*) {
    long double s = 0;
    for (long double e : valid_of(x)) s += e;
    return add_epsilon ? inv(std::fabs(s + eps)) : (std::fabs(s) <= eps ? 0 : inv(std::fabs(s)));
  };
}

inline Direct p_norm_direct(long double p, long double eps, bool clamp_squared = false) {
  return [=](const Slice& x, const Slice*) {
    long double s = 0;
    for (long double e : valid_of(x)) s += std::pow(std::fabs(e), p);
    return clamp_squared ? inv(std::sqrt(std::max(s, eps))) : inv(std::max(std::pow(s, 1 / p), eps));
  };
}

inline Direct max_direct(long double eps) {
  return [=](const Slice& x, const Slice*) { return inv(std::max(max_abs(valid_of(x)), eps)); };
}

inline Direct min_max_direct(long double lo, long double hi) {
  return [=](const Slice& x, const Slice*) {
    const Slice v = valid_of(x);
    if (v.empty()) return 0.0L;
    const auto [a, b] = std::minmax_element(v.begin(), v.end());
    return (hi - lo) * inv(*b - *a);
  };
}

inline Direct moments_direct(int ddof, long double eps, bool add_epsilon, bool layer, bool rms) {
  return [=](const Slice& x, const Slice* gamma) {
    const Slice v = valid_of(x);
    const long double n = static_cast<long double>(v.size());
    if (n - ddof <= 0) return 0.0L;
    long double mu = 0, ss = 0;
    for (long double e : v) mu += e / n;
    for (long double e : v) ss += rms ? e * e : (e - mu) * (e - mu);
    const long double g = gamma ? max_abs(*gamma) : 1;
    if (layer || rms) return g * inv(std::sqrt(ss / n + eps));
    const long double sd = std::sqrt(ss / (n - ddof));
    return add_epsilon ? inv(sd + eps) : (sd <= eps ? 0 : inv(sd));
  };
}

inline Direct softmax_direct(long double t, bool log) {
  return [=](const Slice& y, const Slice*) {
    long double m = 0;
    for (long double e : valid_of(y)) m = std::max(m, log ? 1.0L : e);
    return m / t;
  };
}

// Every functor configuration with its reference; the reference gets the
// functor's options as rounded to T.
template <class T>
auto all_cases() {
  using namespace normkit;
  using ref::Degenerate;
  using ref::MaskedSlice;
  const SumToOne<T> sum_eps{T(0.25), normkit::Degenerate::zeros, true};
  const L2Norm<T> l2_clamp{T(1e-12), true};
  const PowerNorm<T> p3{T(3)}, p15{T(1.5)};
  const MinMax<T> mm{T(-1), T(2)};
  const ZScore<T> z1{1}, ze{0, T(0.1), true};
  const Softmax<T> sm_t{normkit::MaskedSlice::nan, NanPolicy::propagate, T(0.5)};
  const LogSoftmax<T> lsm_t{normkit::MaskedSlice::nan, NanPolicy::propagate, T(2)};
  const long double l1e = L1Norm<T>{}.epsilon, l2e = L2Norm<T>{}.epsilon, pe = PowerNorm<T>{}.epsilon;
  const long double lne = LayerNorm<T>{}.epsilon, rmse = RMSNorm<T>{}.epsilon, zee = ze.epsilon;
  const long double p3p = p3.p, p15p = p15.p, smt = sm_t.temperature, lsmt = lsm_t.temperature;
  const RefBwd layer = [lne](const Slice& s, const Slice& d, const Slice* g, P p) {
    return ref::layer_norm_backward_affine(s, d, lne, g, p);
  };
  const RefBwd rms = [rmse](const Slice& s, const Slice& d, const Slice* g, P p) {
    return ref::rms_norm_backward_affine(s, d, rmse, g, p);
  };
  const Direct layer_d = moments_direct(0, lne, false, true, false), rms_d = moments_direct(0, rmse, false, false, true);
  return std::make_tuple(
      Case<SumToOne<T>>{"SumToOne", {},
                        plain([](const Slice& s, const Slice& d, P p) {
                          return ref::sum_to_one_backward(s, d, 0, Degenerate::uniform, false, p);
                        }),
                        sum_direct(0, false), Weights::none, Data::positive},
      Case<SumToOne<T>>{"SumToOne(add_epsilon 0.25)", sum_eps,
                        plain([](const Slice& s, const Slice& d, P p) {
                          return ref::sum_to_one_backward(s, d, 0.25L, Degenerate::zeros, true, p);
                        }),
                        sum_direct(0.25L, true), Weights::none, Data::positive},
      Case<L1Norm<T>>{"L1Norm", {},
                      plain([l1e](const Slice& s, const Slice& d, P p) { return ref::l1_backward(s, d, l1e, p); }),
                      p_norm_direct(1, l1e)},
      Case<L2Norm<T>>{"L2Norm", {},
                      plain([l2e](const Slice& s, const Slice& d, P p) {
                        return ref::l2_backward(s, d, l2e, false, p);
                      }),
                      p_norm_direct(2, l2e)},
      Case<L2Norm<T>>{"L2Norm(clamp_squared)", l2_clamp,
                      plain([l2e](const Slice& s, const Slice& d, P p) {
                        return ref::l2_backward(s, d, l2e, true, p);
                      }),
                      p_norm_direct(2, l2e, true)},
      Case<PowerNorm<T>>{"PowerNorm(p 3)", p3,
                         plain([p3p, pe](const Slice& s, const Slice& d, P p) {
                           return ref::power_norm_backward(s, d, p3p, pe, p);
                         }),
                         p_norm_direct(p3p, pe)},
      Case<PowerNorm<T>>{"PowerNorm(p 1.5)", p15,
                         plain([p15p, pe](const Slice& s, const Slice& d, P p) {
                           return ref::power_norm_backward(s, d, p15p, pe, p);
                         }),
                         p_norm_direct(p15p, pe)},
      Case<MaxNorm<T>>{"MaxNorm", {},
                       plain([](const Slice& s, const Slice& d, P p) { return ref::max_norm_backward(s, d, 0, p); }),
                       max_direct(0)},
      Case<MinMax<T>>{"MinMax(-1, 2)", mm,
                      plain([](const Slice& s, const Slice& d, P p) { return ref::min_max_backward(s, d, -1, 2, p); }),
                      min_max_direct(-1, 2)},
      Case<ZScore<T>>{"ZScore(ddof 0)", {},
                      plain([](const Slice& s, const Slice& d, P p) {
                        return ref::z_score_backward(s, d, 0, 0, false, p);
                      }),
                      moments_direct(0, 0, false, false, false)},
      Case<ZScore<T>>{"ZScore(ddof 1)", z1,
                      plain([](const Slice& s, const Slice& d, P p) {
                        return ref::z_score_backward(s, d, 1, 0, false, p);
                      }),
                      moments_direct(1, 0, false, false, false), Weights::none, Data::normal, 2},
      Case<ZScore<T>>{"ZScore(add_epsilon 0.1)", ze,
                      plain([zee](const Slice& s, const Slice& d, P p) {
                        return ref::z_score_backward(s, d, 0, zee, true, p);
                      }),
                      moments_direct(0, zee, true, false, false)},
      Case<LayerNorm<T>>{"LayerNorm", {}, layer, layer_d},
      Case<LayerNorm<T>>{"LayerNorm+affine(gamma, beta)", {}, layer, layer_d, Weights::gamma_beta},
      Case<RMSNorm<T>>{"RMSNorm", {}, rms, rms_d},
      Case<RMSNorm<T>>{"RMSNorm+affine(gamma)", {}, rms, rms_d, Weights::gamma},
      Case<RMSNorm<T>>{"RMSNorm+affine(gamma, beta)", {}, rms, rms_d, Weights::gamma_beta},
      Case<Softmax<T>>{"Softmax", {},
                       plain([](const Slice& y, const Slice& d, P p) { return ref::softmax_backward(y, d, 1, p); }),
                       softmax_direct(1, false)},
      Case<Softmax<T>>{"Softmax(temperature 0.5)", sm_t,
                       plain([smt](const Slice& y, const Slice& d, P p) {
                         return ref::softmax_backward(y, d, smt, p);
                       }),
                       softmax_direct(smt, false)},
      Case<LogSoftmax<T>>{"LogSoftmax", {},
                          plain([](const Slice& y, const Slice& d, P p) {
                            return ref::log_softmax_backward(y, d, 1, MaskedSlice::nan, p);
                          }),
                          softmax_direct(1, true)},
      Case<LogSoftmax<T>>{"LogSoftmax(temperature 2)", lsm_t,
                          plain([lsmt](const Slice& y, const Slice& d, P p) {
                            return ref::log_softmax_backward(y, d, lsmt, MaskedSlice::nan, p);
                          }),
                          softmax_direct(lsmt, true)});
}

template <class T, class Visitor>
void for_each_case(Visitor&& visit) {
  std::apply([&](const auto&... c) { (visit(c), ...); }, all_cases<T>());
}

// The float and double versions of each case together.
template <class Visitor, std::size_t... I>
void zip_cases(Visitor&& visit, std::index_sequence<I...>) {
  const auto d = all_cases<double>();
  const auto f = all_cases<float>();
  (visit(std::get<I>(f), std::get<I>(d)), ...);
}

template <class Visitor>
void for_each_case_pair(Visitor&& visit) {
  zip_cases(visit, std::make_index_sequence<std::tuple_size<decltype(all_cases<double>())>::value>{});
}

template <class T>
constexpr long double rel_tol = sizeof(T) == sizeof(float) ? 1e-5L : 1e-12L;

inline normkit::Axes make_axes(const std::vector<int>& a) {
  switch (a.size()) {
    case 1: return a[0];
    case 2: return {a[0], a[1]};
    case 3: return {a[0], a[1], a[2]};
    default: return {a[0], a[1], a[2], a[3]};
  }
}

inline normkit::NanPolicy to_normkit(P p) {
  switch (p) {
    case P::propagate: return normkit::NanPolicy::propagate;
    case P::ignore: return normkit::NanPolicy::ignore;
    default: return normkit::NanPolicy::zero;
  }
}

inline const char* to_string(P p) {
  switch (p) {
    case P::propagate: return "propagate";
    case P::ignore: return "ignore";
    default: return "zero";
  }
}

inline unsigned seed_of(const std::string& s) {  // FNV-1a
  std::uint32_t h = 2166136261u;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  return h;
}

template <class T>
const char* type_name() {
  return sizeof(T) == sizeof(float) ? "float" : "double";
}

template <class F>
constexpr bool from_output = F::backward_from_output;

// Flat index of the first element where a and b differ in their bits (NaNs
// of any payload equal), or -1.
template <class A, class B>
Index first_difference(const A& a, const B& b) {
  for (Index i = 0; i < static_cast<Index>(a.size()); ++i) {
    const auto u = a.data()[i], v = b.data()[i];
    if (std::memcmp(&u, &v, sizeof u) != 0 && !(std::isnan(u) && std::isnan(v))) return i;
  }
  return -1;
}

// ---------------------------------------------------------------- slice-scaled comparison

struct Verdict {
  bool ok = true;
  long double worst = 0;  // error / tolerance
  std::string message;
};

// The reference dx of a tensor and, per element, the tolerance scale of its
// slice: max over the slice of |dx|, of (|J|^T |dy|)_i (the sum of the
// magnitudes of the terms that make dx_i; J from the reference: row j is the
// backward of the unit vector e_j) and of max|dy| * direct (see Direct).
template <int R, int L>
struct Expected {
  Eigen::Tensor<long double, R, L> value, scale;
};

using SliceBwd = std::function<Slice(const Slice&, const Slice&)>;

template <class S, class D, int R, int L>
Expected<R, L> expected_backward(const Eigen::Tensor<S, R, L>& saved, const Eigen::Tensor<D, R, L>& dy,
                                 const std::vector<int>& axes, const SliceBwd& fn,
                                 const std::function<long double(const Slice&)>& direct) {
  Expected<R, L> out{Eigen::Tensor<long double, R, L>(saved.dimensions()),
                     Eigen::Tensor<long double, R, L>(saved.dimensions())};
  ref::Index<R> extent{};
  for (int d = 0; d < R; ++d) extent[d] = saved.dimension(d);
  ref::bwd::for_each_slice<R, L>(extent, axes, [&](const std::vector<ref::Index<R>>& at) {
    Slice s, g;
    for (const auto& i : at) {
      s.push_back(static_cast<long double>(saved(i)));
      g.push_back(static_cast<long double>(dy(i)));
    }
    const Slice e = fn(s, g);
    long double scale = max_abs(e), dy_max = max_abs(g);
    Slice terms(s.size(), 0.0L), unit(s.size(), 0.0L);
    for (std::size_t j = 0; j < s.size(); ++j) {
      if (!std::isfinite(g[j]) || g[j] == 0) continue;
      unit[j] = 1;
      const Slice row = fn(s, unit);
      unit[j] = 0;
      for (std::size_t i = 0; i < s.size(); ++i)
        if (std::isfinite(row[i])) terms[i] += std::fabs(g[j] * row[i]);
    }
    scale = std::max(scale, max_abs(terms));
    if (direct) scale = std::max(scale, dy_max * direct(s));
    for (std::size_t k = 0; k < at.size(); ++k) {
      out.value(at[k]) = e[k];
      out.scale(at[k]) = scale;
    }
  });
  return out;
}

// |a - e| <= rel (|e| + scale) at every element; NaN only matches NaN, an
// infinity only itself.
template <class S, int R, int L>
Verdict compare(const Eigen::Tensor<S, R, L>& actual, const Eigen::Tensor<long double, R, L>& expected,
                const Eigen::Tensor<long double, R, L>& scale, long double rel) {
  Verdict v;
  for (int d = 0; d < R; ++d)
    if (actual.dimension(d) != expected.dimension(d)) {
      v.ok = false;
      v.message = "shape mismatch";
      return v;
    }
  ref::Index<R> extent{}, idx{}, worst_at{};
  for (int d = 0; d < R; ++d) extent[d] = expected.dimension(d);
  const std::vector<int> order = ref::detail::all_dims<R>();
  std::size_t failures = 0;
  if (actual.size() > 0) {
    do {
      const long double a = static_cast<long double>(actual(idx)), e = expected(idx);
      long double score;
      if (!std::isfinite(a) || !std::isfinite(e)) {
        score = ((std::isnan(a) && std::isnan(e)) || a == e) ? 0 : std::numeric_limits<long double>::infinity();
      } else {
        const long double diff = std::fabs(a - e), tol = rel * (std::fabs(e) + scale(idx));
        score = diff == 0 ? 0 : (tol == 0 ? std::numeric_limits<long double>::infinity() : diff / tol);
      }
      if (score > 1) ++failures;
      if (score > v.worst) {
        v.worst = score;
        worst_at = idx;
      }
    } while (ref::detail::next_index<R>(idx, extent, order));
  }
  v.ok = failures == 0;
  std::ostringstream os;
  os.precision(17);
  os << (v.ok ? "ok" : "MISMATCH") << ": " << failures << " of " << actual.size() << " elements fail; worst at (";
  for (int d = 0; d < R; ++d) os << (d ? "," : "") << worst_at[d];
  os << "): actual " << static_cast<double>(actual(worst_at)) << ", expected " << static_cast<double>(expected(worst_at))
     << ", slice scale " << static_cast<double>(scale(worst_at)) << ", error/tolerance " << static_cast<double>(v.worst);
  v.message = os.str();
  return v;
}

// normkit's dx against the reference, slice function fn, optional direct scale.
template <class S, class Saved, class Dy, int R, int L>
Verdict compare_to_ref(const Eigen::Tensor<S, R, L>& actual, const Eigen::Tensor<Saved, R, L>& saved,
                       const Eigen::Tensor<Dy, R, L>& dy, const std::vector<int>& axes, const SliceBwd& fn,
                       const std::function<long double(const Slice&)>& direct, long double rel) {
  const Expected<R, L> want = expected_backward(saved, dy, axes, fn, direct);
  return compare(actual, want.value, want.scale, rel);
}

// dgamma / dbeta (flat, slice order) against the reference sums, relative to
// the sum of |contributions| at each position (the conditioning of the sum).
template <class S>
Verdict compare_sums(const S* actual, const Slice& expected, const Slice& abs_sum, long double rel) {
  Verdict v;
  std::ostringstream os;
  for (std::size_t k = 0; k < expected.size(); ++k) {
    const long double a = static_cast<long double>(actual[k]), e = expected[k];
    long double score;
    if (!std::isfinite(a) || !std::isfinite(e)) score = ((std::isnan(a) && std::isnan(e)) || a == e) ? 0 : 1e30L;
    else score = std::fabs(a - e) == 0 ? 0 : std::fabs(a - e) / (rel * (abs_sum[k] + std::fabs(e)) + 1e-300L);
    if (score > v.worst) {
      v.worst = score;
      os.str("");
      os << "worst at " << k << ": actual " << static_cast<double>(a) << ", expected " << static_cast<double>(e)
         << ", sum |terms| " << static_cast<double>(abs_sum[k]);
    }
    if (score > 1) v.ok = false;
  }
  v.message = os.str();
  return v;
}

// ---------------------------------------------------------------- one comparison

template <class T, int K, int L>
using NormalizedTensor = Eigen::TensorMap<Eigen::Tensor<T, K, L>>;

// Runs body(grad) with dgamma-like storage `buf` viewed as GradShape `shape`.
template <class T, int L, std::size_t R, class Body>
void with_grad_view(T* buf, Index n, const std::array<Index, R>& dims, const std::vector<int>& axes, GradShape shape,
                    Body&& body) {
  if (shape == GradShape::vector) {
    Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>> v(buf, n);
    body(v);
    return;
  }
  const int count = static_cast<int>(axes.size());
  if (shape == GradShape::flat || count == 1) {
    Eigen::TensorMap<Eigen::Tensor<T, 1, L>> v(buf, n);
    body(v);
    return;
  }
  const auto dim = [&](int k) { return dims[static_cast<std::size_t>(axes[static_cast<std::size_t>(k)])]; };
  if (count == 2) {
    NormalizedTensor<T, 2, L> v(buf, dim(0), dim(1));
    body(v);
  } else if (count == 3) {
    NormalizedTensor<T, 3, L> v(buf, dim(0), dim(1), dim(2));
    body(v);
  } else {
    NormalizedTensor<T, 4, L> v(buf, dim(0), dim(1), dim(2), dim(3));
    body(v);
  }
}

struct Config {
  std::vector<int> axes;  // as passed to normkit: possibly negative / unordered
  P nan = P::propagate;
  double nan_fraction = 0;
  GradShape grads = GradShape::flat;
};

template <class T, int L, std::size_t R>
struct Trial {
  using Tensor = Eigen::Tensor<T, static_cast<int>(R), L>;
  std::string description;
  std::vector<int> axes;  // resolved, ascending
  Index n = 1;
  Tensor x, dy;
  Eigen::Matrix<T, Eigen::Dynamic, 1> gamma, beta;

  Trial(const std::string& name, Data data, const std::array<Index, R>& dims, const Config& cfg) : x(dims), dy(dims) {
    for (int a : cfg.axes) axes.push_back(a < 0 ? a + static_cast<int>(R) : a);
    std::sort(axes.begin(), axes.end());
    for (int a : axes) n *= dims[static_cast<std::size_t>(a)];
    std::ostringstream d;
    d << name << ' ' << type_name<T>() << (L == Eigen::RowMajor ? " RowMajor" : " ColMajor") << " dims (";
    for (std::size_t i = 0; i < R; ++i) d << (i ? "," : "") << dims[i];
    d << ") axes {";
    for (std::size_t i = 0; i < cfg.axes.size(); ++i) d << (i ? "," : "") << cfg.axes[i];
    d << "} nan " << to_string(cfg.nan) << ' ' << cfg.nan_fraction;
    description = d.str();
    const unsigned seed = seed_of(description);
    if (data == Data::positive) ref::fill_uniform(x, seed, 0.5, 2.0);
    else ref::fill_normal(x, seed, 0.0, 1.0);
    if (cfg.nan_fraction > 0) ref::add_nans(x, seed + 1, cfg.nan_fraction);
    ref::fill_normal(dy, seed + 2, 0.0, 1.0);
    gamma.resize(n);
    beta.resize(n);
    ref::fill_uniform(gamma, seed + 3, 0.5, 1.5);
    ref::fill_normal(beta, seed + 4, 0.0, 1.0);
  }
};

// Case c on random data: new object / into dx / into dy itself (bit-identical),
// against the reference, and dgamma / dbeta against the reference sums.
template <class T, int L, std::size_t R, class F>
void check(const Case<F>& c, const std::array<Index, R>& dims, const Config& cfg) {
  using Tensor = typename Trial<T, L, R>::Tensor;
  const Trial<T, L, R> t(c.name, c.data, dims, cfg);
  if (t.n < c.min_length) return;
  if (cfg.nan == P::zero && std::is_same<F, normkit::LogSoftmax<T>>::value) return;  // option_error, tested below
  INFO(t.description);
  F f = c.f;
  f.nan_policy = to_normkit(cfg.nan);
  const normkit::Axes ax = make_axes(cfg.axes);
  Tensor saved = t.x;
  if constexpr (from_output<F>) saved = f(t.x, ax);

  Tensor dx, out(dims), alias = t.dy;
  out.setConstant(T(-7.25));  // an element left unwritten shows up
  std::vector<T> dgamma(static_cast<std::size_t>(t.n), T(-7.25)), dbeta(dgamma);
  const Slice g(t.gamma.data(), t.gamma.data() + t.n);
  const Slice* g_ptr = c.weights != Weights::none ? &g : nullptr;
  if constexpr (normkit::accepts_affine_v<F>) {
    if (c.weights != Weights::none) {
      const Eigen::TensorMap<const Eigen::Tensor<T, 1, L>> gm(t.gamma.data(), t.n), bm(t.beta.data(), t.n);
      const normkit::Affine<T> w = c.weights == Weights::gamma ? normkit::affine(gm) : normkit::affine(gm, bm);
      dx = f.backward(saved, t.dy, ax, w);
      with_grad_view<T, L>(dgamma.data(), t.n, dims, t.axes, cfg.grads, [&](auto& dg) {
        if (c.weights == Weights::gamma) {
          f.backward(saved, t.dy, ax, w, out, normkit::affine_grads(dg));
        } else {
          with_grad_view<T, L>(dbeta.data(), t.n, dims, t.axes, cfg.grads,
                               [&](auto& db) { f.backward(saved, t.dy, ax, w, out, normkit::affine_grads(dg, db)); });
        }
      });
      f.backward(saved, alias, ax, w, alias);
    }
  }
  if (c.weights == Weights::none) {
    dx = f.backward(saved, t.dy, ax);
    f.backward(saved, t.dy, ax, out);
    f.backward(saved, alias, ax, alias);
  }

  const auto slice_ref = [&](const Slice& s, const Slice& d) { return c.ref(s, d, g_ptr, cfg.nan); };
  const Verdict v = compare_to_ref(
      dx, saved, t.dy, t.axes, [&](const Slice& s, const Slice& d) { return slice_ref(s, d).dx; },
      [&](const Slice& s) { return c.direct(s, g_ptr); }, rel_tol<T>);
  INFO(v.message);
  REQUIRE(v.ok);
  const Index out_diff = first_difference(dx, out), alias_diff = first_difference(dx, alias);
  INFO("first bit difference: into dx at " << out_diff << ", into dy at " << alias_diff);
  REQUIRE(out_diff == -1);
  REQUIRE(alias_diff == -1);

  if (c.weights != Weights::none) {
    const auto sums = ref::apply_affine_backward(saved, t.dy, t.axes, slice_ref);
    const auto abs_sums = ref::apply_affine_backward(saved, t.dy, t.axes, [&](const Slice& s, const Slice& d) {
      ref::AffineBackward r = slice_ref(s, d);
      for (long double& e : r.dgamma) e = std::fabs(e);
      for (long double& e : r.dbeta) e = std::fabs(e);
      return r;
    });
    const long double rel = rel_tol<T>;
    const Verdict vg = compare_sums(dgamma.data(), sums.dgamma, abs_sums.dgamma, rel);
    INFO("dgamma: " << vg.message);
    REQUIRE(vg.ok);
    if (c.weights == Weights::gamma_beta) {
      const Verdict vb = compare_sums(dbeta.data(), sums.dbeta, abs_sums.dbeta, rel);
      INFO("dbeta: " << vb.message);
      REQUIRE(vb.ok);
    }
  }
}

// Spellings of adjacent axes [first, first + count): one axis as positive and
// negative; several as ascending, descending and mixed positive / negative.
inline std::vector<std::vector<int>> axis_spellings(int first, int count, int rank) {
  std::vector<int> pos, neg, mixed;
  for (int a = first; a < first + count; ++a) {
    pos.push_back(a);
    neg.push_back(a - rank);
    mixed.push_back((a - first) % 2 ? a - rank : a);
  }
  if (count == 1) return {pos, neg};
  return {pos, std::vector<int>(pos.rbegin(), pos.rend()), mixed};
}

template <class T, int L, std::size_t R>
void check_axis_sets(const std::array<Index, R>& dims, int min_count, int max_count, P nan = P::propagate,
                     double nan_fraction = 0) {
  constexpr int rank = static_cast<int>(R);
  for_each_case<T>([&](const auto& c) {
    for (int count = min_count; count <= std::min(max_count, rank); ++count)
      for (int first = 0; first + count <= rank; ++first) {
        const auto spellings = axis_spellings(first, count, rank);
        for (std::size_t s = 0; s < spellings.size(); ++s) {
          // dgamma / dbeta as a rank-1 tensor, an Eigen vector, a tensor of the normalized dims.
          const GradShape shape = static_cast<GradShape>(s % 3);
          check<T, L>(c, dims, Config{spellings[s], nan, nan_fraction, shape});
        }
      }
  });
}

template <class T, std::size_t R>
void check_axis_sets_both_layouts(const std::array<Index, R>& dims, int min_count, int max_count,
                                  P nan = P::propagate, double nan_fraction = 0) {
  check_axis_sets<T, Eigen::ColMajor>(dims, min_count, max_count, nan, nan_fraction);
  check_axis_sets<T, Eigen::RowMajor>(dims, min_count, max_count, nan, nan_fraction);
}

const std::array<Index, 1> dims1{9};
const std::array<Index, 2> dims2{7, 5};
const std::array<Index, 3> dims3{5, 3, 7};
const std::array<Index, 4> dims4{3, 5, 2, 7};

const std::vector<Index> tail_lengths{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 31, 33, 64, 100};

}  // namespace backward_test
