// embeddings_cosine: unit-normalize embedding vectors (one per row) and take
// their cosine similarities as dot products of the unit rows, as in
//     u = F.normalize(E, p=2, dim=1); similarity = u @ u.T
#include <normkit/normkit.hpp>
#include <Eigen/Core>

#include <cmath>
#include <cstdio>

// One embedding per row. For an Eigen matrix, axis 1 normalizes each row
// (axis 0 would normalize each column).
using Embeddings = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
const int each_row = 1;

const char* const words[] = {"king", "queen", "man", "apple"};

void print_rows(const char* label, const Embeddings& e) {
  std::printf("%s\n", label);
  for (Eigen::Index i = 0; i < e.rows(); ++i) {
    std::printf("  %-6s", words[i]);
    for (Eigen::Index j = 0; j < e.cols(); ++j) std::printf(" %8.4f", e(i, j));
    std::printf("   | L1 %6.4f  L2 %6.4f\n", e.row(i).lpNorm<1>(), e.row(i).norm());
  }
}

int main() {
  Embeddings e(4, 4);
  e << 0.8f, 0.6f, 0.1f, -0.2f,  //
      0.7f, 0.7f, 0.2f, 0.3f,    //
      0.9f, 0.2f, 0.1f, -0.3f,   //
      -0.1f, 0.1f, 0.9f, 0.4f;
  print_rows("embeddings", e);

  // L2Norm's default epsilon is 1e-12, F.normalize's.
  const Embeddings unit = normkit::L2Norm<float>{}(e, each_row);
  print_rows("\nL2-normalized (F.normalize(E, p=2, dim=1))", unit);
  print_rows("\nL1-normalized (F.normalize(E, p=1, dim=1))", normkit::L1Norm<float>{}(e, each_row));

  const Eigen::MatrixXf similarity = unit * unit.transpose();
  std::printf("\ncosine similarity = unit * unit^T\n  %-6s", "");
  for (const char* w : words) std::printf(" %8s", w);
  std::printf("\n");
  for (Eigen::Index i = 0; i < similarity.rows(); ++i) {
    std::printf("  %-6s", words[i]);
    for (Eigen::Index j = 0; j < similarity.cols(); ++j) std::printf(" %8.4f", similarity(i, j));
    std::printf("\n");
  }

  // Zero and tiny vectors: epsilon clamps the norm, so nothing divides by 0.
  //   F.normalize (L2Norm default):      x / max(||x||, 1e-12)
  //   epsilon = 0:                       x / ||x||, a zero vector stays zero
  //   tf.math.l2_normalize (clamp_squared): x * rsqrt(max(sum x^2, 1e-12))
  Eigen::Matrix<float, 3, 3, Eigen::RowMajor> small;
  small << 0, 0, 0,  //
      1e-13f, 0, 0,  //
      3, 4, 0;
  const auto torch_style = normkit::L2Norm<float>{}(small, each_row);
  const auto no_epsilon = normkit::L2Norm<float>{0.0f}(small, each_row);
  const auto tf_style = normkit::L2Norm<float>{1e-12f, true}(small, each_row);
  std::printf("\nfirst component after L2 normalization\n");
  std::printf("  %-16s %14s %14s %14s\n", "x", "F.normalize", "epsilon = 0", "TF (squared)");
  const char* const names[] = {"(0, 0, 0)", "(1e-13, 0, 0)", "(3, 4, 0)"};
  for (int i = 0; i < 3; ++i)
    std::printf("  %-16s %14.4g %14.4g %14.4g\n", names[i], torch_style(i, 0), no_epsilon(i, 0), tf_style(i, 0));
  return 0;
}
