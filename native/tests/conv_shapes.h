// Convolution shapes for the kernel tests (CPU and GPU): ConvParams from explicit padding or
// TensorFlow's 'same', and a one-line description for failure messages.
#pragma once
#include <algorithm>
#include <cstdio>
#include <string>

#include "kernels.h"

namespace cktest {

// Output size by the usual formula ((W - F + pad_total) / S) + 1, with dilation.
inline int out_size(int in, int k, int stride, int pad_total, int dil) {
  const int span = dil * (k - 1) + 1;
  return (in + pad_total - span) / stride + 1;
}

// pt/pb/pl/pr: padding at the top, bottom, left and right.
inline ck::ConvParams conv_shape(int N, int H, int W, int C, int K, int R, int S, int sh = 1,
                                 int sw = 1, int pt = 0, int pb = 0, int pl = 0, int pr = 0,
                                 int dh = 1, int dw = 1) {
  ck::ConvParams p;
  p.N = N, p.H = H, p.W = W, p.C = C, p.K = K, p.R = R, p.S = S;
  p.stride_h = sh, p.stride_w = sw, p.pad_h = pt, p.pad_w = pl, p.dil_h = dh, p.dil_w = dw;
  p.P = out_size(H, R, sh, pt + pb, dh);
  p.Q = out_size(W, S, sw, pl + pr, dw);
  return p;
}

// TensorFlow 'same' padding: out = ceil(in / stride), the smaller half of the padding first.
inline ck::ConvParams conv_same(int N, int H, int W, int C, int K, int R, int S, int sh = 1,
                                int sw = 1) {
  const int P = (H + sh - 1) / sh, Q = (W + sw - 1) / sw;
  const int th = std::max((P - 1) * sh + R - H, 0), tw = std::max((Q - 1) * sw + S - W, 0);
  return conv_shape(N, H, W, C, K, R, S, sh, sw, th / 2, th - th / 2, tw / 2, tw - tw / 2);
}

inline std::string describe(const ck::ConvParams& p) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "N%d H%d W%d C%d K%d R%d S%d P%d Q%d stride %d,%d pad %d,%d dil %d,%d", p.N, p.H,
                p.W, p.C, p.K, p.R, p.S, p.P, p.Q, p.stride_h, p.stride_w, p.pad_h, p.pad_w,
                p.dil_h, p.dil_w);
  return buf;
}

}  // namespace cktest
