// The kernels a net's passes call, on the net's device (internal to the net*.cpp files). The
// passes are templates over the kernel set: the CPU table (CpuKernels) as it is, or CudaOps,
// the CUDA table with the net's stream and step scalars bound, whose members take the CPU
// table's arguments.
#pragma once
#include <string>
#include <type_traits>
#include <utility>

#include "cuda/cuda_kernels.h"
#include "errors.h"
#include "kernels.h"
#include "net.h"

namespace ck {

struct CudaOps {
  const CudaKernels& t;
  void* s;
  // The step's scalars on the device (a captured graph replays each step's values).
  const uint64_t* step_seed;
  const float* adam_alpha;

  // Each kernel of kernel_list.inc with the CPU table's arguments, enqueued on the net's stream.
#define CK_KERNEL(name, params)                                  \
  template <class... Args>                                       \
  void name(Args&&... args) const {                              \
    t.name(std::forward<Args>(args)..., s);                      \
  }
#define CK_STEP_KERNEL(name, params)
#include "kernel_list.inc"

  // Layer `layer`'s mask for the step seed on the device (dropout_layer_seed).
  void dropout_fwd_at(float* y, float* mask, const float* x, size_t n, float rate,
                      uint64_t layer) const {
    t.dropout_fwd_at(y, mask, x, n, rate, step_seed, layer, s);
  }
  // The step's alpha (bias correction) comes from the device, not from p.step.
  void adam_update(float* w, float* m, float* v, const float* g, size_t n,
                   const AdamParams& p) const {
    t.adam_update_at(w, m, v, g, n, p, adam_alpha, s);
  }
};

// Whether the passes are instantiated for the CPU (layers CUDA lacks compile only there).
template <class K>
constexpr bool on_host = std::is_same_v<K, CpuKernels>;

}  // namespace ck
