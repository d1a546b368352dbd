// Picks the kernel table at load: the best ISA this CPU has (on x86-64, among those the OS saves
// the registers of), unless CONVKIT_ISA names another. The vector tables a build has depend on
// its target architecture (native/sources.json's "isa_units"): x86-64 avx2 and avx512, aarch64
// neon, any other architecture the scalar reference only.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "errors.h"
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#define CK_ARCH_X64 1
#if defined(_MSC_VER) && !defined(__clang__)
#include <immintrin.h>
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#elif defined(__aarch64__) || defined(_M_ARM64)
#define CK_ARCH_ARM64 1
#if defined(__linux__)
#include <sys/auxv.h>
#endif
#endif

// convkit builds for 64-bit little-endian targets only (docs/platforms.md): sizes and offsets of
// tensors are 64-bit (a tensor may pass 4 GB), weights files are read and written in the host's
// byte order (lib/io; TensorFlow.js's format is little-endian), and the NEON lane permutation
// addresses the bytes of a lane in little-endian order (cpu/simd.h).
static_assert(sizeof(void*) == 8 && sizeof(size_t) == 8, "convkit needs a 64-bit target");
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "convkit needs a little-endian target"
#endif

namespace ck {
namespace {

#if defined(CK_ARCH_X64)
// cpuid leaf `leaf`, subleaf `sub`: {eax, ebx, ecx, edx}; false if the CPU has no such leaf.
bool cpuid(unsigned leaf, unsigned sub, unsigned (&r)[4]) {
#if defined(_MSC_VER) && !defined(__clang__)
  int max[4], out[4];
  __cpuid(max, 0);
  if (unsigned(max[0]) < leaf) return false;
  __cpuidex(out, int(leaf), int(sub));
  for (int i = 0; i < 4; ++i) r[i] = unsigned(out[i]);
  return true;
#else
  return __get_cpuid_count(leaf, sub, &r[0], &r[1], &r[2], &r[3]) != 0;
#endif
}

uint64_t xgetbv0() {
#if defined(_MSC_VER) && !defined(__clang__)
  return _xgetbv(0);
#else
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t(edx) << 32) | eax;
#endif
}

Isa probe_isa() {
  unsigned r[4];
  if (!cpuid(1, 0, r)) return Isa::Scalar;
  const unsigned c = r[2];
  bool osxsave = c & (1u << 27), fma = c & (1u << 12), avx = c & (1u << 28);
  if (!osxsave || !avx || !fma) return Isa::Scalar;
  uint64_t xcr0 = xgetbv0();
  bool ymm_saved = (xcr0 & 0x6) == 0x6, zmm_saved = (xcr0 & 0xe6) == 0xe6;
  if (!ymm_saved || !cpuid(7, 0, r)) return Isa::Scalar;
  const unsigned b = r[1];
  bool avx2 = b & (1u << 5);
  bool avx512 = (b & (1u << 16)) && (b & (1u << 17)) && (b & (1u << 30)) && (b & (1u << 31));
  if (avx512 && zmm_saved) return Isa::Avx512;  // F, DQ, BW, VL
  return avx2 ? Isa::Avx2 : Isa::Scalar;
}
#elif defined(CK_ARCH_ARM64)
Isa probe_isa() {
#if defined(__linux__)
  // Advanced SIMD is part of every ARMv8-A core Linux runs on; the kernel still reports it.
  constexpr unsigned long kHwcapAsimd = 1ul << 1;  // HWCAP_ASIMD, <asm/hwcap.h>
  return (getauxval(AT_HWCAP) & kHwcapAsimd) ? Isa::Neon : Isa::Scalar;
#else
  return Isa::Neon;  // Apple silicon and Windows on ARM require it
#endif
}
#else
Isa probe_isa() { return Isa::Scalar; }
#endif

// Whether a CPU whose best ISA is `best` runs the `isa` kernels of this build.
bool runs(Isa isa, Isa best) {
  if (isa == Isa::Scalar || isa == best) return true;
  return isa == Isa::Avx2 && best == Isa::Avx512;
}

// The kernel sets a CPU whose best ISA is `best` runs, for messages.
std::string runnable(Isa best) {
  switch (best) {
    case Isa::Avx512: return "avx512, avx2 and scalar";
    case Isa::Avx2: return "avx2 and scalar";
    case Isa::Neon: return "neon and scalar";
    default: return "scalar only";
  }
}

Isa parse_isa(const char* name) {
  if (!std::strcmp(name, "scalar")) return Isa::Scalar;
  if (!std::strcmp(name, "avx2")) return Isa::Avx2;
  if (!std::strcmp(name, "avx512")) return Isa::Avx512;
  if (!std::strcmp(name, "neon")) return Isa::Neon;
  throw_error(ErrorKind::Value, std::string("CONVKIT_ISA: unknown ISA '") + name +
                                    "' (expected scalar, avx2, avx512 or neon)");
}

Isa initial_isa() {
  Isa best = detect_isa();
  const char* env = std::getenv("CONVKIT_ISA");
  if (!env || !*env) return best;
  Isa wanted = parse_isa(env);
  if (!runs(wanted, best)) {
    throw_error(ErrorKind::Device,
                std::string("CONVKIT_ISA=") + env + ": this CPU runs " + runnable(best));
  }
  return wanted;
}

std::atomic<const CpuKernels*> g_active{nullptr};

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    case Isa::Neon: return "neon";
    default: return "scalar";
  }
}

Isa detect_isa() {
  static const Isa isa = probe_isa();
  return isa;
}

const CpuKernels& cpu_kernels(Isa isa) {
  if (!runs(isa, detect_isa())) {
    throw_error(ErrorKind::Device, std::string("this CPU cannot run the ") + isa_name(isa) +
                                       " kernels (best: " + isa_name(detect_isa()) + ")");
  }
  switch (isa) {
#if defined(CK_ARCH_X64)
    case Isa::Avx512: return avx512_kernels();
    case Isa::Avx2: return avx2_kernels();
#elif defined(CK_ARCH_ARM64)
    case Isa::Neon: return neon_kernels();
#endif
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
