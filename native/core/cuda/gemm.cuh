// The tiled SGEMM core behind conv2d (implicit GEMM) and dense: C[M,N] = sum_k A[m,k] B[k,n],
// row-major C, with operands read through "loaders" so that convolutions never materialize
// im2col. Block tiles BM x BN live in shared memory (double-buffered, BK deep, filled from
// registers prefetched one stage ahead); each thread accumulates a TM x TN register block.
// Split-K: blockIdx.z takes a fixed chunk of the reduction and writes its partial tile to a
// workspace; a second kernel sums the partials in split order (deterministic, no atomics).
//
// A loader gives four values along its contiguous ("fast") dimension:
//   static constexpr bool kRedFast;   // fast along the reduction (k) or along the outer (m / n)
//   struct State;                     // per-thread precomputation for one outer index
//   State setup(int outer) const;     // outer: the row (red-fast) or first of 4 rows
//   void load(const State&, int outer, int red, float (&v)[4]) const;
//        red-fast:   v[i] = elem(outer, red + i);   outer-fast: v[i] = elem(outer + i, red)
// with zeros outside the operand (outer >= its size, red >= the reduction length).
#pragma once
#include <type_traits>

#include "cuda_common.cuh"

namespace ck {
namespace cuda {

template <int BM_, int BN_, int BK_, int TM_, int TN_>
struct GemmCfg {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
  static constexpr int kThreads = (BM / TM) * (BN / TN);
  static constexpr int kPassesA = BM * BK / (4 * kThreads);
  static constexpr int kPassesB = BN * BK / (4 * kThreads);
  static_assert(TM == 4 || TM == 8, "TM");
  static_assert(TN == 4 || TN == 8, "TN");
  static_assert(kPassesA >= 1 && kPassesA * 4 * kThreads == BM * BK, "A tile / threads");
  static_assert(kPassesB >= 1 && kPassesB * 4 * kThreads == BN * BK, "B tile / threads");
};

using Cfg128x128 = GemmCfg<128, 128, 8, 8, 8>;  // 256 threads
using Cfg128x64 = GemmCfg<128, 64, 8, 8, 8>;    // 128 threads
using Cfg64x32 = GemmCfg<64, 32, 16, 8, 4>;     // 64 threads

struct GemmEpilogue {
  float* c;            // [M, N] row-major (used when splits == 1)
  float* ws;           // [splits, M, N] partials (when splits > 1)
  const float* bias;   // [N] or null
  int relu;            // fused ReLU: v > 0 ? v : 0 (NaN -> 0, as the reference)
  int vec;             // N % 4 == 0 and c 16-byte aligned: float4 stores
};

// Row (col) of the i-th value of a thread's register block: TM == 8 splits it into two
// 4-row groups BM/2 apart, which keeps the shared-memory reads conflict-free.
template <int T, int B>
__device__ __forceinline__ int block_index(int t, int i) {
  return T == 8 ? (i < 4 ? t * 4 + i : B / 2 + t * 4 + (i - 4)) : t * 4 + i;
}

// One operand's OUTER x BK tile staged through registers into shared memory: load() reads the
// next reduction step's values (prefetched while the current tile is being multiplied), store()
// writes them k-major (tile[red][outer]) through `cvt` (the element type's rounding).
template <class L, int OUTER, int BK, int T>
struct OperandStage {
  static constexpr int P = OUTER * BK / (4 * T);
  // Each load pass covers 4*T elements of the tile: (outer, red) coordinates of this thread's 4.
  int outer[P], red[P];
  typename L::State st[P];
  float r[P][4];

  __device__ __forceinline__ OperandStage(const L& l, int tid, int o0) {
#pragma unroll
    for (int p = 0; p < P; ++p) {
      const int idx = tid + p * T;
      if (L::kRedFast) {
        outer[p] = idx / (BK / 4), red[p] = (idx % (BK / 4)) * 4;
      } else {
        red[p] = idx / (OUTER / 4), outer[p] = (idx % (OUTER / 4)) * 4;
      }
      st[p] = l.setup(o0 + outer[p]);
    }
  }

  __device__ __forceinline__ void load(const L& l, int o0, int k0) {
#pragma unroll
    for (int p = 0; p < P; ++p) l.load(st[p], o0 + outer[p], k0 + red[p], r[p]);
  }

  template <class E, int LD, class Cvt>
  __device__ __forceinline__ void store(E (&tile)[BK][LD], Cvt cvt) const {
#pragma unroll
    for (int p = 0; p < P; ++p) {
      E* at = &tile[red[p]][outer[p]];
      if constexpr (L::kRedFast) {
#pragma unroll
        for (int i = 0; i < 4; ++i) at[i * LD] = cvt(r[p][i]);
      } else if constexpr (std::is_same<E, float>::value) {
        *reinterpret_cast<float4*>(at) =
            make_float4(cvt(r[p][0]), cvt(r[p][1]), cvt(r[p][2]), cvt(r[p][3]));
      } else {
#pragma unroll
        for (int i = 0; i < 4; ++i) at[i] = cvt(r[p][i]);
      }
    }
  }
};

// Both operands of a BM x BN block tile, and the block's double-buffered reduction loop.
template <class LA, class LB, int BM, int BN, int BK, int T>
struct TileStager {
  OperandStage<LA, BM, BK, T> a;
  OperandStage<LB, BN, BK, T> b;

  __device__ __forceinline__ TileStager(const LA& la, const LB& lb, int tid, int m0, int n0)
      : a(la, tid, m0), b(lb, tid, n0) {}

  // The block's reduction over [k_begin, k_end): each BK-deep step is multiplied by
  // multiply(buf) from shared buffer `buf` while the next step's values are loaded into
  // registers, then stored into the other buffer (one barrier per step).
  template <class E, int LDA, int LDB, class Cvt, class Multiply>
  __device__ __forceinline__ void pipeline(const LA& la, const LB& lb, int m0, int n0, int k_begin,
                                           int k_end, E (&As)[2][BK][LDA], E (&Bs)[2][BK][LDB],
                                           Cvt cvt, Multiply&& multiply) {
    if (k_begin >= k_end) return;
    a.load(la, m0, k_begin), b.load(lb, n0, k_begin);
    a.store(As[0], cvt), b.store(Bs[0], cvt);
    __syncthreads();
    int buf = 0;
    for (int k0 = k_begin; k0 < k_end; k0 += BK) {
      const bool more = k0 + BK < k_end;
      if (more) a.load(la, m0, k0 + BK), b.load(lb, n0, k0 + BK);
      multiply(buf);
      if (more) a.store(As[buf ^ 1], cvt), b.store(Bs[buf ^ 1], cvt);
      __syncthreads();
      buf ^= 1;
    }
  }
};

struct KeepFloat {
  __device__ __forceinline__ float operator()(float v) const { return v; }
};

template <class Cfg, class LA, class LB>
__global__ void __launch_bounds__(Cfg::kThreads, 512 / Cfg::kThreads)
    gemm_kernel(const LA la, const LB lb, const GemmEpilogue ep, int M, int N, int Kred,
                int chunk) {
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, TM = Cfg::TM, TN = Cfg::TN;
  constexpr int LDA = BM + 4, LDB = BN + 4;
  __shared__ __align__(16) float As[2][BK][LDA];
  __shared__ __align__(16) float Bs[2][BK][LDB];

  const int tid = threadIdx.x;
  const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;
  const int k_begin = blockIdx.z * chunk;
  const int k_end = min(Kred, k_begin + chunk);
  TileStager<LA, LB, BM, BN, BK, Cfg::kThreads> st(la, lb, tid, m0, n0);

  const int tx = tid % (BN / TN), ty = tid / (BN / TN);
  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.f;

  st.pipeline(la, lb, m0, n0, k_begin, k_end, As, Bs, KeepFloat{}, [&](int buf) {
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      float a[TM], b[TN];
#pragma unroll
      for (int g = 0; g < TM / 4; ++g) {
        float4 t = *reinterpret_cast<const float4*>(&As[buf][k][g * (BM / 2) + ty * 4]);
        a[g * 4 + 0] = t.x, a[g * 4 + 1] = t.y, a[g * 4 + 2] = t.z, a[g * 4 + 3] = t.w;
      }
#pragma unroll
      for (int g = 0; g < TN / 4; ++g) {
        float4 t = *reinterpret_cast<const float4*>(&Bs[buf][k][g * (BN / 2) + tx * 4]);
        b[g * 4 + 0] = t.x, b[g * 4 + 1] = t.y, b[g * 4 + 2] = t.z, b[g * 4 + 3] = t.w;
      }
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
  });

  // Epilogue: partial tile to the workspace, or bias + ReLU to C.
  const bool partial = gridDim.z > 1;
  float* out = partial ? ep.ws + size_t(blockIdx.z) * size_t(M) * N : ep.c;
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int row = m0 + block_index<TM, BM>(ty, i);
    if (row >= M) continue;
    float* orow = out + size_t(row) * N;
#pragma unroll
    for (int g = 0; g < TN / 4; ++g) {
      const int col = n0 + block_index<TN, BN>(tx, g * 4);
      float v[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        v[j] = acc[i][g * 4 + j];
        if (!partial) {
          if (ep.bias && col + j < N) v[j] += __ldg(ep.bias + col + j);
          if (ep.relu && !(v[j] > 0.f)) v[j] = 0.f;
        }
      }
      if (ep.vec && col + 3 < N) {
        *reinterpret_cast<float4*>(orow + col) = make_float4(v[0], v[1], v[2], v[3]);
      } else {
#pragma unroll
        for (int j = 0; j < 4; ++j)
          if (col + j < N) orow[col + j] = v[j];
      }
    }
  }
}

// c[i] = act(sum_s ws[s][i] + bias[i % N]), the partials summed in split order (reduce.cu).
void splitk_reduce(float* c, const float* ws, const float* bias, bool relu, int splits, int M,
                   int N, cudaStream_t stream, const char* op);

// Dense row-major matrix operand: elem(outer, red) = p[outer * ld + red] (red-fast) or
// p[red * ld + outer] (outer-fast).
template <bool kRedFast_>
struct MatLoader {
  static constexpr bool kRedFast = kRedFast_;
  const float* p;
  int outer_n, red_n, ld;
  int vec;  // ld % 4 == 0 and p 16-byte aligned
  struct State {};
  __device__ __forceinline__ State setup(int) const { return {}; }
  __device__ __forceinline__ void load(const State&, int outer, int red, float (&v)[4]) const {
    if (kRedFast) {
      if (outer >= outer_n) {
        v[0] = v[1] = v[2] = v[3] = 0.f;
        return;
      }
      const float* row = p + size_t(outer) * ld;
      if (vec && red + 3 < red_n) {
        float4 t = __ldg(reinterpret_cast<const float4*>(row + red));
        v[0] = t.x, v[1] = t.y, v[2] = t.z, v[3] = t.w;
      } else {
#pragma unroll
        for (int i = 0; i < 4; ++i) v[i] = red + i < red_n ? __ldg(row + red + i) : 0.f;
      }
    } else {
      if (red >= red_n) {
        v[0] = v[1] = v[2] = v[3] = 0.f;
        return;
      }
      const float* row = p + size_t(red) * ld;
      if (vec && outer + 3 < outer_n) {
        float4 t = __ldg(reinterpret_cast<const float4*>(row + outer));
        v[0] = t.x, v[1] = t.y, v[2] = t.z, v[3] = t.w;
      } else {
#pragma unroll
        for (int i = 0; i < 4; ++i) v[i] = outer + i < outer_n ? __ldg(row + outer + i) : 0.f;
      }
    }
  }
};

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// How many reduction chunks a GEMM with `tiles` output tiles gets: enough blocks to fill a large
// GPU, each chunk at least 256 deep, the workspace bounded. Depends on the shape alone, so the
// summation order (and the result) does not depend on the device.
int choose_splits(long long tiles, int threads, int Kred, int BK, long long MN, int* chunk);

// Launches `kernel` (gemm_kernel or gemm_tc_kernel) over the output tiles, with the reduction
// split per choose_splits and the partials summed by splitk_reduce.
template <class Cfg, class LA, class LB>
void gemm_run(void (*kernel)(const LA, const LB, const GemmEpilogue, int, int, int, int),
              const LA& la, const LB& lb, float* c, const float* bias, bool relu, int M, int N,
              int Kred, cudaStream_t stream, const char* op) {
  if (M <= 0 || N <= 0) return;
  const long long gm = (M + Cfg::BM - 1) / Cfg::BM, gn = (N + Cfg::BN - 1) / Cfg::BN;
  if (gn > 65535) require_int_range(size_t(-1), op, "output columns");
  int chunk = 0;
  const int splits =
      choose_splits(gm * gn, Cfg::kThreads, Kred, Cfg::BK, (long long)M * N, &chunk);
  Scratch ws(splits > 1 ? size_t(splits) * size_t(M) * size_t(N) * sizeof(float) : 0, stream);
  GemmEpilogue ep{c, ws.as<float>(), bias, relu ? 1 : 0, (N % 4 == 0 && aligned16(c)) ? 1 : 0};
  dim3 grid{unsigned(gm), unsigned(gn), unsigned(splits)};
  kernel<<<grid, Cfg::kThreads, 0, stream>>>(la, lb, ep, M, N, Kred, chunk);
  check_launch(op);
  if (splits > 1) {
    splitk_reduce(c, ws.as<float>(), bias, relu, splits, M, N, stream, op);
  }
}

// The fp32 CUDA-core GEMM for an M x N output: wide tiles for wide outputs, narrow ones for the
// few-channel layers and small batches.
template <class LA, class LB>
void gemm_fp32(const LA& la, const LB& lb, float* c, const float* bias, bool relu, int M, int N,
               int Kred, cudaStream_t stream, const char* op) {
  auto run = [&](auto cfg) {
    using Cfg = decltype(cfg);
    gemm_run<Cfg>(gemm_kernel<Cfg, LA, LB>, la, lb, c, bias, relu, M, N, Kred, stream, op);
  };
  if (N > 64 && M > 64) {
    run(Cfg128x128{});
  } else if (N > 32 && M > 64) {
    run(Cfg128x64{});
  } else {
    run(Cfg64x32{});
  }
}

// Column sums of in [B, rows, cols] -> out [B, cols] = sum_rows / divisor, summed in a fixed
// order (chunks of rows, then chunks in order). reduce.cu.
void column_sums(float* out, const float* in, int batches, size_t rows, int cols, float divisor,
                 cudaStream_t stream, const char* op);

}  // namespace cuda
}  // namespace ck
