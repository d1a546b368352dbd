// The preprocessing layers: Keras Rescaling (y = x * scale + offset, no weights).
#include "layers/layer.h"

namespace ck {

namespace {

struct Rescaling {
  static Shape infer(LayerBuild& b) { return b.in(); }

  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    const LayerSpec& l = c.spec();
    k.rescale(c.y(), c.x(), c.n_out(), l.factor, l.offset);
  }

  // dx = dy * scale (the offset drops out).
  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    if (!c.needs_grad()) return;
    float* dx = c.begin_grad(0);
    k.scale(dx, dy, c.spec().factor, c.n_in());
    c.end_grad(0, dx, c.n_in());
  }
};

}  // namespace

extern const LayerDef RescalingLayer = define_layer<Rescaling>();

}  // namespace ck
