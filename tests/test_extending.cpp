// The extension protocol (normkit/ext.hpp) from the outside: a functor written
// here, in a test file, runs on the engine like the built-in ones; the
// statistic decides accuracy (docs/extending.md quotes this test); and the
// functors written only against the protocol (PowerNorm, the softmax
// temperature) match the long-double reference on every axis and layout.
#include <catch2/catch.hpp>

#include <normkit/ext.hpp>
#include <normkit/normkit.hpp>

#include "engine_instances.hpp"

#include "reference.hpp"
#include "reference_backward.hpp"

#include <cmath>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

namespace {

// y = x - mean(x), with the mean from a plain sum or from shifted moments.
template <class T, class Stat>
struct Center {
  using value_type = T;
  using statistic = Stat;
  static constexpr const char* name = "Center";
  normkit::NanPolicy nan_policy = normkit::NanPolicy::propagate;

  void validate(normkit::ext::Index) const {}

  template <class Total>
  auto finalize(const Total& t) const {
    using A = normkit::ext::wide_t<Total>;
    if constexpr (std::is_same<Stat, normkit::stats::Moments>::value) {
      auto m = normkit::ext::divided_by<A>(t.origin, A(1), 0);
      m.center_lo = t.mean;
      return m;
    } else {
      return normkit::ext::divided_by<A>(t.value() / t.n, A(1), 0);
    }
  }

  NORMKIT_CALL_OPERATORS
};

// Worst error over the rows, in ulps of each row's largest exact output.
template <class Y>
double worst_ulps(const Eigen::Tensor<float, 2, Eigen::RowMajor>& x, const Y& y) {
  double worst = 0;
  for (Eigen::Index r = 0; r < x.dimension(0); ++r) {
    long double m = 0, top = 0;
    for (Eigen::Index k = 0; k < x.dimension(1); ++k) m += x(r, k);
    m /= x.dimension(1);
    for (Eigen::Index k = 0; k < x.dimension(1); ++k) top = std::max(top, std::fabs(x(r, k) - m));
    const double ulp = std::nextafter(float(top), INFINITY) - float(top);
    for (Eigen::Index k = 0; k < x.dimension(1); ++k)
      worst = std::max(worst, double(std::fabs(y(r, k) - (x(r, k) - m))) / ulp);
  }
  return worst;
}

}  // namespace

TEST_CASE("a functor written against normkit::ext: the statistic decides accuracy at large offsets", "[ext]") {
  std::mt19937 gen(1);
  std::uniform_real_distribution<double> u(0, 1);
  Eigen::Tensor<float, 2, Eigen::RowMajor> x(64, 768);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = float(1e4 + u(gen));
  const auto plain = Center<float, normkit::stats::LinearSum<false>>{}(x, 1);
  const auto shifted = Center<float, normkit::stats::Moments>{}(x, 1);
  const double plain_ulps = worst_ulps(x, plain), shifted_ulps = worst_ulps(x, shifted);
  INFO("LinearSum " << plain_ulps << " ulp, Moments " << shifted_ulps << " ulp");
  CHECK(plain_ulps > 1000);  // docs/extending.md: 17,792 in the run it quotes
  CHECK(shifted_ulps < 1);
}

TEMPLATE_TEST_CASE("PowerNorm and the softmax temperature against the reference, every axis and layout", "[ext]",
                   float, double) {
  using T = TestType;
  const long double tol = std::is_same<T, float>::value ? 2e-6L : 1e-14L;
  const auto check = [&](auto x) {
    for (int axis = 0; axis < 3; ++axis) {
      for (const double p : {1.0, 1.5, 2.0, 3.0, 7.5}) {
        const auto y = normkit::PowerNorm<T>{T(p)}(x, axis);
        const auto e = ref::apply(x, {axis}, [&](const ref::Slice& s) { return ref::power_norm(s, p, 1e-12L); });
        const auto r = ref::compare(y, e, tol, 1e-30L);
        INFO("PowerNorm p = " << p << " axis " << axis << ": " << r.message);
        CHECK(r.ok);
      }
      for (const double t : {0.25, 1.0, 3.0}) {
        normkit::Softmax<T> sm{};
        sm.temperature = T(t);
        normkit::LogSoftmax<T> lsm{};
        lsm.temperature = T(t);
        const auto e1 = ref::apply(x, {axis}, [&](const ref::Slice& s) {
          return ref::softmax(s, ref::MaskedSlice::nan, ref::NanPolicy::propagate, t);
        });
        const auto e2 = ref::apply(x, {axis}, [&](const ref::Slice& s) {
          return ref::log_softmax(s, ref::MaskedSlice::nan, ref::NanPolicy::propagate, t);
        });
        const auto r1 = ref::compare(sm(x, axis), e1, tol * 4, 1e-30L);
        const auto r2 = ref::compare(lsm(x, axis), e2, tol * 4, tol * 4);
        INFO("temperature " << t << " axis " << axis << ": " << r1.message << " / " << r2.message);
        CHECK(r1.ok);
        CHECK(r2.ok);
      }
    }
  };
  for (const Eigen::Index n : {1, 7, 16, 33}) {
    check(ref::random_tensor<T, 3, Eigen::RowMajor>({3, n, 5}, 11u + unsigned(n)));
    check(ref::random_tensor<T, 3, Eigen::ColMajor>({4, 6, n}, 17u + unsigned(n)));
  }
}

// ExpMap evaluates exp((x - max) / t) as exp(x / t - max / t): the rounding of
// max / t shifts a slice's exponents alike, which the division by the sum
// cancels; past 2^30 (float) or 2^62 (double) both are scaled down, and
// outputs below e^-32 (float) or e^-256 (double) may read up to that
// (ext/map.hpp).
TEMPLATE_TEST_CASE("Softmax temperature at large offsets", "[ext]", float, double) {
  using T = TestType;
  const bool is_float = std::is_same<T, float>::value;
  const long double tol = is_float ? 2e-6L : 1e-14L;
  const auto against_reference = [&](const std::vector<T>& values, double t, long double abs_tol) {
    Eigen::Tensor<T, 1> x(Eigen::Index(values.size()));
    for (std::size_t i = 0; i < values.size(); ++i) x(Eigen::Index(i)) = values[i];
    normkit::Softmax<T> sm{};
    sm.temperature = T(t);
    const Eigen::Tensor<T, 1> y = sm(x, 0);
    const auto e = ref::apply(x, {0}, [&](const ref::Slice& s) {
      return ref::softmax(s, ref::MaskedSlice::nan, ref::NanPolicy::propagate, t);
    });
    const auto r = ref::compare(y, e, tol * 4, abs_tol);
    INFO("temperature " << t << " first value " << values[0] << ": " << r.message);
    CHECK(r.ok);
  };
  // Offsets of 1e4 and 1e6 with spreads of a few units: the rounded center
  // shifts every exponent alike.
  for (const double offset : {1e4, 1e6}) {
    std::vector<T> v(37);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = T(offset + 0.37 * double(i % 11) - 0.21 * double(i % 5));
    for (const double t : {0.3, 1.0, 7.0}) against_reference(v, t, 1e-30L);
  }
  // |max / t| past the bound: neighbours of the maximum lie 2^7 (float) or
  // 2^10 (double) apart in the exponent, so the exact outputs are 1 at the
  // maximum and below e^-128 elsewhere; ours are within e^-32 / e^-256.
  const T big = is_float ? T(1e9) : T(1e19);
  const T next = std::nextafter(big, T(0)), next2 = std::nextafter(next, T(0));
  against_reference({big, next, next2, T(0), -big}, 0.5, is_float ? 1.3e-14L : 1e-111L);
  against_reference({next2, big, next, big}, 0.5, is_float ? 1.3e-14L : 1e-111L);  // two maxima: 1/2 each
  // Temperature 1 keeps exp(x - max) exact at any magnitude.
  const T huge = std::numeric_limits<T>::max() / 4;
  against_reference({huge, std::nextafter(huge, T(0)), -huge}, 1.0, 1e-30L);
}

TEST_CASE("PowerNorm: huge and tiny values, zero slices, options", "[ext]") {
  Eigen::Tensor<float, 1> big(4);
  big.setValues({3e38f, -3e38f, 1e38f, 0.0f});
  const auto y = normkit::PowerNorm<float>{3.0f}(big, 0);
  const long double n3 = std::cbrt(2 * std::pow(3e38L, 3) + std::pow(1e38L, 3));
  CHECK(std::fabs(y(0) - float(3e38L / n3)) <= 1e-6f);
  Eigen::Tensor<float, 1> zero(5);
  zero.setZero();
  const auto z = normkit::PowerNorm<float>{3.0f, 0.0f}(zero, 0);
  for (int i = 0; i < 5; ++i) CHECK(z(i) == 0.0f);
  CHECK_THROWS_AS((normkit::PowerNorm<float>{0.5f}(big, 0)), normkit::option_error);
  CHECK_THROWS_WITH((normkit::PowerNorm<float>{INFINITY}(big, 0)), Catch::Contains("p must be finite and >= 1"));
  normkit::Softmax<float> sm{};
  sm.temperature = 0;
  CHECK_THROWS_WITH(sm(big, 0), Catch::Contains("temperature must be finite and > 0"));
}
