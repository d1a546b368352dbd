// Dense: a matrix product over the last axis, with its bias and activation fused into the
// kernel's epilogue; inference folds the batch norm and ReLU after it in.
#include "layers/layer.h"

namespace ck {

namespace {

struct Dense {
  static constexpr LayerFlags kFlags = [] {
    LayerFlags f;
    f.act_backward_by_pool = true;
    return f;
  }();

  static Shape infer(LayerBuild& b) {
    const LayerSpec& spec = b.spec();
    const DenseAttrs& l = spec.attrs<DenseAttrs>();
    Shape out = b.in();
    require(l.units > 0, ErrorKind::Value, spec.name + ": units must be > 0");
    require_fused_act(spec);
    b.add_param(ParamRole::Kernel, "kernel", {out.back(), l.units}, true);
    if (l.use_bias) b.add_param(ParamRole::Bias, "bias", {l.units}, true);
    out.back() = l.units;
    return out;
  }

  // The input as [rows, K].
  static int depth(const LayerPass& c) { return int(c.in_shape().back()); }
  static int rows(const LayerPass& c) { return int(c.n_in() / size_t(depth(c))); }

  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    const DenseAttrs& l = c.spec().attrs<DenseAttrs>();
    k.dense_fwd(c.y(), c.x(), c.param(ParamRole::Kernel), c.param(ParamRole::Bias), rows(c), depth(c), l.units, l.act);
  }

  static void forward_folded(const CpuKernels& k, LayerPass& c, const FoldedCall& f) {
    k.dense_fwd(f.y, f.x, f.w, f.b, rows(c), depth(c), c.spec().attrs<DenseAttrs>().units, f.act);
  }

  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    const DenseAttrs& l = c.spec().attrs<DenseAttrs>();
    const int K = depth(c), n = rows(c);
    fused_act_bwd(k, c, dy);
    if (c.trains()) k.dense_bwd_filter(c.grad(ParamRole::Kernel), c.grad(ParamRole::Bias), dy, c.x(), n, K, l.units);
    if (!c.needs_grad()) return;
    float* dx = c.begin_grad(0);
    k.dense_bwd_data(dx, dy, c.param(ParamRole::Kernel), n, K, l.units);
    c.end_grad(0, dx, c.n_in());
  }
};

}  // namespace

extern const LayerDef DenseLayer = define_layer<Dense>();

}  // namespace ck
