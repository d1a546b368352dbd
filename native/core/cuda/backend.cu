// The CUDA backend of device.h: availability probe, device properties, the caching device
// allocator, cached page-locked staging, the process's stream (and models' own), copies, host
// callbacks and events. The only place outside the kernels that calls the CUDA runtime.
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "../device.h"
#include "cuda_common.cuh"
#include "cuda_kernels.h"

namespace ck {
namespace cuda {
namespace {

// Size classes: multiples of 512 bytes up to 1 MiB, then four classes per power of two (at most
// 25% rounding), so that blocks freed by one batch are reused by the next.
size_t size_class(size_t bytes) {
  if (bytes <= 512) return 512;
  if (bytes <= (size_t(1) << 20)) return (bytes + 511) / 512 * 512;
  int top = 63 - __builtin_clzll((unsigned long long)bytes);
  size_t step = size_t(1) << (top - 2);
  return (bytes + step - 1) / step * step;
}

std::string mib(int64_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f MiB", double(bytes) / (1024.0 * 1024.0));
  return buf;
}

// One cache of blocks per size class; `is_pinned` picks cudaHostAlloc over cudaMalloc.
class BlockCache {
 public:
  explicit BlockCache(bool is_pinned) : pinned_(is_pinned) {}

  // nullptr when the CUDA allocation fails (the error is cleared); throws on other errors.
  void* take(size_t cls, cudaError_t* err) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto it = free_.find(cls);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= int64_t(cls);
        note_live(p, cls);
        return p;
      }
    }
    void* p = nullptr;
    *err = pinned_ ? cudaHostAlloc(&p, cls, cudaHostAllocDefault) : cudaMalloc(&p, cls);
    if (*err != cudaSuccess) {
      cudaGetLastError();  // out of memory is not sticky: clear it
      return nullptr;
    }
    std::lock_guard<std::mutex> lk(mu_);
    note_live(p, cls);
    return p;
  }

  void give_back(void* p) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) return;  // not ours (never happens)
    size_t cls = it->second;
    live_.erase(it);
    live_bytes_ -= int64_t(cls);
    free_[cls].push_back(p);
    cached_ += int64_t(cls);
  }

  // Frees every cached block (cudaFree synchronizes the device).
  void empty() {
    std::vector<void*> blocks;
    {
      std::lock_guard<std::mutex> lk(mu_);
      for (auto& kv : free_) blocks.insert(blocks.end(), kv.second.begin(), kv.second.end());
      free_.clear();
      cached_ = 0;
    }
    for (void* p : blocks) pinned_ ? cudaFreeHost(p) : cudaFree(p);
  }

  DeviceMemoryStats stats() {
    std::lock_guard<std::mutex> lk(mu_);
    DeviceMemoryStats s;
    s.live_bytes = live_bytes_;
    s.live_allocations = int64_t(live_.size());
    s.cached_bytes = cached_;
    s.peak_bytes = peak_;
    return s;
  }

 private:
  void note_live(void* p, size_t cls) {
    live_[p] = cls;
    live_bytes_ += int64_t(cls);
    if (live_bytes_ > peak_) peak_ = live_bytes_;
  }

  bool pinned_;
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  std::unordered_map<void*, size_t> live_;
  int64_t live_bytes_ = 0, cached_ = 0, peak_ = 0;
};

struct HostFn {
  std::function<void()> fn;
};
void CUDART_CB run_host_fn(void* data) {
  std::unique_ptr<HostFn> h(static_cast<HostFn*>(data));
  h->fn();
}

class CudaBackend final : public DeviceBackend {
 public:
  bool available() override {
    probe();
    return count_ > 0;
  }
  std::string unavailable_reason() override {
    probe();
    return reason_;
  }
  int device_count() override {
    probe();
    return count_;
  }

  GpuInfo device_info(int index) override {
    require_available();
    cudaDeviceProp prop;
    check(cudaGetDeviceProperties(&prop, index), "cudaGetDeviceProperties");
    GpuInfo g;
    g.index = index;
    g.name = prop.name;
    g.memory_bytes = int64_t(prop.totalGlobalMem);
    g.cc_major = prop.major;
    g.cc_minor = prop.minor;
    g.multiprocessors = prop.multiProcessorCount;
    return g;
  }

  const CudaKernels& kernels() override {
    require_available();
    return cuda_kernels();
  }

  void* alloc(size_t bytes) override {
    require_available();
    if (bytes == 0) return nullptr;
    size_t cls = size_class(bytes);
    cudaError_t err = cudaSuccess;
    void* p = device_.take(cls, &err);
    if (!p && err == cudaErrorMemoryAllocation) {
      // Give the cached blocks (and the kernels' stream-ordered scratch pool) back, retry once.
      empty_cache();
      p = device_.take(cls, &err);
    }
    if (!p) {
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      cudaGetLastError();
      DeviceMemoryStats s = device_.stats();
      throw_error(ErrorKind::Device,
                  std::string(err == cudaErrorMemoryAllocation ? "out of memory"
                                                               : cudaGetErrorString(err)) +
                      " on the CUDA device allocating " + mib(int64_t(bytes)) + " (convkit holds " +
                      mib(s.live_bytes) + " in live tensors; the device has " +
                      mib(int64_t(free_b)) + " free of " + mib(int64_t(total_b)) +
                      "); dispose() tensors you no longer need");
    }
    return p;
  }

  void release(void* p, size_t) override {
    if (p) device_.give_back(p);
  }

  void empty_cache() override {
    if (!available()) return;
    device_.empty();
    pinned_.empty();
    int dev = 0;
    cudaMemPool_t pool;
    if (cudaGetDevice(&dev) == cudaSuccess &&
        cudaDeviceGetDefaultMemPool(&pool, dev) == cudaSuccess) {
      cudaStreamSynchronize(stream_or_null());
      cudaMemPoolTrimTo(pool, 0);
    }
    cudaGetLastError();
  }

  DeviceMemoryStats memory_stats() override {
    DeviceMemoryStats s = device_.stats();
    s.pinned_cached_bytes = pinned_.stats().cached_bytes;
    return s;
  }

  void* alloc_pinned(size_t bytes) override {
    require_available();
    size_t cls = size_class(bytes == 0 ? 1 : bytes);
    cudaError_t err = cudaSuccess;
    void* p = pinned_.take(cls, &err);
    if (!p) {
      pinned_.empty();
      p = pinned_.take(cls, &err);
    }
    if (!p) {
      throw_error(ErrorKind::Device, std::string("cudaHostAlloc (staging for a copy) of ") +
                                         mib(int64_t(bytes)) + " failed: " +
                                         cudaGetErrorString(err));
    }
    return p;
  }

  void release_pinned(void* p, size_t) override {
    if (p) pinned_.give_back(p);
  }

  void* stream() override {
    require_available();
    std::call_once(stream_once_, [this] {
      cudaStream_t s = nullptr;
      stream_err_ = cudaStreamCreate(&s);
      stream_ = s;
    });
    if (stream_err_ != cudaSuccess) throw_cuda(stream_err_, "cudaStreamCreate");
    return stream_;
  }

  void* create_stream() override {
    require_available();
    cudaStream_t s = nullptr;
    check(cudaStreamCreate(&s), "cudaStreamCreate");
    return s;
  }
  void destroy_stream(void* s) override {
    if (!s) return;
    // Runs in destructors, so errors are dropped: a device failure surfaces at the next sync.
    cudaStreamSynchronize(as_stream(s));
    cudaStreamDestroy(as_stream(s));
    cudaGetLastError();
  }

  void copy_h2d(void* dst, const void* src, size_t bytes, void* s) override {
    if (bytes)
      check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, as_stream(s)),
            "cudaMemcpyAsync (host to device)");
  }
  void copy_d2h(void* dst, const void* src, size_t bytes, void* s) override {
    if (bytes)
      check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, as_stream(s)),
            "cudaMemcpyAsync (device to host)");
  }
  void copy_d2d(void* dst, const void* src, size_t bytes, void* s) override {
    if (bytes)
      check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, as_stream(s)),
            "cudaMemcpyAsync (device to device)");
  }
  void begin_capture(void* s) override {
    // ThreadLocal: other threads (ops on the process stream, other models) keep running freely.
    check(cudaStreamBeginCapture(as_stream(s), cudaStreamCaptureModeThreadLocal),
          "cudaStreamBeginCapture");
  }
  void* end_capture(void* s) override {
    cudaGraph_t graph = nullptr;
    check(cudaStreamEndCapture(as_stream(s), &graph), "cudaStreamEndCapture");
    cudaGraphExec_t exec = nullptr;
    cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    check(err, "cudaGraphInstantiate");
    return exec;
  }
  void launch_graph(void* graph, void* s) override {
    check(cudaGraphLaunch(static_cast<cudaGraphExec_t>(graph), as_stream(s)), "cudaGraphLaunch");
  }
  void destroy_graph(void* graph) override {
    if (graph) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(graph));
  }
  void zero(void* dst, size_t bytes, void* s) override {
    if (bytes) check(cudaMemsetAsync(dst, 0, bytes, as_stream(s)), "cudaMemsetAsync");
  }

  void host_callback(void* s, std::function<void()> fn) override {
    auto* h = new HostFn{std::move(fn)};
    cudaError_t err = cudaLaunchHostFunc(as_stream(s), run_host_fn, h);
    if (err != cudaSuccess) {
      delete h;
      throw_cuda(err, "cudaLaunchHostFunc");
    }
  }

  void* record_event(void* s) override {
    cudaEvent_t e = nullptr;
    check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming | cudaEventBlockingSync),
          "cudaEventCreate");
    cudaError_t err = cudaEventRecord(e, as_stream(s));
    if (err != cudaSuccess) {
      cudaEventDestroy(e);
      throw_cuda(err, "cudaEventRecord");
    }
    return e;
  }
  void event_synchronize(void* e) override {
    check(cudaEventSynchronize(static_cast<cudaEvent_t>(e)), "cudaEventSynchronize");
  }
  void event_destroy(void* e) override {
    if (e) cudaEventDestroy(static_cast<cudaEvent_t>(e));
  }
  void stream_wait_event(void* s, void* e) override {
    check(cudaStreamWaitEvent(as_stream(s), static_cast<cudaEvent_t>(e), 0), "cudaStreamWaitEvent");
  }

  void synchronize(void* s) override {
    check(cudaStreamSynchronize(as_stream(s)), "cudaStreamSynchronize");
  }

 private:
  void probe() {
    std::call_once(probe_once_, [this] {
      int n = 0;
      cudaError_t err = cudaGetDeviceCount(&n);
      if (err != cudaSuccess) {
        reason_ = probe_failure(err);
        cudaGetLastError();
        n = 0;
      } else if (n == 0) {
        reason_ = "no CUDA device found";
      }
      count_ = n;
    });
  }
  // The runtime reports a machine without the NVIDIA driver as "driver version is insufficient":
  // say what a user can act on, with the runtime's words as the detail.
  static std::string probe_failure(cudaError_t err) {
    const std::string detail = std::string(" (CUDA runtime: ") + cudaGetErrorString(err) + ")";
    int driver = 0, runtime = 0;
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    if (err == cudaErrorNoDevice || (err == cudaErrorInsufficientDriver && driver == 0)) {
      return "no NVIDIA driver or GPU found" + detail;
    }
    if (err == cudaErrorInsufficientDriver) {
      return "the NVIDIA driver supports CUDA " + cuda_version(driver) + ", older than the CUDA " +
             cuda_version(runtime) + " convkit was built with: update the driver" + detail;
    }
    return "CUDA failed to start" + detail;
  }
  static std::string cuda_version(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }
  void require_available() {
    if (!available()) {
      throw_error(ErrorKind::Device, "CUDA is unavailable: " + reason_);
    }
  }
  cudaStream_t stream_or_null() { return stream_ ? static_cast<cudaStream_t>(stream_) : nullptr; }

  std::once_flag probe_once_, stream_once_;
  int count_ = 0;
  std::string reason_;
  void* stream_ = nullptr;
  cudaError_t stream_err_ = cudaSuccess;
  BlockCache device_{false}, pinned_{true};
};

}  // namespace
}  // namespace cuda

DeviceBackend& cuda_backend() {
  // Never destroyed: tensors freed during static destruction still return their blocks here.
  static auto* backend = new cuda::CudaBackend();
  return *backend;
}

}  // namespace ck
