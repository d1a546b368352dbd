// The network executor on a CUDA GPU: moving a net's weights there, and the GPU's side of the
// steps and inference written once over the device (net_device.h, net_train.cpp, net_infer.cpp).
// Each step is one task of the net's stream (stream_) that gathers the batch into page-locked
// staging, enqueues its upload on the net's copy stream and the forward and backward passes, the
// loss and the optimizer update on the net's own CUDA stream, then returns, so the next step is
// enqueued while the GPU runs this one.
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
#include "net_device.h"
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

namespace {

// What a step's CPU task hands to its result task.
struct CudaStepResult {
  Failure error;
  void* event = nullptr;
  std::unique_ptr<Pinned> sums;  // the device sums as they stood after the step
  double count = 0;
};

}  // namespace

void Net::cuda_enqueue_step(const char* op, StepRequest r, std::shared_ptr<Accumulators> out) {
  std::vector<const Tensor*> reads = tensor_pointers(r.xs, r.ys);
  for (const Tensor& t : r.weights) reads.push_back(&t);
  auto result = std::make_shared<CudaStepResult>();
  enqueue(op, reads, {}, [this, r = std::move(r), result] {
    DeviceBackend& b = cuda_backend();
    try {
      result->sums = std::make_unique<Pinned>(b, cuda_sums_per_phase() * sizeof(double));
      CudaDevice dev(*this);
      step(dev, r);
      dev.download_sums(static_cast<double*>(result->sums->p), r.training);
      result->count = (r.training ? train_acc_ : eval_acc_).count;
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

// ---- the GPU as the device ----

// An inference's two page-locked slots (see begin_inference).
struct Net::CudaDevice::Slots {
  struct Slot {
    std::unique_ptr<Pinned> in, out;
    void* done = nullptr;  // recorded after the chunk's results reached `out`
    const std::vector<Tensor>* ys = nullptr;
    const std::vector<int>* layers = nullptr;
    int64_t row = 0;  // the chunk's first row in ys
    int n = 0;
    // Waits for the chunk and copies its results out of the slot into ys.
    void finish(Net& net);
  };
  Slot s[2];
  int k = 0;  // the slot of the chunk being run
};

Net::CudaDevice::CudaDevice(Net& n) : net(n) {}

Net::CudaDevice::~CudaDevice() {
  if (!slots_) return;
  DeviceBackend& b = cuda_backend();
  // On an error the GPU may still use the slots: wait before they go.
  try {
    b.synchronize(net.cuda_stream_);
  } catch (const std::exception&) {
  }
  for (Slots::Slot& slot : slots_->s)
    if (slot.done) b.event_destroy(slot.done);
}

void Net::CudaDevice::gather(const StepRequest& r, int64_t step) {
  DeviceBackend& b = cuda_backend();
  void* stream = net.cuda_stream_;
  const std::vector<int32_t>& idx = r.idx;
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
  // A data-parallel step without rows (no plan for them) still takes its scalars.
  if (!idx.empty()) {
    Plan& pl = *net.plan_;
    for (size_t i = 0; i < r.xs.size(); ++i) add_part(pl.act[i], r.xs[i], net.example_size(net.inputs_[i]));
    for (size_t o = 0; o < r.ys.size(); ++o) add_part(pl.targets[o], r.ys[o], r.ys[o].numel() / size_t(r.ys[o].dim(0)));
    if (!r.weights.empty()) add_part(pl.row_weights, r.weights[0], 1);
  }
  static_assert(sizeof(int32_t) == sizeof(float), "row indices share the staging's float slots");
  size_t total = sizeof(StepScalars) / sizeof(float) + (device_parts.empty() ? 0 : idx.size());
  for (const Part& part : host_parts) total += idx.size() * part.row;
  auto stage = std::make_shared<Pinned>(b, total * sizeof(float));
  float* cursor = stage->floats();
  for (const Part& part : host_parts) {
    net.gather(cursor, *part.src, idx, part.row);
    cursor += idx.size() * part.row;
  }
  StepScalars scalars;
  scalars.seed = r.seed;
  AdamParams adam = net.opt_.adam;
  adam.step = std::max<int64_t>(step, 1);
  scalars.adam_alpha = adam_alpha(adam);
  NadamParams nadam = net.opt_.nadam;
  nadam.step = adam.step;
  const NadamScalars ns = nadam_scalars(nadam);
  scalars.nadam[0] = ns.m_coef, scalars.nadam[1] = ns.g_coef, scalars.nadam[2] = ns.v_scale;
  std::memcpy(cursor, &scalars, sizeof scalars);
  if (!device_parts.empty()) {
    std::memcpy(cursor + sizeof scalars / sizeof(float), idx.data(), idx.size() * sizeof(int32_t));
  }

  CudaCopyStream& copy = *net.cuda_copy_;
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
    b.stream_wait_event(stream, landed.e);
  }
  // The staging's last reference, dropped once the copy ran (after `landed`: the net's stream
  // need not wait for the callback).
  b.host_callback(copy.stream, [stage] {});
  const float* from = landing;
  for (const Part& part : host_parts) {
    b.copy_d2d(part.dev, from, idx.size() * part.row * sizeof(float), stream);
    from += idx.size() * part.row;
  }
  b.copy_d2d(net.cuda_scalars_->data(), from, sizeof scalars, stream);
  if (!device_parts.empty()) {
    const auto* rows = reinterpret_cast<const int32_t*>(from + sizeof scalars / sizeof(float));
    std::vector<StoragePtr> held;
    wait_for_process_stream(b, stream);
    for (const Part& part : device_parts) {
      b.kernels().gather_rows(part.dev, part.src->data(), rows, idx.size(), part.row, size_t(part.src->dim(0)),
                              stream);
      held.push_back(part.src->storage);
    }
    b.host_callback(stream, [held] {});  // the inputs' memory, held until the gathers ran
  }
  void* consumed = b.record_event(stream);
  if (copy.consumed) b.event_destroy(copy.consumed);
  copy.consumed = consumed;
}

// The training half of cuda_sums_, then the evaluation half.
Net::SumSlots Net::CudaDevice::sums(bool training) {
  const size_t outputs = net.outputs_.size();
  double* base = reinterpret_cast<double*>(net.cuda_sums_->data()) + (training ? 0 : net.cuda_sums_per_phase());
  return {base, base + 1, base + 2, base + 2 + outputs, base + 2 + 2 * outputs};
}

void Net::CudaDevice::download_sums(double* host, bool training) const {
  const size_t per_phase = net.cuda_sums_per_phase();
  const double* base = reinterpret_cast<const double*>(net.cuda_sums_->data()) + (training ? 0 : per_phase);
  cuda_backend().copy_d2h(host, base, per_phase * sizeof(double), net.cuda_stream_);
}

void Net::CudaDevice::run_body(int batch, bool training, const std::function<void()>& body) {
  DeviceBackend& b = cuda_backend();
  void* stream = net.cuda_stream_;
  const auto warm_key = std::make_pair(batch, training);
  // A graph holds the kernels of the precision it was captured in, weighs its rows or not, and
  // updates the weights or only accumulates the gradients.
  const auto key = std::make_tuple(batch, training, 4 * int(math_precision()) + 2 * int(net.weighted_) + int(net.applying_));
  // A data-parallel step's body waits for the other processes on the host (its reducer): a graph
  // would replay its kernels without it.
  if (net.cuda_graphs_off_ || net.buckets_open_) return body();
  auto found = net.cuda_graphs_.find(key);
  if (found != net.cuda_graphs_.end()) return b.launch_graph(found->second, stream);
  // The first run with this plan grows the gradient pool (allocations cannot be captured).
  if (net.cuda_warm_.insert(warm_key).second) return body();
  b.begin_capture(stream);
  void* graph = nullptr;
  try {
    body();
    graph = b.end_capture(stream);
  } catch (const std::exception&) {
    // A capture that failed ran nothing: leave capture mode, forget the gradient routing the
    // body left half done, and run the step without graphs from now on.
    try {
      b.end_capture(stream);
    } catch (const std::exception&) {
    }
    std::fill(net.plan_->grad.begin(), net.plan_->grad.end(), nullptr);
    net.cuda_graphs_off_ = true;
    return body();
  }
  net.cuda_graphs_[key] = graph;
  ++net.cuda_captures_;
  b.launch_graph(graph, stream);
}

void Net::CudaDevice::zero(float* p, size_t n) const { cuda_backend().zero(p, n * sizeof(float), net.cuda_stream_); }

void Net::CudaDevice::sum_into(double* acc, const float* x, size_t n) const {
  cuda_backend().kernels().sum_into(acc, x, n, net.cuda_stream_);
}

// accuracy_count's and top_k_count's device scalar.
Net::CudaDevice::Count Net::CudaDevice::accuracy_count(const float* pred, const float* target, size_t rows,
                                                       size_t cols, LabelMode mode, float threshold) const {
  auto* count = reinterpret_cast<uint64_t*>(net.cuda_correct_->data());
  cuda_backend().kernels().accuracy_count(count, pred, target, rows, cols, mode, threshold, net.cuda_stream_);
  return count;
}

Net::CudaDevice::Count Net::CudaDevice::top_k_count(const float* pred, const float* target, size_t rows,
                                                    size_t cols, LabelMode mode, int k) const {
  auto* count = reinterpret_cast<uint64_t*>(net.cuda_correct_->data());
  cuda_backend().kernels().top_k_count(count, pred, target, rows, cols, mode, k, net.cuda_stream_);
  return count;
}

void Net::CudaDevice::add_count(double* acc, Count count, double divisor) const {
  cuda_backend().kernels().count_into(acc, count, divisor, net.cuda_stream_);
}

// The compiled metrics' thresholds, uploaded by cuda_alloc_sums.
const float* Net::CudaDevice::thresholds(const MetricSpec&, size_t at) const {
  return net.cuda_thresholds_->data() + at;
}

void Net::CudaDevice::threshold_counts(double* counts, const float* pred, const float* target, size_t rows, size_t cols,
                                       int class_id, int top_k, const float* thresholds, size_t count) const {
  cuda_backend().kernels().threshold_counts(counts, pred, target, rows, cols, class_id, top_k, thresholds, count,
                                            net.cuda_stream_);
}

void Net::CudaDevice::penalty_into(double* acc, float* g, const float* w, size_t n, double l1, double l2,
                                   double scale) const {
  cuda_backend().kernels().penalty_into(acc, g, w, n, l1, l2, scale, net.cuda_stream_);
}

double* Net::CudaDevice::norms(size_t n) {
  auto* norms = reinterpret_cast<double*>(net.cuda_norms_->data());  // one per weight + 1
  cuda_backend().zero(norms, n * sizeof(double), net.cuda_stream_);
  return norms;
}

void Net::CudaDevice::sum_squares_into(double* acc, const float* x, size_t n) const {
  cuda_backend().kernels().sum_squares_into(acc, x, n, net.cuda_stream_);
}

void Net::CudaDevice::clip_to_norm(float* g, size_t n, const double* sum_sq, float clip) const {
  cuda_backend().kernels().clip_to_norm(g, n, sum_sq, clip, net.cuda_stream_);
}

void Net::CudaDevice::clip_values(float* g, size_t n, float limit) const {
  cuda_backend().kernels().clip_values(g, n, limit, net.cuda_stream_);
}

void Net::CudaDevice::probability_xent(float*, float*, const float*, const float*, size_t, size_t, bool, float,
                                       float) const {
  throw Error(ErrorKind::Device,
              "fit: cross-entropy on CUDA needs the output to be a softmax layer (its logits feed the loss) "
              "or fromLogits: true");
}

void Net::CudaDevice::begin_inference(const std::vector<Tensor>& xs) {
  bool device_inputs = false;
  for (const Tensor& x : xs) device_inputs = device_inputs || x.device() == DeviceType::Cuda;
  if (device_inputs) wait_for_process_stream(cuda_backend(), net.cuda_stream_);
  slots_ = std::make_unique<Slots>();
}

void Net::CudaDevice::run_rows(int64_t rows, size_t, const InferRows& run) {
  slots_->s[slots_->k].finish(net);  // the chunk two back
  net.plan_for(int(rows), false);
  run(*net.plan_, 0, int(rows));
  slots_->k ^= 1;
}

void Net::CudaDevice::load_rows(Plan& pl, const std::vector<Tensor>& xs, int64_t x_row, int n) {
  DeviceBackend& b = cuda_backend();
  Slots::Slot& slot = slots_->s[slots_->k];
  if (!slot.in) {  // the first chunk is the largest
    size_t per_row = 0;
    for (size_t i = 0; i < xs.size(); ++i)
      if (xs[i].device() != DeviceType::Cuda) per_row += net.example_size(net.inputs_[i]);
    slot.in = std::make_unique<Pinned>(b, std::max<size_t>(1, size_t(n) * per_row) * sizeof(float));
  }
  float* cursor = slot.in->floats();
  for (size_t i = 0; i < xs.size(); ++i) {
    const size_t row = net.example_size(net.inputs_[i]), floats = size_t(n) * row;
    const float* rows = xs[i].data() + size_t(x_row) * row;
    if (xs[i].device() == DeviceType::Cuda) {
      b.copy_d2d(pl.act[i], rows, floats * sizeof(float), net.cuda_stream_);
      continue;
    }
    std::memcpy(cursor, rows, floats * sizeof(float));
    b.copy_h2d(pl.act[i], cursor, floats * sizeof(float), net.cuda_stream_);
    cursor += floats;
  }
}

void Net::CudaDevice::store_rows(Plan& pl, const std::vector<Tensor>& ys, const std::vector<int>& layers, int64_t y_row,
                                 int n) {
  DeviceBackend& b = cuda_backend();
  Slots::Slot& slot = slots_->s[slots_->k];
  if (!slot.out) {
    size_t per_row = 0;
    for (int layer : layers) per_row += net.example_size(net.shapes_[net.value_of(layer)]);
    slot.out = std::make_unique<Pinned>(b, std::max<size_t>(1, size_t(n) * per_row) * sizeof(float));
  }
  float* cursor = slot.out->floats();
  for (int layer : layers) {
    const size_t floats = size_t(n) * net.example_size(net.shapes_[net.value_of(layer)]);
    b.copy_d2h(cursor, pl.act[net.value_of(layer)], floats * sizeof(float), net.cuda_stream_);
    cursor += floats;
  }
  slot.done = b.record_event(net.cuda_stream_);
  slot.ys = &ys, slot.layers = &layers, slot.row = y_row, slot.n = n;
}

void Net::CudaDevice::end_inference() {
  slots_->s[slots_->k].finish(net);  // the older of the last two
  slots_->s[slots_->k ^ 1].finish(net);
}

void Net::CudaDevice::Slots::Slot::finish(Net& net) {
  if (!done) return;
  DeviceBackend& b = cuda_backend();
  b.event_synchronize(done);
  b.event_destroy(done);
  done = nullptr;
  const float* cursor = out->floats();
  for (size_t j = 0; j < layers->size(); ++j) {
    const size_t row = net.example_size(net.shapes_[net.value_of((*layers)[j])]), floats = size_t(n) * row;
    std::memcpy((*ys)[j].data() + size_t(this->row) * row, cursor, floats * sizeof(float));
    cursor += floats;
  }
}

}  // namespace ck
