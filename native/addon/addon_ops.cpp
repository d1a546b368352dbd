// Op bindings: each takes its tensors first, then one options object read by name (OpOptions;
// lib/ops normalises the user's options and fills in defaults first), re-checks them, calls the
// core op, which enqueues the kernel, and wraps the outputs.
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "addon.h"
#include "ops_augment.h"

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

// strides, padding, dilation of { strides, padding, dilation, ... }.
ck::Conv2dAttrs conv_attrs(const OpOptions& o) {
  ck::Conv2dAttrs a;
  std::tie(a.stride_h, a.stride_w) = o.int_pair("strides", 1, kMaxWindow);
  a.padding = parse_padding(o.env(), o.text("padding"), o.op().c_str());
  std::tie(a.dil_h, a.dil_w) = o.int_pair("dilation", 1, kMaxWindow);
  return a;
}

// { poolSize, strides, padding, ... }
ck::Pool2dAttrs pool_attrs(const OpOptions& o) {
  ck::Pool2dAttrs a;
  std::tie(a.pool_h, a.pool_w) = o.int_pair("poolSize", 1, kMaxWindow);
  std::tie(a.stride_h, a.stride_w) = o.int_pair("strides", 1, kMaxWindow);
  a.padding = parse_padding(o.env(), o.text("padding"), o.op().c_str());
  return a;
}

// conv2d(x, filter, bias|null, { strides, padding, dilation, activation, groups })
Napi::Value Conv2d(const Info& info) {
  return guard(info, [&] {
    const char* op = "conv2d";
    OpOptions o(info, 3, op, {"strides", "padding", "dilation", "activation", "groups"});
    ck::Conv2dAttrs a = conv_attrs(o);
    a.act = parse_act(info.Env(), o.text("activation"), op);
    a.groups = o.integer("groups", 1, 1 << 24);
    return wrap(info, ck::conv2d(arg_tensor(info, 0, op, "x"), arg_tensor(info, 1, op, "filter"),
                                 arg_tensor_opt(info, 2, op, "bias"), a));
  });
}

// conv2dGrad(dy, x, filter, { strides, padding, dilation, withBias, groups }) -> { dx, dw, db? }
Napi::Value Conv2dGrad(const Info& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "conv2dGrad";
    OpOptions o(info, 3, op, {"strides", "padding", "dilation", "withBias", "groups"});
    ck::Conv2dAttrs a = conv_attrs(o);
    a.groups = o.integer("groups", 1, 1 << 24);
    ck::Conv2dGrads g = ck::conv2d_grad(arg_tensor(info, 0, op, "dy"), arg_tensor(info, 1, op, "x"),
                                        arg_tensor(info, 2, op, "filter"), a, o.flag("withBias"));
    return pack(info, {{"dx", &g.dx}, {"dw", &g.dw}, {"db", &g.db}});
  });
}

// depthwiseConv2d(x, filter, bias|null, { strides, padding, dilation, activation })
Napi::Value DepthwiseConv2d(const Info& info) {
  return guard(info, [&] {
    const char* op = "depthwiseConv2d";
    OpOptions o(info, 3, op, {"strides", "padding", "dilation", "activation"});
    ck::Conv2dAttrs a = conv_attrs(o);
    a.act = parse_act(info.Env(), o.text("activation"), op);
    return wrap(info, ck::depthwise_conv2d(arg_tensor(info, 0, op, "x"), arg_tensor(info, 1, op, "filter"),
                                           arg_tensor_opt(info, 2, op, "bias"), a));
  });
}

// depthwiseConv2dGrad(dy, x, filter, { strides, padding, dilation, withBias }) -> { dx, dw, db? }
Napi::Value DepthwiseConv2dGrad(const Info& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "depthwiseConv2dGrad";
    OpOptions o(info, 3, op, {"strides", "padding", "dilation", "withBias"});
    ck::Conv2dGrads g = ck::depthwise_conv2d_grad(
        arg_tensor(info, 0, op, "dy"), arg_tensor(info, 1, op, "x"), arg_tensor(info, 2, op, "filter"),
        conv_attrs(o), o.flag("withBias"));
    return pack(info, {{"dx", &g.dx}, {"dw", &g.dw}, {"db", &g.db}});
  });
}

// dense(x, kernel, bias|null, { activation })
Napi::Value Dense(const Info& info) {
  return guard(info, [&] {
    const char* op = "dense";
    OpOptions o(info, 3, op, {"activation"});
    ck::Act act = parse_act(info.Env(), o.text("activation"), op);
    return wrap(info, ck::dense(arg_tensor(info, 0, op, "x"), arg_tensor(info, 1, op, "kernel"),
                                arg_tensor_opt(info, 2, op, "bias"), act));
  });
}

// denseGrad(dy, x, kernel, { withBias }) -> { dx, dw, db? }
Napi::Value DenseGrad(const Info& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "denseGrad";
    OpOptions o(info, 3, op, {"withBias"});
    ck::DenseGrads g = ck::dense_grad(arg_tensor(info, 0, op, "dy"), arg_tensor(info, 1, op, "x"),
                                      arg_tensor(info, 2, op, "kernel"), o.flag("withBias"));
    return pack(info, {{"dx", &g.dx}, {"dw", &g.dw}, {"db", &g.db}});
  });
}

// maxPool2d / avgPool2d (x, { poolSize, strides, padding }); their grads take (dy, x, { ... }).
template <bool kMax>
Napi::Value Pool(const Info& info) {
  return guard(info, [&] {
    const char* op = kMax ? "maxPool2d" : "avgPool2d";
    ck::Pool2dAttrs a = pool_attrs(OpOptions(info, 1, op, {"poolSize", "strides", "padding"}));
    const ck::Tensor& x = arg_tensor(info, 0, op, "x");
    return wrap(info, kMax ? ck::max_pool2d(x, a) : ck::avg_pool2d(x, a));
  });
}

template <bool kMax>
Napi::Value PoolGrad(const Info& info) {
  return guard(info, [&] {
    const char* op = kMax ? "maxPool2dGrad" : "avgPool2dGrad";
    ck::Pool2dAttrs a = pool_attrs(OpOptions(info, 2, op, {"poolSize", "strides", "padding"}));
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

// lpPool2d(x, { poolSize, strides, padding, p }) / lpPool2dGrad(dy, x, { ... })
Napi::Value LpPool(const Info& info) {
  return guard(info, [&] {
    const char* op = "lpPool2d";
    OpOptions o(info, 1, op, {"poolSize", "strides", "padding", "p"});
    return wrap(info, ck::lp_pool2d(arg_tensor(info, 0, op, "x"), pool_attrs(o), float(o.number("p"))));
  });
}

Napi::Value LpPoolGrad(const Info& info) {
  return guard(info, [&] {
    const char* op = "lpPool2dGrad";
    OpOptions o(info, 2, op, {"poolSize", "strides", "padding", "p"});
    return wrap(info, ck::lp_pool2d_grad(arg_tensor(info, 0, op, "dy"), arg_tensor(info, 1, op, "x"),
                                         pool_attrs(o), float(o.number("p"))));
  });
}

// { top, bottom, left, right }
ck::ZeroPadding2dAttrs zero_padding_attrs(const OpOptions& o) {
  ck::ZeroPadding2dAttrs a;
  a.top = o.integer("top", 0, (1 << 24) - 1);
  a.bottom = o.integer("bottom", 0, (1 << 24) - 1);
  a.left = o.integer("left", 0, (1 << 24) - 1);
  a.right = o.integer("right", 0, (1 << 24) - 1);
  return a;
}

// zeroPadding2d(x, { top, bottom, left, right }) / zeroPadding2dGrad(dy, x, { ... })
Napi::Value ZeroPadding2d(const Info& info) {
  return guard(info, [&] {
    const char* op = "zeroPadding2d";
    OpOptions o(info, 1, op, {"top", "bottom", "left", "right"});
    return wrap(info, ck::zero_padding2d(arg_tensor(info, 0, op, "x"), zero_padding_attrs(o)));
  });
}

Napi::Value ZeroPadding2dGrad(const Info& info) {
  return guard(info, [&] {
    const char* op = "zeroPadding2dGrad";
    OpOptions o(info, 2, op, {"top", "bottom", "left", "right"});
    return wrap(info, ck::zero_padding2d_grad(arg_tensor(info, 0, op, "dy"), arg_tensor(info, 1, op, "x"),
                                              zero_padding_attrs(o)));
  });
}

// { size, interpolation, halfPixelCenters }
ck::UpSampling2dAttrs up_sampling_attrs(const OpOptions& o) {
  ck::UpSampling2dAttrs a;
  std::tie(a.size_h, a.size_w) = o.int_pair("size", 1, kMaxWindow - 1);
  std::string interp = o.text("interpolation");
  if (interp == "nearest") a.interp = ck::Interp::Nearest;
  else if (interp == "bilinear") a.interp = ck::Interp::Bilinear;
  else throw_js(o.env(), ck::ErrorKind::Value, o.op() + ": interpolation must be 'nearest' or 'bilinear', got '" + interp + "'");
  a.half_pixel = o.flag("halfPixelCenters");
  return a;
}

// upSampling2d(x, { size, interpolation, halfPixelCenters }) / upSampling2dGrad(dy, x, { ... })
Napi::Value UpSampling2d(const Info& info) {
  return guard(info, [&] {
    const char* op = "upSampling2d";
    OpOptions o(info, 1, op, {"size", "interpolation", "halfPixelCenters"});
    return wrap(info, ck::up_sampling2d(arg_tensor(info, 0, op, "x"), up_sampling_attrs(o)));
  });
}

Napi::Value UpSampling2dGrad(const Info& info) {
  return guard(info, [&] {
    const char* op = "upSampling2dGrad";
    OpOptions o(info, 2, op, {"size", "interpolation", "halfPixelCenters"});
    return wrap(info, ck::up_sampling2d_grad(arg_tensor(info, 0, op, "dy"), arg_tensor(info, 1, op, "x"),
                                             up_sampling_attrs(o)));
  });
}

// activation(x, { activation, alpha }) / activationGrad(dy, y or x, { activation, alpha }): the
// gradient reads the output y, or the input x for the activations without act_grad_from_output.
// Errors name the ck.ops function: gelu's tanh form is gelu({ approximate: true }).
std::string activation_op(const std::string& activation) { return activation == "geluTanh" ? "gelu" : activation; }

Napi::Value Activation(const Info& info) {
  return guard(info, [&] {
    OpOptions o(info, 1, "activation", {"activation", "alpha"});
    const std::string name = o.text("activation"), op_name = activation_op(name);
    const char* op = op_name.c_str();
    ck::Act act = parse_act(info.Env(), name, op);
    float alpha = float(o.number("alpha"));
    return wrap(info, ck::activation(arg_tensor(info, 0, op, "x"), act, alpha, op));
  });
}

Napi::Value ActivationGrad(const Info& info) {
  return guard(info, [&] {
    OpOptions o(info, 2, "activationGrad", {"activation", "alpha"});
    const std::string name = o.text("activation"), op_name = activation_op(name) + "Grad";
    const char* op = op_name.c_str();
    ck::Act act = parse_act(info.Env(), name, op);
    float alpha = float(o.number("alpha"));
    const ck::Tensor& dy = arg_tensor(info, 0, op, "dy");
    if (ck::act_grad_from_output(act)) return wrap(info, ck::activation_grad(dy, arg_tensor(info, 1, op, "y"), act, alpha, op));
    return wrap(info, ck::activation_grad_from_x(dy, arg_tensor(info, 1, op, "x"), act, alpha, op));
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

// dropout(x, { rate, seed }) -> { y, mask }
Napi::Value Dropout(const Info& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "dropout";
    OpOptions o(info, 1, op, {"rate", "seed"});
    double seed = o.number("seed");
    if (seed < 0 || seed > 9007199254740991.0 || seed != double(uint64_t(seed))) {
      throw_js(info.Env(), ck::ErrorKind::Value, "dropout: seed must be a non-negative integer");
    }
    ck::DropoutResult r = ck::dropout(arg_tensor(info, 0, op, "x"), float(o.number("rate")), uint64_t(seed));
    return pack(info, {{"y", &r.y}, {"mask", &r.mask}});
  });
}

Napi::Value Mul(const Info& info) {
  return guard(info, [&] {
    const char* op = "mul";
    return wrap(info, ck::mul(arg_tensor(info, 0, op, "a"), arg_tensor(info, 1, op, "b"), op));
  });
}

Napi::Value MulGrad(const Info& info) {
  return guard(info, [&] {
    const char* op = "mulGrad";
    ck::MulGrads r = ck::mul_grad(arg_tensor(info, 0, op, "dy"), arg_tensor(info, 1, op, "a"),
                                  arg_tensor(info, 2, op, "b"));
    return pack(info, {{"da", &r.da}, {"db", &r.db}});
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

// batchNormTrain(x, gamma|null, beta|null, runningMean|null, runningVar|null, { epsilon, momentum })
Napi::Value BatchNormTrain(const Info& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "batchNorm";
    OpOptions o(info, 5, op, {"epsilon", "momentum"});
    ck::BatchNormResult r = ck::batch_norm_train(
        arg_tensor(info, 0, op, "x"), arg_tensor_opt(info, 1, op, "gamma"),
        arg_tensor_opt(info, 2, op, "beta"), arg_tensor_opt(info, 3, op, "movingMean"),
        arg_tensor_opt(info, 4, op, "movingVariance"), float(o.number("epsilon")),
        float(o.number("momentum")));
    return pack(info, {{"y", &r.y}, {"mean", &r.mean}, {"invstd", &r.invstd}});
  });
}

// batchNormInfer(x, gamma|null, beta|null, mean, variance, { epsilon })
Napi::Value BatchNormInfer(const Info& info) {
  return guard(info, [&] {
    const char* op = "batchNorm";
    OpOptions o(info, 5, op, {"epsilon"});
    return wrap(info, ck::batch_norm_infer(
                          arg_tensor(info, 0, op, "x"), arg_tensor_opt(info, 1, op, "gamma"),
                          arg_tensor_opt(info, 2, op, "beta"), arg_tensor(info, 3, op, "mean"),
                          arg_tensor(info, 4, op, "variance"), float(o.number("epsilon"))));
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
                                                 OpOptions(info, 2, op, {"sparse"}).flag("sparse"));
    return pack(info, {{"loss", &r.loss}, {"grad", &r.grad}});
  });
}

Napi::Value BinaryCrossEntropy(const Info& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "binaryCrossEntropy";
    ck::LossResult r = ck::binary_cross_entropy(arg_tensor(info, 0, op, "input"),
                                                arg_tensor(info, 1, op, "target"),
                                                OpOptions(info, 2, op, {"fromLogits"}).flag("fromLogits"));
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

// sgdUpdate(w, g, velocity|null, { learningRate, momentum, nesterov })
Napi::Value SgdUpdate(const Info& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "sgdUpdate";
    OpOptions o(info, 3, op, {"learningRate", "momentum", "nesterov"});
    ck::SgdParams p;
    p.lr = float(o.number("learningRate"));
    p.momentum = float(o.number("momentum"));
    p.nesterov = o.flag("nesterov");
    ck::sgd_update(arg_tensor(info, 0, op, "weights"), arg_tensor(info, 1, op, "gradient"),
                   arg_tensor_opt(info, 2, op, "velocity"), p);
    return info.Env().Undefined();
  });
}

// adamUpdate(w, g, m, v, { learningRate, beta1, beta2, epsilon, weightDecay, step })
Napi::Value AdamUpdate(const Info& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "adamUpdate";
    OpOptions o(info, 4, op, {"learningRate", "beta1", "beta2", "epsilon", "weightDecay", "step"});
    ck::AdamParams p;
    p.lr = o.number("learningRate");
    p.beta1 = o.number("beta1");
    p.beta2 = o.number("beta2");
    p.eps = o.number("epsilon");
    p.weight_decay = o.number("weightDecay");
    p.step = o.integer("step", 1, 2147483647);
    ck::adam_update(arg_tensor(info, 0, op, "weights"), arg_tensor(info, 1, op, "gradient"),
                    arg_tensor(info, 2, op, "m"), arg_tensor(info, 3, op, "v"), p);
    return info.Env().Undefined();
  });
}

// rmspropUpdate(w, g, ms, mom|null, mg|null, { learningRate, rho, momentum, epsilon, centered })
Napi::Value RmspropUpdate(const Info& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "rmspropUpdate";
    OpOptions o(info, 5, op, {"learningRate", "rho", "momentum", "epsilon", "centered"});
    ck::RmspropParams p;
    p.lr = o.number("learningRate");
    p.rho = o.number("rho");
    p.momentum = o.number("momentum");
    p.eps = o.number("epsilon");
    p.centered = o.flag("centered");
    ck::rmsprop_update(arg_tensor(info, 0, op, "weights"), arg_tensor(info, 1, op, "gradient"),
                       arg_tensor(info, 2, op, "ms"), arg_tensor_opt(info, 3, op, "momentum"),
                       arg_tensor_opt(info, 4, op, "mg"), p);
    return info.Env().Undefined();
  });
}

// strides, padding, dilation, outputPadding ([-1, -1]: Keras's None) of a transposed convolution.
ck::Conv2dTransposeAttrs conv_transpose_attrs(const OpOptions& o) {
  ck::Conv2dAttrs c = conv_attrs(o);
  ck::Conv2dTransposeAttrs a;
  a.stride_h = c.stride_h, a.stride_w = c.stride_w, a.dil_h = c.dil_h, a.dil_w = c.dil_w, a.padding = c.padding;
  std::tie(a.out_pad_h, a.out_pad_w) = o.int_pair("outputPadding", -1, kMaxWindow);
  return a;
}

// conv2dTranspose(x, filter, bias|null, { strides, padding, dilation, outputPadding, activation })
Napi::Value Conv2dTranspose(const Info& info) {
  return guard(info, [&] {
    const char* op = "conv2dTranspose";
    OpOptions o(info, 3, op, {"strides", "padding", "dilation", "outputPadding", "activation"});
    ck::Conv2dTransposeAttrs a = conv_transpose_attrs(o);
    a.act = parse_act(info.Env(), o.text("activation"), op);
    return wrap(info, ck::conv2d_transpose(arg_tensor(info, 0, op, "x"), arg_tensor(info, 1, op, "filter"),
                                           arg_tensor_opt(info, 2, op, "bias"), a));
  });
}

// conv2dTransposeGrad(dy, x, filter, { strides, padding, dilation, outputPadding, withBias }) -> { dx, dw, db? }
Napi::Value Conv2dTransposeGrad(const Info& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "conv2dTransposeGrad";
    OpOptions o(info, 3, op, {"strides", "padding", "dilation", "outputPadding", "withBias"});
    ck::Conv2dGrads g = ck::conv2d_transpose_grad(arg_tensor(info, 0, op, "dy"), arg_tensor(info, 1, op, "x"),
                                                  arg_tensor(info, 2, op, "filter"), conv_transpose_attrs(o),
                                                  o.flag("withBias"));
    return pack(info, {{"dx", &g.dx}, {"dw", &g.dw}, {"db", &g.db}});
  });
}

}  // namespace

// { interpolation, fillMode, fillValue }: how imageTransform resamples (Keras's affine_transform).
ck::ImageSampling image_sampling(const OpOptions& o) {
  ck::ImageSampling s;
  const std::string interp = o.text("interpolation"), fill = o.text("fillMode");
  if (interp == "bilinear") s.interp = ck::Interp::Bilinear;
  else if (interp == "nearest") s.interp = ck::Interp::Nearest;
  else throw_js(o.env(), ck::ErrorKind::Value, o.op() + ": interpolation must be 'bilinear' or 'nearest', got '" + interp + "'");
  if (fill == "reflect") s.fill = ck::FillMode::Reflect;
  else if (fill == "wrap") s.fill = ck::FillMode::Wrap;
  else if (fill == "constant") s.fill = ck::FillMode::Constant;
  else if (fill == "nearest") s.fill = ck::FillMode::Nearest;
  else throw_js(o.env(), ck::ErrorKind::Value, o.op() + ": fillMode must be 'reflect', 'wrap', 'constant' or 'nearest', got '" + fill + "'");
  s.fill_value = float(o.number("fillValue"));
  return s;
}

// imageTransform(images, transforms, { interpolation, fillMode, fillValue }) /
// imageTransformGrad(dy, transforms, { ... })
Napi::Value ImageTransform(const Info& info) {
  return guard(info, [&] {
    const char* op = "imageTransform";
    OpOptions o(info, 2, op, {"interpolation", "fillMode", "fillValue"});
    return wrap(info, ck::image_transform(arg_tensor(info, 0, op, "images"), arg_tensor(info, 1, op, "transforms"), image_sampling(o)));
  });
}

Napi::Value ImageTransformGrad(const Info& info) {
  return guard(info, [&] {
    const char* op = "imageTransformGrad";
    OpOptions o(info, 2, op, {"interpolation", "fillMode", "fillValue"});
    return wrap(info, ck::image_transform_grad(arg_tensor(info, 0, op, "dy"), arg_tensor(info, 1, op, "transforms"), image_sampling(o)));
  });
}

// imageContrast(images, factors, { valueLow, valueHigh }) / imageContrastGrad(dy, images, factors, { ... });
// imageBrightness and imageBrightnessGrad likewise with per-image offsets.
template <bool Contrast>
Napi::Value ImageAdjust(const Info& info) {
  return guard(info, [&] {
    const char* op = Contrast ? "imageContrast" : "imageBrightness";
    OpOptions o(info, 2, op, {"valueLow", "valueHigh"});
    const ck::Tensor& x = arg_tensor(info, 0, op, "images");
    const ck::Tensor& p = arg_tensor(info, 1, op, Contrast ? "factors" : "deltas");
    const float lo = float(o.number("valueLow")), hi = float(o.number("valueHigh"));
    return wrap(info, Contrast ? ck::image_contrast(x, p, lo, hi) : ck::image_brightness(x, p, lo, hi));
  });
}

template <bool Contrast>
Napi::Value ImageAdjustGrad(const Info& info) {
  return guard(info, [&] {
    const char* op = Contrast ? "imageContrastGrad" : "imageBrightnessGrad";
    OpOptions o(info, 3, op, {"valueLow", "valueHigh"});
    const ck::Tensor& dy = arg_tensor(info, 0, op, "dy");
    const ck::Tensor& x = arg_tensor(info, 1, op, "images");
    const ck::Tensor& p = arg_tensor(info, 2, op, Contrast ? "factors" : "deltas");
    const float lo = float(o.number("valueLow")), hi = float(o.number("valueHigh"));
    return wrap(info, Contrast ? ck::image_contrast_grad(dy, x, p, lo, hi) : ck::image_brightness_grad(dy, x, p, lo, hi));
  });
}

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
  add("mulGrad", MulGrad);
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
  add("conv2dTranspose", Conv2dTranspose);
  add("conv2dTransposeGrad", Conv2dTransposeGrad);
  add("imageTransform", ImageTransform);
  add("imageTransformGrad", ImageTransformGrad);
  add("imageContrast", ImageAdjust<true>);
  add("imageContrastGrad", ImageAdjustGrad<true>);
  add("imageBrightness", ImageAdjust<false>);
  add("imageBrightnessGrad", ImageAdjustGrad<false>);
}

}  // namespace ckaddon
