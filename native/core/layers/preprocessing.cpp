// The preprocessing layers: Keras Rescaling (y = x * scale + offset, no weights) and
// Normalization (y = (x - mean) / max(sqrt(variance), 1e-7) over the last axis, with mean,
// variance and count as non-trainable weights that adapt() or the options set).
#include "layers/layer.h"

namespace ck {

namespace {

struct Rescaling {
  static Shape infer(LayerBuild& b) { return b.in(); }

  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    const RescalingAttrs& l = c.spec().attrs<RescalingAttrs>();
    k.rescale(c.y(), c.x(), c.n_out(), l.factor, l.offset);
  }

  // dx = dy * scale (the offset drops out).
  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    if (!c.needs_grad()) return;
    float* dx = c.begin_grad(0);
    k.scale(dx, dy, c.spec().attrs<RescalingAttrs>().factor, c.n_in());
    c.end_grad(0, dx, c.n_in());
  }
};

struct Normalization {
  static Shape infer(LayerBuild& b) {
    const int64_t C = b.in().back();
    b.add_param(ParamRole::MovingMean, "mean", {C}, false);
    b.add_param(ParamRole::MovingVariance, "variance", {C}, false);
    // The number of rows adapt() saw, saved as Keras saves it; no pass reads it.
    b.add_param(ParamRole::Count, "count", {}, false);
    return b.in();
  }

  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    const int C = int(c.in_shape().back());
    k.normalize_channels(c.y(), c.x(), c.param(ParamRole::MovingMean), c.param(ParamRole::MovingVariance),
                         c.n_in() / size_t(C), C);
  }

  // dx = dy / max(sqrt(variance), 1e-7): the forward without the mean.
  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    if (!c.needs_grad()) return;
    const int C = int(c.in_shape().back());
    float* dx = c.begin_grad(0);
    k.normalize_channels(dx, dy, nullptr, c.param(ParamRole::MovingVariance), c.n_in() / size_t(C), C);
    c.end_grad(0, dx, c.n_in());
  }
};

}  // namespace

extern const LayerDef RescalingLayer = define_layer<Rescaling>();
extern const LayerDef NormalizationLayer = define_layer<Normalization>();

}  // namespace ck
