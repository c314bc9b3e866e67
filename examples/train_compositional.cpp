// train_compositional: a one-hidden-layer perceptron in plain Eigen, trained by
// full-batch Adam to predict compositions (5 proportions that sum to 1) from 8
// features, with normkit's forward and backward passes as its normalization layers:
//   1  logits -> Softmax
//   2  logits -> softplus -> SumToOne       (the Keras "make the outputs sum to 1" layer)
//   3  as 1, with LayerNorm (trainable gamma, beta) before the hidden tanh
//   4  as 1 on raw features in mixed units, scaled by a learned (x - m) * s, next
//      to the same model on features standardized by ZScore (nothing learned)
// The data are synthetic: a fixed random teacher network and a softmax, with
// multiplicative noise, renormalized.
//
// usage: example_train_compositional [1|2|3|4] [--epochs N] [--quick]
// (no configuration number: all four in turn). The exit status is 1 if a
// model's training loss did not fall by a factor kMinFall (10), or an output row
// does not sum to 1 within 1e-5.
#include <normkit/normkit.hpp>
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

// [samples, units]: a sample is a row, so each_row normalizes one sample.
using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Row = Eigen::RowVectorXf;  // one value per unit (bias, gamma, beta, m, s)

// For an Eigen matrix the last axis (1, or -1) normalizes each row.
const int each_row = -1;
const int kFeatures = 8, kHidden = 32, kComponents = 5, kTeacherHidden = 16;
const int kTrain = 512, kHeldOut = 512;
const double kNoise = 0.1;  // sd of the log-normal noise on the true proportions
const float kLearningRate = 0.01f;
const int kFullEpochs = 2000, kQuickEpochs = 300;
// The training loss (KL divergence from the targets) must fall at least this many
// times. Measured on this data: every configuration passes 10x after about 110
// epochs, the quick run (300 epochs) falls 41-108x and the full run (2000)
// 580-1650x. Runs much shorter than --quick are expected to fail it.
const double kMinFall = 10;

// splitmix64 and Box-Muller: std::normal_distribution's algorithm is left to the
// standard library, these give the same data everywhere.
struct Rng {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double normal() {
    const double u1 = 1.0 - uniform(), u2 = uniform();  // u1 in (0, 1], so log(u1) is finite
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  Mat normal(int rows, int cols, double sd) {
    Mat m(rows, cols);
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < cols; ++j) m(i, j) = static_cast<float>(sd * normal());
    return m;
  }
};

struct Teacher {
  Mat w1, w2;
  Row b1, b2;
  Row offset, scale;  // the units the raw features are measured in
};

Teacher make_teacher(Rng& rng) {
  Teacher t;
  t.w1 = rng.normal(kFeatures, kTeacherHidden, 0.7);
  t.b1 = rng.normal(1, kTeacherHidden, 0.3);
  t.w2 = rng.normal(kTeacherHidden, kComponents, 1.0);
  t.b2 = rng.normal(1, kComponents, 0.5);
  t.offset = rng.normal(1, kFeatures, 2.0);
  t.scale = rng.normal(1, kFeatures, 1.0).array().exp();  // here 0.19 to 2.5
  return t;
}

struct Data {
  Mat features;  // standardized features, what the teacher sees
  Mat raw;       // the same in mixed units: offset + scale * feature
  Mat clean;     // the teacher's proportions before noise
  Mat target;    // proportions; each row sums to 1
};

Data make_data(const Teacher& t, int n, Rng& rng) {
  Data d;
  d.features = rng.normal(n, kFeatures, 1.0);
  d.raw = (d.features.array().rowwise() * t.scale.array()).rowwise() + t.offset.array();
  const Mat hidden = ((d.features * t.w1).rowwise() + t.b1).array().tanh();
  const Mat logits = (hidden * t.w2).rowwise() + t.b2;
  d.clean = normkit::Softmax<float>{}(logits, each_row);
  // Multiplicative noise keeps every proportion positive; SumToOne renormalizes.
  const Mat noisy = d.clean.array() * rng.normal(n, kComponents, kNoise).array().exp();
  d.target = normkit::SumToOne<float>{}(noisy, each_row);
  return d;
}

enum class Output { softmax, sum_to_one };
enum class Input { features, learned_scaling, zscore };

struct Config {
  const char* name;
  Output output;
  bool layer_norm;
  Input input;
};

// A parameter with its gradient and Adam's two moment estimates.
template <class M>
struct Param {
  M value, grad, m, v;
  explicit Param(M init) : value(std::move(init)) { grad = m = v = M::Zero(value.rows(), value.cols()); }
  void adam_step(int t) {
    const float beta1 = 0.9f, beta2 = 0.999f;
    m = beta1 * m + (1 - beta1) * grad;
    v = beta2 * v + (1 - beta2) * grad.cwiseAbs2();
    const float bias1 = 1 - std::pow(beta1, static_cast<float>(t)), bias2 = 1 - std::pow(beta2, static_cast<float>(t));
    value.array() -= kLearningRate * (m.array() / bias1) / ((v.array() / bias2).sqrt() + 1e-8f);
  }
};

struct Model {
  Config config;
  Param<Mat> w1, w2;
  Param<Row> b1, b2, gamma, beta, shift, scale;  // shift, scale: the learned (x - m) * s
  normkit::Softmax<float> softmax{};
  normkit::SumToOne<float> sum_to_one{};
  normkit::LayerNorm<float> layer_norm{1e-5f};
  // Saved by forward() for backward(): each layer's input or output, as its backward needs.
  Mat x, a, h, z, u, y;

  // Every configuration starts from the same weights (Xavier-like scale), so
  // their differences come from the layers alone.
  Model(const Config& c, Rng rng)
      : config(c),
        w1(rng.normal(kFeatures, kHidden, 1 / std::sqrt(double(kFeatures)))),
        w2(rng.normal(kHidden, kComponents, 1 / std::sqrt(double(kHidden)))),
        b1(Row::Zero(kHidden)),
        b2(Row::Zero(kComponents)),
        gamma(Row::Ones(kHidden)),
        beta(Row::Zero(kHidden)),
        shift(Row::Zero(kFeatures)),
        scale(Row::Ones(kFeatures)) {}

  void forward(const Mat& input) {
    x = config.input == Input::learned_scaling
            ? Mat((input.rowwise() - shift.value).array().rowwise() * scale.value.array())
            : input;
    a = (x * w1.value).rowwise() + b1.value;
    if (config.layer_norm)
      h = layer_norm(a, each_row, normkit::affine(gamma.value, beta.value));
    else
      h = a;
    h = h.array().tanh();
    z = (h * w2.value).rowwise() + b2.value;
    if (config.output == Output::softmax) {
      y = softmax(z, each_row);
    } else {
      // softplus(z) = max(z, 0) + log1p(exp(-|z|)): positive and never overflows.
      u = z.array().max(0.0f) + (-z.array().abs()).exp().log1p();
      y = sum_to_one(u, each_row);
    }
  }

  // Gradients of the mean KL divergence (the loss) for the last forward().
  void backward(const Mat& input, const Mat& target) {
    // KL = cross-entropy minus the targets' own entropy, a constant: same gradient.
    const Mat dy = -(target.array() / y.array()) / static_cast<float>(target.rows());
    Mat dz(dy.rows(), dy.cols());
    if (config.output == Output::softmax) {
      softmax.backward(y, dy, each_row, dz);  // Softmax's backward takes its output y
    } else {
      sum_to_one.backward(u, dy, each_row, dz);    // SumToOne's takes its input
      dz.array() *= 1 / (1 + (-z.array()).exp());  // softplus' = sigmoid
    }
    w2.grad = h.transpose() * dz;
    b2.grad = dz.colwise().sum();
    Mat da = (dz * w2.value.transpose()).array() * (1 - h.array().square());  // through tanh
    if (config.layer_norm)  // in place (dx may be dy); writes gamma's and beta's gradients
      layer_norm.backward(a, da, each_row, normkit::affine(gamma.value, beta.value), da,
                          normkit::affine_grads(gamma.grad, beta.grad));
    w1.grad = x.transpose() * da;
    b1.grad = da.colwise().sum();
    if (config.input == Input::learned_scaling) {
      const Mat dx = da * w1.value.transpose();
      scale.grad = (dx.array() * (input.rowwise() - shift.value).array()).colwise().sum();
      shift.grad = -(dx.colwise().sum().array() * scale.value.array());
    }
  }

  void step(int t) {
    for (Param<Mat>* p : {&w1, &w2}) p->adam_step(t);
    for (Param<Row>* p : {&b1, &b2}) p->adam_step(t);
    if (config.layer_norm)
      for (Param<Row>* p : {&gamma, &beta}) p->adam_step(t);
    if (config.input == Input::learned_scaling)
      for (Param<Row>* p : {&shift, &scale}) p->adam_step(t);
  }
};

// Mean over samples of sum_k t_k log(t_k / y_k), accumulated in double.
double kl_divergence(const Mat& target, const Mat& y) {
  double sum = 0;
  for (Eigen::Index i = 0; i < y.rows(); ++i)
    for (Eigen::Index k = 0; k < y.cols(); ++k) sum += target(i, k) * std::log(double(target(i, k)) / y(i, k));
  return sum / double(y.rows());
}

bool rows_sum_to_one(const Mat& y) {
  for (Eigen::Index i = 0; i < y.rows(); ++i)
    if (!(std::fabs(y.row(i).cast<double>().sum() - 1) <= 1e-5)) return false;
  return true;
}

double mean_abs_error(const Mat& y, const Mat& target) { return (y - target).cwiseAbs().cast<double>().mean(); }

// What the model sees of a data set. ZScore standardizes each column (one
// feature) over the batch it is given: the training set while training, the
// held-out set when evaluating.
Mat inputs(const Config& c, const Data& d) {
  switch (c.input) {
    case Input::learned_scaling:
      return d.raw;
    case Input::zscore:
      return normkit::ZScore<float>{}(d.raw, 0);
    default:
      return d.features;
  }
}

struct Result {
  Model model;
  double held_out_mae;
  bool ok;
};

Result train(const Config& c, const Data& train_set, const Data& held_out, int epochs) {
  std::printf("\n== %s\n", c.name);
  Model model(c, Rng{2024});
  const Mat x = inputs(c, train_set);
  double first = 0, last = 0;
  for (int epoch = 0; epoch <= epochs; ++epoch) {
    model.forward(x);
    last = kl_divergence(train_set.target, model.y);
    if (epoch == 0) first = last;
    if (epoch % std::max(1, epochs / 10) == 0 || epoch == epochs) std::printf("  epoch %5d  loss %.5f\n", epoch, last);
    if (epoch == epochs) break;  // the last pass only measures the loss
    model.backward(x, train_set.target);
    model.step(epoch + 1);
  }
  const bool train_sums = rows_sum_to_one(model.y);
  model.forward(inputs(c, held_out));
  const double mae = mean_abs_error(model.y, held_out.target);
  const bool sums = train_sums && rows_sum_to_one(model.y);
  const double fall = first / last;
  std::printf("  loss fell %.1fx (need >= %g), held-out mean absolute error %.4f, rows sum to 1 within 1e-5: %s\n",
              fall, kMinFall, mae, sums ? "yes" : "NO");
  return {model, mae, sums && fall >= kMinFall};
}

int usage(const char* program) {
  std::fprintf(stderr, "usage: %s [1|2|3|4] [--epochs N] [--quick]\n", program);
  return 2;
}

int main(int argc, char** argv) {
  int only = 0, epochs = kFullEpochs;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      epochs = kQuickEpochs;
    } else if (std::strcmp(argv[i], "--epochs") == 0 && i + 1 < argc) {
      epochs = std::atoi(argv[++i]);
      if (epochs < 1) return usage(argv[0]);
    } else if (argv[i][0] >= '1' && argv[i][0] <= '4' && argv[i][1] == '\0') {
      only = argv[i][0] - '0';
    } else {
      return usage(argv[0]);
    }
  }

  Rng rng{42};
  const Teacher teacher = make_teacher(rng);
  const Data train_set = make_data(teacher, kTrain, rng);
  const Data held_out = make_data(teacher, kHeldOut, rng);
  std::printf("%d training and %d held-out samples: %d features -> %d proportions; %d epochs of full-batch Adam\n",
              kTrain, kHeldOut, kFeatures, kComponents, epochs);
  std::printf("loss = KL divergence of the outputs from the target proportions (0 = exact fit)\n");
  std::printf("noise floor: the teacher's noise-free proportions have held-out mean absolute error %.4f\n",
              mean_abs_error(held_out.clean, held_out.target));

  const Config configs[] = {
      {"1: Softmax output", Output::softmax, false, Input::features},
      {"2: softplus then SumToOne output", Output::sum_to_one, false, Input::features},
      {"3: LayerNorm (gamma, beta) on the hidden layer, Softmax output", Output::softmax, true, Input::features},
      {"4a: raw features, learned (x - m) * s, Softmax output", Output::softmax, false, Input::learned_scaling},
      {"4b: raw features standardized by ZScore (not learned), Softmax output", Output::softmax, false, Input::zscore}};
  bool ok = true;
  for (int c = 1; c <= 3; ++c)
    if (only == 0 || only == c) ok &= train(configs[c - 1], train_set, held_out, epochs).ok;
  if (only == 0 || only == 4) {
    // (x - m) * s followed by the linear layer is itself affine in x: it adds no
    // expressive power, it only changes the parameters gradient descent moves
    // (a shift and a scale per feature, which Adam steps at their own rates).
    const Result learned = train(configs[3], train_set, held_out, epochs);
    Result fixed = train(configs[4], train_set, held_out, epochs);
    // ZScore standardizes whatever batch it is given, so 4b's held-out set was
    // scaled by its own mean and std, which differ from the training set's by
    // sampling error. Scaling it by the training set's instead (what a fitted
    // scaler does) separates that from the model.
    Model& zscored = fixed.model;
    const Row mean = train_set.raw.colwise().mean();
    const Row sd = (train_set.raw.rowwise() - mean).array().square().colwise().mean().sqrt();
    zscored.forward(Mat((held_out.raw.rowwise() - mean).array().rowwise() / sd.array()));
    std::printf("\nheld-out mean absolute error\n");
    std::printf("  learned (x - m) * s                                 %.4f\n", learned.held_out_mae);
    std::printf("  ZScore, held-out set by its own mean and std        %.4f\n", fixed.held_out_mae);
    std::printf("  ZScore model, held-out set by the training set's    %.4f\n",
                mean_abs_error(zscored.y, held_out.target));
    ok &= learned.ok && fixed.ok && rows_sum_to_one(zscored.y);
  }
  std::printf("\n%s\n", ok ? "all checks passed" : "FAILED: a loss fell less than required or a row does not sum to 1");
  return ok ? 0 : 1;
}
