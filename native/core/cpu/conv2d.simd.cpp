// Vectorized 2-D convolution (NHWC activations, HWIO weights), all three passes, on the
// register-blocked micro-kernels of gemm.simd.h. No im2col buffer: the forward and
// backward-data passes are indirect GEMMs over per-tap row pointers, the backward-filter pass an
// outer-product accumulation over runs of pixels.
#include <cstring>

#include "gemm.simd.h"
#include "reference.h"
#include "simd_kernels.h"

namespace ck {
namespace CK_ISA_NS {

namespace {

using gemm::cdiv;
using gemm::imax;
using gemm::imin;
using gemm::kL;
using gemm::kMaxMR;

// floor(a / b) and ceil(a / b) for b > 0 and any sign of a.
inline int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
inline int ceil_div(int a, int b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

// dst[0..n) = src[0..n), or zeros when src is null.
inline void copy_or_zero(float* dst, const float* src, int n) {
  if (src) {
    for (int i = 0; i < n; ++i) dst[i] = src[i];
  } else {
    for (int i = 0; i < n; ++i) dst[i] = 0.f;
  }
}

}  // namespace

// ---- forward: y[pixel, :] = act(b + sum over taps (r,s) of x[tap pixel, :] . W[r,s]) ----
void conv2d_fwd(float* y, const float* x, const float* w, const float* b, const ConvParams& p,
                Act act) {
  if (act != Act::None && act != Act::Relu) {
    ref::conv2d_fwd(y, x, w, b, p, act);  // rejects the unsupported fused activation
    return;
  }
  const int K = p.K, C = p.C, R = p.R, S = p.S, H = p.H, W = p.W, P = p.P, Q = p.Q;
  const int M = p.N * P * Q;
  if (M <= 0 || K <= 0) return;
  const gemm::IgPlan plan = gemm::ig_plan(K);
  const int WB = plan.nv * kL, MR = plan.mr;
  const size_t red = size_t(R) * S * C;
  Scratch packed(size_t(cdiv(K, WB)) * red * WB);
  gemm::pack_cols(packed.data(), red, K, WB, 1, [&](size_t i) { return w + i * K; });
  const int seg_max = imax(S * C, 1);
  Scratch zero_buf{size_t(seg_max)};
  std::memset(zero_buf.data(), 0, size_t(seg_max) * sizeof(float));
  const float* zero = zero_buf.data();
  // With dil_w == 1 the S taps of a filter row read S*C contiguous inputs: one segment per
  // filter row. A pixel whose row of taps is cut by the left/right padding gets a zero-padded
  // copy of its S*C inputs in the tile scratch instead.
  const bool merge_row = p.dil_w == 1;
  const size_t HWC = size_t(H) * W * C;
  const size_t tile_scratch = merge_row ? size_t(MR) * R * S * C : 0;

  const ptrdiff_t row_step = ptrdiff_t(p.dil_h) * W * C;  // x offset between filter rows
  const int dh = p.dil_h;

  auto build = [&](int m0, int cnt, const float** a, int* woff, int* len, float** out,
                   float* ts) {
    // Per output pixel: offset of its tap (0,0) input, live filter rows [rlo, rhi), and
    // whether its S taps all fall inside the image horizontally.
    ptrdiff_t off[kMaxMR];
    int wb[kMaxMR], rlo[kMaxMR], rhi[kMaxMR];
    bool inside[kMaxMR];
    int r_min = R, r_max = 0;
    int n = m0 / (P * Q), rem = m0 % (P * Q), op = rem / Q, oq = rem % Q;
    for (int i = 0; i < cnt; ++i) {
      const int hb = op * p.stride_h - p.pad_h;
      wb[i] = oq * p.stride_w - p.pad_w;
      off[i] = ptrdiff_t(n) * ptrdiff_t(HWC) + (ptrdiff_t(hb) * W + wb[i]) * C;
      if (dh == 1) {  // (no divisions on the common path)
        rlo[i] = imax(0, -hb);
        rhi[i] = imin(R, H - hb);
      } else {
        rlo[i] = imax(0, ceil_div(-hb, dh));
        rhi[i] = imin(R, floor_div(H - 1 - hb, dh) + 1);
      }
      inside[i] = wb[i] >= 0 && wb[i] + (S - 1) * p.dil_w < W;
      r_min = imin(r_min, rlo[i]);
      r_max = imax(r_max, rhi[i]);
      out[i] = y + size_t(m0 + i) * K;
      if (++oq == Q) {
        oq = 0;
        if (++op == P) op = 0, ++n;
      }
    }
    int nseg = 0;
    for (int r = r_min; r < r_max; ++r) {
      if (merge_row) {
        for (int i = 0; i < cnt; ++i) {
          const float*& ai = a[nseg * MR + i];
          if (r < rlo[i] || r >= rhi[i]) {
            ai = zero;
          } else if (inside[i]) {
            ai = x + (off[i] + r * row_step);
          } else {
            const float* xr = x + (off[i] + r * row_step - ptrdiff_t(wb[i]) * C);  // column 0
            for (int s = 0; s < S; ++s) {
              const int wi = wb[i] + s;
              copy_or_zero(ts + s * C, wi >= 0 && wi < W ? xr + size_t(wi) * C : nullptr, C);
            }
            ai = ts;
            ts += S * C;
          }
        }
        woff[nseg] = r * S * C;
        len[nseg] = S * C;
        ++nseg;
        continue;
      }
      for (int s = 0; s < S; ++s) {
        bool used = false;
        for (int i = 0; i < cnt; ++i) {
          const int wi = wb[i] + s * p.dil_w;
          const bool v = r >= rlo[i] && r < rhi[i] && wi >= 0 && wi < W;
          a[nseg * MR + i] = v ? x + (off[i] + r * row_step + ptrdiff_t(s) * p.dil_w * C) : zero;
          used |= v;
        }
        if (!used) continue;
        woff[nseg] = (r * S + s) * C;
        len[nseg] = C;
        ++nseg;
      }
    }
    return nseg;
  };
  gemm::igemm_run(plan, M, K, red, packed.data(), b, act == Act::Relu, R * S, tile_scratch,
                  build);
}

// ---- backward data: dx[pixel, :] = sum over taps (r,s) that reach it of dy[p,q,:] . W[r,s]^T
// Weights are packed transposed, [r][S-1-s][k] x c, so that with unit stride and dilation the S
// taps of a filter row read S*K contiguous dy values (q = w + pad_w - s runs backwards in s).
// With strides, the dx pixels are visited phase by phase ((h mod sh, w mod sw) classes): all
// rows of a tile then share the same set of live taps.
void conv2d_bwd_data(float* dx, const float* dy, const float* w, const ConvParams& p) {
  const int K = p.K, C = p.C, R = p.R, S = p.S, H = p.H, W = p.W, P = p.P, Q = p.Q;
  const int sh = p.stride_h, sw = p.stride_w;
  const int M = p.N * H * W;
  if (M <= 0 || C <= 0) return;
  const gemm::IgPlan plan = gemm::ig_plan(C);
  const int WB = plan.nv * kL, MR = plan.mr;
  const size_t red = size_t(R) * S * K;
  Scratch packed(size_t(cdiv(C, WB)) * red * WB);
  gemm::pack_cols(packed.data(), red, C, WB, size_t(K), [&](size_t i) {
    const size_t k = i % K, rs = i / K, r = rs / S, sp = rs % S;
    return w + ((r * S + (S - 1 - sp)) * C) * K + k;
  });
  const int seg_max = imax(S * K, 1);
  Scratch zero_buf{size_t(seg_max)};
  std::memset(zero_buf.data(), 0, size_t(seg_max) * sizeof(float));
  const float* zero = zero_buf.data();
  const bool merge_row = sw == 1 && p.dil_w == 1;
  const bool phased = sh > 1 || sw > 1;
  const int HW = H * W;
  const size_t PQK = size_t(P) * Q * K;
  const size_t tile_scratch = merge_row ? size_t(MR) * R * S * K : 0;

  auto build = [&](int m0, int cnt, const float** a, int* woff, int* len, float** out,
                   float* ts) {
    const float* dyb[kMaxMR];
    int th[kMaxMR], tw[kMaxMR];
    for (int i = 0; i < cnt; ++i) {
      const int m = m0 + i, n = m / HW;
      int rem = m % HW, h = 0, wi = 0;
      if (!phased) {
        h = rem / W;
        wi = rem % W;
      } else {
        for (int ph = 0; ph < sh; ++ph) {
          const int nh = ph < H ? (H - 1 - ph) / sh + 1 : 0;
          bool found = false;
          for (int pw = 0; pw < sw; ++pw) {
            const int nw = pw < W ? (W - 1 - pw) / sw + 1 : 0;
            if (rem < nh * nw) {
              h = ph + (rem / nw) * sh;
              wi = pw + (rem % nw) * sw;
              found = true;
              break;
            }
            rem -= nh * nw;
          }
          if (found) break;
        }
      }
      out[i] = dx + (size_t(n) * HW + size_t(h) * W + wi) * C;
      dyb[i] = dy + size_t(n) * PQK;
      th[i] = h + p.pad_h;
      tw[i] = wi + p.pad_w;
    }
    int nseg = 0;
    for (int r = 0; r < R; ++r) {
      bool hv[kMaxMR];
      int prow[kMaxMR];
      bool any = false;
      for (int i = 0; i < cnt; ++i) {
        const int num = th[i] - r * p.dil_h;
        hv[i] = num >= 0 && num % sh == 0 && num / sh < P;
        prow[i] = hv[i] ? num / sh : 0;
        any |= hv[i];
      }
      if (!any) continue;
      if (merge_row) {
        // Taps s = S-1 .. 0 read dy columns q0 = tw - (S-1) .. tw, contiguous.
        for (int i = 0; i < cnt; ++i) {
          const float* dr = dyb[i] + size_t(prow[i]) * Q * K;
          const int q0 = tw[i] - (S - 1);
          if (!hv[i]) {
            a[nseg * MR + i] = zero;
          } else if (q0 >= 0 && tw[i] < Q) {
            a[nseg * MR + i] = dr + ptrdiff_t(q0) * K;
          } else {
            for (int sp = 0; sp < S; ++sp) {
              const int q = q0 + sp;
              copy_or_zero(ts + sp * K, q >= 0 && q < Q ? dr + size_t(q) * K : nullptr, K);
            }
            a[nseg * MR + i] = ts;
            ts += S * K;
          }
        }
        woff[nseg] = r * S * K;
        len[nseg] = S * K;
        ++nseg;
        continue;
      }
      for (int s = 0; s < S; ++s) {
        bool used = false;
        for (int i = 0; i < cnt; ++i) {
          const int num = tw[i] - s * p.dil_w;
          const bool v = hv[i] && num >= 0 && num % sw == 0 && num / sw < Q;
          a[nseg * MR + i] = v ? dyb[i] + (size_t(prow[i]) * Q + num / sw) * K : zero;
          used |= v;
        }
        if (!used) continue;
        woff[nseg] = (r * S + (S - 1 - s)) * K;
        len[nseg] = K;
        ++nseg;
      }
    }
    return nseg;
  };
  gemm::igemm_run(plan, M, C, red, packed.data(), nullptr, false, R * S, tile_scratch, build);
}

// ---- backward filter: dw[r, (s,c), k] = sum over pixels of x[tap (r,s) of pixel, c] *
// dy[pixel, k]. Rows of dw are blocked MB at a time along (s,c) (contiguous in x when
// dil_w == 1, so one block may span several taps), columns NV vectors at a time. Pixels are
// visited in blocks of whole output rows so that their x and dy stay in cache while every dw
// block passes over them.
void conv2d_bwd_filter(float* dw, float* db, const float* dy, const float* x,
                       const ConvParams& p) {
  const int K = p.K, C = p.C, R = p.R, S = p.S, H = p.H, W = p.W, P = p.P, Q = p.Q;
  const int sh = p.stride_h, sw = p.stride_w, pw = p.pad_w;
  if (K <= 0) return;
  const int SC = S * C;
  const size_t wsize = size_t(R) * SC * K;
  const gemm::IgPlan plan = gemm::op_plan(K);
  const int MBmax = plan.mr, WB = plan.nv * kL, nkb = cdiv(K, WB);
  const bool merge = p.dil_w == 1;

  // The row blocks of one filter row r: [j0, j0 + mb) within its S*C rows, taps s_lo..s_hi.
  const int njb = SC <= 0 ? 0 : merge ? cdiv(SC, MBmax) : S * cdiv(C, MBmax);
  gemm::Arena jarena(4 * gemm::Arena::bytes_for(size_t(imax(njb, 1)), sizeof(int)));
  int* jb_j0 = jarena.take<int>(size_t(imax(njb, 1)));
  int* jb_mb = jarena.take<int>(size_t(imax(njb, 1)));
  int* jb_slo = jarena.take<int>(size_t(imax(njb, 1)));
  int* jb_shi = jarena.take<int>(size_t(imax(njb, 1)));
  if (merge) {
    for (int i = 0; i < njb; ++i) {
      const int j0 = int(size_t(SC) * i / njb), j1 = int(size_t(SC) * (i + 1) / njb);
      jb_j0[i] = j0;
      jb_mb[i] = j1 - j0;
      jb_slo[i] = j0 / C;
      jb_shi[i] = (j1 - 1) / C;
    }
  } else if (njb > 0) {
    const int per = cdiv(C, MBmax);
    for (int s = 0; s < S; ++s) {
      for (int i = 0; i < per; ++i) {
        const int c0 = C * i / per, c1 = C * (i + 1) / per, idx = s * per + i;
        jb_j0[idx] = s * C + c0;
        jb_mb[idx] = c1 - c0;
        jb_slo[idx] = jb_shi[idx] = s;
      }
    }
  }

  const size_t npr = size_t(p.N) * P;  // output rows (n, p)
  const double row_flops = 2.0 * Q * K * double(wsize / size_t(K ? K : 1));
  const size_t grain = size_t(imax(1, int(2e6 / (row_flops + 1.0))));
  const int pb_rows = imax(1, 128 / imax(Q, 1));
  const size_t max_runs = size_t(pb_rows) * size_t(imax(Q, 1));
  const size_t HWC = size_t(H) * W * C;

  gemm::chunked_accumulate(dw, wsize, db, K, npr, grain, [&](float* dwc, float* dbc, size_t b,
                                                           size_t e) {
    gemm::Arena arena(gemm::Arena::bytes_for(max_runs, sizeof(gemm::OpRun)));
    gemm::OpRun* runs = arena.take<gemm::OpRun>(max_runs);
    for (size_t rb = b; rb < e; rb += size_t(pb_rows)) {
      const size_t re = rb + size_t(pb_rows) < e ? rb + size_t(pb_rows) : e;
      for (int r = 0; r < R && Q > 0; ++r) {
        for (int jb = 0; jb < njb; ++jb) {
          const int j0 = jb_j0[jb], mb = jb_mb[jb], s_lo = jb_slo[jb], s_hi = jb_shi[jb];
          int nruns = 0;
          for (size_t row = rb; row < re; ++row) {
            const int n = int(row / P), op = int(row % P);
            const int h = op * sh - p.pad_h + r * p.dil_h;
            if (h < 0 || h >= H) continue;
            const float* xrow = x + size_t(n) * HWC + size_t(h) * W * C;
            const float* dyrow = dy + row * Q * K;
            if (merge) {
              // Pixel q reads input columns q*sw - pw + [s_lo, s_hi]: all inside for q in
              // [fa, fz], some inside for q in [qa, qz].
              const int qa = imax(0, ceil_div(pw - s_hi, sw));
              const int qz = imin(Q - 1, floor_div(W - 1 + pw - s_lo, sw));
              const int fa = imax(qa, ceil_div(pw - s_lo, sw));
              const int fz = imin(qz, floor_div(W - 1 + pw - s_hi, sw));
              for (int q = qa; q <= qz;) {
                const int wq = q * sw - pw;
                gemm::OpRun& run = runs[nruns++];
                run.dy = dyrow + size_t(q) * K;
                if (q >= fa && q <= fz) {
                  run.x = xrow + (ptrdiff_t(wq) * C + j0);
                  run.n = fz - q + 1;
                  run.mlo = 0;
                  run.mhi = mb;
                  q = fz + 1;
                } else {
                  const int sa = imax(s_lo, -wq), sb = imin(s_hi, W - 1 - wq);
                  const int jlo = imax(j0, sa * C), jhi = imin(j0 + mb, (sb + 1) * C);
                  run.x = xrow + (ptrdiff_t(wq) * C + jlo);
                  run.n = 1;
                  run.mlo = jlo - j0;
                  run.mhi = jhi - j0;
                  ++q;
                }
              }
            } else {
              const int off = s_lo * p.dil_w - pw;  // input column of pixel q is q*sw + off
              const int qa = imax(0, ceil_div(-off, sw));
              const int qz = imin(Q - 1, floor_div(W - 1 - off, sw));
              if (qa > qz) continue;
              gemm::OpRun& run = runs[nruns++];
              run.x = xrow + ptrdiff_t(qa * sw + off) * C + (j0 - s_lo * C);
              run.dy = dyrow + size_t(qa) * K;
              run.n = qz - qa + 1;
              run.mlo = 0;
              run.mhi = mb;
            }
          }
          if (nruns == 0) continue;
          gemm::OpTile t;
          t.dw = dwc + (size_t(r) * SC + j0) * K;
          t.ldw = size_t(K);
          t.runs = runs;
          t.nruns = nruns;
          t.xs = size_t(sw) * C;
          t.ds = size_t(K);
          for (int kb = 0; kb < nkb; ++kb) {
            t.col0 = kb * WB;
            t.dy_off = size_t(t.col0);
            t.ncols = imin(WB, K - t.col0);
            gemm::op_fn(mb, cdiv(t.ncols, kL))(t);
          }
        }
      }
      if (dbc) gemm::add_rows(dbc, dy + rb * Q * K, (re - rb) * Q, K);
    }
  });
}

}  // namespace CK_ISA_NS
}  // namespace ck
