// The N-API addon: module setup, typed errors, the Tensor handle and its data transfer.
#include "addon.h"

#include <cmath>
#include <condition_variable>
#include <mutex>
#include <new>
#include <system_error>
#include <utility>
#include <vector>

#include "cpu_count.h"
#include "device.h"
#include "kernels.h"
#include "memory.h"
#include "net.h"
#include "precision.h"
#include "thread_pool.h"

namespace ckaddon {

const char* error_class_name(ck::ErrorKind kind) {
  switch (kind) {
    case ck::ErrorKind::Shape: return "ShapeError";
    case ck::ErrorKind::DType: return "DTypeError";
    case ck::ErrorKind::Device: return "DeviceError";
    case ck::ErrorKind::Format: return "FormatError";
    case ck::ErrorKind::Distributed: return "DistributedError";
    default: return "ValueError";
  }
}

Napi::Value make_error(Napi::Env env, ck::ErrorKind kind, const std::string& msg) {
  InstanceData& data = instance(env);
  if (!data.error_classes.IsEmpty()) {
    Napi::Value cls = data.error_classes.Value().Get(error_class_name(kind));
    if (cls.IsFunction()) return cls.As<Napi::Function>().New({Napi::String::New(env, msg)});
  }
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("name", Napi::String::New(env, error_class_name(kind)));
  return e.Value();
}

namespace {

// A Float32Array over host storage (no copy); the ArrayBuffer keeps the storage alive.
Napi::Value external_view(Napi::Env env, const ck::Tensor& t) {
  size_t n = t.numel();
  Napi::ArrayBuffer buffer;
  if (n == 0) {
    buffer = Napi::ArrayBuffer::New(env, 0);
  } else {
    auto* keep = new ck::StoragePtr(t.storage);
    buffer = Napi::ArrayBuffer::New(
        env, t.data(), n * sizeof(float),
        [](Napi::Env, void*, ck::StoragePtr* hint) { delete hint; }, keep);
  }
  return Napi::Float32Array::New(env, n, buffer, 0);
}

}  // namespace

void throw_js(Napi::Env env, ck::ErrorKind kind, const std::string& msg) {
  throw Napi::Error(env, make_error(env, kind, msg));
}

Napi::Value guard(const Napi::CallbackInfo& info, const std::function<Napi::Value()>& fn) {
  Napi::Env env = info.Env();
  drain_releases(env);
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const ck::Error& e) {
    throw_js(env, e.kind(), e.what());
  } catch (const std::bad_alloc&) {
    throw_js(env, ck::ErrorKind::Device, "out of memory");
  } catch (const std::system_error& e) {
    // the system refused a resource, e.g. no memory left to start a model's stream thread
    throw_js(env, ck::ErrorKind::Device, std::string("out of system resources: ") + e.what());
  } catch (const std::exception& e) {
    throw_js(env, ck::ErrorKind::Value, e.what());
  }
}

// ---- TensorHandle ----

Napi::Function TensorHandle::Define(Napi::Env env) {
  return DefineClass(env, "TensorHandle",
                     {InstanceMethod<&TensorHandle::Shape>("shape"),
                      InstanceMethod<&TensorHandle::Device>("device"),
                      InstanceMethod<&TensorHandle::Disposed>("disposed"),
                      InstanceMethod<&TensorHandle::Dispose>("dispose"),
                      InstanceMethod<&TensorHandle::DataSync>("dataSync"),
                      InstanceMethod<&TensorHandle::Data>("data")});
}

TensorHandle::TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {}

TensorHandle::~TensorHandle() { Release(); }

bool TensorHandle::Is(Napi::Value v) {
  if (!v.IsObject()) return false;
  Napi::Env env = v.Env();
  return v.As<Napi::Object>().InstanceOf(instance(env).tensor_ctor.Value());
}

Napi::Object TensorHandle::Wrap(Napi::Env env, ck::Tensor tensor, Napi::Value source) {
  Napi::Object obj = instance(env).tensor_ctor.New({});
  TensorHandle* h = Unwrap(obj);
  h->tensor_ = std::move(tensor);
  if (!source.IsEmpty() && !source.IsUndefined()) {
    h->source_ = Napi::Persistent(source);
  } else {
    // Tell V8 about native memory so its GC weighs it (freed when the handle is collected).
    h->reported_bytes_ = int64_t(h->tensor_.numel() * sizeof(float));
    Napi::MemoryManagement::AdjustExternalMemory(env, h->reported_bytes_);
  }
  return obj;
}

void TensorHandle::Release() {
  if (reported_bytes_) {
    Napi::MemoryManagement::AdjustExternalMemory(Env(), -reported_bytes_);
    reported_bytes_ = 0;
  }
  if (!source_.IsEmpty()) source_.Reset();
  if (!view_.IsEmpty()) view_.Reset();
  tensor_ = ck::Tensor{};
  disposed_ = true;
}

const ck::Tensor& TensorHandle::tensor(const char* op) const {
  if (disposed_ || !tensor_.storage) {
    throw_error(ck::ErrorKind::Value, std::string(op) + ": the tensor has been disposed");
  }
  // A wrapped Float32Array whose buffer was transferred (structuredClone, postMessage) no longer
  // owns the memory the tensor points at, which its new owner may free: refuse it. (Transferring
  // it while an op that reads it is still queued is not supported: that op may read freed memory.)
  if (!source_.IsEmpty() && source_.Value().As<Napi::TypedArray>().ArrayBuffer().IsDetached()) {
    throw_error(ck::ErrorKind::Value,
                std::string(op) + ": the Float32Array this tensor wraps was transferred (its "
                                  "buffer is detached); make a new tensor from the data");
  }
  return tensor_;
}

Napi::Value TensorHandle::Shape(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    const ck::Tensor& t = tensor("shape");
    Napi::Array a = Napi::Array::New(info.Env(), t.shape.size());
    for (size_t i = 0; i < t.shape.size(); ++i) a.Set(uint32_t(i), double(t.shape[i]));
    return a;
  });
}

Napi::Value TensorHandle::Device(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    return Napi::String::New(info.Env(), ck::device_name(tensor("device").device()));
  });
}

Napi::Value TensorHandle::Disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), disposed_);
}

Napi::Value TensorHandle::Dispose(const Napi::CallbackInfo& info) {
  Release();
  return info.Env().Undefined();
}

Napi::Value TensorHandle::View(Napi::Env env) {
  if (!source_.IsEmpty()) return source_.Value();
  if (!view_.IsEmpty()) return view_.Value();
  // The view keeps the storage alive on its own, so it stays valid after dispose().
  Napi::Value view = external_view(env, tensor_);
  view_ = Napi::Persistent(view);
  return view;
}

namespace {
// The host copy of a CUDA tensor's values being made for data() / dataSync().
struct Download {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  ck::Failure error;
  ck::Tensor host;
};
}  // namespace

Napi::Value TensorHandle::DataSync(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    const ck::Tensor& t = tensor("dataSync");
    if (t.device() == ck::DeviceType::Cuda) {
      // Blocks (documented) until the copy has arrived; an event, not the whole stream.
      auto d = std::make_shared<Download>();
      d->host = ck::download_async(t, [d](const ck::Failure& error) {
        std::lock_guard<std::mutex> lk(d->mu);
        d->error = error;
        d->done = true;
        d->cv.notify_all();
      });
      ck::DeviceBackend& b = ck::cuda_backend();
      void* event = b.record_event(b.stream());
      try {
        b.event_synchronize(event);
      } catch (...) {
        b.event_destroy(event);
        throw;
      }
      b.event_destroy(event);
      std::unique_lock<std::mutex> lk(d->mu);
      d->cv.wait(lk, [&] { return d->done; });
      if (d->error) throw ck::Error(*d->error);
      return external_view(info.Env(), d->host);
    }
    t.storage->wait();
    return View(info.Env());
  });
}

Napi::Value TensorHandle::Data(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    const ck::Tensor& t = tensor("data");
    if (t.device() == ck::DeviceType::Cuda) {
      // A device -> host copy into staging, then a host callback settles the promise: the JS
      // thread never waits. The result is a copy (of the values when the copy ran).
      auto d = std::make_shared<Download>();
      auto subscribe = [&](std::function<void()> settle) {
        d->host = ck::download_async(t, [d, settle](const ck::Failure& error) {
          {
            std::lock_guard<std::mutex> lk(d->mu);
            d->error = error;
          }
          settle();
        });
      };
      return promise_when(info.Env(), subscribe, [d](Napi::Env env) -> Napi::Value {
        ck::Failure error;
        {
          std::lock_guard<std::mutex> lk(d->mu);
          error = d->error;
        }
        if (error) throw_js(env, error->kind(), error->what());
        return external_view(env, d->host);
      });
    }
    ck::StoragePtr storage = t.storage;
    auto self = shared_reference(Value().As<Napi::Object>());
    auto resolve = [self, storage](Napi::Env env) -> Napi::Value {
      ck::Failure failed = storage->error();
      TensorHandle* h = Unwrap(self->Value());
      self->Reset();
      if (failed) throw_js(env, failed->kind(), failed->what());
      if (h->disposed_) throw_js(env, ck::ErrorKind::Value, "data: the tensor has been disposed");
      return h->View(env);
    };
    auto [producer, seq] = storage->current_producer();
    return promise_after(info.Env(), producer, seq, resolve);
  });
}

// ---- argument readers ----

const ck::Tensor& arg_tensor(const Napi::CallbackInfo& info, size_t i, const char* op,
                             const char* name) {
  Napi::Value v = info[i];
  if (!TensorHandle::Is(v)) {
    throw_js(info.Env(), ck::ErrorKind::DType,
             std::string(op) + ": " + name + " must be a Tensor");
  }
  return TensorHandle::Unwrap(v.As<Napi::Object>())->tensor(op);
}

const ck::Tensor& arg_host_tensor(const Napi::CallbackInfo& info, size_t i, const char* op,
                                  const char* name) {
  const ck::Tensor& t = arg_tensor(info, i, op, name);
  if (t.device() != ck::DeviceType::Cpu) {
    throw_js(info.Env(), ck::ErrorKind::Device,
             std::string(op) + ": " + name + " is on " + ck::device_name(t.device()) +
                 "; a model reads its inputs and targets from host tensors (use .to('cpu')), also when it runs on cuda");
  }
  return t;
}

const ck::Tensor* arg_tensor_opt(const Napi::CallbackInfo& info, size_t i, const char* op,
                                 const char* name) {
  Napi::Value v = info[i];
  if (v.IsNull() || v.IsUndefined()) return nullptr;
  return &arg_tensor(info, i, op, name);
}

namespace {

double read_number(Napi::Env env, Napi::Value v, const std::string& op, const std::string& name) {
  if (!v.IsNumber()) throw_js(env, ck::ErrorKind::Value, op + ": " + name + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) {
    throw_js(env, ck::ErrorKind::Value, op + ": " + name + " must be finite, got " + std::to_string(d));
  }
  return d;
}

int read_int(Napi::Env env, Napi::Value v, const std::string& op, const std::string& name, int lo,
             int hi) {
  double d = read_number(env, v, op, name);
  if (d != std::floor(d) || d < lo || d > hi) {
    throw_js(env, ck::ErrorKind::Value,
             op + ": " + name + " must be an integer in [" + std::to_string(lo) + ", " +
                 std::to_string(hi) + "], got " + std::to_string(d));
  }
  return int(d);
}

bool read_bool(Napi::Env env, Napi::Value v, const std::string& op, const std::string& name) {
  if (!v.IsBoolean()) throw_js(env, ck::ErrorKind::Value, op + ": " + name + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string read_string(Napi::Env env, Napi::Value v, const std::string& op, const std::string& name) {
  if (!v.IsString()) throw_js(env, ck::ErrorKind::Value, op + ": " + name + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

}  // namespace

double arg_number(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  return read_number(info.Env(), info[i], op, name);
}

int arg_int(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name, int lo,
            int hi) {
  return read_int(info.Env(), info[i], op, name, lo, hi);
}

bool arg_bool(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  return read_bool(info.Env(), info[i], op, name);
}

std::string arg_string(const Napi::CallbackInfo& info, size_t i, const char* op,
                       const char* name) {
  return read_string(info.Env(), info[i], op, name);
}

std::string unknown_key(Napi::Object o, const std::string& known) {
  const std::string words = " " + known + " ";
  Napi::Array keys = o.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const std::string key = keys.Get(i).ToString().Utf8Value();
    if (o.Get(key).IsUndefined()) continue;  // an optional field left out
    if (words.find(" " + key + " ") == std::string::npos) return key;
  }
  return "";
}

OpOptions::OpOptions(const Napi::CallbackInfo& info, size_t i, const char* op,
                     std::initializer_list<const char*> keys)
    : env_(info.Env()), op_(op) {
  Napi::Value v = info[i];
  if (!v.IsObject() || v.IsArray() || v.IsFunction()) {
    throw_js(env_, ck::ErrorKind::Value, op_ + ": the options must be an object");
  }
  o_ = v.As<Napi::Object>();
  std::string known;
  for (const char* key : keys) known += std::string(key) + " ";
  const std::string bad = unknown_key(o_, known);
  if (!bad.empty()) throw_js(env_, ck::ErrorKind::Value, op_ + ": unknown option '" + bad + "'");
}

Napi::Value OpOptions::get(const char* key) const {
  Napi::Value v = o_.Get(key);
  if (v.IsUndefined()) throw_js(env_, ck::ErrorKind::Value, op_ + ": option '" + key + "' is missing");
  return v;
}

double OpOptions::number(const char* key) const { return read_number(env_, get(key), op_, key); }

int OpOptions::integer(const char* key, int lo, int hi) const {
  return read_int(env_, get(key), op_, key, lo, hi);
}

std::pair<int, int> OpOptions::int_pair(const char* key, int lo, int hi) const {
  Napi::Value v = get(key);
  if (!v.IsArray() || v.As<Napi::Array>().Length() != 2) {
    throw_js(env_, ck::ErrorKind::Value, op_ + ": " + key + " must be an array of 2 integers");
  }
  Napi::Array a = v.As<Napi::Array>();
  return {read_int(env_, a.Get(0u), op_, std::string(key) + "[0]", lo, hi),
          read_int(env_, a.Get(1u), op_, std::string(key) + "[1]", lo, hi)};
}

bool OpOptions::flag(const char* key) const { return read_bool(env_, get(key), op_, key); }

std::string OpOptions::text(const char* key) const { return read_string(env_, get(key), op_, key); }

ck::Act parse_act(Napi::Env env, const std::string& name, const char* op) {
  if (name == "linear" || name == "none") return ck::Act::None;
  if (name == "relu") return ck::Act::Relu;
  if (name == "leakyRelu") return ck::Act::LeakyRelu;
  if (name == "elu") return ck::Act::Elu;
  if (name == "sigmoid") return ck::Act::Sigmoid;
  if (name == "tanh") return ck::Act::Tanh;
  if (name == "clippedRelu") return ck::Act::ClippedRelu;
  if (name == "gelu") return ck::Act::Gelu;
  if (name == "geluTanh") return ck::Act::GeluTanh;
  if (name == "swish") return ck::Act::Swish;
  if (name == "hardSwish") return ck::Act::HardSwish;
  if (name == "hardSigmoid") return ck::Act::HardSigmoid;
  if (name == "softplus") return ck::Act::Softplus;
  if (name == "selu") return ck::Act::Selu;
  if (name == "mish") return ck::Act::Mish;
  throw_js(env, ck::ErrorKind::Value, std::string(op) + ": unknown activation '" + name + "'");
}

ck::Padding parse_padding(Napi::Env env, const std::string& name, const char* op) {
  if (name == "valid") return ck::Padding::Valid;
  if (name == "same") return ck::Padding::Same;
  throw_js(env, ck::ErrorKind::Value,
           std::string(op) + ": padding must be 'valid' or 'same', got '" + name + "'");
}

namespace {

// ---- module-level functions ----

// shape from a JS array of non-negative integers.
ck::Shape read_shape(const Napi::CallbackInfo& info, size_t i, const char* op) {
  Napi::Value v = info[i];
  if (!v.IsArray()) throw_js(info.Env(), ck::ErrorKind::Shape, std::string(op) + ": shape must be an array");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > 8) {
    throw_js(info.Env(), ck::ErrorKind::Shape, std::string(op) + ": at most 8 dimensions are supported");
  }
  ck::Shape shape;
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value d = a.Get(k);
    double x = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
    if (!(x >= 0 && x == std::floor(x) && x <= double(ck::kMaxElements))) {
      throw_js(info.Env(), ck::ErrorKind::Shape,
               std::string(op) + ": shape entries must be non-negative integers");
    }
    shape.push_back(int64_t(x));
  }
  return shape;
}

// fromArray(Float32Array, shape): wraps the caller's memory without copying.
Napi::Value FromArray(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    if (!info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      throw_js(env, ck::ErrorKind::DType, "tensor: data must be a Float32Array");
    }
    Napi::Float32Array arr = info[0].As<Napi::Float32Array>();
    ck::Shape shape = read_shape(info, 1, "tensor");
    if (ck::shape_numel(shape) != arr.ElementLength()) {
      throw_js(env, ck::ErrorKind::Shape,
               "tensor: shape " + ck::shape_str(shape) + " needs " +
                   std::to_string(ck::shape_numel(shape)) + " values, the data has " +
                   std::to_string(arr.ElementLength()));
    }
    napi_ref keep;
    NAPI_THROW_IF_FAILED(env, napi_create_reference(env, arr, 1, &keep), Napi::Value());
    napi_env raw_env = env;
    ck::Tensor t = ck::wrap_tensor(arr.Data(), shape, [raw_env, keep] { queue_release(raw_env, keep); });
    return TensorHandle::Wrap(env, std::move(t), arr);
  });
}

// empty(shape) / fill(shape, value)
Napi::Value Fill(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    ck::Shape shape = read_shape(info, 0, "fill");
    float value = float(arg_number(info, 1, "fill", "value"));
    ck::Tensor t = ck::empty_tensor(shape, "fill");
    std::fill(t.data(), t.data() + t.numel(), value);
    return TensorHandle::Wrap(info.Env(), std::move(t));
  });
}

Napi::Value Reshape(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    const ck::Tensor& x = arg_tensor(info, 0, "reshape", "x");
    return TensorHandle::Wrap(info.Env(), ck::copy(x, read_shape(info, 1, "reshape")));
  });
}

Napi::Value SetErrorClasses(const Napi::CallbackInfo& info) {
  if (!info[0].IsObject()) {
    throw Napi::TypeError::New(info.Env(), "setErrorClasses: expected an object");
  }
  instance(info.Env()).error_classes = Napi::Persistent(info[0].As<Napi::Object>());
  return info.Env().Undefined();
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("isa", ck::isa_name(ck::cpu_kernels().isa));
    o.Set("bestIsa", ck::isa_name(ck::detect_isa()));
    o.Set("threads", ck::num_threads());
    o.Set("threadsFrom", ck::default_threads().source);  // what set the default count
    return o;
  });
}

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    std::string name = arg_string(info, 0, "setIsa", "isa");
    ck::Isa isa = name == "scalar" ? ck::Isa::Scalar
                  : name == "avx2" ? ck::Isa::Avx2
                  : name == "avx512" ? ck::Isa::Avx512
                  : name == "neon" ? ck::Isa::Neon
                  : throw ck::Error(ck::ErrorKind::Value,
                                    "setIsa: unknown ISA '" + name + "' (scalar, avx2, avx512, neon)");
    ck::Stream::default_stream()->synchronize();
    ck::set_isa(isa);
    return info.Env().Undefined();
  });
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    int n = arg_int(info, 0, "setThreads", "threads", 0, 256);
    ck::set_num_threads(n);  // safe beside running tasks (see ThreadCountScope)
    return info.Env().Undefined();
  });
}

Napi::Value SetCudaGraphs(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    ck::set_cuda_graphs(arg_bool(info, 0, "setCudaGraphs", "enabled"));
    return info.Env().Undefined();
  });
}

Napi::Value SetPrecision(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    const std::string name = arg_string(info, 0, "setPrecision", "precision");
    ck::MathPrecision p;
    if (!ck::parse_precision(name, &p)) {
      ck::throw_error(ck::ErrorKind::Value,
                      "setPrecision: precision must be 'fp32', 'tf32' or 'bf16', got '" + name + "'");
    }
    ck::set_math_precision(p);
    return info.Env().Undefined();
  });
}

Napi::Value GetPrecision(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), ck::precision_name(ck::math_precision()));
}

Napi::Value Memory(const Napi::CallbackInfo& info) {
  ck::HostMemoryStats s = ck::host_memory_stats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("hostBytes", double(s.live_bytes));
  o.Set("hostAllocations", double(s.live_allocations));
  o.Set("hostPeakBytes", double(s.peak_bytes));
  ck::DeviceMemoryStats d = ck::cuda_backend().memory_stats();
  o.Set("deviceBytes", double(d.live_bytes));
  o.Set("deviceAllocations", double(d.live_allocations));
  o.Set("deviceCachedBytes", double(d.cached_bytes));
  o.Set("devicePeakBytes", double(d.peak_bytes));
  o.Set("pinnedCachedBytes", double(d.pinned_cached_bytes));
  return o;
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    // CPU tasks may wait for CUDA copies and CUDA work for CPU producers: CPU, CUDA, CPU again.
    ck::Stream::default_stream()->synchronize();
    ck::DeviceBackend& b = ck::cuda_backend();
    if (b.available()) {
      b.synchronize(b.stream());
      ck::Stream::default_stream()->synchronize();
    }
    return info.Env().Undefined();
  });
}

ck::DeviceType parse_device(Napi::Env env, const std::string& name, const char* op) {
  if (name == "cpu") return ck::DeviceType::Cpu;
  if (name == "cuda") return ck::DeviceType::Cuda;
  throw_js(env, ck::ErrorKind::Value,
           std::string(op) + ": unknown device '" + name + "' (expected 'cpu' or 'cuda')");
}

// toDevice(x, 'cpu' | 'cuda'): an asynchronous copy (x itself if it is already there).
Napi::Value ToDevice(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    std::string name = arg_string(info, 1, "to", "device");
    std::string op = "to('" + name + "')";
    ck::DeviceType dev = parse_device(info.Env(), name, op.c_str());
    const ck::Tensor& x = arg_tensor(info, 0, op.c_str(), "x");
    ck::DeviceBackend& b = ck::cuda_backend();
    if (dev == ck::DeviceType::Cuda && !b.available()) {
      throw_js(info.Env(), ck::ErrorKind::Device,
               op + ": CUDA is unavailable: " + b.unavailable_reason());
    }
    return TensorHandle::Wrap(info.Env(), ck::to_device(x, dev, op.c_str()));
  });
}

// cudaStatus() -> { available, reason, devices: [{ index, name, memoryBytes, computeCapability,
// multiprocessors }] }
Napi::Value CudaStatus(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    ck::DeviceBackend& b = ck::cuda_backend();
    Napi::Object o = Napi::Object::New(env);
    bool ok = b.available();
    o.Set("available", ok);
    o.Set("reason", ok ? env.Null() : Napi::String::New(env, b.unavailable_reason()));
    Napi::Array list = Napi::Array::New(env);
    for (int i = 0; ok && i < b.device_count(); ++i) {
      ck::GpuInfo g = b.device_info(i);
      Napi::Object d = Napi::Object::New(env);
      d.Set("index", g.index);
      d.Set("name", g.name);
      d.Set("memoryBytes", double(g.memory_bytes));
      d.Set("computeCapability",
            std::to_string(g.cc_major) + "." + std::to_string(g.cc_minor));
      d.Set("multiprocessors", g.multiprocessors);
      list.Set(uint32_t(i), d);
    }
    o.Set("devices", list);
    return o;
  });
}

// emptyCache(): frees the CUDA allocator's cached blocks (and staging) back to the driver.
Napi::Value EmptyCache(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    ck::cuda_backend().empty_cache();
    return info.Env().Undefined();
  });
}

}  // namespace
}  // namespace ckaddon

static Napi::Object InitConvkit(Napi::Env env, Napi::Object exports) {
  using namespace ckaddon;
  init_env(env);
  Napi::Function ctor = TensorHandle::Define(env);
  instance(env).tensor_ctor = Napi::Persistent(ctor);
  exports.Set("TensorHandle", ctor);
  exports.Set("fromArray", Napi::Function::New(env, FromArray));
  exports.Set("fill", Napi::Function::New(env, Fill));
  exports.Set("reshape", Napi::Function::New(env, Reshape));
  exports.Set("setErrorClasses", Napi::Function::New(env, SetErrorClasses));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("setCudaGraphs", Napi::Function::New(env, SetCudaGraphs));
  exports.Set("setPrecision", Napi::Function::New(env, SetPrecision));
  exports.Set("getPrecision", Napi::Function::New(env, GetPrecision));
  exports.Set("memory", Napi::Function::New(env, Memory));
  exports.Set("synchronize", Napi::Function::New(env, Synchronize));
  exports.Set("toDevice", Napi::Function::New(env, ToDevice));
  exports.Set("cudaStatus", Napi::Function::New(env, CudaStatus));
  exports.Set("emptyCache", Napi::Function::New(env, EmptyCache));
  register_ops(env, exports);
  register_net(env, exports);
  register_mpi(env, exports);
  register_image(env, exports);
  register_jpeg(env, exports);
  return exports;
}

NODE_API_MODULE(convkit, InitConvkit)
