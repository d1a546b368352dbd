// The network executor's step, written once for both devices over a device policy
// (net_device.h): gather, forward, loss and metrics, backward, the gradient reducer, penalties
// and clipping, the fused optimizer update; evaluation is the same step without the backward
// half. The host's policy is here (its totals and clipping as plain loops with the CUDA kernels'
// contracts), the GPU's in net_cuda.cpp.
#include <algorithm>
#include <cmath>
#include <exception>
#include <type_traits>

#include "errors.h"
#include "net.h"
#include "net_device.h"
#include "net_plan.h"

namespace ck {

// ---- the step, written once over the device ----

template <class Device>
void Net::step(Device& dev, const StepRequest& r) {
  require(!r.training || r.global_batch <= 0 || reduce_gradients_, ErrorKind::Value,
          "fit: a data-parallel step needs a gradient reducer (fit's distributed option)");
  const int batch = int(r.idx.size());
  weighted_ = !r.weights.empty();
  // The batches trained after this step, and whether it updates the weights (with gradient
  // accumulation, every accumulation_steps-th batch does, as Keras's (iterations + 1) % steps).
  const int64_t iteration = r.training ? iterations_ + 1 : iterations_;
  applying_ = !r.training || opt_.accumulation_steps < 2 || iteration % opt_.accumulation_steps == 0;
  Failure failed;  // this process's part of a data-parallel step: the others must hear of it
  try {
    if (r.global_batch > 0) begin_gradient_buckets();  // the step's sync point opens
    if (batch > 0 && r.slices == 1) {  // train_slices plans and gathers slice by slice
      plan_for(batch, r.training);
      dev.gather(r, optimizer_step(iteration));
    } else if (batch == 0 && device_ == DeviceType::Cuda) {
      dev.gather(r, optimizer_step(iteration));  // no rows, but the update reads the step's scalars from the GPU
    }
  } catch (...) {
    if (r.global_batch <= 0) throw;
    failed = current_failure();
  }
  if (r.folded) refresh_folded_weights();
  const SumSlots sums = dev.sums(r.training);
  dev.run_body(batch, r.training, [&] { step_body(dev, r, batch, sums, failed); });
  (r.training ? train_acc_ : eval_acc_).count += double(loss_rows(batch));
  if (!r.training) return;
  iterations_ = iteration;
  ++weights_version_;  // the update and the batch norms' running statistics
}

template <class Device>
void Net::step_body(Device& dev, const StepRequest& r, int batch, const SumSlots& sums, Failure failed) {
  // A failed part of a data-parallel step goes straight on to the reducer, which reports it.
  if (!failed) {
    try {
      if (r.slices > 1) {
        if constexpr (std::is_same_v<Device, CpuDevice>) train_slices(dev, r, sums);
      } else if (batch > 0) {
        step_first_row_ = uint64_t(r.first_row);
        forward(*plan_, batch, r.training, r.seed, -1, r.folded);
        step_first_row_ = 0;
        loss_batch_ = r.global_batch;  // 0 but in data-parallel steps
        loss_and_metrics(dev, batch, r.training, sums);
        if (r.training) backward(batch);
      } else {
        dev.zero(grads_->data(), grads_->size());  // this process adds nothing
      }
    } catch (...) {
      if (r.global_batch <= 0) throw;
      failed = current_failure();
    }
  }
  if (r.global_batch > 0) finish_gradient_buckets(failed);
  penalties_and_clipping(dev, batch, r.training, sums);
  if (r.training && applying_) update(dev.kernels(), optimizer_step(iterations_ + 1));
}

// Each slice as the process of a data-parallel fit of r.slices processes that holds it trains its
// share (DataParallel.share's split): its rows alone through forward and backward, the loss
// averaged over the whole batch, dropout drawn at the rows' places in it, zero gradients for a
// slice without rows. The sums ((g0 + g1) + g2) + ... are sum_floats's with orderedSum.
void Net::train_slices(CpuDevice& dev, const StepRequest& r, const SumSlots& sums) {
  const int batch = int(r.idx.size());
  std::vector<float> total;
  StepRequest part = r;
  for (int s = 0; s < r.slices; ++s) {
    const int first = int(int64_t(s) * batch / r.slices), end = int(int64_t(s + 1) * batch / r.slices);
    const int n = end - first;
    if (n == 0) {
      dev.zero(grads_->data(), grads_->size());
    } else {
      part.idx.assign(r.idx.begin() + first, r.idx.begin() + end);
      plan_for(n, true);
      dev.gather(part, 0);
      step_first_row_ = uint64_t(first);
      forward(*plan_, n, true, r.seed, -1, false);
      step_first_row_ = 0;
      loss_batch_ = batch;
      loss_and_metrics(dev, n, true, sums);
      backward(n);
    }
    const float* g = grads_->data();
    if (s == 0) {
      total.assign(g, g + n_weights_);
    } else {
      for (size_t i = 0; i < n_weights_; ++i) total[i] += g[i];
    }
  }
  std::copy(total.begin(), total.end(), grads_->data());
}

template <class Device>
Net::OutputRows Net::output_loss(Device& dev, size_t o, int batch, const float* target, bool with_grad) {
  const auto& k = dev.kernels();
  const int v = outputs_[o];
  const Shape& out_shape = shapes_[size_t(v)];
  const size_t cols = size_t(out_shape.back());
  const size_t rows = size_t(batch) * shape_numel(out_shape) / cols;
  // The mean over the step's rows, or over the job's global batch in a data-parallel step (whose
  // summed gradients then equal one process's on the whole batch).
  const size_t mean_over = loss_batch_ > 0 ? size_t(loss_batch_) * (rows / size_t(batch)) : rows;
  const float scale = 1.f / float(mean_over);
  const float* out = plan_->act[size_t(v)];
  float* loss = plan_->row_loss[o];
  const int fused = fused_output_[o];
  const bool sparse = loss_ == LossKind::SparseCategoricalCrossentropy;
  const LabelMode mode = sparse ? LabelMode::Sparse : LabelMode::Dense;
  const LossSpec& spec = loss_spec_;
  // The gradient goes to the softmax's logits when it is folded into the loss.
  const int grad_value = fused >= 0 ? layers_[size_t(fused)].inputs[0] : v;
  float* grad = with_grad && needs_grad_[size_t(grad_value)] ? begin_grad(grad_value) : nullptr;
  switch (loss_) {
    case LossKind::CategoricalCrossentropy:
    case LossKind::SparseCategoricalCrossentropy:
      if (fused >= 0 || spec.from_logits) {
        k.softmax_xent(loss, grad, plan_->act[size_t(grad_value)], target, rows, cols, mode,
                       spec.label_smoothing, scale);
      } else {
        dev.probability_xent(loss, grad, out, target, rows, cols, sparse, spec.label_smoothing, scale);
      }
      break;
    case LossKind::BinaryCrossentropy:
      k.binary_xent(loss, grad, out, target, rows, cols, spec.from_logits, scale);
      break;
    case LossKind::MeanSquaredError:
      k.mse(loss, grad, out, target, rows, cols, scale);
      break;
    case LossKind::Huber:
      k.huber(loss, grad, out, target, rows, cols, spec.delta, scale);
      break;
    case LossKind::KLDivergence:
      k.kl_divergence(loss, grad, out, target, rows, cols, scale);
      break;
  }
  if (weighted_) k.weight_rows(loss, grad, plan_->row_weights, rows, cols, rows / size_t(batch));
  if (grad) end_grad(grad_value, grad, rows * cols);
  return {rows, cols};
}

// Each output's loss (and, when training, its gradient into a fresh gradient buffer) and
// metrics; the loss of the model is their sum, as in Keras.
template <class Device>
void Net::loss_and_metrics(Device& dev, int batch, bool with_grad, const SumSlots& sums) {
  const LabelMode mode = loss_ == LossKind::SparseCategoricalCrossentropy ? LabelMode::Sparse : LabelMode::Dense;
  for (size_t o = 0; o < outputs_.size(); ++o) {
    const float* out = plan_->act[size_t(outputs_[o])];
    const float* target = plan_->targets[o];
    const float* loss = plan_->row_loss[o];
    const auto [rows, cols] = output_loss(dev, o, batch, target, with_grad);
    dev.sum_into(sums.loss, loss, rows);
    dev.sum_into(sums.output_loss + o, loss, rows);
    double* slot = sums.metric_sums + o * metric_slots_;
    size_t thresholds_at = 0;  // metric m's first threshold among the compiled metrics'
    for (const MetricSpec& m : metrics_) {
      if (m.kind == MetricKind::TopK) {
        dev.add_count(slot, dev.top_k_count(out, target, rows, cols, mode, m.k), 1.0);
      } else if (m.kind == MetricKind::Confusion) {
        // Keras's precision, recall and AUC flatten every output value (multi_label off), or
        // take one class's column (class_id), after keeping each row's top k (top_k).
        dev.threshold_counts(slot, out, target, rows, cols, m.class_id, m.top_k, dev.thresholds(m, thresholds_at),
                             m.thresholds.size());
        thresholds_at += m.thresholds.size();
      } else {
        dev.kernels().confusion_matrix_counts(slot, out, target, rows, cols, mode);
      }
      slot += m.slots();
    }
    if (!accuracy_) continue;
    // Keras's binary accuracy: each output thresholded at 0.5, averaged over the row.
    const bool binary = loss_ == LossKind::BinaryCrossentropy;
    const auto correct = dev.accuracy_count(out, target, binary ? rows * cols : rows, binary ? 1 : cols, mode, 0.5f);
    const double divisor = binary ? double(cols) : 1.0;
    dev.add_count(sums.output_correct + o, correct, divisor);
    if (o == 0) dev.add_count(sums.correct, correct, divisor);
  }
}

// The rows a step's loss is averaged over (those of the first output): the logged loss is
// loss_sum / count, so a penalty counted once per row adds exactly itself to it, as Keras logs it.
size_t Net::loss_rows(int batch) const {
  const Shape& first = shapes_[size_t(outputs_[0])];
  return size_t(batch) * shape_numel(first) / size_t(first.back());
}

// A frozen layer's weights count for nothing, as in Keras (which sums the penalties of trainable
// weights only). Clipping is Keras's (see GradientClip): norms summed in double, in a fixed order.
template <class Device>
void Net::penalties_and_clipping(Device& dev, int batch, bool training, const SumSlots& sums) {
  float* g = grads_->data();
  const double rows = double(loss_rows(batch));
  for (const WeightPenalty& p : penalties_) {
    const ParamInfo& info = params_[size_t(p.param)];
    if (!layers_[size_t(info.layer)].trainable) continue;
    dev.penalty_into(sums.loss, training ? g + info.offset : nullptr, weights_->data() + info.offset, info.size, p.l1,
                     p.l2, rows);
  }
  if (!training || !accumulate_gradients(dev)) return;
  const GradientClip& c = opt_.clip;
  if (!c.any()) return;
  if (c.value > 0) {
    for (const auto& [off, n] : update_ranges_) dev.clip_values(g + off, n, float(c.value));
  } else if (c.norm > 0) {
    double* norms = dev.norms(update_params_.size());
    for (size_t i = 0; i < update_params_.size(); ++i) {
      const auto& [off, n] = update_params_[i];
      dev.sum_squares_into(norms + i, g + off, n);
      dev.clip_to_norm(g + off, n, norms + i, float(c.norm));
    }
  } else {
    double* norm = dev.norms(1);
    for (const auto& [off, n] : update_ranges_) dev.sum_squares_into(norm, g + off, n);
    for (const auto& [off, n] : update_ranges_) dev.clip_to_norm(g + off, n, norm, float(c.global_norm));
  }
}

// Keras's _backend_apply_gradients with gradient_accumulation_steps: (g + accumulated) / steps on
// the completing batch, the accumulator then zeroed; the other batches add g into it.
template <class Device>
bool Net::accumulate_gradients(Device& dev) {
  const int steps = opt_.accumulation_steps;
  if (steps < 2) return true;
  const auto& k = dev.kernels();
  float* g = grads_->data();
  float* acc = opt_state_.back()->data();
  for (const auto& [off, n] : update_ranges_) {
    if (!applying_) {
      k.accumulate(acc + off, g + off, n);
      continue;
    }
    k.accumulate(g + off, acc + off, n);
    k.scale(g + off, g + off, 1.f / float(steps), n);
    dev.zero(acc + off, n);
  }
  return applying_;
}

template <class Ops>
void Net::update(const Ops& k, int64_t step) {
  float* w = weights_->data();
  const float* g = grads_->data();
  auto state = [&](size_t i) { return update_buffers_ > i ? opt_state_[i]->data() : nullptr; };
  for (const auto& [off, n] : update_ranges_) {
    switch (opt_.kind) {
      case OptimizerKind::Sgd: {
        float* v = state(0);
        k.sgd_update(w + off, v ? v + off : nullptr, g + off, n, opt_.sgd);
        break;
      }
      case OptimizerKind::Adam: {
        AdamParams p = opt_.adam;
        p.step = step;
        k.adam_update(w + off, state(0) + off, state(1) + off, g + off, n, p);
        break;
      }
      case OptimizerKind::Rmsprop: {
        const RmspropParams& p = opt_.rmsprop;
        size_t next = 1;
        float* mom = p.momentum > 0.f ? state(next++) + off : nullptr;
        float* mg = p.centered ? state(next) + off : nullptr;
        k.rmsprop_update(w + off, state(0) + off, mom, mg, g + off, n, p);
        break;
      }
      case OptimizerKind::Adagrad:
        k.adagrad_update(w + off, state(0) + off, g + off, n, opt_.adagrad);
        break;
      case OptimizerKind::Nadam: {
        NadamParams p = opt_.nadam;
        p.step = step;
        k.nadam_update(w + off, state(0) + off, state(1) + off, g + off, n, p);
        break;
      }
    }
  }
}

template void Net::step(CpuDevice&, const StepRequest&);
template void Net::step(CudaDevice&, const StepRequest&);

// ---- the host as the device ----

void Net::CpuDevice::gather(const StepRequest& r, int64_t) {
  Plan& pl = *net.plan_;
  for (size_t i = 0; i < r.xs.size(); ++i) net.gather(pl.act[i], r.xs[i], r.idx, net.example_size(net.inputs_[i]));
  for (size_t o = 0; o < r.ys.size(); ++o) {
    net.gather(pl.targets[o], r.ys[o], r.idx, r.ys[o].numel() / size_t(r.ys[o].dim(0)));
  }
  if (!r.weights.empty()) net.gather(pl.row_weights, r.weights[0], r.idx, 1);
}

Net::SumSlots Net::CpuDevice::sums(bool training) {
  Accumulators& acc = training ? net.train_acc_ : net.eval_acc_;
  const size_t outputs = net.outputs_.size();
  acc.output_loss.resize(outputs, 0.0);
  acc.output_correct.resize(outputs, 0.0);
  acc.metric_sums.resize(outputs * net.metric_slots_, 0.0);
  return {&acc.loss_sum, &acc.correct, acc.output_loss.data(), acc.output_correct.data(), acc.metric_sums.data()};
}

void Net::CpuDevice::zero(float* p, size_t n) const { std::fill(p, p + n, 0.f); }

void Net::CpuDevice::sum_into(double* acc, const float* x, size_t n) const {
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += x[i];
  *acc += sum;
}

void Net::CpuDevice::penalty_into(double* acc, float* g, const float* w, size_t n, double l1, double l2,
                                  double scale) const {
  const float l1f = float(l1), twice_l2 = float(2 * l2);
  double abs_sum = 0, square_sum = 0;
  for (size_t i = 0; i < n; ++i) {
    abs_sum += std::fabs(double(w[i]));
    square_sum += double(w[i]) * double(w[i]);
    if (g) g[i] += l1f * float((w[i] > 0.f) - (w[i] < 0.f)) + twice_l2 * w[i];
  }
  *acc += scale * (l1 * abs_sum + l2 * square_sum);
}

double* Net::CpuDevice::norms(size_t n) {
  norms_.assign(n, 0.0);
  return norms_.data();
}

void Net::CpuDevice::sum_squares_into(double* acc, const float* x, size_t n) const {
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += double(x[i]) * double(x[i]);
  *acc += sum;
}

// g * clip / max(norm, clip): unchanged while the norm is within the clip.
void Net::CpuDevice::clip_to_norm(float* g, size_t n, const double* sum_sq, float clip) const {
  const double norm = std::sqrt(*sum_sq);
  if (norm <= double(clip)) return;
  const float f = float(double(clip) / norm);
  for (size_t i = 0; i < n; ++i) g[i] *= f;
}

void Net::CpuDevice::clip_values(float* g, size_t n, float limit) const {
  for (size_t i = 0; i < n; ++i) g[i] = std::min(std::max(g[i], -limit), limit);
}

// Clipped as Keras does, with Keras's label smoothing of the targets. No kernel: a plain loop
// over host memory.
void Net::CpuDevice::probability_xent(float* loss, float* grad, const float* p, const float* t, size_t rows,
                                      size_t cols, bool sparse, float smoothing, float scale) const {
  const float lo = 1e-7f, hi = 1.f - 1e-7f;
  for (size_t r = 0; r < rows; ++r) {
    double l = 0;
    for (size_t c = 0; c < cols; ++c) {
      float target = sparse ? (size_t(t[r]) == c ? 1.f : 0.f) : t[r * cols + c];
      target = target * (1.f - smoothing) + smoothing / float(cols);
      float pc = p[r * cols + c];
      float clipped = std::min(std::max(pc, lo), hi);
      l -= double(target) * std::log(double(clipped));
      if (grad) grad[r * cols + c] = (pc > lo && pc < hi) ? -target / clipped * scale : 0.f;
    }
    loss[r] = float(l);
  }
}

}  // namespace ck
