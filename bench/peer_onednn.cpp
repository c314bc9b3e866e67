// bench/peer_onednn.cpp - oneDNN 2.6 layer norm, softmax and log-softmax.
//
// The [slices, len] geometry becomes a 2-D memory descriptor with explicit
// strides, so the strided layouts are the transposed format (`ba`) and oneDNN
// picks whatever kernel it has for it. f32 only: oneDNN 2.6 has no f64 CPU
// implementation of these primitives.
#include <dnnl.hpp>

#include <unordered_map>

#include "bench_ops.hpp"

namespace bench {
namespace {

struct OnednnRunner final : PeerRunner {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  dnnl::primitive primitive;
  std::unordered_map<int, dnnl::memory> args;

  void run() override {
    primitive.execute(stream, args);
    stream.wait();
  }
};

// oneDNN takes non-const handles even for inputs it only reads.
void* handle(const void* p) { return const_cast<void*>(p); }

}  // namespace

bool onednn_supports(Op op, bool is_double) {
  return !is_double && (op == Op::layer_norm || op == Op::softmax || op == Op::log_softmax);
}

std::unique_ptr<PeerRunner> make_onednn(const PeerProblem& p) {
  using dnnl::memory;
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
