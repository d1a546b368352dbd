// Spatial re-layout: zero padding, up-sampling, last-axis concatenation and the multiply by a
// gate broadcast over space, one thread per destination cell. The backward passes gather: each dx cell visits the dy cells that read it in
// the reference's order (by increasing output row, then column) and adds their shares with the
// reference's expressions, so there are no atomics and nearest up-sampling's gradient is
// bitwise the reference's.
#include <algorithm>

#include "cuda_common.cuh"
#include "internal.h"

namespace ck {
namespace cuda {

namespace {

template <class I>
__global__ void gather_rows_kernel(float* dst, const float* src, const int32_t* rows, I row, I total) {
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += I(gridDim.x) * blockDim.x) {
    const I r = i / row, col = i % row;
    dst[i] = __ldg(src + I(__ldg(rows + r)) * row + col);
  }
}

template <class I>
__global__ void copy_columns_kernel(float* dst, int dst_cols, int dst_offset, const float* src,
                                    int src_cols, int src_offset, I width, I total) {
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += I(gridDim.x) * blockDim.x) {
    const I row = i / width, col = i % width;
    dst[row * dst_cols + dst_offset + col] = __ldg(src + row * src_cols + src_offset + col);
  }
}

// pad_fwd: y cell i of [N,P,Q,C] from x (0 outside); pad_bwd: dx cell i of [N,H,W,C] from dy.
template <bool kForward, class I>
__global__ void zero_pad_kernel(float* out, const float* in, Pad2dParams p, I total) {
  const int P = p.H + p.top + p.bottom, Q = p.W + p.left + p.right;  // (P() is host-only)
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += I(gridDim.x) * blockDim.x) {
    I t = i;
    const int c = int(t % p.C); t /= p.C;
    const int cols = kForward ? Q : p.W, rows = kForward ? P : p.H;
    const int j = int(t % cols); t /= cols;
    const int r = int(t % rows);
    const I n = t / rows;
    if (kForward) {
      const int h = r - p.top, w = j - p.left;
      const bool real = unsigned(h) < unsigned(p.H) && unsigned(w) < unsigned(p.W);
      out[i] = real ? __ldg(in + ((n * p.H + h) * p.W + w) * p.C + c) : 0.f;
    } else {
      out[i] = __ldg(in + ((n * P + r + p.top) * Q + j + p.left) * p.C + c);
    }
  }
}

// Output index i of an axis up-sampled by `factor` reads input rows lo and hi with weight frac
// on hi (the reference's axis_lerp: source coordinate (i + 0.5) / factor - 0.5 when half_pixel,
// i / factor otherwise, as an exact fraction; rows clamped to [0, in)).
struct Lerp {
  int lo, hi;
  float frac;
};
__device__ __forceinline__ Lerp axis_lerp(int i, int factor, int in, bool half_pixel) {
  const int num = half_pixel ? 2 * i + 1 - factor : i, den = half_pixel ? 2 * factor : factor;
  const int fl = num >= 0 ? num / den : -((-num + den - 1) / den);
  const int rem = num - fl * den;
  Lerp l;
  l.lo = fl < 0 ? 0 : fl;
  l.hi = min(rem > 0 ? fl + 1 : fl, in - 1);
  if (l.hi < 0) l.hi = 0;
  l.frac = float(rem) / float(den);
  return l;
}

template <class I>
__global__ void upsample_fwd_kernel(float* y, const float* x, UpsampleParams p, I total) {
  const int P = p.H * p.size_h, Q = p.W * p.size_w;
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += I(gridDim.x) * blockDim.x) {
    I t = i;
    const int c = int(t % p.C); t /= p.C;
    const int j = int(t % Q); t /= Q;
    const int r = int(t % P);
    const I n = t / P;
    const float* xn = x + n * p.H * p.W * p.C + c;
    auto at = [&](int h, int w) { return __ldg(xn + (I(h) * p.W + w) * p.C); };
    if (p.interp == Interp::Nearest) {
      y[i] = at(r / p.size_h, j / p.size_w);
      continue;
    }
    const Lerp lr = axis_lerp(r, p.size_h, p.H, p.half_pixel);
    const Lerp ls = axis_lerp(j, p.size_w, p.W, p.half_pixel);
    const float tl = at(lr.lo, ls.lo), tr = at(lr.lo, ls.hi);
    const float bl = at(lr.hi, ls.lo), br = at(lr.hi, ls.hi);
    const float top = tl + (tr - tl) * ls.frac, bottom = bl + (br - bl) * ls.frac;
    y[i] = top + (bottom - top) * lr.frac;
  }
}

template <class I>
__global__ void upsample_bwd_kernel(float* dx, const float* dy, UpsampleParams p, I total) {
  const int P = p.H * p.size_h, Q = p.W * p.size_w;
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += I(gridDim.x) * blockDim.x) {
    I t = i;
    const int c = int(t % p.C); t /= p.C;
    const int w = int(t % p.W); t /= p.W;
    const int h = int(t % p.H);
    const I n = t / p.H;
    const float* dyn = dy + n * P * Q * p.C + c;
    auto at = [&](int r, int j) { return __ldg(dyn + (I(r) * Q + j) * p.C); };
    float acc = 0.f;
    if (p.interp == Interp::Nearest) {
      for (int r = h * p.size_h; r < (h + 1) * p.size_h; ++r)
        for (int j = w * p.size_w; j < (w + 1) * p.size_w; ++j) acc += at(r, j);
      dx[i] = acc;
      continue;
    }
    // Output rows reading row h as lo or hi lie in [(h-1)*size, (h+2)*size) (the source
    // coordinate is within one row of r / size); the same for columns.
    const int r0 = max(0, (h - 1) * p.size_h), r1 = min(P, (h + 2) * p.size_h);
    const int j0 = max(0, (w - 1) * p.size_w), j1 = min(Q, (w + 2) * p.size_w);
    for (int r = r0; r < r1; ++r) {
      const Lerp lr = axis_lerp(r, p.size_h, p.H, p.half_pixel);
      if (lr.lo != h && lr.hi != h) continue;
      for (int j = j0; j < j1; ++j) {
        const Lerp ls = axis_lerp(j, p.size_w, p.W, p.half_pixel);
        if (ls.lo != w && ls.hi != w) continue;
        const float g = at(r, j);
        // The reference's four corners, in its order and with its products.
        if (lr.lo == h && ls.lo == w) acc += g * (1.f - lr.frac) * (1.f - ls.frac);
        if (lr.lo == h && ls.hi == w) acc += g * (1.f - lr.frac) * ls.frac;
        if (lr.hi == h && ls.lo == w) acc += g * lr.frac * (1.f - ls.frac);
        if (lr.hi == h && ls.hi == w) acc += g * lr.frac * ls.frac;
      }
    }
    dx[i] = acc;
  }
}

void check_pad(const Pad2dParams& p, const char* op) {
  if (p.N < 0 || p.H < 0 || p.W < 0 || p.C < 0 || p.top < 0 || p.bottom < 0 || p.left < 0 ||
      p.right < 0) {
    throw_error(ErrorKind::Value, std::string(op) + ": invalid padding parameters");
  }
}

void check_upsample(const UpsampleParams& p, const char* op) {
  if (p.N < 0 || p.H < 0 || p.W < 0 || p.C < 0 || p.size_h < 1 || p.size_w < 1) {
    throw_error(ErrorKind::Value, std::string(op) + ": invalid up-sampling parameters");
  }
  require_int_range(size_t(p.H) * p.size_h * 2 + 1, op, "output height");
  require_int_range(size_t(p.W) * p.size_w * 2 + 1, op, "output width");
}

// The sum of the widths (each >= 0), which must fit an int.
int last_axis_width(const int* widths, int count, const char* op) {
  size_t total = 0;
  for (int i = 0; i < count; ++i) {
    if (widths[i] < 0) throw_error(ErrorKind::Value, std::string(op) + ": negative width");
    total += size_t(widths[i]);
  }
  require_int_range(total, op, "total width");
  return int(total);
}

// y cell i of [n, hw, C] = x[i] times its example's gate value for its channel.
__global__ void mul_spatial_kernel(float* y, const float* x, const float* g, size_t hw, int C,
                                   size_t total) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const size_t c = i % size_t(C), example = i / (hw * size_t(C));
    y[i] = x[i] * __ldg(g + example * size_t(C) + c);
  }
}

// One thread per gate cell (example, channel), adding its pixels in the reference's order:
// neighbouring threads read neighbouring channels, so each pixel's loads coalesce.
__global__ void mul_spatial_bwd_gate_kernel(float* dg, const float* dy, const float* x, size_t hw,
                                            int C, size_t total) {
  for (size_t t = size_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += size_t(gridDim.x) * blockDim.x) {
    const size_t c = t % size_t(C), example = t / size_t(C);
    const size_t base = example * hw * size_t(C) + c;
    float sum = 0.f;
    for (size_t p = 0; p < hw; ++p) sum += __ldg(dy + base + p * size_t(C)) * __ldg(x + base + p * size_t(C));
    dg[t] = sum;
  }
}

}  // namespace

void copy_columns(float* dst, int dst_cols, int dst_offset, const float* src, int src_cols,
                  int src_offset, size_t rows, int width, void* stream, const char* op) {
  if (width <= 0) return;
  const size_t extent = rows * size_t(std::max(dst_cols, src_cols));
  launch_cells(rows * size_t(width), extent, op, [&](auto total, unsigned grid) {
    using I = decltype(total);
    copy_columns_kernel<I><<<grid, 256, 0, as_stream(stream)>>>(
        dst, dst_cols, dst_offset, src, src_cols, src_offset, I(width), total);
  });
}

void gather_rows(float* dst, const float* src, const int32_t* rows, size_t n, size_t row,
                 size_t src_rows, void* stream) {
  launch_cells(n * row, src_rows * row, "gatherRows", [&](auto total, unsigned grid) {
    using I = decltype(total);
    gather_rows_kernel<I><<<grid, 256, 0, as_stream(stream)>>>(dst, src, rows, I(row), total);
  });
}

void zero_pad2d_fwd(float* y, const float* x, const Pad2dParams& p, void* stream) {
  check_pad(p, "zeroPadding2d");
  launch_cells(p.y_size(), p.y_size(), "zeroPadding2d", [&](auto total, unsigned grid) {
    zero_pad_kernel<true, decltype(total)><<<grid, 256, 0, as_stream(stream)>>>(y, x, p, total);
  });
}

void zero_pad2d_bwd(float* dx, const float* dy, const Pad2dParams& p, void* stream) {
  check_pad(p, "zeroPadding2dGrad");
  launch_cells(p.x_size(), p.y_size(), "zeroPadding2dGrad", [&](auto total, unsigned grid) {
    zero_pad_kernel<false, decltype(total)><<<grid, 256, 0, as_stream(stream)>>>(dx, dy, p, total);
  });
}

void upsample2d_fwd(float* y, const float* x, const UpsampleParams& p, void* stream) {
  check_upsample(p, "upSampling2d");
  launch_cells(p.y_size(), p.y_size(), "upSampling2d", [&](auto total, unsigned grid) {
    upsample_fwd_kernel<decltype(total)><<<grid, 256, 0, as_stream(stream)>>>(y, x, p, total);
  });
}

void upsample2d_bwd(float* dx, const float* dy, const UpsampleParams& p, void* stream) {
  check_upsample(p, "upSampling2dGrad");
  launch_cells(p.x_size(), p.y_size(), "upSampling2dGrad", [&](auto total, unsigned grid) {
    upsample_bwd_kernel<decltype(total)><<<grid, 256, 0, as_stream(stream)>>>(dx, dy, p, total);
  });
}

// One copy per part: parts and widths are host arrays (of device pointers).
void concat_last(float* y, const float* const* parts, const int* widths, int count, size_t rows,
                 void* stream) {
  const int total = last_axis_width(widths, count, "concatenate");
  for (int i = 0, offset = 0; i < count; offset += widths[i], ++i) {
    copy_columns(y, total, offset, parts[i], widths[i], 0, rows, widths[i], stream, "concatenate");
  }
}

void split_last(float* const* parts, const float* y, const int* widths, int count, size_t rows,
                void* stream) {
  const int total = last_axis_width(widths, count, "concatenateGrad");
  for (int i = 0, offset = 0; i < count; offset += widths[i], ++i) {
    if (!parts[i]) continue;
    copy_columns(parts[i], widths[i], 0, y, total, offset, rows, widths[i], stream,
                 "concatenateGrad");
  }
}

void mul_spatial(float* y, const float* x, const float* g, size_t n, size_t hw, int C,
                 void* stream) {
  const size_t total = n * hw * size_t(C);
  if (total == 0) return;
  mul_spatial_kernel<<<grid_1d(total, 256), 256, 0, as_stream(stream)>>>(y, x, g, hw, C, total);
  check_launch("multiply");
}

void mul_spatial_bwd_gate(float* dg, const float* dy, const float* x, size_t n, size_t hw, int C,
                          void* stream) {
  const size_t total = n * size_t(C);
  if (total == 0) return;
  mul_spatial_bwd_gate_kernel<<<grid_1d(total, 128), 128, 0, as_stream(stream)>>>(dg, dy, x, hw, C,
                                                                                 total);
  check_launch("multiplyGrad");
}

}  // namespace cuda
}  // namespace ck
