// Per-channel bias over channels-last rows [rows, C] (the transposed convolution's epilogue):
// one thread per cell adds b[c] and clamps as EpilogueClamp does (a smooth act follows, as
// activation_fwd); the gradient is the column
// sums of dy (reduce.cu's fixed-order reduction).
#include <string>

#include "cuda_common.cuh"
#include "gemm.cuh"
#include "internal.h"

namespace ck {
namespace cuda {

namespace {

template <class I>
__global__ void bias_act_kernel(float* y, const float* b, int C, int relu, int relu6, I total) {
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += I(gridDim.x) * blockDim.x) {
    float v = y[i] + (b ? __ldg(b + i % I(C)) : 0.f);
    if (relu && !(v > 0.f)) v = 0.f;
    if (relu6 && v > 6.f) v = 6.f;
    y[i] = v;
  }
}

}  // namespace

bool epilogue_relu(Act act, const char* op) {
  if (!epilogue_act(act)) {
    throw_error(ErrorKind::Value, std::string(op) + ": the fused activation must be " + kEpilogueActNames);
  }
  return act == Act::Relu;
}

void epilogue_rest(float* y, size_t n, Act act, void* stream) {
  if (act != Act::None && act != Act::Relu) activation_fwd(y, y, n, act, 0.f, stream);
}

void bias_act_fwd(float* y, const float* b, size_t rows, int C, Act act, void* stream) {
  const char* op = "biasAct";
  epilogue_relu(act, op);
  if (C <= 0) return;
  const EpilogueClamp clamp(act);
  const int relu = clamp.relu ? 1 : 0, relu6 = clamp.relu6 ? 1 : 0;
  const size_t n = rows * size_t(C);
  launch_cells(n, n, op, [&](auto total, unsigned grid) {
    bias_act_kernel<decltype(total)><<<grid, 256, 0, as_stream(stream)>>>(y, b, C, relu, relu6, total);
  });
  if (clamp.smooth) activation_fwd(y, y, n, act, 0.f, stream);
}

void bias_grad(float* db, const float* dy, size_t rows, int C, void* stream) {
  if (C <= 0) return;
  column_sums(db, dy, 1, rows, C, 1.f, as_stream(stream), "biasGrad");
}

}  // namespace cuda
}  // namespace ck
