// The table of layer definitions and the contexts through which the kinds reach the net.
#include "layers/layer.h"

#include <cstring>
#include <iterator>
#include <stdexcept>

namespace ck {

namespace {

// Indexed by LayerKind: generated from the same list as the enum, each entry named after its
// kind, so the order cannot drift and a kind without a definition does not link.
const LayerDef* const kLayerDefs[] = {
#define CK_LAYER(kind, name, Attrs, keys) &kind##Layer,
#include "layer_kinds.inc"
};

// The alternatives of LayerAttrs by index, for the message of a wrong attrs<T>().
const char* const kAttrsNames[] = {"NoAttrs",      "ConvAttrs",     "DenseAttrs",      "PoolAttrs",
                                   "PaddingAttrs", "CroppingAttrs", "UpSamplingAttrs", "ReshapeAttrs",
                                   "DropoutAttrs", "NormAttrs",     "ActivationAttrs", "RescalingAttrs",
                                   "AugmentAttrs"};
static_assert(std::size(kAttrsNames) == std::variant_size_v<LayerAttrs>);

const char* kind_name(LayerKind kind) {
  switch (kind) {
#define CK_LAYER(kind, name, Attrs, keys) \
  case LayerKind::kind: return name;
#include "layer_kinds.inc"
  }
  return "unknown";
}

}  // namespace

const LayerDef& layer_def(LayerKind kind) { return *kLayerDefs[size_t(kind)]; }

// ---- LayerSpec's attributes ----

LayerAttrs default_attrs(LayerKind kind) {
  switch (kind) {
#define CK_LAYER(kind, name, Attrs, keys) \
  case LayerKind::kind: return Attrs{};
#include "layer_kinds.inc"
  }
  return NoAttrs{};
}

void throw_wrong_attrs(const std::string& layer, LayerKind kind, size_t wanted) {
  throw std::logic_error("convkit internal error: " + layer + ": a " + kind_name(kind) +
                         " layer's attributes read as " + kAttrsNames[wanted]);
}

Act LayerSpec::fused_act() const {
  if (const auto* c = std::get_if<ConvAttrs>(&attrs_)) return c->act;
  if (const auto* d = std::get_if<DenseAttrs>(&attrs_)) return d->act;
  return Act::None;
}

float LayerSpec::fused_alpha() const {
  if (const auto* c = std::get_if<ConvAttrs>(&attrs_)) return c->alpha;
  if (const auto* d = std::get_if<DenseAttrs>(&attrs_)) return d->alpha;
  return 0.f;
}

// ---- LayerBuild ----

const LayerSpec& LayerBuild::spec() const { return net_.layers_[size_t(layer_)]; }
size_t LayerBuild::num_inputs() const { return spec().inputs.size(); }
const Shape& LayerBuild::in(size_t k) const { return net_.shapes_[size_t(spec().inputs[k])]; }

void LayerBuild::add_param(ParamRole role, const char* name, Shape shape, bool trainable) {
  const LayerSpec& l = spec();
  if (l.shares_params_with >= 0) {
    // A layer applied again: its first application's weight, which this input must fit.
    const LayerSpec& owner = net_.layers_[size_t(l.shares_params_with)];
    const int p = net_.param_slots(role)[size_t(l.shares_params_with)];
    require(p >= 0 && net_.params_[size_t(p)].shape == shape && net_.params_[size_t(p)].trainable == trainable,
            ErrorKind::Shape,
            l.name + ": shares the weights of " + owner.name + ", whose " + name + " is " +
                (p >= 0 ? shape_str(net_.params_[size_t(p)].shape) : std::string("missing")) +
                ", but this input needs " + shape_str(shape));
    net_.param_slots(role)[size_t(layer_)] = p;
    return;
  }
  // Bounded (and overflow-free) before anything is sized from it: a 65535x65535 kernel over
  // 2^17 channels and 2^17 filters would otherwise wrap to a small weight buffer.
  check_shape(shape, l.name.c_str());
  const size_t size = shape_numel(shape);
  size_t& cursor = trainable ? net_.n_weights_ : net_.n_state_;
  require(cursor <= size_t(kMaxElements) - size, ErrorKind::Shape,
          l.name + ": the model's weights would hold more than 2^31-1 values");
  net_.params_.push_back({layer_, name, std::move(shape), trainable, cursor, size});
  cursor += size;
  net_.param_slots(role)[size_t(layer_)] = int(net_.params_.size() - 1);
}

void LayerBuild::set_conv_geometry(const ConvParams& p) { net_.conv_geo_[size_t(layer_)] = p; }
void LayerBuild::set_pool_geometry(const PoolParams& p) { net_.pool_geo_[size_t(layer_)] = p; }
void LayerBuild::set_mul_gate(int input) { net_.mul_gate_[size_t(layer_)] = input; }

// ---- LayerPass ----

const LayerSpec& LayerPass::spec() const { return net_.layers_[size_t(layer_)]; }
uint64_t LayerPass::first_row() const { return net_.step_first_row_; }
size_t LayerPass::num_inputs() const { return spec().inputs.size(); }
const Shape& LayerPass::in_shape(size_t k) const { return net_.shapes_[size_t(spec().inputs[k])]; }
const Shape& LayerPass::out_shape() const { return net_.shapes_[net_.value_of(layer_)]; }
size_t LayerPass::n_in(size_t k) const { return size_t(batch_) * shape_numel(in_shape(k)); }
size_t LayerPass::n_out() const { return size_t(batch_) * shape_numel(out_shape()); }
const float* LayerPass::x(size_t k) const { return plan_.act[size_t(spec().inputs[k])]; }
float* LayerPass::y() const { return plan_.act[net_.value_of(layer_)]; }

float* LayerPass::param(ParamRole role) const { return net_.param_ptr(net_.param_slots(role)[size_t(layer_)]); }
float* LayerPass::grad(ParamRole role) const {
  const int p = net_.param_slots(role)[size_t(layer_)];
  if (p < 0 || !grads_into_) return net_.grad_ptr(p);
  const size_t base = net_.trainable_span_[size_t(net_.param_owner_[size_t(layer_)])].first;
  return grads_into_ + (net_.params_[size_t(p)].offset - base);
}
bool LayerPass::trains() const { return spec().trainable; }
ConvParams LayerPass::conv_geometry() const { return net_.conv_geometry(layer_, batch_); }
PoolParams LayerPass::pool_geometry() const { return net_.pool_geometry(layer_, batch_); }
int LayerPass::mul_gate() const { return net_.mul_gate_[size_t(layer_)]; }

float* LayerPass::mask() const { return plan_.masks[size_t(layer_)]; }
float* LayerPass::stats_mean() const { return plan_.bn_mean[size_t(layer_)]; }
float* LayerPass::stats_invstd() const { return plan_.bn_invstd[size_t(layer_)]; }

FusedActivation LayerPass::fused_activation() const {
  const size_t i = size_t(layer_);
  if (!net_.bn_act_fused(layer_, training_)) return {};
  return {plan_.act[net_.value_of(net_.bn_act_[i])], net_.bn_act_kind_[i]};
}

bool LayerPass::run_by_batch_norm() const {
  const int bn = net_.act_bn_[size_t(layer_)];
  return bn >= 0 && net_.bn_act_fused(bn, training_);
}

bool LayerPass::act_backward_in_pool() const { return net_.relu_into_pool_[size_t(layer_)]; }

bool LayerPass::applies_input_relu_backward() const {
  const size_t v = size_t(spec().inputs[0]);
  return v >= net_.inputs_.size() && net_.relu_into_pool_[v - net_.inputs_.size()];
}

bool LayerPass::needs_grad(size_t k) const { return net_.needs_grad_[size_t(spec().inputs[k])]; }
float* LayerPass::begin_grad(size_t k) { return net_.begin_grad(spec().inputs[k]); }
void LayerPass::end_grad(size_t k, float* written, size_t n) { net_.end_grad(spec().inputs[k], written, n); }

void LayerPass::pass_grad(size_t k, float* dy, size_t n) {
  net_.pass_grad(spec().inputs[k], dy, n);
  passed_dy_ = true;
}

float* LayerPass::scratch_grad() const { return plan_.grad_tmp; }
void LayerPass::copy(float* dst, const float* src, size_t n) const { net_.copy_values(dst, src, n); }

void LayerPass::zero(float* dst, size_t n) const {
  if (net_.device_ == DeviceType::Cuda) cuda_backend().zero(dst, n * sizeof(float), net_.cuda_stream_);
  else std::memset(dst, 0, n * sizeof(float));
}

}  // namespace ck
