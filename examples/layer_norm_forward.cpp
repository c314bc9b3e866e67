// layer_norm_forward: a small transformer-style step on x of shape
// [batch = 2, tokens = 3, features = 4]:
//     h = LayerNorm(features)(x) * gamma + beta      (PyTorch nn.LayerNorm(4))
//     q = h W                                        (a linear layer)
//     attention = softmax(q h^T / sqrt(4), dim=-1)   (each row sums to 1)
// and, for comparison, LayerNorm over tokens and features together
// (nn.LayerNorm([3, 4])).
#include <normkit/normkit.hpp>
#include <unsupported/Eigen/CXX11/Tensor>

#include <cmath>
#include <cstdio>

using Tensor3 = Eigen::Tensor<float, 3, Eigen::RowMajor>;  // [batch, tokens, features]
using Tensor2 = Eigen::Tensor<float, 2, Eigen::RowMajor>;
using Tensor1 = Eigen::Tensor<float, 1, Eigen::RowMajor>;

// Fixed precision so the output is the same on every build; a rounded
// -0.0000 prints as 0.0000.
double shown(double v) { return std::fabs(v) < 5e-5 ? 0.0 : v; }

struct Moments {
  double mean, std_dev;
};

// Mean and population std of y[b, t, :].
Moments token_moments(const Tensor3& y, Eigen::Index b, Eigen::Index t) {
  const Eigen::Index n = y.dimension(2);
  double sum = 0, sum_sq = 0;
  for (Eigen::Index f = 0; f < n; ++f) sum += y(b, t, f);
  const double mean = sum / n;
  for (Eigen::Index f = 0; f < n; ++f) sum_sq += (y(b, t, f) - mean) * (y(b, t, f) - mean);
  return {mean, std::sqrt(sum_sq / n)};
}

void print_tensor(const char* label, const Tensor3& y) {
  std::printf("%s\n", label);
  for (Eigen::Index b = 0; b < y.dimension(0); ++b)
    for (Eigen::Index t = 0; t < y.dimension(1); ++t) {
      std::printf("  [%ld, %ld, :]", static_cast<long>(b), static_cast<long>(t));
      for (Eigen::Index f = 0; f < y.dimension(2); ++f) std::printf(" %8.4f", shown(y(b, t, f)));
      std::printf("\n");
    }
}

int main() {
  Tensor3 x(2, 3, 4);
  x.setValues({{{1, 2, 3, 4}, {0.5f, -0.5f, 1.5f, 3.0f}, {10, 10.5f, 11, 9}},
               {{-1, 0, 1, 0}, {2, 2, 2, 2}, {0.1f, 0.5f, -0.3f, 0.2f}}});
  print_tensor("x", x);

  // Axis 2 (or -1) is the feature axis; epsilon 1e-5 as in PyTorch.
  const normkit::LayerNorm<float> layer_norm{1e-5f};
  const Tensor3 normalized = layer_norm(x, -1);
  const Tensor3 over_both = layer_norm(x, {1, 2});

  std::printf("\nper-token mean / std after LayerNorm\n");
  std::printf("  %-7s %18s   %18s\n", "", "over features (-1)", "over {1, 2}");
  for (Eigen::Index b = 0; b < 2; ++b)
    for (Eigen::Index t = 0; t < 3; ++t) {
      const Moments m1 = token_moments(normalized, b, t), m2 = token_moments(over_both, b, t);
      std::printf("  [%ld, %ld]  %8.4f %8.4f   %8.4f %8.4f\n", static_cast<long>(b), static_cast<long>(t),
                  shown(m1.mean), m1.std_dev, shown(m2.mean), m2.std_dev);
    }
  std::printf("  (token [1, 1] is constant: it normalizes to 0, i.e. exactly beta;\n"
              "   token [1, 2] has variance 0.08, so epsilon pulls its std below 1)\n");

  // Over {1, 2} each batch entry as a whole has mean 0 and std ~1.
  std::printf("\nper-batch mean / std after LayerNorm over {1, 2}\n");
  for (Eigen::Index b = 0; b < 2; ++b) {
    double sum = 0, sum_sq = 0;
    for (Eigen::Index t = 0; t < 3; ++t)
      for (Eigen::Index f = 0; f < 4; ++f) sum += over_both(b, t, f);
    const double mean = sum / 12;
    for (Eigen::Index t = 0; t < 3; ++t)
      for (Eigen::Index f = 0; f < 4; ++f) sum_sq += (over_both(b, t, f) - mean) * (over_both(b, t, f) - mean);
    std::printf("  [%ld]  %8.4f %8.4f\n", static_cast<long>(b), shown(mean), std::sqrt(sum_sq / 12));
  }

  // The learned scale and shift, one per feature.
  Tensor1 gamma(4), beta(4);
  gamma.setValues({1.0f, 1.5f, 0.5f, 2.0f});
  beta.setValues({0.0f, 0.1f, -0.1f, 0.0f});
  const Tensor3 h = layer_norm(x, -1, normkit::affine(gamma, beta));
  print_tensor("\nh = LayerNorm(x) * gamma + beta", h);

  // Linear layer: q = h W, contracting h's feature axis (2) with W's input axis (0).
  Tensor2 w(4, 4);
  w.setValues({{0.5f, -0.2f, 0.1f, 0.0f},
               {0.1f, 0.4f, 0.0f, -0.3f},
               {0.0f, 0.2f, 0.6f, 0.1f},
               {-0.1f, 0.0f, 0.2f, 0.5f}});
  const Eigen::array<Eigen::IndexPair<int>, 1> feature_axes{Eigen::IndexPair<int>(2, 0)};
  const Tensor3 q = h.contract(w, feature_axes);

  // Attention scores[b, i, j] = q[b, i, :] . h[b, j, :] / sqrt(features).
  Tensor3 scores(2, 3, 3);
  for (Eigen::Index b = 0; b < 2; ++b)
    for (Eigen::Index i = 0; i < 3; ++i)
      for (Eigen::Index j = 0; j < 3; ++j) {
        float dot = 0;
        for (Eigen::Index f = 0; f < 4; ++f) dot += q(b, i, f) * h(b, j, f);
        scores(b, i, j) = dot / std::sqrt(4.0f);
      }

  const Tensor3 attention = normkit::Softmax<float>{}(scores, -1);
  std::printf("\nattention = softmax(q h^T / sqrt(4)) over the last axis\n");
  std::printf("  %-8s %8s %8s %8s   %6s\n", "query", "key 0", "key 1", "key 2", "sum");
  for (Eigen::Index b = 0; b < 2; ++b)
    for (Eigen::Index i = 0; i < 3; ++i) {
      double sum = 0;
      std::printf("  [%ld, %ld]  ", static_cast<long>(b), static_cast<long>(i));
      for (Eigen::Index j = 0; j < 3; ++j) {
        std::printf(" %8.4f", attention(b, i, j));
        sum += attention(b, i, j);
      }
      std::printf("   %6.4f\n", sum);
    }
  return 0;
}
