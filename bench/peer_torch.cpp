// bench/peer_torch.cpp - what a libtorch user writes for each op, with the
// _out variants wherever they exist so the timed loop does not allocate full
// tensors (per-slice statistics are preallocated too).
//
// The data is shown to torch as the contiguous tensor a torch user would hold:
// [slices, len] normalized along dim 1, or, for the two strided layouts,
// [len, slices] along dim 0 (torch has its own kernels for a non-last dim).
//
// Backward: the kernels torch's autograd calls where ATen has them
// (_softmax_backward_data, _log_softmax_backward_data: into dx;
// native_layer_norm_backward: it allocates dx, dgamma and dbeta, with the mean
// and rstd of one untimed forward, as a training step keeps them), else
// autograd itself: the forward expression is recorded once and the timed call
// is torch::autograd::grad over the retained graph (it allocates its results).
// Results torch allocates are copied into the harness's buffers after the
// timed call (publish(), untimed).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <array>
#include <cmath>
#include <stdexcept>
#include <tuple>
#include <vector>

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
      case Op::layer_norm_noaffine:  // backward only (torch_supports)
        throw std::logic_error("peer_torch: layer_norm_noaffine is timed backward only");
    }
  }
};

// The torch shapes of one geometry: the data, per-slice statistics (keepdim)
// and per-position weights, and the normalized dim.
struct TorchShapes {
  int64_t dim;
  std::vector<int64_t> data, stat, weight;
};

TorchShapes torch_shapes(const Geometry& g) {
  if (g.step == 1 && g.slice_stride == g.len) return {1, {g.slices, g.len}, {g.slices, 1}, {1, g.len}};
  if (g.slice_stride == 1 && g.step == g.slices) return {0, {g.len, g.slices}, {1, g.slices}, {g.len, 1}};
  throw std::invalid_argument("peer_torch: unsupported geometry");
}

// The forward of an op as autograd records it (no _out variants: they are not
// differentiable); x and gamma are leaves that require grad.
at::Tensor autograd_forward(Op op, const at::Tensor& x, const at::Tensor& gamma, int64_t dim) {
  switch (op) {
    case Op::sum_to_one: return x / x.sum({dim}, true);
    case Op::l1:
    case Op::l2:
      return x / at::norm(x, op == Op::l1 ? 1.0 : 2.0, {dim}, true).clamp_min(kNormEps);  // F.normalize
    case Op::max_norm: return x / at::norm(x, INFINITY, {dim}, true);
    case Op::min_max: {
      const at::Tensor lo = at::amin(x, {dim}, true);
      return (x - lo) / (at::amax(x, {dim}, true) - lo);
    }
    case Op::z_score: {
      const auto [sd, mean] = at::std_mean(x, at::IntArrayRef{dim}, c10::optional<int64_t>(0), true);
      return (x - mean) / sd;
    }
    case Op::rms_norm:  // the usual module: x * rsqrt(mean(x^2) + eps) * w
      return x * (x.pow(2).mean({dim}, true) + kRmsNormEps).rsqrt() * gamma;
    default: break;
  }
  throw std::invalid_argument("peer_torch: no autograd forward for this op");
}

struct TorchBackwardRunner final : PeerRunner {
  Op op;
  int64_t dim, len;
  at::ScalarType dtype;
  at::Tensor saved, dy, dx, gamma, beta, dgamma, dbeta;  // the harness's buffers; gamma.. are [len]
  at::Tensor mean, rstd;                                // layer norm: from one forward
  at::Tensor leaf_x, leaf_gamma, out;                   // autograd: out = forward(leaf_x, leaf_gamma)
  std::vector<at::Tensor> results;                      // what torch allocated: dx (dgamma, dbeta)

  void run() override {
    switch (op) {
      case Op::softmax: {
        c10::InferenceMode guard;
        at::_softmax_backward_data_out(dx, dy, saved, dim, dtype);
        break;
      }
      case Op::log_softmax: {
        c10::InferenceMode guard;
        at::_log_softmax_backward_data_out(dx, dy, saved, dim, dtype);
        break;
      }
      case Op::layer_norm:
      case Op::layer_norm_noaffine: {
        c10::InferenceMode guard;
        const bool affine = op == Op::layer_norm;
        // torch normalizes trailing dims only: dim 0 is the transposed view (made contiguous inside)
        const at::Tensor x = dim == 1 ? saved : saved.t(), g = dim == 1 ? dy : dy.t();
        auto [d_x, d_gamma, d_beta] = at::native_layer_norm_backward(
            g, x, {len}, mean, rstd, affine ? c10::optional<at::Tensor>(gamma) : c10::nullopt,
            affine ? c10::optional<at::Tensor>(beta) : c10::nullopt, {true, affine, affine});
        results = {d_x, d_gamma, d_beta};
        break;
      }
      default:  // autograd over the recorded graph
        results = torch::autograd::grad({out}, leaf_gamma.defined() ? std::vector<at::Tensor>{leaf_x, leaf_gamma}
                                                                    : std::vector<at::Tensor>{leaf_x},
                                        {dy}, /*retain_graph=*/true);
        break;
    }
  }

  void publish() override {
    if (results.empty()) return;
    const bool layer_norm = op == Op::layer_norm || op == Op::layer_norm_noaffine;
    (layer_norm && dim == 0 ? dx.t() : dx).copy_(results[0]);
    if (dgamma.defined() && results.size() > 1) dgamma.copy_(results[1].reshape({len}));
    if (dbeta.defined() && results.size() > 2) dbeta.copy_(results[2].reshape({len}));
  }
};

std::unique_ptr<PeerRunner> make_torch_backward(const PeerProblem& p) {
  const Geometry& g = p.g;
  const TorchShapes sh = torch_shapes(g);
  const auto opts = at::TensorOptions().dtype(p.is_double ? at::kDouble : at::kFloat);
  auto r = std::make_unique<TorchBackwardRunner>();
  r->op = p.op;
  r->dim = sh.dim;
  r->len = g.len;
  r->dtype = p.is_double ? at::kDouble : at::kFloat;
  r->saved = at::from_blob(const_cast<void*>(p.x), sh.data, opts);  // read only
  r->dy = at::from_blob(const_cast<void*>(p.dy), sh.data, opts);    // read only
  r->dx = at::from_blob(p.y, sh.data, opts);
  if (p.gamma) r->gamma = at::from_blob(const_cast<void*>(p.gamma), {g.len}, opts);
  if (p.beta) r->beta = at::from_blob(const_cast<void*>(p.beta), {g.len}, opts);
  if (p.dgamma) r->dgamma = at::from_blob(p.dgamma, {g.len}, opts);
  if (p.dbeta) r->dbeta = at::from_blob(p.dbeta, {g.len}, opts);
  switch (p.op) {
    case Op::softmax:
    case Op::log_softmax:
      break;
    case Op::layer_norm:
    case Op::layer_norm_noaffine: {
      c10::InferenceMode guard;
      const at::Tensor x = sh.dim == 1 ? r->saved : r->saved.t();
      const auto fwd = at::native_layer_norm(x, {g.len}, p.gamma ? c10::optional<at::Tensor>(r->gamma) : c10::nullopt,
                                             p.beta ? c10::optional<at::Tensor>(r->beta) : c10::nullopt, kLayerNormEps);
      r->mean = std::get<1>(fwd);
      r->rstd = std::get<2>(fwd);
      break;
    }
    default:
      r->leaf_x = r->saved.detach().requires_grad_(true);
      if (p.gamma) r->leaf_gamma = r->gamma.view(sh.weight).detach().requires_grad_(true);
      r->out = autograd_forward(p.op, r->leaf_x, r->leaf_gamma, sh.dim);
      break;
  }
  return r;
}

}  // namespace

void torch_init() { at::set_num_threads(1); }

bool torch_supports(Op op, bool, Pass pass) { return pass == Pass::backward || op != Op::layer_norm_noaffine; }

std::unique_ptr<PeerRunner> make_torch(const PeerProblem& p) {
  if (p.pass == Pass::backward) return make_torch_backward(p);
  const Geometry& g = p.g;
  auto r = std::make_unique<TorchRunner>();
  r->op = p.op;
  r->len = g.len;
  const TorchShapes sh = torch_shapes(g);
  r->dim = sh.dim;
  const std::vector<int64_t>&shape = sh.data, &stat_shape = sh.stat, &weight_shape = sh.weight;
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
