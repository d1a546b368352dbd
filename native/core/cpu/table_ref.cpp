#include "reference.h"

namespace ck {

const CpuKernels& scalar_kernels() {
#define CK_KERNEL_NS ref
  static const CpuKernels table = {Isa::Scalar,
#include "kernel_table.inc"
  };
#undef CK_KERNEL_NS
  return table;
}

}  // namespace ck
