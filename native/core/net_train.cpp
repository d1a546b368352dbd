// The network executor's training: compile and the settings it steps with (trainable layers,
// learning rate, metrics), the checks of a batch and one task per training or evaluation batch.
// The step itself is net_step.cpp; inference net_infer.cpp; weights and optimizer state
// net_state.cpp; the GPU's side net_cuda.cpp.
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
    // A layer sharing another's weights: updated once, as its owner's.
    if (!layers_[i].trainable || layers_[i].shares_params_with >= 0) continue;
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
  require(opt.accumulation_steps == 0 || opt.accumulation_steps >= 2, ErrorKind::Value,
          "compile: gradientAccumulationSteps must be an integer >= 2, got " + std::to_string(opt.accumulation_steps));
  for (const MetricSpec& m : metrics) {
    require(m.kind != MetricKind::TopK || m.k >= 1, ErrorKind::Value,
            "compile: top-k accuracy needs k >= 1, got " + std::to_string(m.k));
    require(m.top_k >= 0, ErrorKind::Value, "compile: a metric's topK must be >= 1, got " + std::to_string(m.top_k));
    require(m.kind != MetricKind::Confusion || (!m.thresholds.empty() &&
                                                std::is_sorted(m.thresholds.begin(), m.thresholds.end())),
            ErrorKind::Value, "compile: a metric's thresholds must be a non-empty ascending list");
    for (int v : outputs_) {
      const int64_t classes = shapes_[size_t(v)].back();
      require(m.class_id < classes, ErrorKind::Value,
              "compile: a metric's classId must be below the output's " + std::to_string(classes) + " classes, got " +
                  std::to_string(m.class_id));
      require(m.top_k <= classes, ErrorKind::Value,
              "compile: a metric's topK must be at most the output's " + std::to_string(classes) + " classes, got " +
                  std::to_string(m.top_k));
      // One binary column is a two-class matrix (prediction and label thresholded at 0.5).
      const int64_t matrix = classes == 1 ? 2 : classes;
      require(m.kind != MetricKind::ConfusionMatrix || m.num_classes == matrix, ErrorKind::Value,
              "compile: confusionMatrix's numClasses must be the output's " + std::to_string(matrix) +
                  " classes, got " + std::to_string(m.num_classes));
    }
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
  update_buffers_ = buffers;
  if (opt.accumulation_steps >= 2) ++buffers;  // the accumulated gradients, last (saved with the state)
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
  for (size_t b = 0; b < buffers; ++b) opt_state_.push_back(filled(b == 0 && b < update_buffers_ ? first : 0.f));
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
                     std::vector<Tensor> weights, int first_row, int slices) {
  require(compiled_, ErrorKind::Value, "fit: compile the model before training it");
  require(!idx.empty() || global_batch > 0, ErrorKind::Value, "fit: a batch needs between 1 and 2^24 rows");
  require(global_batch <= 0 || idx.size() <= size_t(global_batch), ErrorKind::Value,
          "fit: a process's share of a batch (" + std::to_string(idx.size()) +
              " rows) exceeds the global batch of " + std::to_string(global_batch));
  check_batch("fit", xs, &ys, idx);
  check_weights("fit", xs, weights);
  require(first_row >= 0 && (global_batch > 0 ? size_t(first_row) + idx.size() <= size_t(global_batch) : first_row == 0),
          ErrorKind::Value, "fit: a process's share of a batch starts at row " + std::to_string(first_row) +
                                ", outside its global batch of " + std::to_string(global_batch));
  require(slices >= 1 && (slices == 1 || (global_batch <= 0 && device_ == DeviceType::Cpu)), ErrorKind::Value,
          "fit: gradientSlices trains one process on the cpu as that many processes of a data-parallel fit; got " +
              std::to_string(slices) + " slices" + (global_batch > 0 ? " in a data-parallel step" : "") +
              (device_ != DeviceType::Cpu ? " on a cuda model" : ""));
  StepRequest r;
  r.xs = std::move(xs), r.ys = std::move(ys), r.weights = std::move(weights), r.idx = std::move(idx);
  r.training = true, r.seed = seed, r.global_batch = global_batch, r.first_row = first_row, r.slices = slices;
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

}  // namespace ck
