// Shared pieces of the N-API addon: the Tensor handle, argument readers that re-check what the
// TypeScript layer sent (never trust the caller), and the guard that turns C++ errors into
// convkit's typed JS errors.
#pragma once
#include <napi.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"
#include "ops.h"
#include "tensor.h"

namespace ck {
struct GradientReducer;  // net.h
}

namespace ck {
enum class ResizeFilter;
}

namespace ckaddon {

// A JS handle over a core tensor. Owned host storage is exposed to JS as an external ArrayBuffer
// (no copy); borrowed storage is the caller's own Float32Array; the values of a CUDA tensor are
// copied to new host memory by each data() / dataSync().
class TensorHandle : public Napi::ObjectWrap<TensorHandle> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Wrap(Napi::Env env, ck::Tensor tensor, Napi::Value source = Napi::Value());
  static bool Is(Napi::Value v);

  explicit TensorHandle(const Napi::CallbackInfo& info);
  ~TensorHandle() override;

  // The tensor, or a ShapeError-free "disposed" error naming `op`.
  const ck::Tensor& tensor(const char* op) const;

 private:
  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value DataSync(const Napi::CallbackInfo& info);
  Napi::Value Data(const Napi::CallbackInfo& info);
  Napi::Value View(Napi::Env env);
  void Release();

  ck::Tensor tensor_;
  bool disposed_ = false;
  int64_t reported_bytes_ = 0;
  Napi::Reference<Napi::Value> source_;  // borrowed: the caller's Float32Array
  Napi::Reference<Napi::Value> view_;    // owned: the cached external view
};

// Per-environment state (addon_env.cpp): each environment that loads the addon (the main
// thread, each worker_thread) has its own.
class Dispatcher;
struct InstanceData {
  Napi::FunctionReference tensor_ctor;
  Napi::ObjectReference error_classes;  // { ShapeError, DTypeError, ... } set from JS
  std::shared_ptr<Dispatcher> dispatcher;
  std::vector<std::weak_ptr<ck::Stream>> streams;  // its models' streams
};
InstanceData& instance(Napi::Env env);
// Sets up the environment's state and the cleanup that waits for its work when it ends.
void init_env(Napi::Env env);
// Registers a model's stream: the environment's cleanup waits for it.
void track_stream(Napi::Env env, const std::shared_ptr<ck::Stream>& stream);
// A wrapped array's reference, released from any thread: deleted when its own JS thread next
// enters the addon (drain_releases), or dropped if its environment has gone.
void queue_release(napi_env env, napi_ref ref);
void drain_releases(napi_env env);
// A reference that work on other threads may hold: deleted on its JS thread as usual, or let go
// with its environment when that has gone first (a terminated worker_thread).
std::shared_ptr<Napi::ObjectReference> shared_reference(Napi::Object object);

// The name of the JS error class for a C++ error kind ("ShapeError", ...).
const char* error_class_name(ck::ErrorKind kind);
// The typed JS error (ShapeError, ...) for a C++ error kind.
Napi::Value make_error(Napi::Env env, ck::ErrorKind kind, const std::string& msg);
[[noreturn]] void throw_js(Napi::Env env, ck::ErrorKind kind, const std::string& msg);

// Runs fn, converting ck::Error, std::bad_alloc and other C++ exceptions into JS errors.
Napi::Value guard(const Napi::CallbackInfo& info, const std::function<Napi::Value()>& fn);

// Argument readers: each throws a typed error naming `op` and the argument.
const ck::Tensor& arg_tensor(const Napi::CallbackInfo& info, size_t i, const char* op,
                             const char* name);
const ck::Tensor* arg_tensor_opt(const Napi::CallbackInfo& info, size_t i, const char* op,
                                 const char* name);
// A tensor in host memory: the network executor runs on the CPU only for now, so a CUDA tensor
// is a DeviceError naming `op`.
const ck::Tensor& arg_host_tensor(const Napi::CallbackInfo& info, size_t i, const char* op,
                                  const char* name);
int arg_int(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name, int lo,
            int hi);
double arg_number(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
bool arg_bool(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
std::string arg_string(const Napi::CallbackInfo& info, size_t i, const char* op,
                       const char* name);
ck::Act parse_act(Napi::Env env, const std::string& name, const char* op);

// The first key of `o` with a defined value that is not a word of `known` (space-separated), or
// "" when there is none: how op options and layer specs refuse a misspelled key.
std::string unknown_key(Napi::Object o, const std::string& known);

// An op's options object (its last argument), read by name as sharp reads its options: a key
// the op does not list is a ValueError naming it, and so is a listed key that is missing (lib/
// fills in every default before calling), so no argument can land in another's place.
class OpOptions {
 public:
  OpOptions(const Napi::CallbackInfo& info, size_t i, const char* op,
            std::initializer_list<const char*> keys);
  double number(const char* key) const;
  int integer(const char* key, int lo, int hi) const;
  // A [first, second] array of integers (strides, dilation, poolSize, size).
  std::pair<int, int> int_pair(const char* key, int lo, int hi) const;
  bool flag(const char* key) const;
  std::string text(const char* key) const;
  Napi::Env env() const { return env_; }
  const std::string& op() const { return op_; }

 private:
  Napi::Value get(const char* key) const;
  Napi::Env env_;
  Napi::Object o_;
  std::string op_;
};
ck::Padding parse_padding(Napi::Env env, const std::string& name, const char* op);

// A promise resolved on the JS thread with make_value() once `stream` has run task `seq`
// (rejected with the exception make_value throws, if any). Never blocks the JS thread.
Napi::Promise promise_after(Napi::Env env, const std::shared_ptr<ck::Stream>& stream, uint64_t seq,
                            std::function<Napi::Value(Napi::Env)> make_value);
// The same for any source of completion: `subscribe(settle)` arranges for settle() to be called
// once (from any thread) when the work is done.
Napi::Promise promise_when(Napi::Env env,
                           const std::function<void(std::function<void()>)>& subscribe,
                           std::function<Napi::Value(Napi::Env)> make_value);

// Registers every op binding on `exports` (addon_ops.cpp).
void register_ops(Napi::Env env, Napi::Object exports);
// Registers the network executor class `Net` (addon_net.cpp).
void register_net(Napi::Env env, Napi::Object exports);
// Registers the MPI communicator behind ck.distributed (addon_mpi.cpp).
void register_mpi(Napi::Env env, Napi::Object exports);
// Registers the image pipeline's resizeImage and augmentImages (addon_image.cpp) and decodeJpeg
// (addon_jpeg.cpp).
void register_image(Napi::Env env, Napi::Object exports);
void register_jpeg(Napi::Env env, Napi::Object exports);
// The `interpolation` option ('bilinear' or 'nearest') of the image pipeline's bindings.
ck::ResizeFilter parse_resize_filter(const OpOptions& o);
// A Net's gradient reducer (ck::GradientReducer) that exchanges the ranks' status and sums the
// gradients over them, in buckets of bucket_floats, with MPI_Allreduce on the communication
// thread; a DeviceError past timeout_ms, a DistributedError when another rank's step failed
// (addon_mpi.cpp).
// batch_stats_sizes: Net::batch_norm_sync_sizes() for a fit with syncBatchNorm, else empty.
// ordered: every sum adds the ranks' floats in rank order (init's orderedSum).
ck::GradientReducer mpi_gradient_reducer(int64_t timeout_ms, size_t bucket_floats,
                                         std::vector<size_t> batch_stats_sizes, bool ordered);

}  // namespace ckaddon
