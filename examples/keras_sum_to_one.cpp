// keras_sum_to_one: the Keras "normalize each row to sum to 1" Lambda layer,
//     Lambda(lambda x: x / K.sum(x, axis=1, keepdims=True))
// and what happens when a row is all zeros.
#include <normkit/normkit.hpp>
#include <unsupported/Eigen/CXX11/Tensor>

#include <cmath>
#include <cstdio>

using Matrix = Eigen::Tensor<float, 2, Eigen::RowMajor>;  // [batch, features], as in Keras

// Fixed precision so the output is the same on every build; NaN prints as
// "nan" whatever its sign bit, and a rounded -0.0000 as 0.0000.
void print_value(double v) {
  if (std::isnan(v)) {
    std::printf(" %8s", "nan");
    return;
  }
  std::printf(" %8.4f", std::fabs(v) < 5e-5 ? 0.0 : v);
}

void print_rows(const char* label, const Matrix& m) {
  std::printf("%s\n", label);
  for (Eigen::Index i = 0; i < m.dimension(0); ++i) {
    std::printf("  row %ld:", static_cast<long>(i));
    double sum = 0;
    for (Eigen::Index j = 0; j < m.dimension(1); ++j) {
      print_value(m(i, j));
      sum += m(i, j);
    }
    std::printf("   | sum");
    print_value(sum);
    std::printf("\n");
  }
}

int main() {
  // axis 1 = each row (normkit axes are index positions, as in Eigen reductions).
  const int each_row = 1;

  Matrix x(2, 5);
  x.setValues({{1, 2, 3, 4, 5}, {6, 7, 8, 9, 10}});
  print_rows("x", x);
  print_rows("SumToOne<float>{}(x, 1)", normkit::SumToOne<float>{}(x, each_row));

  // A row of zeros: the naive layer divides 0 by 0.
  Matrix z(2, 5);
  z.setValues({{1, 2, 3, 4, 5}, {0, 0, 0, 0, 0}});
  std::printf("\nWith an all-zero row:\n");
  print_rows("x", z);

  const Eigen::array<Eigen::Index, 1> row_axis{1};
  const Eigen::array<Eigen::Index, 2> keep_dims{2, 1}, across{1, 5};
  const Matrix naive = z / z.sum(row_axis).reshape(keep_dims).broadcast(across);
  print_rows("naive x / sum(x)                         (0/0 = NaN)", naive);

  // SumToOne's fields: {epsilon, degenerate, add_epsilon, nan_policy}.
  // A row is degenerate when |sum| <= epsilon (or the sum is infinite).
  using normkit::Degenerate;
  print_rows("SumToOne  degenerate = uniform (default)  (1/n, still sums to 1)",
             normkit::SumToOne<float>{0.0f, Degenerate::uniform}(z, each_row));
  print_rows("SumToOne  degenerate = zeros", normkit::SumToOne<float>{0.0f, Degenerate::zeros}(z, each_row));
  print_rows("SumToOne  degenerate = nan                (same as the naive layer)",
             normkit::SumToOne<float>{0.0f, Degenerate::nan}(z, each_row));

  // The other common Keras form: x / (K.sum(x, axis=1, keepdims=True) + K.epsilon()).
  const float keras_epsilon = 1e-7f;
  print_rows("SumToOne  add_epsilon, epsilon = 1e-7     (Keras x / (sum + K.epsilon()))",
             normkit::SumToOne<float>{keras_epsilon, Degenerate::uniform, true}(z, each_row));
  return 0;
}
