// The network executor's forward and backward passes over the layer graph. Forward visits the
// layers in order; backward visits them in reverse, routing each layer's input gradients to the
// values it read: the first contribution to a value is written in place, later ones (a value
// read by several layers) are added. Gradient buffers come from a pool, so a plain stack uses
// two, as a hand-written ping-pong would.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/dropout_hash.h"
#include "errors.h"
#include "net.h"
#include "net_ops.h"
#include "net_plan.h"

namespace ck {

namespace {

// A block of columns [offset, offset + cols) of y [rows, y_cols] (concatenate's backward).
void copy_columns(float* dst, const float* y, size_t rows, size_t cols, size_t y_cols, size_t offset) {
  for (size_t r = 0; r < rows; ++r) std::memcpy(dst + r * cols, y + r * y_cols + offset, cols * sizeof(float));
}

Pad2dParams pad_params(const LayerSpec& l, int batch, const Shape& in) {
  Pad2dParams p;
  p.N = batch, p.H = int(in[0]), p.W = int(in[1]), p.C = int(in[2]);
  p.top = l.pad_top, p.bottom = l.pad_bottom, p.left = l.pad_left, p.right = l.pad_right;
  return p;
}

// tfjs's UpSampling2D: bilinear samples at dst / size (tf.image.resizeBilinear's default).
UpsampleParams upsample_params(const LayerSpec& l, int batch, const Shape& in) {
  UpsampleParams p;
  p.N = batch, p.H = int(in[0]), p.W = int(in[1]), p.C = int(in[2]);
  p.size_h = l.size_h, p.size_w = l.size_w;
  p.interp = l.bilinear ? Interp::Bilinear : Interp::Nearest;
  p.half_pixel = false;
  return p;
}

}  // namespace


// ---- forward ----

void Net::forward(Plan& pl, int batch, bool training, uint64_t seed, int stop_after, bool folded) {
  int last = stop_after < 0 ? int(layers_.size()) - 1 : stop_after;
  if (device_ == DeviceType::Cuda) {
    const CudaOps k = cuda_ops();
    for (int i = 0; i <= last; ++i) forward_layer(k, pl, i, batch, training, seed);
  } else if (folded) {
    const CpuKernels& k = cpu_kernels();
    for (int i = 0; i <= last; ++i) {
      if (band_at_[size_t(i)] >= 0) forward_band_block(k, pl, bands_[size_t(band_at_[size_t(i)])], batch);
      else if (in_band_[size_t(i)]) continue;
      else if (folds_[size_t(i)].any()) forward_folded(k, pl, i, batch);
      else if (!folded_away_[size_t(i)]) forward_layer(k, pl, i, batch, false, seed);
    }
  } else {
    const CpuKernels& k = cpu_kernels();
    for (int i = 0; i <= last; ++i) forward_layer(k, pl, i, batch, training, seed);
  }
}

// Layer i with what is folded into it: its batch norm (and ReLU) after, written as the last of
// them's value; a zero padding before, read through its input with the padding added.
void Net::forward_folded(const CpuKernels& k, Plan& pl, int i, int batch) {
  const LayerSpec& l = layers_[size_t(i)];
  const InferenceFold& f = folds_[size_t(i)];
  const bool bn = f.bn >= 0;
  const float* w = bn ? folded_weights_->data() + f.kernel_at : param_ptr(kernel_param_[size_t(i)]);
  const float* b = bn ? folded_weights_->data() + f.bias_at : param_ptr(bias_param_[size_t(i)]);
  float* y = pl.act[value_of(f.out_layer >= 0 ? f.out_layer : i)];
  const Act act = f.out_layer >= 0 ? f.act : l.act;
  const ConvParams p = folded_geometry(i, batch);
  const float* x = pl.act[size_t(f.pad >= 0 ? layers_[size_t(f.pad)].inputs[0] : l.inputs[0])];
  switch (l.kind) {
    case LayerKind::Conv2d:
      if (l.groups == 1) {
        const bool packed = packed_for_ == &k && packed_at_[size_t(i)] != kNotPacked;
        k.conv2d_fwd_packed(y, x, w, packed ? packed_weights_->data() + packed_at_[size_t(i)] : nullptr, b, p, act);
      } else {
        k.grouped_conv2d_fwd(y, x, w, b, p, l.groups, act);
      }
      break;
    case LayerKind::DepthwiseConv2d:
      k.depthwise_conv2d_fwd(y, x, w, b, p, act);
      break;
    case LayerKind::Dense: {
      const int K = int(shapes_[size_t(l.inputs[0])].back());
      const int rows = int(size_t(batch) * example_size(shapes_[size_t(l.inputs[0])]) / size_t(K));
      k.dense_fwd(y, x, w, b, rows, K, l.units, act);
      break;
    }
    default:
      throw_error(ErrorKind::Value, l.name + ": no folded form");
  }
}

template <class Ops>
void Net::forward_layer(const Ops& k, Plan& pl, int i, int batch, bool training, uint64_t seed) {
  const LayerSpec& l = layers_[size_t(i)];
  size_t li = size_t(i);
  const Shape& in = shapes_[size_t(l.inputs[0])];
  const float* x = pl.act[size_t(l.inputs[0])];
  float* y = pl.act[value_of(i)];
  size_t n_in = size_t(batch) * example_size(in);
  size_t n_out = size_t(batch) * example_size(shapes_[value_of(i)]);
  switch (l.kind) {
    case LayerKind::Conv2d: {
      ConvParams p = conv_geometry(i, batch);
      const float* w = param_ptr(kernel_param_[li]);
      const float* b = param_ptr(bias_param_[li]);
      if (l.groups == 1) k.conv2d_fwd(y, x, w, b, p, l.act);
      else k.grouped_conv2d_fwd(y, x, w, b, p, l.groups, l.act);
      break;
    }
    case LayerKind::DepthwiseConv2d:
      k.depthwise_conv2d_fwd(y, x, param_ptr(kernel_param_[li]), param_ptr(bias_param_[li]),
                             conv_geometry(i, batch), l.act);
      break;
    case LayerKind::Dense: {
      int K = int(in.back()), rows = int(n_in / size_t(K));
      k.dense_fwd(y, x, param_ptr(kernel_param_[li]), param_ptr(bias_param_[li]), rows, K, l.units, l.act);
      break;
    }
    case LayerKind::MaxPool2d:
    case LayerKind::AvgPool2d:
    case LayerKind::LpPool2d: {
      PoolParams p = pool_geometry(i, batch);
      if (l.kind == LayerKind::MaxPool2d) k.maxpool2d_fwd(y, x, p);
      else if (l.kind == LayerKind::AvgPool2d) k.avgpool2d_fwd(y, x, p);
      else k.lppool2d_fwd(y, x, p, l.power);
      break;
    }
    case LayerKind::GlobalAvgPool:
      k.global_avgpool_fwd(y, x, batch, int(in[0] * in[1]), int(in[2]));
      break;
    case LayerKind::GlobalMaxPool:
      k.global_maxpool_fwd(y, x, batch, int(in[0] * in[1]), int(in[2]));
      break;
    case LayerKind::ZeroPadding2d:
      k.zero_pad2d_fwd(y, x, pad_params(l, batch, in));
      break;
    case LayerKind::UpSampling2d:
      k.upsample2d_fwd(y, x, upsample_params(l, batch, in));
      break;
    case LayerKind::Conv2dTranspose: {
      ConvParams p = conv_geometry(i, batch);
      const float* b = param_ptr(bias_param_[li]);
      k.conv2d_bwd_data(y, x, param_ptr(kernel_param_[li]), p);
      if (b || l.act != Act::None) k.bias_act_fwd(y, b, size_t(batch) * p.H * p.W, p.C, l.act);
      break;
    }
    case LayerKind::Cropping2d:
      k.zero_pad2d_bwd(y, x, crop_params(l, batch, shapes_[value_of(i)]));
      break;
    case LayerKind::Flatten:
    case LayerKind::Reshape:
      break;  // a view of its input
    case LayerKind::Dropout:
      if (training && l.rate > 0.f) {
        // A CUDA step reads its seed from the device (a captured graph replays each step's).
        if constexpr (on_host<Ops>) {
          k.dropout_fwd(y, pl.masks[li], x, n_in, l.rate,
                        dropout_seed_from(dropout_layer_seed(seed, uint64_t(i)), step_first_row_ * example_size(in)));
        }
        else k.dropout_fwd_at(y, pl.masks[li], x, n_in, l.rate, uint64_t(i));
      } else {
        copy_values(y, x, n_in);
      }
      break;
    case LayerKind::BatchNorm: {
      int C = int(in.back());
      size_t rows = n_in / size_t(C);
      const float* g = param_ptr(gamma_param_[li]);
      const float* b = param_ptr(beta_param_[li]);
      float* mean = param_ptr(mean_param_[li]);
      float* var = param_ptr(var_param_[li]);
      // A frozen batch norm runs in inference mode, as in Keras.
      if (training && l.trainable) {
        // With its activation fused, the activated values go straight to the activation's value.
        const bool fused = bn_act_fused(i, training);
        k.batchnorm_fwd_train(fused ? pl.act[value_of(bn_act_[li])] : y, pl.bn_mean[li], pl.bn_invstd[li],
                              mean, var, x, g, b, rows, C, l.eps, l.momentum,
                              fused ? bn_act_kind_[li] : Act::None);
      } else {
        k.batchnorm_fwd_infer(y, x, g, b, mean, var, rows, C, l.eps);
      }
      break;
    }
    case LayerKind::LayerNorm:
    case LayerKind::GroupNorm: {
      // Batch statistics in training and inference alike (as Keras); kept for backward in a step.
      const NormGeometry g = norm_geometry(l, in, batch);
      k.groupnorm_fwd(y, training ? pl.bn_mean[li] : nullptr, training ? pl.bn_invstd[li] : nullptr, x,
                      param_ptr(gamma_param_[li]), param_ptr(beta_param_[li]), g.N, g.S, g.C, g.G, l.eps);
      break;
    }
    case LayerKind::Activation:
      if (act_bn_[li] >= 0 && bn_act_fused(act_bn_[li], training)) break;  // done by the batch norm
      k.activation_fwd(y, x, n_in, l.act, l.alpha);
      break;
    case LayerKind::Softmax:
      k.softmax_fwd(y, x, n_in / size_t(in.back()), size_t(in.back()));
      break;
    case LayerKind::Add:
    case LayerKind::Average:
      k.add(y, x, pl.act[size_t(l.inputs[1])], n_out);
      for (size_t j = 2; j < l.inputs.size(); ++j) k.accumulate(y, pl.act[size_t(l.inputs[j])], n_out);
      if (l.kind == LayerKind::Average) k.scale(y, y, 1.f / float(l.inputs.size()), n_out);
      break;
    case LayerKind::Multiply:
      if (mul_gate_[li] >= 0) {
        const int gate = mul_gate_[li], C = int(shapes_[value_of(i)].back());
        k.mul_spatial(y, pl.act[size_t(l.inputs[size_t(1 - gate)])], pl.act[size_t(l.inputs[size_t(gate)])],
                      size_t(batch), n_out / size_t(batch) / size_t(C), C);
        break;
      }
      k.mul(y, x, pl.act[size_t(l.inputs[1])], n_out);
      for (size_t j = 2; j < l.inputs.size(); ++j) k.mul(y, y, pl.act[size_t(l.inputs[j])], n_out);
      break;
    case LayerKind::Concatenate: {
      std::vector<const float*> parts;
      std::vector<int> widths;
      for (int v : l.inputs) parts.push_back(pl.act[size_t(v)]), widths.push_back(int(shapes_[size_t(v)].back()));
      k.concat_last(y, parts.data(), widths.data(), int(parts.size()), n_in / size_t(in.back()));
      break;
    }
  }
}

// ---- gradient routing ----

float* Net::begin_grad(int v) {
  Plan& pl = *plan_;
  if (pl.grad[size_t(v)]) return pl.grad_tmp;  // added by end_grad
  // Only the first steps of a plan grow the pool; later ones reuse what it holds.
  if (pl.grad_free.empty()) pl.grad_free.push_back(pl.alloc(pl.max_value));
  pl.grad[size_t(v)] = pl.grad_free.back();
  pl.grad_free.pop_back();
  return pl.grad[size_t(v)];
}

void Net::end_grad(int v, float* written, size_t n) {
  if (written != plan_->grad[size_t(v)]) accumulate_values(plan_->grad[size_t(v)], written, n);
}

void Net::pass_grad(int v, float* dy, size_t n) {
  Plan& pl = *plan_;
  if (pl.grad[size_t(v)]) {
    accumulate_values(pl.grad[size_t(v)], dy, n);
    release_grad(dy);
  } else {
    pl.grad[size_t(v)] = dy;  // the buffer now holds v's gradient
  }
}

void Net::release_grad(float* g) { plan_->grad_free.push_back(g); }

void Net::accumulate_values(float* y, const float* x, size_t n) {
  if (device_ == DeviceType::Cuda) cuda_backend().kernels().accumulate(y, x, n, cuda_stream_);
  else cpu_kernels().accumulate(y, x, n);
}

void Net::copy_values(float* dst, const float* src, size_t n) {
  if (device_ == DeviceType::Cuda) cuda_backend().copy_d2d(dst, src, n * sizeof(float), cuda_stream_);
  else std::memcpy(dst, src, n * sizeof(float));
}

// ---- backward ----

void Net::backward(int batch) {
  if (device_ == DeviceType::Cuda) backward_layers(cuda_ops(), batch);
  else backward_layers(cpu_kernels(), batch);
}

template <class Ops>
void Net::backward_layers(const Ops& k, int batch) {
  Plan& pl = *plan_;
  // The loss wrote dL/d(output) for each output (with the fused softmax loss, dL/d(logits)).
  for (int i = int(layers_.size()) - 1; i >= 0; --i) {
    // No gradient may reach this layer (or its softmax went into the loss).
    if (float* dy = pl.grad[value_of(i)]) {
      pl.grad[value_of(i)] = nullptr;
      backward_layer(k, i, batch, dy);
    }
    on_layer_grads_ready(i);  // data-parallel: the buckets now final start their allreduce
  }
  for (int v = 0; v < num_inputs(); ++v) {
    if (pl.grad[size_t(v)]) release_grad(pl.grad[size_t(v)]), pl.grad[size_t(v)] = nullptr;
  }
}

// Layer i's weight gradients (if it trains) and the gradients of the inputs that need them;
// dy (layer i's output gradient) is consumed: modified in place, handed on or released.
template <class Ops>
void Net::backward_layer(const Ops& k, int i, int batch, float* dy) {
  Plan& pl = *plan_;
  const LayerSpec& l = layers_[size_t(i)];
  size_t li = size_t(i);
  int v0 = l.inputs[0];
  const Shape& in = shapes_[size_t(v0)];
  const float* x = pl.act[size_t(v0)];
  const float* y = pl.act[value_of(i)];
  size_t n_in = size_t(batch) * example_size(in);
  size_t n_out = size_t(batch) * example_size(shapes_[value_of(i)]);
  bool need_dx = needs_grad_[size_t(v0)];
  bool trains = l.trainable;
  if (act_bn_[li] >= 0 && bn_act_fused(act_bn_[li], true)) {
    // Run inside the batch norm before it: that backward takes dy through this derivative.
    if (need_dx) return pass_grad(v0, dy, n_in);
    return release_grad(dy);
  }
  switch (l.kind) {
    case LayerKind::Conv2d: {
      ConvParams p = conv_geometry(i, batch);
      if (l.act != Act::None && !relu_into_pool_[li]) k.activation_bwd(dy, dy, y, n_out, l.act, l.alpha);
      if (trains && l.groups == 1) {
        k.conv2d_bwd_filter(grad_ptr(kernel_param_[li]), grad_ptr(bias_param_[li]), dy, x, p);
      } else if (trains) {
        k.grouped_conv2d_bwd_filter(grad_ptr(kernel_param_[li]), grad_ptr(bias_param_[li]), dy, x, p, l.groups);
      }
      if (need_dx) {
        float* dx = begin_grad(v0);
        if (l.groups == 1) k.conv2d_bwd_data(dx, dy, param_ptr(kernel_param_[li]), p);
        else k.grouped_conv2d_bwd_data(dx, dy, param_ptr(kernel_param_[li]), p, l.groups);
        end_grad(v0, dx, n_in);
      }
      break;
    }
    case LayerKind::DepthwiseConv2d: {
      ConvParams p = conv_geometry(i, batch);
      if (l.act != Act::None && !relu_into_pool_[li]) k.activation_bwd(dy, dy, y, n_out, l.act, l.alpha);
      if (trains) k.depthwise_conv2d_bwd_filter(grad_ptr(kernel_param_[li]), grad_ptr(bias_param_[li]), dy, x, p);
      if (need_dx) {
        float* dx = begin_grad(v0);
        k.depthwise_conv2d_bwd_data(dx, dy, param_ptr(kernel_param_[li]), p);
        end_grad(v0, dx, n_in);
      }
      break;
    }
    case LayerKind::Conv2dTranspose: {
      // dy is the gradient of the output [N, H, W, C] of conv geometry p, x its input [N, P, Q, K].
      ConvParams p = conv_geometry(i, batch);
      if (l.act != Act::None) k.activation_bwd(dy, dy, y, n_out, l.act, l.alpha);
      if (trains) {
        k.conv2d_bwd_filter(grad_ptr(kernel_param_[li]), nullptr, x, dy, p);
        if (bias_param_[li] >= 0) k.bias_grad(grad_ptr(bias_param_[li]), dy, size_t(batch) * p.H * p.W, p.C);
      }
      if (need_dx) {
        float* dx = begin_grad(v0);
        k.conv2d_fwd(dx, dy, param_ptr(kernel_param_[li]), nullptr, p, Act::None);
        end_grad(v0, dx, n_in);
      }
      break;
    }
    case LayerKind::Dense: {
      int K = int(in.back()), rows = int(n_in / size_t(K));
      if (l.act != Act::None && !relu_into_pool_[li]) k.activation_bwd(dy, dy, y, n_out, l.act, l.alpha);
      if (trains) {
        k.dense_bwd_filter(grad_ptr(kernel_param_[li]), grad_ptr(bias_param_[li]), dy, x, rows, K, l.units);
      }
      if (need_dx) {
        float* dx = begin_grad(v0);
        k.dense_bwd_data(dx, dy, param_ptr(kernel_param_[li]), rows, K, l.units);
        end_grad(v0, dx, n_in);
      }
      break;
    }
    case LayerKind::Flatten:
    case LayerKind::Reshape:
      pass_grad(v0, dy, n_in);  // same values, new shape
      return;
    case LayerKind::Dropout:
      if (l.rate > 0.f) k.mul(dy, dy, pl.masks[li], n_in);
      pass_grad(v0, dy, n_in);
      return;
    case LayerKind::Add:
    case LayerKind::Average:
    {
      if (l.kind == LayerKind::Average) k.scale(dy, dy, 1.f / float(l.inputs.size()), n_out);
      // Every input's gradient is dy: copies for all but the last, which takes dy itself.
      int last = -1;
      for (size_t j = 0; j < l.inputs.size(); ++j) {
        if (needs_grad_[size_t(l.inputs[j])]) last = int(j);
      }
      for (int j = 0; j < last; ++j) {
        int v = l.inputs[size_t(j)];
        if (!needs_grad_[size_t(v)]) continue;
        float* dx = begin_grad(v);
        copy_values(dx, dy, n_out);
        end_grad(v, dx, n_out);
      }
      if (last < 0) break;
      pass_grad(l.inputs[size_t(last)], dy, n_out);
      return;
    }
    case LayerKind::Multiply:
      if (mul_gate_[li] >= 0) {
        // The gate's gradient sums dy * image over space; the image's is dy times the gate,
        // computed in dy's own buffer, which then becomes that gradient.
        const int gate = l.inputs[size_t(mul_gate_[li])], image = l.inputs[size_t(1 - mul_gate_[li])];
        const int C = int(shapes_[value_of(i)].back());
        const size_t hw = n_out / size_t(batch) / size_t(C);
        if (needs_grad_[size_t(gate)]) {
          float* dg = begin_grad(gate);
          k.mul_spatial_bwd_gate(dg, dy, pl.act[size_t(image)], size_t(batch), hw, C);
          end_grad(gate, dg, size_t(batch) * size_t(C));
        }
        if (!needs_grad_[size_t(image)]) break;
        k.mul_spatial(dy, dy, pl.act[size_t(gate)], size_t(batch), hw, C);
        pass_grad(image, dy, n_out);
        return;
      }
      // d/dx_j of the product: dy times every other input.
      for (size_t j = 0; j < l.inputs.size(); ++j) {
        int v = l.inputs[j];
        if (!needs_grad_[size_t(v)]) continue;
        float* dx = begin_grad(v);
        const float* src = dy;
        for (size_t m = 0; m < l.inputs.size(); ++m) {
          if (m == j) continue;
          k.mul(dx, src, pl.act[size_t(l.inputs[m])], n_out);
          src = dx;
        }
        end_grad(v, dx, n_out);
      }
      break;
    case LayerKind::Concatenate: {
      const size_t out_cols = size_t(shapes_[value_of(i)].back()), rows = n_out / out_cols;
      if constexpr (on_host<Ops>) {
        size_t offset = 0;
        for (int v : l.inputs) {
          size_t cols = size_t(shapes_[size_t(v)].back());
          if (needs_grad_[size_t(v)]) {
            float* dx = begin_grad(v);
            copy_columns(dx, dy, rows, cols, out_cols, offset);
            end_grad(v, dx, rows * cols);
          }
          offset += cols;
        }
      } else {
        // split_last writes every band: the wanted input's goes to its gradient, the others to
        // their places in a spare pool buffer (never one begin_grad hands out meanwhile).
        if (pl.grad_free.empty()) pl.grad_free.push_back(pl.alloc(pl.max_value));
        float* spare = pl.grad_free.back();
        pl.grad_free.pop_back();
        std::vector<int> widths;
        for (int v : l.inputs) widths.push_back(int(shapes_[size_t(v)].back()));
        for (size_t j = 0; j < l.inputs.size(); ++j) {
          const int v = l.inputs[j];
          if (!needs_grad_[size_t(v)]) continue;
          float* dx = begin_grad(v);
          std::vector<float*> parts;
          size_t offset = 0;
          for (size_t m = 0; m < l.inputs.size(); offset += size_t(widths[m]), ++m) {
            parts.push_back(m == j ? dx : spare + rows * offset);
          }
          k.split_last(parts.data(), dy, widths.data(), int(parts.size()), rows);
          end_grad(v, dx, rows * size_t(widths[j]));
        }
        release_grad(spare);
      }
      break;
    }
    default: {
      // Layers with one input and no weights (or a batch, layer or group norm): dx from dy.
      if (l.kind == LayerKind::BatchNorm && trains) {
        int C = int(in.back());
        size_t rows = n_in / size_t(C);
        float* dx = need_dx ? begin_grad(v0) : pl.grad_tmp;
        // Fused: dy is the activation's output gradient, taken through its derivative here.
        const bool fused = bn_act_fused(i, true);
        k.batchnorm_bwd(dx, grad_ptr(gamma_param_[li]), grad_ptr(beta_param_[li]), dy, x,
                        pl.bn_mean[li], pl.bn_invstd[li], param_ptr(gamma_param_[li]), param_ptr(beta_param_[li]), rows, C,
                        fused ? pl.act[value_of(bn_act_[li])] : nullptr, fused ? bn_act_kind_[li] : Act::None);
        if (need_dx) end_grad(v0, dx, n_in);
        break;
      }
      if (l.kind == LayerKind::LayerNorm || l.kind == LayerKind::GroupNorm) {
        // Frozen, the layer still normalizes with the batch's statistics: dx takes the full form.
        if (!need_dx && !trains) break;
        const NormGeometry g = norm_geometry(l, in, batch);
        float* dx = need_dx ? begin_grad(v0) : pl.grad_tmp;
        k.groupnorm_bwd(dx, trains ? grad_ptr(gamma_param_[li]) : nullptr, trains ? grad_ptr(beta_param_[li]) : nullptr,
                        dy, x, pl.bn_mean[li], pl.bn_invstd[li], param_ptr(gamma_param_[li]), g.N, g.S, g.C, g.G);
        if (need_dx) end_grad(v0, dx, n_in);
        break;
      }
      if (!need_dx) break;
      float* dx = begin_grad(v0);
      switch (l.kind) {
        case LayerKind::MaxPool2d:
          k.maxpool2d_bwd(dx, dy, x, pool_geometry(i, batch),
                          size_t(v0) >= inputs_.size() && relu_into_pool_[size_t(v0) - inputs_.size()]);
          break;
        case LayerKind::AvgPool2d:
          k.avgpool2d_bwd(dx, dy, pool_geometry(i, batch));
          break;
        case LayerKind::LpPool2d:
          k.lppool2d_bwd(dx, dy, x, y, pool_geometry(i, batch), l.power);
          break;
        case LayerKind::GlobalAvgPool:
          k.global_avgpool_bwd(dx, dy, batch, int(in[0] * in[1]), int(in[2]));
          break;
        case LayerKind::GlobalMaxPool:
          k.global_maxpool_bwd(dx, dy, x, batch, int(in[0] * in[1]), int(in[2]));
          break;
        case LayerKind::ZeroPadding2d:
          k.zero_pad2d_bwd(dx, dy, pad_params(l, batch, in));
          break;
        case LayerKind::UpSampling2d:
          k.upsample2d_bwd(dx, dy, upsample_params(l, batch, in));
          break;
        case LayerKind::Cropping2d:
          k.zero_pad2d_fwd(dx, dy, crop_params(l, batch, shapes_[value_of(i)]));
          break;
        case LayerKind::BatchNorm:
          if constexpr (on_host<Ops>) {
            frozen_batchnorm_bwd(dx, dy, i, n_in / size_t(in.back()), int(in.back()));
          } else {
            // dx = dy * gamma / sqrt(var + eps): the inference transform of dy with mean 0 and
            // no shift (the statistics buffer, unused by a frozen layer, holds the zeros).
            const int C = int(in.back());
            cuda_backend().zero(pl.bn_mean[li], size_t(C) * sizeof(float), cuda_stream_);
            k.batchnorm_fwd_infer(dx, dy, param_ptr(gamma_param_[li]), nullptr, pl.bn_mean[li],
                                  param_ptr(var_param_[li]), n_in / size_t(C), C, l.eps);
          }
          break;
        case LayerKind::Activation:
          // The plan keeps every value through the step, so the input x is there for the
          // activations whose gradient needs it.
          if (act_grad_from_output(l.act)) k.activation_bwd(dx, dy, y, n_in, l.act, l.alpha);
          else k.activation_bwd_from_x(dx, dy, x, n_in, l.act, l.alpha);
          break;
        case LayerKind::Softmax:
          k.softmax_bwd(dx, dy, y, n_in / size_t(in.back()), size_t(in.back()));
          break;
        default:
          throw Error(ErrorKind::Value, l.name + ": no backward pass");
      }
      end_grad(v0, dx, n_in);
    }
  }
  release_grad(dy);
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

}  // namespace ck
