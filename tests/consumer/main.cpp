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
  std::puts("normkit consumer: OK");
  return 0;
}
