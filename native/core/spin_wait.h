// Spinning before sleeping: a thread that will likely be handed work within microseconds (the
// next op of a step, the next batch of a predict loop) polls for it first, because a futex
// sleep and wake-up costs tens of microseconds on a VM, more than a small layer takes to run.
// The spin is bounded in time and yields the core every ~1.5 us, so an oversubscribed machine
// (jest workers, a second model's stream) still makes progress.
#pragma once
#include <chrono>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace ck {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

// Polls ready() for up to `budget`; true as soon as it holds, false when the budget is spent.
template <class Ready>
bool spin_until(Ready&& ready, std::chrono::microseconds budget) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + budget;
  for (;;) {
    for (int i = 0; i < 64; ++i) {  // ~1.5 us of pause instructions
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
