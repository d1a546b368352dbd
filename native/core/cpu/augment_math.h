// The arithmetic the image augmentation kernels share on every device (augment_ref.cpp,
// augment.simd.cpp, cuda/augment.cu): each example's random draw, where an output pixel reads
// the input (Keras's affine_transform), and how an index outside the image is filled.
//
// Coordinates are computed in double with every product and sum rounded on its own (no fused
// multiply-adds: the CPU units that include this turn contraction off, CUDA rounds explicitly),
// so the devices agree on every pixel a transform reads.
#pragma once
#include <cmath>
#include <cstdint>

#include "dropout_hash.h"
#include "../params.h"

#if defined(__CUDA_ARCH__)
#define CK_AUG_MUL(a, b) __dmul_rn(a, b)
#define CK_AUG_ADD(a, b) __dadd_rn(a, b)
#else
#define CK_AUG_MUL(a, b) ((a) * (b))
#define CK_AUG_ADD(a, b) ((a) + (b))
#endif

namespace ck {

// static: each unit keeps its own copy (see dropout_hash.h).

// A random layer's seed for one step: the step's seed for the layer mixed with the layer's own.
static CK_HOST_DEVICE inline uint64_t augment_seed(uint64_t step_layer_seed, uint64_t layer_seed) {
  return dropout_hash(step_layer_seed, layer_seed);
}

// Uniform k of example `row`, in [0, 1) with 24 bits (as dropout draws its masks).
static CK_HOST_DEVICE inline double augment_uniform(uint64_t seed, uint64_t row, int k) {
  return double(dropout_hash(seed, row * kImageTransformFloats + uint64_t(k)) >> 40) * (1.0 / 16777216.0);
}

// Keras's random.uniform(minval, maxval): minval + u * (maxval - minval).
static CK_HOST_DEVICE inline double augment_between(double lo, double hi, double u) { return lo + u * (hi - lo); }

// Example `row`'s parameters (AugmentDraw) into p.
static CK_HOST_DEVICE inline void augment_draw_one(float* p, const AugmentDraw& d, uint64_t seed, uint64_t row) {
  const double u0 = augment_uniform(seed, row, 0), u1 = augment_uniform(seed, row, 1);
  if (d.kind == AugmentKind::Contrast) {
    p[0] = float(augment_between(1.0 - d.lo0, 1.0 + d.hi0, u0));
    return;
  }
  if (d.kind == AugmentKind::Brightness) {
    p[0] = float(augment_between(d.lo0, d.hi0, u0) * d.value_span);
    return;
  }
  const double h = d.height, w = d.width, cx = (w - 1) / 2, cy = (h - 1) / 2;
  double a0 = 1, a1 = 0, a2 = 0, b0 = 0, b1 = 1, b2 = 0;
  switch (d.kind) {
    case AugmentKind::Flip:
      if (u0 <= 0.5) {  // Keras flips where uniform() <= 0.5, both axes by the one draw
        if (d.flip_h) a0 = -1, a2 = w - 1;
        if (d.flip_v) b1 = -1, b2 = h - 1;
      }
      break;
    case AugmentKind::Rotation: {
      // Keras draws degrees in [lo * 360, hi * 360] and turns about ((w-1)/2, (h-1)/2).
      const double degrees = augment_between(d.lo0 * 360.0, d.hi0 * 360.0, u0);
      const double angle = degrees * (3.14159265358979323846 / 180.0);
      const double c = cos(angle), s = sin(angle);
      a0 = c, a1 = -s, b0 = s, b1 = c;
      a2 = cx - cx * a0 - cy * a1;
      b2 = cy - cx * b0 - cy * b1;
      break;
    }
    case AugmentKind::Zoom: {
      const double zy = 1.0 + augment_between(d.lo0, d.hi0, u0);
      const double zx = d.same_draw ? zy : 1.0 + augment_between(d.lo1, d.hi1, u1);
      a0 = zx, a2 = cx * (1.0 - zx);
      b1 = zy, b2 = cy * (1.0 - zy);
      break;
    }
    case AugmentKind::Translation:
      b2 = -augment_between(d.lo0, d.hi0, u0) * h;
      a2 = -augment_between(d.lo1, d.hi1, u1) * w;
      break;
    default:
      break;
  }
  p[0] = float(a0), p[1] = float(a1), p[2] = float(a2);
  p[3] = float(b0), p[4] = float(b1), p[5] = float(b2);
  p[6] = 0.f, p[7] = 0.f;
}

// Index i of an axis of `size` pixels under the fill mode (numpy's pad modes, as Keras pads
// the image before sampling); -1: a constant fill's outside.
static CK_HOST_DEVICE inline int augment_fill_index(int64_t i, int size, FillMode mode) {
  if (i >= 0 && i < size) return int(i);
  switch (mode) {
    case FillMode::Reflect: {  // period 2 * size, the edge pixel repeated
      const int64_t period = 2 * int64_t(size);
      int64_t m = i % period;
      if (m < 0) m += period;
      return int(m < size ? m : period - 1 - m);
    }
    case FillMode::Wrap: {
      int64_t m = i % size;
      return int(m < 0 ? m + size : m);
    }
    case FillMode::Nearest:
      return i < 0 ? 0 : size - 1;
    default:
      return -1;
  }
}

// Where output pixel (x, y) reads: the input's rows y0, y1 and columns x0, x1 (fill-mapped, -1
// outside a constant fill) with weights (1 - fy, fy) and (1 - fx, fx) as floats. Nearest
// interpolation reads one pixel (scipy's order 0: floor(v + 0.5)): x0, y0, copied as it is.
struct AugmentCell {
  int x0, x1, y0, y1;
  float wx0, wx1, wy0, wy1;
};
static CK_HOST_DEVICE inline AugmentCell augment_cell(const float* t, int x, int y, int h, int w,
                                                      const ImageSampling& s) {
  const double xd = x, yd = y;
  const double k = CK_AUG_ADD(CK_AUG_ADD(CK_AUG_MUL(double(t[6]), xd), CK_AUG_MUL(double(t[7]), yd)), 1.0);
  double xs = CK_AUG_ADD(CK_AUG_ADD(CK_AUG_MUL(double(t[0]), xd), CK_AUG_MUL(double(t[1]), yd)), double(t[2])) / k;
  double ys = CK_AUG_ADD(CK_AUG_ADD(CK_AUG_MUL(double(t[3]), xd), CK_AUG_MUL(double(t[4]), yd)), double(t[5])) / k;
  // Far outside (or NaN) reads like just outside, without overflowing the integer conversion.
  xs = fmin(fmax(xs, -1e9), 1e9), ys = fmin(fmax(ys, -1e9), 1e9);
  AugmentCell cell;
  if (s.interp == Interp::Nearest) {
    const int64_t xi = int64_t(floor(xs + 0.5)), yi = int64_t(floor(ys + 0.5));
    cell.x0 = cell.x1 = augment_fill_index(xi, w, s.fill);
    cell.y0 = cell.y1 = augment_fill_index(yi, h, s.fill);
    cell.wx0 = 1.f, cell.wx1 = 0.f, cell.wy0 = 1.f, cell.wy1 = 0.f;
    return cell;
  }
  const double xf = floor(xs), yf = floor(ys);
  const double fx = xs - xf, fy = ys - yf;
  const int64_t xi = int64_t(xf), yi = int64_t(yf);
  cell.x0 = augment_fill_index(xi, w, s.fill), cell.x1 = augment_fill_index(xi + 1, w, s.fill);
  cell.y0 = augment_fill_index(yi, h, s.fill), cell.y1 = augment_fill_index(yi + 1, h, s.fill);
  cell.wx0 = float(1.0 - fx), cell.wx1 = float(fx);
  cell.wy0 = float(1.0 - fy), cell.wy1 = float(fy);
  return cell;
}

}  // namespace ck
