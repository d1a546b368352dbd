// The preprocessing layers' kernels (Keras Rescaling and Normalization), one thread per value
// in a grid-stride loop, with the CPU's roundings: rescale one fused multiply-add, normalize a
// correctly rounded sqrt and divide.
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

// Keras's backend.epsilon(), the smallest deviation Normalization divides by.
constexpr float kNormalizationEpsilon = 1e-7f;

__global__ void normalize_channels_kernel(float* y, const float* x, const float* mean, const float* var, int C,
                                          size_t n) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const int c = int(i % size_t(C));
    y[i] = (x[i] - (mean ? mean[c] : 0.f)) / fmaxf(sqrtf(var[c]), kNormalizationEpsilon);
  }
}

}  // namespace

void rescale(float* y, const float* x, size_t n, float scale, float offset, void* stream) {
  if (n == 0) return;
  rescale_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(y, x, n, scale, offset);
  check_launch("rescale");
}

void normalize_channels(float* y, const float* x, const float* mean, const float* var, size_t rows, int C,
                        void* stream) {
  const size_t n = rows * size_t(C);
  if (n == 0) return;
  normalize_channels_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(y, x, mean, var, C, n);
  check_launch("normalizeChannels");
}

}  // namespace cuda
}  // namespace ck

