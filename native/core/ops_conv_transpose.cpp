// The transposed convolution (Keras Conv2DTranspose, tfjs conv2dTranspose) as the gradient of a
// convolution: with the convolution from the transposed op's output [N, Ho, Wo, filters] to its
// input [N, H, W, inChannels], whose HWIO filter is Keras's [kH, kW, filters, inChannels] kernel
// as it stands, the forward op is that convolution's data gradient, its data gradient that
// convolution's forward, and its filter gradient that convolution's filter gradient with the
// two activations' roles swapped. Only the bias and its gradient need kernels of their own.
#include <algorithm>
#include <string>
#include <tuple>

#include "errors.h"
#include "op_launch.h"
#include "ops.h"

namespace ck {

int64_t conv2d_transpose_length(int64_t in, int kernel, int stride, int dilation, Padding padding,
                                int output_padding) {
  const int64_t k_eff = int64_t(kernel - 1) * dilation + 1;
  if (output_padding < 0) {
    return padding == Padding::Same ? in * stride : in * stride + std::max<int64_t>(k_eff - stride, 0);
  }
  const int64_t pad = padding == Padding::Same ? k_eff / 2 : 0;
  return (in - 1) * stride + k_eff - 2 * pad + output_padding;
}

ConvParams conv2d_transpose_params(const Shape& xs, const Shape& ws, const Conv2dTransposeAttrs& a,
                                   const char* op) {
  const std::string o(op);
  require(a.stride_h >= 1 && a.stride_w >= 1 && a.dil_h >= 1 && a.dil_w >= 1, ErrorKind::Value,
          o + ": strides and dilation must be >= 1, got strides [" + std::to_string(a.stride_h) + "," +
              std::to_string(a.stride_w) + "], dilation [" + std::to_string(a.dil_h) + "," +
              std::to_string(a.dil_w) + "]");
  require(xs.size() == 4, ErrorKind::Shape,
          o + ": input must have rank 4 [batch, height, width, channels], got shape " + shape_str(xs));
  require(ws.size() == 4, ErrorKind::Shape,
          o + ": filter must have rank 4 [kernelH, kernelW, filters, inChannels], got shape " + shape_str(ws));
  for (int64_t d : xs) {
    require(d > 0, ErrorKind::Shape, o + ": input dimensions must be positive, got " + shape_str(xs));
  }
  for (int64_t d : ws) {
    require(d > 0, ErrorKind::Shape, o + ": filter dimensions must be positive, got " + shape_str(ws));
  }
  require(ws[3] == xs[3], ErrorKind::Shape,
          o + ": the filter's last axis (in-channels) " + std::to_string(ws[3]) +
              " does not match the input channels " + std::to_string(xs[3]) + " (input " + shape_str(xs) +
              ", filter " + shape_str(ws) + ")");
  require(xs[1] < (1 << 24) && xs[2] < (1 << 24) && ws[0] < (1 << 16) && ws[1] < (1 << 16),
          ErrorKind::Shape, o + ": sizes too large: input " + shape_str(xs) + ", filter " + shape_str(ws));
  for (auto [pad, stride, axis] : {std::tuple<int, int, const char*>{a.out_pad_h, a.stride_h, "height"},
                                   std::tuple<int, int, const char*>{a.out_pad_w, a.stride_w, "width"}}) {
    // Keras's rule: the extra rows come after the last window, so fewer than one stride.
    require(pad < stride, ErrorKind::Value,
            o + ": outputPadding along the " + axis + " (" + std::to_string(pad) +
                ") must be smaller than the stride (" + std::to_string(stride) + ")");
  }
  const int64_t Ho = conv2d_transpose_length(xs[1], int(ws[0]), a.stride_h, a.dil_h, a.padding, a.out_pad_h);
  const int64_t Wo = conv2d_transpose_length(xs[2], int(ws[1]), a.stride_w, a.dil_w, a.padding, a.out_pad_w);
  const std::string size = std::to_string(Ho) + "x" + std::to_string(Wo);
  require(Ho >= 1 && Wo >= 1 && Ho < (1 << 24) && Wo < (1 << 24), ErrorKind::Shape,
          o + ": the output would be " + size + " (input " + shape_str(xs) + ", filter " + shape_str(ws) + ")");
  Conv2dAttrs c;
  c.stride_h = a.stride_h, c.stride_w = a.stride_w, c.dil_h = a.dil_h, c.dil_w = a.dil_w;
  c.padding = a.padding;
  ConvParams p = conv2d_params({xs[0], Ho, Wo, ws[2]}, {ws[0], ws[1], ws[2], ws[3]}, c, op);
  // TensorFlow's conv2d_transpose refuses an output whose convolution does not come back to the
  // input's size (an even kernel with 'same' padding and outputPadding 0, say): so does Keras.
  require(p.P == xs[1] && p.Q == xs[2], ErrorKind::Shape,
          o + ": an output of " + size + " does not convolve back to the input's " + std::to_string(xs[1]) +
              "x" + std::to_string(xs[2]) + " (it gives " + std::to_string(p.P) + "x" + std::to_string(p.Q) +
              "); change outputPadding or padding (input " + shape_str(xs) + ", filter " + shape_str(ws) + ")");
  return p;
}

Tensor conv2d_transpose(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv2dTransposeAttrs& a) {
  const char* op = "conv2dTranspose";
  ConvParams p = conv2d_transpose_params(x.shape, w.shape, a, op);
  if (bias) require_vector(op, "bias", *bias, p.C);
  require(trainable_epilogue_act(a.act), ErrorKind::Value,
          "conv2dTranspose: only 'relu', 'relu6' or 'sigmoid' can be fused into the transposed convolution");
  DeviceType dev = op_device(op, {{"x", &x}, {"filter", &w}, {"bias", bias}});
  Tensor y = empty_tensor({p.N, p.H, p.W, p.C}, op, dev);
  const float* b = bias ? bias->data() : nullptr;
  const Act act = a.act;
  launch_kernels(op, dev, {&x, &w, bias}, {&y}, [=](const auto& k) {
    k.conv2d_bwd_data(y.data(), x.data(), w.data(), p);
    if (b || act != Act::None) k.bias_act_fwd(y.data(), b, size_t(p.N) * p.H * p.W, p.C, act);
  });
  return y;
}

Conv2dGrads conv2d_transpose_grad(const Tensor& dy, const Tensor& x, const Tensor& w,
                                  const Conv2dTransposeAttrs& a, bool with_bias) {
  const char* op = "conv2dTransposeGrad";
  ConvParams p = conv2d_transpose_params(x.shape, w.shape, a, op);
  Shape ys = {p.N, p.H, p.W, p.C};
  require(dy.shape == ys, ErrorKind::Shape,
          std::string(op) + ": dy must have the output shape " + shape_str(ys) + ", got " + shape_str(dy.shape));
  DeviceType dev = op_device(op, {{"dy", &dy}, {"x", &x}, {"filter", &w}});
  Conv2dGrads g{empty_tensor(x.shape, op, dev), empty_tensor(w.shape, op, dev), Tensor{}};
  if (with_bias) g.db = empty_tensor({p.C}, op, dev);
  float* db = with_bias ? g.db.data() : nullptr;
  std::vector<const Tensor*> writes = {&g.dx, &g.dw, with_bias ? &g.db : nullptr};
  launch_kernels(op, dev, {&dy, &x, &w}, writes, [=](const auto& k) {
    k.conv2d_fwd(g.dx.data(), dy.data(), w.data(), nullptr, p, Act::None);
    k.conv2d_bwd_filter(g.dw.data(), nullptr, x.data(), dy.data(), p);
    if (db) k.bias_grad(db, dy.data(), size_t(p.N) * p.H * p.W, p.C);
  });
  return g;
}

}  // namespace ck
