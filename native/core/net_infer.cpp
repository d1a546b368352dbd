// The network executor's inference: predict and layer outputs, written once over the device
// (net_device.h): chunks of rows into a plan, forward, out again. The host runs a chunk over its
// threads (rows split between them, or a small batch layer by layer in cache-sized slices) and
// joins concurrent small calls into one batch (dynamic batching); the GPU's side is net_cuda.cpp.
#include <algorithm>
#include <cstring>
#include <exception>

#include "errors.h"
#include "net.h"
#include "net_device.h"
#include "net_plan.h"
#include "op_launch.h"
#include "thread_pool.h"

namespace ck {

namespace {

// Rows per slice for a batch of `rows` whose widest value holds `widest` floats per row: as many
// as fit in `bytes`, in equal slices.
int64_t slice_rows(int64_t rows, size_t bytes, size_t widest) {
  int64_t fit = std::max<int64_t>(1, int64_t(bytes / (widest * sizeof(float) + 1)));
  int64_t slices = (rows + fit - 1) / fit;
  return (rows + slices - 1) / slices;
}

}  // namespace

struct Net::InferGroup {
  struct Part {
    std::vector<Tensor> xs;
    int64_t start, count;
    std::vector<Tensor> ys;
  };
  std::vector<int> layers;
  bool folded = false;
  uint64_t task = 0;  // the stream task that runs the group
  int64_t rows = 0;
  std::vector<Part> parts;
};

std::vector<Tensor> Net::layer_outputs(std::vector<Tensor> xs, int64_t start, int64_t count,
                                       const std::vector<int>& layers, int batch_size) {
  const char* op = "predict";
  bool inside = !xs.empty() && start >= 0 && count >= 1 && start + count <= (xs[0].rank() ? xs[0].dim(0) : 0);
  require_lazy(inside, ErrorKind::Value, [&] {
    return "predict: rows [" + std::to_string(start) + ", " + std::to_string(start + count) +
           ") are outside the input " + (xs.empty() ? std::string("(none)") : shape_str(xs[0].shape));
  });
  require(!layers.empty(), ErrorKind::Value, "predict: no layers asked for");
  int last = 0;
  for (int layer : layers) {
    require(layer >= 0 && size_t(layer) < layers_.size(), ErrorKind::Value,
            "predict: no layer " + std::to_string(layer));
    last = std::max(last, layer);
  }
  require(batch_size >= 1, ErrorKind::Value, "predict: batchSize must be >= 1");
  check_batch(op, xs, nullptr, {int32_t(start)});
  std::vector<Tensor> ys;
  for (int layer : layers) ys.push_back(empty_tensor(with_batch(count, shapes_[value_of(layer)]), op));
  std::vector<const Tensor*> reads = tensor_pointers(xs, {}), writes = tensor_pointers(ys, {});
  // Inference rows are independent: a batch is split over the threads, each running the whole
  // network on its rows with no barrier between layers; a batch of fewer rows than threads runs
  // layer by layer on all of them, in slices whose activations stay in the caches.
  size_t widest = 0;
  for (int v = 0; v <= int(value_of(last)); ++v) widest = std::max(widest, example_size(shapes_[size_t(v)]));
  if (device_ == DeviceType::Cuda) {
    // No dynamic batching: the GPU's kernels may split their sums by the batch's size, so a call
    // that joined others would not get bitwise what it gets alone.
    enqueue(op, reads, writes, [this, xs, ys, start, count, layers, last, batch_size, widest] {
      CudaDevice dev(*this);
      infer_batch(dev, xs, ys, start, count, layers, last, batch_size, widest, false);
    });
    return ys;
  }
  const bool folded = can_fold(layers);
  ++infer_calls_;
  if (max_coalesced_rows_ > 0 && count <= batch_size && count <= max_coalesced_rows_ &&
      std::all_of(xs.begin(), xs.end(), [](const Tensor& x) { return x.storage->ready() && !x.storage->error(); })) {
    std::lock_guard<std::mutex> lock(group_mu_);
    InferGroup* g = open_group_.get();
    // Only while the group's task is the last one queued: a call made after a weight update or
    // a training step must see it, as it would alone.
    if (g && g->task == last_task_ && g->layers == layers && g->folded == folded &&
        g->rows + count <= max_coalesced_rows_) {
      for (const Tensor& y : ys) y.storage->set_producer(stream_, g->task);
      g->parts.push_back({std::move(xs), start, count, ys});
      g->rows += count;
      return ys;
    }
    ++infer_tasks_;
    auto group = std::make_shared<InferGroup>();
    group->layers = layers;
    group->folded = folded;
    group->rows = count;
    group->parts.push_back({xs, start, count, ys});
    enqueue(op, reads, writes, [this, group, last, widest] {
      {
        std::lock_guard<std::mutex> seal(group_mu_);
        if (open_group_ == group) open_group_.reset();
      }
      infer_group(*group, last, widest);
    });
    group->task = last_task_;
    open_group_ = group;
    return ys;
  }
  ++infer_tasks_;
  enqueue(op, reads, writes, [this, xs, ys, start, count, layers, last, batch_size, widest, folded] {
    CpuDevice dev(*this);
    infer_batch(dev, xs, ys, start, count, layers, last, batch_size, widest, folded);
  });
  return ys;
}

template <class Device>
void Net::infer_batch(Device& dev, const std::vector<Tensor>& xs, const std::vector<Tensor>& ys, int64_t start,
                      int64_t count, const std::vector<int>& layers, int last, int batch_size, size_t widest,
                      bool folded) {
  if (folded) refresh_folded_weights();
  dev.begin_inference(xs);
  for (int64_t b = 0; b < count; b += batch_size) {
    const int64_t rows = std::min<int64_t>(batch_size, count - b);
    dev.run_rows(rows, widest, [&](Plan& pl, int64_t r, int n) {
      dev.load_rows(pl, xs, start + b + r, n);
      forward(pl, n, false, 0, last, folded);
      dev.store_rows(pl, ys, layers, b + r, n);
    });
  }
  dev.end_inference();
}

template void Net::infer_batch(CpuDevice&, const std::vector<Tensor>&, const std::vector<Tensor>&, int64_t, int64_t,
                               const std::vector<int>&, int, int, size_t, bool);
template void Net::infer_batch(CudaDevice&, const std::vector<Tensor>&, const std::vector<Tensor>&, int64_t, int64_t,
                               const std::vector<int>&, int, int, size_t, bool);

// A sealed group: one call runs as it is; several are gathered into one batch whose outputs are
// scattered back. The first call's outputs fail through its task; the others' are failed here.
void Net::infer_group(InferGroup& g, int last, size_t widest) {
  const InferGroup::Part& first = g.parts.front();
  CpuDevice dev(*this);
  if (g.parts.size() == 1) {
    infer_batch(dev, first.xs, first.ys, first.start, first.count, g.layers, last, int(first.count), widest, g.folded);
    return;
  }
  try {
    std::vector<Tensor> xs, ys;
    for (size_t i = 0; i < first.xs.size(); ++i) xs.push_back(empty_tensor(with_batch(g.rows, inputs_[i]), "predict"));
    for (int layer : g.layers) ys.push_back(empty_tensor(with_batch(g.rows, shapes_[value_of(layer)]), "predict"));
    int64_t row = 0;
    for (const InferGroup::Part& part : g.parts) {
      for (size_t i = 0; i < xs.size(); ++i) {
        const size_t n = example_size(inputs_[i]);
        std::memcpy(xs[i].data() + size_t(row) * n, part.xs[i].data() + size_t(part.start) * n,
                    size_t(part.count) * n * sizeof(float));
      }
      row += part.count;
    }
    infer_batch(dev, xs, ys, 0, g.rows, g.layers, last, int(g.rows), widest, g.folded);
    row = 0;
    for (const InferGroup::Part& part : g.parts) {
      for (size_t j = 0; j < ys.size(); ++j) {
        const size_t n = example_size(shapes_[value_of(g.layers[j])]);
        std::memcpy(part.ys[j].data(), ys[j].data() + size_t(row) * n, size_t(part.count) * n * sizeof(float));
      }
      row += part.count;
    }
  } catch (...) {
    const Failure failure = with_prefix(current_failure(), "predict: ");
    for (size_t k = 1; k < g.parts.size(); ++k) {
      for (const Tensor& y : g.parts[k].ys) y.storage->set_error(failure);
    }
    throw;
  }
}

// A chunk of at least as many rows as threads is split over them, each running the whole network
// on its rows in slices (its own plan) with no barrier between layers; a smaller one runs layer
// by layer on every thread, in slices on the net's plan.
void Net::CpuDevice::run_rows(int64_t rows, size_t widest, const InferRows& run) {
  const int threads = num_threads();
  if (threads <= 1 || rows < threads) {
    const int64_t slice = slice_rows(rows, kInferenceSliceBytes, widest);
    for (int64_t r = 0; r < rows; r += slice) {
      const int n = int(std::min<int64_t>(slice, rows - r));
      net.plan_for(n, false);
      run(*net.plan_, r, n);
    }
    return;
  }
  const int64_t per_thread = (rows + threads - 1) / threads;
  const int64_t slice = slice_rows(per_thread, kThreadSliceBytes, widest);  // <= per_thread
  net.thread_plans_.resize(size_t(threads));
  for (auto& plan : net.thread_plans_) {
    if (!plan || plan->capacity < slice) plan = net.make_plan(int(slice), false);
  }
  std::vector<std::exception_ptr> failed(static_cast<size_t>(threads));
  // Task t runs on thread t; the kernels it calls run inline on that thread.
  parallel_run(threads, [&](int t) {
    try {
      const int64_t r1 = std::min(rows, (t + 1) * per_thread);
      for (int64_t r = t * per_thread; r < r1; r += slice) run(*net.thread_plans_[size_t(t)], r, int(std::min(slice, r1 - r)));
    } catch (...) {
      failed[size_t(t)] = std::current_exception();
    }
  });
  for (auto& e : failed) {
    if (e) std::rethrow_exception(e);
  }
}

void Net::CpuDevice::load_rows(Plan& pl, const std::vector<Tensor>& xs, int64_t x_row, int n) const {
  for (size_t i = 0; i < xs.size(); ++i) {
    const size_t row = net.example_size(net.inputs_[i]);
    std::memcpy(pl.act[i], xs[i].data() + size_t(x_row) * row, size_t(n) * row * sizeof(float));
  }
}

void Net::CpuDevice::store_rows(Plan& pl, const std::vector<Tensor>& ys, const std::vector<int>& layers, int64_t y_row,
                                int n) const {
  for (size_t j = 0; j < layers.size(); ++j) {
    const size_t row = net.example_size(net.shapes_[net.value_of(layers[j])]);
    std::memcpy(ys[j].data() + size_t(y_row) * row, pl.act[net.value_of(layers[j])], size_t(n) * row * sizeof(float));
  }
}

}  // namespace ck
