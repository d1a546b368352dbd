// PLACEHOLDER: to be replaced by the real kernels.
#include "simd_kernels.h"

#include "../errors.h"

namespace ck {
namespace CK_ISA_NS {
void softmax_xent(float* loss, float* dx, const float* logits, const float* target, size_t rows,
                  size_t cols, LabelMode mode, float grad_scale) {
  throw_error(ErrorKind::Value, "not implemented");
}
void binary_xent(float* loss, float* dx, const float* input, const float* target, size_t rows,
                 size_t cols, bool from_logits, float grad_scale) {
  throw_error(ErrorKind::Value, "not implemented");
}
void mse(float* loss, float* dx, const float* y, const float* target, size_t rows, size_t cols,
         float grad_scale) {
  throw_error(ErrorKind::Value, "not implemented");
}
size_t accuracy_count(const float* pred, const float* target, size_t rows, size_t cols,
                      LabelMode mode, float threshold) {
  throw_error(ErrorKind::Value, "not implemented");
}
}
}  // namespace ck
