// The kernel table of one vector ISA (this file is compiled once per ISA, see simd.h).
#include "simd.h"
#include "../kernels.h"

namespace ck {
namespace CK_ISA_NS {
#include "kernel_decls.inc"
}  // namespace CK_ISA_NS

const CpuKernels& CK_ISA_TABLE() {
#define CK_KERNEL_NS CK_ISA_NS
#define CK_KERNEL_ISA CK_ISA_ENUM
#include "kernel_table.inc"
#undef CK_KERNEL_NS
#undef CK_KERNEL_ISA
}

}  // namespace ck
