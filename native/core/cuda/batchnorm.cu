// Batch normalization over the last axis of x [rows, C], deterministic: per-channel statistics
// are reduced in chunks of rows (each block: 32 channels x 8 row lanes, lanes merged in a fixed
// order), then one warp per channel merges the chunks in a fixed order; elementwise kernels
// apply the result. Training statistics use Welford / Chan merging (no E[x^2] - E[x]^2
// cancellation); the merges of chunks run in double.
#include <algorithm>

#include "cuda_common.cuh"
#include "internal.h"

namespace ck {
namespace cuda {

namespace {

constexpr int kTile = 32, kLanes = 8, kRowsPerChunk = 1024, kMaxChunks = 1024;

struct Chunks {
  size_t per;  // rows per chunk
  int count;
};
Chunks chunking(size_t rows) {
  size_t n = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  n = std::min<size_t>(std::max<size_t>(n, 1), kMaxChunks);
  return Chunks{std::max<size_t>(1, (rows + n - 1) / n), int(n)};
}

// Merges (nb, mb, m2b) into (na, ma, m2a) (Chan et al.).
template <class T>
__device__ __forceinline__ void chan_merge(T& na, T& ma, T& m2a, T nb, T mb, T m2b) {
  if (nb == T(0)) return;
  if (na == T(0)) {
    na = nb, ma = mb, m2a = m2b;
    return;
  }
  T n = na + nb, d = mb - ma;
  ma += d * (nb / n);
  m2a += m2b + d * d * (na * nb / n);
  na = n;
}

// Per chunk and channel: mean and M2 (sum of squared deviations) of the chunk's rows.
__global__ void bn_stats_partial(float* pmean, float* pm2, const float* x, size_t rows, int C,
                                 size_t per) {
  __shared__ float sn[kLanes][kTile], sm[kLanes][kTile], s2[kLanes][kTile];
  const int c = blockIdx.x * kTile + threadIdx.x, chunk = blockIdx.y;
  const size_t r0 = size_t(chunk) * per, r1 = min(rows, r0 + per);
  float n = 0.f, mean = 0.f, m2 = 0.f;
  if (c < C) {
    for (size_t r = r0 + threadIdx.y; r < r1; r += kLanes) {
      float v = x[r * C + c];
      n += 1.f;
      float d = v - mean;
      mean += d / n;
      m2 += d * (v - mean);
    }
  }
  sn[threadIdx.y][threadIdx.x] = n, sm[threadIdx.y][threadIdx.x] = mean;
  s2[threadIdx.y][threadIdx.x] = m2;
  __syncthreads();
  if (threadIdx.y != 0 || c >= C) return;
  for (int l = 1; l < kLanes; ++l)
    chan_merge(n, mean, m2, sn[l][threadIdx.x], sm[l][threadIdx.x], s2[l][threadIdx.x]);
  pmean[size_t(chunk) * C + c] = mean;
  pm2[size_t(chunk) * C + c] = m2;
}

// One warp per channel: merges the chunks, writes the saved and running statistics.
__global__ void bn_stats_final(float* save_mean, float* save_invstd, float* running_mean,
                               float* running_var, const float* pmean, const float* pm2,
                               size_t rows, int C, size_t per, int chunks, float eps,
                               float momentum) {
  const int c = int((size_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32);
  const int lane = threadIdx.x % 32;
  if (c >= C) return;
  double n = 0, mean = 0, m2 = 0;
  for (int k = lane; k < chunks; k += 32) {
    size_t r0 = size_t(k) * per, r1 = min(rows, r0 + per);
    double nb = r1 > r0 ? double(r1 - r0) : 0.0;
    chan_merge(n, mean, m2, nb, double(pmean[size_t(k) * C + c]), double(pm2[size_t(k) * C + c]));
  }
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    double nb = __shfl_xor_sync(0xffffffffu, n, o);
    double mb = __shfl_xor_sync(0xffffffffu, mean, o);
    double m2b = __shfl_xor_sync(0xffffffffu, m2, o);
    // The lower lane of each pair is "a": every lane computes the same merge tree shape.
    if ((lane & o) == 0) {
      chan_merge(n, mean, m2, nb, mb, m2b);
    } else {
      chan_merge(nb, mb, m2b, n, mean, m2);
      n = nb, mean = mb, m2 = m2b;
    }
  }
  if (lane != 0) return;
  double var = m2 / double(rows);
  if (rows == 0) mean = 0.0 / 0.0, var = 0.0 / 0.0;
  const float fmean = float(mean), fvar = float(var);
  save_mean[c] = fmean;
  save_invstd[c] = float(1.0 / sqrt(var + double(eps)));
  if (running_mean) running_mean[c] = running_mean[c] * momentum + fmean * (1.f - momentum);
  if (running_var) running_var[c] = running_var[c] * momentum + fvar * (1.f - momentum);
}

// A fused ReLU / ReLU6 after the normalization (act_clamp: 0 none, 1 ReLU, 2 ReLU6).
__device__ __forceinline__ float bn_act(float v, int act_clamp) {
  if (act_clamp >= 1) v = v > 0.f ? v : 0.f;
  if (act_clamp == 2) v = fminf(v, 6.f);
  return v;
}
// dy through that activation's derivative from its output y.
__device__ __forceinline__ float bn_act_grad(float dy, const float* y, size_t i, int act_clamp) {
  if (act_clamp == 0) return dy;
  const float v = y[i];
  return dy * ((act_clamp == 2 ? v > 0.f && v < 6.f : v > 0.f) ? 1.f : 0.f);
}
int act_clamp_of(Act act) { return act == Act::Relu6 ? 2 : act == Act::Relu ? 1 : 0; }

template <class I>
__global__ void bn_apply(float* y, const float* x, const float* mean, const float* invstd,
                         const float* gamma, const float* beta, int act_clamp, I C, I total) {
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += I(gridDim.x) * blockDim.x) {
    const I c = i % C;
    const float g = gamma ? gamma[c] : 1.f, b = beta ? beta[c] : 0.f;
    y[i] = bn_act((x[i] - mean[c]) * invstd[c] * g + b, act_clamp);
  }
}

template <class I>
__global__ void bn_infer(float* y, const float* x, const float* gamma, const float* beta,
                         const float* mean, const float* var, float eps, I C, I total) {
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += I(gridDim.x) * blockDim.x) {
    const I c = i % C;
    const float g = gamma ? gamma[c] : 1.f, b = beta ? beta[c] : 0.f;
    y[i] = (x[i] - mean[c]) / sqrtf(var[c] + eps) * g + b;
  }
}

// Per chunk and channel: sum(dy) and sum(dy * xhat).
__global__ void bn_bwd_partial(float* p1, float* p2, const float* dy, const float* x,
                               const float* mean, const float* invstd, const float* y,
                               int act_clamp, size_t rows, int C, size_t per) {
  __shared__ float s1[kLanes][kTile], s2[kLanes][kTile];
  const int c = blockIdx.x * kTile + threadIdx.x, chunk = blockIdx.y;
  const size_t r0 = size_t(chunk) * per, r1 = min(rows, r0 + per);
  float a = 0.f, b = 0.f;
  if (c < C) {
    const float m = mean[c], is = invstd[c];
    for (size_t r = r0 + threadIdx.y; r < r1; r += kLanes) {
      float g = bn_act_grad(dy[r * C + c], y, r * C + c, act_clamp);
      a += g;
      b += g * ((x[r * C + c] - m) * is);
    }
  }
  s1[threadIdx.y][threadIdx.x] = a, s2[threadIdx.y][threadIdx.x] = b;
  __syncthreads();
  if (threadIdx.y != 0 || c >= C) return;
  for (int l = 1; l < kLanes; ++l) a += s1[l][threadIdx.x], b += s2[l][threadIdx.x];
  p1[size_t(chunk) * C + c] = a;
  p2[size_t(chunk) * C + c] = b;
}

// One warp per channel: the sums in double; coef = {k = g*invstd/rows, sum_dy, sum_dy_xhat}.
__global__ void bn_bwd_final(float* coef, float* dgamma, float* dbeta, const float* p1,
                             const float* p2, const float* invstd, const float* gamma,
                             size_t rows, int C, int chunks) {
  const int c = int((size_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32);
  const int lane = threadIdx.x % 32;
  if (c >= C) return;
  double a = 0, b = 0;
  for (int k = lane; k < chunks; k += 32) a += p1[size_t(k) * C + c], b += p2[size_t(k) * C + c];
  a = warp_sum(a);
  b = warp_sum(b);
  if (lane != 0) return;
  if (dgamma) dgamma[c] = float(b);
  if (dbeta) dbeta[c] = float(a);
  const double g = gamma ? gamma[c] : 1.0;
  coef[c] = float(g * invstd[c] / double(rows));
  coef[C + c] = float(a);
  coef[2 * C + c] = float(b);
}

template <class I>
__global__ void bn_bwd_apply(float* dx, const float* dy, const float* x, const float* mean,
                             const float* invstd, const float* coef, float frows, const float* y,
                             int act_clamp, I C, I total) {
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += I(gridDim.x) * blockDim.x) {
    const I c = i % C;
    const float xhat = (x[i] - mean[c]) * invstd[c];
    const float g = bn_act_grad(dy[i], y, size_t(i), act_clamp);
    dx[i] = coef[c] * (frows * g - coef[C + c] - xhat * coef[2 * C + c]);
  }
}

// ---- the split training kernels of a batch norm synchronised over processes ----

// One warp per channel: the chunks' moments merged as bn_stats_final merges them, written as
// sums[c] = sum(x), sums[C + c] = sum(x^2).
__global__ void bn_stats_sums(float* sums, const float* pmean, const float* pm2, size_t rows, int C,
                              size_t per, int chunks) {
  const int c = int((size_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32);
  const int lane = threadIdx.x % 32;
  if (c >= C) return;
  double n = 0, mean = 0, m2 = 0;
  for (int k = lane; k < chunks; k += 32) {
    size_t r0 = size_t(k) * per, r1 = min(rows, r0 + per);
    double nb = r1 > r0 ? double(r1 - r0) : 0.0;
    chan_merge(n, mean, m2, nb, double(pmean[size_t(k) * C + c]), double(pm2[size_t(k) * C + c]));
  }
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    double nb = __shfl_xor_sync(0xffffffffu, n, o);
    double mb = __shfl_xor_sync(0xffffffffu, mean, o);
    double m2b = __shfl_xor_sync(0xffffffffu, m2, o);
    if ((lane & o) == 0) {
      chan_merge(n, mean, m2, nb, mb, m2b);
    } else {
      chan_merge(nb, mb, m2b, n, mean, m2);
      n = nb, mean = mb, m2 = m2b;
    }
  }
  if (lane != 0) return;
  sums[c] = float(n * mean);
  sums[C + c] = float(m2 + n * mean * mean);
}

// Per channel: the saved and running statistics of `count` rows from their sums.
__global__ void bn_stats_from_sums(float* save_mean, float* save_invstd, float* running_mean, float* running_var,
                                   const float* sums, float count, int C, float eps, float momentum) {
  const int c = int(size_t(blockIdx.x) * blockDim.x + threadIdx.x);
  if (c >= C) return;
  const double mean = double(sums[c]) / count;
  const double var = fmax(0.0, double(sums[C + c]) / count - mean * mean);  // rounding may go below 0
  const float fmean = float(mean), fvar = float(var);
  save_mean[c] = fmean;
  save_invstd[c] = float(1.0 / sqrt(var + double(eps)));
  if (running_mean) running_mean[c] = running_mean[c] * momentum + fmean * (1.f - momentum);
  if (running_var) running_var[c] = running_var[c] * momentum + fvar * (1.f - momentum);
}

// One warp per channel: the chunks' sum(g) and sum(g * xhat), in double, into sums.
__global__ void bn_bwd_sums_final(float* sums, const float* p1, const float* p2, int C, int chunks) {
  const int c = int((size_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32);
  const int lane = threadIdx.x % 32;
  if (c >= C) return;
  double a = 0, b = 0;
  for (int k = lane; k < chunks; k += 32) a += p1[size_t(k) * C + c], b += p2[size_t(k) * C + c];
  a = warp_sum(a);
  b = warp_sum(b);
  if (lane != 0) return;
  sums[c] = float(a);
  sums[C + c] = float(b);
}

// bn_bwd_apply's coef = {gamma * invstd / count, sum(g), sum(g * xhat)} from the summed sums.
__global__ void bn_bwd_coef(float* coef, const float* sums, const float* invstd, const float* gamma, float count,
                            int C) {
  const int c = int(size_t(blockIdx.x) * blockDim.x + threadIdx.x);
  if (c >= C) return;
  coef[c] = float((gamma ? gamma[c] : 1.0) * invstd[c] / double(count));
  coef[C + c] = sums[c];
  coef[2 * C + c] = sums[C + c];
}

void check_bn(size_t rows, int C, const char* op) {
  if (C < 0) throw_error(ErrorKind::Value, std::string(op) + ": negative channel count");
  if (C > 0 && rows > size_t(-1) / size_t(C)) require_int_range(size_t(-1), op, "rows*C");
}

#define CK_BN_LAUNCH(kernel, total, stream, ...)                                             \
  do {                                                                                       \
    size_t total_ = (total);                                                                 \
    if (total_ == 0) break;                                                                  \
    if (total_ <= size_t(UINT32_MAX) / 2) {                                                  \
      kernel<uint32_t><<<grid_1d(total_, 256), 256, 0, stream>>>(__VA_ARGS__, uint32_t(C),   \
                                                                 uint32_t(total_));          \
    } else {                                                                                 \
      kernel<uint64_t><<<grid_1d(total_, 256), 256, 0, stream>>>(__VA_ARGS__, uint64_t(C),   \
                                                                 uint64_t(total_));          \
    }                                                                                        \
  } while (0)

}  // namespace

void batchnorm_fwd_train(float* y, float* save_mean, float* save_invstd, float* running_mean,
                         float* running_var, const float* x, const float* gamma, const float* beta,
                         size_t rows, int C, float eps, float momentum, Act act, void* stream) {
  check_bn(rows, C, "batchNormalization");
  if (C == 0) return;
  cudaStream_t s = as_stream(stream);
  Chunks ch = chunking(rows);
  Scratch part(size_t(2) * ch.count * C * sizeof(float), s);
  float* pmean = part.as<float>();
  float* pm2 = pmean + size_t(ch.count) * C;
  if (rows > 0) {
    dim3 grid((C + kTile - 1) / kTile, ch.count), block(kTile, kLanes);
    bn_stats_partial<<<grid, block, 0, s>>>(pmean, pm2, x, rows, C, ch.per);
    check_launch("batchNormalization");
  }
  bn_stats_final<<<grid_1d(size_t(C) * 32, 256, 1u << 30), 256, 0, s>>>(
      save_mean, save_invstd, running_mean, running_var, pmean, pm2, rows, C, ch.per,
      rows > 0 ? ch.count : 0, eps, momentum);
  check_launch("batchNormalization");
  CK_BN_LAUNCH(bn_apply, rows * C, s, y, x, save_mean, save_invstd, gamma, beta, act_clamp_of(act));
  check_launch("batchNormalization");
}

void batchnorm_fwd_infer(float* y, const float* x, const float* gamma, const float* beta,
                         const float* mean, const float* var, size_t rows, int C, float eps,
                         void* stream) {
  check_bn(rows, C, "batchNormalization (inference)");
  CK_BN_LAUNCH(bn_infer, rows * size_t(C), as_stream(stream), y, x, gamma, beta, mean, var, eps);
  check_launch("batchNormalization (inference)");
}

void batchnorm_bwd(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                   const float* save_mean, const float* save_invstd, const float* gamma,
                   const float* /*beta: y is read*/, size_t rows, int C, const float* y, Act act, void* stream) {
  check_bn(rows, C, "batchNormalizationGrad");
  const int act_clamp = act_clamp_of(act);
  if (C == 0) return;
  cudaStream_t s = as_stream(stream);
  Chunks ch = chunking(rows);
  Scratch part(size_t(2 * ch.count + 3) * C * sizeof(float), s);
  float* p1 = part.as<float>();
  float* p2 = p1 + size_t(ch.count) * C;
  float* coef = p2 + size_t(ch.count) * C;
  if (rows > 0) {
    dim3 grid((C + kTile - 1) / kTile, ch.count), block(kTile, kLanes);
    bn_bwd_partial<<<grid, block, 0, s>>>(p1, p2, dy, x, save_mean, save_invstd, y, act_clamp, rows, C, ch.per);
    check_launch("batchNormalizationGrad");
  }
  bn_bwd_final<<<grid_1d(size_t(C) * 32, 256, 1u << 30), 256, 0, s>>>(
      coef, dgamma, dbeta, p1, p2, save_invstd, gamma, rows, C, rows > 0 ? ch.count : 0);
  check_launch("batchNormalizationGrad");
  CK_BN_LAUNCH(bn_bwd_apply, rows * C, s, dx, dy, x, save_mean, save_invstd, coef, float(rows), y, act_clamp);
  check_launch("batchNormalizationGrad");
}

void batchnorm_stats(float* sums, const float* x, size_t rows, int C, void* stream) {
  check_bn(rows, C, "batchNormalization (statistics)");
  if (C == 0) return;
  cudaStream_t s = as_stream(stream);
  Chunks ch = chunking(rows);
  Scratch part(size_t(2) * ch.count * C * sizeof(float), s);
  float* pmean = part.as<float>();
  float* pm2 = pmean + size_t(ch.count) * C;
  if (rows > 0) {
    dim3 grid((C + kTile - 1) / kTile, ch.count), block(kTile, kLanes);
    bn_stats_partial<<<grid, block, 0, s>>>(pmean, pm2, x, rows, C, ch.per);
    check_launch("batchNormalization (statistics)");
  }
  bn_stats_sums<<<grid_1d(size_t(C) * 32, 256, 1u << 30), 256, 0, s>>>(sums, pmean, pm2, rows, C, ch.per,
                                                                      rows > 0 ? ch.count : 0);
  check_launch("batchNormalization (statistics)");
}

void batchnorm_fwd_apply(float* y, float* save_mean, float* save_invstd, float* running_mean,
                         float* running_var, const float* sums, float count, const float* x,
                         const float* gamma, const float* beta, size_t rows, int C, float eps,
                         float momentum, Act act, void* stream) {
  check_bn(rows, C, "batchNormalization");
  if (C == 0) return;
  cudaStream_t s = as_stream(stream);
  bn_stats_from_sums<<<grid_1d(size_t(C), 256), 256, 0, s>>>(save_mean, save_invstd, running_mean, running_var,
                                                             sums, count, C, eps, momentum);
  check_launch("batchNormalization");
  CK_BN_LAUNCH(bn_apply, rows * C, s, y, x, save_mean, save_invstd, gamma, beta, act_clamp_of(act));
  check_launch("batchNormalization");
}

void batchnorm_bwd_sums(float* sums, const float* dy, const float* x, const float* save_mean,
                        const float* save_invstd, const float* /*gamma*/, const float* /*beta: y is read*/,
                        size_t rows, int C, const float* y, Act act, void* stream) {
  check_bn(rows, C, "batchNormalizationGrad (sums)");
  if (C == 0) return;
  cudaStream_t s = as_stream(stream);
  Chunks ch = chunking(rows);
  Scratch part(size_t(2) * ch.count * C * sizeof(float), s);
  float* p1 = part.as<float>();
  float* p2 = p1 + size_t(ch.count) * C;
  if (rows > 0) {
    dim3 grid((C + kTile - 1) / kTile, ch.count), block(kTile, kLanes);
    bn_bwd_partial<<<grid, block, 0, s>>>(p1, p2, dy, x, save_mean, save_invstd, y, act_clamp_of(act), rows, C,
                                          ch.per);
    check_launch("batchNormalizationGrad (sums)");
  }
  bn_bwd_sums_final<<<grid_1d(size_t(C) * 32, 256, 1u << 30), 256, 0, s>>>(sums, p1, p2, C, rows > 0 ? ch.count : 0);
  check_launch("batchNormalizationGrad (sums)");
}

void batchnorm_bwd_apply(float* dx, const float* dy, const float* x, const float* save_mean,
                         const float* save_invstd, const float* gamma, const float* /*beta: y is read*/,
                         const float* sums, float count, size_t rows, int C, const float* y, Act act,
                         void* stream) {
  check_bn(rows, C, "batchNormalizationGrad");
  if (C == 0) return;
  cudaStream_t s = as_stream(stream);
  Scratch part(size_t(3) * C * sizeof(float), s);
  float* coef = part.as<float>();
  bn_bwd_coef<<<grid_1d(size_t(C), 256), 256, 0, s>>>(coef, sums, save_invstd, gamma, count, C);
  check_launch("batchNormalizationGrad");
  CK_BN_LAUNCH(bn_bwd_apply, rows * C, s, dx, dy, x, save_mean, save_invstd, coef, count, y, act_clamp_of(act));
  check_launch("batchNormalizationGrad");
}

}  // namespace cuda
}  // namespace ck
