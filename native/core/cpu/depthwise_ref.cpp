// Scalar reference depthwise convolution (TensorFlow's layout: w [R,S,C,M], output channel
// c*M+m, K = C*M), plain loops over the definition:
//
//   depthwise_conv2d_fwd:        y[n,p,q,c*M+m] = act(b[c*M+m] + sum_{r,s} x[n,h,w,c] * w[r,s,c,m])
//   depthwise_conv2d_bwd_data:   dx[n,h,w,c]    = sum_{p,q,r,s,m reading (h,w)} dy[n,p,q,c*M+m] * w[r,s,c,m]
//   depthwise_conv2d_bwd_filter: dw[r,s,c,m]    = sum_{n,p,q} x[n,h,w,c] * dy[n,p,q,c*M+m]; db = sum dy
//
// where h = p*sh - ph + r*dh, w = q*sw - pw + s*dw, and taps outside the image contribute zero.
#include <cstring>
#include <string>

#include "../errors.h"
#include "reference.h"

namespace ck {
namespace ref {

namespace {

// In 64 bits: r * dilation can pass 2^31.
inline int64_t in_h(const ConvParams& p, int out_p, int r) {
  return int64_t(out_p) * p.stride_h - p.pad_h + int64_t(r) * p.dil_h;
}
inline int64_t in_w(const ConvParams& p, int out_q, int s) {
  return int64_t(out_q) * p.stride_w - p.pad_w + int64_t(s) * p.dil_w;
}

}  // namespace

void depthwise_conv2d_fwd(float* y, const float* x, const float* w, const float* b,
                          const ConvParams& p, Act act) {
  if (!epilogue_act(act)) {
    throw_error(ErrorKind::Value, std::string("depthwiseConv2d: the fused activation must be ") + kEpilogueActNames);
  }
  const int C = p.C, K = p.K, M = p.K / p.C;
  for (int n = 0; n < p.N; ++n)
    for (int op = 0; op < p.P; ++op)
      for (int oq = 0; oq < p.Q; ++oq) {
        float* out = y + ((size_t(n) * p.P + op) * p.Q + oq) * K;
        for (int k = 0; k < K; ++k) out[k] = 0.f;
        for (int r = 0; r < p.R; ++r) {
          int64_t h = in_h(p, op, r);
          if (h < 0 || h >= p.H) continue;
          for (int s = 0; s < p.S; ++s) {
            int64_t wi = in_w(p, oq, s);
            if (wi < 0 || wi >= p.W) continue;
            const float* xin = x + ((size_t(n) * p.H + h) * p.W + wi) * C;
            const float* wt = w + (size_t(r) * p.S + s) * K;
            for (int c = 0; c < C; ++c)
              for (int m = 0; m < M; ++m) out[c * M + m] += xin[c] * wt[c * M + m];
          }
        }
        for (int k = 0; k < K; ++k) out[k] += b ? b[k] : 0.f;
        activation_fwd(out, out, size_t(K), act, 0.f);
      }
}

void depthwise_conv2d_bwd_data(float* dx, const float* dy, const float* w, const ConvParams& p) {
  const int C = p.C, K = p.K, M = p.K / p.C;
  std::memset(dx, 0, p.x_size() * sizeof(float));
  for (int n = 0; n < p.N; ++n)
    for (int op = 0; op < p.P; ++op)
      for (int oq = 0; oq < p.Q; ++oq) {
        const float* g = dy + ((size_t(n) * p.P + op) * p.Q + oq) * K;
        for (int r = 0; r < p.R; ++r) {
          int64_t h = in_h(p, op, r);
          if (h < 0 || h >= p.H) continue;
          for (int s = 0; s < p.S; ++s) {
            int64_t wi = in_w(p, oq, s);
            if (wi < 0 || wi >= p.W) continue;
            float* dxin = dx + ((size_t(n) * p.H + h) * p.W + wi) * C;
            const float* wt = w + (size_t(r) * p.S + s) * K;
            for (int c = 0; c < C; ++c) {
              float sum = 0.f;
              for (int m = 0; m < M; ++m) sum += g[c * M + m] * wt[c * M + m];
              dxin[c] += sum;
            }
          }
        }
      }
}

void depthwise_conv2d_bwd_filter(float* dw, float* db, const float* dy, const float* x,
                                 const ConvParams& p) {
  const int C = p.C, K = p.K, M = p.K / p.C;
  std::memset(dw, 0, size_t(p.R) * p.S * K * sizeof(float));
  if (db) std::memset(db, 0, size_t(K) * sizeof(float));
  for (int n = 0; n < p.N; ++n)
    for (int op = 0; op < p.P; ++op)
      for (int oq = 0; oq < p.Q; ++oq) {
        const float* g = dy + ((size_t(n) * p.P + op) * p.Q + oq) * K;
        if (db) {
          for (int k = 0; k < K; ++k) db[k] += g[k];
        }
        for (int r = 0; r < p.R; ++r) {
          int64_t h = in_h(p, op, r);
          if (h < 0 || h >= p.H) continue;
          for (int s = 0; s < p.S; ++s) {
            int64_t wi = in_w(p, oq, s);
            if (wi < 0 || wi >= p.W) continue;
            const float* xin = x + ((size_t(n) * p.H + h) * p.W + wi) * C;
            float* dwt = dw + (size_t(r) * p.S + s) * K;
            for (int c = 0; c < C; ++c)
              for (int m = 0; m < M; ++m) dwt[c * M + m] += xin[c] * g[c * M + m];
          }
        }
      }
}

}  // namespace ref
}  // namespace ck
