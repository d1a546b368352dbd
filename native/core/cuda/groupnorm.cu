// Layer / group normalization over x [N, S, C], deterministic: one block per (sample, group)
// unit sums its S * C/G values per thread in double and reduces them in a fixed tree (two
// passes: the mean, then the squared deviations), then writes y or dx; dgamma/dbeta take one
// block per channel over the N * S rows, reduced the same way.
#include "cuda_common.cuh"
#include "internal.h"

namespace ck {
namespace cuda {

namespace {

constexpr int kThreads = 256;
constexpr unsigned kMaxBlocks = 65535u;

// The block's sum of v (every thread gets it), in a fixed order: warps, then the warp sums.
__device__ double block_sum(double v) {
  __shared__ double warps[kThreads / 32];
  v = warp_sum(v);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();  // warps[] may still be read by the previous call
  if (lane == 0) warps[warp] = v;
  __syncthreads();
  double s = 0;
  for (int w = 0; w < kThreads / 32; ++w) s += warps[w];
  return s;
}

// The flat index of the j-th value of unit (n, g): position j / Cg, channel g*Cg + j % Cg.
__device__ __forceinline__ size_t unit_index(size_t n, size_t S, int C, int Cg, int g, size_t j) {
  return (n * S + j / size_t(Cg)) * size_t(C) + size_t(g) * size_t(Cg) + j % size_t(Cg);
}

__global__ void gn_fwd(float* y, float* save_mean, float* save_invstd, const float* x,
                       const float* gamma, const float* beta, size_t N, size_t S, int C, int G,
                       float eps) {
  const int Cg = C / G;
  const size_t count = S * size_t(Cg);
  for (size_t u = blockIdx.x; u < N * size_t(G); u += gridDim.x) {
    const size_t n = u / size_t(G);
    const int g = int(u % size_t(G));
    double s = 0;
    for (size_t j = threadIdx.x; j < count; j += kThreads) s += x[unit_index(n, S, C, Cg, g, j)];
    const double mean = block_sum(s) / double(count);
    double v = 0;
    for (size_t j = threadIdx.x; j < count; j += kThreads) {
      const double d = x[unit_index(n, S, C, Cg, g, j)] - mean;
      v += d * d;
    }
    const double invstd = 1.0 / sqrt(block_sum(v) / double(count) + double(eps));
    for (size_t j = threadIdx.x; j < count; j += kThreads) {
      const size_t i = unit_index(n, S, C, Cg, g, j);
      const int c = g * Cg + int(j % size_t(Cg));
      y[i] = float((x[i] - mean) * invstd) * (gamma ? gamma[c] : 1.f) + (beta ? beta[c] : 0.f);
    }
    if (threadIdx.x == 0 && save_mean) save_mean[u] = float(mean), save_invstd[u] = float(invstd);
  }
}

__global__ void gn_bwd_data(float* dx, const float* dy, const float* x, const float* save_mean,
                            const float* save_invstd, const float* gamma, size_t N, size_t S,
                            int C, int G) {
  const int Cg = C / G;
  const size_t count = S * size_t(Cg);
  for (size_t u = blockIdx.x; u < N * size_t(G); u += gridDim.x) {
    const size_t n = u / size_t(G);
    const int g = int(u % size_t(G));
    const float mean = save_mean[u], invstd = save_invstd[u];
    double st = 0, stx = 0;
    for (size_t j = threadIdx.x; j < count; j += kThreads) {
      const size_t i = unit_index(n, S, C, Cg, g, j);
      const float t = dy[i] * (gamma ? gamma[g * Cg + int(j % size_t(Cg))] : 1.f);
      st += t;
      stx += double(t) * ((x[i] - mean) * invstd);
    }
    const float a = float(block_sum(st) / double(count)), b = float(block_sum(stx) / double(count));
    for (size_t j = threadIdx.x; j < count; j += kThreads) {
      const size_t i = unit_index(n, S, C, Cg, g, j);
      const float t = dy[i] * (gamma ? gamma[g * Cg + int(j % size_t(Cg))] : 1.f);
      dx[i] = invstd * (t - a - (x[i] - mean) * invstd * b);
    }
  }
}

// One block per channel: dgamma = sum of dy * xhat, dbeta = sum of dy over the N * S rows.
__global__ void gn_bwd_params(float* dgamma, float* dbeta, const float* dy, const float* x,
                              const float* save_mean, const float* save_invstd, size_t N,
                              size_t S, int C, int G) {
  const int Cg = C / G;
  for (int c = blockIdx.x; c < C; c += gridDim.x) {
    double sg = 0, sb = 0;
    for (size_t r = threadIdx.x; r < N * S; r += kThreads) {
      const size_t u = (r / S) * size_t(G) + size_t(c / Cg);
      const float d = dy[r * size_t(C) + size_t(c)];
      sg += double(d) * ((x[r * size_t(C) + size_t(c)] - save_mean[u]) * save_invstd[u]);
      sb += d;
    }
    sg = block_sum(sg);
    sb = block_sum(sb);
    if (threadIdx.x != 0) continue;
    if (dgamma) dgamma[c] = float(sg);
    if (dbeta) dbeta[c] = float(sb);
  }
}

void check_gn(size_t N, size_t S, int C, int G, const char* op) {
  if (C <= 0 || G <= 0 || C % G != 0) {
    throw_error(ErrorKind::Value, std::string(op) + ": groups (" + std::to_string(G) +
                                      ") must divide the channels (" + std::to_string(C) + ")");
  }
  if (S > 0 && N > size_t(-1) / S / size_t(C)) require_int_range(size_t(-1), op, "N*S*C");
}

unsigned blocks_for(size_t n) { return unsigned(n < 1 ? 1 : n > kMaxBlocks ? kMaxBlocks : n); }

}  // namespace

void groupnorm_fwd(float* y, float* save_mean, float* save_invstd, const float* x,
                   const float* gamma, const float* beta, size_t N, size_t S, int C, int G,
                   float eps, void* stream) {
  check_gn(N, S, C, G, "groupNormalization");
  if (N == 0 || S == 0) return;
  gn_fwd<<<blocks_for(N * size_t(G)), kThreads, 0, as_stream(stream)>>>(
      y, save_mean, save_invstd, x, gamma, beta, N, S, C, G, eps);
  check_launch("groupNormalization");
}

void groupnorm_bwd(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                   const float* save_mean, const float* save_invstd, const float* gamma,
                   size_t N, size_t S, int C, int G, void* stream) {
  check_gn(N, S, C, G, "groupNormalizationGrad");
  cudaStream_t s = as_stream(stream);
  if (N > 0 && S > 0) {
    gn_bwd_data<<<blocks_for(N * size_t(G)), kThreads, 0, s>>>(dx, dy, x, save_mean, save_invstd,
                                                               gamma, N, S, C, G);
    check_launch("groupNormalizationGrad");
  }
  if (dgamma || dbeta) {
    gn_bwd_params<<<blocks_for(size_t(C)), kThreads, 0, s>>>(dgamma, dbeta, dy, x, save_mean,
                                                            save_invstd, N, S, C, G);
    check_launch("groupNormalizationGrad");
  }
}

}  // namespace cuda
}  // namespace ck
