// PLACEHOLDER: to be replaced by the real kernels.
#include "reference.h"

#include "../errors.h"

namespace ck {
namespace ref {
void batchnorm_fwd_train(float* y, float* save_mean, float* save_invstd, float* running_mean,
                         float* running_var, const float* x, const float* gamma, const float* beta,
                         size_t rows, int C, float eps, float momentum) {
  throw_error(ErrorKind::Value, "not implemented");
}
void batchnorm_fwd_infer(float* y, const float* x, const float* gamma, const float* beta,
                         const float* mean, const float* var, size_t rows, int C, float eps) {
  throw_error(ErrorKind::Value, "not implemented");
}
void batchnorm_bwd(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                   const float* save_mean, const float* save_invstd, const float* gamma,
                   size_t rows, int C) {
  throw_error(ErrorKind::Value, "not implemented");
}
}
}  // namespace ck
