// bench/peer_torch.cpp - what a libtorch user writes for each op, with the
// _out variants wherever they exist so the timed loop does not allocate full
// tensors (per-slice statistics are preallocated too).
//
// The data is shown to torch as the contiguous tensor a torch user would hold:
// [slices, len] normalized along dim 1, or, for the two strided layouts,
// [len, slices] along dim 0 (torch has its own kernels for a non-last dim).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <cmath>
#include <stdexcept>

#include "bench_ops.hpp"

namespace bench {
namespace {

struct TorchRunner final : PeerRunner {
  Op op;
  int64_t dim, len;
  at::Tensor x, y, gamma, beta;  // gamma/beta shaped to broadcast along dim
  at::Tensor s, t;               // per-slice statistics, keepdim shape

  void run() override {
    c10::InferenceMode guard;
    switch (op) {
      case Op::sum_to_one:
        at::sum_out(s, x, {dim}, true);
        at::div_out(y, x, s);
        break;
      case Op::l1:  // F.normalize(x, p, dim): x / norm(x, p).clamp_min(eps)
      case Op::l2:
      case Op::max_norm: {
        const double p = op == Op::l1 ? 1.0 : op == Op::l2 ? 2.0 : INFINITY;
        at::norm_out(s, x, p, {dim}, true);
        s.clamp_min_(op == Op::max_norm ? 0.0 : kNormEps);
        at::div_out(y, x, s);
        break;
      }
      case Op::min_max:
        at::aminmax_out(s, t, x, dim, true);
        at::sub_out(y, x, s);
        t.sub_(s);
        y.div_(t);
        break;
      case Op::z_score:
        at::std_mean_out(t, s, x, {dim}, /*correction=*/0, true);
        at::sub_out(y, x, s);
        y.div_(t);
        break;
      case Op::layer_norm:
        if (dim == 1) {
          at::native_layer_norm_out(y, s, t, x, {len}, gamma.view({len}), beta.view({len}), kLayerNormEps);
        } else {  // torch normalizes trailing dims only: transpose, then copy back
          y.t().copy_(at::layer_norm(x.t(), {len}, gamma.view({len}), beta.view({len}), kLayerNormEps));
        }
        break;
      case Op::rms_norm:  // x * rsqrt(mean(x^2) + eps) * w, with mean(x^2) from a norm (no x^2 temporary)
        at::norm_out(s, x, 2.0, {dim}, true);
        s.square_().div_(static_cast<double>(len)).add_(kRmsNormEps).rsqrt_();
        at::mul_out(y, x, s);
        y.mul_(gamma);
        break;
      case Op::softmax:
        at::softmax_out(y, x, dim);
        break;
      case Op::log_softmax:
        at::log_softmax_out(y, x, dim);
        break;
    }
  }
};

}  // namespace

void torch_init() { at::set_num_threads(1); }

bool torch_supports(Op, bool) { return true; }

std::unique_ptr<PeerRunner> make_torch(const PeerProblem& p) {
  const Geometry& g = p.g;
  auto r = std::make_unique<TorchRunner>();
  r->op = p.op;
  r->len = g.len;
  std::vector<int64_t> shape, stat_shape, weight_shape;
  if (g.step == 1 && g.slice_stride == g.len) {
    r->dim = 1;
    shape = {g.slices, g.len};
    stat_shape = {g.slices, 1};
    weight_shape = {1, g.len};
  } else if (g.slice_stride == 1 && g.step == g.slices) {
    r->dim = 0;
    shape = {g.len, g.slices};
    stat_shape = {1, g.slices};
    weight_shape = {g.len, 1};
  } else {
    throw std::invalid_argument("peer_torch: unsupported geometry");
  }
  const auto opts = at::TensorOptions().dtype(p.is_double ? at::kDouble : at::kFloat);
  r->x = at::from_blob(const_cast<void*>(p.x), shape, opts);  // read only
  r->y = at::from_blob(p.y, shape, opts);
  if (p.gamma) r->gamma = at::from_blob(const_cast<void*>(p.gamma), weight_shape, opts);
  if (p.beta) r->beta = at::from_blob(const_cast<void*>(p.beta), weight_shape, opts);
  // native_layer_norm's mean/rstd are [slices, 1]; the others keep dims.
  r->s = at::empty(p.op == Op::layer_norm ? std::vector<int64_t>{g.slices, 1} : stat_shape, opts);
  r->t = at::empty_like(r->s);
  return r;
}

}  // namespace bench
