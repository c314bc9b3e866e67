// Smoke test for downstream use of normkit (installed package or add_subdirectory).
#include <normkit/normkit.hpp>
#include <unsupported/Eigen/CXX11/Tensor>

#include <cmath>
#include <cstdio>

int main() {
  Eigen::Tensor<float, 2> x(3, 4);
  x.setValues({{1, 2, 3, 4}, {0.5f, 0.5f, 1, 2}, {10, 0, 0, 0}});
  const Eigen::Tensor<float, 2> y = normkit::SumToOne<float>{}(x, 1);
  if (y.dimension(0) != 3 || y.dimension(1) != 4) {
    std::fprintf(stderr, "unexpected shape %ld x %ld\n", long(y.dimension(0)), long(y.dimension(1)));
    return 1;
  }
  for (Eigen::Index i = 0; i < y.dimension(0); ++i) {
    float sum = 0;
    for (Eigen::Index j = 0; j < y.dimension(1); ++j) sum += y(i, j);
    if (!(std::abs(sum - 1.0f) <= 1e-5f)) {
      std::fprintf(stderr, "row %ld sums to %.9g, expected 1\n", long(i), sum);
      return 1;
    }
  }
#ifdef NORMKIT_CONSUMER_CXX20
  static_assert(__cplusplus >= 202002L, "the package consumer is built as C++20");
  // C++20 users name the options they set; the rest keep their defaults.
  const normkit::ZScore<float> sample_std{.ddof = 1};
  const normkit::LayerNorm<float> ln{.epsilon = 1e-3f, .nan_policy = normkit::NanPolicy::ignore};
  const Eigen::Tensor<float, 2> z = sample_std(x, 1), l = ln(x, 1);
  if (sample_std.ddof != 1 || ln.epsilon != 1e-3f || !(std::abs(z(0, 0) + 1.161895f) < 1e-5f) || !(l(0, 0) < 0)) {
    std::fprintf(stderr, "designated initializers: z(0,0) = %.7g, l(0,0) = %.7g\n", z(0, 0), l(0, 0));
    return 1;
  }
#endif
  std::puts("normkit consumer: OK");
  return 0;
}
