// PLACEHOLDER: to be replaced by the real kernels.
#include "reference.h"

#include "../errors.h"

namespace ck {
namespace ref {
void activation_fwd(float* y, const float* x, size_t n, Act act, float alpha) {
  throw_error(ErrorKind::Value, "not implemented");
}
void activation_bwd(float* dx, const float* dy, const float* y, size_t n, Act act, float alpha) {
  throw_error(ErrorKind::Value, "not implemented");
}
void softmax_fwd(float* y, const float* x, size_t rows, size_t cols) {
  throw_error(ErrorKind::Value, "not implemented");
}
void softmax_bwd(float* dx, const float* dy, const float* y, size_t rows, size_t cols) {
  throw_error(ErrorKind::Value, "not implemented");
}
void dropout_fwd(float* y, float* mask, const float* x, size_t n, float rate, uint64_t seed) {
  throw_error(ErrorKind::Value, "not implemented");
}
void mul(float* y, const float* a, const float* b, size_t n) {
  throw_error(ErrorKind::Value, "not implemented");
}
}
}  // namespace ck
