// libFuzzer target: the network executor (net.h) built from raw layer specs, as the addon builds
// it from a model's layers (a model.json is hostile input): input shapes, layer kinds, sizes,
// strides, dilations, paddings, reshape targets, graph edges and outputs all come from the bytes,
// within the ranges the addon lets through (integers in [0, 2^24]). A net the core accepts is
// compiled and run: a training step, an evaluation and a prediction on a small batch, weights
// and optimizer state read and written back. Each input either gets a ck::Error or runs within
// the buffers the net allocated (AddressSanitizer and UBSan watch).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "errors.h"
#include "net.h"

namespace {

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  uint8_t u8() { return p_ < end_ ? *p_++ : 0; }
  // A size the addon would pass: mostly small, sometimes at the edges of what it allows.
  int size() {
    uint8_t k = u8();
    if (k < 220) return k % 9;
    static const int edges[] = {0, 1, 65535, 65536, 1 << 20, 1 << 24, 641, 6700417, 32768};
    return edges[u8() % (sizeof(edges) / sizeof(edges[0]))];
  }
  float f32() {
    uint8_t k = u8();
    if (k < 240) return float(k) / 60.f - 2.f;
    static const float edges[] = {NAN, INFINITY, -INFINITY, 3e38f, -0.f, 1e-45f};
    return edges[u8() % 6];
  }
  bool empty() const { return p_ >= end_; }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

constexpr int kKinds = int(ck::LayerKind::Cropping2d) + 1;
// Activations and weights of one example stay small, so what a net allocates beyond that for a
// batch of 3 came from sizes that were not checked.
constexpr size_t kMaxExampleValues = 1 << 16;

// Every attribute a spec's bytes carry, read in one order whatever the kind (the corpus's byte
// layout), then handed to the kind's attribute struct.
struct RawAttrs {
  ck::Shape target_shape;
  int groups, depth_multiplier, pad_top, pad_bottom, pad_left, pad_right;
  bool bilinear;
  float power;
  int filters, units, kernel_h, kernel_w, stride_h, stride_w, dil_h, dil_w;
  ck::Padding padding;
  bool use_bias;
  ck::Act act;
  float alpha, rate, eps, momentum;
  bool center, scale;
};

void assign(const RawAttrs&, ck::NoAttrs&) {}
void assign(const RawAttrs& r, ck::ConvAttrs& a) {
  a.filters = r.filters, a.kernel_h = r.kernel_h, a.kernel_w = r.kernel_w;
  a.stride_h = r.stride_h, a.stride_w = r.stride_w, a.dil_h = r.dil_h, a.dil_w = r.dil_w;
  a.padding = r.padding, a.groups = r.groups, a.depth_multiplier = r.depth_multiplier;
  // Derived from values already read: outputPadding -1 (none), 0 or 1.
  a.out_pad_h = r.groups - 2, a.out_pad_w = r.depth_multiplier % 3 - 1;
  a.use_bias = r.use_bias, a.act = r.act, a.alpha = r.alpha;
}
void assign(const RawAttrs& r, ck::DenseAttrs& a) {
  a.units = r.units, a.use_bias = r.use_bias, a.act = r.act, a.alpha = r.alpha;
}
void assign(const RawAttrs& r, ck::PoolAttrs& a) {
  a.kernel_h = r.kernel_h, a.kernel_w = r.kernel_w, a.stride_h = r.stride_h, a.stride_w = r.stride_w;
  a.padding = r.padding, a.power = r.power;
}
void assign(const RawAttrs& r, ck::PaddingAttrs& a) {
  a.top = r.pad_top, a.bottom = r.pad_bottom, a.left = r.pad_left, a.right = r.pad_right;
}
// Cropping takes the padding's amounts.
void assign(const RawAttrs& r, ck::CroppingAttrs& a) {
  a.top = r.pad_top, a.bottom = r.pad_bottom, a.left = r.pad_left, a.right = r.pad_right;
}
// Up-sampling takes the window's sizes as its factors.
void assign(const RawAttrs& r, ck::UpSamplingAttrs& a) {
  a.size_h = r.kernel_h, a.size_w = r.kernel_w, a.bilinear = r.bilinear;
}
void assign(const RawAttrs& r, ck::ReshapeAttrs& a) { a.target_shape = r.target_shape; }
void assign(const RawAttrs& r, ck::DropoutAttrs& a) { a.rate = r.rate; }
void assign(const RawAttrs& r, ck::NormAttrs& a) {
  a.eps = r.eps, a.momentum = r.momentum, a.center = r.center, a.scale = r.scale, a.groups = r.groups;
}
void assign(const RawAttrs& r, ck::ActivationAttrs& a) { a.act = r.act, a.alpha = r.alpha; }
void assign(const RawAttrs&, ck::RescalingAttrs&) {}
void assign(const RawAttrs&, ck::AugmentAttrs&) {}

ck::LayerSpec read_layer(Reader& r, int index) {
  ck::LayerSpec l(ck::LayerKind(r.u8() % kKinds), "layer" + std::to_string(index));
  int n_inputs = r.u8() % 4;  // 0: the previous value
  for (int i = 0; i < n_inputs; ++i) l.inputs.push_back(r.u8() % 12);
  RawAttrs a;
  if (l.kind == ck::LayerKind::Reshape) {
    for (int i = 1 + r.u8() % 4; i > 0; --i) a.target_shape.push_back(r.size());
  }
  a.groups = 1 + r.u8() % 3;
  a.depth_multiplier = r.size();
  a.pad_top = r.size(), a.pad_bottom = r.size(), a.pad_left = r.size(), a.pad_right = r.size();
  a.bilinear = r.u8() & 1;
  a.power = r.f32();
  a.filters = r.size(), a.units = r.size();
  a.kernel_h = r.size(), a.kernel_w = r.size();
  a.stride_h = r.size(), a.stride_w = r.size(), a.dil_h = r.size(), a.dil_w = r.size();
  a.padding = r.u8() & 1 ? ck::Padding::Same : ck::Padding::Valid;
  a.use_bias = r.u8() & 1;
  a.act = ck::Act(r.u8() % 6);
  a.alpha = r.f32();
  a.rate = r.f32();
  a.eps = r.f32(), a.momentum = r.f32();
  a.center = r.u8() & 1, a.scale = r.u8() & 1;
  l.trainable = r.u8() % 4 != 0;
  switch (l.kind) {
#define CK_LAYER(kind, name, Attrs, keys) \
  case ck::LayerKind::kind: assign(a, l.attrs<ck::Attrs>()); break;
#include "layer_kinds.inc"
  }
  return l;
}

ck::Tensor filled(const ck::Shape& shape, Reader& r, bool labels, int classes) {
  ck::Tensor t = ck::empty_tensor(shape, "fuzz");
  for (size_t i = 0; i < t.numel(); ++i) {
    t.data()[i] = labels ? float(r.u8() % (classes + 1)) : r.f32();
  }
  return t;
}

void exercise(ck::Net& net, int n_layers, Reader& r) {
  size_t per_example = 0;
  for (int i = 0; i < net.num_inputs(); ++i) per_example += ck::shape_numel(net.input_shape(i));
  for (const auto& p : net.params()) per_example += p.size;
  for (int i = 0; i < n_layers; ++i) per_example += ck::shape_numel(net.layer_output_shape(i));
  if (per_example > kMaxExampleValues) return;

  ck::OptimizerSpec opt;
  opt.kind = ck::OptimizerKind(r.u8() % 3);
  opt.sgd.momentum = r.u8() & 1 ? 0.9f : 0.f;
  opt.rmsprop.momentum = r.u8() & 1 ? 0.5f : 0.f;
  opt.rmsprop.centered = r.u8() & 1;
  auto loss = ck::LossKind(r.u8() % 4);
  net.compile(loss, opt, r.u8() & 1);
  const int n = 1 + r.u8() % 3;
  std::vector<ck::Tensor> xs, ys;
  for (int i = 0; i < net.num_inputs(); ++i) {
    ck::Shape s{n};
    for (int64_t d : net.input_shape(i)) s.push_back(d);
    xs.push_back(filled(s, r, false, 0));
  }
  for (int o : net.outputs()) {
    const ck::Shape& out = o < net.num_inputs() ? net.input_shape(o) : net.layer_output_shape(o - net.num_inputs());
    ck::Shape s{n};
    bool sparse = loss == ck::LossKind::SparseCategoricalCrossentropy;
    for (size_t k = 0; k + (sparse ? 1 : 0) < out.size(); ++k) s.push_back(out[k]);
    ys.push_back(filled(s, r, sparse, int(out.back())));
  }
  std::vector<int32_t> rows;
  for (int i = r.u8() % 4; i >= 0; --i) rows.push_back(int32_t(r.u8() % (n + 1)));  // n: out of range
  auto acc = std::make_shared<ck::Accumulators>();
  net.train_step(xs, ys, rows, r.u8(), acc);
  net.eval_step(xs, ys, rows, acc);
  std::vector<int> layers{int(r.u8() % 12)};
  net.layer_outputs(xs, r.u8() % 2, 1 + r.u8() % 3, layers, 1 + r.u8() % 3);
  if (!net.params().empty()) {
    int p = r.u8() % int(net.params().size());
    net.set_param(p, net.get_param(p));
  }
  net.set_optimizer_state(net.get_optimizer_state(), r.u8());
  net.stream()->synchronize();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader r(data, size);
  std::vector<ck::Shape> inputs(1 + r.u8() % 2);
  for (auto& s : inputs) {
    for (int k = 1 + r.u8() % 3; k > 0; --k) s.push_back(r.size());
  }
  std::vector<ck::LayerSpec> layers;
  for (int i = 1 + r.u8() % 6; i > 0 && !r.empty(); --i) layers.push_back(read_layer(r, int(layers.size())));
  std::vector<int> outputs;
  for (int i = r.u8() % 3; i > 0; --i) outputs.push_back(r.u8() % 10);
  int n_layers = int(layers.size());
  try {
    ck::Net net(inputs, std::move(layers), outputs);
    exercise(net, n_layers, r);
  } catch (const ck::Error&) {
    // refused with the typed error the addon turns into a ConvkitError
  }
  return 0;
}
