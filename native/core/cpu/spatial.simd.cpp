// Vector spatial re-layout layers (see spatial_ref.cpp for the definitions):
//
//   zero_pad2d_fwd / bwd: row copies (threads over rows of the output / of dx)
//   upsample2d_fwd:       nearest: pixel copies; bilinear: per output row, the two source rows
//                         blended per column, vectorized over channels
//   upsample2d_bwd:       a gather per dx row over the output rows and columns that read it, so
//                         rows are independent (threads over dx rows, no write conflicts) and
//                         every sum runs in one fixed order
#include <cstring>

#include "gemm.simd.h"
#include "simd_kernels.h"

namespace ck {
namespace CK_ISA_NS {

namespace {

constexpr int L = Vec::kLanes;

// Rows per parallel chunk so that a chunk moves at least ~64 KB.
inline size_t copy_grain(size_t floats_per_row) { return 16384 / (floats_per_row + 1) + 1; }

// As in spatial_ref.cpp: output index i reads input rows lo and hi, weight frac on hi.
struct Lerp {
  int lo, hi;
  float frac;
};
Lerp axis_lerp(int i, int factor, int in, bool half_pixel) {
  const int num = half_pixel ? 2 * i + 1 - factor : i, den = half_pixel ? 2 * factor : factor;
  const int fl = num >= 0 ? num / den : -((-num + den - 1) / den);
  const int rem = num - fl * den;
  Lerp l;
  l.lo = fl < 0 ? 0 : fl;
  l.hi = rem > 0 ? fl + 1 : fl;
  if (l.hi > in - 1) l.hi = in - 1;
  if (l.hi < 0) l.hi = 0;
  l.frac = float(rem) / float(den);
  return l;
}

Lerp* axis_table(gemm::Arena& arena, int out, int factor, int in, bool half_pixel) {
  Lerp* t = arena.take<Lerp>(size_t(out));
  for (int i = 0; i < out; ++i) t[i] = axis_lerp(i, factor, in, half_pixel);
  return t;
}

// d[0..C) += s[0..C) * a
inline void add_scaled(float* d, const float* s, Vec a, int C) {
  for (int c = 0; c < C; c += L) store_n(d + c, fmadd(load_n(s + c, size_t(C - c)), a, load_n(d + c, size_t(C - c))), size_t(C - c));
}

}  // namespace

void zero_pad2d_fwd(float* y, const float* x, const Pad2dParams& p) {
  const int P = p.P(), Q = p.Q(), C = p.C;
  const size_t row = size_t(Q) * C;
  parallel_for(size_t(p.N) * P, copy_grain(row), [&](size_t b, size_t e, int) {
    for (size_t r = b; r < e; ++r) {
      float* yr = y + r * row;
      const int n = int(r / size_t(P)), h = int(r % size_t(P)) - p.top;
      if (h < 0 || h >= p.H) {
        std::memset(yr, 0, row * sizeof(float));
        continue;
      }
      std::memset(yr, 0, size_t(p.left) * C * sizeof(float));
      std::memcpy(yr + size_t(p.left) * C, x + (size_t(n) * p.H + h) * p.W * C, size_t(p.W) * C * sizeof(float));
      std::memset(yr + size_t(p.left + p.W) * C, 0, size_t(p.right) * C * sizeof(float));
    }
  });
}

void zero_pad2d_bwd(float* dx, const float* dy, const Pad2dParams& p) {
  const size_t row = size_t(p.W) * p.C;
  parallel_for(size_t(p.N) * p.H, copy_grain(row), [&](size_t b, size_t e, int) {
    for (size_t r = b; r < e; ++r) {
      const size_t n = r / size_t(p.H), h = r % size_t(p.H);
      std::memcpy(dx + r * row, dy + ((n * p.P() + h + p.top) * p.Q() + p.left) * p.C, row * sizeof(float));
    }
  });
}

void upsample2d_fwd(float* y, const float* x, const UpsampleParams& p) {
  const int P = p.P(), Q = p.Q(), C = p.C, H = p.H, W = p.W;
  const size_t row = size_t(Q) * C;
  if (p.interp == Interp::Nearest) {
    parallel_for(size_t(p.N) * P, copy_grain(row), [&](size_t b, size_t e, int) {
      for (size_t r = b; r < e; ++r) {
        const size_t n = r / size_t(P), i = r % size_t(P);
        const float* xr = x + (n * H + i / size_t(p.size_h)) * W * C;
        float* yr = y + r * row;
        for (int q = 0; q < Q; ++q) std::memcpy(yr + size_t(q) * C, xr + size_t(q / p.size_w) * C, size_t(C) * sizeof(float));
      }
    });
    return;
  }
  gemm::Arena arena(gemm::Arena::bytes_for(size_t(P), sizeof(Lerp)) + gemm::Arena::bytes_for(size_t(Q), sizeof(Lerp)));
  const Lerp* rows = axis_table(arena, P, p.size_h, H, p.half_pixel);
  const Lerp* cols = axis_table(arena, Q, p.size_w, W, p.half_pixel);
  parallel_for(size_t(p.N) * P, copy_grain(row * 4), [&](size_t b, size_t e, int) {
    for (size_t r = b; r < e; ++r) {
      const size_t n = r / size_t(P);
      const Lerp& lr = rows[r % size_t(P)];
      const float* xt = x + (n * H + size_t(lr.lo)) * W * C;
      const float* xb = x + (n * H + size_t(lr.hi)) * W * C;
      const Vec fr = Vec::set1(lr.frac);
      float* yr = y + r * row;
      for (int q = 0; q < Q; ++q) {
        const Lerp& lc = cols[q];
        const Vec fc = Vec::set1(lc.frac);
        const size_t a = size_t(lc.lo) * C, z = size_t(lc.hi) * C;
        for (int c = 0; c < C; c += L) {
          const size_t m = size_t(C - c);
          const Vec tl = load_n(xt + a + c, m), tr = load_n(xt + z + c, m);
          const Vec bl = load_n(xb + a + c, m), br = load_n(xb + z + c, m);
          const Vec top = fmadd(tr - tl, fc, tl), bottom = fmadd(br - bl, fc, bl);
          store_n(yr + size_t(q) * C + c, fmadd(bottom - top, fr, top), m);
        }
      }
    }
  });
}

void upsample2d_bwd(float* dx, const float* dy, const UpsampleParams& p) {
  const int P = p.P(), Q = p.Q(), C = p.C, H = p.H, W = p.W, sh = p.size_h, sw = p.size_w;
  const size_t row = size_t(W) * C;
  if (p.interp == Interp::Nearest) {
    parallel_for(size_t(p.N) * H, copy_grain(row * sh * sw), [&](size_t b, size_t e, int) {
      for (size_t r = b; r < e; ++r) {
        const size_t n = r / size_t(H), h = r % size_t(H);
        float* dxr = dx + r * row;
        for (int w = 0; w < W; ++w)
          for (int c = 0; c < C; c += L) {
            const size_t m = size_t(C - c);
            Vec acc = Vec::zero();
            for (int i = 0; i < sh; ++i) {
              const float* g = dy + ((n * P + h * sh + size_t(i)) * Q + size_t(w) * sw) * C + c;
              for (int j = 0; j < sw; ++j) acc = acc + load_n(g + size_t(j) * C, m);
            }
            store_n(dxr + size_t(w) * C + c, acc, m);
          }
      }
    });
    return;
  }
  // Output rows [first[h], last[h]] read input row h (as lo or hi).
  gemm::Arena arena(gemm::Arena::bytes_for(size_t(P), sizeof(Lerp)) + gemm::Arena::bytes_for(size_t(Q), sizeof(Lerp)) +
                    2 * gemm::Arena::bytes_for(size_t(H), sizeof(int)));
  const Lerp* rows = axis_table(arena, P, sh, H, p.half_pixel);
  const Lerp* cols = axis_table(arena, Q, sw, W, p.half_pixel);
  int* first = arena.take<int>(size_t(H));
  int* last = arena.take<int>(size_t(H));
  for (int h = 0; h < H; ++h) first[h] = P, last[h] = -1;
  auto reads = [&](int h, int i) {
    if (i < first[h]) first[h] = i;
    if (i > last[h]) last[h] = i;
  };
  for (int i = 0; i < P; ++i) reads(rows[i].lo, i), reads(rows[i].hi, i);
  parallel_for(size_t(p.N) * H, copy_grain(row * sh * sw * 4), [&](size_t b, size_t e, int) {
    for (size_t r = b; r < e; ++r) {
      const size_t n = r / size_t(H);
      const int h = int(r % size_t(H));
      float* dxr = dx + r * row;
      std::memset(dxr, 0, row * sizeof(float));
      for (int i = first[h]; i <= last[h]; ++i) {
        const float wy = (rows[i].lo == h ? 1.f - rows[i].frac : 0.f) + (rows[i].hi == h ? rows[i].frac : 0.f);
        const float* g = dy + (n * P + size_t(i)) * Q * C;
        for (int q = 0; q < Q; ++q) {
          const Lerp& lc = cols[q];
          add_scaled(dxr + size_t(lc.lo) * C, g + size_t(q) * C, Vec::set1(wy * (1.f - lc.frac)), C);
          add_scaled(dxr + size_t(lc.hi) * C, g + size_t(q) * C, Vec::set1(wy * lc.frac), C);
        }
      }
    }
  });
}

}  // namespace CK_ISA_NS
}  // namespace ck
