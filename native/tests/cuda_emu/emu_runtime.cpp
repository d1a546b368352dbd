// convkit's CUDA emulator (see include/cuda_runtime.h): the block scheduler (one fiber per CUDA
// thread, switched at barriers) and the runtime API over host memory.
#include <sys/mman.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cuda_runtime.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define CK_EMU_ASAN 1
#else
#define CK_EMU_ASAN 0
#endif

namespace ck_emu {

// Saves the callee-saved registers and the FP control words on the current stack, stores the
// stack pointer in *save and continues on `load` (x86-64 System V). Unlike swapcontext it makes
// no system call (no signal mask), which keeps a barrier-heavy kernel fast to emulate.
extern "C" void ck_emu_switch(void** save, void* load);
asm(R"(
  .text
  .globl ck_emu_switch
  .type ck_emu_switch, @function
ck_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size ck_emu_switch, .-ck_emu_switch
)");

struct Fiber {
  void* sp = nullptr;  // saved stack pointer while switched out
  uint3 tid;
  unsigned warp = 0, lane = 0;
  bool done = false;
  char* stack = nullptr;  // kStackBytes, mapped once and reused by later blocks
};

// A barrier over the live threads of a block or a warp; threads that have exited no longer count.
struct Barrier {
  unsigned live = 0, arrived = 0, gen = 0;
};

namespace {

#if CK_EMU_ASAN
constexpr size_t kStackBytes = size_t(512) << 10;
#else
constexpr size_t kStackBytes = size_t(128) << 10;
#endif

struct BlockRun {
  std::vector<Fiber> fibers;  // grown to the largest block; reused
  unsigned count = 0;         // threads of the current block
  Barrier block;
  std::vector<Barrier> warps;
  std::vector<std::array<uint64_t, 32>> lanes;
  void* sched_sp = nullptr;
  uint64_t progress = 0;
  void (*body)(void*) = nullptr;
  void* ctx = nullptr;
  bool reverse = false;
#if CK_EMU_ASAN
  void* fake_stack = nullptr;
  const void* sched_bottom = nullptr;
  size_t sched_size = 0;
#endif
};

BlockRun g_run;
std::mutex g_launch_mutex;  // one grid at a time: __shared__ statics belong to the running block
cudaError_t g_last_error = cudaSuccess;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "cuda emulator: %s\n", what.c_str());
  std::abort();
}

void leave(Barrier& b) {
  --b.live;
  if (b.arrived > 0 && b.arrived == b.live) b.arrived = 0, ++b.gen;
}

void to_scheduler() {
  Fiber* f = g_current;
#if CK_EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, g_run.sched_bottom, g_run.sched_size);
  ck_emu_switch(&f->sp, g_run.sched_sp);
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
  ck_emu_switch(&f->sp, g_run.sched_sp);
#endif
}

void wait(Barrier& b) {
  ++g_run.progress;
  unsigned gen = b.gen;
  if (++b.arrived == b.live) {
    b.arrived = 0, ++b.gen;
    return;
  }
  while (b.gen == gen) to_scheduler();
}

// A fiber's first frame: entered by ck_emu_switch's `ret`; runs the thread, then hands back to
// the scheduler for good (its stack is reused by the next block).
[[noreturn]] void fiber_start() {
#if CK_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &g_run.sched_bottom, &g_run.sched_size);
#endif
  g_run.body(g_run.ctx);
  Fiber* f = g_current;
  f->done = true;
  leave(g_run.block);
  leave(g_run.warps[f->warp]);
  ++g_run.progress;
#if CK_EMU_ASAN
  __sanitizer_start_switch_fiber(nullptr, g_run.sched_bottom, g_run.sched_size);
#endif
  ck_emu_switch(&f->sp, g_run.sched_sp);
  fail("a finished fiber was resumed");
}

// The stack ck_emu_switch expects to find: FP control words, six saved registers (zero), and
// fiber_start as the return address, placed so that fiber_start sees a call-aligned stack.
void* initial_stack(char* stack) {
#if CK_EMU_ASAN
  // An abandoned frame of the last block can leave redzones poisoned.
  __asan_unpoison_memory_region(stack, kStackBytes);
#endif
  uintptr_t top = reinterpret_cast<uintptr_t>(stack + kStackBytes) & ~uintptr_t(15);
  uint64_t* sp = reinterpret_cast<uint64_t*>(top) - 2;  // [ret addr][pad]: ret leaves rsp = 8 mod 16
  sp[0] = reinterpret_cast<uint64_t>(&fiber_start);
  sp -= 6;
  for (int i = 0; i < 6; ++i) sp[i] = 0;
  sp -= 1;
  uint32_t mxcsr;
  uint16_t fpucw;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fpucw));
  std::memcpy(reinterpret_cast<char*>(sp), &mxcsr, 4);
  std::memcpy(reinterpret_cast<char*>(sp) + 4, &fpucw, 2);
  return sp;
}

void resume(Fiber& f) {
  g_current = &f;
#if CK_EMU_ASAN
  __sanitizer_start_switch_fiber(&g_run.fake_stack, f.stack, kStackBytes);
  ck_emu_switch(&g_run.sched_sp, f.sp);
  __sanitizer_finish_switch_fiber(g_run.fake_stack, nullptr, nullptr);
#else
  ck_emu_switch(&g_run.sched_sp, f.sp);
#endif
  g_current = nullptr;
}

void run_block(dim3 bdim) {
  BlockRun& r = g_run;
  const unsigned n = r.count;
  const unsigned nwarps = (n + 31) / 32;
  r.block = Barrier{n, 0, 0};
  r.warps.assign(nwarps, Barrier{});
  r.lanes.resize(nwarps);
  for (unsigned i = 0; i < n; ++i) {
    Fiber& f = r.fibers[i];
    f.tid = uint3{i % bdim.x, (i / bdim.x) % bdim.y, i / (bdim.x * bdim.y)};
    f.warp = i / 32, f.lane = i % 32;
    f.done = false;
    ++r.warps[f.warp].live;
    f.sp = initial_stack(f.stack);
  }
  unsigned finished = 0;
  while (finished < n) {
    uint64_t before = r.progress;
    finished = 0;
    for (unsigned k = 0; k < n; ++k) {
      Fiber& f = r.fibers[r.reverse ? n - 1 - k : k];
      if (!f.done) resume(f);
      finished += f.done ? 1 : 0;
    }
    if (finished < n && r.progress == before) {
      fail("deadlock in block (" + std::to_string(g_block_idx.x) + "," +
           std::to_string(g_block_idx.y) + "," + std::to_string(g_block_idx.z) +
           "): a __syncthreads or warp shuffle is not reached by every live thread");
    }
  }
}

}  // namespace

Fiber* g_current = nullptr;
uint3 g_block_idx{0, 0, 0};
dim3 g_block_dim, g_grid_dim;

const uint3& thread_idx() {
  if (!g_current) fail("threadIdx read outside a kernel");
  return g_current->tid;
}

void syncthreads() {
  if (!g_current) fail("__syncthreads outside a kernel");
  wait(g_run.block);
}

uint64_t warp_exchange(uint64_t bits, unsigned lane_arg, bool is_xor, unsigned) {
  if (!g_current) fail("warp shuffle outside a kernel");
  Fiber* f = g_current;
  auto& lanes = g_run.lanes[f->warp];
  lanes[f->lane] = bits;
  wait(g_run.warps[f->warp]);
  unsigned src = is_xor ? (f->lane ^ lane_arg) : (lane_arg & 31u);
  unsigned width = std::min(32u, g_run.count - f->warp * 32);
  uint64_t out = src < width ? lanes[src] : bits;
  wait(g_run.warps[f->warp]);
  return out;
}

void run_grid(dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t, void (*body)(void*),
              void* ctx) {
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  const bool bad = threads == 0 || threads > 1024 || block.x > 1024 || block.y > 1024 ||
                   block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
                   grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535;
  if (bad) {
    g_last_error = cudaErrorInvalidConfiguration;
    return;
  }
  if (shared_bytes != 0) fail("dynamic shared memory is not emulated");
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  BlockRun& r = g_run;
  if (r.fibers.size() < threads) {
    r.fibers.resize(threads);
    for (Fiber& f : r.fibers) {
      if (f.stack) continue;
      void* m = mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m == MAP_FAILED) fail("cannot map a fiber stack");
      f.stack = static_cast<char*>(m);
    }
  }
  const char* order = std::getenv("CK_EMU_ORDER");
  r.reverse = order && std::string(order) == "reverse";
  r.count = unsigned(threads);
  r.body = body, r.ctx = ctx;
  g_block_dim = block, g_grid_dim = grid;
  for (unsigned z = 0; z < grid.z; ++z) {
    for (unsigned y = 0; y < grid.y; ++y) {
      for (unsigned x = 0; x < grid.x; ++x) {
        g_block_idx = uint3{x, y, z};
        run_block(block);
      }
    }
  }
}

// ---- host functions: run in order on one callback thread, as the CUDA runtime does ----
namespace {

struct Callbacks {
  std::mutex m;
  std::condition_variable cv;
  std::deque<std::pair<cudaHostFn_t, void*>> queue;
  uint64_t enqueued = 0, completed = 0;
  std::thread worker;
  bool started = false;

  void start_locked() {
    if (started) return;
    started = true;
    worker = std::thread([this] {
      std::unique_lock<std::mutex> lock(m);
      for (;;) {
        cv.wait(lock, [this] { return !queue.empty(); });
        auto job = queue.front();
        queue.pop_front();
        lock.unlock();
        job.first(job.second);
        lock.lock();
        ++completed;
        cv.notify_all();
      }
    });
    worker.detach();  // lives for the process, like the CUDA runtime's callback thread
  }
  uint64_t post(cudaHostFn_t fn, void* data) {
    std::lock_guard<std::mutex> lock(m);
    start_locked();
    queue.emplace_back(fn, data);
    cv.notify_all();
    return ++enqueued;
  }
  uint64_t mark() {
    std::lock_guard<std::mutex> lock(m);
    return enqueued;
  }
  void wait_for(uint64_t n) {
    if (std::this_thread::get_id() == worker.get_id()) return;  // a callback must not wait on itself
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return completed >= n; });
  }
};

Callbacks& callbacks() {
  static Callbacks* c = new Callbacks();  // never destroyed: the worker may outlive main
  return *c;
}

struct EmuEvent {
  uint64_t mark = 0;
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
  ck_emu::callbacks().wait_for(ck_emu::callbacks().mark());
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
cudaError_t cudaFreeAsync(void* p, cudaStream_t) { return cudaFree(p); }
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
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  if (bytes) std::memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t) {
  return cudaMemset(p, value, bytes);
}

cudaError_t cudaStreamCreate(cudaStream_t* s) {
  *s = reinterpret_cast<cudaStream_t>(new char(0));
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) { return cudaStreamCreate(s); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete reinterpret_cast<char*>(s);
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaDeviceSynchronize(); }
cudaError_t cudaLaunchHostFunc(cudaStream_t, cudaHostFn_t fn, void* data) {
  ck_emu::callbacks().post(fn, data);
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = reinterpret_cast<cudaEvent_t>(new ck_emu::EmuEvent());
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) { return cudaEventCreate(e); }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  reinterpret_cast<ck_emu::EmuEvent*>(e)->mark = ck_emu::callbacks().mark();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  ck_emu::callbacks().wait_for(reinterpret_cast<ck_emu::EmuEvent*>(e)->mark);
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
