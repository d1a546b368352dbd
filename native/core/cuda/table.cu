// The CUDA kernel table, filled entry by entry by name from kernel_list.inc.
#include "internal.h"

namespace ck {

const CudaKernels& cuda_kernels() {
  static const CudaKernels table = [] {
    CudaKernels t{};
#define CK_KERNEL(name, params) t.name = cuda::name;
#define CK_DEVICE_KERNEL(name, params) t.name = cuda::name;
#include "../kernel_list.inc"
    return t;
  }();
  return table;
}

}  // namespace ck
