// The CPU backend's kernel table. Every op has a scalar reference (cpu/*_ref.cpp, plain loops)
// and vectorized variants compiled per ISA of the target architecture from cpu/*.simd.cpp; one
// table is chosen at load from what the CPU reports (or CONVKIT_ISA). Callers go through
// cpu_kernels(), never through an #ifdef.
// The kernels themselves, their arguments and contracts are listed once, in kernel_list.inc.
#pragma once
#include <cstddef>
#include <cstdint>

#include "params.h"

namespace ck {

// Avx2 and Avx512 exist in x86-64 builds, Neon in aarch64 builds; Scalar everywhere.
enum class Isa : int { Scalar = 0, Avx2 = 1, Avx512 = 2, Neon = 3 };
const char* isa_name(Isa isa);

// How a loss reads its targets: one row of probabilities (one-hot) per example, or one integer
// class id (stored as float) per example.
enum class LabelMode : int { Dense = 0, Sparse = 1 };

// One table per ISA, generated from kernel_list.inc (the one declaration of every kernel and
// its contract).
struct CpuKernels {
  Isa isa;
#define CK_KERNEL(name, params) void(*name) params;
#define CK_HOST_KERNEL(name, ret, params) ret(*name) params;
#include "kernel_list.inc"
};

// The table chosen at load (the CPU's best, overridable by CONVKIT_ISA=scalar|avx2|avx512|neon).
const CpuKernels& cpu_kernels();
// A specific table, for tests and benchmarks; throws if this CPU cannot run it.
const CpuKernels& cpu_kernels(Isa isa);
// The best ISA this CPU supports.
Isa detect_isa();
// Forces the table cpu_kernels() returns (tests); throws if the CPU lacks the ISA.
void set_isa(Isa isa);

// Per-ISA tables, each defined in its own translation unit (those of the build's architecture).
const CpuKernels& scalar_kernels();
const CpuKernels& avx2_kernels();
const CpuKernels& avx512_kernels();
const CpuKernels& neon_kernels();

}  // namespace ck
