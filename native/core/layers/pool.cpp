// The poolings: max, average and Lp pooling over windows, and global average and max pooling
// over each image's positions.
#include "layers/layer.h"

namespace ck {

namespace {

Pool2dAttrs pool_attrs(const PoolAttrs& l) {
  Pool2dAttrs a;
  a.pool_h = l.kernel_h, a.pool_w = l.kernel_w, a.stride_h = l.stride_h, a.stride_w = l.stride_w;
  a.padding = l.padding;
  return a;
}

Shape window_pool_infer(LayerBuild& b) {
  const LayerSpec& l = b.spec();
  require_image(l, b.in());
  PoolParams p = pool2d_params(with_batch(1, b.in()), pool_attrs(l.attrs<PoolAttrs>()), l.name.c_str());
  b.set_pool_geometry(p);
  return {p.P, p.Q, p.C};
}

struct MaxPool2d {
  static Shape infer(LayerBuild& b) { return window_pool_infer(b); }
  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    k.maxpool2d_fwd(c.y(), c.x(), c.pool_geometry());
  }
  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    if (!c.needs_grad()) return;
    float* dx = c.begin_grad(0);
    k.maxpool2d_bwd(dx, dy, c.x(), c.pool_geometry(), c.applies_input_relu_backward());
    c.end_grad(0, dx, c.n_in());
  }
};

struct AvgPool2d {
  static Shape infer(LayerBuild& b) { return window_pool_infer(b); }
  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    k.avgpool2d_fwd(c.y(), c.x(), c.pool_geometry());
  }
  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    if (!c.needs_grad()) return;
    float* dx = c.begin_grad(0);
    k.avgpool2d_bwd(dx, dy, c.pool_geometry());
    c.end_grad(0, dx, c.n_in());
  }
};

struct LpPool2d {
  static Shape infer(LayerBuild& b) {
    require_image(b.spec(), b.in());
    check_lp_norm(b.spec().name, b.spec().attrs<PoolAttrs>().power);
    return window_pool_infer(b);
  }
  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    k.lppool2d_fwd(c.y(), c.x(), c.pool_geometry(), c.spec().attrs<PoolAttrs>().power);
  }
  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    if (!c.needs_grad()) return;
    float* dx = c.begin_grad(0);
    k.lppool2d_bwd(dx, dy, c.x(), c.y(), c.pool_geometry(), c.spec().attrs<PoolAttrs>().power);
    c.end_grad(0, dx, c.n_in());
  }
};

// Global poolings read the image as [N, H * W, C].
Shape global_pool_infer(LayerBuild& b) {
  require_image(b.spec(), b.in());
  return {b.in()[2]};
}
int positions(const LayerPass& c) { return int(c.in_shape()[0] * c.in_shape()[1]); }
int channels(const LayerPass& c) { return int(c.in_shape()[2]); }

struct GlobalAvgPool {
  static Shape infer(LayerBuild& b) { return global_pool_infer(b); }
  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    k.global_avgpool_fwd(c.y(), c.x(), c.batch(), positions(c), channels(c));
  }
  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    if (!c.needs_grad()) return;
    float* dx = c.begin_grad(0);
    k.global_avgpool_bwd(dx, dy, c.batch(), positions(c), channels(c));
    c.end_grad(0, dx, c.n_in());
  }
};

struct GlobalMaxPool {
  static Shape infer(LayerBuild& b) { return global_pool_infer(b); }
  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    k.global_maxpool_fwd(c.y(), c.x(), c.batch(), positions(c), channels(c));
  }
  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    if (!c.needs_grad()) return;
    float* dx = c.begin_grad(0);
    k.global_maxpool_bwd(dx, dy, c.x(), c.batch(), positions(c), channels(c));
    c.end_grad(0, dx, c.n_in());
  }
};

}  // namespace

extern const LayerDef MaxPool2dLayer = define_layer<MaxPool2d>();
extern const LayerDef AvgPool2dLayer = define_layer<AvgPool2d>();
extern const LayerDef LpPool2dLayer = define_layer<LpPool2d>();
extern const LayerDef GlobalAvgPoolLayer = define_layer<GlobalAvgPool>();
extern const LayerDef GlobalMaxPoolLayer = define_layer<GlobalMaxPool>();

}  // namespace ck
