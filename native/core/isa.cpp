// Picks the kernel table at load: the best ISA cpuid reports (and the OS saves the registers
// of), unless CONVKIT_ISA names another.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "errors.h"
#include "kernels.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace ck {
namespace {

#if defined(__x86_64__)
uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t(edx) << 32) | eax;
}
#endif

Isa probe_isa() {
#if defined(__x86_64__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::Scalar;
  bool osxsave = c & (1u << 27), fma = c & (1u << 12), avx = c & (1u << 28);
  if (!osxsave || !avx || !fma) return Isa::Scalar;
  uint64_t xcr0 = xgetbv0();
  bool ymm_saved = (xcr0 & 0x6) == 0x6, zmm_saved = (xcr0 & 0xe6) == 0xe6;
  if (!ymm_saved || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return Isa::Scalar;
  bool avx2 = b & (1u << 5);
  bool avx512 = (b & (1u << 16)) && (b & (1u << 17)) && (b & (1u << 30)) && (b & (1u << 31));
  if (avx512 && zmm_saved) return Isa::Avx512;  // F, DQ, BW, VL
  return avx2 ? Isa::Avx2 : Isa::Scalar;
#else
  return Isa::Scalar;
#endif
}

Isa parse_isa(const char* name) {
  if (!std::strcmp(name, "scalar")) return Isa::Scalar;
  if (!std::strcmp(name, "avx2")) return Isa::Avx2;
  if (!std::strcmp(name, "avx512")) return Isa::Avx512;
  throw_error(ErrorKind::Value, std::string("CONVKIT_ISA: unknown ISA '") + name +
                                    "' (expected scalar, avx2 or avx512)");
}

Isa initial_isa() {
  Isa best = detect_isa();
  const char* env = std::getenv("CONVKIT_ISA");
  if (!env || !*env) return best;
  Isa wanted = parse_isa(env);
  if (int(wanted) > int(best)) {
    throw_error(ErrorKind::Device, std::string("CONVKIT_ISA=") + env +
                                       ": this CPU supports at most " + isa_name(best));
  }
  return wanted;
}

std::atomic<const CpuKernels*> g_active{nullptr};

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "scalar";
  }
}

Isa detect_isa() {
  static const Isa isa = probe_isa();
  return isa;
}

const CpuKernels& cpu_kernels(Isa isa) {
  if (int(isa) > int(detect_isa())) {
    throw_error(ErrorKind::Device, std::string("this CPU cannot run the ") + isa_name(isa) +
                                       " kernels (best: " + isa_name(detect_isa()) + ")");
  }
  switch (isa) {
    case Isa::Avx512: return avx512_kernels();
    case Isa::Avx2: return avx2_kernels();
    default: return scalar_kernels();
  }
}

const CpuKernels& cpu_kernels() {
  const CpuKernels* k = g_active.load(std::memory_order_acquire);
  if (!k) {
    k = &cpu_kernels(initial_isa());
    g_active.store(k, std::memory_order_release);
  }
  return *k;
}

void set_isa(Isa isa) { g_active.store(&cpu_kernels(isa), std::memory_order_release); }

}  // namespace ck
