// PLACEHOLDER: to be replaced by the real kernels.
#include "simd_kernels.h"

#include "../errors.h"

namespace ck {
namespace CK_ISA_NS {
void maxpool2d_fwd(float* y, const float* x, const PoolParams& p) {
  throw_error(ErrorKind::Value, "not implemented");
}
void maxpool2d_bwd(float* dx, const float* dy, const float* x, const PoolParams& p) {
  throw_error(ErrorKind::Value, "not implemented");
}
void avgpool2d_fwd(float* y, const float* x, const PoolParams& p) {
  throw_error(ErrorKind::Value, "not implemented");
}
void avgpool2d_bwd(float* dx, const float* dy, const PoolParams& p) {
  throw_error(ErrorKind::Value, "not implemented");
}
void global_avgpool_fwd(float* y, const float* x, int N, int HW, int C) {
  throw_error(ErrorKind::Value, "not implemented");
}
void global_avgpool_bwd(float* dx, const float* dy, int N, int HW, int C) {
  throw_error(ErrorKind::Value, "not implemented");
}
void global_maxpool_fwd(float* y, const float* x, int N, int HW, int C) {
  throw_error(ErrorKind::Value, "not implemented");
}
void global_maxpool_bwd(float* dx, const float* dy, const float* x, int N, int HW, int C) {
  throw_error(ErrorKind::Value, "not implemented");
}
}
}  // namespace ck
