// The merges of two or more inputs: add, average and multiply of same-shaped inputs (multiply
// also of an image by a gate of its channels, squeeze-and-excitation's), and concatenate along
// the last axis.
#include <algorithm>

#include "layers/layer.h"

namespace ck {

namespace {

constexpr LayerFlags kMergeFlags = [] {
  LayerFlags f;
  f.merge = true;
  return f;
}();

// Inputs of one shape (concatenate: but for the last axis, which adds up).
Shape same_shape_infer(LayerBuild& b, bool concat) {
  const LayerSpec& l = b.spec();
  const Shape& in = b.in();
  Shape out = in;
  for (size_t k = 0; k < b.num_inputs(); ++k) {
    const Shape& s = b.in(k);
    const bool same = s.size() == in.size() && std::equal(s.begin(), s.end() - (concat ? 1 : 0), in.begin());
    require(same, ErrorKind::Shape,
            l.name + (concat ? ": inputs must match in all but the last axis, got "
                             : ": inputs must have the same shape, got ") +
                batch_shape_str(in) + " and " + batch_shape_str(s));
    if (concat && k > 0) out.back() += s.back();  // by position: a value may come twice
  }
  return out;
}

// Add and average: every input's gradient is dy (average: scaled).
template <class Ops>
void sum_backward(const Ops& k, LayerPass& c, float* dy, float scale) {
  const size_t n = c.n_out();
  if (scale != 1.f) k.scale(dy, dy, scale, n);
  // Copies for all but the last input that needs one, which takes dy itself.
  int last = -1;
  for (size_t j = 0; j < c.num_inputs(); ++j) {
    if (c.needs_grad(j)) last = int(j);
  }
  for (int j = 0; j < last; ++j) {
    if (!c.needs_grad(size_t(j))) continue;
    float* dx = c.begin_grad(size_t(j));
    c.copy(dx, dy, n);
    c.end_grad(size_t(j), dx, n);
  }
  if (last >= 0) c.pass_grad(size_t(last), dy, n);
}

template <class Ops>
void sum_forward(const Ops& k, LayerPass& c) {
  const size_t n = c.n_out();
  k.add(c.y(), c.x(0), c.x(1), n);
  for (size_t j = 2; j < c.num_inputs(); ++j) k.accumulate(c.y(), c.x(j), n);
}

struct Add {
  static constexpr LayerFlags kFlags = kMergeFlags;
  static Shape infer(LayerBuild& b) { return same_shape_infer(b, false); }
  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    sum_forward(k, c);
  }
  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    sum_backward(k, c, dy, 1.f);
  }
};

struct Average {
  static constexpr LayerFlags kFlags = kMergeFlags;
  static Shape infer(LayerBuild& b) { return same_shape_infer(b, false); }
  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    sum_forward(k, c);
    k.scale(c.y(), c.y(), 1.f / float(c.num_inputs()), c.n_out());
  }
  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    sum_backward(k, c, dy, 1.f / float(c.num_inputs()));
  }
};

struct Multiply {
  static constexpr LayerFlags kFlags = kMergeFlags;

  static Shape infer(LayerBuild& b) {
    if (b.num_inputs() == 2 && b.in(0) != b.in(1)) return spatial_gate(b);
    return same_shape_infer(b, false);
  }

  // A multiply of two differently shaped inputs: one [..., C], the other a gate of C values
  // broadcast over every other axis. Keras expands the lower-rank input at axis 1 before it
  // broadcasts, so [C] and [1, 1, C] both gate an image [H, W, C]. Records the gate's position
  // and returns the product's shape; any other mismatch is a ShapeError naming the layer.
  static Shape spatial_gate(LayerBuild& b) {
    const Shape& a = b.in(0);
    const Shape& s = b.in(1);
    auto gates = [](const Shape& gate, const Shape& full) {
      return gate.size() <= full.size() && gate.back() == full.back() &&
             shape_numel(gate) == size_t(gate.back()) && shape_numel(full) > shape_numel(gate);
    };
    const int gate = gates(a, s) ? 0 : gates(s, a) ? 1 : -1;
    require(gate >= 0, ErrorKind::Shape,
            b.spec().name + ": inputs " + batch_shape_str(a) + " and " + batch_shape_str(s) +
                " do not broadcast: Multiply takes inputs of one shape, or an input [..., C] and a "
                "gate of its C channels ([C] or [1, ..., 1, C])");
    b.set_mul_gate(gate);
    return gate == 0 ? s : a;
  }

  // The gated image as [batch, positions, C].
  static int channels(const LayerPass& c) { return int(c.out_shape().back()); }
  static size_t positions(const LayerPass& c) { return c.n_out() / size_t(c.batch()) / size_t(channels(c)); }

  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    const size_t n = c.n_out();
    if (const int gate = c.mul_gate(); gate >= 0) {
      return k.mul_spatial(c.y(), c.x(size_t(1 - gate)), c.x(size_t(gate)), size_t(c.batch()), positions(c),
                           channels(c));
    }
    k.mul(c.y(), c.x(0), c.x(1), n);
    for (size_t j = 2; j < c.num_inputs(); ++j) k.mul(c.y(), c.y(), c.x(j), n);
  }

  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    const size_t n = c.n_out();
    if (const int g = c.mul_gate(); g >= 0) {
      // The gate's gradient sums dy * image over space; the image's is dy times the gate,
      // computed in dy's own buffer, which then becomes that gradient.
      const size_t gate = size_t(g), image = size_t(1 - g);
      const int C = channels(c);
      if (c.needs_grad(gate)) {
        float* dg = c.begin_grad(gate);
        k.mul_spatial_bwd_gate(dg, dy, c.x(image), size_t(c.batch()), positions(c), C);
        c.end_grad(gate, dg, size_t(c.batch()) * size_t(C));
      }
      if (!c.needs_grad(image)) return;
      k.mul_spatial(dy, dy, c.x(gate), size_t(c.batch()), positions(c), C);
      return c.pass_grad(image, dy, n);
    }
    // d/dx_j of the product: dy times every other input.
    for (size_t j = 0; j < c.num_inputs(); ++j) {
      if (!c.needs_grad(j)) continue;
      float* dx = c.begin_grad(j);
      const float* src = dy;
      for (size_t m = 0; m < c.num_inputs(); ++m) {
        if (m == j) continue;
        k.mul(dx, src, c.x(m), n);
        src = dx;
      }
      c.end_grad(j, dx, n);
    }
  }
};

struct Concatenate {
  static constexpr LayerFlags kFlags = kMergeFlags;
  static Shape infer(LayerBuild& b) { return same_shape_infer(b, true); }

  static std::vector<int> widths(const LayerPass& c) {
    std::vector<int> w;
    for (size_t j = 0; j < c.num_inputs(); ++j) w.push_back(int(c.in_shape(j).back()));
    return w;
  }

  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    std::vector<const float*> parts;
    for (size_t j = 0; j < c.num_inputs(); ++j) parts.push_back(c.x(j));
    const std::vector<int> w = widths(c);
    k.concat_last(c.y(), parts.data(), w.data(), int(parts.size()), c.n_in() / size_t(c.in_shape().back()));
  }

  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    const size_t out_cols = size_t(c.out_shape().back()), rows = c.n_out() / out_cols;
    const std::vector<int> w = widths(c);
    // One input at a time (begin_grad may hand each the same temporary), split_last writing only
    // its band: the other parts are null.
    std::vector<float*> parts(c.num_inputs(), nullptr);
    for (size_t j = 0; j < c.num_inputs(); ++j) {
      if (!c.needs_grad(j)) continue;
      float* dx = c.begin_grad(j);
      parts[j] = dx;
      k.split_last(parts.data(), dy, w.data(), int(parts.size()), rows);
      parts[j] = nullptr;
      c.end_grad(j, dx, rows * size_t(w[j]));
    }
  }
};

}  // namespace

extern const LayerDef AddLayer = define_layer<Add>();
extern const LayerDef MultiplyLayer = define_layer<Multiply>();
extern const LayerDef AverageLayer = define_layer<Average>();
extern const LayerDef ConcatenateLayer = define_layer<Concatenate>();

}  // namespace ck
