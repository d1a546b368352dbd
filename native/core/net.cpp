// The network executor's construction: the graph's shapes and weights, and the buffer plan.
// The forward and backward passes are in net_pass.cpp; losses, metrics and the optimizer step
// in net_train.cpp.
#include "net.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "errors.h"
#include "layers/layer.h"
#include "net_plan.h"
#include "op_launch.h"
#include "ops.h"

namespace ck {

size_t Net::example_size(const Shape& s) const { return shape_numel(s); }

Net::Net(const Shape& input, std::vector<LayerSpec> layers)
    : Net(std::vector<Shape>{input}, std::move(layers), {}) {}

Net::Net(std::vector<Shape> inputs, std::vector<LayerSpec> layers, std::vector<int> outputs)
    : inputs_(std::move(inputs)), layers_(std::move(layers)), outputs_(std::move(outputs)),
      stream_(std::make_shared<Stream>()) {
  require(!inputs_.empty() && inputs_.size() <= 64, ErrorKind::Value,
          "model: a model needs between 1 and 64 inputs");
  for (const Shape& in : inputs_) {
    require(!in.empty() && in.size() <= 7, ErrorKind::Shape,
            "model: an input shape needs 1 to 7 dimensions, got " + shape_str(in));
    for (int64_t d : in) {
      require(d > 0 && d < (int64_t(1) << 24), ErrorKind::Shape,
              "model: input dimensions must be positive, got " + shape_str(in));
    }
    require(shape_numel(in) < (size_t(1) << 31), ErrorKind::Shape,
            "model: input " + shape_str(in) + " is too large");
  }
  require(!layers_.empty(), ErrorKind::Value, "model: a model needs at least one layer");
  size_t n_layers = layers_.size(), n_values = inputs_.size() + n_layers;
  if (outputs_.empty()) outputs_.push_back(int(n_values - 1));
  shapes_ = inputs_;
  consumers_.assign(n_values, 0);
  kernel_param_.assign(n_layers, -1), bias_param_.assign(n_layers, -1);
  conv_geo_.resize(n_layers), pool_geo_.resize(n_layers);
  mul_gate_.assign(n_layers, -1);
  gamma_param_.assign(n_layers, -1), beta_param_.assign(n_layers, -1);
  mean_param_.assign(n_layers, -1), var_param_.assign(n_layers, -1), count_param_.assign(n_layers, -1);
  param_owner_.resize(n_layers);
  for (size_t i = 0; i < n_layers; ++i) {
    LayerSpec& l = layers_[i];
    if (l.inputs.empty()) l.inputs.push_back(int(value_of(int(i)) - 1));
    for (int v : l.inputs) {
      require(v >= 0 && size_t(v) < value_of(int(i)), ErrorKind::Value,
              l.name + ": reads value " + std::to_string(v) +
                  ", which is not made before it (layers must be in topological order)");
      ++consumers_[size_t(v)];
    }
    param_owner_[i] = int(i);
    if (const int s = l.shares_params_with; s >= 0) {
      // The weights' first reader comes first, so that backward, which visits the layers from
      // the last, reaches it after every other reader (net_buckets.cpp relies on it).
      require(size_t(s) < i, ErrorKind::Value,
              l.name + ": shares the weights of layer " + std::to_string(s) + ", which does not come before it");
      const LayerSpec& owner = layers_[size_t(s)];
      require(owner.shares_params_with < 0, ErrorKind::Value,
              l.name + ": shares the weights of " + owner.name + ", which shares another layer's (name that one)");
      require(owner.kind == l.kind, ErrorKind::Value,
              l.name + ": shares the weights of " + owner.name + ", a layer of another kind");
      param_owner_[i] = s;
    }
    infer_shape(int(i));
  }
  plan_shared_params();
  for (int o : outputs_) {
    require(o >= 0 && size_t(o) < n_values, ErrorKind::Value,
            "model: output " + std::to_string(o) + " is not a value of the graph");
  }
  plan_relu_folds();
  plan_training_fusions();
  plan_inference_folds();
  plan_band_blocks();
  // The gradient buffer waits for compile: a model that only predicts never holds one.
  weights_ = std::make_shared<Storage>(std::max<size_t>(n_weights_, 1));
  state_ = std::make_shared<Storage>(std::max<size_t>(n_state_, 1));
  std::fill(weights_->data(), weights_->data() + n_weights_, 0.f);
  // Batch-norm moving statistics start as Keras's: mean 0, variance 1.
  for (size_t i = 0; i < n_layers; ++i) {
    if (var_param_[i] >= 0) {
      const ParamInfo& v = params_[size_t(var_param_[i])];
      std::fill(state_->data() + v.offset, state_->data() + v.offset + v.size, 1.f);
      const ParamInfo& m = params_[size_t(mean_param_[i])];
      std::fill(state_->data() + m.offset, state_->data() + m.offset + m.size, 0.f);
    }
  }
  compute_update_ranges();
}

void Net::infer_shape(int i) {
  const LayerSpec& l = layers_[size_t(i)];
  const LayerDef& def = layer_def(l.kind);
  const bool merge = def.flags.merge;
  require(merge ? l.inputs.size() >= 2 : l.inputs.size() == 1, ErrorKind::Value,
          l.name + (merge ? ": a merge layer needs at least 2 inputs" : ": takes exactly one input") +
              ", got " + std::to_string(l.inputs.size()));
  LayerBuild build(*this, i);
  const Shape out = def.infer(build);
  check_shape(out, l.name.c_str());  // overflow-free: up-sampling can multiply dims past 2^64
  require(shape_numel(out) > 0 && shape_numel(out) < (size_t(1) << 31), ErrorKind::Shape,
          l.name + ": output shape " + shape_str(out) + " is empty or too large");
  shapes_.push_back(out);
}

std::vector<int>& Net::param_slots(ParamRole role) {
  switch (role) {
    case ParamRole::Kernel: return kernel_param_;
    case ParamRole::Bias: return bias_param_;
    case ParamRole::Gamma: return gamma_param_;
    case ParamRole::Beta: return beta_param_;
    case ParamRole::MovingMean: return mean_param_;
    case ParamRole::MovingVariance: return var_param_;
    case ParamRole::Count: return count_param_;
  }
  throw_error(ErrorKind::Value, "model: unknown parameter role");
}

// Each layer applied again declares exactly its first application's weights; those owners'
// trainable spans are where a later application's gradients are added.
void Net::plan_shared_params() {
  const size_t n_layers = layers_.size();
  shared_owner_.assign(n_layers, 0);
  grads_written_.assign(n_layers, 0);
  trainable_span_.assign(n_layers, {0, 0});
  constexpr ParamRole kRoles[] = {ParamRole::Kernel, ParamRole::Bias, ParamRole::Gamma, ParamRole::Beta,
                                  ParamRole::MovingMean, ParamRole::MovingVariance, ParamRole::Count};
  for (size_t i = 0; i < n_layers; ++i) {
    const size_t owner = size_t(param_owner_[i]);
    if (owner == i) continue;
    shared_owner_[owner] = 1;
    for (ParamRole role : kRoles) {
      const std::vector<int>& slots = param_slots(role);
      require(slots[i] == slots[owner], ErrorKind::Value,
              layers_[i].name + ": shares the weights of " + layers_[owner].name + " but declares others");
    }
  }
  shared_grad_floats_ = 0;
  for (const ParamInfo& p : params_) {
    if (!p.trainable || !shared_owner_[size_t(p.layer)]) continue;
    auto& span = trainable_span_[size_t(p.layer)];
    if (span.second == 0) span.first = p.offset;
    span.second += p.size;  // a layer's trainable weights are declared one after another
    shared_grad_floats_ = std::max(shared_grad_floats_, span.second);
  }
}

// ---- fusions ----

void Net::plan_relu_folds() {
  const size_t n_layers = layers_.size();
  // A ReLU output read only by a max pool: the pool's backward applies the ReLU's (one pass
  // over that gradient fewer; the seeds' CNN and VGG-style blocks all have this pattern).
  relu_into_pool_.assign(n_layers, 0);
  for (size_t i = 0; i < n_layers; ++i) {
    const LayerSpec& l = layers_[i];
    int v = l.inputs[0];
    if (l.kind != LayerKind::MaxPool2d || size_t(v) < inputs_.size() || consumers_[size_t(v)] != 1 ||
        std::find(outputs_.begin(), outputs_.end(), v) != outputs_.end()) {
      continue;
    }
    const LayerSpec& producer = layers_[size_t(v) - inputs_.size()];
    if (layer_def(producer.kind).flags.act_backward_by_pool && producer.fused_act() == Act::Relu) {
      relu_into_pool_[size_t(v) - inputs_.size()] = 1;
    }
  }
}

namespace {
// The epilogue an activation layer folds into: ReLU or ReLU6, else none.
Act relu_epilogue(const LayerSpec& layer) {
  const ActivationAttrs& a = layer.attrs<ActivationAttrs>();
  return a.act == Act::Relu ? Act::Relu : a.act == Act::ClippedRelu && a.alpha == 6.f ? Act::Relu6 : Act::None;
}
// In folded inference, also the smooth activations the epilogues apply (sigmoid, swish, hard
// swish: MobileNetV3's and EfficientNet's), which no backward pass needs to see through.
Act inference_epilogue(const LayerSpec& layer) {
  const Act relu = relu_epilogue(layer);
  const Act act = layer.attrs<ActivationAttrs>().act;
  return relu != Act::None ? relu : epilogue_act(act) ? act : Act::None;
}
}  // namespace

// The one layer reading value v, or -1 (also when v is an output).
int Net::only_reader(size_t v) const {
  if (consumers_[v] != 1 || std::find(outputs_.begin(), outputs_.end(), int(v)) != outputs_.end()) return -1;
  for (size_t j = 0; j < layers_.size(); ++j) {
    if (std::find(layers_[j].inputs.begin(), layers_[j].inputs.end(), int(v)) != layers_[j].inputs.end()) return int(j);
  }
  return -1;
}

void Net::plan_training_fusions() {
  const size_t n_layers = layers_.size();
  bn_act_.assign(n_layers, -1), act_bn_.assign(n_layers, -1);
  bn_act_kind_.assign(n_layers, Act::None);
  // CONVKIT_TRAINING_FUSIONS=0 keeps every layer apart (to compare, or to rule the fusion out).
  static const bool enabled = [] {
    const char* env = std::getenv("CONVKIT_TRAINING_FUSIONS");
    return !env || std::string(env) != "0";
  }();
  if (!enabled) return;
  for (size_t i = 0; i < n_layers; ++i) {
    const LayerSpec& a = layers_[i];
    const size_t v = size_t(a.inputs[0]);
    if (a.kind != LayerKind::Activation || v < inputs_.size() || consumers_[v] != 1 ||
        std::find(outputs_.begin(), outputs_.end(), int(v)) != outputs_.end()) {
      continue;
    }
    const size_t bn = v - inputs_.size();
    if (layers_[bn].kind != LayerKind::BatchNorm) continue;
    const Act act = relu_epilogue(a);
    if (act == Act::None) continue;
    bn_act_[bn] = int(i), act_bn_[i] = int(bn), bn_act_kind_[bn] = act;
  }
}

void Net::plan_inference_folds() {
  const size_t n_layers = layers_.size();
  folds_.assign(n_layers, InferenceFold{});
  folded_away_.assign(n_layers, 0);
  unwritten_.assign(n_layers, 0);
  size_t folded_floats = 0;
  for (size_t i = 0; i < n_layers; ++i) {
    const LayerSpec& l = layers_[i];
    InferenceFold& f = folds_[i];
    const LayerDef& def = layer_def(l.kind);
    const size_t in = size_t(l.inputs[0]);
    if (def.flags.folds_zero_padding && in >= inputs_.size() && only_reader(in) == int(i) &&
        layers_[in - inputs_.size()].kind == LayerKind::ZeroPadding2d) {
      const int z = int(in - inputs_.size());
      const LayerSpec& pad = layers_[size_t(z)];
      const PaddingAttrs& zeros = pad.attrs<PaddingAttrs>();
      const ConvParams& p = conv_geo_[i];
      // Every window must still reach into the image (the kernels' edge handling assumes it):
      // the total padding on each side stays within the window's extent.
      const int top = zeros.top + p.pad_h, left = zeros.left + p.pad_w;
      const int H = int(shapes_[size_t(pad.inputs[0])][0]), W = int(shapes_[size_t(pad.inputs[0])][1]);
      const int reach_h = (p.R - 1) * p.dil_h, reach_w = (p.S - 1) * p.dil_w;
      const int bottom = (p.P - 1) * p.stride_h + reach_h + 1 - H - top;
      const int right = (p.Q - 1) * p.stride_w + reach_w + 1 - W - left;
      if (top <= reach_h && left <= reach_w && bottom <= reach_h && right <= reach_w) {
        f.pad = z;
        folded_away_[size_t(z)] = unwritten_[size_t(z)] = 1;
      }
    }
    if (!def.forward_folded || l.fused_act() != Act::None) continue;
    const int bn = only_reader(value_of(int(i)));
    // No batch norm (an imported graph, whose exporter folded it already): a ReLU or ReLU6 read
    // only from the layer joins its epilogue alone, with the layer's own weights.
    if (bn >= 0 && layers_[size_t(bn)].kind == LayerKind::Activation) {
      const Act act = inference_epilogue(layers_[size_t(bn)]);
      if (act == Act::None) continue;
      f.act = act, f.relu = f.out_layer = bn;
      folded_away_[size_t(bn)] = 1;
      unwritten_[i] = 1;
      continue;
    }
    if (bn < 0 || layers_[size_t(bn)].kind != LayerKind::BatchNorm) continue;
    f.bn = f.out_layer = bn;
    unwritten_[i] = 1;
    const int next = only_reader(value_of(bn));
    if (next >= 0 && layers_[size_t(next)].kind == LayerKind::Activation) {
      f.act = inference_epilogue(layers_[size_t(next)]);
      if (f.act != Act::None) {
        f.relu = f.out_layer = next;
        folded_away_[size_t(next)] = 1;
        unwritten_[size_t(bn)] = 1;
      }
    }
    folded_away_[size_t(bn)] = 1;
    f.channels = size_t(shapes_[value_of(int(i))].back());
    f.kernel_at = folded_floats;
    folded_floats += params_[size_t(kernel_param_[i])].size;
    f.bias_at = folded_floats;
    folded_floats += f.channels;
  }
  if (folded_floats) folded_weights_ = std::make_shared<Storage>(folded_floats);
  has_folds_ = std::any_of(folds_.begin(), folds_.end(), [](const InferenceFold& f) { return f.any(); });
}

bool Net::can_fold(const std::vector<int>& layers) const {
  // CONVKIT_INFERENCE_FOLDS=0 runs inference unfolded (to compare, or to rule the folds out).
  static const bool enabled = [] {
    const char* env = std::getenv("CONVKIT_INFERENCE_FOLDS");
    return !env || std::string(env) != "0";
  }();
  if (!enabled || device_ != DeviceType::Cpu || !has_folds_) return false;
  for (int layer : layers) {
    if (unwritten_[size_t(layer)]) return false;
  }
  return true;
}

void Net::refresh_folded_weights() {
  const CpuKernels& k = cpu_kernels();
  if (folded_version_ == weights_version_ && packed_for_ == &k) return;
  float* out = folded_weights_ ? folded_weights_->data() : nullptr;
  for (size_t i = 0; i < layers_.size() && folded_version_ != weights_version_; ++i) {
    const InferenceFold& f = folds_[i];
    if (f.bn < 0) continue;
    const LayerSpec& bn = layers_[size_t(f.bn)];
    const size_t bi = size_t(f.bn), C = f.channels;
    const float* gamma = param_ptr(gamma_param_[bi]);
    const float* beta = param_ptr(beta_param_[bi]);
    const float* mean = param_ptr(mean_param_[bi]);
    const float* var = param_ptr(var_param_[bi]);
    const float* bias = param_ptr(bias_param_[i]);
    const ParamInfo& kernel = params_[size_t(kernel_param_[i])];
    const float* w = param_ptr(kernel_param_[i]);
    // Every kernel layout here (HWIO, depthwise [R,S,C,M], dense [in,out]) has the output
    // channel fastest. Scale and shift in double, rounded once.
    std::vector<double> scale(C);
    for (size_t c = 0; c < C; ++c) {
      scale[c] = (gamma ? double(gamma[c]) : 1.0) / std::sqrt(double(var[c]) + double(bn.attrs<NormAttrs>().eps));
      out[f.bias_at + c] = float(((bias ? double(bias[c]) : 0.0) - double(mean[c])) * scale[c] + (beta ? double(beta[c]) : 0.0));
    }
    for (size_t j = 0; j < kernel.size; ++j) out[f.kernel_at + j] = float(double(w[j]) * scale[j % C]);
  }
  pack_folded_weights(k);
  folded_version_ = weights_version_;
}

void Net::pack_folded_weights(const CpuKernels& k) {
  packed_at_.assign(layers_.size(), kNotPacked);
  size_t total = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const bool folded_run = folds_[i].any() || in_band_[i] || band_at_[i] >= 0;
    if (!folded_run || layers_[i].kind != LayerKind::Conv2d ||
        layers_[i].attrs<ConvAttrs>().groups != 1) {
      continue;
    }
    const size_t n = k.conv2d_packed_floats(conv_geometry(int(i), 1));
    if (n == 0) continue;
    packed_at_[i] = total;
    total += n;
  }
  if (total && (!packed_weights_ || packed_weights_->size() != total)) {
    packed_weights_ = std::make_shared<Storage>(total);
  }
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (packed_at_[i] == kNotPacked) continue;
    const InferenceFold& f = folds_[i];
    const float* w = f.bn >= 0 ? folded_weights_->data() + f.kernel_at : param_ptr(kernel_param_[i]);
    k.conv2d_pack_weights(packed_weights_->data() + packed_at_[i], w, conv_geometry(int(i), 1));
  }
  packed_for_ = &k;
}

float* Net::param_ptr(int index) const {
  if (index < 0) return nullptr;
  const ParamInfo& p = params_[size_t(index)];
  return (p.trainable ? weights_ : state_)->data() + p.offset;
}

float* Net::grad_ptr(int index) const {
  if (index < 0) return nullptr;
  return grads_->data() + params_[size_t(index)].offset;
}

// ---- buffer plan ----

void Net::plan_for(int batch, bool training) {
  if (plan_ && plan_->capacity >= batch && (plan_->training || !training)) {
    plan_->batch = batch;
    return;
  }
  drop_cuda_graphs(true);  // captured with the old plan's buffers
  plan_ = make_plan(std::max(batch, plan_ ? plan_->capacity : 0), training || (plan_ && plan_->training));
}

std::unique_ptr<Net::Plan> Net::make_plan(int batch, bool training) const {
  auto plan = std::make_unique<Plan>(device_);
  plan->cuda_stream = cuda_stream_;
  plan->capacity = plan->batch = batch;
  plan->training = training;
  size_t L = layers_.size(), V = shapes_.size();
  plan->act.resize(V, nullptr);
  plan->grad.resize(V, nullptr);
  for (size_t v = 0; v < V; ++v) {
    size_t n = size_t(batch) * example_size(shapes_[v]);
    plan->max_value = std::max(plan->max_value, n);
    if (v >= inputs_.size()) {
      const LayerSpec& l = layers_[v - inputs_.size()];
      if (layer_def(l.kind).flags.view) {
        plan->act[v] = plan->act[size_t(l.inputs[0])];  // a view
        continue;
      }
    }
    plan->act[v] = plan->alloc(n);
  }
  // Backward's buffers: an inference plan (predict, evaluate) holds none of them, which leaves
  // a prediction's peak memory at its activations.
  plan->masks.assign(L, nullptr);
  plan->bn_mean.assign(L, nullptr);
  plan->bn_invstd.assign(L, nullptr);
  if (training) {
    plan->grad_tmp = plan->alloc(plan->max_value);
    if (shared_grad_floats_) plan->shared_grad = plan->alloc(shared_grad_floats_);
    for (size_t i = 0; i < L; ++i) {
      const LayerSpec& l = layers_[i];
      const auto buffers = layer_def(l.kind).training_buffers;
      if (!buffers) continue;
      size_t mask = 0, stats = 0;
      buffers(l, shapes_[size_t(l.inputs[0])], batch, &mask, &stats);
      if (mask) plan->masks[i] = plan->alloc(mask);
      if (stats) plan->bn_mean[i] = plan->alloc(stats), plan->bn_invstd[i] = plan->alloc(stats);
    }
  }
  plan->row_weights = plan->alloc(size_t(batch));
  for (int o : outputs_) {
    size_t target = std::max<size_t>(example_size(shapes_[size_t(o)]), 1);
    plan->targets.push_back(plan->alloc(size_t(batch) * target));
    plan->row_loss.push_back(plan->alloc(size_t(batch) * target));
  }
  return plan;
}

bool Net::has_weights(int layer) const {
  size_t i = size_t(layer);
  return kernel_param_[i] >= 0 || bias_param_[i] >= 0 || gamma_param_[i] >= 0 ||
         beta_param_[i] >= 0;
}

}  // namespace ck
