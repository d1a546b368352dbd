// The convolutions: conv2d (grouped when groups > 1), depthwise conv2d and the transposed
// conv2d. Each fuses its activation into the kernel's epilogue; conv2d and depthwise also take
// a batch norm, ReLU and zero padding folded in at inference.
#include "layers/layer.h"

namespace ck {

namespace {

Conv2dAttrs conv_attrs(const ConvAttrs& l) {
  Conv2dAttrs a;
  a.stride_h = l.stride_h, a.stride_w = l.stride_w, a.dil_h = l.dil_h, a.dil_w = l.dil_w;
  a.padding = l.padding;
  a.act = l.act;
  return a;
}

Conv2dTransposeAttrs conv_transpose_attrs(const ConvAttrs& l) {
  Conv2dTransposeAttrs a;
  a.stride_h = l.stride_h, a.stride_w = l.stride_w, a.dil_h = l.dil_h, a.dil_w = l.dil_w;
  a.padding = l.padding;
  a.out_pad_h = l.out_pad_h, a.out_pad_w = l.out_pad_w;
  a.act = l.act;
  return a;
}

constexpr LayerFlags kFusedConvFlags = [] {
  LayerFlags f;
  f.folds_zero_padding = f.act_backward_by_pool = true;
  return f;
}();

struct Conv2d {
  static constexpr LayerFlags kFlags = kFusedConvFlags;

  static Shape infer(LayerBuild& b) {
    const LayerSpec& spec = b.spec();
    const ConvAttrs& l = spec.attrs<ConvAttrs>();
    const Shape& in = b.in();
    require_image(spec, in);
    require_fused_act(spec);
    require(l.filters > 0 && l.groups >= 1 && in[2] % l.groups == 0 && l.filters % l.groups == 0,
            ErrorKind::Value,
            spec.name + ": filters (" + std::to_string(l.filters) + ") and input channels (" +
                std::to_string(in[2]) + ") must be positive multiples of groups (" +
                std::to_string(l.groups) + ")");
    Shape w{l.kernel_h, l.kernel_w, in[2] / l.groups, l.filters};
    ConvParams p = conv2d_params(with_batch(1, {in[0], in[1], w[2]}), w, conv_attrs(l), spec.name.c_str());
    p.C = int(in[2]);  // a grouped kernel's C is the total; each group reads C / groups
    b.set_conv_geometry(p);
    b.add_param(ParamRole::Kernel, "kernel", w, true);
    if (l.use_bias) b.add_param(ParamRole::Bias, "bias", {l.filters}, true);
    return {p.P, p.Q, p.K};
  }

  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    const ConvAttrs& l = c.spec().attrs<ConvAttrs>();
    const ConvParams p = c.conv_geometry();
    const float* w = c.param(ParamRole::Kernel);
    const float* b = c.param(ParamRole::Bias);
    if (l.groups == 1) k.conv2d_fwd(c.y(), c.x(), w, b, p, l.act);
    else k.grouped_conv2d_fwd(c.y(), c.x(), w, b, p, l.groups, l.act);
  }

  static void forward_folded(const CpuKernels& k, LayerPass& c, const FoldedCall& f) {
    const int groups = c.spec().attrs<ConvAttrs>().groups;
    if (groups == 1) k.conv2d_fwd_packed(f.y, f.x, f.w, f.packed, f.b, f.geometry, f.act);
    else k.grouped_conv2d_fwd(f.y, f.x, f.w, f.b, f.geometry, groups, f.act);
  }

  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    const int groups = c.spec().attrs<ConvAttrs>().groups;
    const ConvParams p = c.conv_geometry();
    fused_act_bwd(k, c, dy);
    if (c.trains() && groups == 1) {
      k.conv2d_bwd_filter(c.grad(ParamRole::Kernel), c.grad(ParamRole::Bias), dy, c.x(), p);
    } else if (c.trains()) {
      k.grouped_conv2d_bwd_filter(c.grad(ParamRole::Kernel), c.grad(ParamRole::Bias), dy, c.x(), p, groups);
    }
    if (!c.needs_grad()) return;
    float* dx = c.begin_grad(0);
    if (groups == 1) k.conv2d_bwd_data(dx, dy, c.param(ParamRole::Kernel), p);
    else k.grouped_conv2d_bwd_data(dx, dy, c.param(ParamRole::Kernel), p, groups);
    c.end_grad(0, dx, c.n_in());
  }
};

struct DepthwiseConv2d {
  static constexpr LayerFlags kFlags = kFusedConvFlags;

  static Shape infer(LayerBuild& b) {
    const LayerSpec& spec = b.spec();
    const ConvAttrs& l = spec.attrs<ConvAttrs>();
    const Shape& in = b.in();
    require_image(spec, in);
    require_fused_act(spec);
    require(l.depth_multiplier >= 1, ErrorKind::Value, spec.name + ": depthMultiplier must be >= 1");
    ConvParams p = conv2d_params(with_batch(1, in), {l.kernel_h, l.kernel_w, in[2], in[2] * l.depth_multiplier},
                                 conv_attrs(l), spec.name.c_str());
    b.set_conv_geometry(p);
    b.add_param(ParamRole::Kernel, "depthwise_kernel", {l.kernel_h, l.kernel_w, in[2], l.depth_multiplier}, true);
    if (l.use_bias) b.add_param(ParamRole::Bias, "bias", {p.K}, true);
    return {p.P, p.Q, p.K};
  }

  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    k.depthwise_conv2d_fwd(c.y(), c.x(), c.param(ParamRole::Kernel), c.param(ParamRole::Bias), c.conv_geometry(),
                           c.spec().attrs<ConvAttrs>().act);
  }

  static void forward_folded(const CpuKernels& k, LayerPass&, const FoldedCall& f) {
    k.depthwise_conv2d_fwd(f.y, f.x, f.w, f.b, f.geometry, f.act);
  }

  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    const ConvParams p = c.conv_geometry();
    fused_act_bwd(k, c, dy);
    if (c.trains()) k.depthwise_conv2d_bwd_filter(c.grad(ParamRole::Kernel), c.grad(ParamRole::Bias), dy, c.x(), p);
    if (!c.needs_grad()) return;
    float* dx = c.begin_grad(0);
    k.depthwise_conv2d_bwd_data(dx, dy, c.param(ParamRole::Kernel), p);
    c.end_grad(0, dx, c.n_in());
  }
};

// Keras's Conv2DTranspose: the conv2d whose data gradient is its forward. Its geometry is that
// conv2d's: output [N, H, W, C], input [N, P, Q, K].
struct Conv2dTranspose {
  static Shape infer(LayerBuild& b) {
    const LayerSpec& spec = b.spec();
    const ConvAttrs& l = spec.attrs<ConvAttrs>();
    const Shape& in = b.in();
    require_image(spec, in);
    require(l.filters > 0, ErrorKind::Value, spec.name + ": filters must be > 0, got " + std::to_string(l.filters));
    require_fused_act(spec);
    Shape w{l.kernel_h, l.kernel_w, l.filters, in[2]};
    ConvParams p = conv2d_transpose_params(with_batch(1, in), w, conv_transpose_attrs(l), spec.name.c_str());
    b.set_conv_geometry(p);
    b.add_param(ParamRole::Kernel, "kernel", w, true);
    if (l.use_bias) b.add_param(ParamRole::Bias, "bias", {l.filters}, true);
    return {p.H, p.W, p.C};
  }

  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    const ConvParams p = c.conv_geometry();
    const float* b = c.param(ParamRole::Bias);
    const Act act = c.spec().attrs<ConvAttrs>().act;
    k.conv2d_bwd_data(c.y(), c.x(), c.param(ParamRole::Kernel), p);
    if (b || act != Act::None) k.bias_act_fwd(c.y(), b, size_t(c.batch()) * p.H * p.W, p.C, act);
  }

  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    const ConvAttrs& l = c.spec().attrs<ConvAttrs>();
    const ConvParams p = c.conv_geometry();
    if (l.act != Act::None) k.activation_bwd(dy, dy, c.y(), c.n_out(), l.act, l.alpha);
    if (c.trains()) {
      k.conv2d_bwd_filter(c.grad(ParamRole::Kernel), nullptr, c.x(), dy, p);
      if (float* db = c.grad(ParamRole::Bias)) k.bias_grad(db, dy, size_t(c.batch()) * p.H * p.W, p.C);
    }
    if (!c.needs_grad()) return;
    float* dx = c.begin_grad(0);
    k.conv2d_fwd(dx, dy, c.param(ParamRole::Kernel), nullptr, p, Act::None);
    c.end_grad(0, dx, c.n_in());
  }
};

}  // namespace

extern const LayerDef Conv2dLayer = define_layer<Conv2d>();
extern const LayerDef DepthwiseConv2dLayer = define_layer<DepthwiseConv2d>();
extern const LayerDef Conv2dTransposeLayer = define_layer<Conv2dTranspose>();

}  // namespace ck
