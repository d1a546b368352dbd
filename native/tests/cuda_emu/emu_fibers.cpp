// convkit's CUDA emulator (see include/cuda_runtime.h): the block scheduler. One fiber per CUDA
// thread of a block, switched at barriers and warp shuffles; blocks run one after another.
#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "emu_internal.h"

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

void warp_sync() {
  if (!g_current) fail("__syncwarp outside a kernel");
  wait(g_run.warps[g_current->warp]);
}

const uint64_t* warp_publish(uint64_t bits) {
  if (!g_current) fail("a warp-wide operation outside a kernel");
  Fiber* f = g_current;
  g_run.lanes[f->warp][f->lane] = bits;
  wait(g_run.warps[f->warp]);
  return g_run.lanes[f->warp].data();
}

unsigned lane_id() {
  if (!g_current) fail("a lane id read outside a kernel");
  return g_current->lane;
}

unsigned warp_lanes() {
  if (!g_current) fail("a warp size read outside a kernel");
  return std::min(32u, g_run.count - g_current->warp * 32);
}

void run_grid(dim3 grid, dim3 block, void (*body)(void*), void* ctx) {
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
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

}  // namespace ck_emu
