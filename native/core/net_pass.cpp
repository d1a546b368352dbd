// The network executor's forward and backward passes over the layer graph. Forward visits the
// layers in order; backward visits them in reverse, routing each layer's input gradients to the
// values it read: the first contribution to a value is written in place, later ones (a value
// read by several layers) are added. Gradient buffers come from a pool, so a plain stack uses
// two, as a hand-written ping-pong would.
#include <algorithm>
#include <cstring>

#include "errors.h"
#include "layers/layer.h"
#include "net.h"
#include "net_ops.h"
#include "net_plan.h"

namespace ck {

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
  const auto folded = layer_def(l.kind).forward_folded;
  require(folded != nullptr, ErrorKind::Value, l.name + ": no folded form");
  const bool bn = f.bn >= 0;
  FoldedCall call;
  call.w = bn ? folded_weights_->data() + f.kernel_at : param_ptr(kernel_param_[size_t(i)]);
  call.b = bn ? folded_weights_->data() + f.bias_at : param_ptr(bias_param_[size_t(i)]);
  const bool packed = packed_for_ == &k && packed_at_[size_t(i)] != kNotPacked;
  call.packed = packed ? packed_weights_->data() + packed_at_[size_t(i)] : nullptr;
  call.y = pl.act[value_of(f.out_layer >= 0 ? f.out_layer : i)];
  call.act = f.out_layer >= 0 ? f.act : l.fused_act();
  call.geometry = folded_geometry(i, batch);
  call.x = pl.act[size_t(f.pad >= 0 ? layers_[size_t(f.pad)].inputs[0] : l.inputs[0])];
  LayerPass pass(*this, pl, i, batch, false, 0);
  folded(k, pass, call);
}

template <class Ops>
void Net::forward_layer(const Ops& k, Plan& pl, int i, int batch, bool training, uint64_t seed) {
  LayerPass pass(*this, pl, i, batch, training, seed);
  const LayerDef& def = layer_def(layers_[size_t(i)].kind);
  if constexpr (on_host<Ops>) def.forward_cpu(k, pass);
  else def.forward_cuda(k, pass);
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
  std::fill(grads_written_.begin(), grads_written_.end(), 0);
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
// Of a layer whose weights others share, the first application to run backward writes their
// gradients and each later one adds its own (the sum over the applications is the gradient).
template <class Ops>
void Net::backward_layer(const Ops& k, int i, int batch, float* dy) {
  LayerPass pass(*this, *plan_, i, batch, true, 0);
  const size_t owner = size_t(param_owner_[size_t(i)]);
  const auto [offset, size] = trainable_span_[owner];
  const bool writes = layers_[size_t(i)].trainable && shared_owner_[owner] && size > 0;
  const bool adds = writes && grads_written_[owner];
  if (adds) pass.write_grads_into(plan_->shared_grad);
  const LayerDef& def = layer_def(layers_[size_t(i)].kind);
  if constexpr (on_host<Ops>) def.backward_cpu(k, pass, dy);
  else def.backward_cuda(k, pass, dy);
  if (!pass.passed_dy()) release_grad(dy);
  if (adds) accumulate_values(grads_->data() + offset, plan_->shared_grad, size);
  if (writes) grads_written_[owner] = 1;
}

}  // namespace ck
