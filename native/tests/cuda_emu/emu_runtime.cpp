// convkit's CUDA emulator (see include/cuda_runtime.h): the runtime API over host memory. Every
// stream is a FIFO of work items run by its own thread, so the order CUDA guarantees (a copy after
// the kernel before it, a host function before the work after it) holds as on a GPU, and host
// code that forgets a synchronization sees stale data here too.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "emu_internal.h"

namespace ck_emu {

void fail(const std::string& what) {
  std::fprintf(stderr, "cuda emulator: %s\n", what.c_str());
  std::abort();
}

namespace {

thread_local cudaError_t g_last_error = cudaSuccess;  // per host thread, as in CUDA

class Stream {
 public:
  Stream() : worker_([this] { work(); }) {}
  ~Stream() {
    post(nullptr);  // the stop item
    worker_.join();
  }
  // Enqueues fn; returns its sequence number.
  uint64_t post(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(m_);
    queue_.push_back(std::move(fn));
    cv_.notify_all();
    return ++posted_;
  }
  uint64_t mark() {
    std::lock_guard<std::mutex> lock(m_);
    return posted_;
  }
  // Blocks until the items up to `seq` have run (returns at once on the stream's own thread).
  void wait_for(uint64_t seq) {
    if (std::this_thread::get_id() == worker_.get_id()) return;
    std::unique_lock<std::mutex> lock(m_);
    cv_.wait(lock, [&] { return done_ >= seq; });
  }
  void drain() { wait_for(mark()); }

 private:
  void work() {
    std::unique_lock<std::mutex> lock(m_);
    for (;;) {
      cv_.wait(lock, [this] { return !queue_.empty(); });
      std::function<void()> fn = std::move(queue_.front());
      queue_.pop_front();
      if (!fn) return;
      lock.unlock();
      fn();
      lock.lock();
      ++done_;
      cv_.notify_all();
    }
  }

  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  uint64_t posted_ = 0, done_ = 0;
  std::thread worker_;
};

// The legacy default stream (nullptr); never destroyed, its worker outlives main.
Stream& default_stream() {
  static Stream* s = new Stream();
  return *s;
}

// Live streams, for cudaDeviceSynchronize.
std::mutex g_streams_mutex;
std::vector<Stream*> g_streams;

Stream& stream_of(cudaStream_t s) {
  return s ? *reinterpret_cast<Stream*>(s) : default_stream();
}

void synchronize_all() {
  default_stream().drain();
  std::vector<Stream*> streams;
  {
    std::lock_guard<std::mutex> lock(g_streams_mutex);
    streams = g_streams;
  }
  for (Stream* s : streams) s->drain();
}

struct EmuEvent {
  Stream* stream = nullptr;
  uint64_t seq = 0;
};

constexpr size_t kFakeMemory = size_t(16) << 30;
std::atomic<size_t> g_live_bytes{0};

void* device_alloc(size_t bytes) {
  // Header of 64 bytes keeps the size (for the free figure) and 64-byte alignment for float4.
  void* raw = std::aligned_alloc(64, ((bytes + 63) / 64) * 64 + 64);
  if (!raw) return nullptr;
  std::memcpy(raw, &bytes, sizeof bytes);
  char* p = static_cast<char*>(raw) + 64;
  std::memset(p, 0xFF, bytes);  // fresh device memory reads as NaN, not zero
  g_live_bytes += bytes;
  return p;
}

void device_free(void* p) {
  if (!p) return;
  char* raw = static_cast<char*>(p) - 64;
  size_t bytes;
  std::memcpy(&bytes, raw, sizeof bytes);
  g_live_bytes -= bytes;
  std::free(raw);
}

}  // namespace

void enqueue_grid(dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t s, void (*body)(void*),
                  void* ctx, void (*destroy)(void*)) {
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  const bool bad = threads == 0 || threads > 1024 || block.x > 1024 || block.y > 1024 ||
                   block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
                   grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535;
  if (bad) {
    g_last_error = cudaErrorInvalidConfiguration;
    destroy(ctx);
    return;
  }
  if (shared_bytes != 0) fail("dynamic shared memory is not emulated");
  stream_of(s).post([=] {
    run_grid(grid, block, body, ctx);
    destroy(ctx);
  });
}

}  // namespace ck_emu

using ck_emu::g_last_error;

cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int d) {
  if (d != 0) return cudaErrorInvalidDevice;
  std::memset(prop, 0, sizeof *prop);
  std::snprintf(prop->name, sizeof prop->name, "convkit CUDA emulator (host)");
  prop->totalGlobalMem = ck_emu::kFakeMemory;
  prop->major = 9, prop->minor = 0;
  prop->multiProcessorCount = 1;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->sharedMemPerBlock = 48 << 10;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr attr, int) {
  *v = attr == cudaDevAttrMemoryPoolsSupported ? 1 : 0;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() {
  ck_emu::synchronize_all();
  return cudaSuccess;
}
cudaError_t cudaGetLastError() {
  cudaError_t e = g_last_error;
  g_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return g_last_error; }
const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unknown error";
}
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  *total_bytes = ck_emu::kFakeMemory;
  size_t live = ck_emu::g_live_bytes;
  *free_bytes = live < *total_bytes ? *total_bytes - live : 0;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
  if (bytes > ck_emu::kFakeMemory) return g_last_error = cudaErrorMemoryAllocation;
  *p = ck_emu::device_alloc(bytes);
  return *p ? cudaSuccess : (g_last_error = cudaErrorMemoryAllocation);
}
cudaError_t cudaFree(void* p) {
  ck_emu::device_free(p);
  return cudaSuccess;
}
cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t) { return cudaMalloc(p, bytes); }
cudaError_t cudaFreeAsync(void* p, cudaStream_t s) {
  ck_emu::stream_of(s).post([p] { ck_emu::device_free(p); });  // freed in stream order
  return cudaSuccess;
}
cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned) {
  *p = std::malloc(bytes ? bytes : 1);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaMallocHost(void** p, size_t bytes) { return cudaHostAlloc(p, bytes, 0); }
cudaError_t cudaFreeHost(void* p) {
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int) {
  *pool = nullptr;
  return cudaSuccess;
}
cudaError_t cudaMemPoolTrimTo(cudaMemPool_t, size_t) { return cudaSuccess; }
// The synchronous forms wait for all earlier work (the legacy default stream's behaviour).
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  ck_emu::synchronize_all();
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind,
                            cudaStream_t s) {
  if (bytes) ck_emu::stream_of(s).post([=] { std::memmove(dst, src, bytes); });
  return cudaSuccess;
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  ck_emu::synchronize_all();
  if (bytes) std::memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s) {
  if (bytes) ck_emu::stream_of(s).post([=] { std::memset(p, value, bytes); });
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* s) {
  auto* stream = new ck_emu::Stream();
  {
    std::lock_guard<std::mutex> lock(ck_emu::g_streams_mutex);
    ck_emu::g_streams.push_back(stream);
  }
  *s = reinterpret_cast<cudaStream_t>(stream);
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) { return cudaStreamCreate(s); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  auto* stream = reinterpret_cast<ck_emu::Stream*>(s);
  {
    std::lock_guard<std::mutex> lock(ck_emu::g_streams_mutex);
    auto& all = ck_emu::g_streams;
    all.erase(std::remove(all.begin(), all.end(), stream), all.end());
  }
  delete stream;  // runs what is queued, then stops its thread
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  ck_emu::stream_of(s).drain();
  return cudaSuccess;
}
cudaError_t cudaLaunchHostFunc(cudaStream_t s, cudaHostFn_t fn, void* data) {
  ck_emu::stream_of(s).post([fn, data] { fn(data); });
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = reinterpret_cast<cudaEvent_t>(new ck_emu::EmuEvent());
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) { return cudaEventCreate(e); }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  auto* ev = reinterpret_cast<ck_emu::EmuEvent*>(e);
  ev->stream = &ck_emu::stream_of(s);
  ev->seq = ev->stream->mark();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  auto* ev = reinterpret_cast<ck_emu::EmuEvent*>(e);
  if (ev->stream) ev->stream->wait_for(ev->seq);
  return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t, cudaEvent_t) {
  *ms = 0.f;  // the emulator keeps no device time
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete reinterpret_cast<ck_emu::EmuEvent*>(e);
  return cudaSuccess;
}
