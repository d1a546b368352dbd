// conv2d as implicit GEMM over NHWC activations and HWIO weights (no im2col buffer):
//   forward      y[(n,p,q), k]  = sum_{(r,s,c)} x[n, h(p,r), w(q,s), c] * w[(r,s,c), k]
//   data grad    dx[(n,h,w), c] = sum_{(r,s,k)} dy[n, p(h,r), q(w,s), k] * w[(r,s,c), k]
//   filter grad  dw[(r,s,c), k] = sum_{(n,p,q)} x[n, h(p,r), w(q,s), c] * dy[(n,p,q), k]
// with taps outside the image (or, for the data gradient, between strides) reading zero. The
// filter gradient reduces over N*P*Q with split-K partials summed in a fixed order.
#include "gemm_tc.cuh"
#include "internal.h"

namespace ck {
namespace cuda {

namespace {

inline FastDiv fdiv(int d) { return FastDiv(uint32_t(d > 0 ? d : 1)); }

__device__ __forceinline__ bool inside(int h, int w, int H, int W) {
  return unsigned(h) < unsigned(H) && unsigned(w) < unsigned(W);
}
__device__ __forceinline__ void zero4(float (&v)[4]) { v[0] = v[1] = v[2] = v[3] = 0.f; }
__device__ __forceinline__ void put4(float (&v)[4], const float* p) {
  float4 t = __ldg(reinterpret_cast<const float4*>(p));
  v[0] = t.x, v[1] = t.y, v[2] = t.z, v[3] = t.w;
}

// Forward A: rows are output pixels m = (n,p,q), columns the taps kk = (r,s,c).
struct ConvFwdA {
  static constexpr bool kRedFast = true;
  const float* x;
  int M, Kred, H, W, C, S, sh, sw, ph, pw, dh, dw;
  size_t img;  // H*W*C
  FastDiv divC, divS, divQ, divP;
  int vec;  // C % 4 == 0 and x 16-byte aligned
  struct State {
    const float* img;
    int h0, w0;
  };
  __device__ __forceinline__ State setup(int m) const {
    State st{nullptr, 0, 0};
    if (m >= M) return st;
    uint32_t t, q, n, p;
    divQ.divmod(uint32_t(m), t, q);
    divP.divmod(t, n, p);
    st.img = x + size_t(n) * img;
    st.h0 = int(p) * sh - ph;
    st.w0 = int(q) * sw - pw;
    return st;
  }
  __device__ __forceinline__ void load(const State& st, int, int kk, float (&v)[4]) const {
    zero4(v);
    if (!st.img || kk >= Kred) return;
    uint32_t rs, c, r, s;
    divC.divmod(uint32_t(kk), rs, c);
    divS.divmod(rs, r, s);
    if (vec) {
      int h = st.h0 + int(r) * dh, w = st.w0 + int(s) * dw;
      if (inside(h, w, H, W)) put4(v, st.img + (size_t(h) * W + w) * C + c);
      return;
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      if (kk + i < Kred) {
        int h = st.h0 + int(r) * dh, w = st.w0 + int(s) * dw;
        if (inside(h, w, H, W)) v[i] = __ldg(st.img + (size_t(h) * W + w) * C + c);
      }
      if (++c == uint32_t(C)) {
        c = 0;
        if (++s == uint32_t(S)) s = 0, ++r;
      }
    }
  }
};

// Data-gradient A: rows are input pixels m = (n,h,w), columns kk = (r,s,k); the tap (r,s) of
// input pixel (h,w) reads output pixel ((h+ph-r*dh)/sh, (w+pw-s*dw)/sw) when both divide evenly
// and land inside the output.
struct ConvDgradA {
  static constexpr bool kRedFast = true;
  const float* dy;
  int M, Kred, K, S, P, Q, sh, sw, ph, pw, dh, dw;
  size_t img;  // P*Q*K
  FastDiv divK, divS, divW, divH, divSh, divSw;
  int vec;  // K % 4 == 0 and dy 16-byte aligned
  struct State {
    const float* img;
    int hb, wb;
  };
  __device__ __forceinline__ State setup(int m) const {
    State st{nullptr, 0, 0};
    if (m >= M) return st;
    uint32_t t, w, n, h;
    divW.divmod(uint32_t(m), t, w);
    divH.divmod(t, n, h);
    st.img = dy + size_t(n) * img;
    st.hb = int(h) + ph;
    st.wb = int(w) + pw;
    return st;
  }
  // Output pixel offset (p*Q + q) read by tap (r, s), or -1.
  __device__ __forceinline__ int tap(const State& st, int r, int s) const {
    int th = st.hb - r * dh, tw = st.wb - s * dw;
    if (th < 0 || tw < 0) return -1;
    uint32_t p = divSh.div(uint32_t(th)), q = divSw.div(uint32_t(tw));
    if (int(p) * sh != th || int(q) * sw != tw || int(p) >= P || int(q) >= Q) return -1;
    return int(p) * Q + int(q);
  }
  __device__ __forceinline__ void load(const State& st, int, int kk, float (&v)[4]) const {
    zero4(v);
    if (!st.img || kk >= Kred) return;
    uint32_t rs, k, r, s;
    divK.divmod(uint32_t(kk), rs, k);
    divS.divmod(rs, r, s);
    if (vec) {
      int o = tap(st, int(r), int(s));
      if (o >= 0) put4(v, st.img + size_t(o) * K + k);
      return;
    }
    int o = tap(st, int(r), int(s));
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      if (kk + i < Kred && o >= 0) v[i] = __ldg(st.img + size_t(o) * K + k);
      if (++k == uint32_t(K)) {
        k = 0;
        if (++s == uint32_t(S)) s = 0, ++r;
        o = tap(st, int(r), int(s));
      }
    }
  }
};

// Data-gradient B: rows kk = (r,s,k), columns c: w[(r,s), c, k], contiguous along k.
struct ConvDgradB {
  static constexpr bool kRedFast = true;
  const float* w;
  int C, K, Kred;
  FastDiv divK;
  int vec;  // K % 4 == 0 and w 16-byte aligned
  struct State {};
  __device__ __forceinline__ State setup(int) const { return {}; }
  __device__ __forceinline__ void load(const State&, int c, int kk, float (&v)[4]) const {
    zero4(v);
    if (c >= C || kk >= Kred) return;
    uint32_t rs, k;
    divK.divmod(uint32_t(kk), rs, k);
    if (vec) {
      put4(v, w + (size_t(rs) * C + c) * K + k);
      return;
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      if (kk + i < Kred) v[i] = __ldg(w + (size_t(rs) * C + c) * K + k);
      if (++k == uint32_t(K)) k = 0, ++rs;
    }
  }
};

// Filter-gradient A: rows o = (r,s,c) (4 consecutive per thread), columns the output pixels
// m = (n,p,q). The state holds the first row's tap; the next three follow by carrying c -> s -> r.
struct ConvWgradA {
  static constexpr bool kRedFast = false;
  const float* x;
  int RSC, Mpix, H, W, C, S, sh, sw, ph, pw, dh, dw;
  size_t img;  // H*W*C
  FastDiv divQ, divP;
  int vec;  // C % 4 == 0 and x 16-byte aligned: the 4 rows share one tap
  struct State {
    int r, s, c, rows;  // tap of row o0; rows = how many of the 4 rows exist
  };
  __device__ __forceinline__ State setup(int o0) const {
    State st{0, 0, 0, 0};
    if (o0 >= RSC) return st;
    int rs = o0 / C;
    st.c = o0 % C, st.r = rs / S, st.s = rs % S, st.rows = min(4, RSC - o0);
    return st;
  }
  __device__ __forceinline__ void load(const State& st, int, int m, float (&v)[4]) const {
    zero4(v);
    if (m >= Mpix || st.rows == 0) return;
    uint32_t t, q, n, p;
    divQ.divmod(uint32_t(m), t, q);
    divP.divmod(t, n, p);
    const float* base = x + size_t(n) * img;
    const int hp = int(p) * sh - ph, wq = int(q) * sw - pw;
    if (vec) {
      int h = hp + st.r * dh, w = wq + st.s * dw;
      if (inside(h, w, H, W)) put4(v, base + (size_t(h) * W + w) * C + st.c);
      return;
    }
    int r = st.r, s = st.s, c = st.c;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      if (i < st.rows) {
        int h = hp + r * dh, w = wq + s * dw;
        if (inside(h, w, H, W)) v[i] = __ldg(base + (size_t(h) * W + w) * C + c);
      }
      if (++c == C) {
        c = 0;
        if (++s == S) s = 0, ++r;
      }
    }
  }
};

void check_conv(const ConvParams& p, const char* op) {
  if (p.N < 0 || p.H < 0 || p.W < 0 || p.C < 0 || p.K < 0 || p.R < 0 || p.S < 0 || p.P < 0 ||
      p.Q < 0 || p.stride_h < 1 || p.stride_w < 1 || p.dil_h < 1 || p.dil_w < 1) {
    throw_error(ErrorKind::Value, std::string(op) + ": invalid convolution parameters");
  }
  require_int_range(size_t(p.N) * p.P * p.Q, op, "N*P*Q");
  require_int_range(size_t(p.N) * p.H * p.W, op, "N*H*W");
  require_int_range(size_t(p.H) * p.W * p.C, op, "H*W*C");
  require_int_range(size_t(p.P) * p.Q * p.K, op, "P*Q*K");
  require_int_range(size_t(p.R) * p.S * p.C * p.K, op, "R*S*C*K");
}

}  // namespace

void conv2d_fwd(float* y, const float* x, const float* w, const float* b, const ConvParams& p,
                Act act, void* stream) {
  const bool relu = epilogue_relu(act, "conv2d");
  check_conv(p, "conv2d");
  if (p.y_size() == 0) return;
  ConvFwdA a;
  a.x = x, a.M = p.N * p.P * p.Q, a.Kred = p.R * p.S * p.C;
  a.H = p.H, a.W = p.W, a.C = p.C, a.S = p.S, a.sh = p.stride_h, a.sw = p.stride_w;
  a.ph = p.pad_h, a.pw = p.pad_w, a.dh = p.dil_h, a.dw = p.dil_w;
  a.img = size_t(p.H) * p.W * p.C;
  a.divC = fdiv(p.C), a.divS = fdiv(p.S), a.divQ = fdiv(p.Q), a.divP = fdiv(p.P);
  a.vec = p.C % 4 == 0 && aligned16(x);
  MatLoader<false> bl{w, p.K, a.Kred, p.K, p.K % 4 == 0 && aligned16(w)};
  gemm(a, bl, y, b, relu, a.M, p.K, a.Kred, as_stream(stream), "conv2d");
  epilogue_rest(y, p.y_size(), act, stream);
}

void conv2d_bwd_data(float* dx, const float* dy, const float* w, const ConvParams& p,
                     void* stream) {
  check_conv(p, "conv2dGrad (data)");
  if (p.x_size() == 0) return;
  ConvDgradA a;
  a.dy = dy, a.M = p.N * p.H * p.W, a.Kred = p.R * p.S * p.K;
  a.K = p.K, a.S = p.S, a.P = p.P, a.Q = p.Q, a.sh = p.stride_h, a.sw = p.stride_w;
  a.ph = p.pad_h, a.pw = p.pad_w, a.dh = p.dil_h, a.dw = p.dil_w;
  a.img = size_t(p.P) * p.Q * p.K;
  a.divK = fdiv(p.K), a.divS = fdiv(p.S), a.divW = fdiv(p.W), a.divH = fdiv(p.H);
  a.divSh = fdiv(p.stride_h), a.divSw = fdiv(p.stride_w);
  a.vec = p.K % 4 == 0 && aligned16(dy);
  ConvDgradB bl;
  bl.w = w, bl.C = p.C, bl.K = p.K, bl.Kred = a.Kred, bl.divK = fdiv(p.K);
  bl.vec = p.K % 4 == 0 && aligned16(w);
  gemm(a, bl, dx, nullptr, false, a.M, p.C, a.Kred, as_stream(stream), "conv2dGrad (data)");
}

void conv2d_bwd_filter(float* dw, float* db, const float* dy, const float* x, const ConvParams& p,
                       void* stream) {
  check_conv(p, "conv2dGrad (filter)");
  const int Mpix = p.N * p.P * p.Q;
  if (db && p.K > 0) {
    column_sums(db, dy, 1, size_t(Mpix), p.K, 1.f, as_stream(stream), "conv2dGrad (bias)");
  }
  if (p.w_size() == 0) return;
  ConvWgradA a;
  a.x = x, a.RSC = p.R * p.S * p.C, a.Mpix = Mpix;
  a.H = p.H, a.W = p.W, a.C = p.C, a.S = p.S, a.sh = p.stride_h, a.sw = p.stride_w;
  a.ph = p.pad_h, a.pw = p.pad_w, a.dh = p.dil_h, a.dw = p.dil_w;
  a.img = size_t(p.H) * p.W * p.C;
  a.divQ = fdiv(p.Q), a.divP = fdiv(p.P);
  a.vec = p.C % 4 == 0 && aligned16(x);
  MatLoader<false> bl{dy, p.K, Mpix, p.K, p.K % 4 == 0 && aligned16(dy)};
  gemm(a, bl, dw, nullptr, false, a.RSC, p.K, Mpix, as_stream(stream), "conv2dGrad (filter)");
}

}  // namespace cuda
}  // namespace ck
