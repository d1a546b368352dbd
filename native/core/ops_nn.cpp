// Ops other than convolution and dense: pooling, activations, dropout, batch normalization,
// losses and optimizer updates.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "errors.h"
#include "op_launch.h"
#include "ops.h"

namespace ck {

// ---- pooling ----

namespace {

Tensor pool_forward(const char* op, const Tensor& x, const Pool2dAttrs& a, bool max) {
  PoolParams p = pool2d_params(x.shape, a, op);
  DeviceType dev = x.device();
  Tensor y = empty_tensor({p.N, p.P, p.Q, p.C}, op, dev);
  launch_kernels(op, dev, {&x}, {&y}, [=](const auto& k) {
    if (max) {
      k.maxpool2d_fwd(y.data(), x.data(), p);
    } else {
      k.avgpool2d_fwd(y.data(), x.data(), p);
    }
  });
  return y;
}

PoolParams pool_grad_params(const char* op, const Tensor& dy, const Tensor& x,
                            const Pool2dAttrs& a) {
  PoolParams p = pool2d_params(x.shape, a, op);
  Shape ys = {p.N, p.P, p.Q, p.C};
  require(dy.shape == ys, ErrorKind::Shape,
          std::string(op) + ": dy must have the output shape " + shape_str(ys) + ", got " +
              shape_str(dy.shape));
  return p;
}

struct GlobalDims {
  int N, HW, C;
};
GlobalDims global_dims(const char* op, const Tensor& x) {
  require_rank(op, "input", x, 4);
  require_positive_dims(op, "input", x);
  return {int(x.dim(0)), int(x.dim(1) * x.dim(2)), int(x.dim(3))};
}

void require_global_dy(const char* op, const Tensor& dy, const Tensor& x) {
  Shape ys = {x.dim(0), x.dim(3)};
  require(dy.shape == ys, ErrorKind::Shape,
          std::string(op) + ": dy must have the output shape " + shape_str(ys) + ", got " +
              shape_str(dy.shape));
}

}  // namespace

Tensor max_pool2d(const Tensor& x, const Pool2dAttrs& a) {
  return pool_forward("maxPool2d", x, a, true);
}

Tensor avg_pool2d(const Tensor& x, const Pool2dAttrs& a) {
  return pool_forward("avgPool2d", x, a, false);
}

Tensor max_pool2d_grad(const Tensor& dy, const Tensor& x, const Pool2dAttrs& a) {
  const char* op = "maxPool2dGrad";
  PoolParams p = pool_grad_params(op, dy, x, a);
  DeviceType dev = op_device(op, {{"dy", &dy}, {"x", &x}});
  Tensor dx = empty_tensor(x.shape, op, dev);
  launch_kernels(op, dev, {&dy, &x}, {&dx}, [=](const auto& k) {
    k.maxpool2d_bwd(dx.data(), dy.data(), x.data(), p, false);
  });
  return dx;
}

Tensor avg_pool2d_grad(const Tensor& dy, const Tensor& x, const Pool2dAttrs& a) {
  const char* op = "avgPool2dGrad";
  PoolParams p = pool_grad_params(op, dy, x, a);
  DeviceType dev = op_device(op, {{"dy", &dy}, {"x", &x}});
  Tensor dx = empty_tensor(x.shape, op, dev);
  launch_kernels(op, dev, {&dy}, {&dx}, [=](const auto& k) {
    k.avgpool2d_bwd(dx.data(), dy.data(), p);
  });
  return dx;
}

Tensor global_avg_pool(const Tensor& x) {
  const char* op = "globalAvgPool";
  GlobalDims d = global_dims(op, x);
  DeviceType dev = x.device();
  Tensor y = empty_tensor({d.N, d.C}, op, dev);
  launch_kernels(op, dev, {&x}, {&y}, [=](const auto& k) {
    k.global_avgpool_fwd(y.data(), x.data(), d.N, d.HW, d.C);
  });
  return y;
}

Tensor global_avg_pool_grad(const Tensor& dy, const Tensor& x) {
  const char* op = "globalAvgPoolGrad";
  GlobalDims d = global_dims(op, x);
  require_global_dy(op, dy, x);
  DeviceType dev = op_device(op, {{"dy", &dy}, {"x", &x}});
  Tensor dx = empty_tensor(x.shape, op, dev);
  launch_kernels(op, dev, {&dy}, {&dx}, [=](const auto& k) {
    k.global_avgpool_bwd(dx.data(), dy.data(), d.N, d.HW, d.C);
  });
  return dx;
}

Tensor global_max_pool(const Tensor& x) {
  const char* op = "globalMaxPool";
  GlobalDims d = global_dims(op, x);
  DeviceType dev = x.device();
  Tensor y = empty_tensor({d.N, d.C}, op, dev);
  launch_kernels(op, dev, {&x}, {&y}, [=](const auto& k) {
    k.global_maxpool_fwd(y.data(), x.data(), d.N, d.HW, d.C);
  });
  return y;
}

Tensor global_max_pool_grad(const Tensor& dy, const Tensor& x) {
  const char* op = "globalMaxPoolGrad";
  GlobalDims d = global_dims(op, x);
  require_global_dy(op, dy, x);
  DeviceType dev = op_device(op, {{"dy", &dy}, {"x", &x}});
  Tensor dx = empty_tensor(x.shape, op, dev);
  launch_kernels(op, dev, {&dy, &x}, {&dx}, [=](const auto& k) {
    k.global_maxpool_bwd(dx.data(), dy.data(), x.data(), d.N, d.HW, d.C);
  });
  return dx;
}

// ---- activations ----

namespace {
void check_alpha(const char* op, Act act, float alpha) {
  require(std::isfinite(alpha), ErrorKind::Value,
          std::string(op) + ": alpha must be a finite number, got " + std::to_string(alpha));
  require(act != Act::LeakyRelu || alpha >= 0.f, ErrorKind::Value,
          std::string(op) + ": alpha must be >= 0, got " + std::to_string(alpha));
}
}  // namespace

Tensor activation(const Tensor& x, Act act, float alpha, const char* op) {
  check_alpha(op, act, alpha);
  DeviceType dev = x.device();
  Tensor y = empty_tensor(x.shape, op, dev);
  size_t n = x.numel();
  launch_kernels(op, dev, {&x}, {&y}, [=](const auto& k) {
    k.activation_fwd(y.data(), x.data(), n, act, alpha);
  });
  return y;
}

Tensor activation_grad(const Tensor& dy, const Tensor& y, Act act, float alpha, const char* op) {
  check_alpha(op, act, alpha);
  require(act_grad_from_output(act), ErrorKind::Value,
          std::string(op) + ": this activation's gradient is taken from its input x, not its output");
  require_same_shape(op, "dy", dy, "y", y);
  DeviceType dev = op_device(op, {{"dy", &dy}, {"y", &y}});
  Tensor dx = empty_tensor(y.shape, op, dev);
  size_t n = y.numel();
  launch_kernels(op, dev, {&dy, &y}, {&dx}, [=](const auto& k) {
    k.activation_bwd(dx.data(), dy.data(), y.data(), n, act, alpha);
  });
  return dx;
}

Tensor activation_grad_from_x(const Tensor& dy, const Tensor& x, Act act, float alpha, const char* op) {
  require(!act_grad_from_output(act), ErrorKind::Value,
          std::string(op) + ": this activation's gradient is taken from its output y, not its input");
  require_same_shape(op, "dy", dy, "x", x);
  DeviceType dev = op_device(op, {{"dy", &dy}, {"x", &x}});
  Tensor dx = empty_tensor(x.shape, op, dev);
  size_t n = x.numel();
  launch_kernels(op, dev, {&dy, &x}, {&dx}, [=](const auto& k) {
    k.activation_bwd_from_x(dx.data(), dy.data(), x.data(), n, act, alpha);
  });
  return dx;
}

namespace {
struct RowsCols {
  size_t rows, cols;
};
RowsCols last_axis(const char* op, const Tensor& x) {
  require(x.rank() >= 1, ErrorKind::Shape,
          std::string(op) + ": input must have rank >= 1, got a scalar");
  require_positive_dims(op, "input", x);
  size_t cols = size_t(x.shape.back());
  return {x.numel() / cols, cols};
}
}  // namespace

Tensor softmax(const Tensor& x) {
  const char* op = "softmax";
  RowsCols d = last_axis(op, x);
  DeviceType dev = x.device();
  Tensor y = empty_tensor(x.shape, op, dev);
  launch_kernels(op, dev, {&x}, {&y}, [=](const auto& k) {
    k.softmax_fwd(y.data(), x.data(), d.rows, d.cols);
  });
  return y;
}

Tensor softmax_grad(const Tensor& dy, const Tensor& y) {
  const char* op = "softmaxGrad";
  RowsCols d = last_axis(op, y);
  require_same_shape(op, "dy", dy, "y", y);
  DeviceType dev = op_device(op, {{"dy", &dy}, {"y", &y}});
  Tensor dx = empty_tensor(y.shape, op, dev);
  launch_kernels(op, dev, {&dy, &y}, {&dx}, [=](const auto& k) {
    k.softmax_bwd(dx.data(), dy.data(), y.data(), d.rows, d.cols);
  });
  return dx;
}

DropoutResult dropout(const Tensor& x, float rate, uint64_t seed) {
  const char* op = "dropout";
  require(rate >= 0.f && rate < 1.f, ErrorKind::Value,
          std::string(op) + ": rate must be in [0, 1), got " + std::to_string(rate));
  DeviceType dev = x.device();
  DropoutResult r{empty_tensor(x.shape, op, dev), empty_tensor(x.shape, op, dev)};
  size_t n = x.numel();
  launch_kernels(op, dev, {&x}, {&r.y, &r.mask}, [=](const auto& k) {
    k.dropout_fwd(r.y.data(), r.mask.data(), x.data(), n, rate, seed);
  });
  return r;
}

namespace {
// mul's operands: equal shapes (gate -1), or an image [N, ..., C] and a gate [N, 1, ..., 1, C] of
// one value per example and channel, broadcast over the axes between (gate: its position).
struct MulShape {
  int gate = -1;
  size_t n = 0, hw = 0;
  int C = 0;
};
MulShape mul_shape(const char* op, const Tensor& a, const Tensor& b) {
  MulShape m;
  if (a.shape == b.shape) return m;
  auto gates = [](const Shape& g, const Shape& x) {
    if (g.size() != x.size() || g.size() < 2 || g.front() != x.front() || g.back() != x.back()) return false;
    return std::all_of(g.begin() + 1, g.end() - 1, [](int64_t d) { return d == 1; });
  };
  m.gate = gates(a.shape, b.shape) ? 0 : gates(b.shape, a.shape) ? 1 : -1;
  require(m.gate >= 0, ErrorKind::Shape,
          std::string(op) + ": a " + shape_str(a.shape) + " and b " + shape_str(b.shape) +
              " must have the same shape, or one must be [N, ..., C] and the other [N, 1, ..., 1, C]");
  const Shape& x = m.gate == 0 ? b.shape : a.shape;
  m.n = size_t(x.front()), m.C = int(x.back());
  m.hw = shape_numel(x) / m.n / size_t(m.C);
  return m;
}
}  // namespace

Tensor mul(const Tensor& a, const Tensor& b, const char* op) {
  const MulShape m = mul_shape(op, a, b);
  DeviceType dev = op_device(op, {{"a", &a}, {"b", &b}});
  const Tensor& x = m.gate == 0 ? b : a;
  const Tensor& g = m.gate == 0 ? a : b;
  Tensor y = empty_tensor(x.shape, op, dev);
  size_t n = a.numel();
  launch_kernels(op, dev, {&a, &b}, {&y}, [=](const auto& k) {
    if (m.gate < 0) k.mul(y.data(), a.data(), b.data(), n);
    else k.mul_spatial(y.data(), x.data(), g.data(), m.n, m.hw, m.C);
  });
  return y;
}

MulGrads mul_grad(const Tensor& dy, const Tensor& a, const Tensor& b) {
  const char* op = "mulGrad";
  const MulShape m = mul_shape(op, a, b);
  const Tensor& x = m.gate == 0 ? b : a;
  require(dy.shape == x.shape, ErrorKind::Shape,
          std::string(op) + ": dy must have the output shape " + shape_str(x.shape) + ", got " +
              shape_str(dy.shape));
  DeviceType dev = op_device(op, {{"dy", &dy}, {"a", &a}, {"b", &b}});
  MulGrads r{empty_tensor(a.shape, op, dev), empty_tensor(b.shape, op, dev)};
  size_t n = dy.numel();
  launch_kernels(op, dev, {&dy, &a, &b}, {&r.da, &r.db}, [=](const auto& k) {
    if (m.gate < 0) {
      k.mul(r.da.data(), dy.data(), b.data(), n);
      k.mul(r.db.data(), dy.data(), a.data(), n);
      return;
    }
    const Tensor& gate = m.gate == 0 ? a : b;
    const Tensor& image = m.gate == 0 ? b : a;
    const Tensor& dgate = m.gate == 0 ? r.da : r.db;
    const Tensor& dimage = m.gate == 0 ? r.db : r.da;
    k.mul_spatial_bwd_gate(dgate.data(), dy.data(), image.data(), m.n, m.hw, m.C);
    k.mul_spatial(dimage.data(), dy.data(), gate.data(), m.n, m.hw, m.C);
  });
  return r;
}

// ---- batch normalization ----

namespace {
RowsCols bn_dims(const char* op, const Tensor& x, std::initializer_list<const Tensor*> per_channel) {
  RowsCols d = last_axis(op, x);
  for (const Tensor* t : per_channel) {
    if (t) require_vector(op, "per-channel parameter", *t, int64_t(d.cols));
  }
  return d;
}
void check_eps(const char* op, float eps) {
  require(std::isfinite(eps) && eps > 0.f, ErrorKind::Value,
          std::string(op) + ": epsilon must be > 0, got " + std::to_string(eps));
}
}  // namespace

BatchNormResult batch_norm_train(const Tensor& x, const Tensor* gamma, const Tensor* beta,
                                 const Tensor* running_mean, const Tensor* running_var, float eps,
                                 float momentum) {
  const char* op = "batchNorm";
  check_eps(op, eps);
  require(momentum >= 0.f && momentum <= 1.f, ErrorKind::Value,
          std::string(op) + ": momentum must be in [0, 1], got " + std::to_string(momentum));
  RowsCols d = bn_dims(op, x, {gamma, beta, running_mean, running_var});
  int C = int(d.cols);
  DeviceType dev = op_device(op, {{"x", &x},
                                  {"gamma", gamma},
                                  {"beta", beta},
                                  {"movingMean", running_mean},
                                  {"movingVariance", running_var}});
  BatchNormResult r{empty_tensor(x.shape, op, dev), empty_tensor({C}, op, dev),
                    empty_tensor({C}, op, dev)};
  const float* g = gamma ? gamma->data() : nullptr;
  const float* b = beta ? beta->data() : nullptr;
  float* rm = running_mean ? running_mean->data() : nullptr;
  float* rv = running_var ? running_var->data() : nullptr;
  std::vector<const Tensor*> writes = {&r.y, &r.mean, &r.invstd, running_mean, running_var};
  launch_kernels(op, dev, {&x, gamma, beta}, writes, [=](const auto& k) {
    k.batchnorm_fwd_train(r.y.data(), r.mean.data(), r.invstd.data(), rm, rv, x.data(), g, b,
                          d.rows, C, eps, momentum, Act::None);
  });
  return r;
}

Tensor batch_norm_infer(const Tensor& x, const Tensor* gamma, const Tensor* beta,
                        const Tensor& mean, const Tensor& var, float eps) {
  const char* op = "batchNorm";
  check_eps(op, eps);
  RowsCols d = bn_dims(op, x, {gamma, beta, &mean, &var});
  DeviceType dev = op_device(
      op, {{"x", &x}, {"gamma", gamma}, {"beta", beta}, {"mean", &mean}, {"variance", &var}});
  Tensor y = empty_tensor(x.shape, op, dev);
  const float* g = gamma ? gamma->data() : nullptr;
  const float* b = beta ? beta->data() : nullptr;
  launch_kernels(op, dev, {&x, gamma, beta, &mean, &var}, {&y}, [=](const auto& k) {
    k.batchnorm_fwd_infer(y.data(), x.data(), g, b, mean.data(), var.data(), d.rows,
                          int(d.cols), eps);
  });
  return y;
}

BatchNormGrads batch_norm_grad(const Tensor& dy, const Tensor& x, const Tensor& mean,
                               const Tensor& invstd, const Tensor* gamma) {
  const char* op = "batchNormGrad";
  RowsCols d = bn_dims(op, x, {&mean, &invstd, gamma});
  require_same_shape(op, "dy", dy, "x", x);
  int C = int(d.cols);
  DeviceType dev = op_device(
      op, {{"dy", &dy}, {"x", &x}, {"mean", &mean}, {"invstd", &invstd}, {"gamma", gamma}});
  BatchNormGrads g{empty_tensor(x.shape, op, dev), empty_tensor({C}, op, dev),
                   empty_tensor({C}, op, dev)};
  const float* gm = gamma ? gamma->data() : nullptr;
  std::vector<const Tensor*> reads = {&dy, &x, &mean, &invstd, gamma};
  launch_kernels(op, dev, reads, {&g.dx, &g.dgamma, &g.dbeta}, [=](const auto& k) {
    k.batchnorm_bwd(g.dx.data(), g.dgamma.data(), g.dbeta.data(), dy.data(), x.data(),
                    mean.data(), invstd.data(), gm, nullptr, d.rows, C, nullptr, Act::None);
  });
  return g;
}

// ---- losses ----

namespace {
// Keras rejects class ids outside [0, classes); the kernel alone would give them loss 0. The
// check reads the ids on the host, where the CPU kernels run; CUDA ids stay on the device
// unchecked (reading them back would wait on the stream).
void check_class_ids(const CpuKernels&, const float* ids, size_t rows, size_t cols) {
  for (size_t row = 0; row < rows; ++row) {
    float id = ids[row];
    if (!(id >= 0.f && id < float(cols) && id == float(int64_t(id)))) {
      throw_error(ErrorKind::Value, "label " + std::to_string(id) + " at row " +
                                        std::to_string(row) + " is not a class id in [0, " +
                                        std::to_string(cols) + ")");
    }
  }
}
void check_class_ids(const CudaOps&, const float*, size_t, size_t) {}
}  // namespace

LossResult softmax_cross_entropy(const Tensor& logits, const Tensor& labels, bool sparse) {
  const char* op = "softmaxCrossEntropy";
  RowsCols d = last_axis(op, logits);
  if (sparse) {
    Shape want(logits.shape.begin(), logits.shape.end() - 1);
    require(labels.shape == want, ErrorKind::Shape,
            std::string(op) + ": sparse labels must have shape " + shape_str(want) +
                " (one class id per row of logits " + shape_str(logits.shape) + "), got " +
                shape_str(labels.shape));
  } else {
    require_same_shape(op, "labels", labels, "logits", logits);
  }
  DeviceType dev = op_device(op, {{"logits", &logits}, {"labels", &labels}});
  LossResult r{empty_tensor({int64_t(d.rows)}, op, dev), empty_tensor(logits.shape, op, dev)};
  LabelMode mode = sparse ? LabelMode::Sparse : LabelMode::Dense;
  float scale = 1.f / float(d.rows);
  launch_kernels(op, dev, {&logits, &labels}, {&r.loss, &r.grad}, [=](const auto& k) {
    if (sparse) check_class_ids(k, labels.data(), d.rows, d.cols);
    k.softmax_xent(r.loss.data(), r.grad.data(), logits.data(), labels.data(), d.rows, d.cols,
                   mode, 0.f, scale);
  });
  return r;
}

LossResult binary_cross_entropy(const Tensor& input, const Tensor& target, bool from_logits) {
  const char* op = "binaryCrossEntropy";
  RowsCols d = last_axis(op, input);
  require_same_shape(op, "target", target, "input", input);
  DeviceType dev = op_device(op, {{"input", &input}, {"target", &target}});
  LossResult r{empty_tensor({int64_t(d.rows)}, op, dev), empty_tensor(input.shape, op, dev)};
  float scale = 1.f / float(d.rows);
  launch_kernels(op, dev, {&input, &target}, {&r.loss, &r.grad}, [=](const auto& k) {
    k.binary_xent(r.loss.data(), r.grad.data(), input.data(), target.data(), d.rows, d.cols,
                  from_logits, scale);
  });
  return r;
}

LossResult mean_squared_error(const Tensor& y, const Tensor& target) {
  const char* op = "meanSquaredError";
  RowsCols d = last_axis(op, y);
  require_same_shape(op, "target", target, "prediction", y);
  DeviceType dev = op_device(op, {{"prediction", &y}, {"target", &target}});
  LossResult r{empty_tensor({int64_t(d.rows)}, op, dev), empty_tensor(y.shape, op, dev)};
  float scale = 1.f / float(d.rows);
  launch_kernels(op, dev, {&y, &target}, {&r.loss, &r.grad}, [=](const auto& k) {
    k.mse(r.loss.data(), r.grad.data(), y.data(), target.data(), d.rows, d.cols, scale);
  });
  return r;
}

// ---- optimizer updates ----

namespace {
void check_rate(const char* op, const char* what, float v, float lo, float hi) {
  require(std::isfinite(v) && v >= lo && v <= hi, ErrorKind::Value,
          std::string(op) + ": " + what + " must be in [" + std::to_string(lo) + ", " +
              std::to_string(hi) + "], got " + std::to_string(v));
}
void check_state(const char* op, const char* what, const Tensor& w, const Tensor* t) {
  if (t) require_same_shape(op, what, *t, "weights", w);
}
}  // namespace

void sgd_update(const Tensor& w, const Tensor& g, const Tensor* velocity, const SgdParams& p) {
  const char* op = "sgdUpdate";
  check_rate(op, "learningRate", p.lr, 0.f, 1e6f);
  check_rate(op, "momentum", p.momentum, 0.f, 1.f);
  require(p.momentum == 0.f || velocity, ErrorKind::Value,
          "sgdUpdate: momentum > 0 needs a velocity tensor");
  check_state(op, "gradient", w, &g);
  check_state(op, "velocity", w, velocity);
  DeviceType dev = op_device(op, {{"weights", &w}, {"gradient", &g}, {"velocity", velocity}});
  float* v = velocity ? velocity->data() : nullptr;
  size_t n = w.numel();
  launch_kernels(op, dev, {&g}, {&w, velocity}, [=](const auto& k) {
    k.sgd_update(w.data(), v, g.data(), n, p);
  });
}

void adam_update(const Tensor& w, const Tensor& g, const Tensor& m, const Tensor& v,
                 const AdamParams& p) {
  const char* op = "adamUpdate";
  check_rate(op, "learningRate", p.lr, 0.f, 1e6f);
  check_rate(op, "beta1", p.beta1, 0.f, 1.f);
  check_rate(op, "beta2", p.beta2, 0.f, 1.f);
  check_rate(op, "epsilon", p.eps, 0.f, 1e6f);
  check_rate(op, "weightDecay", p.weight_decay, 0.f, 1e6f);
  require(p.step >= 1, ErrorKind::Value, "adamUpdate: step must be >= 1");
  check_state(op, "gradient", w, &g);
  check_state(op, "m", w, &m);
  check_state(op, "v", w, &v);
  DeviceType dev = op_device(op, {{"weights", &w}, {"gradient", &g}, {"m", &m}, {"v", &v}});
  size_t n = w.numel();
  launch_kernels(op, dev, {&g}, {&w, &m, &v}, [=](const auto& k) {
    k.adam_update(w.data(), m.data(), v.data(), g.data(), n, p);
  });
}

void rmsprop_update(const Tensor& w, const Tensor& g, const Tensor& ms, const Tensor* mom,
                    const Tensor* mg, const RmspropParams& p) {
  const char* op = "rmspropUpdate";
  check_rate(op, "learningRate", p.lr, 0.f, 1e6f);
  check_rate(op, "rho", p.rho, 0.f, 1.f);
  check_rate(op, "momentum", p.momentum, 0.f, 1.f);
  check_rate(op, "epsilon", p.eps, 0.f, 1e6f);
  require(p.momentum == 0.f || mom, ErrorKind::Value,
          "rmspropUpdate: momentum > 0 needs a momentum tensor");
  require(!p.centered || mg, ErrorKind::Value,
          "rmspropUpdate: centered needs a mean-gradient tensor");
  check_state(op, "gradient", w, &g);
  check_state(op, "ms", w, &ms);
  check_state(op, "momentum", w, mom);
  check_state(op, "mg", w, mg);
  DeviceType dev = op_device(
      op, {{"weights", &w}, {"gradient", &g}, {"ms", &ms}, {"momentum", mom}, {"mg", mg}});
  float* mo = mom ? mom->data() : nullptr;
  float* mgr = mg ? mg->data() : nullptr;
  size_t n = w.numel();
  launch_kernels(op, dev, {&g}, {&w, &ms, mom, mg}, [=](const auto& k) {
    k.rmsprop_update(w.data(), ms.data(), mo, mgr, g.data(), n, p);
  });
}

}  // namespace ck
