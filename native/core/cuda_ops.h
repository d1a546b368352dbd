// The CUDA kernel table bound to a stream: a kernel set whose members take the CPU table's
// arguments, so that code written once over `const auto& k` (an eager op's body, a net's pass)
// runs with CpuKernels on the host or CudaOps on the GPU.
#pragma once
#include <cstdint>
#include <utility>

#include "cuda/cuda_kernels.h"

namespace ck {

struct CudaOps {
  const CudaKernels& t;
  void* s;
  // The step's scalars on the device (a captured graph replays each step's values); null
  // outside the executor, whose steps alone call dropout_fwd_at and read adam_alpha.
  const uint64_t* step_seed = nullptr;
  const float* adam_alpha = nullptr;
  const float* nadam_step = nullptr;  // m_coef, g_coef, v_scale

  // Each kernel of kernel_list.inc with the CPU table's arguments, enqueued on the net's stream.
#define CK_KERNEL(name, params)                                  \
  template <class... Args>                                       \
  void name(Args&&... args) const {                              \
    t.name(std::forward<Args>(args)..., s);                      \
  }
#define CK_STEP_KERNEL(name, params)
#include "kernel_list.inc"

  // The mask for a seed given now (the eager op); a net's steps call dropout_fwd_at instead.
  void dropout_fwd(float* y, float* mask, const float* x, size_t n, float rate,
                   uint64_t seed) const {
    t.dropout_fwd(y, mask, x, n, rate, seed, s);
  }
  // Layer `layer`'s mask for the step seed on the device (dropout_layer_seed).
  void dropout_fwd_at(float* y, float* mask, const float* x, size_t n, float rate,
                      uint64_t layer) const {
    t.dropout_fwd_at(y, mask, x, n, rate, step_seed, layer, s);
  }
  // The augmentation draw for a seed given now (the eager op); a net's steps call
  // augment_draw_at, layer `layer`'s draw for the step seed on the device.
  void augment_draw(float* params, size_t n, const AugmentDraw& d, uint64_t seed, uint64_t first) const {
    t.augment_draw(params, n, d, seed, first, s);
  }
  void augment_draw_at(float* params, size_t n, const AugmentDraw& d, uint64_t layer, uint64_t first) const {
    t.augment_draw_at(params, n, d, step_seed, layer, first, s);
  }
  // The step's alpha (bias correction) comes from the device when a net bound adam_alpha;
  // unbound (the eager op) it comes from p.step, as on the CPU.
  void adam_update(float* w, float* m, float* v, const float* g, size_t n,
                   const AdamParams& p) const {
    t.adam_update_at(w, m, v, g, n, p, adam_alpha, s);
  }
  // Nadam's per-step scalars likewise (NadamScalars).
  void nadam_update(float* w, float* m, float* v, const float* g, size_t n,
                    const NadamParams& p) const {
    if (nadam_step) t.nadam_update_at(w, m, v, g, n, p, nadam_step, s);
    else t.nadam_update(w, m, v, g, n, p, s);
  }
};

}  // namespace ck
