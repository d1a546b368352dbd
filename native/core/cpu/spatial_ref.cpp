// Scalar reference of the spatial re-layout layers, plain loops over the definitions:
//
//   zero_pad2d_fwd: y[n, h+top, w+left, c] = x[n,h,w,c], zero elsewhere (Keras ZeroPadding2D)
//   zero_pad2d_bwd: dx[n,h,w,c] = dy[n, h+top, w+left, c]
//   upsample2d_fwd: nearest  y[n,p,q,c] = x[n, p/sh, q/sw, c];
//                   bilinear y[n,p,q,c] = lerp over the rows (h0,h1) and columns (w0,w1) around the
//                   source coordinate, as tf.image.resize (Keras UpSampling2D, see UpsampleParams)
//   upsample2d_bwd: each dy[n,p,q,c] added to the x cells its output read, with the same weights
#include <cstring>

#include "reference.h"

namespace ck {
namespace ref {

namespace {

// Output index i of an axis up-sampled by `factor` reads input rows lo and hi with weight frac
// on hi: source coordinate (i + 0.5) / factor - 0.5 (half_pixel) or i / factor, as an exact
// fraction num / den; rows clamped to [0, in).
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

inline size_t at(int n, int h, int w, int c, int H, int W, int C) {
  return ((size_t(n) * H + h) * W + w) * C + c;
}

}  // namespace

void zero_pad2d_fwd(float* y, const float* x, const Pad2dParams& p) {
  std::memset(y, 0, p.y_size() * sizeof(float));
  for (int n = 0; n < p.N; ++n)
    for (int h = 0; h < p.H; ++h)
      for (int w = 0; w < p.W; ++w)
        for (int c = 0; c < p.C; ++c)
          y[at(n, h + p.top, w + p.left, c, p.P(), p.Q(), p.C)] = x[at(n, h, w, c, p.H, p.W, p.C)];
}

void zero_pad2d_bwd(float* dx, const float* dy, const Pad2dParams& p) {
  for (int n = 0; n < p.N; ++n)
    for (int h = 0; h < p.H; ++h)
      for (int w = 0; w < p.W; ++w)
        for (int c = 0; c < p.C; ++c)
          dx[at(n, h, w, c, p.H, p.W, p.C)] = dy[at(n, h + p.top, w + p.left, c, p.P(), p.Q(), p.C)];
}

void upsample2d_fwd(float* y, const float* x, const UpsampleParams& p) {
  const int P = p.P(), Q = p.Q(), C = p.C;
  for (int n = 0; n < p.N; ++n)
    for (int i = 0; i < P; ++i)
      for (int j = 0; j < Q; ++j)
        for (int c = 0; c < C; ++c) {
          float* out = y + at(n, i, j, c, P, Q, C);
          if (p.interp == Interp::Nearest) {
            *out = x[at(n, i / p.size_h, j / p.size_w, c, p.H, p.W, C)];
            continue;
          }
          const Lerp r = axis_lerp(i, p.size_h, p.H, p.half_pixel);
          const Lerp s = axis_lerp(j, p.size_w, p.W, p.half_pixel);
          const float tl = x[at(n, r.lo, s.lo, c, p.H, p.W, C)], tr = x[at(n, r.lo, s.hi, c, p.H, p.W, C)];
          const float bl = x[at(n, r.hi, s.lo, c, p.H, p.W, C)], br = x[at(n, r.hi, s.hi, c, p.H, p.W, C)];
          const float top = tl + (tr - tl) * s.frac, bottom = bl + (br - bl) * s.frac;
          *out = top + (bottom - top) * r.frac;
        }
}

void upsample2d_bwd(float* dx, const float* dy, const UpsampleParams& p) {
  const int P = p.P(), Q = p.Q(), C = p.C;
  std::memset(dx, 0, p.x_size() * sizeof(float));
  for (int n = 0; n < p.N; ++n)
    for (int i = 0; i < P; ++i)
      for (int j = 0; j < Q; ++j)
        for (int c = 0; c < C; ++c) {
          const float g = dy[at(n, i, j, c, P, Q, C)];
          if (p.interp == Interp::Nearest) {
            dx[at(n, i / p.size_h, j / p.size_w, c, p.H, p.W, C)] += g;
            continue;
          }
          const Lerp r = axis_lerp(i, p.size_h, p.H, p.half_pixel);
          const Lerp s = axis_lerp(j, p.size_w, p.W, p.half_pixel);
          dx[at(n, r.lo, s.lo, c, p.H, p.W, C)] += g * (1.f - r.frac) * (1.f - s.frac);
          dx[at(n, r.lo, s.hi, c, p.H, p.W, C)] += g * (1.f - r.frac) * s.frac;
          dx[at(n, r.hi, s.lo, c, p.H, p.W, C)] += g * r.frac * (1.f - s.frac);
          dx[at(n, r.hi, s.hi, c, p.H, p.W, C)] += g * r.frac * s.frac;
        }
}

}  // namespace ref
}  // namespace ck
