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

// How far a stream has run: shared with the events recorded on it and the waits on those events,
// which (as in CUDA) stay valid after the stream is destroyed.
class Progress {
 public:
  void advance() {
    {
      std::lock_guard<std::mutex> lock(m_);
      ++done_;
    }
    cv_.notify_all();
  }
  // Blocks until the stream's items up to `seq` have run.
  void wait_for(uint64_t seq) {
    std::unique_lock<std::mutex> lock(m_);
    cv_.wait(lock, [&] { return done_ >= seq; });
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  uint64_t done_ = 0;
};

class Stream {
 public:
  Stream() : worker_([this] { work(); }) {}
  ~Stream() {
    post(nullptr);  // the stop item
    worker_.join();
  }
  // Enqueues fn (or, while the stream captures a graph, appends it to the graph); returns its
  // sequence number.
  uint64_t post(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(m_);
    if (capture_ && fn) {
      capture_->push_back(std::move(fn));
      return posted_;
    }
    queue_.push_back(std::move(fn));
    cv_.notify_all();
    return ++posted_;
  }
  // Stream capture: work posted between begin and end becomes the graph's nodes.
  bool begin_capture(std::vector<std::function<void()>>* nodes) {
    std::lock_guard<std::mutex> lock(m_);
    if (capture_) return false;
    capture_ = nodes;
    return true;
  }
  std::vector<std::function<void()>>* end_capture() {
    std::lock_guard<std::mutex> lock(m_);
    auto* nodes = capture_;
    capture_ = nullptr;
    return nodes;
  }
  bool capturing() {
    std::lock_guard<std::mutex> lock(m_);
    return capture_ != nullptr;
  }
  uint64_t mark() {
    std::lock_guard<std::mutex> lock(m_);
    return posted_;
  }
  const std::shared_ptr<Progress>& progress() const { return progress_; }
  // Blocks until the items up to `seq` have run (returns at once on the stream's own thread).
  void wait_for(uint64_t seq) {
    if (std::this_thread::get_id() == worker_.get_id()) return;
    progress_->wait_for(seq);
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
      progress_->advance();
      lock.lock();
    }
  }

  std::mutex m_;
  std::condition_variable cv_;
  std::vector<std::function<void()>>* capture_ = nullptr;
  std::deque<std::function<void()>> queue_;
  uint64_t posted_ = 0;
  std::shared_ptr<Progress> progress_ = std::make_shared<Progress>();
  std::thread worker_;  // last: it starts working as soon as it is made
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

// A captured graph: its nodes in stream order, and the memory cudaMallocAsync gave it while
// capturing (a graph's memory nodes; kept for every replay, freed with the graph).
struct GraphMemory {
  std::vector<void*> blocks;
  ~GraphMemory();  // frees the blocks, once no graph, executable or pending launch holds them
};
struct EmuGraph {
  std::vector<std::function<void()>> nodes;
  std::shared_ptr<GraphMemory> memory = std::make_shared<GraphMemory>();
  bool invalid = false;  // an unsupported call was made while capturing
};

// The graph each capturing stream is building.
std::mutex g_capture_mutex;
std::vector<std::pair<Stream*, EmuGraph*>> g_captures;

// The graph the calling thread is capturing into, if any: calls that could synchronize with
// the device are illegal then (CUDA's cudaStreamCaptureModeThreadLocal) and void the capture.
thread_local EmuGraph* t_capturing = nullptr;

// Returns true (and voids the capture) when the calling thread is capturing.
bool illegal_while_capturing() {
  if (!t_capturing) return false;
  t_capturing->invalid = true;
  g_last_error = cudaErrorStreamCaptureUnsupported;
  return true;
}

EmuGraph* capture_of(Stream* s) {
  std::lock_guard<std::mutex> lock(g_capture_mutex);
  for (auto& c : g_captures) {
    if (c.first == s) return c.second;
  }
  return nullptr;
}

// An event: the point of its last record (none yet: complete). Recorded and waited on from any
// host thread, as in CUDA.
struct EmuEvent {
  std::mutex m;
  std::shared_ptr<Progress> progress;
  uint64_t seq = 0;
  std::pair<std::shared_ptr<Progress>, uint64_t> point() {
    std::lock_guard<std::mutex> lock(m);
    return {progress, seq};
  }
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
  // The arguments live as long as the work item: one run, or a captured graph's lifetime.
  std::shared_ptr<void> args(ctx, destroy);
  stream_of(s).post([=] { run_grid(grid, block, body, args.get()); });
}

}  // namespace ck_emu

using ck_emu::g_last_error;

// CK_EMU_DRIVER=none or =old plays a machine without the NVIDIA driver, or with one older than
// the runtime (CUDA 11.8 against 13.0), so the backend's probe messages can be tested.
static const char* emulated_driver() {
  const char* d = std::getenv("CK_EMU_DRIVER");
  return d ? d : "";
}
cudaError_t cudaGetDeviceCount(int* n) {
  *n = 0;
  if (!std::strcmp(emulated_driver(), "none") || !std::strcmp(emulated_driver(), "old")) {
    return g_last_error = cudaErrorInsufficientDriver;
  }
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* v) {
  *v = !std::strcmp(emulated_driver(), "none") ? 0 : !std::strcmp(emulated_driver(), "old") ? 11080 : 13000;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = 13000;
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
  if (ck_emu::illegal_while_capturing()) return cudaErrorStreamCaptureUnsupported;
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
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
  }
  return "cudaErrorUnknown";
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorIllegalState: return "the operation is not permitted in the current state";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
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
  if (ck_emu::illegal_while_capturing()) return cudaErrorStreamCaptureUnsupported;
  if (bytes > ck_emu::kFakeMemory) return g_last_error = cudaErrorMemoryAllocation;
  *p = ck_emu::device_alloc(bytes);
  return *p ? cudaSuccess : (g_last_error = cudaErrorMemoryAllocation);
}
cudaError_t cudaFree(void* p) {
  if (ck_emu::illegal_while_capturing()) return cudaErrorStreamCaptureUnsupported;
  ck_emu::device_free(p);
  return cudaSuccess;
}
cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t s) {
  if (bytes > ck_emu::kFakeMemory) return g_last_error = cudaErrorMemoryAllocation;
  *p = ck_emu::device_alloc(bytes);
  if (!*p) return g_last_error = cudaErrorMemoryAllocation;
  // While capturing, the block is the graph's (a memory node): every replay uses it.
  if (ck_emu::EmuGraph* g = ck_emu::capture_of(&ck_emu::stream_of(s))) g->memory->blocks.push_back(*p);
  return cudaSuccess;
}
cudaError_t cudaFreeAsync(void* p, cudaStream_t s) {
  ck_emu::Stream& stream = ck_emu::stream_of(s);
  if (ck_emu::capture_of(&stream)) return cudaSuccess;  // freed with the graph
  stream.post([p] { ck_emu::device_free(p); });  // freed in stream order
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
  if (ck_emu::illegal_while_capturing()) return cudaErrorStreamCaptureUnsupported;
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
  if (ck_emu::illegal_while_capturing()) return cudaErrorStreamCaptureUnsupported;
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
  if (ck_emu::illegal_while_capturing()) return cudaErrorStreamCaptureUnsupported;
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
  if (ck_emu::illegal_while_capturing()) return cudaErrorStreamCaptureUnsupported;  // not emulated
  auto* ev = reinterpret_cast<ck_emu::EmuEvent*>(e);
  ck_emu::Stream& stream = ck_emu::stream_of(s);
  std::lock_guard<std::mutex> lock(ev->m);
  ev->progress = stream.progress();
  ev->seq = stream.mark();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  if (ck_emu::illegal_while_capturing()) return cudaErrorStreamCaptureUnsupported;
  auto [progress, seq] = reinterpret_cast<ck_emu::EmuEvent*>(e)->point();
  if (progress) progress->wait_for(seq);
  return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned) {
  if (ck_emu::illegal_while_capturing()) return cudaErrorStreamCaptureUnsupported;  // not emulated
  // The record as it stands now: recording the event again later does not move this wait.
  auto [progress, seq] = reinterpret_cast<ck_emu::EmuEvent*>(e)->point();
  if (progress) {
    ck_emu::stream_of(s).post([progress = std::move(progress), seq] { progress->wait_for(seq); });
  }
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

// ---- graphs ----
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode) {
  if (!s) return g_last_error = cudaErrorStreamCaptureUnsupported;  // the legacy stream cannot
  if (ck_emu::t_capturing) return g_last_error = cudaErrorStreamCaptureUnsupported;
  auto* graph = new ck_emu::EmuGraph();
  ck_emu::Stream& stream = ck_emu::stream_of(s);
  if (!stream.begin_capture(&graph->nodes)) {
    delete graph;
    return g_last_error = cudaErrorIllegalState;
  }
  {
    std::lock_guard<std::mutex> lock(ck_emu::g_capture_mutex);
    ck_emu::g_captures.emplace_back(&stream, graph);
  }
  ck_emu::t_capturing = graph;
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* out) {
  ck_emu::Stream& stream = ck_emu::stream_of(s);
  ck_emu::EmuGraph* graph = ck_emu::capture_of(&stream);
  if (!graph) return g_last_error = cudaErrorIllegalState;
  stream.end_capture();
  {
    std::lock_guard<std::mutex> lock(ck_emu::g_capture_mutex);
    auto& all = ck_emu::g_captures;
    all.erase(std::remove_if(all.begin(), all.end(), [&](auto& c) { return c.first == &stream; }), all.end());
  }
  if (ck_emu::t_capturing == graph) ck_emu::t_capturing = nullptr;
  if (graph->invalid) {
    *out = nullptr;
    cudaGraphDestroy(reinterpret_cast<cudaGraph_t>(graph));
    return g_last_error = cudaErrorStreamCaptureInvalidated;
  }
  *out = reinterpret_cast<cudaGraph_t>(graph);
  return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* status) {
  *status = ck_emu::capture_of(&ck_emu::stream_of(s)) ? cudaStreamCaptureStatusActive
                                                        : cudaStreamCaptureStatusNone;
  return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  // The executable shares the nodes (and their arguments) and the graph's memory.
  *exec = reinterpret_cast<cudaGraphExec_t>(new ck_emu::EmuGraph(*reinterpret_cast<ck_emu::EmuGraph*>(graph)));
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
  auto* g = reinterpret_cast<ck_emu::EmuGraph*>(exec);
  ck_emu::stream_of(s).post([nodes = g->nodes, memory = g->memory] {
    for (const auto& node : nodes) node();
  });
  return cudaSuccess;
}
ck_emu::GraphMemory::~GraphMemory() {
  for (void* p : blocks) device_free(p);
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete reinterpret_cast<ck_emu::EmuGraph*>(exec);
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete reinterpret_cast<ck_emu::EmuGraph*>(graph);
  return cudaSuccess;
}
