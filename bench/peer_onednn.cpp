// bench/peer_onednn.cpp - oneDNN 2.6 layer norm, softmax and log-softmax,
// forward and backward.
//
// The [slices, len] geometry becomes a 2-D memory descriptor with explicit
// strides, so the strided layouts are the transposed format (`ba`) and oneDNN
// picks whatever kernel it has for it. f32 only: oneDNN 2.6 has no f64 CPU
// implementation of these primitives.
//
// Backward: each primitive descriptor takes a forward (training) one as its
// hint. Layer norm's backward reads the mean and variance of the forward as a
// training step keeps them: they are computed once, untimed, by that forward
// (normkit's backward recomputes its statistics from x).
#include <dnnl.hpp>

#include <unordered_map>
#include <vector>

#include "bench_ops.hpp"

namespace bench {
namespace {

struct OnednnRunner final : PeerRunner {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  dnnl::primitive primitive;
  std::unordered_map<int, dnnl::memory> args;
  std::vector<float> mean, variance;  // layer norm backward

  void run() override {
    primitive.execute(stream, args);
    stream.wait();
  }
};

// oneDNN takes non-const handles even for inputs it only reads.
void* handle(const void* p) { return const_cast<void*>(p); }

}  // namespace

bool onednn_supports(Op op, bool is_double, Pass pass) {
  if (is_double) return false;
  return op == Op::layer_norm || op == Op::softmax || op == Op::log_softmax ||
         (pass == Pass::backward && op == Op::layer_norm_noaffine);
}

namespace {

std::unique_ptr<PeerRunner> make_onednn_backward(const PeerProblem& p) {
  using dnnl::memory;
  auto r = std::make_unique<OnednnRunner>();
  const memory::desc data({p.g.slices, p.g.len}, memory::data_type::f32, {p.g.slice_stride, p.g.step});
  if (p.op == Op::layer_norm || p.op == Op::layer_norm_noaffine) {
    using dnnl::normalization_flags;
    const bool affine = p.op == Op::layer_norm;
    const auto flags = affine ? normalization_flags::use_scale | normalization_flags::use_shift
                              : normalization_flags::none;
    const auto eps = static_cast<float>(kLayerNormEps);
    const dnnl::layer_normalization_forward::desc fd(dnnl::prop_kind::forward_training, data, eps, flags);
    const dnnl::layer_normalization_forward::primitive_desc fpd(fd, r->engine);
    const memory::desc stat = fpd.mean_desc();
    r->mean.resize(static_cast<std::size_t>(p.g.slices));
    r->variance.resize(r->mean.size());
    const memory mean(stat, r->engine, r->mean.data()), variance(stat, r->engine, r->variance.data());
    const memory::desc weight({p.g.len}, memory::data_type::f32, memory::format_tag::a);
    {  // the statistics, as the forward of a training step leaves them (its y goes to dx, overwritten below)
      std::unordered_map<int, memory> fargs{{DNNL_ARG_SRC, memory(data, r->engine, handle(p.x))},
                                            {DNNL_ARG_DST, memory(data, r->engine, p.y)},
                                            {DNNL_ARG_MEAN, mean},
                                            {DNNL_ARG_VARIANCE, variance}};
      if (affine) {
        fargs[DNNL_ARG_SCALE] = memory(weight, r->engine, handle(p.gamma));
        fargs[DNNL_ARG_SHIFT] = memory(weight, r->engine, handle(p.beta));
      }
      dnnl::layer_normalization_forward(fpd).execute(r->stream, fargs);
      r->stream.wait();
    }
    const auto kind = affine ? dnnl::prop_kind::backward : dnnl::prop_kind::backward_data;
    const dnnl::layer_normalization_backward::desc bd(kind, data, data, stat, eps, flags);
    const dnnl::layer_normalization_backward::primitive_desc bpd(bd, r->engine, fpd);
    r->args[DNNL_ARG_SRC] = memory(data, r->engine, handle(p.x));
    r->args[DNNL_ARG_DIFF_DST] = memory(data, r->engine, handle(p.dy));
    r->args[DNNL_ARG_DIFF_SRC] = memory(data, r->engine, p.y);
    r->args[DNNL_ARG_MEAN] = mean;
    r->args[DNNL_ARG_VARIANCE] = variance;
    if (affine) {
      r->args[DNNL_ARG_SCALE] = memory(weight, r->engine, handle(p.gamma));
      r->args[DNNL_ARG_SHIFT] = memory(weight, r->engine, handle(p.beta));  // 2.6 wants it, unused
      r->args[DNNL_ARG_DIFF_SCALE] = memory(weight, r->engine, p.dgamma);
      r->args[DNNL_ARG_DIFF_SHIFT] = memory(weight, r->engine, p.dbeta);
    }
    r->primitive = dnnl::layer_normalization_backward(bpd);
  } else {  // from the forward's output y (p.x)
    const auto alg = p.op == Op::softmax ? dnnl::algorithm::softmax_accurate : dnnl::algorithm::softmax_log;
    const dnnl::softmax_v2_forward::desc fd(dnnl::prop_kind::forward_training, alg, data, data, 1);
    const dnnl::softmax_v2_forward::primitive_desc fpd(fd, r->engine);
    const dnnl::softmax_v2_backward::desc bd(alg, data, data, data, 1);
    r->primitive = dnnl::softmax_v2_backward(dnnl::softmax_v2_backward::primitive_desc(bd, r->engine, fpd));
    r->args[DNNL_ARG_DST] = memory(data, r->engine, handle(p.x));
    r->args[DNNL_ARG_DIFF_DST] = memory(data, r->engine, handle(p.dy));
    r->args[DNNL_ARG_DIFF_SRC] = memory(data, r->engine, p.y);
  }
  return r;
}

}  // namespace

std::unique_ptr<PeerRunner> make_onednn(const PeerProblem& p) {
  using dnnl::memory;
  if (p.pass == Pass::backward) return make_onednn_backward(p);
  auto r = std::make_unique<OnednnRunner>();
  const memory::desc data({p.g.slices, p.g.len}, memory::data_type::f32, {p.g.slice_stride, p.g.step});
  r->args[DNNL_ARG_SRC] = memory(data, r->engine, handle(p.x));
  r->args[DNNL_ARG_DST] = memory(data, r->engine, p.y);
  const auto inference = dnnl::prop_kind::forward_inference;
  if (p.op == Op::layer_norm) {
    using dnnl::normalization_flags;
    const dnnl::layer_normalization_forward::desc d(inference, data, static_cast<float>(kLayerNormEps),
                                                     normalization_flags::use_scale | normalization_flags::use_shift);
    const dnnl::layer_normalization_forward::primitive_desc pd(d, r->engine);
    const memory::desc weight({p.g.len}, memory::data_type::f32, memory::format_tag::a);
    r->args[DNNL_ARG_SCALE] = memory(weight, r->engine, handle(p.gamma));
    r->args[DNNL_ARG_SHIFT] = memory(weight, r->engine, handle(p.beta));
    r->primitive = dnnl::layer_normalization_forward(pd);
  } else {
    const auto alg = p.op == Op::softmax ? dnnl::algorithm::softmax_accurate : dnnl::algorithm::softmax_log;
    const dnnl::softmax_v2_forward::desc d(inference, alg, data, data, 1);
    r->primitive = dnnl::softmax_v2_forward(dnnl::softmax_v2_forward::primitive_desc(d, r->engine));
  }
  return r;
}

}  // namespace bench
