// Scalar reference convolution: plain loops over the definition, the ground truth the vector
// kernels are tested against (and the CONVKIT_ISA=scalar path).
//
//   y[n,p,q,k] = act(b[k] + sum_{r,s,c} x[n, p*sh - ph + r*dh, q*sw - pw + s*dw, c] * w[r,s,c,k])
//
// with taps that fall outside the image contributing zero. NHWC activations, HWIO weights.
#include <cstring>

#include "../errors.h"
#include "reference.h"

namespace ck {
namespace ref {

namespace {

// Input row h / column w read by output row p / column q through tap r / s (may be outside).
inline int in_h(const ConvParams& p, int out_p, int r) {
  return out_p * p.stride_h - p.pad_h + r * p.dil_h;
}
inline int in_w(const ConvParams& p, int out_q, int s) {
  return out_q * p.stride_w - p.pad_w + s * p.dil_w;
}

void check_fused_act(Act act, const char* op) {
  if (!epilogue_act(act)) {
    throw_error(ErrorKind::Value,
                std::string(op) + ": the fused activation must be " + kEpilogueActNames);
  }
}

}  // namespace

void conv2d_fwd(float* y, const float* x, const float* w, const float* b, const ConvParams& p,
                Act act) {
  check_fused_act(act, "conv2d");
  const int K = p.K, C = p.C;
  for (int n = 0; n < p.N; ++n) {
    for (int op = 0; op < p.P; ++op) {
      for (int oq = 0; oq < p.Q; ++oq) {
        float* out = y + ((size_t(n) * p.P + op) * p.Q + oq) * K;
        for (int k = 0; k < K; ++k) out[k] = 0.f;
        for (int r = 0; r < p.R; ++r) {
          int h = in_h(p, op, r);
          if (h < 0 || h >= p.H) continue;
          for (int s = 0; s < p.S; ++s) {
            int wi = in_w(p, oq, s);
            if (wi < 0 || wi >= p.W) continue;
            const float* xin = x + ((size_t(n) * p.H + h) * p.W + wi) * C;
            const float* wt = w + (size_t(r) * p.S + s) * C * K;
            for (int c = 0; c < C; ++c) {
              float xv = xin[c];
              for (int k = 0; k < K; ++k) out[k] += xv * wt[size_t(c) * K + k];
            }
          }
        }
        for (int k = 0; k < K; ++k) out[k] += b ? b[k] : 0.f;
        activation_fwd(out, out, size_t(K), act, 0.f);
      }
    }
  }
}

// The plain loops read the HWIO weights as they are: nothing to pack.
size_t conv2d_packed_floats(const ConvParams&) { return 0; }
void conv2d_pack_weights(float*, const float*, const ConvParams&) {}
void conv2d_fwd_packed(float* y, const float* x, const float* w, const float*, const float* b,
                       const ConvParams& p, Act act) {
  conv2d_fwd(y, x, w, b, p, act);
}

// dx[n,h,w,c] = sum over every (p,q,r,s) whose tap reads (h,w) of dy[n,p,q,k] * w[r,s,c,k].
void conv2d_bwd_data(float* dx, const float* dy, const float* w, const ConvParams& p) {
  const int K = p.K, C = p.C;
  std::memset(dx, 0, p.x_size() * sizeof(float));
  for (int n = 0; n < p.N; ++n) {
    for (int op = 0; op < p.P; ++op) {
      for (int oq = 0; oq < p.Q; ++oq) {
        const float* g = dy + ((size_t(n) * p.P + op) * p.Q + oq) * K;
        for (int r = 0; r < p.R; ++r) {
          int h = in_h(p, op, r);
          if (h < 0 || h >= p.H) continue;
          for (int s = 0; s < p.S; ++s) {
            int wi = in_w(p, oq, s);
            if (wi < 0 || wi >= p.W) continue;
            float* dxin = dx + ((size_t(n) * p.H + h) * p.W + wi) * C;
            const float* wt = w + (size_t(r) * p.S + s) * C * K;
            for (int c = 0; c < C; ++c) {
              float sum = 0.f;
              for (int k = 0; k < K; ++k) sum += g[k] * wt[size_t(c) * K + k];
              dxin[c] += sum;
            }
          }
        }
      }
    }
  }
}

// dw[r,s,c,k] = sum over (n,p,q) of x[tap (r,s) of (n,p,q), c] * dy[n,p,q,k]; db = sum of dy.
void conv2d_bwd_filter(float* dw, float* db, const float* dy, const float* x,
                       const ConvParams& p) {
  const int K = p.K, C = p.C;
  std::memset(dw, 0, p.w_size() * sizeof(float));
  if (db) std::memset(db, 0, size_t(K) * sizeof(float));
  for (int n = 0; n < p.N; ++n) {
    for (int op = 0; op < p.P; ++op) {
      for (int oq = 0; oq < p.Q; ++oq) {
        const float* g = dy + ((size_t(n) * p.P + op) * p.Q + oq) * K;
        if (db) {
          for (int k = 0; k < K; ++k) db[k] += g[k];
        }
        for (int r = 0; r < p.R; ++r) {
          int h = in_h(p, op, r);
          if (h < 0 || h >= p.H) continue;
          for (int s = 0; s < p.S; ++s) {
            int wi = in_w(p, oq, s);
            if (wi < 0 || wi >= p.W) continue;
            const float* xin = x + ((size_t(n) * p.H + h) * p.W + wi) * C;
            float* dwt = dw + (size_t(r) * p.S + s) * C * K;
            for (int c = 0; c < C; ++c) {
              float xv = xin[c];
              for (int k = 0; k < K; ++k) dwt[size_t(c) * K + k] += xv * g[k];
            }
          }
        }
      }
    }
  }
}

}  // namespace ref
}  // namespace ck
