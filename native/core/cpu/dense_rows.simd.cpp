// Dense forward for a few rows (batch-1 and small-batch inference): y = x W + b, read straight
// from W's [K][N] rows. The GEMM of dense.simd.cpp packs W into column blocks on every call,
// which for one row costs more than the product (W1's 1024x10 layer: ~5 us of copying for 20k
// multiply-adds). Each output vector sums its K terms in kUnroll interleaved partial sums that
// are added in a fixed order, so results do not depend on the thread count.
#include "../thread_pool.h"
#include "dense_rows.h"
#include "gemm.simd.h"

namespace ck {
namespace CK_ISA_NS {
namespace {

using gemm::cdiv;
using gemm::kL;

constexpr int kMaxRows = 4;  // more rows amortise packing: the GEMM wins
constexpr int kUnroll = 4;   // partial sums per output vector, hiding the FMA latency

// Rows [0, M) x output vectors [v0, v1): each vector of columns as kUnroll partial sums.
void rows_block(float* y, const float* x, const float* w, const float* b, int M, int K, int N,
                EpilogueClamp clamp, int v0, int v1) {
  for (int m = 0; m < M; ++m) {
    const float* xm = x + size_t(m) * K;
    float* ym = y + size_t(m) * N;
    for (int v = v0; v < v1; ++v) {
      const int col = v * kL, n = N - col < kL ? N - col : kL;
      Vec acc[kUnroll];
      for (int u = 0; u < kUnroll; ++u) acc[u] = Vec::zero();
      int k = 0;
      for (; k + kUnroll <= K; k += kUnroll) {
#pragma GCC unroll 4
        for (int u = 0; u < kUnroll; ++u) {
          acc[u] = fmadd(Vec::set1(xm[k + u]), load_n(w + size_t(k + u) * N + col, n), acc[u]);
        }
      }
      for (; k < K; ++k) acc[0] = fmadd(Vec::set1(xm[k]), load_n(w + size_t(k) * N + col, n), acc[0]);
      Vec sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
      if (b) sum = sum + load_n(b + col, n);
      if (clamp.relu) sum = max(sum, Vec::zero());
      if (clamp.relu6) sum = min(sum, Vec::set1(6.f));
      if (clamp.smooth) sum = gemm::smooth_act(sum, clamp.act);
      store_n(ym + col, sum, n);
    }
  }
}

}  // namespace

bool dense_rows_fwd(float* y, const float* x, const float* w, const float* b, int M, int K, int N,
                    Act act) {
  if (M > kMaxRows || M <= 0 || N <= 0 || !epilogue_act(act)) return false;
  const int nvec = cdiv(N, kL);
  // Column vectors split over the threads once the product is worth a hand-off.
  const size_t grain = gemm::grain_for(2.0 * M * K * kL);
  parallel_for(size_t(nvec), grain, [&](size_t v0, size_t v1, int) {
    rows_block(y, x, w, b, M, K, N, EpilogueClamp(act), int(v0), int(v1));
  });
  return true;
}

}  // namespace CK_ISA_NS
}  // namespace ck
