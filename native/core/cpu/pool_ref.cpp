// Scalar reference pooling: plain loops over each window. Max pooling treats padding as -inf
// (padded cells never win); average pooling divides by the number of real cells; Lp pooling
// y = (mean of |x|^norm over the real cells)^(1/norm), whose gradient is
// dx = dy * |x|^(norm-1) sign(x) / (cells * y^(norm-1)), 0 where y == 0.
#include <cmath>
#include <limits>

#include "reference.h"

namespace ck {
namespace ref {

namespace {

// The real cells [h0,h1) x [w0,w1) of output (p,q)'s window.
struct Window {
  int h0, h1, w0, w1;
};
inline Window window(const PoolParams& p, int op, int oq) {
  int h = op * p.stride_h - p.pad_h, w = oq * p.stride_w - p.pad_w;
  Window win{h, h + p.R, w, w + p.S};
  if (win.h0 < 0) win.h0 = 0;
  if (win.w0 < 0) win.w0 = 0;
  if (win.h1 > p.H) win.h1 = p.H;
  if (win.w1 > p.W) win.w1 = p.W;
  return win;
}
inline size_t xi(const PoolParams& p, int n, int h, int w, int c) {
  return ((size_t(n) * p.H + h) * p.W + w) * p.C + c;
}
inline size_t yi(const PoolParams& p, int n, int op, int oq, int c) {
  return ((size_t(n) * p.P + op) * p.Q + oq) * p.C + c;
}

}  // namespace

void maxpool2d_fwd(float* y, const float* x, const PoolParams& p) {
  for (int n = 0; n < p.N; ++n)
    for (int op = 0; op < p.P; ++op)
      for (int oq = 0; oq < p.Q; ++oq) {
        Window win = window(p, op, oq);
        for (int c = 0; c < p.C; ++c) {
          float m = -std::numeric_limits<float>::infinity();
          for (int h = win.h0; h < win.h1; ++h)
            for (int w = win.w0; w < win.w1; ++w) {
              float v = x[xi(p, n, h, w, c)];
              if (v > m) m = v;
            }
          y[yi(p, n, op, oq, c)] = win.h0 < win.h1 && win.w0 < win.w1 ? m : 0.f;
        }
      }
}

// The gradient goes to the first maximum of each window (row-major order); windows overlap, so
// contributions add. relu_x: x is a ReLU's output and the ReLU's backward is folded in (nothing
// reaches a maximum that is not > 0).
void maxpool2d_bwd(float* dx, const float* dy, const float* x, const PoolParams& p, bool relu_x) {
  for (size_t i = 0; i < p.x_size(); ++i) dx[i] = 0.f;
  for (int n = 0; n < p.N; ++n)
    for (int op = 0; op < p.P; ++op)
      for (int oq = 0; oq < p.Q; ++oq) {
        Window win = window(p, op, oq);
        for (int c = 0; c < p.C; ++c) {
          float m = -std::numeric_limits<float>::infinity();
          size_t arg = size_t(-1);
          for (int h = win.h0; h < win.h1; ++h)
            for (int w = win.w0; w < win.w1; ++w) {
              size_t i = xi(p, n, h, w, c);
              if (arg == size_t(-1) || x[i] > m) m = x[i], arg = i;
            }
          if (arg != size_t(-1) && (!relu_x || m > 0.f)) dx[arg] += dy[yi(p, n, op, oq, c)];
        }
      }
}

void avgpool2d_fwd(float* y, const float* x, const PoolParams& p) {
  for (int n = 0; n < p.N; ++n)
    for (int op = 0; op < p.P; ++op)
      for (int oq = 0; oq < p.Q; ++oq) {
        Window win = window(p, op, oq);
        int cells = (win.h1 - win.h0) * (win.w1 - win.w0);
        for (int c = 0; c < p.C; ++c) {
          double s = 0;
          for (int h = win.h0; h < win.h1; ++h)
            for (int w = win.w0; w < win.w1; ++w) s += x[xi(p, n, h, w, c)];
          y[yi(p, n, op, oq, c)] = cells > 0 ? float(s / cells) : 0.f;
        }
      }
}

void avgpool2d_bwd(float* dx, const float* dy, const PoolParams& p) {
  for (size_t i = 0; i < p.x_size(); ++i) dx[i] = 0.f;
  for (int n = 0; n < p.N; ++n)
    for (int op = 0; op < p.P; ++op)
      for (int oq = 0; oq < p.Q; ++oq) {
        Window win = window(p, op, oq);
        int cells = (win.h1 - win.h0) * (win.w1 - win.w0);
        if (cells <= 0) continue;
        for (int c = 0; c < p.C; ++c) {
          float g = dy[yi(p, n, op, oq, c)] / float(cells);
          for (int h = win.h0; h < win.h1; ++h)
            for (int w = win.w0; w < win.w1; ++w) dx[xi(p, n, h, w, c)] += g;
        }
      }
}

void lppool2d_fwd(float* y, const float* x, const PoolParams& p, float norm) {
  for (int n = 0; n < p.N; ++n)
    for (int op = 0; op < p.P; ++op)
      for (int oq = 0; oq < p.Q; ++oq) {
        Window win = window(p, op, oq);
        int cells = (win.h1 - win.h0) * (win.w1 - win.w0);
        for (int c = 0; c < p.C; ++c) {
          double s = 0;
          for (int h = win.h0; h < win.h1; ++h)
            for (int w = win.w0; w < win.w1; ++w) s += std::pow(std::fabs(double(x[xi(p, n, h, w, c)])), double(norm));
          y[yi(p, n, op, oq, c)] = cells > 0 ? float(std::pow(s / cells, 1.0 / norm)) : 0.f;
        }
      }
}

void lppool2d_bwd(float* dx, const float* dy, const float* x, const float* y, const PoolParams& p,
                  float norm) {
  for (size_t i = 0; i < p.x_size(); ++i) dx[i] = 0.f;
  for (int n = 0; n < p.N; ++n)
    for (int op = 0; op < p.P; ++op)
      for (int oq = 0; oq < p.Q; ++oq) {
        Window win = window(p, op, oq);
        int cells = (win.h1 - win.h0) * (win.w1 - win.w0);
        if (cells <= 0) continue;
        for (int c = 0; c < p.C; ++c) {
          double yv = y[yi(p, n, op, oq, c)];
          if (yv == 0) continue;
          double g = dy[yi(p, n, op, oq, c)] / (cells * std::pow(yv, double(norm) - 1));
          for (int h = win.h0; h < win.h1; ++h)
            for (int w = win.w0; w < win.w1; ++w) {
              double xv = x[xi(p, n, h, w, c)];
              double sign = xv > 0 ? 1 : xv < 0 ? -1 : 0;
              dx[xi(p, n, h, w, c)] += float(g * sign * std::pow(std::fabs(xv), double(norm) - 1));
            }
        }
      }
}

void global_avgpool_fwd(float* y, const float* x, int N, int HW, int C) {
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) {
      double s = 0;
      for (int i = 0; i < HW; ++i) s += x[(size_t(n) * HW + i) * C + c];
      y[size_t(n) * C + c] = float(s / HW);
    }
}

void global_avgpool_bwd(float* dx, const float* dy, int N, int HW, int C) {
  for (int n = 0; n < N; ++n)
    for (int i = 0; i < HW; ++i)
      for (int c = 0; c < C; ++c) dx[(size_t(n) * HW + i) * C + c] = dy[size_t(n) * C + c] / float(HW);
}

void global_maxpool_fwd(float* y, const float* x, int N, int HW, int C) {
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) {
      float m = x[size_t(n) * HW * C + c];
      for (int i = 1; i < HW; ++i) {
        float v = x[(size_t(n) * HW + i) * C + c];
        if (v > m) m = v;
      }
      y[size_t(n) * C + c] = m;
    }
}

void global_maxpool_bwd(float* dx, const float* dy, const float* x, int N, int HW, int C) {
  for (size_t i = 0; i < size_t(N) * HW * C; ++i) dx[i] = 0.f;
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) {
      size_t arg = size_t(n) * HW * C + c;
      for (int i = 1; i < HW; ++i) {
        size_t j = (size_t(n) * HW + i) * C + c;
        if (x[j] > x[arg]) arg = j;
      }
      dx[arg] = dy[size_t(n) * C + c];
    }
}

}  // namespace ref
}  // namespace ck
