// Direct forward convolution for layers with few input channels, such as a CNN's first layer
// (R*S*C of 25 or 27). The indirect GEMM of conv2d.simd.cpp builds a pointer per filter row and
// output pixel for every tile, which costs about as much as the few multiplies such a short
// reduction needs. Here a tile is MQ consecutive output pixels of one row x NV vectors of output
// channels, and pixel i of a tile finds the input of reduction row j by arithmetic, at
// x0 + off[j] + i * stride_w * C. Where padding cuts the windows, a band of output rows reads a
// zero-padded copy of its input rows instead of x. A pointwise layer (1x1, unit strides, no
// padding: MobileNet's expansions and projections) reads pixel m of x for pixel m of y, so its
// N*P*Q pixels are tiled as one run cut into rows of kPointwiseRow pixels, not at the image's
// row ends (a 7- or 14-pixel row ends in short tiles that keep fewer accumulators busy). Every
// output value is bias + its R*S*C products summed in reduction order by one tile, whatever the
// tiling and the thread count.
#include <cstring>
#include <utility>

#include "../memory.h"
#include "../thread_pool.h"
#include "conv2d_small.h"
#include "gemm.simd.h"

// GCC 12 warns that _mm512_max_ps's internal _mm512_undefined_ps() "may be used uninitialized".
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace ck {
namespace CK_ISA_NS {
namespace {

using gemm::cdiv;
using gemm::kL;

// Largest reduction R*S*C taken here (Blocking::kSmallConvMaxReduction). Measured on one
// thread, 'same' 32x32 layers with K 32 and 64: 1.2-3x the GEMM's rate up to C = 16 at 3x3 and
// C = 6 at 5x5 (R*S*C 144-150), then the two about even, the GEMM's per-tile overhead
// amortised. On two threads with AVX-512 the direct kernel stays 4-8% ahead on 3x3 layers up to
// C = 64 (W2's, the large 56x56 one); with AVX2 the two are level there: 576 and 160.
constexpr int kMaxReduction = Blocking::kSmallConvMaxReduction;

// Vectors of output channels per tile, and the most output pixels per tile for each count:
// MQ*NV accumulators + NV weight vectors + 1 broadcast fit the register file (Blocking).
constexpr int kMaxNV = Blocking::kSmallConvMaxVecs;
constexpr const int (&kMaxMQ)[kMaxNV] = Blocking::kSmallConvPixels;

// Largest zero-padded copy of input rows a thread keeps (floats); output rows are processed in
// bands whose input rows fit.
constexpr int64_t kMaxPadFloats = 16384;

// Pixels per row of a pointwise layer's run: several of the widest tiles (kMaxMQ[0] pixels)
// while the row's inputs stay within L1 across the column blocks (576-channel rows: 36 KB).
constexpr int kPointwiseRow = 4 * kMaxMQ[0];

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

struct Tile {
  const float* x;        // the input of the tile's first pixel's tap (0, 0), channel 0
  const ptrdiff_t* off;  // [red] x offset of reduction row j (tap r, s, channel c; HWIO order)
  int red;
  ptrdiff_t xs;          // x distance between consecutive output pixels (stride_w * C)
  const float* w;        // weights at column col0; reduction row j at w + j * ldw
  ptrdiff_t ldw;
  const float* bias;     // zero-padded bias at column col0
  float* y;              // outputs of the tile's first pixel at column col0
  ptrdiff_t ldy;         // y distance between consecutive pixels (K)
  int ncols;             // columns to store, in ((NV-1)*kL, NV*kL]
  EpilogueClamp clamp;
};

template <int MQ, int NV>
void fwd_tile(const Tile& t) {
  Vec acc[MQ][NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) acc[0][v] = Vec::load(t.bias + v * kL);
#pragma GCC unroll 16
  for (int i = 1; i < MQ; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = acc[0][v];
  const float* w = t.w;
  const ptrdiff_t xs = t.xs, ldw = t.ldw;
  for (int j = 0; j < t.red; ++j, w += ldw) {
    Vec b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = Vec::load(w + v * kL);
    const float* xp = t.x + t.off[j];
#pragma GCC unroll 16
    for (int i = 0; i < MQ; ++i) {
      const Vec a = Vec::set1(xp[i * xs]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = fmadd(a, b[v], acc[i][v]);
    }
  }
  // (Locals: the stores below could alias t.)
  float* const y = t.y;
  const ptrdiff_t ldy = t.ldy;
  const int ncols = t.ncols;
  const EpilogueClamp clamp = t.clamp;
  const Vec zero = Vec::zero(), six = Vec::set1(6.f);
#pragma GCC unroll 16
  for (int i = 0; i < MQ; ++i) {
    float* o = y + i * ldy;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      Vec out = acc[i][v];
      if (clamp.relu) out = max(out, zero);
      if (clamp.relu6) out = min(out, six);
      const int left = ncols - v * kL;
      if (left >= kL) {
        out.store(o + v * kL);
      } else {
        out.store_partial(o + v * kL, left);
      }
    }
    if (clamp.smooth) gemm::smooth_epilogue(o, ncols, clamp.act);
  }
}

using TileFn = void (*)(const Tile&);

template <int NV, int... I>
TileFn pick_mq(int mq, std::integer_sequence<int, I...>) {
  static constexpr TileFn fns[] = {fwd_tile<I + 1, NV>...};
  return fns[mq - 1];
}

// The tile of mq pixels x nv vectors (mq <= kMaxMQ[nv - 1]).
template <int NV = 1>
TileFn tile_fn(int nv, int mq) {
  if constexpr (NV == kMaxNV) {
    return pick_mq<NV>(mq, std::make_integer_sequence<int, kMaxMQ[NV - 1]>());
  } else {
    if (nv == NV) return pick_mq<NV>(mq, std::make_integer_sequence<int, kMaxMQ[NV - 1]>());
    return tile_fn<NV + 1>(nv, mq);
  }
}

// dst[0, Wp*C) = the input row src (W pixels of C channels) shifted right by pw pixels, zeros
// in the padding and past the row's end.
void copy_padded_row(float* dst, const float* src, int W, int C, int pw, int64_t Wp) {
  const int64_t left = min64(pw, Wp), mid = min64(W, Wp - left), right = Wp - left - mid;
  std::memset(dst, 0, size_t(left * C) * sizeof(float));
  std::memcpy(dst + left * C, src, size_t(mid * C) * sizeof(float));
  std::memset(dst + (left + mid) * C, 0, size_t(right * C) * sizeof(float));
}

}  // namespace

bool conv2d_small_reduction(const ConvParams& p) {
  const int64_t red = int64_t(p.R) * p.S * p.C;
  return red > 0 && red <= kMaxReduction;
}

bool conv2d_small_fwd(float* y, const float* x, const float* w, const float* b,
                      const ConvParams& p, Act act) {
  if (!epilogue_act(act)) return false;
  const int64_t red = int64_t(p.R) * p.S * p.C;
  if (red <= 0 || red > kMaxReduction || p.K <= 0 || p.N <= 0 || p.P <= 0 || p.Q <= 0) return false;
  const int K = p.K, C = p.C, R = p.R, S = p.S, H = p.H, W = p.W, P = p.P, Q = p.Q;
  const int sh = p.stride_h, sw = p.stride_w, ph = p.pad_h, pw = p.pad_w;
  const int dh = p.dil_h, dw = p.dil_w;

  // Output row op reads input rows op*sh - ph + r*dh, and its pixels input columns u - pw for u
  // in [0, Wp). When all of them lie inside the image the tiles read x itself; otherwise a
  // band of output rows reads a copy of its input rows, zero-padded to Wp columns, with rows
  // of zeros above and below the image.
  const int64_t Wp = int64_t(Q - 1) * sw + int64_t(S - 1) * dw + 1;
  const int64_t window_rows = int64_t(R - 1) * dh + 1;  // input rows of one output row
  const bool copy_rows = pw > 0 || Wp > W || ph > 0 || int64_t(P - 1) * sh - ph + window_rows > H;
  const int64_t row_len = Wp * C;
  // A pointwise layer's run of pixels: `rows` rows of `run_q` pixels (the last one shorter),
  // at least one row per thread where the run has as many pixels.
  const bool pointwise = R == 1 && S == 1 && sh == 1 && sw == 1 && !copy_rows && P == H && Q == W;
  const int64_t pixels = int64_t(p.N) * P * Q;
  const int64_t run_q = pointwise ? min64(kPointwiseRow, max64(1, (pixels + num_threads() - 1) / num_threads())) : Q;
  const int64_t rows = pointwise ? (pixels + run_q - 1) / run_q : int64_t(p.N) * P;
  if (copy_rows && window_rows * row_len > kMaxPadFloats) {
    return false;  // (very wide rows, huge padding or dilation) the GEMM's zero pointers
                   // cost less than the copies
  }
  // Output rows per band, so that a band's input rows fit in kMaxPadFloats.
  const int band =
      copy_rows ? int(min64(P, 1 + (kMaxPadFloats / row_len - window_rows) / sh)) : P;
  const int64_t band_rows = int64_t(band - 1) * sh + window_rows;
  const ptrdiff_t pitch = copy_rows ? ptrdiff_t(row_len) : ptrdiff_t(W) * C;  // x row to row

  // Weights in place when K fills whole vectors, else copied with zeroed columns up to Kpad;
  // the bias zero-padded the same way; the offsets of the reduction rows in x.
  const int nvec = cdiv(K, kL), Kpad = nvec * kL;
  const size_t packed_w = K % kL ? size_t(red) * Kpad : 0;
  Scratch consts(packed_w + size_t(Kpad));
  float* bias = consts.data() + packed_w;
  const float* wt = w;
  ptrdiff_t ldw = K;
  if (packed_w) {
    float* pk = consts.data();
    for (int64_t j = 0; j < red; ++j) {
      std::memcpy(pk + j * Kpad, w + j * K, size_t(K) * sizeof(float));
      std::memset(pk + j * Kpad + K, 0, size_t(Kpad - K) * sizeof(float));
    }
    wt = pk;
    ldw = Kpad;
  }
  if (b) {
    std::memcpy(bias, b, size_t(K) * sizeof(float));
  } else {
    std::memset(bias, 0, size_t(K) * sizeof(float));
  }
  std::memset(bias + K, 0, size_t(Kpad - K) * sizeof(float));
  ptrdiff_t off[kMaxReduction];
  for (int r = 0, j = 0; r < R; ++r) {
    for (int s = 0; s < S; ++s) {
      for (int c = 0; c < C; ++c) off[j++] = r * dh * pitch + ptrdiff_t(s) * dw * C + c;
    }
  }

  Tile proto;
  proto.off = off;
  proto.red = int(red);
  proto.xs = ptrdiff_t(sw) * C;
  proto.ldw = ldw;
  proto.ldy = K;
  proto.clamp = EpilogueClamp(act);
  // Column blocks of at most kMaxNV vectors, balanced.
  const int nkb = cdiv(nvec, kMaxNV);
  const size_t img_x = size_t(H) * W * C;
  const double row_flops = 2.0 * double(run_q) * K * double(red);
  // Threads take runs of output rows, not whole images, so one image splits too, in runs of at
  // least a quarter of gemm::grain_for's minimum: these layers are short, and with the pool's
  // workers polling between jobs, W1's first conv at batch 1 (0.9 MFLOP) on both threads took
  // W1's batch-1 predict from a median of ~39 to ~35 us (three alternating runs). A request
  // after an idle spell pays the worker's wake-up once, whichever layer splits first.
  const size_t grain = gemm::grain_for(row_flops * 4);
  // Output columns of block kb for one row of nq pixels: x at xrow, y at yrow (column 0), in
  // pixel tiles of balanced sizes (n_big of mq + 1 pixels, then mq).
  auto run_row = [&](Tile& t, int kb, const float* xrow, float* yrow, int nq) {
    const int v0 = nvec * kb / nkb, v1 = nvec * (kb + 1) / nkb, nv = v1 - v0;
    const int col0 = v0 * kL;
    const int nqb = cdiv(nq, kMaxMQ[nv - 1]), mq = nq / nqb, n_big = nq % nqb;
    const TileFn big = n_big ? tile_fn(nv, mq + 1) : nullptr, small = tile_fn(nv, mq);
    t.w = wt + col0;
    t.bias = bias + col0;
    t.ncols = (v1 == nvec ? K : v1 * kL) - col0;
    for (int qb = 0, q0 = 0; qb < nqb; ++qb) {
      t.x = xrow + q0 * t.xs;
      t.y = yrow + col0 + size_t(q0) * K;
      if (qb < n_big) {
        big(t);
        q0 += mq + 1;
      } else {
        small(t);
        q0 += mq;
      }
    }
  };

  parallel_for(size_t(rows), grain, [&](size_t rb, size_t re, int) {
    Scratch pad(copy_rows ? size_t(band_rows * row_len) : 0);
    Tile t = proto;
    for (size_t fr = rb; fr < re;) {
      if (pointwise) {
        // Row fr: pixels [fr * run_q, ...) of the run, through every column block.
        const int64_t q0 = int64_t(fr) * run_q;
        for (int kb = 0; kb < nkb; ++kb) {
          run_row(t, kb, x + q0 * C, y + q0 * K, int(min64(run_q, pixels - q0)));
        }
        ++fr;
        continue;
      }
      const int n = int(fr / P), pa = int(fr % P);
      const int pb = int(min64(min64(P, int64_t(pa) + band), int64_t(pa) + int64_t(re - fr)));
      const float* img = x + n * img_x;
      // Input row h (any h the band reads) at in_rows + (h - h0) * pitch.
      const float* in_rows = img;
      int64_t h0 = 0;
      if (copy_rows) {
        const int64_t hlo = int64_t(pa) * sh - ph, hhi = int64_t(pb - 1) * sh - ph + window_rows;
        for (int64_t h = hlo; h < hhi; ++h) {
          float* dst = pad.data() + (h - hlo) * row_len;
          if (h < 0 || h >= H) {
            std::memset(dst, 0, size_t(row_len) * sizeof(float));
          } else {
            copy_padded_row(dst, img + h * W * C, W, C, pw, Wp);
          }
        }
        in_rows = pad.data();
        h0 = hlo;
      }
      for (int kb = 0; kb < nkb; ++kb) {
        for (int op = pa; op < pb; ++op) {
          run_row(t, kb, in_rows + (int64_t(op) * sh - ph - h0) * pitch, y + (size_t(n) * P + op) * Q * K, Q);
        }
      }
      fr += size_t(pb - pa);
    }
  });
  return true;
}

}  // namespace CK_ISA_NS
}  // namespace ck

#pragma GCC diagnostic pop
