// The network executor's training: compile and the settings it steps with (trainable layers,
// learning rate, metrics), the checks of a batch, one task per training or evaluation batch, and
// the step itself written once for both devices (gather, forward, loss and metrics, backward,
// the gradient reducer, penalties and clipping, fused optimizer update) over a device policy
// (net_device.h): the host's is here, the GPU's in net_cuda.cpp. Inference is net_infer.cpp;
// weights and optimizer state net_state.cpp.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>

#include "errors.h"
#include "net.h"
#include "net_device.h"
#include "net_plan.h"
#include "op_launch.h"
#include "precision.h"

namespace ck {

Net::~Net() {
  stream_->synchronize();
  if (results_) results_->synchronize();
  plan_.reset();  // waits for the CUDA work that uses it
  thread_plans_.clear();
  if (cuda_stream_) {
    drop_cuda_graphs(true);
    cuda_backend().destroy_stream(cuda_stream_);
  }
}

namespace {
// Runs a step's body, reporting an exception through the step's result (a step has no output
// tensor to carry it).
template <class F>
void run_step(Accumulators* out, F&& body) {
  try {
    const Accumulators& sums = body();
    if (out) *out = sums;
  } catch (...) {
    if (out) out->error = current_failure();
  }
}
}  // namespace

// Every task runs in the GPU precision in force when it was queued (ck.setPrecision), as an op
// does when it is called.
void Net::enqueue(const char* what, std::vector<const Tensor*> reads,
                  std::vector<const Tensor*> writes, std::function<void()> fn) {
  last_task_ = launch_on(stream_, what, reads, writes, [fn = std::move(fn), p = math_precision()] {
    PrecisionScope scope(p);
    fn();
  });
}

// ---- configuration ----

// The weight ranges the optimizer updates, and which values backward must reach: those that
// depend on a trainable weight.
void Net::compute_update_ranges() {
  needs_grad_.assign(shapes_.size(), 0);
  for (size_t i = 0; i < layers_.size(); ++i) {
    bool needs = layers_[i].trainable && has_weights(int(i));
    for (int v : layers_[i].inputs) needs = needs || needs_grad_[size_t(v)];
    needs_grad_[value_of(int(i))] = needs;
  }
  update_ranges_.clear();
  update_params_.clear();
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (!layers_[i].trainable) continue;
    for (int idx : {kernel_param_[i], bias_param_[i], gamma_param_[i], beta_param_[i]}) {
      if (idx < 0) continue;
      const ParamInfo& p = params_[size_t(idx)];
      update_params_.emplace_back(p.offset, p.size);
      if (!update_ranges_.empty() &&
          update_ranges_.back().first + update_ranges_.back().second == p.offset) {
        update_ranges_.back().second += p.size;
      } else {
        update_ranges_.emplace_back(p.offset, p.size);
      }
    }
  }
}

void Net::compile(const LossSpec& loss, const OptimizerSpec& opt, bool accuracy,
                  std::vector<MetricSpec> metrics) {
  require(std::isfinite(loss.label_smoothing) && loss.label_smoothing >= 0.f && loss.label_smoothing <= 1.f,
          ErrorKind::Value, "compile: labelSmoothing must be in [0, 1], got " + std::to_string(loss.label_smoothing));
  require(std::isfinite(loss.delta) && loss.delta > 0.f, ErrorKind::Value,
          "compile: huber's delta must be a finite number > 0, got " + std::to_string(loss.delta));
  for (const MetricSpec& m : metrics) {
    require(m.kind != MetricKind::TopK || m.k >= 1, ErrorKind::Value,
            "compile: top-k accuracy needs k >= 1, got " + std::to_string(m.k));
    require(m.kind != MetricKind::Confusion || (!m.thresholds.empty() &&
                                                std::is_sorted(m.thresholds.begin(), m.thresholds.end())),
            ErrorKind::Value, "compile: a metric's thresholds must be a non-empty ascending list");
  }
  wait_idle();  // the optimizer state is replaced below
  loss_ = loss.kind;
  loss_spec_ = loss;
  opt_ = opt;
  accuracy_ = accuracy;
  metrics_ = std::move(metrics);
  metric_slots_ = 0;
  for (const MetricSpec& m : metrics_) metric_slots_ += m.slots();
  if (device_ == DeviceType::Cuda) cuda_alloc_sums();  // laid out for these metrics
  bool cce = (loss.kind == LossKind::CategoricalCrossentropy ||
              loss.kind == LossKind::SparseCategoricalCrossentropy) && !loss.from_logits;
  // softmax + cross-entropy is computed from the logits: stable, and one pass. It needs the
  // logits to feed only the softmax, and the softmax output to be read by nothing but the loss.
  // (With from_logits the output is the logits already.)
  fused_output_.assign(outputs_.size(), -1);
  for (size_t o = 0; o < outputs_.size(); ++o) {
    int v = outputs_[o];
    if (!cce || size_t(v) < inputs_.size() || consumers_[size_t(v)] != 0) continue;
    int layer = v - int(inputs_.size());
    const LayerSpec& l = layers_[size_t(layer)];
    if (l.kind == LayerKind::Softmax && consumers_[size_t(l.inputs[0])] == 1 &&
        size_t(l.inputs[0]) >= inputs_.size()) {
      fused_output_[o] = layer;
    }
  }
  size_t buffers = 0;
  switch (opt.kind) {
    case OptimizerKind::Sgd: buffers = opt.sgd.momentum > 0.f ? 1 : 0; break;
    case OptimizerKind::Adam:
    case OptimizerKind::Nadam: buffers = 2; break;
    case OptimizerKind::Rmsprop:
      buffers = 1 + (opt.rmsprop.momentum > 0.f) + opt.rmsprop.centered;
      break;
    case OptimizerKind::Adagrad: buffers = 1; break;
  }
  auto filled = [&](float value) {
    auto s = net_storage(std::max<size_t>(n_weights_, 1), device_);
    if (device_ == DeviceType::Cuda && value == 0.f) {
      cuda_backend().zero(s->data(), s->size() * sizeof(float), cuda_stream_);
    } else if (device_ == DeviceType::Cuda) {
      std::vector<float> host(s->size(), value);
      upload_values(s->data(), host.data(), host.size());
    } else {
      std::fill(s->data(), s->data() + s->size(), value);
    }
    return s;
  };
  // Zero, so that a weight no gradient reaches in a step is not moved by stale values.
  if (!grads_) grads_ = filled(0.f);
  opt_state_.clear();
  // Adagrad's accumulator starts at initial_accumulator, as Keras's does.
  const float first = opt.kind == OptimizerKind::Adagrad ? float(opt.adagrad.initial_accumulator) : 0.f;
  for (size_t b = 0; b < buffers; ++b) opt_state_.push_back(filled(b == 0 ? first : 0.f));
  iterations_ = 0;
  compute_update_ranges();
  drop_cuda_graphs(false);  // new optimizer state and rules
  compiled_ = true;
}

void Net::set_trainable(int layer, bool trainable) {
  require(layer >= 0 && size_t(layer) < layers_.size(), ErrorKind::Value,
          "setTrainable: no layer " + std::to_string(layer));
  enqueue("setTrainable", {}, {}, [this, layer, trainable] {
    layers_[size_t(layer)].trainable = trainable;
    compute_update_ranges();
    drop_cuda_graphs(false);  // they update the old ranges
  });
}

void Net::set_learning_rate(double lr) {
  require(std::isfinite(lr) && lr >= 0, ErrorKind::Value,
          "learningRate must be a finite number >= 0, got " + std::to_string(lr));
  enqueue("setLearningRate", {}, {}, [this, lr] {
    opt_.adam.lr = opt_.rmsprop.lr = opt_.adagrad.lr = opt_.nadam.lr = lr;
    opt_.sgd.lr = float(lr);
    drop_cuda_graphs(false);  // they hold the old rate
  });
}

void Net::set_regularizers(std::vector<WeightPenalty> penalties) {
  for (const WeightPenalty& p : penalties) {
    require(p.param >= 0 && size_t(p.param) < params_.size() && params_[size_t(p.param)].trainable, ErrorKind::Value,
            "setRegularizers: no trainable weight " + std::to_string(p.param));
    require(std::isfinite(p.l1) && std::isfinite(p.l2) && p.l1 >= 0 && p.l2 >= 0, ErrorKind::Value,
            "setRegularizers: l1 and l2 must be finite numbers >= 0");
  }
  wait_idle();
  penalties_ = std::move(penalties);
  drop_cuda_graphs(false);
}

void Net::reset_metrics() {
  enqueue("resetMetrics", {}, {}, [this] {
    train_acc_ = eval_acc_ = Accumulators{};
    if (cuda_sums_) cuda_backend().zero(cuda_sums_->data(), cuda_sums_->size() * sizeof(float), cuda_stream_);
  });
}

void Net::reset_eval_metrics() {
  enqueue("resetEvalMetrics", {}, {}, [this] {
    eval_acc_ = Accumulators{};
    if (cuda_sums_) {
      // The evaluation half of the device sums (see cuda_sums_).
      size_t half = cuda_sums_->size() / 2;
      cuda_backend().zero(cuda_sums_->data() + half, half * sizeof(float), cuda_stream_);
    }
  });
}

void Net::iterations_after(std::shared_ptr<int64_t> out) {
  enqueue("iterations", {}, {}, [this, out] { *out = iterations_; });
}

// ---- batches ----

void Net::check_batch(const char* op, const std::vector<Tensor>& xs,
                      const std::vector<Tensor>* ys, const std::vector<int32_t>& idx) const {
  // Runs before every step: messages are built only when a check fails.
  require_lazy(xs.size() == inputs_.size(), ErrorKind::Value, [&] {
    return std::string(op) + ": the model takes " + std::to_string(inputs_.size()) + " input(s), got " +
           std::to_string(xs.size());
  });
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    bool fits = x.rank() == int(inputs_[i].size()) + 1 &&
                std::equal(inputs_[i].begin(), inputs_[i].end(), x.shape.begin() + 1);
    require_lazy(fits, ErrorKind::Shape, [&] {
      return std::string(op) + ": the model takes input " + batch_shape_str(inputs_[i]) + ", got " +
             shape_str(x.shape);
    });
    require_lazy(x.device() == DeviceType::Cpu || device_ == DeviceType::Cuda, ErrorKind::Device, [&] {
      return std::string(op) + ": input " + std::to_string(i) + " is a cuda tensor but the model is on the cpu; " +
             "compile it with { device: 'cuda' }, or pass x.to('cpu')";
    });
    require_lazy(x.dim(0) == xs[0].dim(0), ErrorKind::Shape, [&] {
      return std::string(op) + ": all inputs need the same number of examples, got " + shape_str(xs[0].shape) +
             " and " + shape_str(x.shape);
    });
  }
  require_lazy(idx.size() < (size_t(1) << 24), ErrorKind::Value,
               [&] { return std::string(op) + ": a batch needs between 1 and 2^24 rows"; });  // callers check >= 1
  for (int32_t i : idx) {
    require_lazy(i >= 0 && i < xs[0].dim(0), ErrorKind::Value, [&] {
      return std::string(op) + ": row index " + std::to_string(i) + " is outside [0, " +
             std::to_string(xs[0].dim(0)) + ")";
    });
  }
  if (!ys) return;
  require_lazy(ys->size() == outputs_.size(), ErrorKind::Value, [&] {
    return std::string(op) + ": the model has " + std::to_string(outputs_.size()) + " output(s), got " +
           std::to_string(ys->size()) + " target tensor(s)";
  });
  for (size_t o = 0; o < ys->size(); ++o) {
    const Tensor& y = (*ys)[o];
    const Shape& out = shapes_[size_t(outputs_[o])];
    require_lazy(y.device() == DeviceType::Cpu || device_ == DeviceType::Cuda, ErrorKind::Device, [&] {
      return std::string(op) + ": target " + std::to_string(o) + " is a cuda tensor but the model is on the cpu; " +
             "compile it with { device: 'cuda' }, or pass y.to('cpu')";
    });
    size_t out_size = shape_numel(out);
    size_t want_row = loss_ == LossKind::SparseCategoricalCrossentropy ? out_size / size_t(out.back())
                                                                       : out_size;
    require_lazy(y.rank() >= 1 && y.dim(0) == xs[0].dim(0), ErrorKind::Shape, [&] {
      return std::string(op) + ": x has " + std::to_string(xs[0].dim(0)) + " examples but y has " +
             (y.rank() ? std::to_string(y.dim(0)) : std::string("none")) + " (x " + shape_str(xs[0].shape) +
             ", y " + shape_str(y.shape) + ")";
    });
    require_lazy(y.numel() / size_t(y.dim(0)) == want_row, ErrorKind::Shape, [&] {
      return std::string(op) + ": targets " + shape_str(y.shape) + " do not match the model output " +
             batch_shape_str(out) + (want_row == 1 ? " (sparse labels: one class id per example)" : "");
    });
  }
}

void Net::gather(float* dst, const Tensor& src, const std::vector<int32_t>& idx, size_t row) const {
  const float* s = src.data();
  for (size_t j = 0; j < idx.size(); ++j) {
    std::memcpy(dst + j * row, s + size_t(idx[j]) * row, row * sizeof(float));
  }
}

void Net::set_gradient_reducer(GradientReducer reducer) {
  require(!reducer || device_ == DeviceType::Cpu, ErrorKind::Device,
          "fit: distributed training runs models on the cpu for now (compile with { device: 'cpu' })");
  enqueue("setGradientReducer", {}, {}, [this, reducer = std::move(reducer)] {
    reduce_gradients_ = reducer;
    loss_batch_ = 0;
  });
}

void Net::check_weights(const char* op, const std::vector<Tensor>& xs, const std::vector<Tensor>& weights) const {
  require(weights.size() <= 1, ErrorKind::Value, std::string(op) + ": at most one sample-weight tensor");
  if (weights.empty()) return;
  const Tensor& w = weights[0];
  require_lazy(w.rank() == 1 && w.dim(0) == xs[0].dim(0), ErrorKind::Shape, [&] {
    return std::string(op) + ": sample weights must be [" + std::to_string(xs[0].dim(0)) + "] (one per example), got " +
           shape_str(w.shape);
  });
  require(w.device() == DeviceType::Cpu || device_ == DeviceType::Cuda, ErrorKind::Device,
          std::string(op) + ": the sample weights are a cuda tensor but the model is on the cpu");
}

void Net::train_step(std::vector<Tensor> xs, std::vector<Tensor> ys, std::vector<int32_t> idx,
                     uint64_t seed, std::shared_ptr<Accumulators> out, int global_batch,
                     std::vector<Tensor> weights, int first_row) {
  require(compiled_, ErrorKind::Value, "fit: compile the model before training it");
  require(!idx.empty() || global_batch > 0, ErrorKind::Value, "fit: a batch needs between 1 and 2^24 rows");
  require(global_batch <= 0 || idx.size() <= size_t(global_batch), ErrorKind::Value,
          "fit: a process's share of a batch (" + std::to_string(idx.size()) +
              " rows) exceeds the global batch of " + std::to_string(global_batch));
  check_batch("fit", xs, &ys, idx);
  check_weights("fit", xs, weights);
  require(global_batch <= 0 || device_ == DeviceType::Cpu, ErrorKind::Device,
          "fit: distributed training runs models on the cpu for now");
  require(first_row >= 0 && (global_batch > 0 ? size_t(first_row) + idx.size() <= size_t(global_batch) : first_row == 0),
          ErrorKind::Value, "fit: a process's share of a batch starts at row " + std::to_string(first_row) +
                                ", outside its global batch of " + std::to_string(global_batch));
  StepRequest r;
  r.xs = std::move(xs), r.ys = std::move(ys), r.weights = std::move(weights), r.idx = std::move(idx);
  r.training = true, r.seed = seed, r.global_batch = global_batch, r.first_row = first_row;
  enqueue_step("trainStep", std::move(r), std::move(out));
}

void Net::eval_step(std::vector<Tensor> xs, std::vector<Tensor> ys, std::vector<int32_t> idx,
                    std::shared_ptr<Accumulators> out, std::vector<Tensor> weights) {
  require(compiled_, ErrorKind::Value, "evaluate: compile the model before evaluating it");
  require(!idx.empty(), ErrorKind::Value, "evaluate: a batch needs between 1 and 2^24 rows");
  check_batch("evaluate", xs, &ys, idx);
  check_weights("evaluate", xs, weights);
  StepRequest r;
  r.xs = std::move(xs), r.ys = std::move(ys), r.weights = std::move(weights), r.idx = std::move(idx);
  r.folded = can_fold({});
  enqueue_step("evalStep", std::move(r), std::move(out));
}

void Net::enqueue_step(const char* op, StepRequest r, std::shared_ptr<Accumulators> out) {
  if (device_ == DeviceType::Cuda) return cuda_enqueue_step(op, std::move(r), std::move(out));
  std::vector<const Tensor*> reads = tensor_pointers(r.xs, r.ys);
  for (const Tensor& w : r.weights) reads.push_back(&w);
  enqueue(op, reads, {}, [this, r = std::move(r), out] {
    run_step(out.get(), [&]() -> const Accumulators& {
      CpuDevice dev(*this);
      step(dev, r);
      return r.training ? train_acc_ : eval_acc_;
    });
  });
}

// ---- the step, written once over the device ----

template <class Device>
void Net::step(Device& dev, const StepRequest& r) {
  require(!r.training || r.global_batch <= 0 || reduce_gradients_, ErrorKind::Value,
          "fit: a data-parallel step needs a gradient reducer (fit's distributed option)");
  const int batch = int(r.idx.size());
  weighted_ = !r.weights.empty();
  // The iteration this step updates as (Adam's and Nadam's bias correction).
  const int64_t iteration = r.training ? iterations_ + 1 : iterations_;
  Failure failed;  // this process's part of a data-parallel step: the others must hear of it
  try {
    if (r.global_batch > 0) begin_gradient_buckets();  // the step's sync point opens
    if (batch > 0) {
      plan_for(batch, r.training);
      dev.gather(r, iteration);
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
      if (batch > 0) {
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
  if (r.training) update(dev.kernels(), iterations_ + 1);
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
      } else {
        // Keras's precision, recall and AUC flatten every output value (multi_label off).
        dev.threshold_counts(slot, out, target, rows * cols, dev.thresholds(m, thresholds_at), m.thresholds.size());
        thresholds_at += m.thresholds.size();
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
  const GradientClip& c = opt_.clip;
  if (!training || !c.any()) return;
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

template <class Ops>
void Net::update(const Ops& k, int64_t step) {
  float* w = weights_->data();
  const float* g = grads_->data();
  auto state = [&](size_t i) { return opt_state_.size() > i ? opt_state_[i]->data() : nullptr; };
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
