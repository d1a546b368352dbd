// PLACEHOLDER: to be replaced by the real kernels.
#include "reference.h"

#include "../errors.h"

namespace ck {
namespace ref {
void sgd_update(float* w, float* velocity, const float* g, size_t n, const SgdParams& p) {
  throw_error(ErrorKind::Value, "not implemented");
}
void adam_update(float* w, float* m, float* v, const float* g, size_t n, const AdamParams& p) {
  throw_error(ErrorKind::Value, "not implemented");
}
void rmsprop_update(float* w, float* ms, float* mom, float* mg, const float* g, size_t n,
                    const RmspropParams& p) {
  throw_error(ErrorKind::Value, "not implemented");
}
}
}  // namespace ck
