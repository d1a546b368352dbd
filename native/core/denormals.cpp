#include "denormals.h"

#include <cstdint>

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

namespace ck {

// The same rule on every architecture, so that results agree across them (a sigmoid's tail is
// 0, not a denormal): x86's flush-to-zero and denormals-are-zero in MXCSR, aarch64's FPCR.FZ,
// which flushes both the inputs and the results of float arithmetic, scalar and NEON.
void enable_flush_denormals() {
#if defined(__x86_64__) || defined(_M_X64)
  constexpr unsigned kFlushToZero = 0x8000;
  constexpr unsigned kDenormalsAreZero = 0x0040;
  _mm_setcsr(_mm_getcsr() | kFlushToZero | kDenormalsAreZero);
#elif defined(__aarch64__)
  constexpr uint64_t kFlushToZero = uint64_t(1) << 24;  // FPCR.FZ
  uint64_t fpcr;
  __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
  __asm__ __volatile__("msr fpcr, %0" : : "r"(fpcr | kFlushToZero));
#endif
}

}  // namespace ck
