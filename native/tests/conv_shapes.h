// Convolution shapes for the kernel tests (CPU and GPU): ConvParams from explicit padding or
// TensorFlow's 'same', and a one-line description for failure messages.
#pragma once
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

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

// Shapes chosen to hit every edge: C or K = 1, channel counts off the vector width, 1x1
// images, kernels bigger than the image with padding, non-square kernels/strides, dilation.
inline std::vector<ck::ConvParams> conv_edge_shapes() {
  return {
      conv_shape(1, 1, 1, 1, 1, 1, 1),
      conv_shape(1, 5, 5, 1, 1, 3, 3),
      conv_shape(2, 7, 6, 3, 5, 3, 3, 1, 1, 1, 1, 1, 1),
      conv_shape(1, 1, 1, 17, 33, 1, 1),
      conv_shape(3, 1, 1, 5, 7, 3, 3, 1, 1, 1, 1, 1, 1),        // 1x1 image, 'same' 3x3
      conv_shape(1, 2, 3, 4, 9, 5, 5, 1, 1, 2, 2, 2, 2),        // kernel larger than the image
      conv_shape(2, 4, 4, 3, 3, 2, 2, 1, 1, 3, 3, 3, 3),        // padding larger than the kernel
      conv_shape(2, 9, 8, 5, 17, 3, 2, 2, 3, 1, 0, 0, 1),       // non-square kernel and strides
      conv_shape(1, 11, 10, 6, 20, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2),  // dilation 2, 'same'
      conv_shape(2, 12, 9, 3, 16, 3, 5, 2, 1, 1, 1, 2, 2, 2, 1),   // dilation + stride
      conv_shape(2, 8, 8, 16, 32, 3, 3, 1, 1, 1, 1, 1, 1),
      conv_shape(1, 6, 6, 32, 64, 3, 3, 1, 1, 1, 1, 1, 1),
      conv_shape(2, 10, 10, 8, 48, 5, 5),                       // valid 5x5
      conv_shape(1, 7, 7, 3, 65, 1, 1, 2, 2),                   // 1x1 stride 2: dx pixels with no tap
      conv_shape(1, 9, 9, 2, 80, 3, 3, 3, 3, 0, 0, 0, 0),
      conv_shape(1, 1, 9, 4, 5, 1, 3, 1, 1, 0, 0, 1, 1),        // P = 1 row
      conv_shape(2, 9, 1, 4, 5, 3, 1, 1, 1, 1, 1, 0, 0),        // Q = 1 column
      conv_shape(4, 3, 3, 1, 31, 3, 3),                         // P = Q = 1
      conv_shape(1, 16, 16, 3, 100, 3, 3, 2, 2, 0, 1, 0, 1),    // TF 'same' stride 2 (pad after)
      conv_shape(2, 6, 7, 40, 24, 2, 3, 1, 2, 1, 0, 2, 1, 1, 3),
  };
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
