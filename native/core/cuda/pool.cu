// Pooling. Windowed pooling (max, average, Lp) runs one thread per output (forward) or per input
// cell (backward: a gather over the windows that contain the cell, in the reference's window
// order, so there are no atomics and the sums match the reference's order). Global pooling
// reduces each (image, channel) over its HW pixels in a fixed order.
#include <cfloat>

#include "gemm.cuh"
#include "internal.h"

namespace ck {
namespace cuda {

namespace {

struct Win {
  int h0, h1, w0, w1;  // real cells [h0,h1) x [w0,w1)
};
__device__ __forceinline__ Win window(const PoolParams& p, int op, int oq) {
  int h = op * p.stride_h - p.pad_h, w = oq * p.stride_w - p.pad_w;
  return Win{max(h, 0), min(h + p.R, p.H), max(w, 0), min(w + p.S, p.W)};
}

// Output rows whose window contains input row h: [lo, hi].
__device__ __forceinline__ void covering(int h, int pad, int R, int stride, int P, int& lo,
                                         int& hi) {
  int a = h + pad - R + 1;  // p * stride >= a
  lo = a <= 0 ? 0 : (a + stride - 1) / stride;
  hi = min(P - 1, (h + pad) / stride);
}

template <class I>
__global__ void maxpool_fwd_kernel(float* y, const float* x, PoolParams p, I total) {
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += I(gridDim.x) * blockDim.x) {
    const Cell at = cell_of(i, p.P, p.Q, p.C);
    const int c = at.c, oq = at.col, op = at.row, n = at.n;
    Win win = window(p, op, oq);
    const float* xn = x + size_t(n) * p.H * p.W * p.C + c;
    float m = -INFINITY;
    for (int h = win.h0; h < win.h1; ++h)
      for (int w = win.w0; w < win.w1; ++w) {
        float v = __ldg(xn + (size_t(h) * p.W + w) * p.C);
        if (v > m) m = v;
      }
    y[i] = win.h0 < win.h1 && win.w0 < win.w1 ? m : 0.f;
  }
}

// relu_x: x is a ReLU's output and its backward is folded in: a cell that is not > 0 passes no
// gradient (the reference adds a window's gradient only where its maximum is > 0, and a cell
// receives one only as its window's maximum).
template <class I>
__global__ void maxpool_bwd_kernel(float* dx, const float* dy, const float* x, PoolParams p,
                                   int relu_x, I total) {
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += I(gridDim.x) * blockDim.x) {
    const Cell at = cell_of(i, p.H, p.W, p.C);
    const int c = at.c, w = at.col, h = at.row, n = at.n;
    const float* xn = x + size_t(n) * p.H * p.W * p.C + c;
    const float* dyn = dy + size_t(n) * p.P * p.Q * p.C + c;
    int plo, phi, qlo, qhi;
    covering(h, p.pad_h, p.R, p.stride_h, p.P, plo, phi);
    covering(w, p.pad_w, p.S, p.stride_w, p.Q, qlo, qhi);
    float acc = 0.f;
    for (int op = plo; op <= phi; ++op)
      for (int oq = qlo; oq <= qhi; ++oq) {
        // The window's first maximum in row-major order (the reference's rule).
        Win win = window(p, op, oq);
        int ah = -1, aw = -1;
        float m = 0.f;
        for (int hh = win.h0; hh < win.h1; ++hh)
          for (int ww = win.w0; ww < win.w1; ++ww) {
            float v = __ldg(xn + (size_t(hh) * p.W + ww) * p.C);
            if (ah < 0 || v > m) m = v, ah = hh, aw = ww;
          }
        if (ah == h && aw == w) acc += __ldg(dyn + (size_t(op) * p.Q + oq) * p.C);
      }
    dx[i] = relu_x && !(__ldg(xn + (size_t(h) * p.W + w) * p.C) > 0.f) ? 0.f : acc;
  }
}

template <class I>
__global__ void avgpool_fwd_kernel(float* y, const float* x, PoolParams p, I total) {
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += I(gridDim.x) * blockDim.x) {
    const Cell at = cell_of(i, p.P, p.Q, p.C);
    const int c = at.c, oq = at.col, op = at.row, n = at.n;
    Win win = window(p, op, oq);
    const float* xn = x + size_t(n) * p.H * p.W * p.C + c;
    float s = 0.f;
    for (int h = win.h0; h < win.h1; ++h)
      for (int w = win.w0; w < win.w1; ++w) s += __ldg(xn + (size_t(h) * p.W + w) * p.C);
    const int cells = (win.h1 - win.h0) * (win.w1 - win.w0);
    y[i] = win.h0 < win.h1 && win.w0 < win.w1 ? s / float(cells) : 0.f;
  }
}

template <class I>
__global__ void avgpool_bwd_kernel(float* dx, const float* dy, PoolParams p, I total) {
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += I(gridDim.x) * blockDim.x) {
    const Cell at = cell_of(i, p.H, p.W, p.C);
    const int c = at.c, w = at.col, h = at.row, n = at.n;
    const float* dyn = dy + size_t(n) * p.P * p.Q * p.C + c;
    int plo, phi, qlo, qhi;
    covering(h, p.pad_h, p.R, p.stride_h, p.P, plo, phi);
    covering(w, p.pad_w, p.S, p.stride_w, p.Q, qlo, qhi);
    float acc = 0.f;
    for (int op = plo; op <= phi; ++op)
      for (int oq = qlo; oq <= qhi; ++oq) {
        Win win = window(p, op, oq);
        const int cells = (win.h1 - win.h0) * (win.w1 - win.w0);
        acc += __ldg(dyn + (size_t(op) * p.Q + oq) * p.C) / float(cells);
      }
    dx[i] = acc;
  }
}

// Lp pooling in double, as the reference: y = (mean of |x|^norm over the real cells)^(1/norm).
template <class I>
__global__ void lppool_fwd_kernel(float* y, const float* x, PoolParams p, double norm, I total) {
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += I(gridDim.x) * blockDim.x) {
    const Cell at = cell_of(i, p.P, p.Q, p.C);
    const int c = at.c, oq = at.col, op = at.row, n = at.n;
    Win win = window(p, op, oq);
    const float* xn = x + size_t(n) * p.H * p.W * p.C + c;
    double s = 0;
    for (int h = win.h0; h < win.h1; ++h)
      for (int w = win.w0; w < win.w1; ++w)
        s += pow(fabs(double(__ldg(xn + (size_t(h) * p.W + w) * p.C))), norm);
    const int cells = (win.h1 - win.h0) * (win.w1 - win.w0);
    y[i] = win.h0 < win.h1 && win.w0 < win.w1 ? float(pow(s / cells, 1.0 / norm)) : 0.f;
  }
}

// dx cell: sum over the windows containing it (the reference's window order) of
// dy * |x|^(norm-1) sign(x) / (cells * y^(norm-1)), skipping windows with y == 0.
template <class I>
__global__ void lppool_bwd_kernel(float* dx, const float* dy, const float* x, const float* y,
                                  PoolParams p, double norm, I total) {
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += I(gridDim.x) * blockDim.x) {
    const Cell at = cell_of(i, p.H, p.W, p.C);
    const int c = at.c, w = at.col, h = at.row, n = at.n;
    const size_t out_base = size_t(n) * p.P * p.Q * p.C + c;
    const double xv = __ldg(x + i);
    const double sign = xv > 0 ? 1 : xv < 0 ? -1 : 0;
    const double x_term = sign * pow(fabs(xv), norm - 1);
    int plo, phi, qlo, qhi;
    covering(h, p.pad_h, p.R, p.stride_h, p.P, plo, phi);
    covering(w, p.pad_w, p.S, p.stride_w, p.Q, qlo, qhi);
    float acc = 0.f;
    for (int op = plo; op <= phi; ++op)
      for (int oq = qlo; oq <= qhi; ++oq) {
        const size_t o = out_base + (size_t(op) * p.Q + oq) * p.C;
        const double yv = __ldg(y + o);
        if (yv == 0) continue;
        Win win = window(p, op, oq);
        const int cells = (win.h1 - win.h0) * (win.w1 - win.w0);
        const double g = __ldg(dy + o) / (cells * pow(yv, norm - 1));
        acc += float(g * x_term);
      }
    dx[i] = acc;
  }
}

template <class I>
__global__ void global_avg_bwd_kernel(float* dx, const float* dy, I HW, I C, I total) {
  const float inv_div = float(HW);
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += I(gridDim.x) * blockDim.x) {
    const I c = i % C, n = i / (HW * C);
    dx[i] = __ldg(dy + n * C + c) / inv_div;
  }
}

// One block per (image, 32 channels); 8 lanes stride over the pixels; lanes merge in a fixed
// order. The reference starts from pixel 0 and takes strictly greater values, so: the first
// maximum over the non-NaN values, or pixel 0 when pixel 0 is NaN.
constexpr int kGTile = 32, kGLanes = 8;
template <bool kBackward>
__global__ void global_max_kernel(float* out, const float* dy, const float* x, int HW, int C) {
  __shared__ float sv[kGLanes][kGTile];
  __shared__ long long si[kGLanes][kGTile];
  const int c = blockIdx.x * kGTile + threadIdx.x, n = blockIdx.y;
  const float* xn = x + size_t(n) * HW * C;
  ArgMax a = argmax_none();
  if (c < C) {
    for (int i = threadIdx.y; i < HW; i += kGLanes) a = argmax_take(a, __ldg(xn + size_t(i) * C + c), i);
  }
  sv[threadIdx.y][threadIdx.x] = a.v;
  si[threadIdx.y][threadIdx.x] = a.i;
  if (kBackward && c < C) {
    for (int i = threadIdx.y; i < HW; i += kGLanes) out[(size_t(n) * HW + i) * C + c] = 0.f;
  }
  __syncthreads();
  if (threadIdx.y != 0 || c >= C || HW <= 0) return;
  for (int l = 1; l < kGLanes; ++l) a = argmax_merge(a, ArgMax{sv[l][threadIdx.x], si[l][threadIdx.x]});
  float first = xn[c];
  if (first != first || a.i < 0) a = ArgMax{first, 0};
  if (kBackward) {
    out[(size_t(n) * HW + a.i) * C + c] = dy[size_t(n) * C + c];
  } else {
    out[size_t(n) * C + c] = a.v;
  }
}

void check_pool(const PoolParams& p, const char* op) {
  if (p.N < 0 || p.H < 0 || p.W < 0 || p.C < 0 || p.R < 1 || p.S < 1 || p.P < 0 || p.Q < 0 ||
      p.stride_h < 1 || p.stride_w < 1 || p.pad_h < 0 || p.pad_w < 0) {
    throw_error(ErrorKind::Value, std::string(op) + ": invalid pooling parameters");
  }
}

void check_norm(float norm, const char* op) {
  if (!(norm >= 1.f)) throw_error(ErrorKind::Value, std::string(op) + ": the norm must be >= 1");
}

}  // namespace

void maxpool2d_fwd(float* y, const float* x, const PoolParams& p, void* stream) {
  check_pool(p, "maxPool2d");
  launch_cells(p.y_size(), p.y_size(), "maxPool2d", [&](auto total, unsigned grid) {
    maxpool_fwd_kernel<decltype(total)><<<grid, 256, 0, as_stream(stream)>>>(y, x, p, total);
  });
}

void maxpool2d_bwd(float* dx, const float* dy, const float* x, const PoolParams& p, bool relu_x,
                   void* stream) {
  check_pool(p, "maxPool2dGrad");
  launch_cells(p.x_size(), p.x_size(), "maxPool2dGrad", [&](auto total, unsigned grid) {
    maxpool_bwd_kernel<decltype(total)><<<grid, 256, 0, as_stream(stream)>>>(dx, dy, x, p,
                                                                           relu_x ? 1 : 0, total);
  });
}

void avgpool2d_fwd(float* y, const float* x, const PoolParams& p, void* stream) {
  check_pool(p, "avgPool2d");
  launch_cells(p.y_size(), p.y_size(), "avgPool2d", [&](auto total, unsigned grid) {
    avgpool_fwd_kernel<decltype(total)><<<grid, 256, 0, as_stream(stream)>>>(y, x, p, total);
  });
}

void avgpool2d_bwd(float* dx, const float* dy, const PoolParams& p, void* stream) {
  check_pool(p, "avgPool2dGrad");
  launch_cells(p.x_size(), p.x_size(), "avgPool2dGrad", [&](auto total, unsigned grid) {
    avgpool_bwd_kernel<decltype(total)><<<grid, 256, 0, as_stream(stream)>>>(dx, dy, p, total);
  });
}

void lppool2d_fwd(float* y, const float* x, const PoolParams& p, float norm, void* stream) {
  check_pool(p, "lpPool2d");
  check_norm(norm, "lpPool2d");
  launch_cells(p.y_size(), p.y_size(), "lpPool2d", [&](auto total, unsigned grid) {
    lppool_fwd_kernel<decltype(total)><<<grid, 256, 0, as_stream(stream)>>>(y, x, p, double(norm),
                                                                          total);
  });
}

void lppool2d_bwd(float* dx, const float* dy, const float* x, const float* y, const PoolParams& p,
                  float norm, void* stream) {
  check_pool(p, "lpPool2dGrad");
  check_norm(norm, "lpPool2dGrad");
  launch_cells(p.x_size(), p.x_size(), "lpPool2dGrad", [&](auto total, unsigned grid) {
    lppool_bwd_kernel<decltype(total)><<<grid, 256, 0, as_stream(stream)>>>(dx, dy, x, y, p,
                                                                          double(norm), total);
  });
}

void global_avgpool_fwd(float* y, const float* x, int N, int HW, int C, void* stream) {
  if (N <= 0 || C <= 0) return;
  column_sums(y, x, N, size_t(HW < 0 ? 0 : HW), C, float(HW), as_stream(stream),
              "globalAveragePooling2d");
}

void global_avgpool_bwd(float* dx, const float* dy, int N, int HW, int C, void* stream) {
  if (N <= 0 || HW <= 0 || C <= 0) return;
  const size_t total = size_t(N) * HW * C;
  if (total <= size_t(UINT32_MAX) / 2) {
    global_avg_bwd_kernel<uint32_t><<<grid_1d(total, 256), 256, 0, as_stream(stream)>>>(
        dx, dy, uint32_t(HW), uint32_t(C), uint32_t(total));
  } else {
    global_avg_bwd_kernel<uint64_t><<<grid_1d(total, 256), 256, 0, as_stream(stream)>>>(
        dx, dy, uint64_t(HW), uint64_t(C), uint64_t(total));
  }
  check_launch("globalAveragePooling2dGrad");
}

void global_maxpool_fwd(float* y, const float* x, int N, int HW, int C, void* stream) {
  if (N <= 0 || HW <= 0 || C <= 0) return;
  if (N > 65535) require_int_range(size_t(-1), "globalMaxPooling2d", "batch");
  dim3 grid((C + kGTile - 1) / kGTile, N), block(kGTile, kGLanes);
  global_max_kernel<false><<<grid, block, 0, as_stream(stream)>>>(y, nullptr, x, HW, C);
  check_launch("globalMaxPooling2d");
}

void global_maxpool_bwd(float* dx, const float* dy, const float* x, int N, int HW, int C,
                        void* stream) {
  if (N <= 0 || HW <= 0 || C <= 0) return;
  if (N > 65535) require_int_range(size_t(-1), "globalMaxPooling2dGrad", "batch");
  dim3 grid((C + kGTile - 1) / kGTile, N), block(kGTile, kGLanes);
  global_max_kernel<true><<<grid, block, 0, as_stream(stream)>>>(dx, dy, x, HW, C);
  check_launch("globalMaxPooling2dGrad");
}

}  // namespace cuda
}  // namespace ck
