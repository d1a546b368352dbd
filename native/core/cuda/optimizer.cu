// Fused optimizer updates over a flat parameter vector (one pass reads g and the state and
// writes w and the state), Keras's formulas as in cpu/optimizer_ref.cpp.
#include <cmath>

#include "cuda_common.cuh"
#include "internal.h"

namespace ck {
namespace cuda {

namespace {

#define CK_GRID_STRIDE(i, n)                                                        \
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);           \
       i += size_t(gridDim.x) * blockDim.x)

// decay > 0: Keras 3's decoupled weight decay first (w -= w * decay), as on the CPU.
__global__ void sgd_kernel(float* w, float* vel, const float* g, size_t n, float lr,
                           float momentum, bool nesterov, float decay) {
  CK_GRID_STRIDE(i, n) {
    const float gi = g[i];
    float wi = w[i];
    if (decay > 0.f) wi -= wi * decay;
    if (momentum == 0.f) {
      w[i] = wi - lr * gi;
      continue;
    }
    const float v = momentum * vel[i] - lr * gi;
    vel[i] = v;
    w[i] = wi + (nesterov ? momentum * v - lr * gi : v);
  }
}

// alpha_at: the step's alpha on the device instead of `alpha` (a replayed CUDA graph reads each
// step's).
// The scalars are rounded from double once on the host (adam_scalars), as on the CPU.
__global__ void adam_kernel(float* w, float* m, float* v, const float* g, size_t n, AdamScalars s,
                            const float* alpha_at, bool decoupled) {
  const float alpha = alpha_at ? *alpha_at : s.alpha;
  CK_GRID_STRIDE(i, n) {
    float wi = w[i];
    const float gi = g[i];
    if (decoupled) wi -= wi * s.decay;
    float mi = m[i], vi = v[i];
    mi += (gi - mi) * s.one_minus_beta1;
    vi += (gi * gi - vi) * s.one_minus_beta2;
    m[i] = mi, v[i] = vi;
    w[i] = wi - alpha * mi / (sqrtf(vi) + s.eps);
  }
}

__global__ void rmsprop_kernel(float* w, float* ms, float* mom, float* mg, const float* g,
                               size_t n, RmspropScalars p, bool centered) {
  CK_GRID_STRIDE(i, n) {
    const float gi = g[i];
    float wi = w[i];
    if (p.decay > 0.f) wi -= wi * p.decay;
    const float s = p.rho * ms[i] + p.one_minus_rho * gi * gi;
    ms[i] = s;
    float denom = s;
    if (centered) {
      const float a = p.rho * mg[i] + p.one_minus_rho * gi;
      mg[i] = a;
      denom -= a * a;
    }
    const float inc = p.lr * gi / sqrtf(denom + p.eps);
    if (p.momentum > 0.f) {
      const float mo = p.momentum * mom[i] + inc;
      mom[i] = mo;
      w[i] = wi - mo;
    } else {
      w[i] = wi - inc;
    }
  }
}

__global__ void adagrad_kernel(float* w, float* acc, const float* g, size_t n, AdagradScalars s) {
  CK_GRID_STRIDE(i, n) {
    const float gi = g[i];
    float wi = w[i];
    if (s.decay > 0.f) wi -= wi * s.decay;
    const float a = acc[i] + gi * gi;
    acc[i] = a;
    w[i] = wi - s.lr * gi / sqrtf(a + s.eps);
  }
}

// step_at: the step's m_coef, g_coef, v_scale on the device instead of s's (a replayed graph).
__global__ void nadam_kernel(float* w, float* m, float* v, const float* g, size_t n, NadamScalars s,
                             const float* step_at) {
  const float m_coef = step_at ? step_at[0] : s.m_coef;
  const float g_coef = step_at ? step_at[1] : s.g_coef;
  const float v_scale = step_at ? step_at[2] : s.v_scale;
  CK_GRID_STRIDE(i, n) {
    float wi = w[i];
    const float gi = g[i];
    if (s.decay > 0.f) wi -= wi * s.decay;
    float mi = m[i], vi = v[i];
    mi += (gi - mi) * s.one_minus_beta1;
    vi += (gi * gi - vi) * s.one_minus_beta2;
    m[i] = mi, v[i] = vi;
    w[i] = wi - (m_coef * mi + g_coef * gi) / (sqrtf(vi * v_scale) + s.eps);
  }
}

constexpr int kReduceThreads = 256;

// One block, so the order of the double sums is fixed by n alone (as loss.cu's sum_into).
__device__ void block_add(double* acc, double s, double scale) {
  __shared__ double warp_totals[kReduceThreads / 32];
  s = warp_sum(s);
  if (threadIdx.x % 32 == 0) warp_totals[threadIdx.x / 32] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0.0;
    for (int w = 0; w < kReduceThreads / 32; ++w) total += warp_totals[w];
    *acc += scale * total;
  }
}

__global__ void sum_squares_kernel(double* acc, const float* x, size_t n) {
  double s = 0.0;
  for (size_t i = threadIdx.x; i < n; i += kReduceThreads) s += double(x[i]) * double(x[i]);
  block_add(acc, s, 1.0);
}

__global__ void clip_to_norm_kernel(float* g, size_t n, const double* sum_sq, float clip) {
  const double norm = sqrt(*sum_sq);
  if (norm <= double(clip)) return;
  const float f = float(double(clip) / norm);
  CK_GRID_STRIDE(i, n) g[i] *= f;
}

__global__ void clip_values_kernel(float* g, size_t n, float limit) {
  CK_GRID_STRIDE(i, n) g[i] = fminf(fmaxf(g[i], -limit), limit);
}

__global__ void penalty_kernel(double* acc, float* g, const float* w, size_t n, double l1, double l2,
                               double scale) {
  const float fl1 = float(l1), twice_l2 = float(2.0 * l2);
  double s = 0.0;
  for (size_t i = threadIdx.x; i < n; i += kReduceThreads) {
    const float wi = w[i];
    s += l1 * fabs(double(wi)) + l2 * double(wi) * double(wi);
    if (g) g[i] += fl1 * float((wi > 0.f) - (wi < 0.f)) + twice_l2 * wi;
  }
  block_add(acc, s, scale);
}

}  // namespace

void sum_squares_into(double* acc, const float* x, size_t n, void* stream) {
  sum_squares_kernel<<<1, kReduceThreads, 0, as_stream(stream)>>>(acc, x, n);
  check_launch("clipnorm");
}

void clip_to_norm(float* g, size_t n, const double* sum_sq, float clip, void* stream) {
  if (n == 0) return;
  clip_to_norm_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(g, n, sum_sq, clip);
  check_launch("clipnorm");
}

void clip_values(float* g, size_t n, float limit, void* stream) {
  if (n == 0) return;
  clip_values_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(g, n, limit);
  check_launch("clipvalue");
}

void penalty_into(double* acc, float* g, const float* w, size_t n, double l1, double l2, double scale,
                  void* stream) {
  penalty_kernel<<<1, kReduceThreads, 0, as_stream(stream)>>>(acc, g, w, n, l1, l2, scale);
  check_launch("regularizer");
}

void sgd_update(float* w, float* velocity, const float* g, size_t n, const SgdParams& p,
                void* stream) {
  if (n == 0) return;
  if (p.momentum != 0.f && !velocity) {
    throw_error(ErrorKind::Value, "sgd: momentum needs a velocity buffer");
  }
  sgd_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(w, velocity, g, n, p.lr, p.momentum,
                                                             p.nesterov, sgd_decay(p));
  check_launch("sgd");
}

void adam_update(float* w, float* m, float* v, const float* g, size_t n, const AdamParams& p,
                 void* stream) {
  if (n == 0) return;
  adam_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(w, m, v, g, n, adam_scalars(p), nullptr,
                                                              p.weight_decay > 0);
  check_launch("adam");
}

void adam_update_at(float* w, float* m, float* v, const float* g, size_t n, const AdamParams& p,
                    const float* alpha, void* stream) {
  if (n == 0) return;
  adam_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(w, m, v, g, n, adam_scalars(p), alpha,
                                                              p.weight_decay > 0);
  check_launch("adam");
}

void rmsprop_update(float* w, float* ms, float* mom, float* mg, const float* g, size_t n,
                    const RmspropParams& p, void* stream) {
  if (n == 0) return;
  if ((p.momentum > 0.f && !mom) || (p.centered && !mg)) {
    throw_error(ErrorKind::Value, "rmsprop: momentum / centered need their state buffers");
  }
  rmsprop_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(w, ms, mom, mg, g, n, rmsprop_scalars(p),
                                                                 p.centered);
  check_launch("rmsprop");
}

void adagrad_update(float* w, float* acc, const float* g, size_t n, const AdagradParams& p,
                    void* stream) {
  if (n == 0) return;
  adagrad_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(w, acc, g, n, adagrad_scalars(p));
  check_launch("adagrad");
}

void nadam_update(float* w, float* m, float* v, const float* g, size_t n, const NadamParams& p,
                  void* stream) {
  if (n == 0) return;
  nadam_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(w, m, v, g, n, nadam_scalars(p), nullptr);
  check_launch("nadam");
}

void nadam_update_at(float* w, float* m, float* v, const float* g, size_t n, const NadamParams& p,
                     const float* step, void* stream) {
  if (n == 0) return;
  nadam_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(w, m, v, g, n, nadam_scalars(p), step);
  check_launch("nadam");
}

}  // namespace cuda
}  // namespace ck
