// Ops of the functional-model layers: depthwise convolution, zero padding, up-sampling, Lp
// pooling and the merges (add, concatenate), on the device their tensors are on: each body is
// written once over the kernel set (launch_kernels).
#include <algorithm>
#include <string>
#include <vector>

#include "errors.h"
#include "memory.h"
#include "op_launch.h"
#include "ops.h"

namespace ck {

namespace {

void require_nhwc(const char* op, const char* what, const Shape& s) {
  require(s.size() == 4, ErrorKind::Shape,
          std::string(op) + ": " + what + " must have rank 4 [batch, height, width, channels], got shape " +
              shape_str(s));
  for (int64_t d : s) {
    require(d > 0, ErrorKind::Shape,
            std::string(op) + ": " + what + " dimensions must be positive, got " + shape_str(s));
  }
}

void require_dy(const char* op, const Tensor& dy, const Shape& want) {
  require(dy.shape == want, ErrorKind::Shape,
          std::string(op) + ": dy must have the output shape " + shape_str(want) + ", got " +
              shape_str(dy.shape));
}

// A size derived from the input that must stay a valid tensor dimension.
void require_size(const char* op, const char* what, int64_t v, const Shape& x) {
  require(v >= 1 && v < (int64_t(1) << 24), ErrorKind::Shape,
          std::string(op) + ": " + what + " would be " + std::to_string(v) + " (input " +
              shape_str(x) + ")");
}

}  // namespace

// ---- depthwise convolution ----

ConvParams depthwise_conv2d_params(const Shape& xs, const Shape& ws, const Conv2dAttrs& a,
                                   const char* op) {
  require_nhwc(op, "input", xs);
  require(ws.size() == 4, ErrorKind::Shape,
          std::string(op) + ": filter must have rank 4 [kernelH, kernelW, inChannels, depthMultiplier], got shape " +
              shape_str(ws));
  require(ws[3] > 0 && ws[3] <= (int64_t(1) << 16) && xs[3] * ws[3] < (int64_t(1) << 24),
          ErrorKind::Shape,
          std::string(op) + ": depth multiplier must be in [1, 65536] with fewer than 2^24 output channels (input " +
              shape_str(xs) + ", filter " + shape_str(ws) + ")");
  Conv2dAttrs one = a;
  one.groups = 1;
  // [kH, kW, C, M] has a dense filter's checks and geometry (in-channels C); then K = C*M.
  ConvParams p = conv2d_params(xs, ws, one, op);
  p.K = p.C * int(ws[3]);
  return p;
}

Tensor depthwise_conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv2dAttrs& a) {
  const char* op = "depthwiseConv2d";
  ConvParams p = depthwise_conv2d_params(x.shape, w.shape, a, op);
  if (bias) require_vector(op, "bias", *bias, p.K);
  require(a.act == Act::None || a.act == Act::Relu, ErrorKind::Value,
          "depthwiseConv2d: only 'relu' can be fused into the convolution");
  DeviceType dev = op_device(op, {{"x", &x}, {"filter", &w}, {"bias", bias}});
  Tensor y = empty_tensor({p.N, p.P, p.Q, p.K}, op, dev);
  const float* b = bias ? bias->data() : nullptr;
  launch_kernels(op, dev, {&x, &w, bias}, {&y}, [=](const auto& k) {
    k.depthwise_conv2d_fwd(y.data(), x.data(), w.data(), b, p, a.act);
  });
  return y;
}

Conv2dGrads depthwise_conv2d_grad(const Tensor& dy, const Tensor& x, const Tensor& w,
                                  const Conv2dAttrs& a, bool with_bias) {
  const char* op = "depthwiseConv2dGrad";
  ConvParams p = depthwise_conv2d_params(x.shape, w.shape, a, op);
  require_dy(op, dy, {p.N, p.P, p.Q, p.K});
  DeviceType dev = op_device(op, {{"dy", &dy}, {"x", &x}, {"filter", &w}});
  Conv2dGrads g{empty_tensor(x.shape, op, dev), empty_tensor(w.shape, op, dev), Tensor{}};
  if (with_bias) g.db = empty_tensor({p.K}, op, dev);
  float* db = with_bias ? g.db.data() : nullptr;
  launch_kernels(op, dev, {&dy, &x, &w}, {&g.dx, &g.dw, with_bias ? &g.db : nullptr}, [=](const auto& k) {
    k.depthwise_conv2d_bwd_data(g.dx.data(), dy.data(), w.data(), p);
    k.depthwise_conv2d_bwd_filter(g.dw.data(), db, dy.data(), x.data(), p);
  });
  return g;
}

// ---- zero padding, up-sampling ----

Pad2dParams zero_padding2d_params(const Shape& xs, const ZeroPadding2dAttrs& a, const char* op) {
  require_nhwc(op, "input", xs);
  for (int v : {a.top, a.bottom, a.left, a.right}) {
    require(v >= 0 && v < (1 << 24), ErrorKind::Value,
            std::string(op) + ": padding must be in [0, 16777215], got " + std::to_string(v));
  }
  require_size(op, "the padded height", xs[1] + a.top + a.bottom, xs);
  require_size(op, "the padded width", xs[2] + a.left + a.right, xs);
  Pad2dParams p;
  p.N = int(xs[0]), p.H = int(xs[1]), p.W = int(xs[2]), p.C = int(xs[3]);
  p.top = a.top, p.bottom = a.bottom, p.left = a.left, p.right = a.right;
  return p;
}

Tensor zero_padding2d(const Tensor& x, const ZeroPadding2dAttrs& a) {
  const char* op = "zeroPadding2d";
  Pad2dParams p = zero_padding2d_params(x.shape, a, op);
  DeviceType dev = x.device();
  Tensor y = empty_tensor({p.N, p.P(), p.Q(), p.C}, op, dev);
  launch_kernels(op, dev, {&x}, {&y}, [=](const auto& k) { k.zero_pad2d_fwd(y.data(), x.data(), p); });
  return y;
}

Tensor zero_padding2d_grad(const Tensor& dy, const Tensor& x, const ZeroPadding2dAttrs& a) {
  const char* op = "zeroPadding2dGrad";
  Pad2dParams p = zero_padding2d_params(x.shape, a, op);
  require_dy(op, dy, {p.N, p.P(), p.Q(), p.C});
  DeviceType dev = op_device(op, {{"dy", &dy}, {"x", &x}});
  Tensor dx = empty_tensor(x.shape, op, dev);
  launch_kernels(op, dev, {&dy}, {&dx}, [=](const auto& k) { k.zero_pad2d_bwd(dx.data(), dy.data(), p); });
  return dx;
}

UpsampleParams up_sampling2d_params(const Shape& xs, const UpSampling2dAttrs& a, const char* op) {
  require_nhwc(op, "input", xs);
  require(a.size_h >= 1 && a.size_w >= 1 && a.size_h < (1 << 16) && a.size_w < (1 << 16),
          ErrorKind::Value,
          std::string(op) + ": size must be in [1, 65535], got [" + std::to_string(a.size_h) + "," +
              std::to_string(a.size_w) + "]");
  require_size(op, "the output height", xs[1] * a.size_h, xs);
  require_size(op, "the output width", xs[2] * a.size_w, xs);
  UpsampleParams p;
  p.N = int(xs[0]), p.H = int(xs[1]), p.W = int(xs[2]), p.C = int(xs[3]);
  p.size_h = a.size_h, p.size_w = a.size_w, p.interp = a.interp, p.half_pixel = a.half_pixel;
  return p;
}

Tensor up_sampling2d(const Tensor& x, const UpSampling2dAttrs& a) {
  const char* op = "upSampling2d";
  UpsampleParams p = up_sampling2d_params(x.shape, a, op);
  DeviceType dev = x.device();
  Tensor y = empty_tensor({p.N, p.P(), p.Q(), p.C}, op, dev);
  launch_kernels(op, dev, {&x}, {&y}, [=](const auto& k) { k.upsample2d_fwd(y.data(), x.data(), p); });
  return y;
}

Tensor up_sampling2d_grad(const Tensor& dy, const Tensor& x, const UpSampling2dAttrs& a) {
  const char* op = "upSampling2dGrad";
  UpsampleParams p = up_sampling2d_params(x.shape, a, op);
  require_dy(op, dy, {p.N, p.P(), p.Q(), p.C});
  DeviceType dev = op_device(op, {{"dy", &dy}, {"x", &x}});
  Tensor dx = empty_tensor(x.shape, op, dev);
  launch_kernels(op, dev, {&dy}, {&dx}, [=](const auto& k) { k.upsample2d_bwd(dx.data(), dy.data(), p); });
  return dx;
}

// ---- Lp pooling ----

void check_lp_norm(const std::string& where, float norm) {
  require(norm >= 1.f && norm <= kMaxLpNorm, ErrorKind::Value,
          where + ": p must be a number in [1, 1000000], got " + std::to_string(norm));
}

Tensor lp_pool2d(const Tensor& x, const Pool2dAttrs& a, float norm) {
  const char* op = "lpPool2d";
  check_lp_norm(op, norm);
  PoolParams p = pool2d_params(x.shape, a, op);
  DeviceType dev = x.device();
  Tensor y = empty_tensor({p.N, p.P, p.Q, p.C}, op, dev);
  launch_kernels(op, dev, {&x}, {&y}, [=](const auto& k) { k.lppool2d_fwd(y.data(), x.data(), p, norm); });
  return y;
}

Tensor lp_pool2d_grad(const Tensor& dy, const Tensor& x, const Pool2dAttrs& a, float norm) {
  const char* op = "lpPool2dGrad";
  check_lp_norm(op, norm);
  PoolParams p = pool2d_params(x.shape, a, op);
  require_dy(op, dy, {p.N, p.P, p.Q, p.C});
  DeviceType dev = op_device(op, {{"dy", &dy}, {"x", &x}});
  Tensor dx = empty_tensor(x.shape, op, dev);
  Tensor y = empty_tensor(dy.shape, op, dev);  // the forward's output, which the gradient divides by
  launch_kernels(op, dev, {&dy, &x}, {&dx, &y}, [=](const auto& k) {
    k.lppool2d_fwd(y.data(), x.data(), p, norm);
    k.lppool2d_bwd(dx.data(), dy.data(), x.data(), y.data(), p, norm);
  });
  return dx;
}

// ---- merges ----

Tensor add(const Tensor& a, const Tensor& b) {
  const char* op = "add";
  require_same_shape(op, "a", a, "b", b);
  DeviceType dev = op_device(op, {{"a", &a}, {"b", &b}});
  Tensor y = empty_tensor(a.shape, op, dev);
  const size_t n = a.numel();
  launch_kernels(op, dev, {&a, &b}, {&y}, [=](const auto& k) { k.add(y.data(), a.data(), b.data(), n); });
  return y;
}

namespace {

// The widths of the parts' last axes; every other dimension must match parts[0]'s, and every
// part must be on parts[0]'s device.
std::vector<int> concat_widths(const char* op, const std::vector<Tensor>& parts) {
  require(!parts.empty(), ErrorKind::Value, std::string(op) + ": needs at least one tensor");
  const Shape& first = parts[0].shape;
  const DeviceType first_device = parts[0].device();
  require(!first.empty(), ErrorKind::Shape, std::string(op) + ": tensors must have rank >= 1, got a scalar");
  std::vector<int> widths;
  int64_t total = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Shape& s = parts[i].shape;
    bool ok = s.size() == first.size() && std::equal(s.begin(), s.end() - 1, first.begin());
    require(ok && s.back() > 0, ErrorKind::Shape,
            std::string(op) + ": tensor " + std::to_string(i) + " has shape " + shape_str(s) +
                "; every tensor must match " + shape_str(first) +
                " on all but the last axis and have a positive last axis");
    require(parts[i].device() == first_device, ErrorKind::Device,
            std::string(op) + ": tensors on different devices (tensor 0 on " +
                device_name(first_device) + ", tensor " + std::to_string(i) + " on " +
                device_name(parts[i].device()) + ")");
    total += s.back();
    widths.push_back(int(s.back()));
  }
  require(total < (int64_t(1) << 31), ErrorKind::Shape, std::string(op) + ": the result is too wide");
  return widths;
}

}  // namespace

Tensor concatenate(const std::vector<Tensor>& parts) {
  const char* op = "concatenate";
  std::vector<int> widths = concat_widths(op, parts);
  Shape ys = parts[0].shape;
  ys.back() = 0;
  for (int w : widths) ys.back() += w;
  const DeviceType dev = parts[0].device();
  Tensor y = empty_tensor(ys, op, dev);
  const size_t rows = y.numel() / size_t(ys.back());
  std::vector<const Tensor*> reads;
  for (const Tensor& t : parts) reads.push_back(&t);
  launch_kernels(op, dev, reads, {&y}, [=](const auto& k) {
    std::vector<const float*> ptrs;
    for (const Tensor& t : parts) ptrs.push_back(t.data());
    k.concat_last(y.data(), ptrs.data(), widths.data(), int(widths.size()), rows);
  });
  return y;
}

std::vector<Tensor> concatenate_grad(const Tensor& dy, const std::vector<Tensor>& parts) {
  const char* op = "concatenateGrad";
  std::vector<int> widths = concat_widths(op, parts);
  Shape ys = parts[0].shape;
  ys.back() = 0;
  for (int w : widths) ys.back() += w;
  require_dy(op, dy, ys);
  const DeviceType dev = parts[0].device();
  require(dy.device() == dev, ErrorKind::Device,
          std::string(op) + ": tensors on different devices (dy on " + device_name(dy.device()) +
              ", the parts on " + device_name(dev) + ")");
  std::vector<Tensor> dxs;
  for (const Tensor& t : parts) dxs.push_back(empty_tensor(t.shape, op, dev));
  const size_t rows = dy.numel() / size_t(ys.back());
  std::vector<const Tensor*> writes;
  for (const Tensor& t : dxs) writes.push_back(&t);
  launch_kernels(op, dev, {&dy}, writes, [=](const auto& k) {
    std::vector<float*> ptrs;
    for (const Tensor& t : dxs) ptrs.push_back(t.data());
    k.split_last(ptrs.data(), dy.data(), widths.data(), int(widths.size()), rows);
  });
  return dxs;
}

}  // namespace ck
