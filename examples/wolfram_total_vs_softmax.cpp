// wolfram_total_vs_softmax: Wolfram Language Normalize[v, Total] next to
// SoftmaxLayer[][v] for v = {1, 2, 4, 5, 6}:
//     Normalize[{1, 2, 4, 5, 6}, Total] = {0.0555556, 0.111111, 0.222222, 0.277778, 0.333333}
//     softmax                           = {0.00440888, 0.0119846, 0.0885547, 0.240717, 0.654335}
// Both sum to one; softmax exaggerates the gaps (and accepts negative inputs).
#include <normkit/normkit.hpp>
#include <unsupported/Eigen/CXX11/Tensor>

#include <cstdio>

int main() {
  Eigen::Tensor<double, 1> v(5);
  v.setValues({1, 2, 4, 5, 6});

  // A rank-1 tensor has the single axis 0.
  const Eigen::Tensor<double, 1> by_total = normkit::SumToOne<double>{}(v, 0);
  const Eigen::Tensor<double, 1> softmax = normkit::Softmax<double>{}(v, 0);

  // %g with 6 significant digits, as Wolfram displays machine reals.
  std::printf("%5s  %14s  %14s\n", "v", "v / Total[v]", "softmax(v)");
  double total = 0, softmax_total = 0;
  for (Eigen::Index i = 0; i < v.size(); ++i) {
    std::printf("%5g  %14.6g  %14.6g\n", v(i), by_total(i), softmax(i));
    total += by_total(i);
    softmax_total += softmax(i);
  }
  std::printf("%5s  %14.6g  %14.6g\n", "sum", total, softmax_total);

  std::printf("\nratio largest / smallest: %.6g (total)  %.6g (softmax = e^5)\n", by_total(4) / by_total(0),
              softmax(4) / softmax(0));
  return 0;
}
