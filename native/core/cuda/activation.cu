// Activations, softmax (one warp per row, warp-shuffle reductions), dropout (the CPU's
// counter-based hash, so masks are identical) and the elementwise ops (mul, add, accumulate,
// scale: one float operation each, so they match the CPU bitwise).
#include "../cpu/dropout_hash.h"
#include "cuda_common.cuh"
#include "internal.h"

namespace ck {
namespace cuda {

namespace {

#define CK_GRID_STRIDE(i, n)                                                        \
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);           \
       i += size_t(gridDim.x) * blockDim.x)

__device__ __forceinline__ float sigmoid(float x) {
  if (x >= 0.f) return 1.f / (1.f + expf(-x));
  float e = expf(x);
  return e / (1.f + e);
}

template <Act A>
__device__ __forceinline__ float activate(float x, float alpha) {
  switch (A) {
    case Act::Relu: return x > 0.f ? x : 0.f;
    case Act::LeakyRelu: return x > 0.f ? x : alpha * x;
    case Act::Elu: return x > 0.f ? x : alpha * expm1f(x);
    case Act::Sigmoid: return sigmoid(x);
    case Act::Tanh: return tanhf(x);
    case Act::ClippedRelu: return fminf(fmaxf(x, 0.f), alpha);
    default: return x;
  }
}

template <Act A>
__device__ __forceinline__ float derivative(float y, float alpha) {
  switch (A) {
    case Act::Relu: return y > 0.f ? 1.f : 0.f;
    case Act::LeakyRelu: return y > 0.f ? 1.f : alpha;
    case Act::Elu: return y > 0.f ? 1.f : y + alpha;
    case Act::Sigmoid: return y * (1.f - y);
    case Act::Tanh: return 1.f - y * y;
    case Act::ClippedRelu: return y > 0.f && y < alpha ? 1.f : 0.f;
    default: return 1.f;
  }
}

template <Act A>
__global__ void act_fwd_kernel(float* y, const float* x, size_t n, float alpha) {
  CK_GRID_STRIDE(i, n) y[i] = activate<A>(x[i], alpha);
}

template <Act A>
__global__ void act_bwd_kernel(float* dx, const float* dy, const float* y, size_t n,
                               float alpha) {
  CK_GRID_STRIDE(i, n) dx[i] = dy[i] * derivative<A>(y[i], alpha);
}

constexpr int kRowWarps = 8;  // rows (warps) per 256-thread block

__global__ void softmax_fwd_kernel(float* y, const float* x, size_t rows, size_t cols) {
  const int lane = threadIdx.x % 32;
  for (size_t r = size_t(blockIdx.x) * kRowWarps + threadIdx.x / 32; r < rows;
       r += size_t(gridDim.x) * kRowWarps) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    float m = -INFINITY;
    for (size_t c = lane; c < cols; c += 32) m = fmaxf(m, xr[c]);
    m = warp_max(m);
    float s = 0.f;
    for (size_t c = lane; c < cols; c += 32) s += expf(xr[c] - m);
    s = warp_sum(s);
    for (size_t c = lane; c < cols; c += 32) yr[c] = expf(xr[c] - m) / s;
  }
}

__global__ void softmax_bwd_kernel(float* dx, const float* dy, const float* y, size_t rows,
                                   size_t cols) {
  const int lane = threadIdx.x % 32;
  for (size_t r = size_t(blockIdx.x) * kRowWarps + threadIdx.x / 32; r < rows;
       r += size_t(gridDim.x) * kRowWarps) {
    const float *dyr = dy + r * cols, *yr = y + r * cols;
    float dot = 0.f;
    for (size_t c = lane; c < cols; c += 32) dot += dyr[c] * yr[c];
    dot = warp_sum(dot);
    for (size_t c = lane; c < cols; c += 32) dx[r * cols + c] = yr[c] * (dyr[c] - dot);
  }
}

// seed_at: a training step's seed on the device; the mask's seed is then layer `seed`'s
// dropout_layer_seed of it (read in the kernel, so a replayed CUDA graph takes each step's).
__global__ void dropout_kernel(float* y, float* mask, const float* x, size_t n, float rate,
                               uint64_t seed, const uint64_t* seed_at) {
  if (seed_at) seed = dropout_layer_seed(*seed_at, seed);
  const float scale = 1.f / (1.f - rate);
  CK_GRID_STRIDE(i, n) {
    float mk = rate <= 0.f ? 1.f : (dropout_keep(seed, i, rate) ? scale : 0.f);
    mask[i] = mk;
    y[i] = x[i] * mk;
  }
}

__global__ void mul_kernel(float* y, const float* a, const float* b, size_t n) {
  CK_GRID_STRIDE(i, n) y[i] = a[i] * b[i];
}

// No __restrict__ on these: y may be the same array as a or x (in-place merges).
__global__ void add_kernel(float* y, const float* a, const float* b, size_t n) {
  CK_GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}

__global__ void accumulate_kernel(float* y, const float* x, size_t n) {
  CK_GRID_STRIDE(i, n) y[i] += x[i];
}

__global__ void scale_kernel(float* y, const float* x, float s, size_t n) {
  CK_GRID_STRIDE(i, n) y[i] = x[i] * s;
}

}  // namespace

void activation_fwd(float* y, const float* x, size_t n, Act act, float alpha, void* stream) {
  if (n == 0) return;
  if (act == Act::Relu6) act = Act::ClippedRelu, alpha = 6.f;
  cudaStream_t s = as_stream(stream);
  const unsigned g = grid_1d(n, 256);
  switch (act) {
    case Act::Relu: act_fwd_kernel<Act::Relu><<<g, 256, 0, s>>>(y, x, n, alpha); break;
    case Act::LeakyRelu: act_fwd_kernel<Act::LeakyRelu><<<g, 256, 0, s>>>(y, x, n, alpha); break;
    case Act::Elu: act_fwd_kernel<Act::Elu><<<g, 256, 0, s>>>(y, x, n, alpha); break;
    case Act::Sigmoid: act_fwd_kernel<Act::Sigmoid><<<g, 256, 0, s>>>(y, x, n, alpha); break;
    case Act::Tanh: act_fwd_kernel<Act::Tanh><<<g, 256, 0, s>>>(y, x, n, alpha); break;
    case Act::ClippedRelu:
      act_fwd_kernel<Act::ClippedRelu><<<g, 256, 0, s>>>(y, x, n, alpha);
      break;
    default: act_fwd_kernel<Act::None><<<g, 256, 0, s>>>(y, x, n, alpha); break;
  }
  check_launch("activation");
}

void activation_bwd(float* dx, const float* dy, const float* y, size_t n, Act act, float alpha,
                    void* stream) {
  if (n == 0) return;
  if (act == Act::Relu6) act = Act::ClippedRelu, alpha = 6.f;
  cudaStream_t s = as_stream(stream);
  const unsigned g = grid_1d(n, 256);
  switch (act) {
    case Act::Relu: act_bwd_kernel<Act::Relu><<<g, 256, 0, s>>>(dx, dy, y, n, alpha); break;
    case Act::LeakyRelu:
      act_bwd_kernel<Act::LeakyRelu><<<g, 256, 0, s>>>(dx, dy, y, n, alpha);
      break;
    case Act::Elu: act_bwd_kernel<Act::Elu><<<g, 256, 0, s>>>(dx, dy, y, n, alpha); break;
    case Act::Sigmoid: act_bwd_kernel<Act::Sigmoid><<<g, 256, 0, s>>>(dx, dy, y, n, alpha); break;
    case Act::Tanh: act_bwd_kernel<Act::Tanh><<<g, 256, 0, s>>>(dx, dy, y, n, alpha); break;
    case Act::ClippedRelu:
      act_bwd_kernel<Act::ClippedRelu><<<g, 256, 0, s>>>(dx, dy, y, n, alpha);
      break;
    default: act_bwd_kernel<Act::None><<<g, 256, 0, s>>>(dx, dy, y, n, alpha); break;
  }
  check_launch("activationGrad");
}

void softmax_fwd(float* y, const float* x, size_t rows, size_t cols, void* stream) {
  if (rows == 0 || cols == 0) return;
  softmax_fwd_kernel<<<grid_1d(rows, kRowWarps), 256, 0, as_stream(stream)>>>(y, x, rows, cols);
  check_launch("softmax");
}

void softmax_bwd(float* dx, const float* dy, const float* y, size_t rows, size_t cols,
                 void* stream) {
  if (rows == 0 || cols == 0) return;
  softmax_bwd_kernel<<<grid_1d(rows, kRowWarps), 256, 0, as_stream(stream)>>>(dx, dy, y, rows,
                                                                              cols);
  check_launch("softmaxGrad");
}

void dropout_fwd(float* y, float* mask, const float* x, size_t n, float rate, uint64_t seed,
                 void* stream) {
  if (n == 0) return;
  dropout_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(y, mask, x, n, rate, seed, nullptr);
  check_launch("dropout");
}

void dropout_fwd_at(float* y, float* mask, const float* x, size_t n, float rate,
                    const uint64_t* step_seed, uint64_t layer, void* stream) {
  if (n == 0) return;
  dropout_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(y, mask, x, n, rate, layer, step_seed);
  check_launch("dropout");
}

void mul(float* y, const float* a, const float* b, size_t n, void* stream) {
  if (n == 0) return;
  mul_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(y, a, b, n);
  check_launch("mul");
}

void add(float* y, const float* a, const float* b, size_t n, void* stream) {
  if (n == 0) return;
  add_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(y, a, b, n);
  check_launch("add");
}

void accumulate(float* y, const float* x, size_t n, void* stream) {
  if (n == 0) return;
  accumulate_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(y, x, n);
  check_launch("accumulate");
}

void scale(float* y, const float* x, float s, size_t n, void* stream) {
  if (n == 0) return;
  scale_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(y, x, s, n);
  check_launch("scale");
}

}  // namespace cuda
}  // namespace ck
