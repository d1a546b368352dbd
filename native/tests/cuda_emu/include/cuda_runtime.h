// convkit's CUDA emulator: the part of the CUDA runtime and device language that our kernels
// (native/core/cuda) use, implemented on the host so that the CUDA backend's parity suite runs on
// machines without a GPU (CI, laptops). The .cu files compile as C++ against this header after
// one source rewrite (cmake/cuda_emu_rewrite.cmake turns `k<<<g, b, sh, s>>>(args)` into
// `::ck_emu::launch(k, g, b, sh, s)(args)`).
//
// What it checks: indexing, bounds (device memory is heap memory, so AddressSanitizer sees every
// out-of-range kernel access), launch configurations, __syncthreads / warp-shuffle structure
// (a barrier not reached by every live thread of the block is reported as a deadlock), and
// missing barriers (CK_EMU_ORDER=reverse runs the threads of a block in the opposite order; a
// result that changes with the order reads shared memory another thread writes without a barrier
// between). What it cannot check: timing, the memory model across blocks, float rounding of the
// hardware's fast-math intrinsics (they map to the C library's).
//
// Each stream is a queue worked in order by its own host thread: kernels, copies, memsets, frees,
// events, waits on events and host functions. A grid's blocks run one after another (one grid at
// a time in the process), a block's threads as fibers that switch at __syncthreads and warp
// shuffles, so __shared__ (mapped to `static`) is shared by the block.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- the device language ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
#define CUDART_CB

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
  unsigned x, y, z;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(8) float2 {
  float x, y;
};
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline float2 make_float2(float x, float y) { return float2{x, y}; }

namespace ck_emu {

struct Fiber;
extern Fiber* g_current;
extern uint3 g_block_idx;
extern dim3 g_block_dim, g_grid_dim;
const uint3& thread_idx();
void syncthreads();
// Lane exchange within the current warp: every live lane publishes `bits`, gets src_lane's.
uint64_t warp_exchange(uint64_t bits, unsigned src_lane_xor, bool is_xor, unsigned src_lane);
// A rendezvous of the live lanes of the current warp (__syncwarp).
void warp_sync();
// For warp-wide operations (wmma): every live lane publishes `bits`; returns the warp's 32 slots,
// unchanged until the lanes meet again at warp_sync(). warp_lanes(): live lanes of this warp.
const uint64_t* warp_publish(uint64_t bits);
unsigned lane_id();
unsigned warp_lanes();

template <class T>
T shuffle(T v, unsigned lane_arg, bool is_xor) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a large type");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = warp_exchange(bits, lane_arg, is_xor, lane_arg);
  T r;
  std::memcpy(&r, &bits, sizeof(T));
  return r;
}

}  // namespace ck_emu

#define threadIdx (::ck_emu::thread_idx())
#define blockIdx (::ck_emu::g_block_idx)
#define blockDim (::ck_emu::g_block_dim)
#define gridDim (::ck_emu::g_grid_dim)
constexpr int warpSize = 32;

// CUDA's integer and float min / max overloads (global, mixed argument types allowed).
template <class A, class B>
std::common_type_t<A, B> min(A a, B b) {
  return b < a ? b : a;
}
template <class A, class B>
std::common_type_t<A, B> max(A a, B b) {
  return a < b ? b : a;
}

inline void __syncthreads() { ck_emu::syncthreads(); }
inline void __syncwarp(unsigned = 0xffffffffu) { ck_emu::warp_sync(); }
template <class T>
T __shfl_xor_sync(unsigned, T v, int lane_mask, int = 32) {
  return ck_emu::shuffle(v, unsigned(lane_mask), true);
}
template <class T>
T __shfl_sync(unsigned, T v, int src_lane, int = 32) {
  return ck_emu::shuffle(v, unsigned(src_lane), false);
}
template <class T>
T __ldg(const T* p) {
  return *p;
}
inline unsigned __umulhi(unsigned a, unsigned b) {
  return unsigned((uint64_t(a) * uint64_t(b)) >> 32);
}
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.f / std::sqrt(x); }
inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
// Fibers never preempt each other, so plain read-modify-writes are atomic.
template <class T>
T atomicAdd(T* p, T v) {
  T old = *p;
  *p = old + v;
  return old;
}

// ---- the runtime ----
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInsufficientDriver = 35,
  cudaErrorInvalidDevice = 101,
  cudaErrorNoDevice = 100,
  cudaErrorLaunchFailure = 719,
  cudaErrorIllegalState = 401,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};
enum cudaDeviceAttr { cudaDevAttrMemoryPoolsSupported = 115 };
struct CUstream_st;
struct CUevent_st;
struct CUmemPoolHandle_st;
typedef CUstream_st* cudaStream_t;
typedef CUevent_st* cudaEvent_t;
typedef CUmemPoolHandle_st* cudaMemPool_t;
typedef void (*cudaHostFn_t)(void*);
struct CUgraph_st;
struct CUgraphExec_st;
typedef CUgraph_st* cudaGraph_t;
typedef CUgraphExec_st* cudaGraphExec_t;
enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2
};
enum cudaStreamCaptureStatus {
  cudaStreamCaptureStatusNone = 0,
  cudaStreamCaptureStatusActive = 1,
  cudaStreamCaptureStatusInvalidated = 2
};
constexpr unsigned cudaHostAllocDefault = 0;
constexpr unsigned cudaEventDefault = 0, cudaEventBlockingSync = 1, cudaEventDisableTiming = 2;

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  int major, minor;
  int multiProcessorCount;
  int warpSize;
  int maxThreadsPerBlock;
  size_t sharedMemPerBlock;
};

cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaDriverGetVersion(int* v);
cudaError_t cudaRuntimeGetVersion(int* v);
cudaError_t cudaGetDevice(int* d);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int d);
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr attr, int d);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t e);
const char* cudaGetErrorName(cudaError_t e);
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);

cudaError_t cudaMalloc(void** p, size_t bytes);
cudaError_t cudaFree(void* p);
cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t s);
cudaError_t cudaFreeAsync(void* p, cudaStream_t s);
cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned flags);
cudaError_t cudaMallocHost(void** p, size_t bytes);
cudaError_t cudaFreeHost(void* p);
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int d);
cudaError_t cudaMemPoolTrimTo(cudaMemPool_t pool, size_t keep);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t s = nullptr);
cudaError_t cudaMemset(void* p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s = nullptr);

cudaError_t cudaStreamCreate(cudaStream_t* s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaLaunchHostFunc(cudaStream_t s, cudaHostFn_t fn, void* data);
cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned flags);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
// The stream's later work waits until the event's last record (as of this call) has run; an event
// never recorded is complete.
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags = 0);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaEventDestroy(cudaEvent_t e);

// Graphs: work posted to a capturing stream becomes the graph's nodes (kernels keep their
// arguments, cudaMallocAsync memory becomes the graph's); a launch replays them in order. Calls
// that could synchronize, made by the capturing thread, void the capture (as ThreadLocal mode).
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* status);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph,
                                 unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);

// ---- kernel launches ----
namespace ck_emu {

// Checks the configuration (as the driver would: a bad one sets the error cudaGetLastError
// reports) and enqueues the grid on the stream; `body` runs once per thread of every block, then
// `destroy` frees ctx.
void enqueue_grid(dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t s, void (*body)(void*),
                  void* ctx, void (*destroy)(void*));

template <class... P>
struct Launch {
  void (*kernel)(P...);
  dim3 grid, block;
  size_t shared_bytes;
  cudaStream_t stream;

  template <class... A>
  void operator()(A&&... args) const {
    // Converted once to the parameter types; each thread gets its own copies (by-value parameters).
    struct Ctx {
      void (*kernel)(P...);
      std::tuple<std::decay_t<P>...> args;
    };
    auto* ctx = new Ctx{kernel, std::tuple<std::decay_t<P>...>(std::forward<A>(args)...)};
    enqueue_grid(
        grid, block, shared_bytes, stream,
        [](void* c) {
          Ctx* x = static_cast<Ctx*>(c);
          std::apply(x->kernel, x->args);
        },
        ctx, [](void* c) { delete static_cast<Ctx*>(c); });
  }
};

template <class... P>
Launch<P...> launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t shared_bytes = 0,
                    cudaStream_t s = nullptr) {
  return Launch<P...>{kernel, grid, block, shared_bytes, s};
}

}  // namespace ck_emu
