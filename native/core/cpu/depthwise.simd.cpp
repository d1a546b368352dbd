// Vectorized depthwise convolution (NHWC, w [R,S,C,M], output channel c*M+m), all three passes,
// vectorized over channels, which NHWC makes contiguous:
//
//   depthwise_conv2d_fwd:        threads over output rows; a tile of QB output pixels x one
//                                channel vector sums its taps in registers (one weight load
//                                per tap, shared by the QB pixels).
//   depthwise_conv2d_bwd_data:   threads over dx rows, as a gather (each dx pixel sums the dy
//                                pixels whose taps read it), so no two threads write one value.
//   depthwise_conv2d_bwd_filter: threads over output rows, each into its own dw partial, added
//                                in chunk order (gemm::chunked_accumulate); up to 4 taps of a
//                                filter row share each dy load.
//
// With M > 1, output channel k reads input channel k/M: the x vector is loaded from channel
// k0/M and its lanes permuted. The backward-data pass sums dy*w over the K = C*M channels of a
// row and then adds the M channels of each c. Every output value is summed in one fixed order.
#include <cstring>

#include "gemm.simd.h"
#include "reference.h"
#include "simd_kernels.h"

// GCC 12 warns that _mm512_max_ps's internal _mm512_undefined_ps() "may be used uninitialized".
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace ck {
namespace CK_ISA_NS {

namespace {

using gemm::imax;
using gemm::imin;
constexpr int L = Vec::kLanes;
constexpr int kQB = Blocking::kDepthwisePixels;  // output pixels per forward/backward-data tile

// Index arithmetic in 64 bits: a tap offset (S-1)*dilation can pass 2^31 (both up to 65536).
inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
inline int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }
// v clamped to [lo, hi].
inline int clamp_to(int64_t v, int lo, int hi) { return int(v < lo ? lo : v > hi ? hi : v); }

// One vector of output channels [k0, k0 + m): it reads input channels from c0 on, nload of
// them, lane l taking channel c0 + idx[l] (M > 1; with M == 1, c0 = k0 and no permutation).
struct KBlock {
  int k0, m, c0, nload;
  int idx[L];
};

KBlock* make_kblocks(gemm::Arena& arena, int K, int M) {
  const int nkb = gemm::cdiv(K, L);
  KBlock* kbs = arena.take<KBlock>(size_t(nkb));
  for (int j = 0; j < nkb; ++j) {
    KBlock& kb = kbs[j];
    kb.k0 = j * L;
    kb.m = imin(L, K - kb.k0);
    kb.c0 = kb.k0 / M;
    kb.nload = (kb.k0 + kb.m - 1) / M - kb.c0 + 1;
    for (int l = 0; l < L; ++l) kb.idx[l] = l < kb.m ? (kb.k0 + l) / M - kb.c0 : 0;
  }
  return kbs;
}

// The x (or dy) vector of block kb at p.
template <bool kFull, bool kExpand>
inline Vec load_in(const float* p, const KBlock& kb, LaneIdx idx) {
  if (kExpand) return permute(load_n(p, size_t(kb.nload)), idx);
  return kFull ? Vec::load(p) : Vec::load_partial(p, kb.m);
}

// A filter tap: where its input for the tile's first pixel starts, and its K weights.
struct Tap {
  const float* src;
  const float* w;
};

// out[j*out_step + (0..m)] = act(init + sum over taps of in(tap.src + src_off + j*src_step) *
// tap.w[k0..]) for j < QB. src_off includes the block's channel offset.
template <int QB, bool kFull, bool kExpand>
void tile(float* out, ptrdiff_t out_step, const Tap* taps, int ntaps, ptrdiff_t src_off,
          ptrdiff_t src_step, const KBlock& kb, Vec init, EpilogueClamp clamp) {
  const LaneIdx idx = kExpand ? lane_indices(kb.idx) : LaneIdx{};
  Vec acc[QB];
  for (int j = 0; j < QB; ++j) acc[j] = init;
  for (int t = 0; t < ntaps; ++t) {
    const Vec wv = kFull ? Vec::load(taps[t].w + kb.k0) : Vec::load_partial(taps[t].w + kb.k0, kb.m);
    const float* s = taps[t].src + src_off;
    for (int j = 0; j < QB; ++j) acc[j] = fmadd(load_in<kFull, kExpand>(s + j * src_step, kb, idx), wv, acc[j]);
  }
  for (int j = 0; j < QB; ++j) {
    Vec v = clamp.relu ? max(acc[j], Vec::zero()) : acc[j];
    if (clamp.relu6) v = min(v, Vec::set1(6.f));
    if (kFull) v.store(out + j * out_step);
    else v.store_partial(out + j * out_step, kb.m);
    if (clamp.smooth) gemm::smooth_epilogue(out + j * out_step, kb.m, clamp.act);
  }
}

template <int QB>
void tile_any(bool expand, float* out, ptrdiff_t out_step, const Tap* taps, int ntaps,
              ptrdiff_t src_off, ptrdiff_t src_step, const KBlock& kb, Vec init, EpilogueClamp clamp) {
  const bool full = kb.m == L;
  if (expand) {
    (full ? tile<QB, true, true> : tile<QB, false, true>)(out, out_step, taps, ntaps, src_off, src_step, kb, init, clamp);
  } else {
    (full ? tile<QB, true, false> : tile<QB, false, false>)(out, out_step, taps, ntaps, src_off, src_step, kb, init, clamp);
  }
}

// Pixels [j0, j1) of a run (output pixel j at out + j*out_step, inputs at src + j*src_step from
// each tap's base for pixel j0), every channel block, in tiles of kQB, 4, 2, 1 pixels.
void run_pixels(int j0, int j1, bool expand, float* out, ptrdiff_t out_step, const Tap* taps,
                int ntaps, ptrdiff_t src_step, const KBlock* kbs, int nkb, const float* bias,
                EpilogueClamp clamp) {
  for (int j = j0; j < j1;) {
    const int left = j1 - j;
    const int qb = left >= kQB ? kQB : left >= 4 ? 4 : left >= 2 ? 2 : 1;
    const ptrdiff_t off = ptrdiff_t(j - j0) * src_step;
    float* o = out + ptrdiff_t(j) * out_step;
    for (int b = 0; b < nkb; ++b) {
      const KBlock& kb = kbs[b];
      const Vec init = bias ? load_n(bias + kb.k0, size_t(kb.m)) : Vec::zero();
      const ptrdiff_t so = off + (expand ? kb.c0 : kb.k0);
      if (qb == kQB) tile_any<kQB>(expand, o + kb.k0, out_step, taps, ntaps, so, src_step, kb, init, clamp);
      else if (qb == 4) tile_any<4>(expand, o + kb.k0, out_step, taps, ntaps, so, src_step, kb, init, clamp);
      else if (qb == 2) tile_any<2>(expand, o + kb.k0, out_step, taps, ntaps, so, src_step, kb, init, clamp);
      else tile_any<1>(expand, o + kb.k0, out_step, taps, ntaps, so, src_step, kb, init, clamp);
    }
    j += qb;
  }
}

}  // namespace

void depthwise_conv2d_fwd(float* y, const float* x, const float* w, const float* b,
                          const ConvParams& p, Act act) {
  if (!epilogue_act(act)) {
    ref::depthwise_conv2d_fwd(y, x, w, b, p, act);  // rejects the unsupported fused activation
    return;
  }
  const int C = p.C, K = p.K, M = K / imax(C, 1), R = p.R, S = p.S, H = p.H, W = p.W, P = p.P, Q = p.Q;
  const int sw = p.stride_w, pw = p.pad_w, dw = p.dil_w;
  if (size_t(p.N) * P * Q == 0 || K <= 0) return;
  const bool expand = M > 1;
  const EpilogueClamp clamp(act);
  const int nkb = gemm::cdiv(K, L);
  gemm::Arena arena(gemm::Arena::bytes_for(size_t(nkb), sizeof(KBlock)));
  const KBlock* kbs = make_kblocks(arena, K, M);
  // Output columns [qa, qb) have all S taps inside the image horizontally.
  const int qa = clamp_to(ceil_div(pw, sw), 0, Q);
  const int qb = clamp_to(floor_div(int64_t(W) - 1 + pw - int64_t(S - 1) * dw, sw) + 1, qa, Q);
  const ptrdiff_t xstep = ptrdiff_t(sw) * C;
  const size_t rows = size_t(p.N) * P;
  parallel_for(rows, gemm::grain_for(2.0 * Q * K * R * S), [&](size_t rb, size_t re, int) {
    gemm::Arena tarena(gemm::Arena::bytes_for(size_t(R) * S, sizeof(Tap)));
    Tap* taps = tarena.take<Tap>(size_t(R) * S);
    for (size_t row = rb; row < re; ++row) {
      const int n = int(row / size_t(P)), hb = int(row % size_t(P)) * p.stride_h - p.pad_h;
      const float* ximg = x + size_t(n) * H * W * C;
      float* yrow = y + row * Q * K;
      if (qa < qb) {
        int nt = 0;
        for (int r = 0; r < R; ++r) {
          const int64_t h = hb + int64_t(r) * p.dil_h;
          if (h < 0 || h >= H) continue;
          for (int s = 0; s < S; ++s)
            taps[nt++] = {ximg + (ptrdiff_t(h) * W + ptrdiff_t(qa) * sw - pw + ptrdiff_t(s) * dw) * C, w + (size_t(r) * S + s) * K};
        }
        run_pixels(0, qb - qa, expand, yrow + size_t(qa) * K, K, taps, nt, xstep, kbs, nkb, b, clamp);
      }
      // Border pixels: only their taps inside the image.
      for (int q = 0; q < Q; ++q) {
        if (q == qa && qa < qb) q = qb;
        if (q >= Q) break;
        int nt = 0;
        for (int r = 0; r < R; ++r) {
          const int64_t h = hb + int64_t(r) * p.dil_h;
          if (h < 0 || h >= H) continue;
          for (int s = 0; s < S; ++s) {
            const int64_t wi = int64_t(q) * sw - pw + int64_t(s) * dw;
            if (wi >= 0 && wi < W) taps[nt++] = {ximg + (ptrdiff_t(h) * W + wi) * C, w + (size_t(r) * S + s) * K};
          }
        }
        run_pixels(0, 1, expand, yrow + size_t(q) * K, K, taps, nt, 0, kbs, nkb, b, clamp);
      }
    }
  });
}

// dx row (n,h): the taps (r, p) whose output row reads h, then per column phase w mod sw the
// taps (s, q) whose output column reads w: pixel w = phase + j*sw reads dy column q0(s) + j.
void depthwise_conv2d_bwd_data(float* dx, const float* dy, const float* w, const ConvParams& p) {
  const int C = p.C, K = p.K, M = K / imax(C, 1), R = p.R, S = p.S, H = p.H, W = p.W, P = p.P, Q = p.Q;
  const int sh = p.stride_h, sw = p.stride_w, pw = p.pad_w, dw = p.dil_w;
  if (size_t(p.N) * H * W == 0 || C <= 0) return;
  const int nkb = gemm::cdiv(K, L);
  gemm::Arena arena(gemm::Arena::bytes_for(size_t(nkb), sizeof(KBlock)));
  const KBlock* kbs = make_kblocks(arena, K, 1);  // sums over the K channels, reduced after
  const size_t rows = size_t(p.N) * H;
  const double row_flops = 2.0 * W * K * R * S / (double(sh) * sw);
  parallel_for(rows, gemm::grain_for(row_flops), [&](size_t rb, size_t re, int) {
    gemm::Arena tarena(gemm::Arena::bytes_for(size_t(R) * S, sizeof(Tap)) +
                       4 * gemm::Arena::bytes_for(size_t(imax(R, S)), sizeof(int)) +
                       gemm::Arena::bytes_for(M > 1 ? size_t(W) * K : 0, sizeof(float)));
    Tap* taps = tarena.take<Tap>(size_t(R) * S);
    int* tap_r = tarena.take<int>(size_t(imax(R, S)));
    int* tap_p = tarena.take<int>(size_t(imax(R, S)));
    int* tap_s = tarena.take<int>(size_t(imax(R, S)));
    int* tap_q0 = tarena.take<int>(size_t(imax(R, S)));
    float* erow = tarena.take<float>(M > 1 ? size_t(W) * K : 0);
    for (size_t row = rb; row < re; ++row) {
      const int n = int(row / size_t(H)), h = int(row % size_t(H));
      float* dxrow = dx + row * W * C;
      float* out = M > 1 ? erow : dxrow;
      const float* dyimg = dy + size_t(n) * P * Q * K;
      int nr = 0;
      for (int r = 0; r < R; ++r) {
        const int64_t num = h + p.pad_h - int64_t(r) * p.dil_h;
        if (num < 0 || num % sh != 0 || num / sh >= P) continue;
        tap_r[nr] = r, tap_p[nr] = int(num / sh), ++nr;
      }
      if (nr == 0) {
        std::memset(dxrow, 0, size_t(W) * C * sizeof(float));
        continue;
      }
      for (int ph = 0; ph < imin(sw, W); ++ph) {
        const int nj = (W - 1 - ph) / sw + 1;
        int ns = 0, qmin = 0, qmax = 0;
        for (int s = 0; s < S; ++s) {
          const int64_t num = ph + pw - int64_t(s) * dw;
          if (num % sw != 0 || num / sw <= -int64_t(W) || num / sw >= Q) continue;  // never in [0, Q)
          const int q0 = int(num / sw);  // exact, whatever the sign
          qmin = ns ? imin(qmin, q0) : q0;
          qmax = ns ? imax(qmax, q0) : q0;
          tap_s[ns] = s, tap_q0[ns] = q0, ++ns;
        }
        float* o = out + size_t(ph) * K;
        const ptrdiff_t ostep = ptrdiff_t(sw) * K;
        // Pixels [ja, jb) of the phase read dy columns inside [0, Q) through every tap.
        const int ja = ns ? imin(nj, imax(0, -qmin)) : nj;
        const int jb = ns ? imax(ja, imin(nj, Q - qmax)) : nj;
        if (ja < jb) {
          int nt = 0;
          for (int i = 0; i < nr; ++i)
            for (int t = 0; t < ns; ++t)
              taps[nt++] = {dyimg + (size_t(tap_p[i]) * Q + ja + tap_q0[t]) * K, w + (size_t(tap_r[i]) * S + tap_s[t]) * K};
          run_pixels(ja, jb, false, o, ostep, taps, nt, K, kbs, nkb, nullptr, EpilogueClamp());
        }
        for (int j = 0; j < nj; ++j) {
          if (j == ja && ja < jb) j = jb;
          if (j >= nj) break;
          int nt = 0;
          for (int i = 0; i < nr; ++i)
            for (int t = 0; t < ns; ++t) {
              const int q = j + tap_q0[t];
              if (q >= 0 && q < Q) taps[nt++] = {dyimg + (size_t(tap_p[i]) * Q + q) * K, w + (size_t(tap_r[i]) * S + tap_s[t]) * K};
            }
          run_pixels(0, 1, false, o + ptrdiff_t(j) * ostep, 0, taps, nt, 0, kbs, nkb, nullptr, EpilogueClamp());
        }
      }
      if (M > 1) {
        for (size_t i = 0; i < size_t(W) * C; ++i) {
          float s = 0.f;
          for (int m = 0; m < M; ++m) s += erow[i * M + m];
          dxrow[i] = s;
        }
      }
    }
  });
}

namespace {

// acc[t] += sum over pixels [0, n) of in(x + i*xs + t*ts) * dy[i*ds] for the TS taps of a
// filter row group, two pixels per step (2*TS independent sums).
template <int TS, bool kFull, bool kExpand>
void filter_taps(float* dwt, ptrdiff_t dw_step, const float* x, ptrdiff_t xs, ptrdiff_t ts,
                 const float* g, ptrdiff_t ds, int n, const KBlock& kb) {
  const LaneIdx idx = kExpand ? lane_indices(kb.idx) : LaneIdx{};
  Vec a0[TS], a1[TS];
  for (int t = 0; t < TS; ++t) a0[t] = a1[t] = Vec::zero();
  int i = 0;
  for (; i + 2 <= n; i += 2) {
    const Vec g0 = load_in<kFull, false>(g + i * ds, kb, idx);
    const Vec g1 = load_in<kFull, false>(g + (i + 1) * ds, kb, idx);
    for (int t = 0; t < TS; ++t) {
      a0[t] = fmadd(load_in<kFull, kExpand>(x + i * xs + t * ts, kb, idx), g0, a0[t]);
      a1[t] = fmadd(load_in<kFull, kExpand>(x + (i + 1) * xs + t * ts, kb, idx), g1, a1[t]);
    }
  }
  if (i < n) {
    const Vec g0 = load_in<kFull, false>(g + i * ds, kb, idx);
    for (int t = 0; t < TS; ++t) a0[t] = fmadd(load_in<kFull, kExpand>(x + i * xs + t * ts, kb, idx), g0, a0[t]);
  }
  for (int t = 0; t < TS; ++t) {
    float* d = dwt + t * dw_step;
    const Vec v = (kFull ? Vec::load(d) : Vec::load_partial(d, kb.m)) + (a0[t] + a1[t]);
    if (kFull) v.store(d);
    else v.store_partial(d, kb.m);
  }
}

template <int TS>
void filter_taps_any(bool expand, float* dwt, ptrdiff_t dw_step, const float* x, ptrdiff_t xs,
                     ptrdiff_t ts, const float* g, ptrdiff_t ds, int n, const KBlock& kb) {
  if (n <= 0) return;
  const bool full = kb.m == L;
  if (expand) {
    (full ? filter_taps<TS, true, true> : filter_taps<TS, false, true>)(dwt, dw_step, x, xs, ts, g, ds, n, kb);
  } else {
    (full ? filter_taps<TS, true, false> : filter_taps<TS, false, false>)(dwt, dw_step, x, xs, ts, g, ds, n, kb);
  }
}

}  // namespace

void depthwise_conv2d_bwd_filter(float* dw, float* db, const float* dy, const float* x,
                                 const ConvParams& p) {
  const int C = p.C, K = p.K, M = K / imax(C, 1), R = p.R, S = p.S, H = p.H, W = p.W, P = p.P, Q = p.Q;
  const int sw = p.stride_w, pw = p.pad_w, dil_w = p.dil_w;
  if (K <= 0) return;
  const bool expand = M > 1;
  const int nkb = gemm::cdiv(K, L);
  gemm::Arena arena(gemm::Arena::bytes_for(size_t(nkb), sizeof(KBlock)) +
                    2 * gemm::Arena::bytes_for(size_t(S), sizeof(int)));
  const KBlock* kbs = make_kblocks(arena, K, M);
  // Output columns [lo[s], hi[s]] read input columns inside the image through tap s.
  int* lo = arena.take<int>(size_t(S));
  int* hi = arena.take<int>(size_t(S));
  for (int s = 0; s < S; ++s) {
    lo[s] = clamp_to(ceil_div(pw - int64_t(s) * dil_w, sw), 0, Q);
    hi[s] = clamp_to(floor_div(int64_t(W) - 1 + pw - int64_t(s) * dil_w, sw), -1, Q - 1);
  }
  const size_t wsize = size_t(R) * S * K, rows = size_t(p.N) * P;
  const ptrdiff_t xs = ptrdiff_t(sw) * C, ts = ptrdiff_t(dil_w) * C;
  const size_t grain = gemm::grain_for(2.0 * Q * K * R * S);
  gemm::chunked_accumulate(dw, wsize, db, K, rows, grain, [&](float* dwc, float* dbc, size_t b, size_t e) {
    for (size_t row = b; row < e; ++row) {
      const int n = int(row / size_t(P)), hb = int(row % size_t(P)) * p.stride_h - p.pad_h;
      const float* dyrow = dy + row * Q * K;
      for (int r = 0; r < R; ++r) {
        const int64_t h = hb + int64_t(r) * p.dil_h;
        if (h < 0 || h >= H) continue;
        const float* xrow = x + (size_t(n) * H + h) * W * C;
        for (int s0 = 0; s0 < S; s0 += 4) {
          const int tsn = imin(4, S - s0);
          // Columns [ga, gb] have all tsn taps of the group inside the image.
          int ga = 0, gb = Q - 1;
          for (int t = 0; t < tsn; ++t) ga = imax(ga, lo[s0 + t]), gb = imin(gb, hi[s0 + t]);
          for (int k = 0; k < nkb; ++k) {
            const KBlock& kb = kbs[k];
            const ptrdiff_t coff = expand ? kb.c0 : kb.k0;
            float* dwt = dwc + (size_t(r) * S + s0) * K + kb.k0;
            if (ga <= gb) {
              const float* xg = xrow + (ptrdiff_t(ga) * sw - pw + ptrdiff_t(s0) * dil_w) * C + coff;
              const float* g = dyrow + size_t(ga) * K + kb.k0;
              const int cnt = gb - ga + 1;
              switch (tsn) {
                case 4: filter_taps_any<4>(expand, dwt, K, xg, xs, ts, g, K, cnt, kb); break;
                case 3: filter_taps_any<3>(expand, dwt, K, xg, xs, ts, g, K, cnt, kb); break;
                case 2: filter_taps_any<2>(expand, dwt, K, xg, xs, ts, g, K, cnt, kb); break;
                default: filter_taps_any<1>(expand, dwt, K, xg, xs, ts, g, K, cnt, kb); break;
              }
            }
            // The columns where only some taps of the group are inside: tap by tap.
            for (int t = 0; t < tsn; ++t) {
              const int s = s0 + t;
              const int a1 = lo[s], b1 = ga <= gb ? imin(hi[s], ga - 1) : hi[s];
              const int a2 = ga <= gb ? imax(lo[s], gb + 1) : hi[s] + 1, b2 = hi[s];
              for (int seg = 0; seg < 2; ++seg) {
                const int qa = seg ? a2 : a1, qz = seg ? b2 : b1;
                if (qa > qz) continue;
                const float* xt = xrow + (ptrdiff_t(qa) * sw - pw + ptrdiff_t(s) * dil_w) * C + coff;
                filter_taps_any<1>(expand, dwt + t * K, K, xt, xs, ts, dyrow + size_t(qa) * K + kb.k0, K,
                                   qz - qa + 1, kb);
              }
            }
          }
        }
      }
      if (dbc) gemm::add_rows(dbc, dyrow, size_t(Q), K);
    }
  });
}

}  // namespace CK_ISA_NS
}  // namespace ck

#pragma GCC diagnostic pop
