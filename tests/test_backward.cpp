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

namespace {

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

Slice valid_of(const Slice& s) {
  Slice v;
  for (long double e : s)
    if (!std::isnan(e)) v.push_back(e);
  return v;
}

long double inv(long double d) { return d > 0 && std::isfinite(d) ? 1 / d : 0; }

long double max_abs(const Slice& v) {
  long double m = 0;
  for (long double e : v)
    if (std::isfinite(e)) m = std::max(m, std::fabs(e));
  return m;
}

Direct sum_direct(long double eps, bool add_epsilon) {
  return [=](const Slice& x, const Slice*) {
    long double s = 0;
    for (long double e : valid_of(x)) s += e;
    return add_epsilon ? inv(std::fabs(s + eps)) : (std::fabs(s) <= eps ? 0 : inv(std::fabs(s)));
  };
}

Direct p_norm_direct(long double p, long double eps, bool clamp_squared = false) {
  return [=](const Slice& x, const Slice*) {
    long double s = 0;
    for (long double e : valid_of(x)) s += std::pow(std::fabs(e), p);
    return clamp_squared ? inv(std::sqrt(std::max(s, eps))) : inv(std::max(std::pow(s, 1 / p), eps));
  };
}

Direct max_direct(long double eps) {
  return [=](const Slice& x, const Slice*) { return inv(std::max(max_abs(valid_of(x)), eps)); };
}

Direct min_max_direct(long double lo, long double hi) {
  return [=](const Slice& x, const Slice*) {
    const Slice v = valid_of(x);
    if (v.empty()) return 0.0L;
    const auto [a, b] = std::minmax_element(v.begin(), v.end());
    return (hi - lo) * inv(*b - *a);
  };
}

Direct moments_direct(int ddof, long double eps, bool add_epsilon, bool layer, bool rms) {
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

Direct softmax_direct(long double t, bool log) {
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

normkit::Axes make_axes(const std::vector<int>& a) {
  switch (a.size()) {
    case 1: return a[0];
    case 2: return {a[0], a[1]};
    case 3: return {a[0], a[1], a[2]};
    default: return {a[0], a[1], a[2], a[3]};
  }
}

normkit::NanPolicy to_normkit(P p) {
  switch (p) {
    case P::propagate: return normkit::NanPolicy::propagate;
    case P::ignore: return normkit::NanPolicy::ignore;
    default: return normkit::NanPolicy::zero;
  }
}

const char* to_string(P p) {
  switch (p) {
    case P::propagate: return "propagate";
    case P::ignore: return "ignore";
    default: return "zero";
  }
}

unsigned seed_of(const std::string& s) {  // FNV-1a
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
std::vector<std::vector<int>> axis_spellings(int first, int count, int rank) {
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

}  // namespace

// ============================================================== reference comparisons

TEMPLATE_TEST_CASE("backward: every functor, rank 1-4, every single axis, both layouts", "[backward][reference]", float,
                   double) {
  check_axis_sets_both_layouts<TestType>(dims1, 1, 1);
  check_axis_sets_both_layouts<TestType>(dims2, 1, 1);
  check_axis_sets_both_layouts<TestType>(dims3, 1, 1);
  check_axis_sets_both_layouts<TestType>(dims4, 1, 1);
}

TEMPLATE_TEST_CASE("backward: every functor over adjacent axis sets, dgamma / dbeta of every shape",
                   "[backward][reference]", float, double) {
  check_axis_sets_both_layouts<TestType>(dims2, 2, 2);
  check_axis_sets_both_layouts<TestType>(dims3, 2, 3);
  check_axis_sets<TestType, Eigen::RowMajor>(dims4, 2, 3);
  check_axis_sets<TestType, Eigen::ColMajor>(dims4, 4, 4);
}

TEMPLATE_TEST_CASE("backward: SIMD tails on contiguous and strided axes", "[backward][reference][simd]", float,
                   double) {
  for (Index n : tail_lengths) {
    for_each_case<TestType>([&](const auto& c) {
      // contiguous slices
      check<TestType, Eigen::RowMajor>(c, std::array<Index, 2>{3, n}, Config{{1}});
      check<TestType, Eigen::ColMajor>(c, std::array<Index, 2>{n, 3}, Config{{0}});
      // strided slices: the SIMD lanes run across the inner width
      for (Index cols : {3, 17})
        check<TestType, Eigen::RowMajor>(c, std::array<Index, 2>{n, cols}, Config{{0}});
      check<TestType, Eigen::ColMajor>(c, std::array<Index, 2>{5, n}, Config{{1}});  // inner width 5
      check<TestType, Eigen::RowMajor>(c, std::array<Index, 2>{7, n}, Config{{0}});  // inner width n
    });
  }
}

TEMPLATE_TEST_CASE("backward: NaN policies on axis sets and SIMD tails", "[backward][reference][nan]", float, double) {
  for (P p : {P::propagate, P::ignore, P::zero}) {
    INFO("nan policy " << to_string(p));
    check_axis_sets_both_layouts<TestType>(dims3, 1, 2, p, 0.2);
    for (Index n : {1, 3, 8, 17, 33, 100})
      for_each_case<TestType>([&](const auto& c) {
        check<TestType, Eigen::RowMajor>(c, std::array<Index, 2>{3, n}, Config{{1}, p, 0.1});
        check<TestType, Eigen::RowMajor>(c, std::array<Index, 2>{n, 5}, Config{{0}, p, 0.1});
      });
  }
}

// ============================================================== finite differences of normkit's forward

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
