#include "ops.h"

#include <algorithm>
#include <string>
#include <vector>

#include "errors.h"
#include "op_launch.h"

namespace ck {

// ---- shared checks and launching (op_launch.h) ----

void require(bool ok, ErrorKind kind, const std::string& msg) {
  if (!ok) throw_error(kind, msg);
}

void require_rank(const char* op, const char* what, const Tensor& t, int rank) {
  if (t.rank() != rank) {
    throw_error(ErrorKind::Shape, std::string(op) + ": " + what + " must have rank " +
                                      std::to_string(rank) + ", got shape " + shape_str(t.shape));
  }
}

void require_positive_dims(const char* op, const char* what, const Tensor& t) {
  for (int64_t d : t.shape) {
    if (d <= 0) {
      throw_error(ErrorKind::Shape, std::string(op) + ": " + what +
                                        " dimensions must be positive, got shape " +
                                        shape_str(t.shape));
    }
  }
}

void require_same_shape(const char* op, const char* a_name, const Tensor& a, const char* b_name,
                        const Tensor& b) {
  if (a.shape != b.shape) {
    throw_error(ErrorKind::Shape, std::string(op) + ": " + a_name + " " + shape_str(a.shape) +
                                      " and " + b_name + " " + shape_str(b.shape) +
                                      " must have the same shape");
  }
}

void require_vector(const char* op, const char* what, const Tensor& t, int64_t n) {
  if (t.rank() != 1 || t.dim(0) != n) {
    throw_error(ErrorKind::Shape, std::string(op) + ": " + what + " must have shape [" +
                                      std::to_string(n) + "], got " + shape_str(t.shape));
  }
}

uint64_t launch_on(const std::shared_ptr<Stream>& stream, const char* op,
                   const std::vector<const Tensor*>& reads,
                   const std::vector<const Tensor*>& writes, std::function<void()> kernel) {
  std::vector<StoragePtr> deps, outs;
  for (const Tensor* t : reads) {
    if (t) deps.push_back(t->storage);
  }
  for (const Tensor* t : writes) {
    if (t) {
      deps.push_back(t->storage);
      outs.push_back(t->storage);
    }
  }
  std::string name = op;
  Stream* self = stream.get();
  uint64_t seq = stream->enqueue(
      [deps, kernel = std::move(kernel), name, self]() {
        for (const StoragePtr& d : deps) {
          d->wait_from_other_stream(self);
          if (Failure failed = d->error()) throw Error(*with_prefix(failed, "input failed: "));
        }
        kernel();
      },
      [outs, name](const Failure& failure) {
        for (const StoragePtr& o : outs) o->set_error(with_prefix(failure, name + ": "));
      });
  for (const StoragePtr& o : outs) o->set_producer(stream, seq);
  return seq;
}

DeviceType op_device(const char* op, std::initializer_list<OpArg> args) {
  const OpArg* first = nullptr;
  bool mixed = false;
  for (const OpArg& a : args) {
    if (!a.tensor || !a.tensor->storage) continue;
    if (!first) {
      first = &a;
    } else if (a.tensor->device() != first->tensor->device()) {
      mixed = true;
    }
  }
  if (!first) return DeviceType::Cpu;
  if (mixed) {
    std::string where;
    for (const OpArg& a : args) {
      if (!a.tensor || !a.tensor->storage) continue;
      where += std::string(where.empty() ? "" : ", ") + a.name + " on " +
               device_name(a.tensor->device());
    }
    throw_error(ErrorKind::Device, std::string(op) + ": tensors on different devices (" + where +
                                       "); move them to one device with .to('cpu') or .to('cuda')");
  }
  return first->tensor->device();
}

void launch_cuda(const char* op, const std::function<void(const CudaKernels&, void*)>& enqueue) {
  DeviceBackend& b = cuda_backend();
  try {
    enqueue(b.kernels(), b.stream());
  } catch (const Error& e) {
    throw Error(e.kind(), std::string(op) + ": " + e.what());
  }
}

// ---- geometry ----

AxisGeometry axis_geometry(int64_t in, int kernel, int stride, int dilation, Padding padding) {
  int64_t k_eff = int64_t(kernel - 1) * dilation + 1;
  if (padding == Padding::Same) {
    int64_t out = (in + stride - 1) / stride;
    int64_t total = (out - 1) * stride + k_eff - in;
    if (total < 0) total = 0;
    return {int(out), int(total / 2)};
  }
  int64_t out = in >= k_eff ? (in - k_eff) / stride + 1 : 0;
  return {int(out), 0};
}

namespace {

void check_window(const char* op, const char* what, int h, int w) {
  require(h >= 1 && w >= 1, ErrorKind::Value,
          std::string(op) + ": " + what + " must be >= 1, got [" + std::to_string(h) + "," +
              std::to_string(w) + "]");
}

}  // namespace

ConvParams conv2d_params(const Shape& xs, const Shape& ws, const Conv2dAttrs& a, const char* op) {
  check_window(op, "strides", a.stride_h, a.stride_w);
  check_window(op, "dilation", a.dil_h, a.dil_w);
  require(xs.size() == 4, ErrorKind::Shape,
          std::string(op) + ": input must have rank 4 [batch, height, width, channels], got shape " +
              shape_str(xs));
  require(ws.size() == 4, ErrorKind::Shape,
          std::string(op) + ": filter must have rank 4 [kernelH, kernelW, inChannels, filters], got shape " +
              shape_str(ws));
  for (int64_t d : xs) {
    require(d > 0, ErrorKind::Shape,
            std::string(op) + ": input dimensions must be positive, got " + shape_str(xs));
  }
  for (int64_t d : ws) {
    require(d > 0, ErrorKind::Shape,
            std::string(op) + ": filter dimensions must be positive, got " + shape_str(ws));
  }
  // The kernels index taps and padding in 32 bits: a dilated window this wide would overflow.
  for (auto [k, d] : {std::pair<int64_t, int>{ws[0], a.dil_h}, std::pair<int64_t, int>{ws[1], a.dil_w}}) {
    require((k - 1) * d + 1 <= (int64_t(1) << 30), ErrorKind::Value,
            std::string(op) + ": a " + std::to_string(k) + "-tap window dilated by " + std::to_string(d) +
                " spans more than 2^30 pixels (filter " + shape_str(ws) + ")");
  }
  const int64_t groups = a.groups;
  require(groups >= 1, ErrorKind::Value,
          std::string(op) + ": groups must be >= 1, got " + std::to_string(groups));
  if (groups == 1) {
    require(ws[2] == xs[3], ErrorKind::Shape,
            std::string(op) + ": filter in-channels " + std::to_string(ws[2]) +
                " do not match input channels " + std::to_string(xs[3]) + " (input " +
                shape_str(xs) + ", filter " + shape_str(ws) + ")");
  } else {
    require(xs[3] % groups == 0 && ws[3] % groups == 0, ErrorKind::Shape,
            std::string(op) + ": groups " + std::to_string(groups) +
                " must divide the input channels and the filters (input " + shape_str(xs) +
                ", filter " + shape_str(ws) + ")");
    require(ws[2] * groups == xs[3], ErrorKind::Shape,
            std::string(op) + ": filter in-channels must be input channels / groups = " +
                std::to_string(xs[3] / groups) + ", got " + std::to_string(ws[2]) + " (input " +
                shape_str(xs) + ", filter " + shape_str(ws) + ", groups " +
                std::to_string(groups) + ")");
  }
  require(xs[1] < (1 << 24) && xs[2] < (1 << 24) && ws[0] < (1 << 16) && ws[1] < (1 << 16),
          ErrorKind::Shape, std::string(op) + ": sizes too large: input " + shape_str(xs) +
                                ", filter " + shape_str(ws));
  ConvParams p;
  p.N = int(xs[0]), p.H = int(xs[1]), p.W = int(xs[2]), p.C = int(xs[3]);
  p.R = int(ws[0]), p.S = int(ws[1]), p.K = int(ws[3]);
  p.stride_h = a.stride_h, p.stride_w = a.stride_w, p.dil_h = a.dil_h, p.dil_w = a.dil_w;
  AxisGeometry gh = axis_geometry(p.H, p.R, p.stride_h, p.dil_h, a.padding);
  AxisGeometry gw = axis_geometry(p.W, p.S, p.stride_w, p.dil_w, a.padding);
  require(gh.out >= 1 && gw.out >= 1, ErrorKind::Shape,
          std::string(op) + ": the " + std::to_string(p.R) + "x" + std::to_string(p.S) +
              " filter (dilation " + std::to_string(p.dil_h) + "x" + std::to_string(p.dil_w) +
              ") does not fit the " + std::to_string(p.H) + "x" + std::to_string(p.W) +
              " input with 'valid' padding (input " + shape_str(xs) + ", filter " +
              shape_str(ws) + ")");
  p.P = gh.out, p.Q = gw.out, p.pad_h = gh.pad_before, p.pad_w = gw.pad_before;
  return p;
}

PoolParams pool2d_params(const Shape& xs, const Pool2dAttrs& a, const char* op) {
  check_window(op, "poolSize", a.pool_h, a.pool_w);
  check_window(op, "strides", a.stride_h, a.stride_w);
  require(xs.size() == 4, ErrorKind::Shape,
          std::string(op) + ": input must have rank 4 [batch, height, width, channels], got shape " +
              shape_str(xs));
  for (int64_t d : xs) {
    require(d > 0, ErrorKind::Shape,
            std::string(op) + ": input dimensions must be positive, got " + shape_str(xs));
  }
  require(xs[1] < (1 << 24) && xs[2] < (1 << 24) && a.pool_h < (1 << 16) && a.pool_w < (1 << 16),
          ErrorKind::Shape, std::string(op) + ": sizes too large: input " + shape_str(xs));
  PoolParams p;
  p.N = int(xs[0]), p.H = int(xs[1]), p.W = int(xs[2]), p.C = int(xs[3]);
  p.R = a.pool_h, p.S = a.pool_w, p.stride_h = a.stride_h, p.stride_w = a.stride_w;
  AxisGeometry gh = axis_geometry(p.H, p.R, p.stride_h, 1, a.padding);
  AxisGeometry gw = axis_geometry(p.W, p.S, p.stride_w, 1, a.padding);
  require(gh.out >= 1 && gw.out >= 1, ErrorKind::Shape,
          std::string(op) + ": the " + std::to_string(p.R) + "x" + std::to_string(p.S) +
              " pool does not fit the " + std::to_string(p.H) + "x" + std::to_string(p.W) +
              " input with 'valid' padding (input " + shape_str(xs) + ")");
  p.P = gh.out, p.Q = gw.out, p.pad_h = gh.pad_before, p.pad_w = gw.pad_before;
  return p;
}

// ---- convolution and dense ----

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv2dAttrs& a) {
  const char* op = "conv2d";
  ConvParams p = conv2d_params(x.shape, w.shape, a, op);
  if (bias) require_vector(op, "bias", *bias, p.K);
  require(a.act == Act::None || a.act == Act::Relu, ErrorKind::Value,
          "conv2d: only 'relu' can be fused into the convolution");
  DeviceType dev = op_device(op, {{"x", &x}, {"filter", &w}, {"bias", bias}});
  Tensor y = empty_tensor({p.N, p.P, p.Q, p.K}, op, dev);
  const float* b = bias ? bias->data() : nullptr;
  launch_kernels(op, dev, {&x, &w, bias}, {&y}, [=](const auto& k) {
    if (a.groups > 1) {
      k.grouped_conv2d_fwd(y.data(), x.data(), w.data(), b, p, a.groups, a.act);
    } else {
      k.conv2d_fwd(y.data(), x.data(), w.data(), b, p, a.act);
    }
  });
  return y;
}

Conv2dGrads conv2d_grad(const Tensor& dy, const Tensor& x, const Tensor& w, const Conv2dAttrs& a,
                        bool with_bias) {
  const char* op = "conv2dGrad";
  ConvParams p = conv2d_params(x.shape, w.shape, a, op);
  Shape ys = {p.N, p.P, p.Q, p.K};
  require(dy.shape == ys, ErrorKind::Shape,
          std::string(op) + ": dy must have the output shape " + shape_str(ys) + ", got " +
              shape_str(dy.shape));
  DeviceType dev = op_device(op, {{"dy", &dy}, {"x", &x}, {"filter", &w}});
  Conv2dGrads g{empty_tensor(x.shape, op, dev), empty_tensor(w.shape, op, dev), Tensor{}};
  if (with_bias) g.db = empty_tensor({p.K}, op, dev);
  float* db = with_bias ? g.db.data() : nullptr;
  std::vector<const Tensor*> writes = {&g.dx, &g.dw, with_bias ? &g.db : nullptr};
  launch_kernels(op, dev, {&dy, &x, &w}, writes, [=](const auto& k) {
    if (a.groups > 1) {
      k.grouped_conv2d_bwd_data(g.dx.data(), dy.data(), w.data(), p, a.groups);
      k.grouped_conv2d_bwd_filter(g.dw.data(), db, dy.data(), x.data(), p, a.groups);
    } else {
      k.conv2d_bwd_data(g.dx.data(), dy.data(), w.data(), p);
      k.conv2d_bwd_filter(g.dw.data(), db, dy.data(), x.data(), p);
    }
  });
  return g;
}

namespace {
struct DenseDims {
  int M, K, N;
};
DenseDims dense_dims(const char* op, const Tensor& x, const Tensor& w) {
  require(x.rank() >= 2, ErrorKind::Shape,
          std::string(op) + ": input must have rank >= 2 [batch, ..., features], got shape " +
              shape_str(x.shape));
  require_rank(op, "kernel", w, 2);
  require_positive_dims(op, "input", x);
  require_positive_dims(op, "kernel", w);
  require(w.dim(0) == x.shape.back(), ErrorKind::Shape,
          std::string(op) + ": kernel rows " + std::to_string(w.dim(0)) +
              " do not match input features " + std::to_string(x.shape.back()) + " (input " +
              shape_str(x.shape) + ", kernel " + shape_str(w.shape) + ")");
  size_t rows = x.numel() / size_t(x.shape.back());
  require(rows < (size_t(1) << 31), ErrorKind::Shape, std::string(op) + ": too many rows");
  return {int(rows), int(w.dim(0)), int(w.dim(1))};
}
}  // namespace

Tensor dense(const Tensor& x, const Tensor& w, const Tensor* bias, Act act) {
  const char* op = "dense";
  DenseDims d = dense_dims(op, x, w);
  if (bias) require_vector(op, "bias", *bias, d.N);
  require(act == Act::None || act == Act::Relu, ErrorKind::Value,
          "dense: only 'relu' can be fused into the matmul");
  Shape ys = x.shape;
  ys.back() = d.N;
  DeviceType dev = op_device(op, {{"x", &x}, {"kernel", &w}, {"bias", bias}});
  Tensor y = empty_tensor(ys, op, dev);
  const float* b = bias ? bias->data() : nullptr;
  launch_kernels(op, dev, {&x, &w, bias}, {&y}, [=](const auto& k) {
    k.dense_fwd(y.data(), x.data(), w.data(), b, d.M, d.K, d.N, act);
  });
  return y;
}

DenseGrads dense_grad(const Tensor& dy, const Tensor& x, const Tensor& w, bool with_bias) {
  const char* op = "denseGrad";
  DenseDims d = dense_dims(op, x, w);
  Shape ys = x.shape;
  ys.back() = d.N;
  require(dy.shape == ys, ErrorKind::Shape,
          std::string(op) + ": dy must have the output shape " + shape_str(ys) + ", got " +
              shape_str(dy.shape));
  DeviceType dev = op_device(op, {{"dy", &dy}, {"x", &x}, {"kernel", &w}});
  DenseGrads g{empty_tensor(x.shape, op, dev), empty_tensor(w.shape, op, dev), Tensor{}};
  if (with_bias) g.db = empty_tensor({d.N}, op, dev);
  float* db = with_bias ? g.db.data() : nullptr;
  std::vector<const Tensor*> writes = {&g.dx, &g.dw, with_bias ? &g.db : nullptr};
  launch_kernels(op, dev, {&dy, &x, &w}, writes, [=](const auto& k) {
    k.dense_bwd_data(g.dx.data(), dy.data(), w.data(), d.M, d.K, d.N);
    k.dense_bwd_filter(g.dw.data(), db, dy.data(), x.data(), d.M, d.K, d.N);
  });
  return g;
}

// ---- data movement ----

namespace {
// A reshape's copy is no kernel of the list: a plain copy on the host, the backend's
// device-to-device copy on the CUDA stream.
void copy_floats(const CpuKernels&, float* y, const float* x, size_t n) { std::copy(x, x + n, y); }
void copy_floats(const CudaOps& k, float* y, const float* x, size_t n) {
  cuda_backend().copy_d2d(y, x, n * sizeof(float), k.s);
}
}  // namespace

Tensor copy(const Tensor& x, const Shape& shape) {
  // Shape and element count are checked before anything is allocated.
  check_shape(shape, "reshape");
  size_t n = shape_numel(shape);
  require(n == x.numel(), ErrorKind::Shape,
          "reshape: cannot reshape " + shape_str(x.shape) + " (" + std::to_string(x.numel()) +
              " elements) to " + shape_str(shape) + " (" + std::to_string(n) + ")");
  DeviceType dev = x.device();
  Tensor y = empty_tensor(shape, "reshape", dev);
  launch_kernels("reshape", dev, {&x}, {&y},
                 [=](const auto& k) { copy_floats(k, y.data(), x.data(), n); });
  return y;
}

}  // namespace ck
