// Devices: where a tensor's memory lives (host or CUDA device) and the small backend interface
// through which the core reaches CUDA. Every CUDA runtime call stays inside native/core/cuda/
// (cuda/backend.cpp); a build without CUDA links device_none.cpp instead, whose backend reports
// {available: false, reason: "built without CUDA"}. No CUDA types appear here, so host-only
// code (the op layer, the addon) uses it with no #ifdef.
//
// The CUDA backend owns one CUDA stream per process: ops on CUDA tensors enqueue their kernels on
// it from the calling thread and return at once; stream order is what makes one op's output safe
// for the next op to read and what makes a freed block safe to hand to the next allocation.
// A model's executor may run on a stream of its own (create_stream).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace ck {

struct CudaKernels;

enum class DeviceType : int { Cpu = 0, Cuda = 1 };
const char* device_name(DeviceType d);  // "cpu" / "cuda"

struct GpuInfo {
  int index = 0;
  std::string name;
  int64_t memory_bytes = 0;
  int cc_major = 0, cc_minor = 0;  // compute capability
  int multiprocessors = 0;
};

// The caching allocator's figures (bytes are the rounded block sizes it holds).
struct DeviceMemoryStats {
  int64_t live_bytes = 0;         // blocks handed out to tensors
  int64_t live_allocations = 0;
  int64_t cached_bytes = 0;       // freed blocks kept for reuse
  int64_t peak_bytes = 0;         // the most live bytes so far
  int64_t pinned_cached_bytes = 0;  // page-locked host staging kept for reuse
};

class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;

  // Whether CUDA can be used; if not, why ("built without CUDA", or the CUDA runtime's message).
  // Probed once; never throws.
  virtual bool available() = 0;
  virtual std::string unavailable_reason() = 0;
  virtual int device_count() = 0;
  virtual GpuInfo device_info(int index) = 0;
  // The kernel table (cuda/cuda_kernels.h); throws DeviceError when unavailable.
  virtual const CudaKernels& kernels() = 0;

  // ---- device memory: a caching allocator (blocks kept per size class on release) ----
  // Throws DeviceError on out of memory, after emptying the cache and retrying once.
  virtual void* alloc(size_t bytes) = 0;
  // Returns the block to the cache. Makes no CUDA call, so it is safe anywhere (host callbacks,
  // worker threads). Stream order makes the block safe to reuse for later work.
  virtual void release(void* p, size_t bytes) = 0;
  virtual void empty_cache() = 0;
  virtual DeviceMemoryStats memory_stats() = 0;

  // ---- page-locked host staging for asynchronous copies (also cached) ----
  virtual void* alloc_pinned(size_t bytes) = 0;
  virtual void release_pinned(void* p, size_t bytes) = 0;  // no CUDA call

  // ---- the process's CUDA stream and work on it (all asynchronous) ----
  virtual void* stream() = 0;  // a cudaStream_t, created on first use
  // A new CUDA stream of its own (a model's), and its release (after its work has run).
  // destroy_stream waits for that work and never throws: it runs in destructors.
  virtual void* create_stream() = 0;
  virtual void destroy_stream(void* stream) = 0;
  virtual void copy_h2d(void* dst, const void* src_pinned, size_t bytes, void* stream) = 0;
  virtual void copy_d2h(void* dst_pinned, const void* src, size_t bytes, void* stream) = 0;
  virtual void copy_d2d(void* dst, const void* src, size_t bytes, void* stream) = 0;
  // Sets `bytes` bytes at dst (device) to zero, in stream order.
  virtual void zero(void* dst, size_t bytes, void* stream) = 0;
  // Runs fn on a CUDA-owned thread once the work enqueued so far has run. fn must make no CUDA
  // call (release / release_pinned are fine) and must not throw.
  virtual void host_callback(void* stream, std::function<void()> fn) = 0;
  // Events: a marker after the work enqueued so far. event_synchronize blocks until it is reached
  // (throws DeviceError with the CUDA error, if the device failed); event_destroy may be called
  // from any thread except host callbacks.
  virtual void* record_event(void* stream) = 0;
  virtual void event_synchronize(void* event) = 0;
  virtual void event_destroy(void* event) = 0;
  // The work enqueued on `stream` from now on waits until `event`, as last recorded before this
  // call, is reached on its own stream; the host does not block. A later record of the event
  // does not move the wait, so the event may be destroyed right after this call.
  virtual void stream_wait_event(void* stream, void* event) = 0;
  // Blocks until everything enqueued on the stream has run; throws DeviceError on a device error.
  virtual void synchronize(void* stream) = 0;

  // ---- CUDA graphs: the work enqueued on a stream between begin_capture and end_capture,
  // instantiated once and replayed by launch_graph. While capturing, the capturing thread may
  // only enqueue (no allocation, copy from pageable memory or synchronization). ----
  virtual void begin_capture(void* stream) = 0;
  // The instantiated graph; throws DeviceError (the capture ends either way) when it failed.
  virtual void* end_capture(void* stream) = 0;
  virtual void launch_graph(void* graph, void* stream) = 0;
  virtual void destroy_graph(void* graph) = 0;  // never throws: it runs in destructors
};

// The process's CUDA backend (cuda/backend.cpp, or the stub in device_none.cpp).
DeviceBackend& cuda_backend();

}  // namespace ck
