// The network executor's construction (shapes, parameters), its buffer plan and its
// forward/backward passes. Losses, metrics and the optimizer step are in net_train.cpp.
#include "net.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "errors.h"
#include "net_plan.h"
#include "op_launch.h"

namespace ck {

namespace {

Conv2dAttrs conv_attrs(const LayerSpec& l) {
  Conv2dAttrs a;
  a.stride_h = l.stride_h, a.stride_w = l.stride_w, a.dil_h = l.dil_h, a.dil_w = l.dil_w;
  a.padding = l.padding;
  a.act = l.act;
  return a;
}

Pool2dAttrs pool_attrs(const LayerSpec& l) {
  Pool2dAttrs a;
  a.pool_h = l.kernel_h, a.pool_w = l.kernel_w, a.stride_h = l.stride_h, a.stride_w = l.stride_w;
  a.padding = l.padding;
  return a;
}

void require_image(const LayerSpec& l, const Shape& in) {
  require(in.size() == 3, ErrorKind::Shape,
          l.name + ": expects images [batch, height, width, channels], got input shape " +
              batch_shape_str(in));
}

}  // namespace

size_t Net::example_size(const Shape& s) const { return shape_numel(s); }

Net::Net(const Shape& input, std::vector<LayerSpec> layers)
    : input_(input), layers_(std::move(layers)), stream_(std::make_shared<Stream>()) {
  require(!input_.empty(), ErrorKind::Shape, "model: the input shape must not be empty");
  for (int64_t d : input_) {
    require(d > 0 && d < (int64_t(1) << 24), ErrorKind::Shape,
            "model: input dimensions must be positive, got " + shape_str(input_));
  }
  require(!layers_.empty(), ErrorKind::Value, "model: a model needs at least one layer");
  shapes_.push_back(input_);
  size_t n_layers = layers_.size();
  kernel_param_.assign(n_layers, -1), bias_param_.assign(n_layers, -1);
  gamma_param_.assign(n_layers, -1), beta_param_.assign(n_layers, -1);
  mean_param_.assign(n_layers, -1), var_param_.assign(n_layers, -1);

  auto add_param = [&](int layer, const char* name, Shape shape, bool trainable) {
    size_t size = shape_numel(shape);
    size_t& cursor = trainable ? n_weights_ : n_state_;
    params_.push_back({layer, name, std::move(shape), trainable, cursor, size});
    cursor += size;
    return int(params_.size() - 1);
  };

  for (size_t i = 0; i < n_layers; ++i) {
    LayerSpec& l = layers_[i];
    const Shape in = shapes_.back();
    Shape out = in;
    int li = int(i);
    switch (l.kind) {
      case LayerKind::Conv2d: {
        require_image(l, in);
        require(l.filters > 0, ErrorKind::Value, l.name + ": filters must be > 0");
        ConvParams p = conv2d_params(with_batch(1, in), {l.kernel_h, l.kernel_w, in[2], l.filters},
                                     conv_attrs(l), l.name.c_str());
        out = {p.P, p.Q, p.K};
        kernel_param_[i] = add_param(li, "kernel", {l.kernel_h, l.kernel_w, in[2], l.filters}, true);
        if (l.use_bias) bias_param_[i] = add_param(li, "bias", {l.filters}, true);
        break;
      }
      case LayerKind::Dense:
        require(l.units > 0, ErrorKind::Value, l.name + ": units must be > 0");
        out.back() = l.units;
        kernel_param_[i] = add_param(li, "kernel", {in.back(), l.units}, true);
        if (l.use_bias) bias_param_[i] = add_param(li, "bias", {l.units}, true);
        break;
      case LayerKind::MaxPool2d:
      case LayerKind::AvgPool2d: {
        require_image(l, in);
        PoolParams p = pool2d_params(with_batch(1, in), pool_attrs(l), l.name.c_str());
        out = {p.P, p.Q, p.C};
        break;
      }
      case LayerKind::GlobalAvgPool:
      case LayerKind::GlobalMaxPool:
        require_image(l, in);
        out = {in[2]};
        break;
      case LayerKind::Flatten:
        out = {int64_t(shape_numel(in))};
        break;
      case LayerKind::BatchNorm:
        if (l.scale) gamma_param_[i] = add_param(li, "gamma", {in.back()}, true);
        if (l.center) beta_param_[i] = add_param(li, "beta", {in.back()}, true);
        mean_param_[i] = add_param(li, "moving_mean", {in.back()}, false);
        var_param_[i] = add_param(li, "moving_variance", {in.back()}, false);
        break;
      case LayerKind::Dropout:
        require(l.rate >= 0.f && l.rate < 1.f, ErrorKind::Value,
                l.name + ": rate must be in [0, 1)");
        break;
      case LayerKind::Activation:
      case LayerKind::Softmax:
        break;
    }
    require(shape_numel(out) > 0 && shape_numel(out) < (size_t(1) << 31), ErrorKind::Shape,
            l.name + ": output shape " + shape_str(out) + " is empty or too large");
    shapes_.push_back(out);
  }
  weights_ = std::make_shared<Storage>(std::max<size_t>(n_weights_, 1));
  grads_ = std::make_shared<Storage>(std::max<size_t>(n_weights_, 1));
  state_ = std::make_shared<Storage>(std::max<size_t>(n_state_, 1));
  std::fill(weights_->data(), weights_->data() + n_weights_, 0.f);
  std::fill(grads_->data(), grads_->data() + n_weights_, 0.f);
  // Batch-norm moving statistics start as Keras's: mean 0, variance 1.
  for (size_t i = 0; i < n_layers; ++i) {
    if (var_param_[i] >= 0) {
      const ParamInfo& v = params_[size_t(var_param_[i])];
      std::fill(state_->data() + v.offset, state_->data() + v.offset + v.size, 1.f);
      const ParamInfo& m = params_[size_t(mean_param_[i])];
      std::fill(state_->data() + m.offset, state_->data() + m.offset + m.size, 0.f);
    }
  }
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

void Net::plan_for(int batch) {
  if (plan_ && plan_->capacity >= batch) {
    plan_->batch = batch;
    return;
  }
  auto plan = std::make_unique<Plan>();
  plan->capacity = plan->batch = batch;
  size_t L = layers_.size();
  plan->act.resize(L + 1, nullptr);
  plan->act_storage.resize(L + 1);
  size_t max_act = 0;
  for (size_t i = 0; i <= L; ++i) {
    size_t n = size_t(batch) * example_size(shapes_[i]);
    max_act = std::max(max_act, n);
    if (i > 0 && layers_[i - 1].kind == LayerKind::Flatten) {
      plan->act[i] = plan->act[i - 1];  // flatten is a view
      continue;
    }
    plan->act_storage[i] = std::make_unique<Scratch>(std::max<size_t>(n, 1));
    plan->act[i] = plan->act_storage[i]->data();
  }
  plan->grad_a = std::make_unique<Scratch>(max_act);
  plan->grad_b = std::make_unique<Scratch>(max_act);
  plan->masks.resize(L);
  plan->bn_mean.resize(L);
  plan->bn_invstd.resize(L);
  for (size_t i = 0; i < L; ++i) {
    if (layers_[i].kind == LayerKind::Dropout) {
      plan->masks[i] = std::make_unique<Scratch>(size_t(batch) * example_size(shapes_[i]));
    } else if (layers_[i].kind == LayerKind::BatchNorm) {
      size_t c = size_t(shapes_[i].back());
      plan->bn_mean[i] = std::make_unique<Scratch>(c);
      plan->bn_invstd[i] = std::make_unique<Scratch>(c);
    }
  }
  size_t target = std::max<size_t>(example_size(shapes_.back()), 1);
  plan->targets = std::make_unique<Scratch>(size_t(batch) * target);
  plan->row_loss = std::make_unique<Scratch>(size_t(batch));
  plan_ = std::move(plan);
}

// ---- forward ----

void Net::forward(int batch, bool training, uint64_t seed, int stop_after) {
  const CpuKernels& k = cpu_kernels();
  Plan& pl = *plan_;
  int last = stop_after < 0 ? int(layers_.size()) - 1 : stop_after;
  for (int i = 0; i <= last; ++i) {
    const LayerSpec& l = layers_[size_t(i)];
    const Shape& in = shapes_[size_t(i)];
    const float* x = pl.act[size_t(i)];
    float* y = pl.act[size_t(i) + 1];
    size_t n_in = size_t(batch) * example_size(in);
    switch (l.kind) {
      case LayerKind::Conv2d: {
        ConvParams p = conv2d_params(with_batch(batch, in), params_[size_t(kernel_param_[size_t(i)])].shape,
                                     conv_attrs(l), l.name.c_str());
        k.conv2d_fwd(y, x, param_ptr(kernel_param_[size_t(i)]), param_ptr(bias_param_[size_t(i)]), p,
                     l.act);
        break;
      }
      case LayerKind::Dense: {
        int K = int(in.back()), rows = int(n_in / size_t(K));
        k.dense_fwd(y, x, param_ptr(kernel_param_[size_t(i)]), param_ptr(bias_param_[size_t(i)]), rows,
                    K, l.units, l.act);
        break;
      }
      case LayerKind::MaxPool2d:
      case LayerKind::AvgPool2d: {
        PoolParams p = pool2d_params(with_batch(batch, in), pool_attrs(l), l.name.c_str());
        (l.kind == LayerKind::MaxPool2d ? k.maxpool2d_fwd : k.avgpool2d_fwd)(y, x, p);
        break;
      }
      case LayerKind::GlobalAvgPool:
        k.global_avgpool_fwd(y, x, batch, int(in[0] * in[1]), int(in[2]));
        break;
      case LayerKind::GlobalMaxPool:
        k.global_maxpool_fwd(y, x, batch, int(in[0] * in[1]), int(in[2]));
        break;
      case LayerKind::Flatten:
        break;  // a view of its input
      case LayerKind::Dropout:
        if (training && l.rate > 0.f) {
          // Each step and layer draws its own mask; the same seed repeats the run bit for bit.
          uint64_t layer_seed = seed * 0x9E3779B97F4A7C15ull + uint64_t(i) * 0xBF58476D1CE4E5B9ull;
          k.dropout_fwd(y, pl.masks[size_t(i)]->data(), x, n_in, l.rate, layer_seed);
        } else {
          std::memcpy(y, x, n_in * sizeof(float));
        }
        break;
      case LayerKind::BatchNorm: {
        int C = int(in.back());
        size_t rows = n_in / size_t(C);
        const float* g = param_ptr(gamma_param_[size_t(i)]);
        const float* b = param_ptr(beta_param_[size_t(i)]);
        float* mean = param_ptr(mean_param_[size_t(i)]);
        float* var = param_ptr(var_param_[size_t(i)]);
        // A frozen batch norm runs in inference mode, as in Keras.
        if (training && l.trainable) {
          k.batchnorm_fwd_train(y, pl.bn_mean[size_t(i)]->data(), pl.bn_invstd[size_t(i)]->data(), mean,
                                var, x, g, b, rows, C, l.eps, l.momentum);
        } else {
          k.batchnorm_fwd_infer(y, x, g, b, mean, var, rows, C, l.eps);
        }
        break;
      }
      case LayerKind::Activation:
        k.activation_fwd(y, x, n_in, l.act, l.alpha);
        break;
      case LayerKind::Softmax:
        k.softmax_fwd(y, x, n_in / size_t(in.back()), size_t(in.back()));
        break;
    }
  }
}

// ---- backward ----

void Net::backward(int batch) {
  const CpuKernels& k = cpu_kernels();
  Plan& pl = *plan_;
  int L = int(layers_.size());
  // The loss wrote dL/d(output) into grad_a; with the fused softmax loss, dL/d(logits).
  float* dy = pl.grad_a->data();
  float* spare = pl.grad_b->data();
  int start = fused_softmax_loss_ ? L - 2 : L - 1;
  // Layers before the first one with trainable weights need no input gradient.
  int first_trainable = L;
  for (int i = 0; i < L; ++i) {
    if (layers_[size_t(i)].trainable && has_weights(i)) {
      first_trainable = i;
      break;
    }
  }
  for (int i = start; i >= 0 && i >= first_trainable; --i) {
    const LayerSpec& l = layers_[size_t(i)];
    const Shape& in = shapes_[size_t(i)];
    const float* x = pl.act[size_t(i)];
    const float* y = pl.act[size_t(i) + 1];
    size_t n_in = size_t(batch) * example_size(in);
    size_t n_out = size_t(batch) * example_size(shapes_[size_t(i) + 1]);
    bool need_dx = i > first_trainable;
    float* dx = spare;
    switch (l.kind) {
      case LayerKind::Conv2d: {
        ConvParams p = conv2d_params(with_batch(batch, in), params_[size_t(kernel_param_[size_t(i)])].shape,
                                     conv_attrs(l), l.name.c_str());
        if (l.act != Act::None) k.activation_bwd(dy, dy, y, n_out, l.act, l.alpha);
        if (l.trainable) {
          k.conv2d_bwd_filter(grad_ptr(kernel_param_[size_t(i)]), grad_ptr(bias_param_[size_t(i)]), dy, x, p);
        }
        if (need_dx) k.conv2d_bwd_data(dx, dy, param_ptr(kernel_param_[size_t(i)]), p);
        break;
      }
      case LayerKind::Dense: {
        int K = int(in.back()), rows = int(n_in / size_t(K));
        if (l.act != Act::None) k.activation_bwd(dy, dy, y, n_out, l.act, l.alpha);
        if (l.trainable) {
          k.dense_bwd_filter(grad_ptr(kernel_param_[size_t(i)]), grad_ptr(bias_param_[size_t(i)]), dy, x,
                             rows, K, l.units);
        }
        if (need_dx) k.dense_bwd_data(dx, dy, param_ptr(kernel_param_[size_t(i)]), rows, K, l.units);
        break;
      }
      case LayerKind::MaxPool2d:
        k.maxpool2d_bwd(dx, dy, x, pool2d_params(with_batch(batch, in), pool_attrs(l), l.name.c_str()));
        break;
      case LayerKind::AvgPool2d:
        k.avgpool2d_bwd(dx, dy, pool2d_params(with_batch(batch, in), pool_attrs(l), l.name.c_str()));
        break;
      case LayerKind::GlobalAvgPool:
        k.global_avgpool_bwd(dx, dy, batch, int(in[0] * in[1]), int(in[2]));
        break;
      case LayerKind::GlobalMaxPool:
        k.global_maxpool_bwd(dx, dy, x, batch, int(in[0] * in[1]), int(in[2]));
        break;
      case LayerKind::Flatten:
        dx = dy;  // same values, new shape
        break;
      case LayerKind::Dropout:
        if (l.rate > 0.f) {
          k.mul(dx, dy, pl.masks[size_t(i)]->data(), n_in);
        } else {
          dx = dy;
        }
        break;
      case LayerKind::BatchNorm: {
        int C = int(in.back());
        size_t rows = n_in / size_t(C);
        const float* g = param_ptr(gamma_param_[size_t(i)]);
        if (l.trainable) {
          k.batchnorm_bwd(dx, grad_ptr(gamma_param_[size_t(i)]), grad_ptr(beta_param_[size_t(i)]), dy, x,
                          pl.bn_mean[size_t(i)]->data(), pl.bn_invstd[size_t(i)]->data(), g, rows, C);
        } else {
          frozen_batchnorm_bwd(dx, dy, i, rows, C);
        }
        break;
      }
      case LayerKind::Activation:
        k.activation_bwd(dx, dy, y, n_in, l.act, l.alpha);
        break;
      case LayerKind::Softmax:
        k.softmax_bwd(dx, dy, y, n_in / size_t(in.back()), size_t(in.back()));
        break;
    }
    if (dx != dy) std::swap(dy, spare);
  }
}

// Inference-mode batch norm is a per-channel scale: dx = dy * gamma / sqrt(var + eps).
void Net::frozen_batchnorm_bwd(float* dx, const float* dy, int layer, size_t rows, int C) {
  const LayerSpec& l = layers_[size_t(layer)];
  const float* g = param_ptr(gamma_param_[size_t(layer)]);
  const float* var = param_ptr(var_param_[size_t(layer)]);
  Scratch scale{size_t(C)};
  for (int c = 0; c < C; ++c) scale.data()[c] = (g ? g[c] : 1.f) / std::sqrt(var[c] + l.eps);
  for (size_t r = 0; r < rows; ++r) {
    for (int c = 0; c < C; ++c) dx[r * size_t(C) + size_t(c)] = dy[r * size_t(C) + size_t(c)] * scale.data()[c];
  }
}

bool Net::has_weights(int layer) const {
  size_t i = size_t(layer);
  return kernel_param_[i] >= 0 || bias_param_[i] >= 0 || gamma_param_[i] >= 0 ||
         beta_param_[i] >= 0;
}

}  // namespace ck
