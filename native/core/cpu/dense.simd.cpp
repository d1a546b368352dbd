// Vectorized dense layer on the micro-kernels of gemm.simd.h: x [M,K], w [K,N] (in, out).
#include <cstring>

#include "gemm.simd.h"
#include "reference.h"
#include "simd_kernels.h"

namespace ck {
namespace CK_ISA_NS {

using gemm::cdiv;
using gemm::imax;
using gemm::imin;
using gemm::kL;

// y = act(x w + b): the indirect GEMM with one segment per row.
void dense_fwd(float* y, const float* x, const float* w, const float* b, int M, int K, int N,
               Act act) {
  if (act != Act::None && act != Act::Relu) {
    ref::dense_fwd(y, x, w, b, M, K, N, act);  // rejects the unsupported fused activation
    return;
  }
  if (M <= 0 || N <= 0) return;
  const gemm::IgPlan plan = gemm::ig_plan(N);
  Scratch packed(gemm::packed_floats(plan, size_t(K), N));
  gemm::pack_weights(plan, packed.data(), size_t(K), N, 1, [&](size_t i) { return w + i * N; });
  auto build = [&](int m0, int cnt, const float** a, int* woff, int* len, float** out, float*) {
    for (int i = 0; i < cnt; ++i) {
      a[i] = x + size_t(m0 + i) * K;
      out[i] = y + size_t(m0 + i) * N;
    }
    woff[0] = 0;
    len[0] = K;
    return 1;
  };
  gemm::igemm_run(plan, M, N, size_t(K), packed.data(), b, act == Act::Relu, 1, 0, build);
}

// dx = dy w^T: the same GEMM over w packed transposed.
void dense_bwd_data(float* dx, const float* dy, const float* w, int M, int K, int N) {
  if (M <= 0 || K <= 0) return;
  const gemm::IgPlan plan = gemm::ig_plan(K);
  Scratch packed(gemm::packed_floats(plan, size_t(N), K));
  gemm::pack_weights(plan, packed.data(), size_t(N), K, size_t(N), [&](size_t j) { return w + j; });
  auto build = [&](int m0, int cnt, const float** a, int* woff, int* len, float** out, float*) {
    for (int i = 0; i < cnt; ++i) {
      a[i] = dy + size_t(m0 + i) * N;
      out[i] = dx + size_t(m0 + i) * K;
    }
    woff[0] = 0;
    len[0] = N;
    return 1;
  };
  gemm::igemm_run(plan, M, K, size_t(N), packed.data(), nullptr, false, 1, 0, build);
}

// dw = x^T dy, db = column sums of dy: outer products over blocks of rows of x and dy, each
// block first copied into panels (x by row blocks of dw, dy by column blocks) so that the
// micro-kernel streams contiguous memory whatever the row strides (a 4 KB stride would alias
// every row to one cache set). Threads split the rows of dw when there are enough (no
// reduction at all: the result does not depend on the thread count), else the rows of x into
// per-chunk partials that are added in chunk order.
void dense_bwd_filter(float* dw, float* db, const float* dy, const float* x, int M, int K,
                      int N) {
  if (N <= 0) return;
  const gemm::IgPlan plan = gemm::op_plan(N);
  const int MBmax = plan.mr, WB = plan.nv * kL, nkb = cdiv(N, WB);
  const int njb = K <= 0 ? 0 : cdiv(K, MBmax);
  // Row blocks of dw: [jb_j0[i], jb_j0[i+1]), balanced sizes of at most MBmax.
  gemm::Arena jarena(gemm::Arena::bytes_for(size_t(njb) + 1, sizeof(int)));
  int* jb_j0 = jarena.take<int>(size_t(njb) + 1);
  for (int i = 0; i <= njb; ++i) jb_j0[i] = int(size_t(K) * i / size_t(njb ? njb : 1));
  const size_t wsize = size_t(K) * N;
  // Rows of x per block: the x and dy panels of a block take up to ~512 KB (L2).
  const int pb_max = imin(512, imax(8, int(131072 / (size_t(K) + size_t(nkb) * WB))));
  // With a single column block each x value is read once: copying it would cost as much as
  // the product, so x is only packed when several column blocks reuse it.
  const bool pack_x = nkb > 1;

  // dwc[j0(jb0) .. j0(jb1)) += the rows [b, e) of x^T dy.
  auto accumulate = [&](float* dwc, size_t b, size_t e, int jb0, int jb1) {
    if (b >= e || jb0 >= jb1) return;
    const int jbase = jb_j0[jb0], ncol_x = jb_j0[jb1] - jbase;
    const size_t nblk = (e - b + size_t(pb_max) - 1) / size_t(pb_max);
    const size_t pb = (e - b + nblk - 1) / nblk;  // balanced blocks of at most pb_max rows
    Scratch panels((size_t(pack_x ? ncol_x : 0) + size_t(nkb) * WB) * pb);
    float* xp = panels.data();                             // [jb][row][mb] at (j0-jbase)*rows
    float* dp = xp + size_t(pack_x ? ncol_x : 0) * pb;     // [kb][row][WB]
    gemm::OpRun run;
    gemm::OpTile t;
    t.ldw = size_t(N);
    t.runs = &run;
    t.nruns = 1;
    t.dy_off = 0;
    t.ds = size_t(WB);
    for (size_t rb = b; rb < e; rb += pb) {
      const size_t re = rb + pb < e ? rb + pb : e;
      const size_t n = re - rb;
      for (size_t i = 0; i < n; ++i) {
        const float* xr = x + (rb + i) * K;
        for (int jb = jb0; jb < jb1 && pack_x; ++jb) {
          const int j0 = jb_j0[jb], mb = jb_j0[jb + 1] - j0;
          float* d = xp + size_t(j0 - jbase) * n + i * mb;
          for (int j = 0; j < mb; ++j) d[j] = xr[j0 + j];
        }
        const float* dr = dy + (rb + i) * N;
        for (int kb = 0; kb < nkb; ++kb) {
          const int c0 = kb * WB, nc = imin(WB, N - c0);
          float* d = dp + (size_t(kb) * n + i) * WB;
          for (int j = 0; j < nc; ++j) d[j] = dr[c0 + j];
        }
      }
      for (int kb = 0; kb < nkb; ++kb) {
        t.col0 = kb * WB;
        t.ncols = imin(WB, N - t.col0);
        run.dy = dp + size_t(kb) * n * WB;
        run.n = int(n);
        run.mlo = 0;
        const int nv = cdiv(t.ncols, kL);
        for (int jb = jb0; jb < jb1; ++jb) {
          const int j0 = jb_j0[jb], mb = jb_j0[jb + 1] - j0;
          run.x = pack_x ? xp + size_t(j0 - jbase) * n : x + rb * K + j0;
          run.mhi = mb;
          t.xs = pack_x ? size_t(mb) : size_t(K);
          t.dw = dwc + size_t(j0) * N;
          gemm::op_fn(mb, nv)(t);
        }
      }
    }
  };

  const size_t rows = size_t(imax(M, 0));
  const double flops = 2.0 * double(rows) * double(wsize);
  const int T = num_threads();
  if (M > 0 && njb >= 4 * T && flops >= 2 * gemm::kMinChunkFlops) {
    // Split dw by row blocks; db is a cheap serial column sum.
    const size_t grain = gemm::grain_for(flops / njb);
    parallel_for(size_t(njb), grain, [&](size_t jb0, size_t jb1, int) {
      const size_t r0 = size_t(jb_j0[jb0]), r1 = size_t(jb_j0[jb1]);
      std::memset(dw + r0 * N, 0, (r1 - r0) * N * sizeof(float));
      accumulate(dw, 0, rows, int(jb0), int(jb1));
    });
    if (db) {
      std::memset(db, 0, size_t(N) * sizeof(float));
      gemm::add_rows(db, dy, rows, N);
    }
    return;
  }
  const size_t grain = gemm::grain_for(2.0 * double(wsize));
  gemm::chunked_accumulate(dw, wsize, db, N, rows, grain,
                           [&](float* dwc, float* dbc, size_t b, size_t e) {
    accumulate(dwc, b, e, 0, njb);
    if (dbc) gemm::add_rows(dbc, dy + b * N, e - b, N);
  });
}

}  // namespace CK_ISA_NS
}  // namespace ck
