// Vectorized 2-D convolution (NHWC activations, HWIO weights), all three passes, on the
// register-blocked micro-kernels of gemm.simd.h. No im2col buffer: the forward and
// backward-data passes are indirect GEMMs over per-tap row pointers, the backward-filter pass an
// outer-product accumulation over runs of pixels.
#include <cstring>

#include "conv2d_small.h"
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

constexpr int kMaxPbRows = 128;  // backward filter: output rows per pixel block (at most)

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
// HWIO weights are already the packed layout when K fills exactly one column block (K = 16,
// 32, 48 or 64 with AVX-512): the GEMM reads them in place, with no copy.
size_t conv2d_packed_floats(const ConvParams& p) {
  const gemm::IgPlan plan = gemm::ig_plan(p.K);
  if (p.K <= 0 || (!plan.dot && p.K == plan.nv * gemm::kL) || conv2d_small_reduction(p)) return 0;
  return gemm::packed_floats(plan, size_t(p.R) * p.S * p.C, p.K);
}

namespace {
void pack_hwio(float* packed, const float* w, const ConvParams& p) {
  const int K = p.K;
  gemm::pack_weights(gemm::ig_plan(K), packed, size_t(p.R) * p.S * p.C, K, 1,
                     [&](size_t i) { return w + i * K; });
}
}  // namespace

void conv2d_pack_weights(float* packed, const float* w, const ConvParams& p) {
  if (conv2d_packed_floats(p) > 0) pack_hwio(packed, w, p);
}

void conv2d_fwd(float* y, const float* x, const float* w, const float* b, const ConvParams& p,
                Act act) {
  conv2d_fwd_packed(y, x, w, nullptr, b, p, act);
}

void conv2d_fwd_packed(float* y, const float* x, const float* w, const float* packed_w,
                       const float* b, const ConvParams& p, Act act) {
  if (conv2d_small_fwd(y, x, w, b, p, act)) return;  // few input channels: direct kernel
  if (!epilogue_act(act)) {
    ref::conv2d_fwd(y, x, w, b, p, act);  // rejects the unsupported fused activation
    return;
  }
  const int K = p.K, C = p.C, R = p.R, S = p.S, H = p.H, W = p.W, P = p.P, Q = p.Q;
  const int M = p.N * P * Q;
  if (M <= 0 || K <= 0) return;
  const gemm::IgPlan plan = gemm::ig_plan(K);
  const int MR = plan.mr;
  const size_t red = size_t(R) * S * C;
  const bool in_place = !plan.dot && K == plan.nv * gemm::kL;
  Scratch packed(in_place || packed_w ? 0 : gemm::packed_floats(plan, red, K));
  if (!in_place && !packed_w) pack_hwio(packed.data(), w, p);
  const float* wp = in_place ? w : packed_w ? packed_w : packed.data();
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

  // What the tile builder reads, copied into a local inside it so that the compiler keeps it
  // in registers while storing pointers.
  struct Geo {
    const float* x;
    float* y;
    const float* zero;
    int K, C, R, S, H, W, P, Q, MR, dh;
    size_t HWC;
    ptrdiff_t row_step;
    bool merge_row;
    ConvParams p;
  };
  const Geo geo{x, y, zero, K, C, R, S, H, W, P, Q, MR, dh, HWC, row_step, merge_row, p};
  auto build = [&geo](int m0, int cnt, const float** a, int* woff, int* len, float** out,
                   float* ts) {
    const Geo g = geo;  // local copy: the pointer stores below cannot alias it
    // Per output pixel: offset of its tap (0,0) input, live filter rows [rlo, rhi), and
    // whether its g.S taps all fall inside the image horizontally.
    ptrdiff_t off[kMaxMR];
    int wb[kMaxMR], rlo[kMaxMR], rhi[kMaxMR];
    bool inside[kMaxMR];
    int r_min = g.R, r_max = 0;
    int n = m0 / (g.P * g.Q), rem = m0 % (g.P * g.Q), op = rem / g.Q, oq = rem % g.Q;
    for (int i = 0; i < cnt; ++i) {
      const int hb = op * g.p.stride_h - g.p.pad_h;
      wb[i] = oq * g.p.stride_w - g.p.pad_w;
      off[i] = ptrdiff_t(n) * ptrdiff_t(g.HWC) + (ptrdiff_t(hb) * g.W + wb[i]) * g.C;
      if (g.dh == 1) {  // (no divisions on the common path)
        rlo[i] = imax(0, -hb);
        rhi[i] = imin(g.R, g.H - hb);
      } else {
        rlo[i] = imax(0, ceil_div(-hb, g.dh));
        rhi[i] = imin(g.R, floor_div(g.H - 1 - hb, g.dh) + 1);
      }
      inside[i] = wb[i] >= 0 && wb[i] + (g.S - 1) * g.p.dil_w < g.W;
      r_min = imin(r_min, rlo[i]);
      r_max = imax(r_max, rhi[i]);
      out[i] = g.y + size_t(m0 + i) * g.K;
      if (++oq == g.Q) {
        oq = 0;
        if (++op == g.P) op = 0, ++n;
      }
    }
    int nseg = 0;
    for (int r = r_min; r < r_max; ++r) {
      if (g.merge_row) {
        for (int i = 0; i < cnt; ++i) {
          const float*& ai = a[nseg * g.MR + i];
          if (r < rlo[i] || r >= rhi[i]) {
            ai = g.zero;
          } else if (inside[i]) {
            ai = g.x + (off[i] + r * g.row_step);
          } else {
            const float* xr = g.x + (off[i] + r * g.row_step - ptrdiff_t(wb[i]) * g.C);  // column 0
            for (int s = 0; s < g.S; ++s) {
              const int wi = wb[i] + s;
              copy_or_zero(ts + s * g.C, wi >= 0 && wi < g.W ? xr + size_t(wi) * g.C : nullptr, g.C);
            }
            ai = ts;
            ts += g.S * g.C;
          }
        }
        woff[nseg] = r * g.S * g.C;
        len[nseg] = g.S * g.C;
        ++nseg;
        continue;
      }
      for (int s = 0; s < g.S; ++s) {
        bool used = false;
        for (int i = 0; i < cnt; ++i) {
          const int wi = wb[i] + s * g.p.dil_w;
          const bool v = r >= rlo[i] && r < rhi[i] && wi >= 0 && wi < g.W;
          a[nseg * g.MR + i] = v ? g.x + (off[i] + r * g.row_step + ptrdiff_t(s) * g.p.dil_w * g.C) : g.zero;
          used |= v;
        }
        if (!used) continue;
        woff[nseg] = (r * g.S + s) * g.C;
        len[nseg] = g.C;
        ++nseg;
      }
    }
    return nseg;
  };
  gemm::igemm_run(plan, M, K, red, wp, b, act, R * S, tile_scratch,
                  build);
}

namespace {

// dst[0..n) += src[0..n).
inline void add_to(float* dst, const float* src, int n) {
  if (n < kL) {
    for (int i = 0; i < n; ++i) dst[i] += src[i];
    return;
  }
  int i = 0;
  for (; i + kL <= n; i += kL) (Vec::load(dst + i) + Vec::load(src + i)).store(dst + i);
  if (i < n) {
    const int rem = n - i;
    (Vec::load_partial(dst + i, rem) + Vec::load_partial(src + i, rem)).store_partial(dst + i, rem);
  }
}

// Backward data as "GEMM then col2im": dcol[pixel, (r,s,c)] = dy[pixel, :] . W[r,s,c,:] for a
// block of dy pixels, then each dcol row is added into the dx pixels its taps read. No
// multiply is wasted on taps in the padding, which makes it the better method when many dx
// pixels see few taps (valid convolutions) or C is too narrow for a vector of output columns.
// Threads take whole images, so each dx element is summed in one fixed order.
void bwd_data_col2im(float* dx, const float* dy, const float* w, const ConvParams& p) {
  const int K = p.K, C = p.C, R = p.R, S = p.S, H = p.H, W = p.W, P = p.P, Q = p.Q;
  const int RSC = R * S * C, PQ = P * Q;
  const gemm::IgPlan plan = gemm::ig_plan(RSC);
  // W as [K rows][RSC columns]: element (k, j) = w[j*K + k], the transpose of HWIO's [RSC][K],
  // moved by register squares (column by column, its stride of K floats thrashes L1).
  Scratch packed(gemm::packed_floats(plan, size_t(K), RSC));
  if (plan.dot) {
    gemm::pack_weights(plan, packed.data(), size_t(K), RSC, size_t(K), [&](size_t k) { return w + k; });
  } else {
    gemm::pack_cols_transposed(packed.data(), size_t(K), RSC, plan.nv * kL, w, size_t(K));
  }
  // dy pixels per block: dcol of a block ~128 KB.
  const int blk = imax(1, imin(PQ, 32768 / imax(RSC, 1)));
  const size_t img_x = size_t(H) * W * C, img_y = size_t(PQ) * K;
  const double img_flops = 2.0 * PQ * K * double(RSC);
  parallel_for(size_t(p.N), gemm::grain_for(img_flops), [&](size_t nb, size_t ne, int) {
    Scratch dcol(size_t(blk) * RSC);
    for (size_t n = nb; n < ne; ++n) {
      float* dxn = dx + n * img_x;
      const float* dyn = dy + n * img_y;
      std::memset(dxn, 0, img_x * sizeof(float));
      for (int m0 = 0; m0 < PQ; m0 += blk) {
        const int cnt = imin(blk, PQ - m0);
        auto build = [&](int t0, int tc, const float** a, int* woff, int* len, float** out,
                         float*) {
          for (int i = 0; i < tc; ++i) {
            a[i] = dyn + size_t(m0 + t0 + i) * K;
            out[i] = dcol.data() + size_t(t0 + i) * RSC;
          }
          woff[0] = 0;
          len[0] = K;
          return 1;
        };
        gemm::igemm_run(plan, cnt, RSC, size_t(K), packed.data(), nullptr, Act::None, 1, 0, build);
        int op = m0 / Q, oq = m0 % Q;  // output pixel of block row i
        for (int i = 0; i < cnt; ++i) {
          if (i > 0 && ++oq == Q) oq = 0, ++op;
          const float* src = dcol.data() + size_t(i) * RSC;
          const int w0 = oq * p.stride_w - p.pad_w;
          const bool whole_row = p.dil_w == 1 && w0 >= 0 && w0 + S - 1 < W;
          for (int r = 0; r < R; ++r) {
            const int h = op * p.stride_h - p.pad_h + r * p.dil_h;
            if (h < 0 || h >= H) continue;
            float* dxr = dxn + size_t(h) * W * C;
            if (whole_row) {  // the S taps of the row cover S*C contiguous dx values
              add_to(dxr + size_t(w0) * C, src + r * S * C, S * C);
              continue;
            }
            for (int s = 0; s < S; ++s) {
              const int wi = w0 + s * p.dil_w;
              if (wi < 0 || wi >= W) continue;
              add_to(dxr + size_t(wi) * C, src + (r * S + s) * C, C);
            }
          }
        }
      }
    }
  });
}

}  // namespace

namespace {

// With unit strides the data gradient is itself a forward convolution: of dy (K channels) with
// the filters flipped in space and transposed to C outputs, padded by (R-1)*dil - pad, so the
// direct kernel takes it when R*S*K is small (W2's and VGG-style 3x3 layers up to 64 filters).
bool bwd_data_direct(float* dx, const float* dy, const float* w, const ConvParams& p) {
  // (C below a vector would leave most lanes of the direct kernel's outputs empty.)
  if (p.stride_h != 1 || p.stride_w != 1 || p.P <= 0 || p.Q <= 0 || p.C < gemm::kL) return false;
  ConvParams t = p;
  t.H = p.P, t.W = p.Q, t.C = p.K;
  t.P = p.H, t.Q = p.W, t.K = p.C;
  t.pad_h = (p.R - 1) * p.dil_h - p.pad_h;
  t.pad_w = (p.S - 1) * p.dil_w - p.pad_w;
  if (t.pad_h < 0 || t.pad_w < 0 || !conv2d_small_reduction(t)) return false;
  const int R = p.R, S = p.S, C = p.C, K = p.K;
  Scratch flipped(size_t(R) * S * C * K);  // [R-1-r][S-1-s][k][c] = w[r][s][c][k]
  for (int r = 0; r < R; ++r)
    for (int s = 0; s < S; ++s) {
      const float* src = w + size_t(r * S + s) * C * K;
      float* dst = flipped.data() + size_t((R - 1 - r) * S + (S - 1 - s)) * K * C;
      for (int c = 0; c < C; ++c)
        for (int k = 0; k < K; ++k) dst[size_t(k) * C + c] = src[size_t(c) * K + k];
    }
  return conv2d_small_fwd(dx, dy, flipped.data(), nullptr, t, Act::None);
}

}  // namespace

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
  if (bwd_data_direct(dx, dy, w, p)) return;
  // GEMM + col2im when enough images keep the threads busy and the tap-by-tap product below
  // would waste many lanes (narrow C) or many taps (dx pixels mostly outside every window).
  const double coverage = double(P) * Q * sh * sw / (double(H) * W);
  if (p.N >= num_threads() && P > 0 && Q > 0 && (C <= gemm::kMaxDotC || coverage < 0.75)) {
    bwd_data_col2im(dx, dy, w, p);
    return;
  }
  const gemm::IgPlan plan = gemm::ig_plan(C);
  const int MR = plan.mr;
  const size_t red = size_t(R) * S * K;
  Scratch packed(gemm::packed_floats(plan, red, C));
  gemm::pack_weights(plan, packed.data(), red, C, size_t(K), [&](size_t i) {
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

  struct Geo {  // see conv2d_fwd
    float* dx;
    const float* dy;
    const float* zero;
    int K, C, R, S, H, W, P, Q, MR, HW, sh, sw;
    size_t PQK;
    bool phased, merge_row;
    ConvParams p;
  };
  const Geo geo{dx, dy, zero, K, C, R, S, H, W, P, Q, MR, HW, sh, sw, PQK, phased, merge_row, p};
  auto build = [&geo](int m0, int cnt, const float** a, int* woff, int* len, float** out,
                   float* ts) {
    const Geo g = geo;  // local copy: the pointer stores below cannot alias it
    const float* dyb[kMaxMR];
    int th[kMaxMR], tw[kMaxMR];
    for (int i = 0; i < cnt; ++i) {
      const int m = m0 + i, n = m / g.HW;
      int rem = m % g.HW, h = 0, wi = 0;
      if (!g.phased) {
        h = rem / g.W;
        wi = rem % g.W;
      } else {
        for (int ph = 0; ph < g.sh; ++ph) {
          const int nh = ph < g.H ? (g.H - 1 - ph) / g.sh + 1 : 0;
          bool found = false;
          for (int pw = 0; pw < g.sw; ++pw) {
            const int nw = pw < g.W ? (g.W - 1 - pw) / g.sw + 1 : 0;
            if (rem < nh * nw) {
              h = ph + (rem / nw) * g.sh;
              wi = pw + (rem % nw) * g.sw;
              found = true;
              break;
            }
            rem -= nh * nw;
          }
          if (found) break;
        }
      }
      out[i] = g.dx + (size_t(n) * g.HW + size_t(h) * g.W + wi) * g.C;
      dyb[i] = g.dy + size_t(n) * g.PQK;
      th[i] = h + g.p.pad_h;
      tw[i] = wi + g.p.pad_w;
    }
    int nseg = 0;
    for (int r = 0; r < g.R; ++r) {
      bool hv[kMaxMR];
      int prow[kMaxMR];
      bool any = false;
      for (int i = 0; i < cnt; ++i) {
        const int num = th[i] - r * g.p.dil_h;
        if (g.sh == 1) {  // (no divisions on the common path)
          hv[i] = num >= 0 && num < g.P;
          prow[i] = num;
        } else {
          hv[i] = num >= 0 && num % g.sh == 0 && num / g.sh < g.P;
          prow[i] = hv[i] ? num / g.sh : 0;
        }
        any |= hv[i];
      }
      if (!any) continue;
      if (g.merge_row) {
        // Taps s = g.S-1 .. 0 read g.dy columns q0 = tw - (g.S-1) .. tw, contiguous.
        for (int i = 0; i < cnt; ++i) {
          if (!hv[i]) {
            a[nseg * g.MR + i] = g.zero;
            continue;
          }
          // Only for a valid row: prow of an invalid one may be negative (an overflowed pointer).
          const float* dr = dyb[i] + size_t(prow[i]) * g.Q * g.K;
          const int q0 = tw[i] - (g.S - 1);
          if (q0 >= 0 && tw[i] < g.Q) {
            a[nseg * g.MR + i] = dr + ptrdiff_t(q0) * g.K;
          } else {
            for (int sp = 0; sp < g.S; ++sp) {
              const int q = q0 + sp;
              copy_or_zero(ts + sp * g.K, q >= 0 && q < g.Q ? dr + size_t(q) * g.K : nullptr, g.K);
            }
            a[nseg * g.MR + i] = ts;
            ts += g.S * g.K;
          }
        }
        woff[nseg] = r * g.S * g.K;
        len[nseg] = g.S * g.K;
        ++nseg;
        continue;
      }
      for (int s = 0; s < g.S; ++s) {
        bool used = false;
        for (int i = 0; i < cnt; ++i) {
          const int num = tw[i] - s * g.p.dil_w;
          const bool v = hv[i] && num >= 0 && num % g.sw == 0 && num / g.sw < g.Q;
          a[nseg * g.MR + i] = v ? dyb[i] + (size_t(prow[i]) * g.Q + num / g.sw) * g.K : g.zero;
          used |= v;
        }
        if (!used) continue;
        woff[nseg] = (r * g.S + (g.S - 1 - s)) * g.K;
        len[nseg] = g.K;
        ++nseg;
      }
    }
    return nseg;
  };
  gemm::igemm_run(plan, M, C, red, packed.data(), nullptr, Act::None, R * S, tile_scratch, build);
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
  const size_t grain = gemm::grain_for(row_flops);
  const int pb_rows = imax(1, kMaxPbRows / imax(Q, 1));  // ~128 pixels per block
  const size_t max_runs = size_t(pb_rows) * size_t(imax(Q, 1));
  const size_t HWC = size_t(H) * W * C;

  gemm::chunked_accumulate(dw, wsize, db, K, npr, grain, [&](float* dwc, float* dbc, size_t b,
                                                           size_t e) {
    gemm::Arena arena(gemm::Arena::bytes_for(max_runs, sizeof(gemm::OpRun)));
    gemm::OpRun* runs = arena.take<gemm::OpRun>(max_runs);
    for (size_t rb = b; rb < e; rb += size_t(pb_rows)) {
      const size_t re = rb + size_t(pb_rows) < e ? rb + size_t(pb_rows) : e;
      const int nrows = int(re - rb);
      // Per output row of the block: image offset and top input row of its windows.
      ptrdiff_t img_off[kMaxPbRows];
      int h0[kMaxPbRows];
      for (int i = 0, n = int(rb / P), op = int(rb % P); i < nrows; ++i) {
        img_off[i] = ptrdiff_t(n) * ptrdiff_t(HWC);
        h0[i] = op * sh - p.pad_h;
        if (++op == P) op = 0, ++n;
      }
      for (int r = 0; r < R && Q > 0; ++r) {
        for (int jb = 0; jb < njb; ++jb) {
          const int j0 = jb_j0[jb], mb = jb_mb[jb], s_lo = jb_slo[jb], s_hi = jb_shi[jb];
          // Pixel q reads input columns q*sw - pw + [s_lo, s_hi] (times dil_w when the block
          // is one tap): all inside for q in [fa, fz], some inside for q in [qa, qz].
          int qa, qz, fa, fz;
          if (merge) {
            qa = imax(0, ceil_div(pw - s_hi, sw));
            qz = imin(Q - 1, floor_div(W - 1 + pw - s_lo, sw));
            fa = imax(qa, ceil_div(pw - s_lo, sw));
            fz = imin(qz, floor_div(W - 1 + pw - s_hi, sw));
          } else {
            const int off = s_lo * p.dil_w - pw;
            qa = fa = imax(0, ceil_div(-off, sw));
            qz = fz = imin(Q - 1, floor_div(W - 1 - off, sw));
          }
          if (qa > qz) continue;
          int nruns = 0;
          for (int i = 0; i < nrows; ++i) {
            const int h = h0[i] + r * p.dil_h;
            if (h < 0 || h >= H) continue;
            const float* xrow = x + (img_off[i] + ptrdiff_t(h) * W * C);
            const float* dyrow = dy + (rb + size_t(i)) * Q * K;
            if (!merge) {
              gemm::OpRun& run = runs[nruns++];
              run.x = xrow + ptrdiff_t(qa * sw - pw + s_lo * p.dil_w) * C + (j0 - s_lo * C);
              run.dy = dyrow + size_t(qa) * K;
              run.n = qz - qa + 1;
              run.mlo = 0;
              run.mhi = mb;
              continue;
            }
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
