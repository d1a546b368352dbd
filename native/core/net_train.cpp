// The network executor's training: compile and the settings it steps with (trainable layers,
// learning rate, metrics), the checks and gathering of a batch, one task per training or
// evaluation batch (gather, forward, loss, backward, fused optimizer update), the losses and
// metrics, and the optimizer update. Inference is net_infer.cpp; weights and optimizer state
// net_state.cpp; the GPU's steps net_cuda.cpp.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <type_traits>

#include "errors.h"
#include "net.h"
#include "net_ops.h"
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


// Copies the batch rows of every input and target into the plan's buffers.
void Net::gather_batch(const std::vector<Tensor>& xs, const std::vector<Tensor>& ys,
                       const std::vector<int32_t>& idx, std::vector<const float*>& targets) {
  for (size_t i = 0; i < xs.size(); ++i) gather(plan_->act[i], xs[i], idx, example_size(inputs_[i]));
  targets.clear();
  for (size_t o = 0; o < ys.size(); ++o) {
    gather(plan_->targets[o], ys[o], idx, ys[o].numel() / size_t(ys[o].dim(0)));
    targets.push_back(plan_->targets[o]);
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
  std::vector<const Tensor*> reads = tensor_pointers(xs, ys);
  for (const Tensor& w : weights) reads.push_back(&w);
  if (device_ == DeviceType::Cuda) {
    require(global_batch <= 0, ErrorKind::Device, "fit: distributed training runs models on the cpu for now");
    cuda_enqueue_step("trainStep", std::move(xs), std::move(ys), std::move(idx), true, seed, std::move(out),
                      std::move(weights));
    return;
  }
  require(first_row >= 0 && (global_batch > 0 ? size_t(first_row) + idx.size() <= size_t(global_batch) : first_row == 0),
          ErrorKind::Value, "fit: a process's share of a batch starts at row " + std::to_string(first_row) +
                                ", outside its global batch of " + std::to_string(global_batch));
  enqueue("trainStep", reads, {}, [this, xs, ys, idx = std::move(idx), seed, out, global_batch, weights, first_row] {
    run_step(out.get(), [&]() -> const Accumulators& {
      require(global_batch <= 0 || reduce_gradients_, ErrorKind::Value,
              "fit: a data-parallel step needs a gradient reducer (fit's distributed option)");
      int batch = int(idx.size());
      Failure failed;  // this process's part of a data-parallel step: the others must hear of it
      try {
        if (global_batch > 0) begin_gradient_buckets();  // the step's sync point opens
        if (batch > 0) {
          plan_for(batch, true);
          std::vector<const float*> targets;
          gather_batch(xs, ys, idx, targets);
          weighted_ = !weights.empty();
          if (weighted_) gather(plan_->row_weights, weights[0], idx, 1);
          step_first_row_ = uint64_t(first_row);
          forward(*plan_, batch, true, seed, -1);
          step_first_row_ = 0;
          loss_batch_ = global_batch;  // 0 but in data-parallel steps; clearing the reducer clears it
          loss_and_metrics(batch, targets, true, train_acc_);
          backward(batch);
        } else {
          std::fill(grads_->data(), grads_->data() + grads_->size(), 0.f);  // this process adds nothing
        }
      } catch (...) {
        if (global_batch <= 0) throw;
        failed = current_failure();
      }
      if (global_batch > 0) finish_gradient_buckets(failed);
      // After the reduction: every process adds the same penalty gradient once.
      if (!penalties_.empty()) {
        const double penalty = add_penalties(true);
        if (batch > 0) train_acc_.loss_sum += penalty * double(loss_rows(batch));
      }
      ++iterations_;
      update(cpu_kernels());
      ++weights_version_;  // the update and the batch norms' running statistics
      return train_acc_;
    });
  });
}

void Net::eval_step(std::vector<Tensor> xs, std::vector<Tensor> ys, std::vector<int32_t> idx,
                    std::shared_ptr<Accumulators> out, std::vector<Tensor> weights) {
  require(compiled_, ErrorKind::Value, "evaluate: compile the model before evaluating it");
  require(!idx.empty(), ErrorKind::Value, "evaluate: a batch needs between 1 and 2^24 rows");
  check_batch("evaluate", xs, &ys, idx);
  check_weights("evaluate", xs, weights);
  if (device_ == DeviceType::Cuda) {
    cuda_enqueue_step("evalStep", std::move(xs), std::move(ys), std::move(idx), false, 0, std::move(out),
                      std::move(weights));
    return;
  }
  std::vector<const Tensor*> reads = tensor_pointers(xs, ys);
  for (const Tensor& w : weights) reads.push_back(&w);
  const bool folded = can_fold({});
  enqueue("evalStep", reads, {}, [this, xs, ys, idx = std::move(idx), out, folded, weights] {
    run_step(out.get(), [&]() -> const Accumulators& {
      int batch = int(idx.size());
      plan_for(batch, false);
      std::vector<const float*> targets;
      gather_batch(xs, ys, idx, targets);
      weighted_ = !weights.empty();
      if (weighted_) gather(plan_->row_weights, weights[0], idx, 1);
      if (folded) refresh_folded_weights();
      forward(*plan_, batch, false, 0, -1, folded);
      loss_and_metrics(batch, targets, false, eval_acc_);
      if (!penalties_.empty()) eval_acc_.loss_sum += add_penalties(false) * double(loss_rows(batch));
      return eval_acc_;
    });
  });
}

template <class Ops>
Net::OutputRows Net::output_loss(const Ops& k, size_t o, int batch, const float* target, bool with_grad) {
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
      } else if constexpr (std::is_same<Ops, CpuKernels>::value) {
        probability_xent(loss, grad, out, target, rows, cols, sparse, spec.label_smoothing, scale);
      } else {
        require(false, ErrorKind::Device,
                "fit: cross-entropy on CUDA needs the output to be a softmax layer (its logits feed the loss) "
                "or fromLogits: true");
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

template Net::OutputRows Net::output_loss(const CpuKernels&, size_t, int, const float*, bool);
template Net::OutputRows Net::output_loss(const CudaOps&, size_t, int, const float*, bool);

// Each output's loss (and, when training, its gradient into a fresh gradient buffer) and
// metrics; the loss of the model is their sum, as in Keras.
void Net::loss_and_metrics(int batch, const std::vector<const float*>& targets, bool with_grad,
                           Accumulators& acc) {
  const CpuKernels& k = cpu_kernels();
  bool sparse = loss_ == LossKind::SparseCategoricalCrossentropy;
  LabelMode mode = sparse ? LabelMode::Sparse : LabelMode::Dense;
  acc.output_loss.resize(outputs_.size(), 0.0);
  acc.output_correct.resize(outputs_.size(), 0.0);
  acc.metric_sums.resize(outputs_.size() * metric_slots_, 0.0);
  for (size_t o = 0; o < outputs_.size(); ++o) {
    const float* out = plan_->act[size_t(outputs_[o])];
    const float* t = targets[o];
    const float* loss = plan_->row_loss[o];
    const auto [rows, cols] = output_loss(k, o, batch, t, with_grad);
    double sum = 0;
    for (size_t r = 0; r < rows; ++r) sum += loss[r];
    acc.loss_sum += sum;
    acc.output_loss[o] += sum;
    if (o == 0) acc.count += double(rows);
    double* slot = acc.metric_sums.data() + o * metric_slots_;
    for (const MetricSpec& m : metrics_) {
      if (m.kind == MetricKind::TopK) {
        *slot += double(k.top_k_count(out, t, rows, cols, mode, m.k));
      } else {
        // Keras's precision, recall and AUC flatten every output value (multi_label off).
        k.threshold_counts(slot, out, t, rows * cols, m.thresholds.data(), m.thresholds.size());
      }
      slot += m.slots();
    }
    if (!accuracy_) continue;
    double correct;
    if (loss_ == LossKind::BinaryCrossentropy) {
      // Keras's binary accuracy: each output thresholded at 0.5, averaged over the row.
      correct = double(k.accuracy_count(out, t, rows * cols, 1, mode, 0.5f)) / double(cols);
    } else {
      correct = double(k.accuracy_count(out, t, rows, cols, mode, 0.5f));
    }
    acc.output_correct[o] += correct;
    if (o == 0) acc.correct += correct;
  }
}

// The rows a step's loss is averaged over (those of the first output): the logged loss is
// loss_sum / count, so a penalty counted once per row adds exactly itself to it, as Keras logs it.
size_t Net::loss_rows(int batch) const {
  const Shape& first = shapes_[size_t(outputs_[0])];
  return size_t(batch) * shape_numel(first) / size_t(first.back());
}

// The regularized weights' summed penalty (in double, in a fixed order), and with_grad its
// gradient added to the step's gradients. A frozen layer's weights count for nothing, as in Keras
// (which sums the penalties of trainable weights only).
double Net::add_penalties(bool with_grad) {
  const float* w = weights_->data();
  float* g = grads_->data();
  double total = 0;
  for (const WeightPenalty& p : penalties_) {
    const ParamInfo& info = params_[size_t(p.param)];
    if (!layers_[size_t(info.layer)].trainable) continue;
    const float l1 = float(p.l1), twice_l2 = float(2 * p.l2);
    double abs_sum = 0, square_sum = 0;
    for (size_t i = info.offset; i < info.offset + info.size; ++i) {
      abs_sum += std::fabs(double(w[i]));
      square_sum += double(w[i]) * double(w[i]);
      if (with_grad) g[i] += l1 * float((w[i] > 0.f) - (w[i] < 0.f)) + twice_l2 * w[i];
    }
    total += p.l1 * abs_sum + p.l2 * square_sum;
  }
  return total;
}

// Cross-entropy from probabilities (an output layer other than softmax), clipped as Keras does,
// with Keras's label smoothing of the targets.
void Net::probability_xent(float* loss, float* grad, const float* p, const float* t, size_t rows,
                           size_t cols, bool sparse, float smoothing, float scale) {
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

// Keras's clipping of the step's gradients (see GradientClip), on the host's gradient buffer.
// Norms are summed in double, in a fixed order.
void Net::clip_gradients() {
  const GradientClip& c = opt_.clip;
  float* g = grads_->data();
  auto sum_squares = [&](size_t off, size_t n) {
    double s = 0;
    for (size_t i = off; i < off + n; ++i) s += double(g[i]) * double(g[i]);
    return s;
  };
  // g * clip / max(norm, clip): unchanged while the norm is within the clip.
  auto scale_to = [&](size_t off, size_t n, double norm, double clip) {
    if (norm <= clip) return;
    const float f = float(clip / norm);
    for (size_t i = off; i < off + n; ++i) g[i] *= f;
  };
  if (c.value > 0) {
    const float v = float(c.value);
    for (const auto& [off, n] : update_ranges_) {
      for (size_t i = off; i < off + n; ++i) g[i] = std::min(std::max(g[i], -v), v);
    }
  } else if (c.norm > 0) {
    for (const auto& [off, n] : update_params_) scale_to(off, n, std::sqrt(sum_squares(off, n)), c.norm);
  } else if (c.global_norm > 0) {
    double total = 0;
    for (const auto& [off, n] : update_ranges_) total += sum_squares(off, n);
    const double norm = std::sqrt(total);
    for (const auto& [off, n] : update_ranges_) scale_to(off, n, norm, c.global_norm);
  }
}

template <class Ops>
void Net::update(const Ops& k) {
  if constexpr (std::is_same<Ops, CpuKernels>::value) {
    if (opt_.clip.any()) clip_gradients();
  }
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
        p.step = iterations_;
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
        p.step = iterations_;
        k.nadam_update(w + off, state(0) + off, state(1) + off, g + off, n, p);
        break;
      }
    }
  }
}

template void Net::update(const CpuKernels&);
template void Net::update(const CudaOps&);

}  // namespace ck
