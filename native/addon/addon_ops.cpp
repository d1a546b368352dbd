// Op bindings: each reads and re-checks its positional arguments (lib/ops normalises the
// user's options first), calls the core op, which enqueues the kernel, and wraps the outputs.
#include <string>
#include <utility>
#include <vector>

#include "addon.h"

namespace ckaddon {
namespace {

using Info = Napi::CallbackInfo;
constexpr int kMaxWindow = 1 << 16;

Napi::Value wrap(const Info& info, ck::Tensor t) { return TensorHandle::Wrap(info.Env(), std::move(t)); }

Napi::Object pack(const Info& info, std::initializer_list<std::pair<const char*, ck::Tensor*>> outs) {
  Napi::Object o = Napi::Object::New(info.Env());
  for (auto& [name, t] : outs) {
    if (t->storage) o.Set(name, TensorHandle::Wrap(info.Env(), std::move(*t)));
  }
  return o;
}

ck::Conv2dAttrs conv_attrs(const Info& info, size_t i, const char* op) {
  ck::Conv2dAttrs a;
  a.stride_h = arg_int(info, i, op, "strides[0]", 1, kMaxWindow);
  a.stride_w = arg_int(info, i + 1, op, "strides[1]", 1, kMaxWindow);
  a.padding = parse_padding(info.Env(), arg_string(info, i + 2, op, "padding"), op);
  a.dil_h = arg_int(info, i + 3, op, "dilation[0]", 1, kMaxWindow);
  a.dil_w = arg_int(info, i + 4, op, "dilation[1]", 1, kMaxWindow);
  return a;
}

ck::Pool2dAttrs pool_attrs(const Info& info, size_t i, const char* op) {
  ck::Pool2dAttrs a;
  a.pool_h = arg_int(info, i, op, "poolSize[0]", 1, kMaxWindow);
  a.pool_w = arg_int(info, i + 1, op, "poolSize[1]", 1, kMaxWindow);
  a.stride_h = arg_int(info, i + 2, op, "strides[0]", 1, kMaxWindow);
  a.stride_w = arg_int(info, i + 3, op, "strides[1]", 1, kMaxWindow);
  a.padding = parse_padding(info.Env(), arg_string(info, i + 4, op, "padding"), op);
  return a;
}

// conv2d(x, filter, bias|null, sh, sw, padding, dh, dw, activation, groups)
Napi::Value Conv2d(const Info& info) {
  return guard(info, [&] {
    const char* op = "conv2d";
    ck::Conv2dAttrs a = conv_attrs(info, 3, op);
    a.act = parse_act(info.Env(), arg_string(info, 8, op, "activation"), op);
    a.groups = arg_int(info, 9, op, "groups", 1, 1 << 24);
    return wrap(info, ck::conv2d(arg_tensor(info, 0, op, "x"), arg_tensor(info, 1, op, "filter"),
                                 arg_tensor_opt(info, 2, op, "bias"), a));
  });
}

// conv2dGrad(dy, x, filter, sh, sw, padding, dh, dw, withBias, groups) -> { dx, dw, db? }
Napi::Value Conv2dGrad(const Info& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "conv2dGrad";
    ck::Conv2dAttrs a = conv_attrs(info, 3, op);
    a.groups = arg_int(info, 9, op, "groups", 1, 1 << 24);
    ck::Conv2dGrads g = ck::conv2d_grad(arg_tensor(info, 0, op, "dy"), arg_tensor(info, 1, op, "x"),
                                        arg_tensor(info, 2, op, "filter"), a,
                                        arg_bool(info, 8, op, "withBias"));
    return pack(info, {{"dx", &g.dx}, {"dw", &g.dw}, {"db", &g.db}});
  });
}

// depthwiseConv2d(x, filter, bias|null, sh, sw, padding, dh, dw, activation)
Napi::Value DepthwiseConv2d(const Info& info) {
  return guard(info, [&] {
    const char* op = "depthwiseConv2d";
    ck::Conv2dAttrs a = conv_attrs(info, 3, op);
    a.act = parse_act(info.Env(), arg_string(info, 8, op, "activation"), op);
    return wrap(info, ck::depthwise_conv2d(arg_tensor(info, 0, op, "x"), arg_tensor(info, 1, op, "filter"),
                                           arg_tensor_opt(info, 2, op, "bias"), a));
  });
}

// depthwiseConv2dGrad(dy, x, filter, sh, sw, padding, dh, dw, withBias) -> { dx, dw, db? }
Napi::Value DepthwiseConv2dGrad(const Info& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "depthwiseConv2dGrad";
    ck::Conv2dAttrs a = conv_attrs(info, 3, op);
    ck::Conv2dGrads g = ck::depthwise_conv2d_grad(
        arg_tensor(info, 0, op, "dy"), arg_tensor(info, 1, op, "x"), arg_tensor(info, 2, op, "filter"), a,
        arg_bool(info, 8, op, "withBias"));
    return pack(info, {{"dx", &g.dx}, {"dw", &g.dw}, {"db", &g.db}});
  });
}

// dense(x, kernel, bias|null, activation)
Napi::Value Dense(const Info& info) {
  return guard(info, [&] {
    const char* op = "dense";
    ck::Act act = parse_act(info.Env(), arg_string(info, 3, op, "activation"), op);
    return wrap(info, ck::dense(arg_tensor(info, 0, op, "x"), arg_tensor(info, 1, op, "kernel"),
                                arg_tensor_opt(info, 2, op, "bias"), act));
  });
}

// denseGrad(dy, x, kernel, withBias) -> { dx, dw, db? }
Napi::Value DenseGrad(const Info& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "denseGrad";
    ck::DenseGrads g = ck::dense_grad(arg_tensor(info, 0, op, "dy"), arg_tensor(info, 1, op, "x"),
                                      arg_tensor(info, 2, op, "kernel"),
                                      arg_bool(info, 3, op, "withBias"));
    return pack(info, {{"dx", &g.dx}, {"dw", &g.dw}, {"db", &g.db}});
  });
}

// maxPool2d / avgPool2d (x, ph, pw, sh, sw, padding); their grads take (dy, x, ...).
template <bool kMax>
Napi::Value Pool(const Info& info) {
  return guard(info, [&] {
    const char* op = kMax ? "maxPool2d" : "avgPool2d";
    ck::Pool2dAttrs a = pool_attrs(info, 1, op);
    const ck::Tensor& x = arg_tensor(info, 0, op, "x");
    return wrap(info, kMax ? ck::max_pool2d(x, a) : ck::avg_pool2d(x, a));
  });
}

template <bool kMax>
Napi::Value PoolGrad(const Info& info) {
  return guard(info, [&] {
    const char* op = kMax ? "maxPool2dGrad" : "avgPool2dGrad";
    ck::Pool2dAttrs a = pool_attrs(info, 2, op);
    const ck::Tensor& dy = arg_tensor(info, 0, op, "dy");
    const ck::Tensor& x = arg_tensor(info, 1, op, "x");
    return wrap(info, kMax ? ck::max_pool2d_grad(dy, x, a) : ck::avg_pool2d_grad(dy, x, a));
  });
}

template <bool kMax>
Napi::Value GlobalPool(const Info& info) {
  return guard(info, [&] {
    const char* op = kMax ? "globalMaxPool" : "globalAvgPool";
    const ck::Tensor& x = arg_tensor(info, 0, op, "x");
    return wrap(info, kMax ? ck::global_max_pool(x) : ck::global_avg_pool(x));
  });
}

template <bool kMax>
Napi::Value GlobalPoolGrad(const Info& info) {
  return guard(info, [&] {
    const char* op = kMax ? "globalMaxPoolGrad" : "globalAvgPoolGrad";
    const ck::Tensor& dy = arg_tensor(info, 0, op, "dy");
    const ck::Tensor& x = arg_tensor(info, 1, op, "x");
    return wrap(info, kMax ? ck::global_max_pool_grad(dy, x) : ck::global_avg_pool_grad(dy, x));
  });
}

// lpPool2d(x, ph, pw, sh, sw, padding, p) / lpPool2dGrad(dy, x, ph, pw, sh, sw, padding, p)
Napi::Value LpPool(const Info& info) {
  return guard(info, [&] {
    const char* op = "lpPool2d";
    ck::Pool2dAttrs a = pool_attrs(info, 1, op);
    return wrap(info, ck::lp_pool2d(arg_tensor(info, 0, op, "x"), a, float(arg_number(info, 6, op, "p"))));
  });
}

Napi::Value LpPoolGrad(const Info& info) {
  return guard(info, [&] {
    const char* op = "lpPool2dGrad";
    ck::Pool2dAttrs a = pool_attrs(info, 2, op);
    return wrap(info, ck::lp_pool2d_grad(arg_tensor(info, 0, op, "dy"), arg_tensor(info, 1, op, "x"), a,
                                         float(arg_number(info, 7, op, "p"))));
  });
}

ck::ZeroPadding2dAttrs zero_padding_attrs(const Info& info, size_t i, const char* op) {
  ck::ZeroPadding2dAttrs a;
  a.top = arg_int(info, i, op, "padding top", 0, (1 << 24) - 1);
  a.bottom = arg_int(info, i + 1, op, "padding bottom", 0, (1 << 24) - 1);
  a.left = arg_int(info, i + 2, op, "padding left", 0, (1 << 24) - 1);
  a.right = arg_int(info, i + 3, op, "padding right", 0, (1 << 24) - 1);
  return a;
}

// zeroPadding2d(x, top, bottom, left, right) / zeroPadding2dGrad(dy, x, top, bottom, left, right)
Napi::Value ZeroPadding2d(const Info& info) {
  return guard(info, [&] {
    const char* op = "zeroPadding2d";
    return wrap(info, ck::zero_padding2d(arg_tensor(info, 0, op, "x"), zero_padding_attrs(info, 1, op)));
  });
}

Napi::Value ZeroPadding2dGrad(const Info& info) {
  return guard(info, [&] {
    const char* op = "zeroPadding2dGrad";
    return wrap(info, ck::zero_padding2d_grad(arg_tensor(info, 0, op, "dy"), arg_tensor(info, 1, op, "x"),
                                              zero_padding_attrs(info, 2, op)));
  });
}

ck::UpSampling2dAttrs up_sampling_attrs(const Info& info, size_t i, const char* op) {
  ck::UpSampling2dAttrs a;
  a.size_h = arg_int(info, i, op, "size[0]", 1, kMaxWindow - 1);
  a.size_w = arg_int(info, i + 1, op, "size[1]", 1, kMaxWindow - 1);
  std::string interp = arg_string(info, i + 2, op, "interpolation");
  if (interp == "nearest") a.interp = ck::Interp::Nearest;
  else if (interp == "bilinear") a.interp = ck::Interp::Bilinear;
  else throw_js(info.Env(), ck::ErrorKind::Value, std::string(op) + ": interpolation must be 'nearest' or 'bilinear', got '" + interp + "'");
  a.half_pixel = arg_bool(info, i + 3, op, "halfPixelCenters");
  return a;
}

// upSampling2d(x, sh, sw, interpolation, halfPixelCenters) / upSampling2dGrad(dy, x, ...)
Napi::Value UpSampling2d(const Info& info) {
  return guard(info, [&] {
    const char* op = "upSampling2d";
    return wrap(info, ck::up_sampling2d(arg_tensor(info, 0, op, "x"), up_sampling_attrs(info, 1, op)));
  });
}

Napi::Value UpSampling2dGrad(const Info& info) {
  return guard(info, [&] {
    const char* op = "upSampling2dGrad";
    return wrap(info, ck::up_sampling2d_grad(arg_tensor(info, 0, op, "dy"), arg_tensor(info, 1, op, "x"),
                                             up_sampling_attrs(info, 2, op)));
  });
}

// activation(x, name, alpha) / activationGrad(dy, y, name, alpha)
Napi::Value Activation(const Info& info) {
  return guard(info, [&] {
    std::string name = arg_string(info, 1, "activation", "name");
    const char* op = name.c_str();
    ck::Act act = parse_act(info.Env(), name, op);
    float alpha = float(arg_number(info, 2, op, "alpha"));
    return wrap(info, ck::activation(arg_tensor(info, 0, op, "x"), act, alpha, op));
  });
}

Napi::Value ActivationGrad(const Info& info) {
  return guard(info, [&] {
    std::string name = arg_string(info, 2, "activationGrad", "name") + "Grad";
    const char* op = name.c_str();
    ck::Act act = parse_act(info.Env(), name.substr(0, name.size() - 4), op);
    float alpha = float(arg_number(info, 3, op, "alpha"));
    return wrap(info, ck::activation_grad(arg_tensor(info, 0, op, "dy"),
                                          arg_tensor(info, 1, op, "y"), act, alpha, op));
  });
}

Napi::Value Softmax(const Info& info) {
  return guard(info, [&] { return wrap(info, ck::softmax(arg_tensor(info, 0, "softmax", "x"))); });
}

Napi::Value SoftmaxGrad(const Info& info) {
  return guard(info, [&] {
    const char* op = "softmaxGrad";
    return wrap(info, ck::softmax_grad(arg_tensor(info, 0, op, "dy"), arg_tensor(info, 1, op, "y")));
  });
}

// dropout(x, rate, seed) -> { y, mask }
Napi::Value Dropout(const Info& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "dropout";
    double seed = arg_number(info, 2, op, "seed");
    if (seed < 0 || seed > 9007199254740991.0 || seed != double(uint64_t(seed))) {
      throw_js(info.Env(), ck::ErrorKind::Value, "dropout: seed must be a non-negative integer");
    }
    ck::DropoutResult r = ck::dropout(arg_tensor(info, 0, op, "x"),
                                      float(arg_number(info, 1, op, "rate")), uint64_t(seed));
    return pack(info, {{"y", &r.y}, {"mask", &r.mask}});
  });
}

Napi::Value Mul(const Info& info) {
  return guard(info, [&] {
    const char* op = "mul";
    return wrap(info, ck::mul(arg_tensor(info, 0, op, "a"), arg_tensor(info, 1, op, "b"), op));
  });
}

Napi::Value Add(const Info& info) {
  return guard(info, [&] {
    const char* op = "add";
    return wrap(info, ck::add(arg_tensor(info, 0, op, "a"), arg_tensor(info, 1, op, "b")));
  });
}

// A JS array of tensors (at most 65536).
std::vector<ck::Tensor> arg_tensors(const Info& info, size_t i, const char* op, const char* name) {
  Napi::Value v = info[i];
  if (!v.IsArray()) throw_js(info.Env(), ck::ErrorKind::DType, std::string(op) + ": " + name + " must be an array of Tensors");
  Napi::Array arr = v.As<Napi::Array>();
  if (arr.Length() > 65536) throw_js(info.Env(), ck::ErrorKind::Value, std::string(op) + ": at most 65536 tensors");
  std::vector<ck::Tensor> out;
  for (uint32_t j = 0; j < arr.Length(); ++j) {
    Napi::Value e = arr.Get(j);
    if (!TensorHandle::Is(e)) {
      throw_js(info.Env(), ck::ErrorKind::DType, std::string(op) + ": " + name + "[" + std::to_string(j) + "] must be a Tensor");
    }
    out.push_back(TensorHandle::Unwrap(e.As<Napi::Object>())->tensor(op));
  }
  return out;
}

// concatenate(tensors) along the last axis; concatenateGrad(dy, tensors) -> [dx per tensor]
Napi::Value Concatenate(const Info& info) {
  return guard(info, [&] {
    const char* op = "concatenate";
    return wrap(info, ck::concatenate(arg_tensors(info, 0, op, "tensors")));
  });
}

Napi::Value ConcatenateGrad(const Info& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "concatenateGrad";
    std::vector<ck::Tensor> dxs = ck::concatenate_grad(arg_tensor(info, 0, op, "dy"), arg_tensors(info, 1, op, "tensors"));
    Napi::Array out = Napi::Array::New(info.Env(), dxs.size());
    for (size_t j = 0; j < dxs.size(); ++j) out.Set(uint32_t(j), TensorHandle::Wrap(info.Env(), std::move(dxs[j])));
    return out;
  });
}

// batchNormTrain(x, gamma|null, beta|null, runningMean|null, runningVar|null, eps, momentum)
Napi::Value BatchNormTrain(const Info& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "batchNorm";
    ck::BatchNormResult r = ck::batch_norm_train(
        arg_tensor(info, 0, op, "x"), arg_tensor_opt(info, 1, op, "gamma"),
        arg_tensor_opt(info, 2, op, "beta"), arg_tensor_opt(info, 3, op, "movingMean"),
        arg_tensor_opt(info, 4, op, "movingVariance"), float(arg_number(info, 5, op, "epsilon")),
        float(arg_number(info, 6, op, "momentum")));
    return pack(info, {{"y", &r.y}, {"mean", &r.mean}, {"invstd", &r.invstd}});
  });
}

// batchNormInfer(x, gamma|null, beta|null, mean, variance, eps)
Napi::Value BatchNormInfer(const Info& info) {
  return guard(info, [&] {
    const char* op = "batchNorm";
    return wrap(info, ck::batch_norm_infer(
                          arg_tensor(info, 0, op, "x"), arg_tensor_opt(info, 1, op, "gamma"),
                          arg_tensor_opt(info, 2, op, "beta"), arg_tensor(info, 3, op, "mean"),
                          arg_tensor(info, 4, op, "variance"),
                          float(arg_number(info, 5, op, "epsilon"))));
  });
}

// batchNormGrad(dy, x, mean, invstd, gamma|null) -> { dx, dgamma, dbeta }
Napi::Value BatchNormGrad(const Info& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "batchNormGrad";
    ck::BatchNormGrads g = ck::batch_norm_grad(
        arg_tensor(info, 0, op, "dy"), arg_tensor(info, 1, op, "x"),
        arg_tensor(info, 2, op, "mean"), arg_tensor(info, 3, op, "invstd"),
        arg_tensor_opt(info, 4, op, "gamma"));
    return pack(info, {{"dx", &g.dx}, {"dgamma", &g.dgamma}, {"dbeta", &g.dbeta}});
  });
}

// Losses -> { loss (per row), grad (of the mean loss) }
Napi::Value SoftmaxCrossEntropy(const Info& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "softmaxCrossEntropy";
    ck::LossResult r = ck::softmax_cross_entropy(arg_tensor(info, 0, op, "logits"),
                                                 arg_tensor(info, 1, op, "labels"),
                                                 arg_bool(info, 2, op, "sparse"));
    return pack(info, {{"loss", &r.loss}, {"grad", &r.grad}});
  });
}

Napi::Value BinaryCrossEntropy(const Info& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "binaryCrossEntropy";
    ck::LossResult r = ck::binary_cross_entropy(arg_tensor(info, 0, op, "input"),
                                                arg_tensor(info, 1, op, "target"),
                                                arg_bool(info, 2, op, "fromLogits"));
    return pack(info, {{"loss", &r.loss}, {"grad", &r.grad}});
  });
}

Napi::Value MeanSquaredError(const Info& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "meanSquaredError";
    ck::LossResult r = ck::mean_squared_error(arg_tensor(info, 0, op, "prediction"),
                                              arg_tensor(info, 1, op, "target"));
    return pack(info, {{"loss", &r.loss}, {"grad", &r.grad}});
  });
}

// sgdUpdate(w, g, velocity|null, lr, momentum, nesterov)
Napi::Value SgdUpdate(const Info& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "sgdUpdate";
    ck::SgdParams p;
    p.lr = float(arg_number(info, 3, op, "learningRate"));
    p.momentum = float(arg_number(info, 4, op, "momentum"));
    p.nesterov = arg_bool(info, 5, op, "nesterov");
    ck::sgd_update(arg_tensor(info, 0, op, "weights"), arg_tensor(info, 1, op, "gradient"),
                   arg_tensor_opt(info, 2, op, "velocity"), p);
    return info.Env().Undefined();
  });
}

// adamUpdate(w, g, m, v, lr, beta1, beta2, epsilon, weightDecay, step)
Napi::Value AdamUpdate(const Info& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "adamUpdate";
    ck::AdamParams p;
    p.lr = arg_number(info, 4, op, "learningRate");
    p.beta1 = arg_number(info, 5, op, "beta1");
    p.beta2 = arg_number(info, 6, op, "beta2");
    p.eps = arg_number(info, 7, op, "epsilon");
    p.weight_decay = arg_number(info, 8, op, "weightDecay");
    p.step = arg_int(info, 9, op, "step", 1, 2147483647);
    ck::adam_update(arg_tensor(info, 0, op, "weights"), arg_tensor(info, 1, op, "gradient"),
                    arg_tensor(info, 2, op, "m"), arg_tensor(info, 3, op, "v"), p);
    return info.Env().Undefined();
  });
}

// rmspropUpdate(w, g, ms, mom|null, mg|null, lr, rho, momentum, epsilon, centered)
Napi::Value RmspropUpdate(const Info& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "rmspropUpdate";
    ck::RmspropParams p;
    p.lr = arg_number(info, 5, op, "learningRate");
    p.rho = arg_number(info, 6, op, "rho");
    p.momentum = arg_number(info, 7, op, "momentum");
    p.eps = arg_number(info, 8, op, "epsilon");
    p.centered = arg_bool(info, 9, op, "centered");
    ck::rmsprop_update(arg_tensor(info, 0, op, "weights"), arg_tensor(info, 1, op, "gradient"),
                       arg_tensor(info, 2, op, "ms"), arg_tensor_opt(info, 3, op, "momentum"),
                       arg_tensor_opt(info, 4, op, "mg"), p);
    return info.Env().Undefined();
  });
}

}  // namespace

void register_ops(Napi::Env env, Napi::Object exports) {
  auto add = [&](const char* name, Napi::Value (*fn)(const Info&)) {
    exports.Set(name, Napi::Function::New(env, fn, name));
  };
  add("conv2d", Conv2d);
  add("conv2dGrad", Conv2dGrad);
  add("depthwiseConv2d", DepthwiseConv2d);
  add("depthwiseConv2dGrad", DepthwiseConv2dGrad);
  add("dense", Dense);
  add("denseGrad", DenseGrad);
  add("maxPool2d", Pool<true>);
  add("maxPool2dGrad", PoolGrad<true>);
  add("avgPool2d", Pool<false>);
  add("avgPool2dGrad", PoolGrad<false>);
  add("globalMaxPool", GlobalPool<true>);
  add("globalMaxPoolGrad", GlobalPoolGrad<true>);
  add("globalAvgPool", GlobalPool<false>);
  add("globalAvgPoolGrad", GlobalPoolGrad<false>);
  add("lpPool2d", LpPool);
  add("lpPool2dGrad", LpPoolGrad);
  add("zeroPadding2d", ZeroPadding2d);
  add("zeroPadding2dGrad", ZeroPadding2dGrad);
  add("upSampling2d", UpSampling2d);
  add("upSampling2dGrad", UpSampling2dGrad);
  add("activation", Activation);
  add("activationGrad", ActivationGrad);
  add("softmax", Softmax);
  add("softmaxGrad", SoftmaxGrad);
  add("dropout", Dropout);
  add("mul", Mul);
  add("add", Add);
  add("concatenate", Concatenate);
  add("concatenateGrad", ConcatenateGrad);
  add("batchNormTrain", BatchNormTrain);
  add("batchNormInfer", BatchNormInfer);
  add("batchNormGrad", BatchNormGrad);
  add("softmaxCrossEntropy", SoftmaxCrossEntropy);
  add("binaryCrossEntropy", BinaryCrossEntropy);
  add("meanSquaredError", MeanSquaredError);
  add("sgdUpdate", SgdUpdate);
  add("adamUpdate", AdamUpdate);
  add("rmspropUpdate", RmspropUpdate);
}

}  // namespace ckaddon
