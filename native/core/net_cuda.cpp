// The network executor on a CUDA GPU: moving a net's weights there, and its steps. Each step is
// one task of the net's stream (stream_) that gathers the batch into page-locked staging,
// enqueues its upload on the net's copy stream and the forward and backward passes, the loss and
// the optimizer update on the net's own CUDA stream, then returns, so the next step is enqueued
// while the GPU runs this one.
// The upload overlaps the step before: on the copy stream it waits only until the CUDA stream has
// copied the previous batch out of the net's device landing buffer (event `consumed`), then
// copies staging into that buffer and records `landed`; the CUDA stream waits for `landed`,
// copies the batch into the plan's input and target buffers and the step's scalars (device to
// device) and records `consumed`. So step n+1's host-to-device copy runs beside step n's kernels.
// The device work of a step (everything between those copies and the sums' download) is
// captured once per batch size as a CUDA graph and replayed: its per-step values (the dropout
// seed, Adam's bias-corrected step size) are read by the kernels from a device buffer the step
// copies in with its batch.
// The loss and accuracy sums stay on the device (cuda_sums_); a task of results_ waits for the
// step's event and publishes them, and the step's JS promise settles from there: nothing blocks
// the JS thread.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "errors.h"
#include "net.h"
#include "net_ops.h"
#include "net_plan.h"
#include "op_launch.h"
#include "precision.h"

namespace ck {

namespace {
std::atomic<bool>& cuda_graphs_enabled() {
  static std::atomic<bool> enabled{[] {
    const char* env = std::getenv("CONVKIT_CUDA_GRAPHS");
    return !(env && std::string(env) == "0");
  }()};
  return enabled;
}
}  // namespace

void set_cuda_graphs(bool enabled) { cuda_graphs_enabled() = enabled; }

StoragePtr net_storage(size_t floats, DeviceType device) {
  auto s = std::make_shared<Storage>(floats, device);
  if (device == DeviceType::Cuda) {
    DeviceBackend& b = cuda_backend();
    b.synchronize(b.stream());
  }
  return s;
}

Net::Plan::~Plan() {
  // Kernels already enqueued may still use the buffers; a failed device has nothing to wait for.
  if (device == DeviceType::Cuda && cuda_stream) {
    try {
      cuda_backend().synchronize(cuda_stream);
    } catch (const std::exception&) {
    }
  }
}

namespace {

// Page-locked host memory from the backend's cache, returned when the holder goes.
struct Pinned {
  DeviceBackend& b;
  size_t bytes;
  void* p;
  Pinned(DeviceBackend& backend, size_t n) : b(backend), bytes(n), p(backend.alloc_pinned(n)) {}
  ~Pinned() { b.release_pinned(p, bytes); }
  Pinned(const Pinned&) = delete;
  Pinned& operator=(const Pinned&) = delete;
  float* floats() const { return static_cast<float*>(p); }
};

// An event recorded on a stream, destroyed with the holder (CUDA releases it once reached).
struct RecordedEvent {
  DeviceBackend& b;
  void* e;
  RecordedEvent(DeviceBackend& backend, void* stream)
      : b(backend), e(backend.record_event(stream)) {}
  ~RecordedEvent() { b.event_destroy(e); }
  RecordedEvent(const RecordedEvent&) = delete;
  RecordedEvent& operator=(const RecordedEvent&) = delete;
};

// CUDA tensors given to a net were made by ops on the process's CUDA stream (all enqueued before
// the net's task runs): the net's stream waits for that work before it reads them.
void wait_for_process_stream(DeviceBackend& b, void* net_stream) {
  RecordedEvent made(b, b.stream());
  b.stream_wait_event(net_stream, made.e);
}

// Blocking copies through staging, for weights and results (not on the per-step path).
void copy_to_device(DeviceBackend& b, void* stream, float* dev, const float* host, size_t n) {
  if (n == 0) return;
  Pinned stage(b, n * sizeof(float));
  std::memcpy(stage.p, host, n * sizeof(float));
  b.copy_h2d(dev, stage.p, n * sizeof(float), stream);
  b.synchronize(stream);
}

void copy_to_host(DeviceBackend& b, void* stream, float* host, const float* dev, size_t n) {
  if (n == 0) return;
  Pinned stage(b, n * sizeof(float));
  b.copy_d2h(stage.p, dev, n * sizeof(float), stream);
  b.synchronize(stream);
  std::memcpy(host, stage.p, n * sizeof(float));
}

// A step's scalars, uploaded with its batch into cuda_scalars_ and read there by the kernels.
struct StepScalars {
  uint64_t seed = 0;       // dropout: each layer's mask seed is dropout_layer_seed(seed, layer)
  float adam_alpha = 0.f;  // Adam's step size for this step (adam_alpha)
  float nadam[3] = {};     // Nadam's m_coef, g_coef, v_scale for this step (NadamScalars)
};

}  // namespace

size_t Net::cuda_sums_per_phase() const { return 2 + 2 * outputs_.size() + outputs_.size() * metric_slots_; }

void Net::cuda_alloc_sums() {
  DeviceBackend& b = cuda_backend();
  cuda_sums_ = net_storage(2 * 2 * cuda_sums_per_phase(), DeviceType::Cuda);  // 2 floats a double
  b.zero(cuda_sums_->data(), cuda_sums_->size() * sizeof(float), cuda_stream_);
  std::vector<float> thresholds;
  for (const MetricSpec& m : metrics_) thresholds.insert(thresholds.end(), m.thresholds.begin(), m.thresholds.end());
  cuda_thresholds_ = net_storage(std::max<size_t>(thresholds.size(), 1), DeviceType::Cuda);
  if (!thresholds.empty()) upload_values(cuda_thresholds_->data(), thresholds.data(), thresholds.size());
  train_acc_ = eval_acc_ = Accumulators{};
}

void Net::download_values(float* host, const float* device, size_t n) {
  if (device_ == DeviceType::Cuda) copy_to_host(cuda_backend(), cuda_stream_, host, device, n);
  else std::memcpy(host, device, n * sizeof(float));
}

void Net::upload_values(float* device, const float* host, size_t n) {
  if (device_ == DeviceType::Cuda) copy_to_device(cuda_backend(), cuda_stream_, device, host, n);
  else std::memcpy(device, host, n * sizeof(float));
}

// A copy of the first n floats of `from` (on device_) in new storage on `device`.
StoragePtr Net::storage_on(DeviceType device, const StoragePtr& from, size_t n) {
  auto to = net_storage(std::max<size_t>(from->size(), 1), device);
  if (device == DeviceType::Cuda) copy_to_device(cuda_backend(), cuda_stream_, to->data(), from->data(), n);
  else copy_to_host(cuda_backend(), cuda_stream_, to->data(), from->data(), n);
  return to;
}

Net::CudaCopyStream::CudaCopyStream() : stream(cuda_backend().create_stream()) {}

Net::CudaCopyStream::~CudaCopyStream() {
  DeviceBackend& b = cuda_backend();
  if (consumed) {
    // The net's stream may still copy out of `landing`; a failed device has nothing to wait for.
    try {
      b.event_synchronize(consumed);
    } catch (const std::exception&) {
    }
    b.event_destroy(consumed);
  }
  b.destroy_stream(stream);  // waits for the last upload and its staging's release
}

void Net::wait_idle() {
  stream_->synchronize();
  if (results_) results_->synchronize();
  if (cuda_stream_) cuda_backend().synchronize(cuda_stream_);
  if (cuda_copy_) cuda_backend().synchronize(cuda_copy_->stream);
}

void Net::set_device(DeviceType device) {
  wait_idle();
  if (device == device_) return;
  DeviceBackend& b = cuda_backend();
  drop_cuda_graphs(true);
  if (device == DeviceType::Cuda) {
    require(b.available(), ErrorKind::Device, "device 'cuda': CUDA is not available: " + b.unavailable_reason());
    if (!cuda_stream_) cuda_stream_ = b.create_stream();
    if (!cuda_copy_) cuda_copy_ = std::make_unique<CudaCopyStream>();
  }
  plan_.reset();  // buffers of the old device (a CUDA plan waits for its work first)
  thread_plans_.clear();
  weights_ = storage_on(device, weights_, n_weights_);
  if (grads_) grads_ = storage_on(device, grads_, n_weights_);
  state_ = storage_on(device, state_, n_state_);
  for (StoragePtr& s : opt_state_) s = storage_on(device, s, n_weights_);
  device_ = device;
  ++weights_version_;  // trained elsewhere: the folded weights are stale
  if (device == DeviceType::Cuda) {
    cuda_alloc_sums();
    cuda_correct_ = net_storage(2, DeviceType::Cuda);
    cuda_scalars_ = net_storage(sizeof(StepScalars) / sizeof(float), DeviceType::Cuda);
    cuda_norms_ = net_storage(2 * (params_.size() + 1), DeviceType::Cuda);
    cuda_graphs_off_ = !cuda_graphs_enabled();
    results_ = std::make_shared<Stream>();
  } else {
    cuda_sums_.reset();
    cuda_thresholds_.reset();
    cuda_correct_.reset();
    cuda_scalars_.reset();
    cuda_norms_.reset();
    results_.reset();
    cuda_copy_.reset();
    b.destroy_stream(cuda_stream_);
    cuda_stream_ = nullptr;
  }
  plan_relu_folds();
}

uint64_t Net::barrier() {
  if (!results_) return last_task_;
  last_result_ = results_->enqueue([stream = stream_, seq = last_task_, s = cuda_stream_] {
    stream->wait(seq);
    cuda_backend().synchronize(s);
  });
  return last_result_;
}

// ---- steps ----

CudaOps Net::cuda_ops() const {
  auto* scalars = reinterpret_cast<StepScalars*>(cuda_scalars_->data());
  return CudaOps{cuda_backend().kernels(), cuda_stream_, &scalars->seed, &scalars->adam_alpha,
                 scalars->nadam};
}

void Net::drop_cuda_graphs(bool plan_changed) {
  if (plan_changed) cuda_warm_.clear();
  if (cuda_graphs_.empty()) return;
  DeviceBackend& b = cuda_backend();
  try {
    b.synchronize(cuda_stream_);  // launches of them may be queued
  } catch (const std::exception&) {
  }
  for (auto& [key, graph] : cuda_graphs_) b.destroy_graph(graph);
  cuda_graphs_.clear();
}

void Net::run_cuda_body(int batch, bool training, const std::function<void()>& body) {
  DeviceBackend& b = cuda_backend();
  const auto warm_key = std::make_pair(batch, training);
  // A graph holds the kernels of the precision it was captured in, and weighs its rows or not.
  const auto key = std::make_tuple(batch, training, 2 * int(math_precision()) + int(weighted_));
  if (cuda_graphs_off_) return body();
  auto found = cuda_graphs_.find(key);
  if (found != cuda_graphs_.end()) return b.launch_graph(found->second, cuda_stream_);
  // The first run with this plan grows the gradient pool (allocations cannot be captured).
  if (cuda_warm_.insert(warm_key).second) return body();
  b.begin_capture(cuda_stream_);
  void* graph = nullptr;
  try {
    body();
    graph = b.end_capture(cuda_stream_);
  } catch (const std::exception&) {
    // A capture that failed ran nothing: leave capture mode, forget the gradient routing the
    // body left half done, and run the step without graphs from now on.
    try {
      b.end_capture(cuda_stream_);
    } catch (const std::exception&) {
    }
    std::fill(plan_->grad.begin(), plan_->grad.end(), nullptr);
    cuda_graphs_off_ = true;
    return body();
  }
  cuda_graphs_[key] = graph;
  ++cuda_captures_;
  b.launch_graph(graph, cuda_stream_);
}

namespace {

// What a step's CPU task hands to its result task.
struct CudaStepResult {
  Failure error;
  void* event = nullptr;
  std::unique_ptr<Pinned> sums;  // the device sums as they stood after the step
  double count = 0;
};

}  // namespace

void Net::cuda_enqueue_step(const char* op, std::vector<Tensor> xs, std::vector<Tensor> ys,
                            std::vector<int32_t> idx, bool training, uint64_t seed,
                            std::shared_ptr<Accumulators> out, std::vector<Tensor> weights) {
  std::vector<const Tensor*> reads;
  for (const Tensor& t : xs) reads.push_back(&t);
  for (const Tensor& t : ys) reads.push_back(&t);
  for (const Tensor& t : weights) reads.push_back(&t);
  auto result = std::make_shared<CudaStepResult>();
  enqueue(op, reads, {}, [this, xs, ys, idx = std::move(idx), training, seed, result, weights] {
    DeviceBackend& b = cuda_backend();
    try {
      result->sums = std::make_unique<Pinned>(b, cuda_sums_per_phase() * sizeof(double));
      cuda_step(xs, ys, idx, training, seed, static_cast<double*>(result->sums->p), weights);
      result->count = (training ? train_acc_ : eval_acc_).count;
      result->event = b.record_event(cuda_stream_);
    } catch (...) {
      result->error = current_failure();
    }
  });
  const size_t outputs = outputs_.size(), per_phase = cuda_sums_per_phase();
  last_result_ = results_->enqueue([stream = stream_, seq = last_task_, result, out, outputs, per_phase] {
    DeviceBackend& b = cuda_backend();
    stream->wait(seq);
    if (result->event) {
      try {
        b.event_synchronize(result->event);
      } catch (...) {
        result->error = current_failure();
      }
      b.event_destroy(result->event);
    }
    if (result->error) {
      out->error = result->error;
      return;
    }
    const double* s = static_cast<const double*>(result->sums->p);
    out->loss_sum = s[0];
    out->correct = s[1];
    out->count = result->count;
    out->output_loss.assign(s + 2, s + 2 + outputs);
    out->output_correct.assign(s + 2 + outputs, s + 2 + 2 * outputs);
    out->metric_sums.assign(s + 2 + 2 * outputs, s + per_phase);
  });
}

void Net::cuda_step(const std::vector<Tensor>& xs, const std::vector<Tensor>& ys,
                    const std::vector<int32_t>& idx, bool training, uint64_t seed,
                    double* sums_out, const std::vector<Tensor>& weights) {
  DeviceBackend& b = cuda_backend();
  const int batch = int(idx.size());
  plan_for(batch, training);
  weighted_ = !weights.empty();
  if (training) ++iterations_;
  // Host inputs and targets, then the step's scalars, then (with CUDA inputs) the batch's row
  // indices: gathered into one staging block, uploaded on the copy stream into `landing` (the
  // same layout), then copied into place on the net's stream. CUDA inputs and targets are
  // gathered there from their own memory by those indices.
  struct Part {
    float* dev;
    const Tensor* src;
    size_t row;  // floats per example
  };
  std::vector<Part> host_parts, device_parts;
  auto add_part = [&](float* dev, const Tensor& src, size_t row) {
    (src.device() == DeviceType::Cuda ? device_parts : host_parts).push_back({dev, &src, row});
  };
  for (size_t i = 0; i < xs.size(); ++i) add_part(plan_->act[i], xs[i], example_size(inputs_[i]));
  for (size_t o = 0; o < ys.size(); ++o) add_part(plan_->targets[o], ys[o], ys[o].numel() / size_t(ys[o].dim(0)));
  if (weighted_) add_part(plan_->row_weights, weights[0], 1);
  static_assert(sizeof(int32_t) == sizeof(float), "row indices share the staging's float slots");
  size_t total = sizeof(StepScalars) / sizeof(float) + (device_parts.empty() ? 0 : idx.size());
  for (const Part& part : host_parts) total += idx.size() * part.row;
  auto stage = std::make_shared<Pinned>(b, total * sizeof(float));
  float* cursor = stage->floats();
  for (const Part& part : host_parts) {
    gather(cursor, *part.src, idx, part.row);
    cursor += idx.size() * part.row;
  }
  StepScalars scalars;
  scalars.seed = seed;
  AdamParams adam = opt_.adam;
  adam.step = std::max<int64_t>(iterations_, 1);
  scalars.adam_alpha = adam_alpha(adam);
  NadamParams nadam = opt_.nadam;
  nadam.step = adam.step;
  const NadamScalars ns = nadam_scalars(nadam);
  scalars.nadam[0] = ns.m_coef, scalars.nadam[1] = ns.g_coef, scalars.nadam[2] = ns.v_scale;
  std::memcpy(cursor, &scalars, sizeof scalars);
  if (!device_parts.empty()) {
    std::memcpy(cursor + sizeof scalars / sizeof(float), idx.data(), idx.size() * sizeof(int32_t));
  }

  CudaCopyStream& copy = *cuda_copy_;
  if (!copy.landing || copy.landing->size() < total) {
    // The old buffer goes back to the allocator only once the last batch is out of it (its
    // upload had finished before that copy-out began).
    if (copy.consumed) b.event_synchronize(copy.consumed);
    copy.landing = net_storage(total, DeviceType::Cuda);
  }
  float* landing = copy.landing->data();
  if (copy.consumed) b.stream_wait_event(copy.stream, copy.consumed);
  b.copy_h2d(landing, stage->p, total * sizeof(float), copy.stream);
  {
    RecordedEvent landed(b, copy.stream);
    b.stream_wait_event(cuda_stream_, landed.e);
  }
  // The staging's last reference, dropped once the copy ran (after `landed`: the net's stream
  // need not wait for the callback).
  b.host_callback(copy.stream, [stage] {});
  const float* from = landing;
  for (const Part& part : host_parts) {
    b.copy_d2d(part.dev, from, idx.size() * part.row * sizeof(float), cuda_stream_);
    from += idx.size() * part.row;
  }
  b.copy_d2d(cuda_scalars_->data(), from, sizeof scalars, cuda_stream_);
  if (!device_parts.empty()) {
    const auto* rows = reinterpret_cast<const int32_t*>(from + sizeof scalars / sizeof(float));
    std::vector<StoragePtr> held;
    wait_for_process_stream(b, cuda_stream_);
    for (const Part& part : device_parts) {
      b.kernels().gather_rows(part.dev, part.src->data(), rows, idx.size(), part.row,
                              size_t(part.src->dim(0)), cuda_stream_);
      held.push_back(part.src->storage);
    }
    b.host_callback(cuda_stream_, [held] {});  // the inputs' memory, held until the gathers ran
  }
  void* consumed = b.record_event(cuda_stream_);
  if (copy.consumed) b.event_destroy(copy.consumed);
  copy.consumed = consumed;

  const size_t per_phase = cuda_sums_per_phase();
  double* sums = reinterpret_cast<double*>(cuda_sums_->data()) + (training ? 0 : per_phase);
  run_cuda_body(batch, training, [&] {
    forward(*plan_, batch, training, seed, -1);
    cuda_loss_and_metrics(batch, training, sums);
    if (training) backward(batch);
    cuda_penalties_and_clipping(batch, training, sums);
    if (training) update(cuda_ops());
  });
  const Shape& first = shapes_[size_t(outputs_[0])];
  (training ? train_acc_ : eval_acc_).count += double(size_t(batch) * shape_numel(first) / size_t(first.back()));
  b.copy_d2h(sums_out, sums, per_phase * sizeof(double), cuda_stream_);
}

// Each output's loss (and gradient) and metrics, summed on the device into `sums` (the example
// counts are kept on the host by the caller). Only enqueues: it may be captured into a graph.
void Net::cuda_loss_and_metrics(int batch, bool with_grad, double* sums) {
  const CudaOps k = cuda_ops();
  const CudaKernels& t = k.t;
  const bool sparse = loss_ == LossKind::SparseCategoricalCrossentropy;
  const LabelMode mode = sparse ? LabelMode::Sparse : LabelMode::Dense;
  const size_t outputs = outputs_.size();
  auto* correct = reinterpret_cast<uint64_t*>(cuda_correct_->data());
  for (size_t o = 0; o < outputs; ++o) {
    const float* out = plan_->act[size_t(outputs_[o])];
    const float* target = plan_->targets[o];
    const float* loss = plan_->row_loss[o];
    const auto [rows, cols] = output_loss(k, o, batch, target, with_grad);
    t.sum_into(sums + 2 + o, loss, rows, cuda_stream_);
    if (o == 0) t.sum_into(sums, loss, rows, cuda_stream_);
    double* slot = sums + 2 + 2 * outputs + o * metric_slots_;
    const float* thresholds = cuda_thresholds_->data();
    for (const MetricSpec& m : metrics_) {
      if (m.kind == MetricKind::TopK) {
        t.top_k_count(correct, out, target, rows, cols, mode, m.k, cuda_stream_);
        t.count_into(slot, correct, 1.0, cuda_stream_);
      } else {
        t.threshold_counts(slot, out, target, rows * cols, thresholds, m.thresholds.size(), cuda_stream_);
        thresholds += m.thresholds.size();
      }
      slot += m.slots();
    }
    if (!accuracy_) continue;
    // Keras's binary accuracy: each output thresholded at 0.5, averaged over the row.
    const bool binary = loss_ == LossKind::BinaryCrossentropy;
    t.accuracy_count(correct, out, target, binary ? rows * cols : rows, binary ? 1 : cols, mode, 0.5f,
                     cuda_stream_);
    const double divisor = binary ? double(cols) : 1.0;
    t.count_into(sums + 2 + outputs + o, correct, divisor, cuda_stream_);
    if (o == 0) t.count_into(sums + 1, correct, divisor, cuda_stream_);
  }
}

void Net::cuda_penalties_and_clipping(int batch, bool training, double* sums) {
  const CudaKernels& t = cuda_backend().kernels();
  float* g = grads_->data();
  const double rows = double(loss_rows(batch));
  for (const WeightPenalty& p : penalties_) {
    const ParamInfo& info = params_[size_t(p.param)];
    if (!layers_[size_t(info.layer)].trainable) continue;
    t.penalty_into(sums, training ? g + info.offset : nullptr, weights_->data() + info.offset, info.size,
                   p.l1, p.l2, rows, cuda_stream_);
  }
  const GradientClip& c = opt_.clip;
  if (!training || !c.any()) return;
  if (c.value > 0) {
    for (const auto& [off, n] : update_ranges_) t.clip_values(g + off, n, float(c.value), cuda_stream_);
    return;
  }
  auto* norms = reinterpret_cast<double*>(cuda_norms_->data());
  cuda_backend().zero(norms, (update_params_.size() + 1) * sizeof(double), cuda_stream_);
  if (c.norm > 0) {
    for (size_t k = 0; k < update_params_.size(); ++k) {
      const auto& [off, n] = update_params_[k];
      t.sum_squares_into(norms + k, g + off, n, cuda_stream_);
      t.clip_to_norm(g + off, n, norms + k, float(c.norm), cuda_stream_);
    }
    return;
  }
  for (const auto& [off, n] : update_ranges_) t.sum_squares_into(norms, g + off, n, cuda_stream_);
  for (const auto& [off, n] : update_ranges_) t.clip_to_norm(g + off, n, norms, float(c.global_norm), cuda_stream_);
}

void Net::cuda_infer(const std::vector<Tensor>& xs, const std::vector<Tensor>& ys, int64_t start,
                     int64_t count, const std::vector<int>& layers, int last, int batch_size) {
  DeviceBackend& b = cuda_backend();
  bool device_inputs = false;
  for (const Tensor& x : xs) device_inputs = device_inputs || x.device() == DeviceType::Cuda;
  if (device_inputs) wait_for_process_stream(b, cuda_stream_);
  // Two batches in flight, each with its own page-locked slot: batch k+1 is uploaded and run
  // before batch k's results are copied out of its slot, so the GPU does not wait for the host.
  struct Slot {
    std::unique_ptr<Pinned> in, out;
    void* done = nullptr;  // recorded after the batch's results reached `out`
    int64_t r = 0;
    int n = 0;
  };
  struct Slots {
    DeviceBackend& b;
    void* stream;
    Slot s[2];
    ~Slots() {  // on an error, the GPU may still use the slots: wait before they go
      try {
        b.synchronize(stream);
      } catch (const std::exception&) {
      }
      for (Slot& slot : s)
        if (slot.done) b.event_destroy(slot.done);
    }
  } slots{b, cuda_stream_, {}};
  auto out_row = [&](size_t j) { return example_size(shapes_[value_of(layers[j])]); };
  auto finish = [&](Slot& slot) {
    if (!slot.done) return;
    b.event_synchronize(slot.done);
    b.event_destroy(slot.done);
    slot.done = nullptr;
    const float* cursor = slot.out->floats();
    for (size_t j = 0; j < layers.size(); ++j) {
      const size_t floats = size_t(slot.n) * out_row(j);
      std::memcpy(ys[j].data() + size_t(slot.r) * out_row(j), cursor, floats * sizeof(float));
      cursor += floats;
    }
  };
  size_t in_per_row = 0, out_per_row = 0;
  for (size_t i = 0; i < xs.size(); ++i)
    if (xs[i].device() != DeviceType::Cuda) in_per_row += example_size(inputs_[i]);
  for (size_t j = 0; j < layers.size(); ++j) out_per_row += out_row(j);
  int k = 0;
  for (int64_t r = 0; r < count; r += batch_size, k ^= 1) {
    Slot& slot = slots.s[k];
    finish(slot);  // the batch two back
    const int n = int(std::min<int64_t>(batch_size, count - r));
    plan_for(n, false);
    if (!slot.out) {
      slot.in = std::make_unique<Pinned>(b, std::max<size_t>(1, size_t(n) * in_per_row) * sizeof(float));
      slot.out = std::make_unique<Pinned>(b, size_t(n) * out_per_row * sizeof(float));
    }
    float* cursor = slot.in->floats();
    for (size_t i = 0; i < xs.size(); ++i) {
      const size_t row = example_size(inputs_[i]), floats = size_t(n) * row;
      const float* rows = xs[i].data() + size_t(start + r) * row;
      if (xs[i].device() == DeviceType::Cuda) {
        b.copy_d2d(plan_->act[i], rows, floats * sizeof(float), cuda_stream_);
        continue;
      }
      std::memcpy(cursor, rows, floats * sizeof(float));
      b.copy_h2d(plan_->act[i], cursor, floats * sizeof(float), cuda_stream_);
      cursor += floats;
    }
    forward(*plan_, n, false, 0, last);
    cursor = slot.out->floats();
    for (size_t j = 0; j < layers.size(); ++j) {
      const size_t floats = size_t(n) * out_row(j);
      b.copy_d2h(cursor, plan_->act[value_of(layers[j])], floats * sizeof(float), cuda_stream_);
      cursor += floats;
    }
    slot.done = b.record_event(cuda_stream_);
    slot.r = r, slot.n = n;
  }
  finish(slots.s[k]);  // the older of the last two
  finish(slots.s[k ^ 1]);
}

}  // namespace ck
