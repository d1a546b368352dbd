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

// Keras's noise_shape: the mask has one value per index of the axes flagged 0 and is broadcast
// over those flagged 1, which must be adjacent (whole channels: (None, 1, 1, C); whole
// examples: (None, 1, 1, 1)); an axis of size 1 is either. So x is [outer, bcast, inner] and
// the mask [outer, inner].
struct NoiseSplit {
  size_t outer = 1, bcast = 1, inner = 1;
};

// The broadcast flags of the axes that are not of size 1 in every batch (the batch's always counts).
std::vector<int> noise_flags(const DropoutAttrs& d, const Shape& in) {
  std::vector<int> flags;
  for (size_t a = 0; a < d.noise_shape.size(); ++a) {
    if (a == 0 || in[a - 1] != 1) flags.push_back(d.noise_shape[a]);
  }
  return flags;
}

NoiseSplit noise_split(const DropoutAttrs& d, const Shape& in, int batch) {
  NoiseSplit s;
  if (d.noise_shape.empty()) {
    s.outer = size_t(batch) * shape_numel(in);
    return s;
  }
  int stage = 0;  // 0: before the broadcast axes, 1: among them, 2: after
  for (size_t a = 0; a < d.noise_shape.size(); ++a) {
    const size_t dim = a == 0 ? size_t(batch) : size_t(in[a - 1]);
    if (dim == 1) continue;
    const bool broadcast = d.noise_shape[a] == 1;
    if (broadcast && stage == 0) stage = 1;
    if (!broadcast && stage == 1) stage = 2;
    (stage == 0 ? s.outer : stage == 1 ? s.bcast : s.inner) *= dim;
  }
  return s;
}

struct Dropout {
  static Shape infer(LayerBuild& b) {
    const DropoutAttrs& d = b.spec().attrs<DropoutAttrs>();
    const std::string& name = b.spec().name;
    require(d.rate >= 0.f && d.rate < 1.f, ErrorKind::Value, name + ": rate must be in [0, 1)");
    require(d.noise_shape.empty() || d.noise_shape.size() == b.in().size() + 1, ErrorKind::Shape,
            name + ": noiseShape needs one entry per axis of " + batch_shape_str(b.in()) + " (the batch first), got " +
                std::to_string(d.noise_shape.size()));
    const std::vector<int> flags = noise_flags(d, b.in());
    int runs = 0;
    for (size_t a = 0; a < flags.size(); ++a) runs += flags[a] == 1 && (a == 0 || flags[a - 1] != 1);
    require(runs <= 1, ErrorKind::Value,
            name + ": noiseShape may broadcast the mask over one run of adjacent axes only (as (None, 1, 1, C) or "
                   "(None, 1, 1, 1))");
    return b.in();
  }

  static void training_buffers(const LayerSpec&, const Shape& in, int batch, size_t* mask, size_t*) {
    *mask = size_t(batch) * shape_numel(in);
  }

  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    const DropoutAttrs& d = c.spec().attrs<DropoutAttrs>();
    if (!c.training() || d.rate == 0.f) return c.copy(c.y(), c.x(), c.n_in());
    const NoiseSplit s = noise_split(d, c.in_shape(), c.batch());
    const size_t m = s.outer * s.inner;  // mask values
    // Broadcast: draw the [outer, inner] mask as a plain mask of m values (the rest of the
    // mask's buffer, m floats at least since bcast >= 2, zeroed, stands in for its x and y),
    // then multiply x by it over the broadcast axes.
    float* draw = s.bcast == 1 ? c.y() : c.mask() + m;
    const float* from = s.bcast == 1 ? c.x() : draw;
    if (s.bcast > 1) c.zero(draw, m);
    // Data-parallel: this process's rows start at first_row of the global batch, whose mask has
    // m / batch values per row (none of its own when the batch axis is broadcast).
    const uint64_t per_row = d.noise_shape.empty() || d.noise_shape[0] == 0 ? m / size_t(c.batch()) : 0;
    const uint64_t first = c.first_row() * per_row;
    // A CUDA step reads its seed from the device (a captured graph replays each step's); its
    // share of a data-parallel step (never captured) moves the layer argument instead.
    if constexpr (on_host<Ops>) {
      k.dropout_fwd(draw, c.mask(), from, m, d.rate, dropout_seed_from(dropout_layer_seed(c.seed(), uint64_t(c.layer())), first));
    } else {
      k.dropout_fwd_at(draw, c.mask(), from, m, d.rate, dropout_layer_from(uint64_t(c.layer()), first));
    }
    if (s.bcast > 1) k.mul_spatial(c.y(), c.x(), c.mask(), s.outer, s.bcast, int(s.inner));
  }

  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    const DropoutAttrs& d = c.spec().attrs<DropoutAttrs>();
    if (d.rate > 0.f) {
      const NoiseSplit s = noise_split(d, c.in_shape(), c.batch());
      if (s.bcast == 1) k.mul(dy, dy, c.mask(), c.n_in());
      else k.mul_spatial(dy, dy, c.mask(), s.outer, s.bcast, int(s.inner));
    }
    c.pass_grad(0, dy, c.n_in());
  }
};

}  // namespace

extern const LayerDef ActivationLayer = define_layer<Activation>();
extern const LayerDef SoftmaxLayer = define_layer<Softmax>();
extern const LayerDef DropoutLayer = define_layer<Dropout>();

}  // namespace ck
