// Vector pooling: channels are contiguous in NHWC, so every window is a run of channel vectors.
// Max-pool gradients go to each window's first maximum (a per-lane "taken" mask keeps the first);
// windows may overlap, so work is split by image and each image's dx has one writer. Lp pooling
// has exact vector paths for norm 2 (sqrt of the mean square) and 1 (mean |x|); other norms
// take powers lane by lane.
#include <cmath>

#include "simd_kernels.h"
#include "../thread_pool.h"

namespace ck {
namespace CK_ISA_NS {

namespace {

constexpr int L = Vec::kLanes;

struct Window {
  int h0, h1, w0, w1;
};
inline Window window(const PoolParams& p, int op, int oq) {
  int h = op * p.stride_h - p.pad_h, w = oq * p.stride_w - p.pad_w;
  Window win{h < 0 ? 0 : h, h + p.R > p.H ? p.H : h + p.R, w < 0 ? 0 : w, w + p.S > p.W ? p.W : w + p.S};
  return win;
}


// Splits output rows (n, p) over the pool.
template <class F>
void for_rows(const PoolParams& p, F&& f) {
  size_t rows = size_t(p.N) * p.P;
  size_t per_row = size_t(p.Q) * p.C * p.R * p.S;
  size_t grain = per_row > 65536 ? 1 : 65536 / (per_row + 1) + 1;
  parallel_for(rows, grain, [&](size_t b, size_t e, int) {
    for (size_t r = b; r < e; ++r) f(int(r / size_t(p.P)), int(r % size_t(p.P)));
  });
}

template <class F>
void for_images(int N, size_t work_per_image, F&& f) {
  size_t grain = work_per_image > 65536 ? 1 : 65536 / (work_per_image + 1) + 1;
  parallel_for(size_t(N), grain, [&](size_t b, size_t e, int) {
    for (size_t n = b; n < e; ++n) f(int(n));
  });
}

}  // namespace

void maxpool2d_fwd(float* y, const float* x, const PoolParams& p) {
  for_rows(p, [&](int n, int op) {
    // The shape in locals, kept in registers across the stores (see maxpool_bwd_tiled_row).
    const int C = p.C, Q = p.Q, W = p.W;
    const Vec neg_inf = Vec::set1(-__builtin_inff());
    const float* xn = x + size_t(n) * p.H * W * C;
    float* yr = y + (size_t(n) * p.P + op) * Q * C;
    for (int oq = 0; oq < Q; ++oq) {
      const Window win = window(p, op, oq);
      const bool empty = win.h0 >= win.h1 || win.w0 >= win.w1;
      float* yp = yr + size_t(oq) * C;
      for (int c = 0; c < C; c += L) {
        const int m = C - c < L ? C - c : L;
        Vec acc = empty ? Vec::zero() : neg_inf;
        for (int h = win.h0; h < win.h1; ++h)
          for (int w = win.w0; w < win.w1; ++w) acc = max(acc, load_n(xn + (size_t(h) * W + w) * C + c, m));
        store_n(yp + c, acc, m);
      }
    }
  });
}

namespace {

// One output row of a tiling max pool's backward (see maxpool2d_bwd): the shape in locals, so
// the compiler keeps it in registers across the stores.
void maxpool_bwd_tiled_row(float* dxn, const float* xn, const float* dyr, const PoolParams& p, int op,
                           bool relu_x) {
  const int R = p.R, S = p.S, C = p.C, Q = p.Q, H = p.H, W = p.W, P = p.P;
  const size_t row = size_t(W) * C;
  const Vec neg_inf = Vec::set1(-__builtin_inff()), one = Vec::set1(1.f), zero = Vec::zero();
  const int h0 = op * R, h1 = op == P - 1 ? H : h0 + R;  // the last row also clears the rest
  for (int h = h0; h < h1; ++h) {
    float* d = dxn + size_t(h) * row;
    const size_t first = h < h0 + R ? size_t(Q) * S * C : 0;  // cells past the last window
    for (size_t i = first; i < row; ++i) d[i] = 0.f;
  }
  for (int oq = 0; oq < Q; ++oq) {
    const size_t base = size_t(h0) * row + size_t(oq) * S * C;
    const float* xw = xn + base;
    float* dw = dxn + base;
    const float* dyp = dyr + size_t(oq) * C;
    for (int c = 0; c < C; c += L) {
      const int m = C - c < L ? C - c : L;
      Vec best = neg_inf;
      for (int r = 0; r < R; ++r)
        for (int s = 0; s < S; ++s) best = max(best, load_n(xw + size_t(r) * row + size_t(s) * C + c, m));
      Vec g = load_n(dyp + c, m);
      if (relu_x) g = select_gt0(best, g, zero);
      Vec taken = zero;
      for (int r = 0; r < R; ++r)
        for (int s = 0; s < S; ++s) {
          const size_t off = size_t(r) * row + size_t(s) * C + c;
          Vec hit = select_eq(load_n(xw + off, m), best, one, zero) * (one - taken);
          store_n(dw + off, select_gt0(hit, g, zero), m);
          taken = taken + hit;
        }
    }
  }
}

}  // namespace

// relu_x: x is a ReLU's output and dx is the gradient of the ReLU's input: a window's gradient
// goes to its maximum only where that is > 0 (the ReLU's backward, folded into this pass).
void maxpool2d_bwd(float* dx, const float* dy, const float* x, const PoolParams& p, bool relu_x) {
  const Vec neg_inf = Vec::set1(-__builtin_inff()), one = Vec::set1(1.f);
  // Where g goes: lanes of the window's first maximum (and, with relu_x, only where it is > 0).
  auto routed = [&](Vec best, Vec g) { return relu_x ? select_gt0(best, g, Vec::zero()) : g; };
  size_t image = size_t(p.H) * p.W * p.C;
  if (p.stride_h == p.R && p.stride_w == p.S && p.pad_h == 0 && p.pad_w == 0 && p.P * p.R <= p.H &&
      p.Q * p.S <= p.W) {
    // Windows tile the image (Keras's default pooling): every dx cell is written exactly once,
    // with no zeroing pass and no read-modify-write, and output rows can be split over threads.
    for_rows(p, [&](int n, int op) {
      maxpool_bwd_tiled_row(dx + size_t(n) * image, x + size_t(n) * image,
                            dy + (size_t(n) * p.P + op) * p.Q * p.C, p, op, relu_x);
    });
    return;
  }
  for_images(p.N, size_t(p.P) * p.Q * p.C * p.R * p.S, [&](int n) {
    float* dxn = dx + size_t(n) * image;
    const float* xn = x + size_t(n) * image;
    for (size_t i = 0; i < image; ++i) dxn[i] = 0.f;
    for (int op = 0; op < p.P; ++op)
      for (int oq = 0; oq < p.Q; ++oq) {
        Window win = window(p, op, oq);
        const float* dyp = dy + ((size_t(n) * p.P + op) * p.Q + oq) * p.C;
        for (int c = 0; c < p.C; c += L) {
          int m = p.C - c < L ? p.C - c : L;
          Vec best = neg_inf;
          for (int h = win.h0; h < win.h1; ++h)
            for (int w = win.w0; w < win.w1; ++w) best = max(best, load_n(xn + (size_t(h) * p.W + w) * p.C + c, m));
          Vec g = routed(best, load_n(dyp + c, m)), taken = Vec::zero();
          for (int h = win.h0; h < win.h1; ++h)
            for (int w = win.w0; w < win.w1; ++w) {
              size_t off = (size_t(h) * p.W + w) * p.C + c;
              Vec hit = select_eq(load_n(xn + off, m), best, one, Vec::zero()) * (one - taken);
              // A select, not hit * g: 0 * inf would put NaN in cells that are not the argmax.
              store_n(dxn + off, load_n(dxn + off, m) + select_gt0(hit, g, Vec::zero()), m);
              taken = taken + hit;
            }
        }
      }
  });
}

void avgpool2d_fwd(float* y, const float* x, const PoolParams& p) {
  for_rows(p, [&](int n, int op) {
    for (int oq = 0; oq < p.Q; ++oq) {
      Window win = window(p, op, oq);
      int cells = (win.h1 - win.h0) * (win.w1 - win.w0);
      Vec scale = Vec::set1(cells > 0 ? 1.f / float(cells) : 0.f);
      float* yp = y + ((size_t(n) * p.P + op) * p.Q + oq) * p.C;
      for (int c = 0; c < p.C; c += L) {
        int m = p.C - c < L ? p.C - c : L;
        Vec acc = Vec::zero();
        for (int h = win.h0; h < win.h1; ++h)
          for (int w = win.w0; w < win.w1; ++w) acc = acc + load_n(x + ((size_t(n) * p.H + h) * p.W + w) * p.C + c, m);
        store_n(yp + c, acc * scale, m);
      }
    }
  });
}

void avgpool2d_bwd(float* dx, const float* dy, const PoolParams& p) {
  size_t image = size_t(p.H) * p.W * p.C;
  for_images(p.N, size_t(p.P) * p.Q * p.C * p.R * p.S, [&](int n) {
    float* dxn = dx + size_t(n) * image;
    for (size_t i = 0; i < image; ++i) dxn[i] = 0.f;
    for (int op = 0; op < p.P; ++op)
      for (int oq = 0; oq < p.Q; ++oq) {
        Window win = window(p, op, oq);
        int cells = (win.h1 - win.h0) * (win.w1 - win.w0);
        if (cells <= 0) continue;
        Vec scale = Vec::set1(1.f / float(cells));
        const float* dyp = dy + ((size_t(n) * p.P + op) * p.Q + oq) * p.C;
        for (int c = 0; c < p.C; c += L) {
          int m = p.C - c < L ? p.C - c : L;
          Vec g = load_n(dyp + c, m) * scale;
          for (int h = win.h0; h < win.h1; ++h)
            for (int w = win.w0; w < win.w1; ++w) {
              float* d = dxn + (size_t(h) * p.W + w) * p.C + c;
              store_n(d, load_n(d, m) + g, m);
            }
        }
      }
  });
}

namespace {

enum LpNorm { kLpGeneral, kLp1, kLp2 };

// v^e lane by lane (v >= 0).
inline Vec pow_lanes(Vec v, float e) {
  alignas(64) float t[L];
  v.store(t);
  for (int l = 0; l < L; ++l) t[l] = std::pow(t[l], e);
  return Vec::load(t);
}

inline Vec sign(Vec x) {
  const Vec zero = Vec::zero(), one = Vec::set1(1.f);
  return select_gt0(x, one, select_gt0(zero - x, zero - one, zero));
}

template <LpNorm kNorm>
void lppool_fwd(float* y, const float* x, const PoolParams& p, float norm) {
  for_rows(p, [&](int n, int op) {
    for (int oq = 0; oq < p.Q; ++oq) {
      Window win = window(p, op, oq);
      int cells = (win.h1 - win.h0) * (win.w1 - win.w0);
      Vec scale = Vec::set1(cells > 0 ? 1.f / float(cells) : 0.f);
      float* yp = y + ((size_t(n) * p.P + op) * p.Q + oq) * p.C;
      for (int c = 0; c < p.C; c += L) {
        int m = p.C - c < L ? p.C - c : L;
        Vec acc = Vec::zero();
        for (int h = win.h0; h < win.h1; ++h)
          for (int w = win.w0; w < win.w1; ++w) {
            Vec v = load_n(x + ((size_t(n) * p.H + h) * p.W + w) * p.C + c, m);
            acc = kNorm == kLp2 ? fmadd(v, v, acc) : acc + (kNorm == kLp1 ? abs(v) : pow_lanes(abs(v), norm));
          }
        Vec mean = acc * scale;
        store_n(yp + c, kNorm == kLp2 ? sqrt(mean) : kNorm == kLp1 ? mean : pow_lanes(mean, 1.f / norm), m);
      }
    }
  });
}

template <LpNorm kNorm>
void lppool_bwd(float* dx, const float* dy, const float* x, const float* y, const PoolParams& p,
                float norm) {
  size_t image = size_t(p.H) * p.W * p.C;
  for_images(p.N, size_t(p.P) * p.Q * p.C * p.R * p.S, [&](int n) {
    float* dxn = dx + size_t(n) * image;
    const float* xn = x + size_t(n) * image;
    for (size_t i = 0; i < image; ++i) dxn[i] = 0.f;
    for (int op = 0; op < p.P; ++op)
      for (int oq = 0; oq < p.Q; ++oq) {
        Window win = window(p, op, oq);
        int cells = (win.h1 - win.h0) * (win.w1 - win.w0);
        if (cells <= 0) continue;
        const Vec fcells = Vec::set1(float(cells));
        size_t yoff = ((size_t(n) * p.P + op) * p.Q + oq) * p.C;
        for (int c = 0; c < p.C; c += L) {
          int m = p.C - c < L ? p.C - c : L;
          Vec yv = load_n(y + yoff + c, m);
          Vec denom = kNorm == kLp2 ? fcells * yv : kNorm == kLp1 ? fcells : fcells * pow_lanes(yv, norm - 1.f);
          // 0 where y == 0 (the window is all zeros): a select, so 0/0 never reaches dx.
          Vec g = select_gt0(yv, load_n(dy + yoff + c, m) / denom, Vec::zero());
          for (int h = win.h0; h < win.h1; ++h)
            for (int w = win.w0; w < win.w1; ++w) {
              size_t off = (size_t(h) * p.W + w) * p.C + c;
              Vec v = load_n(xn + off, m);
              Vec d = kNorm == kLp2 ? g * v : kNorm == kLp1 ? g * sign(v) : g * sign(v) * pow_lanes(abs(v), norm - 1.f);
              store_n(dxn + off, load_n(dxn + off, m) + d, m);
            }
        }
      }
  });
}

}  // namespace

void lppool2d_fwd(float* y, const float* x, const PoolParams& p, float norm) {
  if (norm == 2.f) lppool_fwd<kLp2>(y, x, p, norm);
  else if (norm == 1.f) lppool_fwd<kLp1>(y, x, p, norm);
  else lppool_fwd<kLpGeneral>(y, x, p, norm);
}

void lppool2d_bwd(float* dx, const float* dy, const float* x, const float* y, const PoolParams& p,
                  float norm) {
  if (norm == 2.f) lppool_bwd<kLp2>(dx, dy, x, y, p, norm);
  else if (norm == 1.f) lppool_bwd<kLp1>(dx, dy, x, y, p, norm);
  else lppool_bwd<kLpGeneral>(dx, dy, x, y, p, norm);
}

void global_avgpool_fwd(float* y, const float* x, int N, int HW, int C) {
  Vec scale = Vec::set1(1.f / float(HW));
  for_images(N, size_t(HW) * C, [&](int n) {
    for (int c = 0; c < C; c += L) {
      int m = C - c < L ? C - c : L;
      Vec acc = Vec::zero();
      for (int i = 0; i < HW; ++i) acc = acc + load_n(x + (size_t(n) * HW + i) * C + c, m);
      store_n(y + size_t(n) * C + c, acc * scale, m);
    }
  });
}

void global_avgpool_bwd(float* dx, const float* dy, int N, int HW, int C) {
  Vec scale = Vec::set1(1.f / float(HW));
  for_images(N, size_t(HW) * C, [&](int n) {
    for (int c = 0; c < C; c += L) {
      int m = C - c < L ? C - c : L;
      Vec g = load_n(dy + size_t(n) * C + c, m) * scale;
      for (int i = 0; i < HW; ++i) store_n(dx + (size_t(n) * HW + i) * C + c, g, m);
    }
  });
}

void global_maxpool_fwd(float* y, const float* x, int N, int HW, int C) {
  for_images(N, size_t(HW) * C, [&](int n) {
    for (int c = 0; c < C; c += L) {
      int m = C - c < L ? C - c : L;
      Vec acc = load_n(x + size_t(n) * HW * C + c, m);
      for (int i = 1; i < HW; ++i) acc = max(acc, load_n(x + (size_t(n) * HW + i) * C + c, m));
      store_n(y + size_t(n) * C + c, acc, m);
    }
  });
}

void global_maxpool_bwd(float* dx, const float* dy, const float* x, int N, int HW, int C) {
  const Vec one = Vec::set1(1.f);
  for_images(N, size_t(HW) * C, [&](int n) {
    for (int c = 0; c < C; c += L) {
      int m = C - c < L ? C - c : L;
      const float* xn = x + size_t(n) * HW * C + c;
      Vec best = load_n(xn, m);
      for (int i = 1; i < HW; ++i) best = max(best, load_n(xn + size_t(i) * C, m));
      Vec g = load_n(dy + size_t(n) * C + c, m), taken = Vec::zero();
      for (int i = 0; i < HW; ++i) {
        Vec hit = select_eq(load_n(xn + size_t(i) * C, m), best, one, Vec::zero()) * (one - taken);
        store_n(dx + (size_t(n) * HW + i) * C + c, select_gt0(hit, g, Vec::zero()), m);
        taken = taken + hit;
      }
    }
  });
}

}  // namespace CK_ISA_NS
}  // namespace ck
