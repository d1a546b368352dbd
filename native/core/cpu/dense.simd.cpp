// PLACEHOLDER: to be replaced by the real kernels.
#include "simd_kernels.h"

#include "../errors.h"

namespace ck {
namespace CK_ISA_NS {
void dense_fwd(float* y, const float* x, const float* w, const float* b, int M, int K, int N, Act act) {
  throw_error(ErrorKind::Value, "not implemented");
}
void dense_bwd_data(float* dx, const float* dy, const float* w, int M, int K, int N) {
  throw_error(ErrorKind::Value, "not implemented");
}
void dense_bwd_filter(float* dw, float* db, const float* dy, const float* x, int M, int K, int N) {
  throw_error(ErrorKind::Value, "not implemented");
}
}
}  // namespace ck
