// One definition per layer kind (internal to the net's sources). Each kind's shape inference,
// weights, forward and backward live together in native/core/layers/<family>.cpp, written once
// over the kernel set (CpuKernels, or CudaOps on a CUDA net) and instantiated for both; the
// table in layer.cpp, generated from layer_kinds.inc, maps each LayerKind to its definition, so
// the net's passes make one lookup where they used to switch over the kinds.
//
// A kind reaches the net only through two contexts: LayerBuild while the net is built (its
// inputs' shapes; declaring weights and window geometry) and LayerPass while a pass runs it (its
// values, weights, gradients and the gradient routing of its inputs).
#pragma once
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "errors.h"
#include "net.h"
#include "net_ops.h"
#include "net_plan.h"

namespace ck {

// Layer i while the net is built.
class LayerBuild {
 public:
  LayerBuild(Net& net, int layer) : net_(net), layer_(layer) {}
  const LayerSpec& spec() const;
  size_t num_inputs() const;
  const Shape& in(size_t k = 0) const;  // input k's shape, one example
  // Declares a weight (trainable: updated by the optimizer; else batch-norm state).
  void add_param(ParamRole role, const char* name, Shape shape, bool trainable);
  // The window geometry for one example, kept for the passes (which set N to their batch).
  void set_conv_geometry(const ConvParams& p);
  void set_pool_geometry(const PoolParams& p);
  // A multiply that gates an image: which input is the gate (one value per channel).
  void set_mul_gate(int input);

 private:
  Net& net_;
  int layer_;
};

// The activation a batch norm runs inside itself in a training pass (Net::bn_act_): where it
// writes the activated values, and which activation; act None when not fused.
struct FusedActivation {
  float* y = nullptr;
  Act act = Act::None;
};

// Layer i while a forward or backward pass runs it on `batch` rows.
class LayerPass {
 public:
  LayerPass(Net& net, Net::Plan& plan, int layer, int batch, bool training, uint64_t seed)
      : net_(net), plan_(plan), layer_(layer), batch_(batch), training_(training), seed_(seed) {}
  const LayerSpec& spec() const;
  int layer() const { return layer_; }
  int batch() const { return batch_; }
  bool training() const { return training_; }
  uint64_t seed() const { return seed_; }
  // The training step's first row in its global batch (a data-parallel step's dropout masks).
  uint64_t first_row() const;

  size_t num_inputs() const;
  const Shape& in_shape(size_t k = 0) const;  // one example
  const Shape& out_shape() const;
  size_t n_in(size_t k = 0) const;  // floats of input k over the batch
  size_t n_out() const;
  const float* x(size_t k = 0) const;
  float* y() const;

  // The weight (or its gradient) of that role; null when the layer has none (a layer without
  // bias, a batch norm without scale).
  float* param(ParamRole role) const;
  float* grad(ParamRole role) const;
  // A shared weight's later application writes its gradients into `buffer` (laid out as its
  // owner's trainable span), which the net then adds into the gradients already there.
  void write_grads_into(float* buffer) { grads_into_ = buffer; }
  bool trains() const;  // its weights take gradients in this step
  ConvParams conv_geometry() const;
  PoolParams pool_geometry() const;
  int mul_gate() const;  // set_mul_gate's input, or -1

  // Training buffers of the plan (Net::Plan): the dropout mask, and the batch, layer or group
  // norm's batch statistics.
  float* mask() const;
  float* stats_mean() const;
  float* stats_invstd() const;
  // Sync batch norm: whether this data-parallel step sums the batch norms' statistics over the
  // processes (GradientReducer::batch_stats), and that sum, in place, of n floats on the net's
  // device (a CUDA net's through host memory).
  bool syncs_batch_stats() const;
  void sum_batch_stats(float* data, size_t n) const;
  // One float of the net's device memory, read or written from the host (on CUDA a blocking
  // copy, after the work queued before it).
  float read_value(const float* p) const;
  void write_value(float* p, float v) const;

  // ---- fusions (planned by the net) ----
  // A batch norm: the activation it runs inside itself in this pass.
  FusedActivation fused_activation() const;
  // An activation layer run inside the batch norm before it in this pass.
  bool run_by_batch_norm() const;
  // Its fused ReLU's backward runs in the max pool that alone reads it.
  bool act_backward_in_pool() const;
  // A max pool: it applies the backward of the ReLU fused into the layer it reads.
  bool applies_input_relu_backward() const;

  // ---- backward's gradient routing ----
  bool needs_grad(size_t k = 0) const;  // input k depends on a trainable weight
  // Where to write input k's gradient, then fold it in (the first contribution to a value is
  // written in place, later ones added).
  float* begin_grad(size_t k);
  void end_grad(size_t k, float* written, size_t n);
  // Input k's gradient is dy itself: the buffer is handed on (and not released after).
  void pass_grad(size_t k, float* dy, size_t n);
  // A scratch gradient buffer for a dx nobody reads (a layer that only trains its weights).
  float* scratch_grad() const;
  bool passed_dy() const { return passed_dy_; }

  // On the net's device.
  void copy(float* dst, const float* src, size_t n) const;
  void zero(float* dst, size_t n) const;

 private:
  Net& net_;
  Net::Plan& plan_;
  int layer_, batch_;
  bool training_;
  uint64_t seed_;
  bool passed_dy_ = false;
  float* grads_into_ = nullptr;
};

// Folded inference (CPU): the layer with the batch norm and ReLU after it folded into its
// weights and epilogue, and a zero padding before it into its geometry (Net::InferenceFold).
struct FoldedCall {
  float* y;
  const float* x;
  const float* w;
  const float* packed;  // the kernel packed for the active GEMM, or null
  const float* b;
  ConvParams geometry;  // conv2d / depthwise: with the folded padding
  Act act;
};

// What a kind declares about itself, for the net's planners.
struct LayerFlags {
  bool merge = false;                 // reads two or more inputs (else exactly one)
  bool view = false;                  // its value is its input's, reshaped (no buffer, no kernel)
  bool folds_zero_padding = false;    // folded inference reads a zero padding before it through its geometry
  bool act_backward_by_pool = false;  // its fused ReLU's backward may run in the max pool after it
};

// A layer kind's definition. The passes call forward / backward with the pass's kernel set;
// backward consumes dy (its output's gradient): it modifies it in place, hands it on with
// pass_grad, or leaves it to the net, which releases it afterwards.
struct LayerDef {
  // Checks the inputs, declares the weights and geometry, returns the output shape.
  Shape (*infer)(LayerBuild&);
  void (*forward_cpu)(const CpuKernels&, LayerPass&);
  void (*forward_cuda)(const CudaOps&, LayerPass&);
  void (*backward_cpu)(const CpuKernels&, LayerPass&, float* dy);
  void (*backward_cuda)(const CudaOps&, LayerPass&, float* dy);
  // Floats of its training buffers for `batch` rows of input `in` (dropout's mask; a norm's
  // statistics: mean and inverse deviation, `stats` each); null: none.
  void (*training_buffers)(const LayerSpec&, const Shape& in, int batch, size_t* mask, size_t* stats);
  // Non-null: inference folds the batch norm (and ReLU) after it into its weights and epilogue.
  void (*forward_folded)(const CpuKernels&, LayerPass&, const FoldedCall&);
  LayerFlags flags;
};

const LayerDef& layer_def(LayerKind kind);

// A kind's definition from a struct with static members: infer, and forward / backward templates
// over the kernel set; optionally training_buffers, forward_folded and kFlags.
namespace layer_detail {
template <class T, class = void>
struct has_training_buffers : std::false_type {};
template <class T>
struct has_training_buffers<T, std::void_t<decltype(&T::training_buffers)>> : std::true_type {};
template <class T, class = void>
struct has_forward_folded : std::false_type {};
template <class T>
struct has_forward_folded<T, std::void_t<decltype(&T::forward_folded)>> : std::true_type {};
template <class T, class = void>
struct flags_of {
  static constexpr LayerFlags value{};
};
template <class T>
struct flags_of<T, std::void_t<decltype(T::kFlags)>> {
  static constexpr LayerFlags value = T::kFlags;
};
}  // namespace layer_detail

template <class T>
constexpr LayerDef define_layer() {
  LayerDef d{};
  d.infer = &T::infer;
  d.forward_cpu = &T::template forward<CpuKernels>;
  d.forward_cuda = &T::template forward<CudaOps>;
  d.backward_cpu = &T::template backward<CpuKernels>;
  d.backward_cuda = &T::template backward<CudaOps>;
  if constexpr (layer_detail::has_training_buffers<T>::value) d.training_buffers = &T::training_buffers;
  if constexpr (layer_detail::has_forward_folded<T>::value) d.forward_folded = &T::forward_folded;
  d.flags = layer_detail::flags_of<T>::value;
  return d;
}

// Each kind's definition, defined in its family's file (layers/<family>.cpp) by name.
#define CK_LAYER(kind, name, Attrs, keys) extern const LayerDef kind##Layer;
#include "layer_kinds.inc"

// Shared helpers of the kinds.
inline void require_image(const LayerSpec& l, const Shape& in) {
  require(in.size() == 3, ErrorKind::Shape,
          l.name + ": expects images [batch, height, width, channels], got input shape " +
              batch_shape_str(in));
}

// A convolution's or dense layer's own activation runs in its epilogue and trains through the
// derivative from its output: the clamps and sigmoid (the others are layers of their own).
inline void require_fused_act(const LayerSpec& l) {
  require(trainable_epilogue_act(l.fused_act()), ErrorKind::Value,
          l.name + ": only relu, relu6 or sigmoid can be fused into the layer (other activations are layers of their own)");
}


// A conv2d / depthwise / dense layer's fused activation: its derivative taken into dy, unless
// the max pool after the layer applies it.
template <class Ops>
void fused_act_bwd(const Ops& k, const LayerPass& c, float* dy) {
  const LayerSpec& l = c.spec();
  const Act act = l.fused_act();
  if (act != Act::None && !c.act_backward_in_pool()) k.activation_bwd(dy, dy, c.y(), c.n_out(), act, l.fused_alpha());
}

}  // namespace ck
