// Dense layers as tiled GEMMs (gemm.cuh): x [M,K], w [K,N] (in, out), y [M,N].
//   forward      y  = act(x w + b)
//   data grad    dx = dy w^T
//   filter grad  dw = x^T dy (split-K over the batch, fixed-order sum), db = column sums of dy
#include "gemm_tc.cuh"
#include "internal.h"

namespace ck {
namespace cuda {

namespace {
void check_dense(int M, int K, int N, const char* op) {
  if (M < 0 || K < 0 || N < 0) {
    throw_error(ErrorKind::Value, std::string(op) + ": negative dimension");
  }
}
}  // namespace

void dense_fwd(float* y, const float* x, const float* w, const float* b, int M, int K, int N,
               Act act, void* stream) {
  const bool relu = epilogue_relu(act, "dense");
  check_dense(M, K, N, "dense");
  MatLoader<true> a{x, M, K, K, K % 4 == 0 && aligned16(x)};
  MatLoader<false> bl{w, N, K, N, N % 4 == 0 && aligned16(w)};
  gemm(a, bl, y, b, relu, M, N, K, as_stream(stream), "dense");
  epilogue_rest(y, size_t(M) * size_t(N), act, stream);
}

void dense_bwd_data(float* dx, const float* dy, const float* w, int M, int K, int N,
                    void* stream) {
  check_dense(M, K, N, "denseGrad (data)");
  MatLoader<true> a{dy, M, N, N, N % 4 == 0 && aligned16(dy)};
  MatLoader<true> bl{w, K, N, N, N % 4 == 0 && aligned16(w)};
  gemm(a, bl, dx, nullptr, false, M, K, N, as_stream(stream), "denseGrad (data)");
}

void dense_bwd_filter(float* dw, float* db, const float* dy, const float* x, int M, int K, int N,
                      void* stream) {
  check_dense(M, K, N, "denseGrad (filter)");
  if (db && N > 0) {
    column_sums(db, dy, 1, size_t(M), N, 1.f, as_stream(stream), "denseGrad (bias)");
  }
  MatLoader<false> a{x, K, M, K, K % 4 == 0 && aligned16(x)};
  MatLoader<false> bl{dy, N, M, N, N % 4 == 0 && aligned16(dy)};
  gemm(a, bl, dw, nullptr, false, K, N, M, as_stream(stream), "denseGrad (filter)");
}

}  // namespace cuda
}  // namespace ck
