// Scalar reference dense layer: x [M,K], w [K,N] (in, out), y [M,N] = act(x w + b).
#include <cstring>
#include <string>

#include "../errors.h"
#include "reference.h"

namespace ck {
namespace ref {

void dense_fwd(float* y, const float* x, const float* w, const float* b, int M, int K, int N,
               Act act) {
  if (!epilogue_act(act)) {
    throw_error(ErrorKind::Value, std::string("dense: the fused activation must be ") + kEpilogueActNames);
  }
  for (int m = 0; m < M; ++m) {
    float* out = y + size_t(m) * N;
    for (int j = 0; j < N; ++j) out[j] = 0.f;
    for (int k = 0; k < K; ++k) {
      float xv = x[size_t(m) * K + k];
      const float* wr = w + size_t(k) * N;
      for (int j = 0; j < N; ++j) out[j] += xv * wr[j];
    }
    for (int j = 0; j < N; ++j) out[j] += b ? b[j] : 0.f;
    activation_fwd(out, out, size_t(N), act, 0.f);
  }
}

// dx [M,K] = dy [M,N] w^T.
void dense_bwd_data(float* dx, const float* dy, const float* w, int M, int K, int N) {
  for (int m = 0; m < M; ++m) {
    const float* g = dy + size_t(m) * N;
    for (int k = 0; k < K; ++k) {
      const float* wr = w + size_t(k) * N;
      float sum = 0.f;
      for (int j = 0; j < N; ++j) sum += g[j] * wr[j];
      dx[size_t(m) * K + k] = sum;
    }
  }
}

// dw [K,N] = x^T dy (overwrites); db [N] = column sums of dy.
void dense_bwd_filter(float* dw, float* db, const float* dy, const float* x, int M, int K,
                      int N) {
  std::memset(dw, 0, size_t(K) * N * sizeof(float));
  if (db) std::memset(db, 0, size_t(N) * sizeof(float));
  for (int m = 0; m < M; ++m) {
    const float* g = dy + size_t(m) * N;
    for (int k = 0; k < K; ++k) {
      float xv = x[size_t(m) * K + k];
      float* dwr = dw + size_t(k) * N;
      for (int j = 0; j < N; ++j) dwr[j] += xv * g[j];
    }
    if (db) {
      for (int j = 0; j < N; ++j) db[j] += g[j];
    }
  }
}

}  // namespace ref
}  // namespace ck
