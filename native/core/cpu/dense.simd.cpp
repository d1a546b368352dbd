// Vectorized dense layer on the micro-kernels of gemm.simd.h: x [M,K], w [K,N] (in, out).
#include <cstring>

#include "dense_rows.h"
#include "gemm.simd.h"
#include "reference.h"
#include "simd_kernels.h"

namespace ck {
namespace CK_ISA_NS {

using gemm::cdiv;
using gemm::imax;
using gemm::imin;
using gemm::kL;
using gemm::kMaxMR;

// y = act(x w + b): the indirect GEMM with one segment per row.
void dense_fwd(float* y, const float* x, const float* w, const float* b, int M, int K, int N,
               Act act) {
  if (!epilogue_act(act)) {
    ref::dense_fwd(y, x, w, b, M, K, N, act);  // rejects the unsupported fused activation
    return;
  }
  if (M <= 0 || N <= 0) return;
  if (dense_rows_fwd(y, x, w, b, M, K, N, act)) return;  // a few rows: no packing
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
  gemm::igemm_run(plan, M, N, size_t(K), packed.data(), b, act, 1, 0, build);
}

// dx = dy w^T: the same GEMM over w packed transposed (a dot plan's [K][N] layout is w itself).
void dense_bwd_data(float* dx, const float* dy, const float* w, int M, int K, int N) {
  if (M <= 0 || K <= 0) return;
  const gemm::IgPlan plan = gemm::ig_plan(K);
  Scratch packed(gemm::packed_floats(plan, size_t(N), K));
  if (plan.dot) {
    std::memcpy(packed.data(), w, size_t(K) * N * sizeof(float));
  } else {
    gemm::pack_cols_transposed(packed.data(), size_t(N), K, plan.nv * kL, w, size_t(N));
  }
  auto build = [&](int m0, int cnt, const float** a, int* woff, int* len, float** out, float*) {
    for (int i = 0; i < cnt; ++i) {
      a[i] = dy + size_t(m0 + i) * N;
      out[i] = dx + size_t(m0 + i) * K;
    }
    woff[0] = 0;
    len[0] = N;
    return 1;
  };
  gemm::igemm_run(plan, M, K, size_t(N), packed.data(), nullptr, Act::None, 1, 0, build);
}

// dw = x^T dy, db = column sums of dy: outer products (gemm::op_tile) over blocks of rows of x
// and dy, both first copied into panels so that the micro-kernel streams contiguous memory
// whatever the row strides (a 4 KB stride maps every row to one cache set): dy by column blocks
// of dw, x by row blocks of dw. x is only copied when several column blocks reuse it: with one,
// the copy would cost as much as the product.
//
// When dw has enough rows, threads split them: all threads copy a block of rows of dy, then each
// multiplies its rows of dw, copying x's panels a group at a time into a buffer that stays in
// L2. Nothing is reduced across threads, so the result does not depend on the thread count.
// Otherwise threads split the rows of x into per-chunk partials that are added in chunk order.
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
  const bool pack_x = nkb > 1;
  const size_t dy_row = size_t(nkb) * WB;  // floats per packed row of dy

  // Rows [i0, i1) of the n rows of dy from r0 into panels: column block kb at dp + kb*n*WB as
  // [row][WB], zero-padded past N. Whole rows at a time: one sequential read stream.
  auto pack_dy = [&](float* dp, size_t r0, size_t n, size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; ++i) {
      const float* src = dy + (r0 + i) * N;
      for (int kb = 0; kb < nkb; ++kb) {
        float* d = dp + (size_t(kb) * n + i) * WB;
        for (int c = kb * WB; c < imin(N, (kb + 1) * WB); c += kL) {
          load_n(src + c, size_t(N - c)).store(d + c - kb * WB);
        }
      }
    }
  };
  // x's panels of the row blocks [g0, g1) of dw over the n rows from r0: block jb at
  // xp + x_panel(g0, jb, n) as [row][mb], then kPad floats so that successive panels start on
  // different cache sets (n*mb floats is often a multiple of 4 KB: panels that alias in L1 made
  // the copy about twice as slow) and a row's mb <= kMaxMR = 8 values can be moved as 8 floats,
  // the excess landing in the next row's slot or the pad.
  constexpr int kPad = 16;
  auto x_panel = [&](int g0, int jb, size_t n) {
    return size_t(jb_j0[jb] - jb_j0[g0]) * n + size_t(jb - g0) * kPad;
  };
  // Row blocks of dw per group: their x panels take up to ~512 KB, which stay in L2 while every
  // column block of dy passes. xbuf_floats(n) holds any group's panels and grows with n.
  constexpr size_t kGroupFloats = 131072;
  auto group_size = [&](size_t n) { return imax(1, int(kGroupFloats / (n * MBmax + kPad))); };
  auto xbuf_floats = [&](size_t n) -> size_t {
    if (!pack_x) return 0;
    const size_t all = x_panel(0, njb, n), one = n * MBmax + kPad;
    return all < kGroupFloats ? all : one > kGroupFloats ? one : kGroupFloats;
  };
  // The prefetcher does not follow the rows of x (each is often a page of its own): each row's
  // lines are fetched kAhead rows early.
  constexpr size_t kAhead = 16;
  auto pack_x_group = [&](float* xp, size_t r0, size_t n, int g0, int g1) {
    const int c0 = jb_j0[g0], c1 = jb_j0[g1];
    for (size_t i = 0; i < n; ++i) {
      const float* src = x + (r0 + i) * K;
      if (i + kAhead < n) {
        for (int c = c0; c < c1 + 16; c += 16) {
          prefetch(src + kAhead * K + imin(c, c1 - 1));
        }
      }
      for (int jb = g0; jb < g1; ++jb) {
        const int j0 = jb_j0[jb], mb = jb_j0[jb + 1] - j0;
        float* d = xp + x_panel(g0, jb, n) + i * mb;
        if (K - j0 >= kMaxMR) {
          std::memcpy(d, src + j0, kMaxMR * sizeof(float));
        } else {
          for (int j = 0; j < mb; ++j) d[j] = src[j0 + j];
        }
      }
    }
  };
  // dwc's rows of the row blocks [jb0, jb1) += (or = with overwrite) their product over the n
  // rows from r0 (dy packed in dp; x packed into xbuf group by group).
  auto multiply = [&](float* dwc, float* xbuf, const float* dp, size_t r0, size_t n, int jb0,
                      int jb1, bool overwrite) {
    gemm::OpRun run;
    gemm::OpTile t;
    t.ldw = size_t(N);
    t.runs = &run;
    t.nruns = 1;
    t.dy_off = 0;
    t.ds = size_t(WB);
    run.n = int(n);
    run.mlo = 0;
    const int G = pack_x ? group_size(n) : jb1 - jb0;
    for (int g0 = jb0; g0 < jb1; g0 += G) {
      const int g1 = imin(jb1, g0 + G);
      if (pack_x) pack_x_group(xbuf, r0, n, g0, g1);
      // Column blocks outer: one dy panel stays in L1/L2 across the group's tiles.
      for (int kb = 0; kb < nkb; ++kb) {
        t.col0 = kb * WB;
        t.ncols = imin(WB, N - t.col0);
        run.dy = dp + size_t(kb) * n * WB;
        const int nv = cdiv(t.ncols, kL);
        for (int jb = g0; jb < g1; ++jb) {
          const int j0 = jb_j0[jb], mb = jb_j0[jb + 1] - j0;
          run.x = pack_x ? xbuf + x_panel(g0, jb, n) : x + r0 * K + j0;
          run.mhi = mb;
          t.xs = pack_x ? size_t(mb) : size_t(K);
          t.dw = dwc + size_t(j0) * N;
          (overwrite ? gemm::op_fn<true>(mb, nv) : gemm::op_fn<false>(mb, nv))(t);
        }
      }
    }
  };
  // dbc's columns of the column blocks [kb0, kb1) += their sums over the n packed rows, in row
  // order (the same bits however the blocks are shared out).
  auto sum_cols = [&](float* dbc, const float* dp, size_t n, int kb0, int kb1) {
    for (int kb = kb0; kb < kb1; ++kb) {
      for (int c = kb * WB; c < imin(N, (kb + 1) * WB); c += kL) {
        const float* p = dp + size_t(kb) * n * WB + (c - kb * WB);
        Vec sum = load_n(dbc + c, size_t(N - c));
        for (size_t i = 0; i < n; ++i) sum = sum + Vec::load(p + i * WB);
        store_n(dbc + c, sum, size_t(N - c));
      }
    }
  };

  const size_t rows = size_t(imax(M, 0));
  const double flops = 2.0 * double(rows) * double(wsize);
  const int T = num_threads();
  // Rows per block, except for the large blocks of copied x below: a block's rows of x and dy
  // panels take up to ~512 KB, so that the lines of x a tile reads in place (one per row; a
  // 4 KB row stride leaves them few cache sets) are still in L2 for the next row block of dw.
  const size_t pb_small = size_t(imin(512, imax(8, int(131072 / (size_t(K) + dy_row)))));
  if (M > 0 && njb >= 4 * T && flops >= 2 * gemm::kMinChunkFlops) {
    const size_t grain = gemm::grain_for(flops / njb);
    const int chunks = parallel_chunks(size_t(njb), grain);
    if (db) std::memset(db, 0, size_t(N) * sizeof(float));
    if (!pack_x) {
      // A single column block of dy: each thread copies it for itself, in one parallel region.
      const size_t nblk = gemm::cdivz(rows, pb_small), pb = gemm::cdivz(rows, nblk);
      parallel_for(size_t(njb), grain, [&](size_t jb0, size_t jb1, int c) {
        Scratch dpanel(dy_row * pb);
        for (size_t r0 = 0; r0 < rows; r0 += pb) {
          const size_t n = pb < rows - r0 ? pb : rows - r0;
          pack_dy(dpanel.data(), r0, n, 0, n);
          if (db) sum_cols(db, dpanel.data(), n, nkb * c / chunks, nkb * (c + 1) / chunks);
          multiply(dw, nullptr, dpanel.data(), r0, n, int(jb0), int(jb1), r0 == 0);
        }
      });
      return;
    }
    // Blocks of up to 1024 rows (each dw tile is loaded and stored once per block), fewer when
    // dy's panels would pass 4 MB; all threads copy a block of dy before any multiplies it.
    const size_t pb_max = size_t(imax(64, imin(1024, int((size_t(1) << 20) / dy_row))));
    const size_t nblk = gemm::cdivz(rows, pb_max), pb = gemm::cdivz(rows, nblk);
    Scratch dpanels(dy_row * pb);
    const size_t pack_grain = gemm::cdivz(size_t(1) << 18, dy_row);
    for (size_t r0 = 0; r0 < rows; r0 += pb) {
      const size_t n = pb < rows - r0 ? pb : rows - r0;
      float* dp = dpanels.data();
      parallel_for(n, pack_grain, [&](size_t i0, size_t i1, int) { pack_dy(dp, r0, n, i0, i1); });
      // Chunk c also adds its share of dy's column blocks into db.
      parallel_for(size_t(njb), grain, [&](size_t jb0, size_t jb1, int c) {
        if (db) sum_cols(db, dp, n, nkb * c / chunks, nkb * (c + 1) / chunks);
        Scratch xbuf(xbuf_floats(n));
        multiply(dw, xbuf.data(), dp, r0, n, int(jb0), int(jb1), r0 == 0);
      });
    }
    return;
  }
  const size_t grain = gemm::grain_for(2.0 * double(wsize));
  gemm::chunked_accumulate(dw, wsize, db, N, rows, grain,
                           [&](float* dwc, float* dbc, size_t b, size_t e) {
    const size_t nblk = gemm::cdivz(e - b, pb_small), pb = gemm::cdivz(e - b, nblk);
    Scratch panels(dy_row * pb + xbuf_floats(pb));
    float* dp = panels.data();
    for (size_t r0 = b; r0 < e; r0 += pb) {
      const size_t n = pb < e - r0 ? pb : e - r0;
      pack_dy(dp, r0, n, 0, n);
      if (dbc) sum_cols(dbc, dp, n, 0, nkb);
      multiply(dwc, dp + dy_row * pb, dp, r0, n, 0, njb, false);
    }
  });
}

}  // namespace CK_ISA_NS
}  // namespace ck
