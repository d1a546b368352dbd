#include "reference.h"

namespace ck {

const CpuKernels& scalar_kernels() {
#define CK_KERNEL_NS ref
#define CK_KERNEL_ISA Isa::Scalar
#include "kernel_table.inc"
#undef CK_KERNEL_NS
#undef CK_KERNEL_ISA
}

}  // namespace ck
