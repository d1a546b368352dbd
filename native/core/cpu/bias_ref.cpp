// Scalar reference of the per-channel bias over channels-last rows [rows, C], the epilogue of the
// transposed convolution (whose sums conv2d_bwd_data makes):
//
//   bias_act_fwd: y[r, c] = act(y[r, c] + b[c])   (b may be null; an epilogue_act, as activation_fwd applies it)
//   bias_grad:    db[c] = sum over r of dy[r, c], added in row order
#include <string>

#include "../errors.h"
#include "reference.h"

namespace ck {
namespace ref {

void bias_act_fwd(float* y, const float* b, size_t rows, int C, Act act) {
  if (!epilogue_act(act)) {
    throw_error(ErrorKind::Value, std::string("biasAct: the fused activation must be ") + kEpilogueActNames);
  }
  for (size_t r = 0; r < rows; ++r) {
    float* row = y + r * size_t(C);
    for (int c = 0; c < C; ++c) row[c] += b ? b[c] : 0.f;
    activation_fwd(row, row, size_t(C), act, 0.f);
  }
}

void bias_grad(float* db, const float* dy, size_t rows, int C) {
  for (int c = 0; c < C; ++c) db[c] = 0.f;
  for (size_t r = 0; r < rows; ++r) {
    for (int c = 0; c < C; ++c) db[c] += dy[r * size_t(C) + size_t(c)];
  }
}

}  // namespace ref
}  // namespace ck
