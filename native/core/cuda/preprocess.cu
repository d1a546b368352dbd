// The preprocessing layers' kernels (Keras Rescaling), one thread per value in a grid-stride
// loop, with the CPU's rounding: rescale is one fused multiply-add.
#include "cuda_common.cuh"
#include "internal.h"

namespace ck {
namespace cuda {

namespace {

__global__ void rescale_kernel(float* y, const float* x, size_t n, float scale, float offset) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    y[i] = fmaf(x[i], scale, offset);
  }
}

}  // namespace

void rescale(float* y, const float* x, size_t n, float scale, float offset, void* stream) {
  if (n == 0) return;
  rescale_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(y, x, n, scale, offset);
  check_launch("rescale");
}

}  // namespace cuda
}  // namespace ck

