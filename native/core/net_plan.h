// The executor's buffers for one batch size (internal to the net*.cpp files): every value's
// activations (flatten and reshape alias their input), a pool of gradient buffers sized for
// the largest value that backward hands out and takes back as it walks the graph (a plain
// stack needs two), dropout masks, batch-norm statistics, and per output its targets and
// per-row losses.
#pragma once
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"
#include "memory.h"
#include "net.h"
#include "op_launch.h"
#include "tensor.h"

namespace ck {

// Storage for a net's own buffers on `device`. The CUDA allocator's cache hands out blocks that
// ops on the process's CUDA stream may have freed while their kernels still run: a net's
// stream is another stream, so a CUDA block is taken only once the process stream has run
// what it had queued (nets allocate when they plan, not per step). A net's own blocks go back
// to the cache only after its stream has finished with them (Plan::~Plan, ~Net).
StoragePtr net_storage(size_t floats, DeviceType device);

struct Net::Plan {
  explicit Plan(DeviceType d) : device(d) {}
  ~Plan();  // a CUDA plan first waits for the work that uses it (net_cuda.cpp)
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  DeviceType device;
  void* cuda_stream = nullptr;  // CUDA plans: the net's stream, synchronized before freeing
  int capacity = 0;  // largest batch the buffers hold
  bool training = false;  // holds backward's buffers too
  int batch = 0;     // the batch being run
  size_t max_value = 0;  // floats in the largest value at capacity
  std::vector<float*> act;  // per value
  // Gradients: grad[v] is value v's gradient while backward has it; buffers come from the
  // pool and go back to it once the layer that made v has used them.
  std::vector<float*> grad;
  std::vector<float*> grad_free;
  float* grad_tmp = nullptr;  // a second reader's contribution before it is added
  float* shared_grad = nullptr;  // a shared weight's later application's gradients before they are added
  std::vector<float*> masks, bn_mean, bn_invstd;  // per layer
  std::vector<float*> targets, row_loss;  // per output
  float* row_weights = nullptr;  // per example: a weighted step's loss weights

  // `floats` of uninitialised memory on the plan's device, owned by the plan.
  float* alloc(size_t floats) {
    if (device == DeviceType::Cuda) {
      device_blocks.push_back(net_storage(std::max<size_t>(floats, 1), DeviceType::Cuda));
      return device_blocks.back()->data();
    }
    host_blocks.push_back(std::make_unique<Scratch>(std::max<size_t>(floats, 1)));
    return host_blocks.back()->data();
  }

 private:
  std::vector<std::unique_ptr<Scratch>> host_blocks;
  std::vector<StoragePtr> device_blocks;
};

// {batch, ...example}
inline Shape with_batch(int64_t batch, const Shape& example) {
  Shape out{batch};
  out.insert(out.end(), example.begin(), example.end());
  return out;
}

// "[None,28,28,1]", as Keras prints a batch of examples.
inline std::string batch_shape_str(const Shape& example) {
  std::string s = shape_str(example);
  return "[None" + std::string(example.empty() ? "" : ",") + s.substr(1);
}

// The tensors of a and b, as the read / write lists of an executor task.
inline std::vector<const Tensor*> tensor_pointers(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  std::vector<const Tensor*> out;
  for (const Tensor& t : a) out.push_back(&t);
  for (const Tensor& t : b) out.push_back(&t);
  return out;
}

}  // namespace ck
