// Systematic comparison of every normkit functor against the independent
// long-double reference (reference.hpp): ranks 1-4, every axis and every
// adjacent axis set (positive, negative, unordered and mixed spellings), both
// layouts, float and double, SIMD tail lengths on contiguous and strided axes,
// and NaN policies. Every comparison also requires the three call forms
// (new object, into a preallocated Tensor, in place) to agree bit for bit.
#include <catch2/catch.hpp>

#include <normkit/normkit.hpp>

#include "engine_instances.hpp"

#include "reference.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <cstdint>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace {

using Index = Eigen::Index;
using ref::Slice;

enum class Data { normal, positive };
enum class Weights { none, gamma, gamma_beta };
// gamma/beta given as a tensor with the normalized dims, a flat rank-1 tensor,
// or an Eigen vector.
enum class WeightShape { tensor, flat, vector };

using RefFn = std::function<Slice(const Slice&, const Slice*, const Slice*, ref::NanPolicy)>;

template <class F>
struct Case {
  std::string name;
  F f;
  RefFn ref;
  Weights weights = Weights::none;
  Data data = Data::normal;
  Index min_length = 1;  // ZScore with ddof = 1 rejects shorter slices (an option error, tested elsewhere)
};

// Every functor configuration, each with its reference. The reference gets the
// functor's epsilon as rounded to T, so both compute the same formula.
template <class T>
auto all_cases() {
  using namespace normkit;
  using P = ref::NanPolicy;
  const long double l1_eps = L1Norm<T>{}.epsilon, l2_eps = L2Norm<T>{}.epsilon;
  const long double ln_eps = LayerNorm<T>{}.epsilon, rms_eps = RMSNorm<T>{}.epsilon;
  const auto layer_norm = [ln_eps](const Slice& s, const Slice* g, const Slice* b, P p) {
    return ref::layer_norm(s, ln_eps, g, b, p);
  };
  const auto rms_norm = [rms_eps](const Slice& s, const Slice* g, const Slice* b, P p) {
    return ref::rms_norm(s, rms_eps, g, b, p);
  };
  return std::make_tuple(
      Case<SumToOne<T>>{"SumToOne", {},
                        [](const Slice& s, const Slice*, const Slice*, P p) {
                          return ref::sum_to_one(s, 0, ref::Degenerate::uniform, false, p);
                        },
                        Weights::none, Data::positive},
      Case<L1Norm<T>>{"L1Norm", {},
                      [l1_eps](const Slice& s, const Slice*, const Slice*, P p) { return ref::l1(s, l1_eps, p); }},
      Case<L2Norm<T>>{"L2Norm", {},
                      [l2_eps](const Slice& s, const Slice*, const Slice*, P p) {
                        return ref::l2(s, l2_eps, false, p);
                      }},
      Case<MaxNorm<T>>{"MaxNorm", {},
                       [](const Slice& s, const Slice*, const Slice*, P p) { return ref::max_norm(s, 0, p); }},
      Case<MinMax<T>>{"MinMax", {},
                      [](const Slice& s, const Slice*, const Slice*, P p) { return ref::min_max(s, 0, 1, p); }},
      Case<ZScore<T>>{"ZScore(ddof=0)", {},
                      [](const Slice& s, const Slice*, const Slice*, P p) {
                        return ref::z_score(s, 0, 0, false, p);
                      }},
      Case<ZScore<T>>{"ZScore(ddof=1)", {1},
                      [](const Slice& s, const Slice*, const Slice*, P p) {
                        return ref::z_score(s, 1, 0, false, p);
                      },
                      Weights::none, Data::normal, 2},
      Case<LayerNorm<T>>{"LayerNorm", {}, layer_norm},
      Case<LayerNorm<T>>{"LayerNorm+affine(gamma,beta)", {}, layer_norm, Weights::gamma_beta},
      Case<RMSNorm<T>>{"RMSNorm", {}, rms_norm},
      Case<RMSNorm<T>>{"RMSNorm+affine(gamma)", {}, rms_norm, Weights::gamma},
      Case<RMSNorm<T>>{"RMSNorm+affine(gamma,beta)", {}, rms_norm, Weights::gamma_beta},
      Case<Softmax<T>>{"Softmax", {},
                       [](const Slice& s, const Slice*, const Slice*, P p) {
                         return ref::softmax(s, ref::MaskedSlice::nan, p);
                       }},
      Case<LogSoftmax<T>>{"LogSoftmax", {},
                          [](const Slice& s, const Slice*, const Slice*, P p) {
                            return ref::log_softmax(s, ref::MaskedSlice::nan, p);
                          }});
}

template <class T, class Visitor>
void for_each_case(Visitor&& visit) {
  std::apply([&](const auto&... c) { (visit(c), ...); }, all_cases<T>());
}

// Tolerances from the test context: a few ulp of float / double.
template <class T>
constexpr long double rel_tol = sizeof(T) == sizeof(float) ? 1e-5L : 1e-12L;
template <class T>
constexpr long double abs_tol = sizeof(T) == sizeof(float) ? 1e-6L : 1e-13L;

normkit::Axes make_axes(const std::vector<int>& a) {
  switch (a.size()) {
    case 1: return a[0];
    case 2: return {a[0], a[1]};
    case 3: return {a[0], a[1], a[2]};
    default: return {a[0], a[1], a[2], a[3]};
  }
}

normkit::NanPolicy to_normkit(ref::NanPolicy p) {
  switch (p) {
    case ref::NanPolicy::propagate: return normkit::NanPolicy::propagate;
    case ref::NanPolicy::ignore: return normkit::NanPolicy::ignore;
    default: return normkit::NanPolicy::zero;
  }
}

const char* to_string(ref::NanPolicy p) {
  switch (p) {
    case ref::NanPolicy::propagate: return "propagate";
    case ref::NanPolicy::ignore: return "ignore";
    default: return "zero";
  }
}

const char* to_string(WeightShape s) {
  switch (s) {
    case WeightShape::tensor: return "tensor of the normalized dims";
    case WeightShape::flat: return "rank-1 tensor";
    default: return "Eigen vector";
  }
}

// FNV-1a: a reproducible seed per configuration, independent of test order.
unsigned seed_of(const std::string& s) {
  std::uint32_t h = 2166136261u;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  return h;
}

struct Config {
  std::vector<int> axes;  // as passed to normkit: possibly negative and unordered
  WeightShape shape = WeightShape::flat;
  ref::NanPolicy nan = ref::NanPolicy::propagate;
  double nan_fraction = 0;
};

// gamma/beta over K normalized dims [first, first + K) of dims, as a tensor of
// those dims in layout L.
template <class T, int L, int K, std::size_t R>
normkit::Affine<T> affine_tensor(const T* g, const T* b, const std::array<Index, R>& dims, int first, Weights w) {
  Eigen::DSizes<Index, K> d;
  for (int k = 0; k < K; ++k) d[k] = dims[static_cast<std::size_t>(first + k)];
  const Eigen::TensorMap<const Eigen::Tensor<T, K, L>> gm(g, d), bm(b, d);
  return w == Weights::gamma ? normkit::affine(gm) : normkit::affine(gm, bm);
}

template <class T, int L, std::size_t R>
normkit::Affine<T> make_affine(const T* g, const T* b, Index n, const std::array<Index, R>& dims, int first,
                               int count, WeightShape shape, Weights w) {
  if (shape == WeightShape::vector) {
    const Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>> gv(g, n), bv(b, n);
    return w == Weights::gamma ? normkit::affine(gv) : normkit::affine(gv, bv);
  }
  if (shape == WeightShape::flat) {
    const Eigen::TensorMap<const Eigen::Tensor<T, 1, L>> gm(g, n), bm(b, n);
    return w == Weights::gamma ? normkit::affine(gm) : normkit::affine(gm, bm);
  }
  switch (count) {
    case 1: return affine_tensor<T, L, 1>(g, b, dims, first, w);
    case 2: return affine_tensor<T, L, 2>(g, b, dims, first, w);
    case 3: return affine_tensor<T, L, 3>(g, b, dims, first, w);
    default: return affine_tensor<T, L, 4>(g, b, dims, first, w);
  }
}

// Flat index of the first element where a and b differ in their bits (NaNs
// of any payload count as equal), or -1.
template <class T, int R, int L>
Index first_difference(const Eigen::Tensor<T, R, L>& a, const Eigen::Tensor<T, R, L>& b) {
  for (Index i = 0; i < a.size(); ++i) {
    const T u = a.data()[i], v = b.data()[i];
    if (std::memcmp(&u, &v, sizeof(T)) != 0 && !(std::isnan(u) && std::isnan(v))) return i;
  }
  return -1;
}

template <class T>
const char* type_name() {
  return sizeof(T) == sizeof(float) ? "float" : "double";
}

// Everything about one comparison that does not depend on the functor type
// (kept out of check() so it is compiled once per scalar type, layout and rank).
template <class T, int L, std::size_t R>
struct Trial {
  using Tensor = Eigen::Tensor<T, static_cast<int>(R), L>;
  std::string description;
  std::vector<int> axes;  // non-negative, ascending
  Index n = 1;            // slice length
  Tensor x;
  Eigen::Matrix<T, Eigen::Dynamic, 1> gamma, beta;

  Trial(const std::string& name, Data data, const std::array<Index, R>& dims, const Config& cfg, Weights weights)
      : x(dims) {
    for (int a : cfg.axes) axes.push_back(a < 0 ? a + static_cast<int>(R) : a);
    std::sort(axes.begin(), axes.end());
    for (int a : axes) n *= dims[static_cast<std::size_t>(a)];

    std::ostringstream desc;
    desc << name << ' ' << type_name<T>() << (L == Eigen::RowMajor ? " RowMajor" : " ColMajor") << " rank " << R
         << " dims (";
    for (std::size_t d = 0; d < R; ++d) desc << (d ? "," : "") << dims[d];
    desc << ") axes {";
    for (std::size_t i = 0; i < cfg.axes.size(); ++i) desc << (i ? "," : "") << cfg.axes[i];
    desc << "} nan " << to_string(cfg.nan) << " fraction " << cfg.nan_fraction;
    if (weights != Weights::none) desc << " weights " << to_string(cfg.shape);
    description = desc.str();

    const unsigned seed = seed_of(description);
    if (data == Data::positive) ref::fill_uniform(x, seed, 0.5, 2.0);  // sum well away from 0
    else ref::fill_normal(x, seed, 0.0, 1.0);
    if (cfg.nan_fraction > 0) ref::add_nans(x, seed + 1, cfg.nan_fraction);
    gamma.resize(n);
    beta.resize(n);
    ref::fill_uniform(gamma, seed + 2, 0.5, 1.5);
    ref::fill_normal(beta, seed + 3, 0.0, 1.0);
  }

  // Requires y to match the reference and out / z (into-out and in-place
  // results) to equal y bit for bit.
  void verify(const RefFn& ref_fn, Weights weights, ref::NanPolicy nan, const Tensor& y, const Tensor& out,
              const Tensor& z) const {
    const Slice g(gamma.data(), gamma.data() + n), b(beta.data(), beta.data() + n);
    const Slice* g_ptr = weights != Weights::none ? &g : nullptr;
    const Slice* b_ptr = weights == Weights::gamma_beta ? &b : nullptr;
    const std::function<Slice(const Slice&)> slice_fn = [&](const Slice& s) { return ref_fn(s, g_ptr, b_ptr, nan); };
    const ref::CompareResult r = ref::compare(y, ref::apply(x, axes, slice_fn), rel_tol<T>, abs_tol<T>);
    INFO(r.message);
    REQUIRE(r.ok);
    const Index out_diff = first_difference(y, out), inplace_diff = first_difference(y, z);
    INFO("first bit difference: into-out at " << out_diff << ", in-place at " << inplace_diff);
    REQUIRE(out_diff == -1);
    REQUIRE(inplace_diff == -1);
  }
};

// Runs case c on a random tensor of `dims` in layout L over cfg.axes with the
// new / into-out / in-place forms and verifies the results.
template <class T, int L, std::size_t R, class F>
void check(const Case<F>& c, const std::array<Index, R>& dims, const Config& cfg) {
  const Trial<T, L, R> t(c.name, c.data, dims, cfg, c.weights);
  if (t.n < c.min_length) return;
  INFO(t.description);

  F f = c.f;
  f.nan_policy = to_normkit(cfg.nan);
  const normkit::Axes ax = make_axes(cfg.axes);
  typename Trial<T, L, R>::Tensor y, out(dims), z = t.x;
  out.setConstant(T(-7.25));  // an element left unwritten shows up as a difference
  if constexpr (normkit::accepts_affine_v<F>) {
    if (c.weights != Weights::none) {
      const normkit::Affine<T> w = make_affine<T, L>(t.gamma.data(), t.beta.data(), t.n, dims, t.axes.front(),
                                                     static_cast<int>(t.axes.size()), cfg.shape, c.weights);
      y = f(t.x, ax, w);
      f(t.x, ax, w, out);
      f.inplace(z, ax, w);
    }
  }
  if (c.weights == Weights::none) {
    y = f(t.x, ax);
    f(t.x, ax, out);
    f.inplace(z, ax);
  }
  t.verify(c.ref, c.weights, cfg.nan, y, out, z);
}

// Each spelling of the adjacent axes [first, first + count) of a rank-R
// tensor: ascending positive, ascending negative, and for several axes also
// descending and mixed positive/negative.
std::vector<std::vector<int>> axis_spellings(int first, int count, int rank) {
  std::vector<int> pos, neg, mixed;
  for (int a = first; a < first + count; ++a) {
    pos.push_back(a);
    neg.push_back(a - rank);
    mixed.push_back((a - first) % 2 ? a - rank : a);
  }
  if (count == 1) return {pos, neg};
  return {pos, neg, std::vector<int>(pos.rbegin(), pos.rend()), mixed};
}

std::vector<WeightShape> weight_shapes(Weights w, int count) {
  if (w == Weights::none) return {WeightShape::flat};
  if (count == 1) return {WeightShape::flat, WeightShape::vector};  // a tensor of one dim is flat
  return {WeightShape::tensor, WeightShape::flat, WeightShape::vector};
}

// Every case over every adjacent axis set of `dims` with `count` axes in
// [min_count, max_count].
template <class T, int L, std::size_t R>
void check_axis_sets(const std::array<Index, R>& dims, int min_count, int max_count,
                     ref::NanPolicy nan = ref::NanPolicy::propagate, double nan_fraction = 0) {
  constexpr int rank = static_cast<int>(R);
  for_each_case<T>([&](const auto& c) {
    for (int count = min_count; count <= std::min(max_count, rank); ++count)
      for (int first = 0; first + count <= rank; ++first)
        for (const auto& axes : axis_spellings(first, count, rank))
          for (WeightShape shape : weight_shapes(c.weights, count))
            check<T, L>(c, dims, Config{axes, shape, nan, nan_fraction});
  });
}

template <class T, std::size_t R>
void check_axis_sets_both_layouts(const std::array<Index, R>& dims, int min_count, int max_count,
                                  ref::NanPolicy nan = ref::NanPolicy::propagate, double nan_fraction = 0) {
  check_axis_sets<T, Eigen::ColMajor>(dims, min_count, max_count, nan, nan_fraction);
  check_axis_sets<T, Eigen::RowMajor>(dims, min_count, max_count, nan, nan_fraction);
}

// Small odd dims (and one 2) so that no slice length is a SIMD width.
const std::array<Index, 1> dims1{9};
const std::array<Index, 2> dims2{7, 5};
const std::array<Index, 3> dims3{5, 3, 7};
const std::array<Index, 4> dims4{3, 5, 2, 7};

// Around every SIMD width (4/8/16 floats, 2/4/8 doubles) and its multiples.
const std::vector<Index> tail_lengths{1,  2,   3,   4,   5,   6,   7,   8,    9,    10,   11,   12,   13,
                                      14, 15,  16,  17,  31,  33,  63,  64,   65,   127,  128,  129,  255,
                                      256, 257, 1000, 1023, 1025, 4097};
// Past 128 floats / 64 doubles a strided chunk is one Wide lane of 8 batches
// at the widest vectors (AVX-512), followed by partial chunks and leftovers.
const std::vector<Index> strided_widths{1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 65, 128, 129, 160, 257};

}  // namespace

TEMPLATE_TEST_CASE("matrix: every functor, rank 1-4, every single axis, both layouts", "[reference][matrix]",
                   float, double) {
  check_axis_sets_both_layouts<TestType>(dims1, 1, 1);
  check_axis_sets_both_layouts<TestType>(dims2, 1, 1);
  check_axis_sets_both_layouts<TestType>(dims3, 1, 1);
  check_axis_sets_both_layouts<TestType>(dims4, 1, 1);
}

TEMPLATE_TEST_CASE("matrix: every functor over adjacent axis sets, gamma/beta of every shape", "[reference][matrix]",
                   float, double) {
  check_axis_sets_both_layouts<TestType>(dims2, 2, 2);
  check_axis_sets_both_layouts<TestType>(dims3, 2, 3);
  check_axis_sets_both_layouts<TestType>(dims4, 2, 4);
}

TEMPLATE_TEST_CASE("matrix: SIMD tails on a contiguous axis", "[reference][matrix][simd]", float, double) {
  for (Index n : tail_lengths) {
    for_each_case<TestType>([&](const auto& c) {
      check<TestType, Eigen::RowMajor>(c, std::array<Index, 2>{3, n}, Config{{1}});
      check<TestType, Eigen::ColMajor>(c, std::array<Index, 2>{n, 3}, Config{{0}});
    });
  }
}

TEMPLATE_TEST_CASE("matrix: SIMD tails on a strided axis", "[reference][matrix][simd]", float, double) {
  // Every length with a few inner widths, and every inner width (the SIMD
  // lanes run across it) with a few lengths.
  for (Index n : tail_lengths)
    for (Index cols : {1, 3, 17, 33})
      for_each_case<TestType>([&](const auto& c) {
        check<TestType, Eigen::RowMajor>(c, std::array<Index, 2>{n, cols}, Config{{0}});
      });
  for (Index cols : strided_widths)
    for (Index n : {1, 2, 7, 16, 33, 129})
      for_each_case<TestType>([&](const auto& c) {
        check<TestType, Eigen::RowMajor>(c, std::array<Index, 2>{n, cols}, Config{{0}});
      });
}

TEMPLATE_TEST_CASE("matrix: NaN policies on every axis set and on SIMD tails", "[reference][matrix][nan]", float,
                   double) {
  for (ref::NanPolicy p : {ref::NanPolicy::propagate, ref::NanPolicy::ignore, ref::NanPolicy::zero}) {
    INFO("nan policy " << to_string(p));
    check_axis_sets_both_layouts<TestType>(dims3, 1, 3, p, 0.2);
    for (Index n : tail_lengths)
      for_each_case<TestType>([&](const auto& c) {
        check<TestType, Eigen::RowMajor>(c, std::array<Index, 2>{3, n}, Config{{1}, WeightShape::flat, p, 0.1});
        check<TestType, Eigen::RowMajor>(c, std::array<Index, 2>{n, 5}, Config{{0}, WeightShape::flat, p, 0.1});
      });
    // Strided chunks of every kind: full Wide chunks, fewer batches, scalar leftovers.
    for (Index n : {1, 7, 33, 129})
      for_each_case<TestType>([&](const auto& c) {
        check<TestType, Eigen::RowMajor>(c, std::array<Index, 2>{n, 300}, Config{{0}, WeightShape::flat, p, 0.1});
      });
  }
}
