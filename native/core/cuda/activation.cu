// Activations, softmax (one warp per row, warp-shuffle reductions), dropout (the CPU's
// counter-based hash, so masks are identical) and the elementwise ops (mul, add, accumulate,
// scale: one float operation each, so they match the CPU bitwise).
#include <type_traits>

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

constexpr float kSqrt2OverPi = 0.7978845608028654f, kGeluCubic = 0.044715f;

__device__ __forceinline__ float normal_cdf(float x) { return 0.5f * erfcf(-x * 0.70710678118654752f); }
__device__ __forceinline__ float normal_pdf(float x) { return 0.39894228040143268f * expf(-0.5f * x * x); }
__device__ __forceinline__ float softplus(float x) { return fmaxf(x, 0.f) + log1pf(expf(-fabsf(x))); }
__device__ __forceinline__ float hard_sigmoid(float x) { return fminf(fmaxf(x + 3.f, 0.f), 6.f) / 6.f; }
__device__ __forceinline__ float gelu_tanh_inner(float x) { return kSqrt2OverPi * (x + kGeluCubic * x * x * x); }

template <Act A>
__device__ __forceinline__ float activate(float x, float alpha) {
  switch (A) {
    case Act::Relu: return x > 0.f ? x : 0.f;
    case Act::LeakyRelu: return x > 0.f ? x : alpha * x;
    case Act::Elu: return x > 0.f ? x : alpha * expm1f(x);
    case Act::Sigmoid: return sigmoid(x);
    case Act::Tanh: return tanhf(x);
    case Act::ClippedRelu: return fminf(fmaxf(x, 0.f), alpha);
    case Act::Relu6: return fminf(fmaxf(x, 0.f), 6.f);
    case Act::Gelu: return x * normal_cdf(x);
    case Act::GeluTanh: return x * sigmoid(2.f * gelu_tanh_inner(x));  // 0.5 (1 + tanh u) = sigmoid(2u)
    case Act::Swish: return x * sigmoid(x);
    case Act::HardSwish: return x * hard_sigmoid(x);
    case Act::HardSigmoid: return hard_sigmoid(x);
    case Act::Softplus: return softplus(x);
    case Act::Selu: return kSeluScale * (x > 0.f ? x : kSeluAlpha * expm1f(x));
    case Act::Mish: return x * tanhf(softplus(x));
    default: return x;  // None
  }
}

// From the output y: the acts with act_grad_from_output.
template <Act A>
__device__ __forceinline__ float derivative(float y, float alpha) {
  switch (A) {
    case Act::Relu: return y > 0.f ? 1.f : 0.f;
    case Act::LeakyRelu: return y > 0.f ? 1.f : alpha;
    case Act::Elu: return y > 0.f ? 1.f : y + alpha;
    case Act::Sigmoid: return y * (1.f - y);
    case Act::Tanh: return 1.f - y * y;
    case Act::ClippedRelu: return y > 0.f && y < alpha ? 1.f : 0.f;
    case Act::Relu6: return y > 0.f && y < 6.f ? 1.f : 0.f;
    case Act::None: return 1.f;
    default: return NAN;  // an act whose gradient reads x
  }
}

// From the input x: the others (the hard ones' corners take the flat side's slope).
template <Act A>
__device__ __forceinline__ float derivative_from_x(float x) {
  switch (A) {
    case Act::Gelu: return normal_cdf(x) + x * normal_pdf(x);
    case Act::GeluTanh: {  // as the reference
      const float u = gelu_tanh_inner(x), xc = fminf(fmaxf(x, -10.f), 10.f);
      return sigmoid(2.f * u) + 2.f * x * sigmoid(2.f * u) * sigmoid(-2.f * u) * kSqrt2OverPi * (1.f + 3.f * kGeluCubic * xc * xc);
    }
    case Act::Swish: return sigmoid(x) * (1.f + x * sigmoid(-x));
    case Act::HardSwish: return x <= -3.f ? 0.f : x >= 3.f ? 1.f : (2.f * x + 3.f) / 6.f;
    case Act::HardSigmoid: return x > -3.f && x < 3.f ? 1.f / 6.f : 0.f;
    case Act::Softplus: return sigmoid(x);
    case Act::Selu: return x > 0.f ? kSeluScale : kSeluScale * kSeluAlpha * expf(x);
    case Act::Mish: {
      const float sp = softplus(x), c = coshf(sp);
      return tanhf(sp) + x * sigmoid(x) / (c * c);
    }
    default: return NAN;  // an act whose gradient reads y
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

template <Act A>
__global__ void act_bwd_from_x_kernel(float* dx, const float* dy, const float* x, size_t n) {
  CK_GRID_STRIDE(i, n) dx[i] = dy[i] * derivative_from_x<A>(x[i]);
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

// Runs f(std::integral_constant<Act, act>{}), so that each act has its own kernel.
template <class F>
void with_act(Act act, F&& f) {
#define CK_ACT_CASE(name) \
  case Act::name: return f(std::integral_constant<Act, Act::name>{});
  switch (act) {
    CK_ACT_CASE(None) CK_ACT_CASE(Relu) CK_ACT_CASE(LeakyRelu) CK_ACT_CASE(Elu) CK_ACT_CASE(Sigmoid)
    CK_ACT_CASE(Tanh) CK_ACT_CASE(ClippedRelu) CK_ACT_CASE(Relu6) CK_ACT_CASE(Gelu) CK_ACT_CASE(GeluTanh)
    CK_ACT_CASE(Swish) CK_ACT_CASE(HardSwish) CK_ACT_CASE(HardSigmoid) CK_ACT_CASE(Softplus)
    CK_ACT_CASE(Selu) CK_ACT_CASE(Mish)
  }
#undef CK_ACT_CASE
}

}  // namespace

void activation_fwd(float* y, const float* x, size_t n, Act act, float alpha, void* stream) {
  if (n == 0) return;
  cudaStream_t s = as_stream(stream);
  const unsigned g = grid_1d(n, 256);
  with_act(act, [&](auto a) { act_fwd_kernel<decltype(a)::value><<<g, 256, 0, s>>>(y, x, n, alpha); });
  check_launch("activation");
}

void activation_bwd(float* dx, const float* dy, const float* y, size_t n, Act act, float alpha,
                    void* stream) {
  if (n == 0) return;
  cudaStream_t s = as_stream(stream);
  const unsigned g = grid_1d(n, 256);
  with_act(act, [&](auto a) { act_bwd_kernel<decltype(a)::value><<<g, 256, 0, s>>>(dx, dy, y, n, alpha); });
  check_launch("activationGrad");
}

void activation_bwd_from_x(float* dx, const float* dy, const float* x, size_t n, Act act, float,
                           void* stream) {
  if (n == 0) return;
  cudaStream_t s = as_stream(stream);
  const unsigned g = grid_1d(n, 256);
  with_act(act, [&](auto a) { act_bwd_from_x_kernel<decltype(a)::value><<<g, 256, 0, s>>>(dx, dy, x, n); });
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
