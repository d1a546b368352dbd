// The element-wise layers: activation, softmax (over the last axis) and dropout.
#include "cpu/dropout_hash.h"
#include "layers/layer.h"

namespace ck {

namespace {

struct Activation {
  static Shape infer(LayerBuild& b) { return b.in(); }

  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    if (c.run_by_batch_norm()) return;  // the batch norm before it wrote its value
    const ActivationAttrs& a = c.spec().attrs<ActivationAttrs>();
    k.activation_fwd(c.y(), c.x(), c.n_in(), a.act, a.alpha);
  }

  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    const ActivationAttrs& l = c.spec().attrs<ActivationAttrs>();
    if (!c.needs_grad()) return;
    // Run inside the batch norm before it: that backward takes dy through this derivative.
    if (c.run_by_batch_norm()) return c.pass_grad(0, dy, c.n_in());
    float* dx = c.begin_grad(0);
    // The plan keeps every value through the step, so the input x is there for the
    // activations whose gradient needs it.
    if (act_grad_from_output(l.act)) k.activation_bwd(dx, dy, c.y(), c.n_in(), l.act, l.alpha);
    else k.activation_bwd_from_x(dx, dy, c.x(), c.n_in(), l.act, l.alpha);
    c.end_grad(0, dx, c.n_in());
  }
};

struct Softmax {
  static Shape infer(LayerBuild& b) { return b.in(); }

  static size_t classes(const LayerPass& c) { return size_t(c.in_shape().back()); }

  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    k.softmax_fwd(c.y(), c.x(), c.n_in() / classes(c), classes(c));
  }

  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    if (!c.needs_grad()) return;
    float* dx = c.begin_grad(0);
    k.softmax_bwd(dx, dy, c.y(), c.n_in() / classes(c), classes(c));
    c.end_grad(0, dx, c.n_in());
  }
};

struct Dropout {
  static Shape infer(LayerBuild& b) {
    const float rate = b.spec().attrs<DropoutAttrs>().rate;
    require(rate >= 0.f && rate < 1.f, ErrorKind::Value, b.spec().name + ": rate must be in [0, 1)");
    return b.in();
  }

  static void training_buffers(const LayerSpec&, const Shape& in, int batch, size_t* mask, size_t*) {
    *mask = size_t(batch) * shape_numel(in);
  }

  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    const float rate = c.spec().attrs<DropoutAttrs>().rate;
    if (!c.training() || rate == 0.f) return c.copy(c.y(), c.x(), c.n_in());
    // A CUDA step reads its seed from the device (a captured graph replays each step's); its
    // share of a data-parallel step (never captured) moves the layer argument instead.
    const uint64_t first = c.first_row() * shape_numel(c.in_shape());
    if constexpr (on_host<Ops>) {
      k.dropout_fwd(c.y(), c.mask(), c.x(), c.n_in(), rate,
                    dropout_seed_from(dropout_layer_seed(c.seed(), uint64_t(c.layer())), first));
    } else {
      k.dropout_fwd_at(c.y(), c.mask(), c.x(), c.n_in(), rate, dropout_layer_from(uint64_t(c.layer()), first));
    }
  }

  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    if (c.spec().attrs<DropoutAttrs>().rate > 0.f) k.mul(dy, dy, c.mask(), c.n_in());
    c.pass_grad(0, dy, c.n_in());
  }
};

}  // namespace

extern const LayerDef ActivationLayer = define_layer<Activation>();
extern const LayerDef SoftmaxLayer = define_layer<Softmax>();
extern const LayerDef DropoutLayer = define_layer<Dropout>();

}  // namespace ck
