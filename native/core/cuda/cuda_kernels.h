// The CUDA backend's kernel table: our own kernels (no cuBLAS / cuDNN), generated from
// kernel_list.inc: every op of CpuKernels (kernels.h), with the same semantics and argument
// order, plus the CUDA-only entries the executor uses (device-side totals, per-step values read
// on the device, the batch gather). Differences:
//   - every pointer is a device pointer;
//   - every entry takes a trailing `stream` (a cudaStream_t passed as void*, so that this header
//     needs no CUDA headers; nullptr is the legacy default stream);
//   - accuracy_count writes its count to a device scalar (first argument) instead of returning.
// Entries only enqueue work: they return before it runs. Launch errors and invalid arguments
// throw ck::Error (Device / Value); errors raised while a kernel runs surface at the next
// synchronization. Every result is deterministic: reductions run in a fixed order that depends
// on the shapes alone (no float atomics), so the same inputs give bitwise-identical outputs.
// Temporaries (split-K partials, per-chunk statistics) come from cudaMallocAsync on the stream.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../kernels.h"
#include "../params.h"

namespace ck {

// The `void* stream` every CUDA entry takes after the arguments kernel_list.inc gives it.
#define CK_WITH_STREAM(...) (__VA_ARGS__, void* stream)

struct CudaKernels {
#define CK_KERNEL(name, params) void(*name) CK_WITH_STREAM params;
#define CK_DEVICE_KERNEL(name, params) void(*name) CK_WITH_STREAM params;
#include "../kernel_list.inc"
};

// The table (defined in cuda/table.cu). Needs no GPU to obtain; calling an entry does.
const CudaKernels& cuda_kernels();

}  // namespace ck
