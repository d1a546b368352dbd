// The network executor as a JS class: lib/models builds it from the layers' configs and drives
// fit/evaluate/predict with one call per batch; each step's Promise settles from the net's
// stream, so the event loop keeps running while it trains.
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <memory>

#include "addon.h"
#include "net.h"

namespace ckaddon {
namespace {

using Info = Napi::CallbackInfo;

int get_int(Napi::Object o, const char* key, int def, const char* op) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return def;
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1e300;
  if (d != double(int64_t(d)) || d < 0 || d > (1 << 24)) {
    throw_js(o.Env(), ck::ErrorKind::Value, std::string(op) + ": " + key + " must be a non-negative integer");
  }
  return int(d);
}

double get_double(Napi::Object o, const char* key, double def, const char* op) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return def;
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue())) {
    throw_js(o.Env(), ck::ErrorKind::Value, std::string(op) + ": " + key + " must be a finite number");
  }
  return v.As<Napi::Number>().DoubleValue();
}

float get_float(Napi::Object o, const char* key, float def, const char* op) {
  return float(get_double(o, key, def, op));
}

bool get_bool(Napi::Object o, const char* key, bool def) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : def;
}

std::string get_string(Napi::Object o, const char* key, const char* def) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string(def);
}

// A JS array of integers in [lo, hi] (undefined: empty).
std::vector<int> read_ints(Napi::Value v, int lo, int hi, const std::string& what) {
  std::vector<int> out;
  if (v.IsUndefined()) return out;
  if (!v.IsArray() || v.As<Napi::Array>().Length() > 100000) {
    throw_js(v.Env(), ck::ErrorKind::Value, what + " must be an array of integers");
  }
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value e = a.Get(i);
    double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : -1e300;
    if (d != double(int64_t(d)) || d < lo || d > hi) {
      throw_js(v.Env(), ck::ErrorKind::Value,
               what + " must hold integers in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    out.push_back(int(d));
  }
  return out;
}

// An array of tensors (a model's inputs or targets; the net checks their devices against its own).
std::vector<ck::Tensor> read_tensors(const Info& info, size_t i, const char* op, const char* name) {
  Napi::Env env = info.Env();
  if (!info[i].IsArray() || info[i].As<Napi::Array>().Length() > 1024) {
    throw_js(env, ck::ErrorKind::Value, std::string(op) + ": " + name + " must be an array of tensors");
  }
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<ck::Tensor> out;
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value v = a.Get(k);
    if (!TensorHandle::Is(v)) throw_js(env, ck::ErrorKind::DType, std::string(op) + ": " + name + " must hold Tensors");
    const ck::Tensor& t = TensorHandle::Unwrap(v.As<Napi::Object>())->tensor(op);
    out.push_back(t);
  }
  return out;
}

// Each layer kind's canonical name and the attributes its spec may carry (layer_kinds.inc).
struct LayerKindInfo {
  const char* name;
  ck::LayerKind kind;
  const char* attrs;  // space-separated
};
const LayerKindInfo kLayerKinds[] = {
#define CK_LAYER(kind, name, Attrs, keys) {name, ck::LayerKind::kind, keys},
#include "layer_kinds.inc"
};

// A key the spec's kind does not list is a ValueError naming the layer and the key.
void check_layer_keys(Napi::Env env, Napi::Object o, const LayerKindInfo& info,
                      const std::string& layer) {
  const std::string key = unknown_key(o, std::string("kind name inputs sharesParamsWith ") + info.attrs);
  if (key.empty()) return;
  throw_js(env, ck::ErrorKind::Value,
           layer + ": a " + info.name + " layer has no attribute '" + key + "' (it takes: " +
               (info.attrs[0] ? info.attrs : "none") + ")");
}

// Each attribute struct read from the keys its kinds list (check_layer_keys refused any other).
void require_windows(Napi::Env env, const std::string& layer, std::initializer_list<int> sizes) {
  for (int size : sizes) {
    if (size < 1) throw_js(env, ck::ErrorKind::Value, layer + ": kernel sizes, strides and dilations must be >= 1");
  }
}

void read_attrs(Napi::Env, Napi::Object, const std::string&, ck::NoAttrs&) {}

void read_attrs(Napi::Env env, Napi::Object o, const std::string& layer, ck::ConvAttrs& a) {
  const char* op = layer.c_str();
  a.filters = get_int(o, "filters", 0, op);
  a.kernel_h = get_int(o, "kernelH", 1, op), a.kernel_w = get_int(o, "kernelW", 1, op);
  a.stride_h = get_int(o, "strideH", 1, op), a.stride_w = get_int(o, "strideW", 1, op);
  a.dil_h = get_int(o, "dilationH", 1, op), a.dil_w = get_int(o, "dilationW", 1, op);
  require_windows(env, layer, {a.kernel_h, a.kernel_w, a.stride_h, a.stride_w, a.dil_h, a.dil_w});
  a.padding = parse_padding(env, get_string(o, "padding", "valid"), op);
  // 0 is Keras's default spelled out: one group, a depth multiplier of one.
  a.groups = std::max(1, get_int(o, "groups", 1, op));
  a.depth_multiplier = std::max(1, get_int(o, "depthMultiplier", 1, op));
  // Absent: Keras's None (-1); a given outputPadding is a non-negative integer.
  a.out_pad_h = get_int(o, "outputPaddingH", -1, op), a.out_pad_w = get_int(o, "outputPaddingW", -1, op);
  a.use_bias = get_bool(o, "useBias", true);
  a.act = parse_act(env, get_string(o, "activation", "linear"), op);
  a.alpha = get_float(o, "alpha", 0.f, op);
}

void read_attrs(Napi::Env env, Napi::Object o, const std::string& layer, ck::DenseAttrs& a) {
  const char* op = layer.c_str();
  a.units = get_int(o, "units", 0, op);
  a.use_bias = get_bool(o, "useBias", true);
  a.act = parse_act(env, get_string(o, "activation", "linear"), op);
  a.alpha = get_float(o, "alpha", 0.f, op);
}

void read_attrs(Napi::Env env, Napi::Object o, const std::string& layer, ck::PoolAttrs& a) {
  const char* op = layer.c_str();
  a.kernel_h = get_int(o, "kernelH", 1, op), a.kernel_w = get_int(o, "kernelW", 1, op);
  a.stride_h = get_int(o, "strideH", 1, op), a.stride_w = get_int(o, "strideW", 1, op);
  require_windows(env, layer, {a.kernel_h, a.kernel_w, a.stride_h, a.stride_w});
  a.padding = parse_padding(env, get_string(o, "padding", "valid"), op);
  a.power = get_float(o, "power", 2.f, op);
}

void read_attrs(Napi::Env, Napi::Object o, const std::string& layer, ck::PaddingAttrs& a) {
  const char* op = layer.c_str();
  a.top = get_int(o, "padTop", 0, op), a.bottom = get_int(o, "padBottom", 0, op);
  a.left = get_int(o, "padLeft", 0, op), a.right = get_int(o, "padRight", 0, op);
}

void read_attrs(Napi::Env, Napi::Object o, const std::string& layer, ck::CroppingAttrs& a) {
  const char* op = layer.c_str();
  a.top = get_int(o, "cropTop", 0, op), a.bottom = get_int(o, "cropBottom", 0, op);
  a.left = get_int(o, "cropLeft", 0, op), a.right = get_int(o, "cropRight", 0, op);
}

void read_attrs(Napi::Env, Napi::Object o, const std::string& layer, ck::UpSamplingAttrs& a) {
  const char* op = layer.c_str();
  a.size_h = get_int(o, "sizeH", 1, op), a.size_w = get_int(o, "sizeW", 1, op);
  a.bilinear = get_string(o, "interpolation", "nearest") == "bilinear";
  a.half_pixel = get_bool(o, "halfPixelCenters", false);
}

void read_attrs(Napi::Env, Napi::Object o, const std::string& layer, ck::ReshapeAttrs& a) {
  Napi::Value target = o.Get("targetShape");
  if (target.IsUndefined()) return;
  for (int d : read_ints(target, 1, 1 << 24, layer + ": targetShape")) a.target_shape.push_back(d);
}

void read_attrs(Napi::Env, Napi::Object o, const std::string& layer, ck::DropoutAttrs& a) {
  a.rate = get_float(o, "rate", 0.f, layer.c_str());
  Napi::Value noise = o.Get("noiseShape");
  if (!noise.IsUndefined()) a.noise_shape = read_ints(noise, 0, 1, layer + ": noiseShape (1: broadcast, 0: per index)");
}

void read_attrs(Napi::Env, Napi::Object o, const std::string& layer, ck::NormAttrs& a) {
  const char* op = layer.c_str();
  a.eps = get_float(o, "epsilon", 1e-3f, op);
  a.momentum = get_float(o, "momentum", 0.99f, op);
  a.center = get_bool(o, "center", true);
  a.scale = get_bool(o, "scale", true);
  a.groups = std::max(1, get_int(o, "groups", 1, op));
}

void read_attrs(Napi::Env env, Napi::Object o, const std::string& layer, ck::ActivationAttrs& a) {
  a.act = parse_act(env, get_string(o, "activation", "linear"), layer.c_str());
  a.alpha = get_float(o, "alpha", 0.f, layer.c_str());
}

void read_attrs(Napi::Env, Napi::Object o, const std::string& layer, ck::RescalingAttrs& a) {
  const char* op = layer.c_str();
  a.factor = get_float(o, "factor", 1.f, op), a.offset = get_float(o, "offset", 0.f, op);
}

// The random preprocessing layers' attributes: rotation, contrast and brightness draw from
// [lower, upper], zoom and translation from [heightLower, heightUpper] and [widthLower,
// widthUpper] (a zoom without the width's: the height's draw); the spec's kind says which
// (layer_kinds.inc lists each kind's keys).
void read_attrs(Napi::Env env, Napi::Object o, const std::string& layer, ck::AugmentAttrs& a) {
  const char* op = layer.c_str();
  ck::AugmentDraw& d = a.draw;
  d.flip_h = get_bool(o, "horizontal", true), d.flip_v = get_bool(o, "vertical", true);
  const bool per_axis = !o.Get("heightLower").IsUndefined();
  d.lo0 = get_double(o, per_axis ? "heightLower" : "lower", 0, op);
  d.hi0 = get_double(o, per_axis ? "heightUpper" : "upper", 0, op);
  d.same_draw = o.Get("widthLower").IsUndefined() && o.Get("widthUpper").IsUndefined();
  d.lo1 = get_double(o, "widthLower", d.lo0, op), d.hi1 = get_double(o, "widthUpper", d.hi0, op);
  const double seed = get_double(o, "seed", 0, op);
  if (!(seed >= 0 && seed <= 9007199254740991.0 && seed == std::floor(seed))) {
    throw_js(env, ck::ErrorKind::Value, layer + ": seed must be an integer in [0, 2^53), got " + std::to_string(seed));
  }
  d.seed = uint64_t(seed);
  const std::string fill = get_string(o, "fillMode", "reflect");
  if (fill == "reflect") a.sampling.fill = ck::FillMode::Reflect;
  else if (fill == "wrap") a.sampling.fill = ck::FillMode::Wrap;
  else if (fill == "constant") a.sampling.fill = ck::FillMode::Constant;
  else if (fill == "nearest") a.sampling.fill = ck::FillMode::Nearest;
  else throw_js(env, ck::ErrorKind::Value, layer + ": fillMode must be reflect, wrap, constant or nearest, got '" + fill + "'");
  const std::string interp = get_string(o, "interpolation", "bilinear");
  if (interp == "bilinear") a.sampling.interp = ck::Interp::Bilinear;
  else if (interp == "nearest") a.sampling.interp = ck::Interp::Nearest;
  else throw_js(env, ck::ErrorKind::Value, layer + ": interpolation must be bilinear or nearest, got '" + interp + "'");
  a.sampling.fill_value = get_float(o, "fillValue", 0.f, op);
  a.value_low = get_float(o, "valueLow", 0.f, op), a.value_high = get_float(o, "valueHigh", 255.f, op);
  d.value_span = double(a.value_high) - double(a.value_low);
}

ck::LayerSpec read_layer(Napi::Env env, Napi::Value v) {
  if (!v.IsObject()) throw_js(env, ck::ErrorKind::Value, "model: each layer spec must be an object");
  Napi::Object o = v.As<Napi::Object>();
  const std::string name = get_string(o, "name", "layer");
  std::string kind = get_string(o, "kind", "");
  const LayerKindInfo* info = nullptr;
  for (const LayerKindInfo& k : kLayerKinds) {
    if (kind == k.name) info = &k;
  }
  if (!info) throw_js(env, ck::ErrorKind::Value, name + ": unknown layer kind '" + kind + "'");
  check_layer_keys(env, o, *info, name);
  ck::LayerSpec l(info->kind, name);
  switch (l.kind) {
#define CK_LAYER(kind, kind_name, Attrs, keys) \
  case ck::LayerKind::kind: read_attrs(env, o, l.name, l.attrs<ck::Attrs>()); break;
#include "layer_kinds.inc"
  }
  l.trainable = get_bool(o, "trainable", true);
  l.inputs = read_ints(o.Get("inputs"), 0, 1 << 24, l.name + ": inputs");
  l.shares_params_with = get_int(o, "sharesParamsWith", -1, l.name.c_str());
  return l;
}

Napi::Object accumulators(Napi::Env env, const ck::Accumulators& a) {
  if (a.error) throw_js(env, a.error->kind(), a.error->what());
  Napi::Object o = Napi::Object::New(env);
  o.Set("lossSum", a.loss_sum);
  o.Set("correct", a.correct);
  o.Set("count", a.count);
  Napi::Array loss = Napi::Array::New(env, a.output_loss.size());
  Napi::Array correct = Napi::Array::New(env, a.output_correct.size());
  for (size_t i = 0; i < a.output_loss.size(); ++i) loss.Set(uint32_t(i), a.output_loss[i]);
  for (size_t i = 0; i < a.output_correct.size(); ++i) correct.Set(uint32_t(i), a.output_correct[i]);
  o.Set("outputLoss", loss);
  o.Set("outputCorrect", correct);
  Napi::Array metrics = Napi::Array::New(env, a.metric_sums.size());
  for (size_t i = 0; i < a.metric_sums.size(); ++i) metrics.Set(uint32_t(i), a.metric_sums[i]);
  o.Set("metricSums", metrics);
  return o;
}

std::vector<int32_t> read_indices(const Info& info, size_t i, const char* op) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    throw_js(info.Env(), ck::ErrorKind::DType, std::string(op) + ": batch indices must be an Int32Array");
  }
  Napi::Int32Array a = info[i].As<Napi::Int32Array>();
  return std::vector<int32_t>(a.Data(), a.Data() + a.ElementLength());
}

class NetHandle : public Napi::ObjectWrap<NetHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Net",
                       {InstanceMethod<&NetHandle::Params>("params"),
                        InstanceMethod<&NetHandle::Compile>("compile"),
                        InstanceMethod<&NetHandle::SetDevice>("setDevice"),
                        InstanceMethod<&NetHandle::Device>("device"),
                        InstanceMethod<&NetHandle::CudaGraphCaptures>("cudaGraphCaptures"),
                        InstanceMethod<&NetHandle::SetTrainable>("setTrainable"),
                        InstanceMethod<&NetHandle::SetLearningRate>("setLearningRate"),
                        InstanceMethod<&NetHandle::SetRegularizers>("setRegularizers"),
                        InstanceMethod<&NetHandle::SetDynamicBatching>("setDynamicBatching"),
                        InstanceMethod<&NetHandle::InferenceCounts>("inferenceCounts"),
                        InstanceMethod<&NetHandle::SetDistributed>("setDistributed"),
                        InstanceMethod<&NetHandle::TrainStep>("trainStep"),
                        InstanceMethod<&NetHandle::EvalStep>("evalStep"),
                        InstanceMethod<&NetHandle::LayerOutputs>("layerOutputs"),
                        InstanceMethod<&NetHandle::GetParam>("getParam"),
                        InstanceMethod<&NetHandle::SetParam>("setParam"),
                        InstanceMethod<&NetHandle::GetOptimizerState>("getOptimizerState"),
                        InstanceMethod<&NetHandle::SetOptimizerState>("setOptimizerState"),
                        InstanceMethod<&NetHandle::Iterations>("iterations"),
                        InstanceMethod<&NetHandle::ResetEvalMetrics>("resetEvalMetrics"),
                        InstanceMethod<&NetHandle::ResetMetrics>("resetMetrics"),
                        InstanceMethod<&NetHandle::Synchronize>("synchronize")});
  }

  // new Net(inputShapes[][], layerSpecs[], outputs[]): outputs are value ids (see net.h).
  explicit NetHandle(const Info& info) : Napi::ObjectWrap<NetHandle>(info) {
    guard(info, [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      if (!info[0].IsArray() || !info[1].IsArray() || !info[2].IsArray()) {
        throw_js(env, ck::ErrorKind::Value, "model: expected (inputShapes, layers, outputs)");
      }
      Napi::Array ins = info[0].As<Napi::Array>(), layers = info[1].As<Napi::Array>();
      if (ins.Length() > 64) throw_js(env, ck::ErrorKind::Value, "model: too many inputs");
      std::vector<ck::Shape> shapes;
      for (uint32_t i = 0; i < ins.Length(); ++i) {
        ck::Shape shape;
        for (int d : read_ints(ins.Get(i), 1, (1 << 24) - 1, "model: input shape entries")) shape.push_back(d);
        shapes.push_back(std::move(shape));
      }
      if (layers.Length() > 100000) throw_js(env, ck::ErrorKind::Value, "model: too many layers");
      std::vector<ck::LayerSpec> specs;
      for (uint32_t i = 0; i < layers.Length(); ++i) specs.push_back(read_layer(env, layers.Get(i)));
      std::vector<int> outputs = read_ints(info[2], 0, 1 << 24, "model: outputs");
      net_ = std::make_unique<ck::Net>(std::move(shapes), std::move(specs), std::move(outputs));
      track_stream(env, net_->stream());
      return env.Undefined();
    });
  }

 private:
  ck::Net& net(const char* op) {
    if (!net_) throw_error(ck::ErrorKind::Value, std::string(op) + ": the model was not built");
    return *net_;
  }

  Napi::Value Params(const Info& info) {
    return guard(info, [&]() -> Napi::Value {
      const auto& ps = net("params").params();
      Napi::Array out = Napi::Array::New(info.Env(), ps.size());
      for (size_t i = 0; i < ps.size(); ++i) {
        Napi::Object o = Napi::Object::New(info.Env());
        o.Set("layer", ps[i].layer);
        o.Set("name", ps[i].name);
        Napi::Array shape = Napi::Array::New(info.Env(), ps[i].shape.size());
        for (size_t k = 0; k < ps[i].shape.size(); ++k) shape.Set(uint32_t(k), double(ps[i].shape[k]));
        o.Set("shape", shape);
        o.Set("trainable", ps[i].trainable);
        out.Set(uint32_t(i), o);
      }
      return out;
    });
  }

  // compile(loss {name, fromLogits, labelSmoothing, delta}, optimizer {kind, ...}, accuracy, metrics)
  // setDevice('cpu' | 'cuda'): moves the weights; waits for the net's queued work first.
  Napi::Value SetDevice(const Info& info) {
    return guard(info, [&]() -> Napi::Value {
      const char* op = "compile";
      std::string device = arg_string(info, 0, op, "device");
      if (device != "cpu" && device != "cuda") {
        throw_js(info.Env(), ck::ErrorKind::Value, "compile: device must be 'cpu' or 'cuda', got '" + device + "'");
      }
      net(op).set_device(device == "cuda" ? ck::DeviceType::Cuda : ck::DeviceType::Cpu);
      return info.Env().Undefined();
    });
  }

  Napi::Value Device(const Info& info) {
    return guard(info, [&]() -> Napi::Value {
      return Napi::String::New(info.Env(), ck::device_name(net("device").device()));
    });
  }

  Napi::Value CudaGraphCaptures(const Info& info) {
    return guard(info, [&]() -> Napi::Value {
      return Napi::Number::New(info.Env(), double(net("cudaGraphCaptures").cuda_graph_captures()));
    });
  }

  Napi::Value Compile(const Info& info) {
    return guard(info, [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      const char* op = "compile";
      if (!info[0].IsObject()) throw_js(env, ck::ErrorKind::Value, "compile: loss must be an object");
      Napi::Object lo = info[0].As<Napi::Object>();
      std::string loss = get_string(lo, "name", "");
      ck::LossSpec ls;
      if (loss == "categoricalCrossentropy") ls.kind = ck::LossKind::CategoricalCrossentropy;
      else if (loss == "sparseCategoricalCrossentropy") ls.kind = ck::LossKind::SparseCategoricalCrossentropy;
      else if (loss == "binaryCrossentropy") ls.kind = ck::LossKind::BinaryCrossentropy;
      else if (loss == "meanSquaredError") ls.kind = ck::LossKind::MeanSquaredError;
      else if (loss == "huber") ls.kind = ck::LossKind::Huber;
      else if (loss == "kld") ls.kind = ck::LossKind::KLDivergence;
      else throw_js(env, ck::ErrorKind::Value, "compile: unknown loss '" + loss + "'");
      ls.from_logits = get_bool(lo, "fromLogits", false);
      ls.label_smoothing = get_float(lo, "labelSmoothing", 0.f, op);
      ls.delta = get_float(lo, "delta", 1.f, op);
      // metrics: [{ kind: 'topK', k } | { kind: 'confusion', thresholds: number[], classId? (absent: every class),
      //            topK? (absent: every prediction) } | { kind: 'confusionMatrix', numClasses }]
      std::vector<ck::MetricSpec> metrics;
      if (info.Length() > 3 && !info[3].IsUndefined()) {
        if (!info[3].IsArray()) throw_js(env, ck::ErrorKind::Value, "compile: metrics must be an array");
        Napi::Array list = info[3].As<Napi::Array>();
        for (uint32_t i = 0; i < list.Length(); ++i) {
          if (!list.Get(i).IsObject()) throw_js(env, ck::ErrorKind::Value, "compile: each metric must be an object");
          Napi::Object m = list.Get(i).As<Napi::Object>();
          std::string mk = get_string(m, "kind", "");
          ck::MetricSpec spec;
          if (mk == "topK") {
            spec.kind = ck::MetricKind::TopK;
            spec.k = get_int(m, "k", 5, op);
          } else if (mk == "confusion") {
            spec.kind = ck::MetricKind::Confusion;
            Napi::Value t = m.Get("thresholds");
            if (!t.IsArray() || t.As<Napi::Array>().Length() > 100000) {
              throw_js(env, ck::ErrorKind::Value, "compile: a metric's thresholds must be an array of numbers");
            }
            Napi::Array ta = t.As<Napi::Array>();
            for (uint32_t j = 0; j < ta.Length(); ++j) {
              Napi::Value e = ta.Get(j);
              if (!e.IsNumber() || !std::isfinite(e.As<Napi::Number>().DoubleValue())) {
                throw_js(env, ck::ErrorKind::Value, "compile: a metric's thresholds must be finite numbers");
              }
              spec.thresholds.push_back(e.As<Napi::Number>().FloatValue());
            }
            spec.class_id = get_int(m, "classId", -1, op);  // (a given classId is >= 0)
            spec.top_k = get_int(m, "topK", 0, op);         // (a given topK is >= 1)
          } else if (mk == "confusionMatrix") {
            spec.kind = ck::MetricKind::ConfusionMatrix;
            spec.num_classes = get_int(m, "numClasses", 0, op);
          } else {
            throw_js(env, ck::ErrorKind::Value, "compile: unknown metric kind '" + mk + "'");
          }
          metrics.push_back(std::move(spec));
        }
      }
      if (!info[1].IsObject()) throw_js(env, ck::ErrorKind::Value, "compile: optimizer must be an object");
      Napi::Object o = info[1].As<Napi::Object>();
      std::string kind = get_string(o, "kind", "");
      ck::OptimizerSpec spec;
      const double lr = get_double(o, "learningRate", 0.01, op);
      const double wd = get_double(o, "weightDecay", 0, op);
      spec.clip = {get_double(o, "clipvalue", 0, op), get_double(o, "clipnorm", 0, op),
                   get_double(o, "globalClipnorm", 0, op)};
      spec.accumulation_steps = get_int(o, "gradientAccumulationSteps", 0, op);
      if (kind == "sgd") {
        spec.kind = ck::OptimizerKind::Sgd;
        spec.sgd = {float(lr), get_float(o, "momentum", 0.f, op), get_bool(o, "nesterov", false), wd};
      } else if (kind == "adagrad") {
        spec.kind = ck::OptimizerKind::Adagrad;
        spec.adagrad = {lr, get_double(o, "initialAccumulatorValue", 0.1, op), get_double(o, "epsilon", 1e-7, op), wd};
      } else if (kind == "nadam") {
        spec.kind = ck::OptimizerKind::Nadam;
        spec.nadam.lr = lr;
        spec.nadam.beta1 = get_double(o, "beta1", 0.9, op);
        spec.nadam.beta2 = get_double(o, "beta2", 0.999, op);
        spec.nadam.eps = get_double(o, "epsilon", 1e-7, op);
        spec.nadam.weight_decay = wd;
      } else if (kind == "adam" || kind == "adamw") {
        spec.kind = ck::OptimizerKind::Adam;
        spec.adam.lr = lr;
        spec.adam.beta1 = get_double(o, "beta1", 0.9, op);
        spec.adam.beta2 = get_double(o, "beta2", 0.999, op);
        spec.adam.eps = get_double(o, "epsilon", 1e-7, op);
        spec.adam.weight_decay = wd;
      } else if (kind == "rmsprop") {
        spec.kind = ck::OptimizerKind::Rmsprop;
        spec.rmsprop = {lr, get_double(o, "rho", 0.9, op), get_double(o, "momentum", 0, op),
                        get_double(o, "epsilon", 1e-7, op), get_bool(o, "centered", false), wd};
      } else {
        throw_js(env, ck::ErrorKind::Value, "compile: unknown optimizer '" + kind + "'");
      }
      net(op).compile(ls, spec, arg_bool(info, 2, op, "accuracy"), std::move(metrics));
      return env.Undefined();
    });
  }

  Napi::Value SetTrainable(const Info& info) {
    return guard(info, [&]() -> Napi::Value {
      net("trainable").set_trainable(arg_int(info, 0, "trainable", "layer", 0, 1 << 20),
                                     arg_bool(info, 1, "trainable", "trainable"));
      return info.Env().Undefined();
    });
  }

  // setDynamicBatching(maxRows): 0 runs every predict call on its own.
  Napi::Value SetDynamicBatching(const Info& info) {
    return guard(info, [&]() -> Napi::Value {
      net("dynamicBatching").set_dynamic_batching(arg_int(info, 0, "dynamicBatching", "maxBatchSize", 0, 65536));
      return info.Env().Undefined();
    });
  }

  // inferenceCounts() -> { calls, tasks }: predict calls so far and the tasks that ran them.
  Napi::Value InferenceCounts(const Info& info) {
    return guard(info, [&]() -> Napi::Value {
      const auto [calls, tasks] = net("inferenceCounts").inference_counts();
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("calls", double(calls));
      o.Set("tasks", double(tasks));
      return o;
    });
  }

  Napi::Value SetLearningRate(const Info& info) {
    return guard(info, [&]() -> Napi::Value {
      net("learningRate").set_learning_rate(arg_number(info, 0, "learningRate", "learningRate"));
      return info.Env().Undefined();
    });
  }

  // setRegularizers([{ param, l1, l2 }]): the weights whose L1/L2 penalty joins the training loss.
  Napi::Value SetRegularizers(const Info& info) {
    return guard(info, [&]() -> Napi::Value {
      const char* op = "setRegularizers";
      if (!info[0].IsArray()) throw_js(info.Env(), ck::ErrorKind::Value, "setRegularizers: expected an array");
      Napi::Array list = info[0].As<Napi::Array>();
      std::vector<ck::WeightPenalty> penalties;
      for (uint32_t i = 0; i < list.Length(); ++i) {
        Napi::Value v = list.Get(i);
        if (!v.IsObject()) throw_js(info.Env(), ck::ErrorKind::Value, "setRegularizers: expected { param, l1, l2 } objects");
        Napi::Object o = v.As<Napi::Object>();
        penalties.push_back({get_int(o, "param", -1, op), get_double(o, "l1", 0, op), get_double(o, "l2", 0, op)});
      }
      net(op).set_regularizers(std::move(penalties));
      return info.Env().Undefined();
    });
  }

  // setDistributed(timeoutMs | null, bucketFloats, syncBatchNorm = false, orderedSum = false): from
  // the next step on, data-parallel steps sum their gradients over the MPI job in buckets of
  // bucketFloats (each allreduce bounded by timeoutMs), and with syncBatchNorm their batch norms'
  // statistics, with orderedSum in rank order; null ends that.
  Napi::Value SetDistributed(const Info& info) {
    return guard(info, [&]() -> Napi::Value {
      const char* op = "fit (distributed)";
      ck::Net& n = net(op);
      if (info[0].IsNull()) {
        n.set_gradient_reducer({});
      } else {
        double ms = arg_number(info, 0, op, "timeoutMs");
        if (ms <= 0) throw_js(info.Env(), ck::ErrorKind::Value, std::string(op) + ": timeoutMs must be positive");
        const double floats = arg_number(info, 1, op, "bucketFloats");
        if (!(floats >= 1)) throw_js(info.Env(), ck::ErrorKind::Value, std::string(op) + ": bucketFloats must be at least 1");
        const bool sync_bn = info.Length() > 2 && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
        const bool ordered = info.Length() > 3 && info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
        n.set_gradient_reducer(mpi_gradient_reducer(int64_t(std::min(ms, 1e12)), size_t(std::min(floats, 1e18)),
                                                    sync_bn ? n.batch_norm_sync_sizes() : std::vector<size_t>{},
                                                    ordered));
      }
      return info.Env().Undefined();
    });
  }

  // trainStep(xs[], ys[], Int32Array rows, seed, globalBatch = 0, sampleWeight?, firstRow = 0,
  // slices = 1) -> Promise<{ lossSum, correct, count, ... }>. globalBatch > 0: a data-parallel step
  // (setDistributed) of which `rows` (maybe none), from global row firstRow, are this process's
  // share. slices > 1: the batch's gradient is the sum, in order, of its slices' (fit's gradientSlices).
  Napi::Value TrainStep(const Info& info) {
    return guard(info, [&]() -> Napi::Value {
      const char* op = "fit";
      ck::Net& n = net(op);
      double seed = arg_number(info, 3, op, "seed");
      int global_batch = info[4].IsUndefined() || info[4].IsNull() ? 0 : arg_int(info, 4, op, "globalBatch", 1, 1 << 24);
      auto out = std::make_shared<ck::Accumulators>();
      n.train_step(read_tensors(info, 0, op, "x"), read_tensors(info, 1, op, "y"), read_indices(info, 2, op),
                   uint64_t(seed < 0 ? 0 : seed), out, global_batch,
                   info[5].IsUndefined() || info[5].IsNull() ? std::vector<ck::Tensor>{} : read_tensors(info, 5, op, "sampleWeight"),
                   info[6].IsUndefined() ? 0 : arg_int(info, 6, op, "firstRow", 0, 1 << 24),
                   info[7].IsUndefined() ? 1 : arg_int(info, 7, op, "slices", 1, 1 << 24));
      return promise_after(info.Env(), n.result_stream(), n.last_result_task(),
                           [out](Napi::Env env) -> Napi::Value { return accumulators(env, *out); });
    });
  }

  Napi::Value EvalStep(const Info& info) {
    return guard(info, [&]() -> Napi::Value {
      const char* op = "evaluate";
      ck::Net& n = net(op);
      auto out = std::make_shared<ck::Accumulators>();
      n.eval_step(read_tensors(info, 0, op, "x"), read_tensors(info, 1, op, "y"), read_indices(info, 2, op), out,
                  info[3].IsUndefined() ? std::vector<ck::Tensor>{} : read_tensors(info, 3, op, "sampleWeight"));
      return promise_after(info.Env(), n.result_stream(), n.last_result_task(),
                           [out](Napi::Env env) -> Napi::Value { return accumulators(env, *out); });
    });
  }

  // layerOutputs(xs[], start, count, layers[], batchSize) -> TensorHandle[]
  Napi::Value LayerOutputs(const Info& info) {
    return guard(info, [&]() -> Napi::Value {
      const char* op = "predict";
      std::vector<ck::Tensor> ys = net(op).layer_outputs(
          read_tensors(info, 0, op, "x"), arg_int(info, 1, op, "start", 0, 2147483647),
          arg_int(info, 2, op, "count", 1, 1 << 24), read_ints(info[3], 0, 1 << 20, "predict: layers"),
          arg_int(info, 4, op, "batchSize", 1, 1 << 24));
      Napi::Array out = Napi::Array::New(info.Env(), ys.size());
      for (size_t i = 0; i < ys.size(); ++i) out.Set(uint32_t(i), TensorHandle::Wrap(info.Env(), std::move(ys[i])));
      return out;
    });
  }

  Napi::Value GetParam(const Info& info) {
    return guard(info, [&]() -> Napi::Value {
      return TensorHandle::Wrap(info.Env(),
                                net("getWeights").get_param(arg_int(info, 0, "getWeights", "index", 0, 1 << 24)));
    });
  }

  Napi::Value SetParam(const Info& info) {
    return guard(info, [&]() -> Napi::Value {
      const char* op = "setWeights";
      net(op).set_param(arg_int(info, 0, op, "index", 0, 1 << 24), arg_host_tensor(info, 1, op, "value"));
      return info.Env().Undefined();
    });
  }

  Napi::Value GetOptimizerState(const Info& info) {
    return guard(info, [&]() -> Napi::Value {
      std::vector<ck::Tensor> state = net("getOptimizerState").get_optimizer_state();
      Napi::Array out = Napi::Array::New(info.Env(), state.size());
      for (size_t i = 0; i < state.size(); ++i) out.Set(uint32_t(i), TensorHandle::Wrap(info.Env(), state[i]));
      return out;
    });
  }

  // setOptimizerState(tensors[], iterations)
  Napi::Value SetOptimizerState(const Info& info) {
    return guard(info, [&]() -> Napi::Value {
      const char* op = "setOptimizerState";
      if (!info[0].IsArray()) throw_js(info.Env(), ck::ErrorKind::Format, "setOptimizerState: expected an array");
      Napi::Array a = info[0].As<Napi::Array>();
      std::vector<ck::Tensor> state;
      for (uint32_t i = 0; i < a.Length(); ++i) {
        Napi::Value v = a.Get(i);
        if (!TensorHandle::Is(v)) throw_js(info.Env(), ck::ErrorKind::DType, "setOptimizerState: expected Tensors");
        const ck::Tensor& t = TensorHandle::Unwrap(v.As<Napi::Object>())->tensor(op);
        if (t.device() != ck::DeviceType::Cpu) {
          throw_js(info.Env(), ck::ErrorKind::Device,
                   std::string(op) + ": the optimizer state must be on the cpu (the model executor "
                                     "runs on the CPU for now)");
        }
        state.push_back(t);
      }
      net(op).set_optimizer_state(state, arg_int(info, 1, op, "iterations", 0, 2147483647));
      return info.Env().Undefined();
    });
  }

  // The step count after the steps queued so far, read on the stream: a save's snapshot gets
  // the count that goes with its weights even while fit queues more steps.
  Napi::Value Iterations(const Info& info) {
    return guard(info, [&]() -> Napi::Value {
      ck::Net& n = net("iterations");
      auto count = std::make_shared<int64_t>(0);
      n.iterations_after(count);
      return promise_after(info.Env(), n.stream(), n.last_task(), [count](Napi::Env env) -> Napi::Value {
        return Napi::Number::New(env, double(*count));
      });
    });
  }

  Napi::Value ResetMetrics(const Info& info) {
    return guard(info, [&]() -> Napi::Value {
      net("resetMetrics").reset_metrics();
      return info.Env().Undefined();
    });
  }

  Napi::Value ResetEvalMetrics(const Info& info) {
    return guard(info, [&]() -> Napi::Value {
      net("resetEvalMetrics").reset_eval_metrics();
      return info.Env().Undefined();
    });
  }

  // Resolves when everything queued on the model's stream has run.
  Napi::Value Synchronize(const Info& info) {
    return guard(info, [&]() -> Napi::Value {
      ck::Net& n = net("synchronize");
      uint64_t seq = n.barrier();
      return promise_after(info.Env(), n.result_stream(), seq,
                           [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
    });
  }

  std::unique_ptr<ck::Net> net_;
};

}  // namespace

void register_net(Napi::Env env, Napi::Object exports) {
  exports.Set("Net", NetHandle::Define(env));
}

}  // namespace ckaddon
