// column_scaling: per-feature (column) scaling of a data matrix, as
// scikit-learn's MinMaxScaler and StandardScaler do:
//     X = [[1, 5, 10], [2, 6, 12], [3, 7, 14]]
//     MinMaxScaler().fit_transform(X)   -> each column [0, 0.5, 1]
//     StandardScaler().fit_transform(X) -> each column [-1.22474, 0, 1.22474]
#include <normkit/normkit.hpp>
#include <Eigen/Core>

#include <cmath>
#include <cstdio>

// For an Eigen matrix, axis 0 normalizes each column (one feature across all
// samples) and axis 1 each row.
const int each_column = 0;

void print_matrix(const char* label, const Eigen::MatrixXd& m) {
  std::printf("%s\n", label);
  for (Eigen::Index i = 0; i < m.rows(); ++i) {
    std::printf("  [");
    // A rounded -0.00000 prints as 0.00000.
    for (Eigen::Index j = 0; j < m.cols(); ++j) std::printf(" %9.5f", std::fabs(m(i, j)) < 5e-6 ? 0.0 : m(i, j));
    std::printf(" ]\n");
  }
}

int main() {
  Eigen::MatrixXd x(3, 3);
  x << 1, 5, 10,  //
      2, 6, 12,   //
      3, 7, 14;
  print_matrix("X (rows = samples, columns = features)", x);

  print_matrix("\nMinMax: MinMaxScaler()", normkit::MinMax<double>{}(x, each_column));
  // Fields {lo, hi}: MinMaxScaler(feature_range=(-1, 1)).
  print_matrix("\nMinMax{-1, 1}: MinMaxScaler(feature_range=(-1, 1))", normkit::MinMax<double>{-1, 1}(x, each_column));

  // ddof = 0 (population std) is StandardScaler; ddof = 1 (sample std) is R's scale().
  const Eigen::MatrixXd z = normkit::ZScore<double>{}(x, each_column);
  print_matrix("\nZScore: StandardScaler()", z);
  print_matrix("\nZScore{1}: ddof = 1, R's scale(X)", normkit::ZScore<double>{1}(x, each_column));

  // Check: every standardized column has mean 0 and population std 1.
  std::printf("\nstandardized columns:\n");
  for (Eigen::Index j = 0; j < z.cols(); ++j) {
    const double mean = z.col(j).mean();
    const double std_dev = std::sqrt((z.col(j).array() - mean).square().mean());
    std::printf("  column %ld: mean %8.5f  std %8.5f\n", static_cast<long>(j), std::fabs(mean) < 5e-6 ? 0.0 : mean,
                std_dev);
  }
  return 0;
}
