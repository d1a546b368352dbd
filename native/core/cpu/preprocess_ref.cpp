// Scalar reference of the preprocessing layers' kernels (Keras Rescaling):
//
//   rescale: y = fma(x, scale, offset)   (x * scale + offset, rounded once)
#include <cmath>

#include "reference.h"

namespace ck {
namespace ref {

void rescale(float* y, const float* x, size_t n, float scale, float offset) {
  for (size_t i = 0; i < n; ++i) y[i] = std::fma(x[i], scale, offset);
}

}  // namespace ref
}  // namespace ck
