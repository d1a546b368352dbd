// Spinning before sleeping: a thread that will likely be handed work within microseconds (the
// next op of a step, the next batch of a predict loop) polls for it first, because a futex
// sleep and wake-up costs tens of microseconds on a VM, more than a small layer takes to run.
// The spin is bounded in time and yields the core every ~1.5 us, so an oversubscribed machine
// (jest workers, a second model's stream) still makes progress.
#pragma once
#include <chrono>
#include <thread>

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
#include <immintrin.h>
#elif defined(_M_ARM64)
#include <intrin.h>
#endif

namespace ck {

// A spin-loop hint: lets the sibling hyperthread (x86 pause) or the core's other work (arm64
// yield) go first; elsewhere the loop only polls.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
  _mm_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#elif defined(_M_ARM64)
  __yield();
#endif
}

// Polls ready() for up to `budget`; true as soon as it holds, false when the budget is spent.
template <class Ready>
bool spin_until(Ready&& ready, std::chrono::microseconds budget) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + budget;
  for (;;) {
    for (int i = 0; i < 64; ++i) {  // ~1.5 us of x86 pause instructions
      if (ready()) return true;
      cpu_relax();
    }
    if (clock::now() >= deadline) return ready();
    // Every round: a thread woken meanwhile (the JS thread, whose promise just settled) gets the
    // core at once instead of waiting for the scheduler to preempt a spinner.
    std::this_thread::yield();
  }
}

}  // namespace ck
