// The reshapes: flatten and reshape are views of their input (same values, new shape), so they
// run no kernel and hand their gradient on as it is.
#include "layers/layer.h"

namespace ck {

namespace {

constexpr LayerFlags kViewFlags = [] {
  LayerFlags f;
  f.view = true;
  return f;
}();

template <class Ops>
void view_backward(const Ops&, LayerPass& c, float* dy) {
  c.pass_grad(0, dy, c.n_in());
}

struct Flatten {
  static constexpr LayerFlags kFlags = kViewFlags;
  static Shape infer(LayerBuild& b) { return {int64_t(shape_numel(b.in()))}; }
  template <class Ops>
  static void forward(const Ops&, LayerPass&) {}
  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    view_backward(k, c, dy);
  }
};

struct Reshape {
  static constexpr LayerFlags kFlags = kViewFlags;
  static Shape infer(LayerBuild& b) {
    const LayerSpec& l = b.spec();
    const Shape& target = l.attrs<ReshapeAttrs>().target_shape;
    check_shape(target, l.name.c_str());
    require(shape_numel(target) == shape_numel(b.in()) && !target.empty(), ErrorKind::Shape,
            l.name + ": cannot reshape " + batch_shape_str(b.in()) + " to " + batch_shape_str(target));
    return target;
  }
  template <class Ops>
  static void forward(const Ops&, LayerPass&) {}
  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    view_backward(k, c, dy);
  }
};

}  // namespace

extern const LayerDef FlattenLayer = define_layer<Flatten>();
extern const LayerDef ReshapeLayer = define_layer<Reshape>();

}  // namespace ck
