// Scalar reference of the preprocessing layers' kernels (Keras Rescaling and Normalization):
//
//   rescale: y = fma(x, scale, offset)   (x * scale + offset, rounded once)
//   normalize_channels: y[r, c] = (x[r, c] - mean[c]) / max(sqrt(var[c]), 1e-7)   (mean null: 0)
#include <algorithm>
#include <cmath>

#include "reference.h"

namespace ck {
namespace ref {

// Keras's backend.epsilon(), the smallest deviation Normalization divides by.
constexpr float kNormalizationEpsilon = 1e-7f;

void rescale(float* y, const float* x, size_t n, float scale, float offset) {
  for (size_t i = 0; i < n; ++i) y[i] = std::fma(x[i], scale, offset);
}

void normalize_channels(float* y, const float* x, const float* mean, const float* var, size_t rows, int C) {
  for (size_t r = 0; r < rows; ++r) {
    for (int c = 0; c < C; ++c) {
      const size_t i = r * size_t(C) + size_t(c);
      const float deviation = std::max(std::sqrt(var[c]), kNormalizationEpsilon);
      y[i] = (x[i] - (mean ? mean[c] : 0.f)) / deviation;
    }
  }
}

}  // namespace ref
}  // namespace ck
