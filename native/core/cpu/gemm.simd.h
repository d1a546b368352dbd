// The register-blocked GEMM machinery shared by conv2d.simd.cpp and dense.simd.cpp (compiled
// once per ISA like them; everything lives in ck::CK_ISA_NS::gemm with internal linkage).
//
// 1. Indirect GEMM (forward and backward-data passes): out[m, :] = sum over segments t of
//    sum_c a[t][m][c] * Wpacked[t-offset + c, :]. A tile is MR output rows x NV vectors of output
//    columns held in registers; each segment gives one pointer per row (a filter tap's input
//    pixel, a zero buffer in the padding, or a small zero-padded copy for a pixel whose row of
//    taps is cut by the padding) and a run of `len` packed weight rows. No im2col: the
//    pointers index the activations in place. Weights are packed per call into
//    [column blocks of NV*L][reduction rows][NV*L], zero-padded past the last column.
// 2. Outer-product accumulation (backward-filter passes): dw[j, :] += sum over pixels of
//    x[pixel, j] * dy[pixel, :] for a block of MB consecutive rows j and NV vectors of columns,
//    over "runs" of pixels at a constant stride.
#pragma once
#include <cstring>

#include "../kernels.h"
#include "../memory.h"
#include "../thread_pool.h"
#include "simd.h"

// GCC 12 warns that _mm512_max_ps's internal _mm512_undefined_ps() "may be used uninitialized".
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace ck {
namespace CK_ISA_NS {
namespace gemm {
namespace {

constexpr int kL = Vec::kLanes;

// Least work worth handing to another thread (~8 us of one core). Pool workers poll for about
// 100 us after each job (spin_wait.h), so within a step or a predict loop a hand-off costs about
// a microsecond; only the first product after an idle spell pays a futex wake-up.
constexpr double kMinChunkFlops = 2e6;

// parallel_for grain (in items of `item_flops` each) that gives every chunk kMinChunkFlops.
inline size_t grain_for(double item_flops) {
  double g = kMinChunkFlops / (item_flops > 1.0 ? item_flops : 1.0);
  return g < 1.0 ? 1 : g > 1e9 ? size_t(1e9) : size_t(g);
}

inline int cdiv(int a, int b) { return (a + b - 1) / b; }
inline size_t cdivz(size_t a, size_t b) { return (a + b - 1) / b; }
inline int imin(int a, int b) { return a < b ? a : b; }
inline int imax(int a, int b) { return a > b ? a : b; }

// Carves typed arrays out of one Scratch allocation (64-byte aligned pieces).
class Arena {
 public:
  explicit Arena(size_t bytes)
      : buf_((bytes + 3) / 4 + 16), p_(reinterpret_cast<char*>(buf_.data())) {}
  template <class T>
  T* take(size_t n) {
    T* r = reinterpret_cast<T*>(p_);
    p_ += (n * sizeof(T) + 63) / 64 * 64;
    return r;
  }
  static size_t bytes_for(size_t n, size_t size) { return (n * size + 63) / 64 * 64; }

 private:
  Scratch buf_;
  char* p_;
};

// The smooth epilogue act (EpilogueClamp::smooth) of v, as activation_fwd computes it.
inline Vec smooth_act(Vec v, Act act) {
  switch (act) {
    case Act::Sigmoid: return sigmoid(v);
    case Act::Swish: return v * sigmoid(v);
    case Act::HardSwish: return v * hard_sigmoid(v);
    default: return v;
  }
}

// o[0, n) = smooth_act(o[0, n)) in place: the kernels store a block of outputs, then pass its
// rows through here while they are in L1. Out of line: inlined into every microkernel
// instantiation, the exp would multiply their code size for a call per output row.
inline __attribute__((noinline)) void smooth_epilogue(float* o, int n, Act act) {
  for (int c = 0; c < n; c += kL) store_n(o + c, smooth_act(load_n(o + c, size_t(n - c)), act), size_t(n - c));
}

// ------------------------------------------------------------------------------------------
// Indirect GEMM
// ------------------------------------------------------------------------------------------

constexpr int kMaxMR = 8;
// op_fn instantiates tiles of up to kMaxMR rows and 4 vectors.
static_assert(Blocking::kGemmMaxVecs <= 4, "op_fn serves tiles of up to 4 vectors");

struct IgTile {
  const float* const* a;  // [nseg][MR] row pointers
  const int* woff;        // [nseg] first packed weight row of the segment
  const int* len;         // [nseg] reduction length of the segment
  int nseg;
  const float* w;        // this column block's packed weights, row stride NV*kL
  size_t wstride;        // dot tiles: distance between consecutive output columns' weights
  float* const* out;     // [MR] output row starts (column 0); null rows are not stored
  int col0, ncols;       // columns [col0, col0 + ncols) of the output, ncols <= NV*kL
  const float* bias;     // full bias vector or null
  EpilogueClamp clamp;
};

template <int MR, int NV>
void igemm_tile(const IgTile& t) {
  constexpr int WB = NV * kL;
  Vec acc[MR][NV];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[m][v] = Vec::zero();

  for (int sg = 0; sg < t.nseg; ++sg) {
    const float* const* ap = t.a + size_t(sg) * MR;
    const float* p[MR];
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) p[m] = ap[m];
    const float* w = t.w + size_t(t.woff[sg]) * WB;
    const int len = t.len[sg];
    for (int c = 0; c < len; ++c) {
      Vec b[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) b[v] = Vec::load(w + v * kL);
      w += WB;
#pragma GCC unroll 16
      for (int m = 0; m < MR; ++m) {
        Vec av = Vec::set1(p[m][c]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[m][v] = fmadd(av, b[v], acc[m][v]);
      }
    }
  }

  // Epilogue: + bias, the clamp, store (masked on the last partial vector), the smooth act.
  const int nfull = t.ncols / kL, rem = t.ncols % kL;
  Vec bias[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    if (!t.bias || v > nfull || (v == nfull && rem == 0)) {
      bias[v] = Vec::zero();
    } else if (v < nfull) {
      bias[v] = Vec::load(t.bias + t.col0 + v * kL);
    } else {
      bias[v] = Vec::load_partial(t.bias + t.col0 + v * kL, rem);
    }
  }
  const Vec zero = Vec::zero(), six = Vec::set1(6.f);
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m) {
    float* o = t.out[m];
    if (!o) continue;
    o += t.col0;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      Vec r = acc[m][v] + bias[v];
      if (t.clamp.relu) r = max(r, zero);
      if (t.clamp.relu6) r = min(r, six);
      if (v < nfull) {
        r.store(o + v * kL);
      } else if (v == nfull && rem) {
        r.store_partial(o + v * kL, rem);
      }
    }
    if (t.clamp.smooth) smooth_epilogue(o, t.ncols, t.clamp.act);
  }
}

// The same product for very few output columns (C < kL/2), where one vector of output columns
// would be mostly empty lanes: vectorized along the reduction instead. For each row and output
// column c one accumulator sums a[m][j..j+kL) * w[c][j..j+kL), reduced horizontally at the end.
// Weights are packed [C][reduction rows] (wstride = reduction rows).
template <int MR, int C>
void dot_tile(const IgTile& t) {
  Vec acc[MR][C];
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[m][c] = Vec::zero();
  const size_t ws = t.wstride;
  for (int sg = 0; sg < t.nseg; ++sg) {
    const float* const* ap = t.a + size_t(sg) * MR;
    const float* p[MR];
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) p[m] = ap[m];
    const float* w = t.w + t.woff[sg];
    const int len = t.len[sg];
    int j = 0;
    for (; j + kL <= len; j += kL) {
      Vec wv[C];
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) wv[c] = Vec::load(w + c * ws + j);
#pragma GCC unroll 8
      for (int m = 0; m < MR; ++m) {
        Vec av = Vec::load(p[m] + j);
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) acc[m][c] = fmadd(av, wv[c], acc[m][c]);
      }
    }
    if (j < len) {
      const int rem = len - j;
      Vec wv[C];
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) wv[c] = Vec::load_partial(w + c * ws + j, rem);
#pragma GCC unroll 8
      for (int m = 0; m < MR; ++m) {
        Vec av = Vec::load_partial(p[m] + j, rem);
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) acc[m][c] = fmadd(av, wv[c], acc[m][c]);
      }
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m) {
    float* o = t.out[m];
    if (!o) continue;
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      o[c] = t.clamp(acc[m][c].reduce_add() + (t.bias ? t.bias[c] : 0.f));
    }
    if (t.clamp.smooth) smooth_epilogue(o, C, t.clamp.act);
  }
}

using IgFn = void (*)(const IgTile&);

// Rows per dot tile for C output columns: MR*C accumulators + C weight vectors + 1 row vector
// within the register file (Blocking, simd.h).
constexpr int kMaxDotC = kL / 2 - 1;  // dot tiles serve C <= kMaxDotC (2*C < kL)
constexpr int dot_mr(int c) { return Blocking::kDotRows[c - 1]; }

template <int C = 1>
IgFn dot_fn(int c) {
  if constexpr (C == kMaxDotC) {
    return dot_tile<dot_mr(C), C>;
  } else {
    return c == C ? dot_tile<dot_mr(C), C> : dot_fn<C + 1>(c);
  }
}

// Tile shape for `ncols` output columns: MR rows x NV vectors, with MR*NV accumulators + NV
// weight vectors + 1 broadcast within the register file (Blocking, simd.h); or a dot tile.
struct IgPlan {
  int mr, nv;
  bool dot;
};
inline IgPlan vec_plan(int ncols) {
  const int v = imin(cdiv(imax(ncols, 1), kL), Blocking::kGemmMaxVecs);
  return {Blocking::kGemmRows[v - 1], v, false};
}
constexpr bool rows_fit(const int* rows, int n) {
  for (int i = 0; i < n; ++i) {
    if (rows[i] < 1 || rows[i] > kMaxMR) return false;
  }
  return true;
}
static_assert(rows_fit(Blocking::kGemmRows, Blocking::kGemmMaxVecs) &&
                  rows_fit(Blocking::kDotRows, kMaxDotC),
              "tiles have 1 to kMaxMR rows");
inline IgPlan ig_plan(int ncols) {
  if (ncols >= 1 && ncols <= kMaxDotC) return {dot_mr(ncols), 1, true};
  return vec_plan(ncols);
}

// The most vectors a plan gives tiles of `mr` rows (the narrower last column block of such a
// plan uses the same rows with fewer vectors).
constexpr int gemm_vecs_for_rows(int mr) {
  int v = 0;
  for (int i = 0; i < Blocking::kGemmMaxVecs; ++i) {
    if (Blocking::kGemmRows[i] == mr) v = i + 1;
  }
  return v;
}
template <int MR, int NV = 1>
IgFn ig_fn_vecs(int nv) {
  if constexpr (NV == gemm_vecs_for_rows(MR)) {
    return igemm_tile<MR, NV>;
  } else {
    return nv == NV ? igemm_tile<MR, NV> : ig_fn_vecs<MR, NV + 1>(nv);
  }
}
// The tile of mr rows (one of Blocking::kGemmRows) and nv vectors, nv <= gemm_vecs_for_rows(mr).
template <int I = 0>
IgFn ig_fn(int mr, int nv) {
  constexpr int MR = Blocking::kGemmRows[I];
  if constexpr (I + 1 == Blocking::kGemmMaxVecs) {
    return ig_fn_vecs<MR>(nv);
  } else {
    return mr == MR ? ig_fn_vecs<MR>(nv) : ig_fn<I + 1>(mr, nv);
  }
}

// Packs the [rows x NC] matrix whose row `i` starts at rowptr(i) with column stride cs into
// column blocks of WB: block kb starts at kb*rows*WB and holds [rows][WBb], WBb = WB except for
// a narrower last block (its column count rounded up to whole vectors), zero-padded past NC.
template <class RowPtr>
void pack_cols(float* dst, size_t rows, int NC, int WB, size_t cs, const RowPtr& rowptr) {
  const int nkb = cdiv(NC, WB);
  if (rows == 0 || nkb == 0) return;
  // Parallel only when the copy is big enough to pay for waking the pool.
  const size_t grain = cdivz(size_t(1) << 18, size_t(nkb) * WB);
  parallel_for(rows, grain, [&](size_t b, size_t e, int) {
    for (int kb = 0; kb < nkb; ++kb) {
      const int col0 = kb * WB, nc = imin(WB, NC - col0), wbb = cdiv(nc, kL) * kL;
      float* blk = dst + size_t(kb) * rows * WB;
      for (size_t i = b; i < e; ++i) {
        const float* src = rowptr(i) + size_t(col0) * cs;
        float* d = blk + i * wbb;
        if (cs == 1) {
          for (int j = 0; j < nc; ++j) d[j] = src[j];  // (short rows: no memcpy call)
        } else {
          for (int j = 0; j < nc; ++j) d[j] = src[size_t(j) * cs];
        }
        for (int j = nc; j < wbb; ++j) d[j] = 0.f;
      }
    }
  });
}

// pack_cols's layout for the transpose of the row-major [NC x rows] matrix src (row stride ld):
// element (i, c) of column block kb is src[(kb*WB + c)*ld + i]. Moved by kL x kL squares
// through registers: walking a column of src (stride ld, often a multiple of 4 KB) would map
// every element to one L1 set, and packing the transpose element by element cost 17% of the
// 1024^3 backward-data product.
inline void pack_cols_transposed(float* dst, size_t rows, int NC, int WB, const float* src,
                                 size_t ld) {
  const int nkb = cdiv(NC, WB);
  const size_t nib = cdivz(rows, kL);
  if (rows == 0 || nkb == 0) return;
  // Items: one column block x kL rows; parallel only when the copy pays for waking the pool.
  const size_t grain = cdivz(size_t(1) << 18, size_t(WB) * kL);
  parallel_for(size_t(nkb) * nib, grain, [&](size_t b, size_t e, int) {
    for (size_t item = b; item < e; ++item) {
      const int kb = int(item / nib);
      const size_t i0 = (item % nib) * kL;
      const int col0 = kb * WB, nc = imin(WB, NC - col0), wbb = cdiv(nc, kL) * kL;
      const int ni = rows - i0 < size_t(kL) ? int(rows - i0) : kL;
      float* d = dst + size_t(kb) * rows * WB + i0 * wbb;
      for (int c0 = 0; c0 < wbb; c0 += kL) {
        Vec r[kL];
#pragma GCC unroll 16
        for (int j = 0; j < kL; ++j) {
          const float* s = src + size_t(col0 + c0 + j) * ld + i0;
          r[j] = c0 + j >= nc ? Vec::zero() : ni == kL ? Vec::load(s) : Vec::load_partial(s, ni);
        }
        transpose(r);
        for (int j = 0; j < ni; ++j) r[j].store(d + size_t(j) * wbb + c0);
      }
    }
  });
}

// The packed weights of a plan: pack_cols's column blocks, or [NC][rows] for a dot plan.
inline size_t packed_floats(IgPlan plan, size_t rows, int NC) {
  if (plan.dot) return size_t(NC) * rows + kL;
  const int WB = plan.nv * kL;
  return size_t(cdiv(NC, WB)) * rows * WB;
}
template <class RowPtr>
void pack_weights(IgPlan plan, float* dst, size_t rows, int NC, size_t cs, const RowPtr& rowptr) {
  if (!plan.dot) {
    pack_cols(dst, rows, NC, plan.nv * kL, cs, rowptr);
    return;
  }
  for (size_t i = 0; i < rows; ++i) {
    const float* src = rowptr(i);
    for (int c = 0; c < NC; ++c) dst[size_t(c) * rows + i] = src[size_t(c) * cs];
  }
}

// Runs the indirect GEMM over M output rows and NC output columns. `packed` holds the weights
// packed by pack_cols with WB = plan.nv * kL over `red_rows` reduction rows. build(m0, cnt, a,
// woff, len, out, scratch) describes rows [m0, m0+cnt) (cnt <= MR): it fills out[0..cnt) and,
// per segment it keeps, a[seg*MR + i] for i < cnt, woff[seg], len[seg], and returns the
// segment count (at most max_seg). `scratch` (scratch_floats per tile) may hold copies the
// pointers point into (zero-padded edge pixels); it lives while the tile is in use. Rows past
// cnt are padding (they repeat row 0's pointers) and are never stored.
//
// Work is split over (blocks of row tiles) x (groups of column blocks); every output element is
// computed by one task with the same summation order, whatever the split.
template <class Build>
void igemm_run(IgPlan plan, int M, int NC, size_t red_rows, const float* packed,
               const float* bias, Act act, int max_seg, size_t scratch_floats,
               const Build& build) {
  if (M <= 0 || NC <= 0) return;
  const int MR = plan.mr, WB = plan.nv * kL;
  const int nkb = cdiv(NC, WB);
  const int tiles = cdiv(M, MR);
  const int T = num_threads();
  // Row tiles per task: enough rows to reuse each packed block from cache, few enough that
  // the tasks balance over the threads.
  int rb_tiles = int(imax(1, int(49152 / (red_rows + 1)) / MR));
  rb_tiles = imin(rb_tiles, 32);
  rb_tiles = imin(rb_tiles, imax(1, cdiv(tiles, 8 * T)));
  const int nrb = cdiv(tiles, rb_tiles);
  // More output columns than rows and packed weights past L2 (a wide dense layer on a small
  // batch: 128x4096->4096): the weights are the big operand, so units go column block by column
  // block, each over all row blocks, and every packed block is read from memory once instead of
  // once per row block (128x4096->4096: ~70 -> ~120-140 GFLOP/s forward and backward-data).
  const bool columns_outer = !plan.dot && NC > M && red_rows * size_t(NC) > (size_t(1) << 18);
  int kb_per_group = nkb;
  if (columns_outer) {
    kb_per_group = 1;
  } else if (nrb < 4 * T) {
    kb_per_group = imax(1, nkb / imin(nkb, cdiv(4 * T, nrb)));
  }
  const int nkg = cdiv(nkb, kb_per_group);
  const size_t units = size_t(nrb) * nkg;
  const IgFn full_fn = plan.dot ? dot_fn(NC) : ig_fn(MR, plan.nv);
  const double unit_flops = 2.0 * rb_tiles * MR * double(red_rows) * imin(NC, kb_per_group * WB);
  const size_t grain = grain_for(unit_flops);

  parallel_for(units, grain, [&](size_t ub, size_t ue, int) {
    // The segments of every tile of a row block are built once, then reused by each column
    // block (kb outer, tiles inner: a packed block stays in cache across the tiles).
    const size_t nseg_max = size_t(imax(max_seg, 1)), nt = size_t(rb_tiles);
    Arena arena(Arena::bytes_for(nt * nseg_max * MR, sizeof(float*)) +
                2 * Arena::bytes_for(nt * nseg_max, sizeof(int)) +
                Arena::bytes_for(nt * MR, sizeof(float*)) + Arena::bytes_for(nt, sizeof(int)) +
                Arena::bytes_for(nt * scratch_floats, sizeof(float)));
    const float** a = arena.take<const float*>(nt * nseg_max * MR);
    int* woff = arena.take<int>(nt * nseg_max);
    int* len = arena.take<int>(nt * nseg_max);
    float** out = arena.take<float*>(nt * MR);
    int* nseg = arena.take<int>(nt);
    float* tile_scratch = arena.take<float>(nt * scratch_floats);
    IgTile t;
    t.bias = bias;
    t.clamp = EpilogueClamp(act);
    // Builds tile j of the row block starting at tile0 into slot `slot`.
    auto build_tile = [&](int tile, int slot) {
      const int m0 = tile * MR, cnt = imin(MR, M - m0);
      const float** aj = a + size_t(slot) * nseg_max * MR;
      float** oj = out + size_t(slot) * MR;
      const int ns = build(m0, cnt, aj, woff + size_t(slot) * nseg_max,
                           len + size_t(slot) * nseg_max, oj,
                           tile_scratch + size_t(slot) * scratch_floats);
      for (int i = cnt; i < MR; ++i) {
        oj[i] = nullptr;
        for (int sg = 0; sg < ns; ++sg) aj[sg * MR + i] = aj[sg * MR];
      }
      nseg[slot] = ns;
    };
    for (size_t u = ub; u < ue; ++u) {
      const int rb = columns_outer ? int(u % size_t(nrb)) : int(u / nkg);
      const int g = columns_outer ? int(u / size_t(nrb)) : int(u % nkg);
      const int tile0 = rb * rb_tiles, ntl = imin(tiles, tile0 + rb_tiles) - tile0;
      const int kb0 = g * kb_per_group, kb1 = imin(nkb, kb0 + kb_per_group);
      // One column block: build each tile just before its product (its pointers stay in L1).
      const bool reuse = kb1 - kb0 > 1;
      if (reuse) {
        for (int j = 0; j < ntl; ++j) build_tile(tile0 + j, j);
      }
      for (int kb = kb0; kb < kb1; ++kb) {
        t.col0 = kb * WB;
        t.ncols = imin(WB, NC - t.col0);
        const int nv = cdiv(t.ncols, kL);
        const IgFn fn = nv == plan.nv ? full_fn : ig_fn(MR, nv);
        t.w = packed + size_t(kb) * red_rows * WB;
        t.wstride = red_rows;  // (dot plans: one block, NC < kL)
        for (int j = 0; j < ntl; ++j) {
          const int slot = reuse ? j : 0;
          if (!reuse) build_tile(tile0 + j, 0);
          t.a = a + size_t(slot) * nseg_max * MR;
          t.woff = woff + size_t(slot) * nseg_max;
          t.len = len + size_t(slot) * nseg_max;
          t.out = out + size_t(slot) * MR;
          t.nseg = nseg[slot];
          fn(t);
        }
      }
    }
  });
}

// ------------------------------------------------------------------------------------------
// Outer-product accumulation (backward filter)
// ------------------------------------------------------------------------------------------

// A run of `n` pixels: x advances by xs and dy by ds per pixel. Rows m in [mlo, mhi) of the
// block read x[m - mlo]; the other rows get zero (taps in the padding).
struct OpRun {
  const float* x;
  const float* dy;
  int n, mlo, mhi;
};

struct OpTile {
  float* dw;             // dw row j0, column 0
  size_t ldw;            // dw row stride
  int col0, ncols;       // dw columns [col0, col0 + ncols), ncols <= NV*kL
  size_t dy_off;         // added to every run's dy pointer
  const OpRun* runs;
  int nruns;
  size_t xs, ds;
};

template <int MB, int NV, bool FULL>
__attribute__((always_inline)) inline void op_accumulate(Vec (&acc)[MB][NV], const OpTile& t,
                                                         int nlast) {
  for (int ri = 0; ri < t.nruns; ++ri) {
    const OpRun& r = t.runs[ri];
    const float* xp = r.x;
    const float* dp = r.dy + t.dy_off;
    if (r.mlo == 0 && r.mhi == MB) {
      for (int i = 0; i < r.n; ++i) {
        Vec b[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
          b[v] = (FULL || v < NV - 1) ? Vec::load(dp + v * kL) : Vec::load_partial(dp + v * kL, nlast);
        }
#pragma GCC unroll 16
        for (int m = 0; m < MB; ++m) {
          Vec av = Vec::set1(xp[m]);
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v) acc[m][v] = fmadd(av, b[v], acc[m][v]);
        }
        xp += t.xs;
        dp += t.ds;
      }
    } else {
      for (int i = 0; i < r.n; ++i) {
        Vec b[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
          b[v] = (FULL || v < NV - 1) ? Vec::load(dp + v * kL) : Vec::load_partial(dp + v * kL, nlast);
        }
#pragma GCC unroll 16
        for (int m = 0; m < MB; ++m) {
          if (m < r.mlo || m >= r.mhi) continue;
          Vec av = Vec::set1(xp[m - r.mlo]);
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v) acc[m][v] = fmadd(av, b[v], acc[m][v]);
        }
        xp += t.xs;
        dp += t.ds;
      }
    }
  }
}

// dw[j0 + m, col0 + :] += the runs' outer products, for m < MB; with OVERWRITE, dw = them (dw
// is never read: no zeroing pass, no loads that miss the cache at each tile's start).
template <int MB, int NV, bool OVERWRITE>
void op_tile(const OpTile& t) {
  const int nlast = t.ncols - (NV - 1) * kL;  // in [1, kL]
  const bool full = nlast == kL;
  Vec acc[MB][NV];
#pragma GCC unroll 16
  for (int m = 0; m < MB; ++m) {
    const float* d = t.dw + m * t.ldw + t.col0;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      acc[m][v] = OVERWRITE              ? Vec::zero()
                  : (full || v < NV - 1) ? Vec::load(d + v * kL)
                                         : Vec::load_partial(d + v * kL, nlast);
    }
  }
  if (full) {
    op_accumulate<MB, NV, true>(acc, t, nlast);
  } else {
    op_accumulate<MB, NV, false>(acc, t, nlast);
  }
#pragma GCC unroll 16
  for (int m = 0; m < MB; ++m) {
    float* d = t.dw + m * t.ldw + t.col0;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      if (full || v < NV - 1) {
        acc[m][v].store(d + v * kL);
      } else {
        acc[m][v].store_partial(d + v * kL, nlast);
      }
    }
  }
}

using OpFn = void (*)(const OpTile&);

// Same register budget as the indirect GEMM: at most plan.mr rows per block.
inline IgPlan op_plan(int ncols) { return vec_plan(ncols); }

template <int NV, bool OVERWRITE>
inline OpFn op_fn_nv(int mb) {
  switch (mb) {
    case 1: return op_tile<1, NV, OVERWRITE>;
    case 2: return op_tile<2, NV, OVERWRITE>;
    case 3: return op_tile<3, NV, OVERWRITE>;
    case 4: return op_tile<4, NV, OVERWRITE>;
    case 5: return op_tile<5, NV, OVERWRITE>;
    case 6: return op_tile<6, NV, OVERWRITE>;
    case 7: return op_tile<7, NV, OVERWRITE>;
    default: return op_tile<8, NV, OVERWRITE>;
  }
}
template <bool OVERWRITE = false>
inline OpFn op_fn(int mb, int nv) {
  switch (nv) {
    case 1: return op_fn_nv<1, OVERWRITE>(mb);
    case 2: return op_fn_nv<2, OVERWRITE>(mb);
    case 3: return op_fn_nv<3, OVERWRITE>(mb);
    default: return op_fn_nv<4, OVERWRITE>(mb);
  }
}

// Backward-filter driver: splits `nrows` pixel rows into parallel_chunks(nrows, grain) chunks;
// chunk 0 accumulates into dw/db, the others into zeroed Scratch partials, which are then added
// in chunk order (deterministic for a fixed thread count). body(dwc, dbc, begin, end) adds the
// rows [begin, end) into dwc (and dbc when db is given).
template <class Body>
void chunked_accumulate(float* dw, size_t wsize, float* db, int ncols, size_t nrows, size_t grain,
                        const Body& body) {
  const int chunks = parallel_chunks(nrows, grain);
  if (chunks == 0) {
    std::memset(dw, 0, wsize * sizeof(float));
    if (db) std::memset(db, 0, size_t(ncols) * sizeof(float));
    return;
  }
  const size_t stride = (wsize + size_t(ncols) + 15) / 16 * 16;
  Scratch part(size_t(chunks > 1 ? chunks - 1 : 0) * stride);
  // parallel_chunks never makes more chunks than rows, so every chunk runs and zeroes its
  // partial before using it.
  parallel_for(nrows, grain, [&](size_t b, size_t e, int c) {
    float* dwc = c == 0 ? dw : part.data() + size_t(c - 1) * stride;
    float* dbc = db ? (c == 0 ? db : dwc + wsize) : nullptr;
    std::memset(dwc, 0, wsize * sizeof(float));
    if (dbc) std::memset(dbc, 0, size_t(ncols) * sizeof(float));
    body(dwc, dbc, b, e);
  });
  if (chunks > 1) {
    const float* parts = part.data();
    auto add_range = [&](float* dst, size_t off, size_t b, size_t e) {
      size_t i = b;
      for (; i + kL <= e; i += kL) {
        Vec s = Vec::load(dst + i);
        for (int c = 1; c < chunks; ++c) s = s + Vec::load(parts + size_t(c - 1) * stride + off + i);
        s.store(dst + i);
      }
      for (; i < e; ++i) {
        float s = dst[i];
        for (int c = 1; c < chunks; ++c) s += parts[size_t(c - 1) * stride + off + i];
        dst[i] = s;
      }
    };
    parallel_for(cdivz(wsize, 1024), 64, [&](size_t b, size_t e, int) {
      add_range(dw, 0, b * 1024, e * 1024 < wsize ? e * 1024 : wsize);
    });
    if (db) add_range(db, wsize, 0, size_t(ncols));
  }
}

// dbc[0..K) += the K-vectors dy[0..n) (row stride K).
inline void add_rows(float* dbc, const float* dy, size_t n, int K) {
  int k = 0;
  for (; k + kL <= K; k += kL) {
    Vec s = Vec::load(dbc + k);
    for (size_t i = 0; i < n; ++i) s = s + Vec::load(dy + i * K + k);
    s.store(dbc + k);
  }
  if (k < K) {
    const int rem = K - k;
    Vec s = Vec::load_partial(dbc + k, rem);
    for (size_t i = 0; i < n; ++i) s = s + Vec::load_partial(dy + i * K + k, rem);
    s.store_partial(dbc + k, rem);
  }
}

}  // namespace
}  // namespace gemm
}  // namespace CK_ISA_NS
}  // namespace ck

#pragma GCC diagnostic pop
