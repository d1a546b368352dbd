// Internal helpers of the op layer: argument checks that throw ck::Error naming the op, and
// launch_kernels(), which runs an op's kernels, written once over the kernel set, as a task on
// the default CPU stream with its buffers kept alive or, for tensors on a CUDA device, on the
// CUDA backend's stream.
#pragma once
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "cuda_ops.h"
#include "device.h"
#include "errors.h"
#include "tensor.h"

namespace ck {

void require(bool ok, ErrorKind kind, const std::string& msg);
// require() for checks made on every step: the message is only built when the check fails.
template <class MakeMsg>
void require_lazy(bool ok, ErrorKind kind, MakeMsg&& make_msg) {
  if (!ok) require(false, kind, make_msg());
}
void require_rank(const char* op, const char* what, const Tensor& t, int rank);
void require_positive_dims(const char* op, const char* what, const Tensor& t);
void require_same_shape(const char* op, const char* a_name, const Tensor& a, const char* b_name,
                        const Tensor& b);
void require_vector(const char* op, const char* what, const Tensor& t, int64_t n);

// The device every tensor of an op is on (null entries are skipped; none at all: the CPU);
// throws DeviceError naming the op and each tensor's device when they differ.
struct OpArg {
  const char* name;
  const Tensor* tensor;
};
DeviceType op_device(const char* op, std::initializer_list<OpArg> args);

// Enqueues `kernel` on `stream`, which reads `reads` and writes `writes` (null entries are
// skipped): the task holds every buffer until it has run, waits for inputs made on other
// streams, and marks the outputs failed (with the op's name) if anything goes wrong. Returns
// the task's sequence number.
uint64_t launch_on(const std::shared_ptr<Stream>& stream, const char* op,
                   const std::vector<const Tensor*>& reads,
                   const std::vector<const Tensor*>& writes, std::function<void()> kernel);

// Calls `enqueue` now with the CUDA kernel table and the backend's stream; it only enqueues work
// there (stream order keeps inputs and outputs valid). Errors come back with the op's name.
void launch_cuda(const char* op, const std::function<void(const CudaKernels&, void*)>& enqueue);

// The op's kernels on `device`, written once: body(k) calls the kernel set k, which is the CPU
// table in force when the op is called (run as a task on the default CPU stream, so body must
// capture by value) or CudaOps, the CUDA table bound to the backend's stream (called now,
// enqueueing there), whose members take the CPU table's arguments.
template <class Body>
void launch_kernels(const char* op, DeviceType device, const std::vector<const Tensor*>& reads,
                    const std::vector<const Tensor*>& writes, Body body) {
  if (device == DeviceType::Cuda) {
    launch_cuda(op, [&](const CudaKernels& t, void* s) { body(CudaOps{t, s}); });
  } else {
    launch_on(Stream::default_stream(), op, reads, writes,
              [body, &k = cpu_kernels()] { body(k); });
  }
}

}  // namespace ck
