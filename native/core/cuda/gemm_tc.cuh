// The tensor-core GEMM behind ck.setPrecision('tf32' | 'bf16'): the loaders, tiles and split-K
// of gemm.cuh, with the block tile multiplied by warp matrix operations (wmma) instead of
// per-thread FMAs. Operands are rounded once, as they enter shared memory (TF32: to nearest, ties
// away, as cvt.rna; bf16: to nearest even); products accumulate in fp32 fragments, and the
// epilogue (bias, ReLU, or the split-K partial) runs on fp32 values, so results and gradients
// stay fp32. Needs sm_80+: on older GPUs, and in fp32 mode, gemm() runs the fp32 kernel.
#pragma once
#include <cuda_bf16.h>
#include <mma.h>

#include "../precision.h"
#include "gemm.cuh"

// TF32 and bf16 warp matrix operations exist from sm_80 on: the device passes for older GPUs
// compile the kernel empty (the host never launches it there).
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
#define CK_TENSOR_CORE_MMA 1
#endif

namespace ck {
namespace cuda {

// BM x BN block tiles, BK = 16 deep, WARPS_M x WARPS_N warps each owning a (BM/WARPS_M) x
// (BN/WARPS_N) tile of 16 x 16 accumulator fragments.
template <int BM_, int BN_, int WARPS_M_, int WARPS_N_>
struct TcCfg {
  static constexpr int BM = BM_, BN = BN_, BK = 16, WARPS_M = WARPS_M_, WARPS_N = WARPS_N_;
  static constexpr int kWarps = WARPS_M * WARPS_N, kThreads = 32 * kWarps;
  static constexpr int WTM = BM / WARPS_M, WTN = BN / WARPS_N, FM = WTM / 16, FN = WTN / 16;
  static_assert(FM >= 1 && FN >= 1 && WTM % 16 == 0 && WTN % 16 == 0, "warp tile");
  static_assert(BM * BK % (4 * kThreads) == 0 && BN * BK % (4 * kThreads) == 0, "tile / threads");
};
using Tc128x128 = TcCfg<128, 128, 2, 4>;  // 256 threads, 64 x 32 per warp
using Tc64x64 = TcCfg<64, 64, 2, 2>;      // 128 threads, 32 x 32 per warp

// Per precision: the shared-memory element, the fragment type, the mma depth, and the rounding of
// an operand as it enters shared memory.
struct Tf32Math {
  static constexpr int K = 8;
#ifdef CK_TENSOR_CORE_MMA
  using Elem = float;
  using Frag = nvcuda::wmma::precision::tf32;
  __device__ __forceinline__ float operator()(float v) const {
    return nvcuda::wmma::__float_to_tf32(v);
  }
#endif
};

struct Bf16Math {
  static constexpr int K = 16;
#ifdef CK_TENSOR_CORE_MMA
  using Elem = __nv_bfloat16;
  using Frag = __nv_bfloat16;
  __device__ __forceinline__ __nv_bfloat16 operator()(float v) const { return __float2bfloat16(v); }
#endif
};

template <class Cfg, class Math, class LA, class LB>
__global__ void __launch_bounds__(Cfg::kThreads)
    gemm_tc_kernel(const LA la, const LB lb, const GemmEpilogue ep, int M, int N, int Kred,
                   int chunk) {
#ifdef CK_TENSOR_CORE_MMA
  namespace wmma = nvcuda::wmma;
  using E = typename Math::Elem;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, KS = Math::K;
  // Rows padded by 32 bytes: every fragment pointer stays 256-bit aligned (wmma's rule) and
  // successive rows start in different banks.
  constexpr int LDA = BM + 32 / int(sizeof(E)), LDB = BN + 32 / int(sizeof(E));
  __shared__ __align__(32) E As[2][BK][LDA];
  __shared__ __align__(32) E Bs[2][BK][LDB];
  __shared__ __align__(32) float stage[Cfg::kWarps][16 * 16];

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int wm = warp % Cfg::WARPS_M, wn = warp / Cfg::WARPS_M;
  const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;
  const int k_begin = blockIdx.z * chunk;
  const int k_end = min(Kred, k_begin + chunk);
  TileStager<LA, LB, BM, BN, BK, Cfg::kThreads> st(la, lb, tid, m0, n0);

  wmma::fragment<wmma::accumulator, 16, 16, KS, float> acc[Cfg::FM][Cfg::FN];
#pragma unroll
  for (int i = 0; i < Cfg::FM; ++i)
#pragma unroll
    for (int j = 0; j < Cfg::FN; ++j) wmma::fill_fragment(acc[i][j], 0.f);

  st.pipeline(la, lb, m0, n0, k_begin, k_end, As, Bs, Math{}, [&](int buf) {
#pragma unroll
    for (int kk = 0; kk < BK; kk += KS) {
      wmma::fragment<wmma::matrix_a, 16, 16, KS, typename Math::Frag, wmma::col_major> a[Cfg::FM];
      wmma::fragment<wmma::matrix_b, 16, 16, KS, typename Math::Frag, wmma::row_major> b[Cfg::FN];
#pragma unroll
      for (int i = 0; i < Cfg::FM; ++i)
        wmma::load_matrix_sync(a[i], &As[buf][kk][wm * Cfg::WTM + i * 16], LDA);
#pragma unroll
      for (int j = 0; j < Cfg::FN; ++j)
        wmma::load_matrix_sync(b[j], &Bs[buf][kk][wn * Cfg::WTN + j * 16], LDB);
#pragma unroll
      for (int i = 0; i < Cfg::FM; ++i)
#pragma unroll
        for (int j = 0; j < Cfg::FN; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
  });

  // Epilogue, one 16 x 16 fragment at a time through the warp's staging tile: the partial tile
  // to the workspace, or bias + ReLU to C.
  const bool partial = gridDim.z > 1;
  float* out = partial ? ep.ws + size_t(blockIdx.z) * size_t(M) * N : ep.c;
  float* tile = stage[warp];
#pragma unroll
  for (int i = 0; i < Cfg::FM; ++i) {
#pragma unroll
    for (int j = 0; j < Cfg::FN; ++j) {
      wmma::store_matrix_sync(tile, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      const int row0 = m0 + wm * Cfg::WTM + i * 16, col0 = n0 + wn * Cfg::WTN + j * 16;
      for (int e = lane; e < 16 * 16; e += 32) {
        const int row = row0 + e / 16, col = col0 + e % 16;
        if (row >= M || col >= N) continue;
        float v = tile[e];
        if (!partial) {
          if (ep.bias) v += __ldg(ep.bias + col);
          if (ep.relu && !(v > 0.f)) v = 0.f;
        }
        out[size_t(row) * N + col] = v;
      }
      __syncwarp();
    }
  }
#endif
}

// Whether the current device has TF32 / bf16 tensor cores (sm_80+). reduce.cu.
bool tensor_cores_available();

// C[M,N] = A B (+ bias, ReLU) in the calling thread's precision (precision.h).
template <class LA, class LB>
void gemm(const LA& la, const LB& lb, float* c, const float* bias, bool relu, int M, int N,
          int Kred, cudaStream_t stream, const char* op) {
  const MathPrecision prec = math_precision();
  if (prec == MathPrecision::Fp32 || !tensor_cores_available()) {
    return gemm_fp32(la, lb, c, bias, relu, M, N, Kred, stream, op);
  }
  auto run = [&](auto cfg, auto math) {
    using Cfg = decltype(cfg);
    gemm_run<Cfg>(gemm_tc_kernel<Cfg, decltype(math), LA, LB>, la, lb, c, bias, relu, M, N, Kred,
                  stream, op);
  };
  const bool wide = M > 64 && N > 64;
  if (prec == MathPrecision::Tf32) {
    wide ? run(Tc128x128{}, Tf32Math{}) : run(Tc64x64{}, Tf32Math{});
  } else {
    wide ? run(Tc128x128{}, Bf16Math{}) : run(Tc64x64{}, Bf16Math{});
  }
}

}  // namespace cuda
}  // namespace ck
