// bench/bench_ops.hpp - what the benchmark's translation units share.
//
// Deliberately free of Eigen, oneDNN and torch headers: the peers live in their
// own TUs (peer_onednn.cpp, peer_torch.cpp) and meet the main TU only here.
#pragma once

#include <cstdint>
#include <memory>

namespace bench {

// layer_norm_noaffine (LayerNorm without gamma and beta) is timed backward
// only: the peers' layer-norm backwards have a form without scale/shift.
enum class Op {
  sum_to_one,
  l1,
  l2,
  max_norm,
  min_max,
  z_score,
  layer_norm,
  rms_norm,
  softmax,
  log_softmax,
  layer_norm_noaffine
};

struct OpInfo {
  Op op;
  const char* name;
  bool positive_data;  // sum_to_one divides by the sum: keep it away from 0
  bool gamma;          // takes a per-position scale ...
  bool beta;           // ... and shift
  bool forward;        // its forward is timed too
};

inline constexpr OpInfo kOps[] = {
    {Op::sum_to_one, "sum_to_one", true, false, false, true},
    {Op::l1, "l1", false, false, false, true},
    {Op::l2, "l2", false, false, false, true},
    {Op::max_norm, "max_norm", false, false, false, true},
    {Op::min_max, "min_max", false, false, false, true},
    {Op::z_score, "z_score", false, false, false, true},
    {Op::layer_norm, "layer_norm", false, true, true, true},
    {Op::rms_norm, "rms_norm", false, true, false, true},
    {Op::softmax, "softmax", false, false, false, true},
    {Op::log_softmax, "log_softmax", false, false, false, true},
    {Op::layer_norm_noaffine, "layer_norm_noaffine", false, false, false, false},
};

// The backward of an op reads the forward's output y in place of x.
constexpr bool backward_from_output(Op op) { return op == Op::softmax || op == Op::log_softmax; }

// A benchmark times an op's forward (y from x) or its backward (dx from x and
// dy; for layer_norm also dgamma and dbeta, for rms_norm dgamma). Backward
// benchmarks are named <op>_backward.
enum class Pass { forward, backward };
inline constexpr const char* kPassSuffix[] = {"", "_backward"};

// One epsilon per op for every implementation and the reference (the
// libraries' defaults: normkit = PyTorch for these).
inline constexpr double kNormEps = 1e-12;       // l1, l2 (F.normalize); max_norm and sum_to_one use 0
inline constexpr double kLayerNormEps = 1e-5;
inline constexpr double kRmsNormEps = 1e-6;

// The normalized data seen as [slices, len]: element i of slice s is at
// s * slice_stride + i * step (in elements). Contiguous rows have step 1; the
// two strided layouts have slice_stride 1 and step = slices.
struct Geometry {
  std::int64_t slices, len, slice_stride, step;
};

// Backward: x is what the backward reads (x, or the forward's output y where
// backward_from_output), y receives dx.
struct PeerProblem {
  Op op;
  Pass pass;
  bool is_double;
  Geometry g;
  const void* x;
  void* y;
  const void* gamma;  // len elements, or nullptr
  const void* beta;
  const void* dy;     // backward only
  void* dgamma;       // backward of an op with gamma (beta): len elements, else nullptr
  void* dbeta;
};

// A peer implementation bound to one problem (buffers, primitives, views).
struct PeerRunner {
  virtual ~PeerRunner() = default;
  virtual void run() = 0;
  // After run(), untimed: copies what run() left in the peer's own tensors
  // (where the library allocates its results) into the problem's buffers.
  virtual void publish() {}
};

#ifdef NORMKIT_BENCH_HAVE_ONEDNN
bool onednn_supports(Op op, bool is_double, Pass pass);
std::unique_ptr<PeerRunner> make_onednn(const PeerProblem& p);
#endif

#ifdef NORMKIT_BENCH_HAVE_TORCH
void torch_init();  // single-threaded intra-op
bool torch_supports(Op op, bool is_double, Pass pass);
std::unique_ptr<PeerRunner> make_torch(const PeerProblem& p);
#endif

}  // namespace bench
