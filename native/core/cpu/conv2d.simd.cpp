// PLACEHOLDER: to be replaced by the real kernels.
#include "simd_kernels.h"

#include "../errors.h"

namespace ck {
namespace CK_ISA_NS {
void conv2d_fwd(float* y, const float* x, const float* w, const float* b, const ConvParams& p, Act act) {
  throw_error(ErrorKind::Value, "not implemented");
}
void conv2d_bwd_data(float* dx, const float* dy, const float* w, const ConvParams& p) {
  throw_error(ErrorKind::Value, "not implemented");
}
void conv2d_bwd_filter(float* dw, float* db, const float* dy, const float* x, const ConvParams& p) {
  throw_error(ErrorKind::Value, "not implemented");
}
}
}  // namespace ck
