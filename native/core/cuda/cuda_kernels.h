// The CUDA backend's kernel table: our own kernels (no cuBLAS / cuDNN), one entry per op of
// CpuKernels (kernels.h), with the same semantics and argument order, plus sum_into and
// count_into, which let the executor total losses and counts without leaving the device.
// Differences:
//   - every pointer is a device pointer;
//   - every entry takes a trailing `stream` (a cudaStream_t passed as void*, so that this header
//     needs no CUDA headers; nullptr is the legacy default stream);
//   - accuracy_count writes its count to a device scalar (first argument) instead of returning.
// Entries only enqueue work: they return before it runs. Launch errors and invalid arguments
// throw ck::Error (Device / Value); errors raised while a kernel runs surface at the next
// synchronization. Every result is deterministic: reductions run in a fixed order that depends
// on the shapes alone (no float atomics), so the same inputs give bitwise-identical outputs.
// Temporaries (split-K partials, per-chunk statistics) come from cudaMallocAsync on the stream.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../kernels.h"
#include "../params.h"

namespace ck {

struct CudaKernels {
  // ---- convolution: implicit GEMM over NHWC / HWIO ----
  void (*conv2d_fwd)(float* y, const float* x, const float* w, const float* b,
                     const ConvParams& p, Act act, void* stream);
  void (*conv2d_bwd_data)(float* dx, const float* dy, const float* w, const ConvParams& p,
                          void* stream);
  void (*conv2d_bwd_filter)(float* dw, float* db, const float* dy, const float* x,
                            const ConvParams& p, void* stream);

  // ---- dense: x [M,K], w [K,N], y [M,N] ----
  void (*dense_fwd)(float* y, const float* x, const float* w, const float* b, int M, int K, int N,
                    Act act, void* stream);
  void (*dense_bwd_data)(float* dx, const float* dy, const float* w, int M, int K, int N,
                         void* stream);
  void (*dense_bwd_filter)(float* dw, float* db, const float* dy, const float* x, int M, int K,
                           int N, void* stream);

  // ---- pooling ----
  void (*maxpool2d_fwd)(float* y, const float* x, const PoolParams& p, void* stream);
  void (*maxpool2d_bwd)(float* dx, const float* dy, const float* x, const PoolParams& p,
                        bool relu_x, void* stream);
  void (*avgpool2d_fwd)(float* y, const float* x, const PoolParams& p, void* stream);
  void (*avgpool2d_bwd)(float* dx, const float* dy, const PoolParams& p, void* stream);
  void (*global_avgpool_fwd)(float* y, const float* x, int N, int HW, int C, void* stream);
  void (*global_avgpool_bwd)(float* dx, const float* dy, int N, int HW, int C, void* stream);
  void (*global_maxpool_fwd)(float* y, const float* x, int N, int HW, int C, void* stream);
  void (*global_maxpool_bwd)(float* dx, const float* dy, const float* x, int N, int HW, int C,
                             void* stream);

  // ---- activations, softmax ----
  void (*activation_fwd)(float* y, const float* x, size_t n, Act act, float alpha, void* stream);
  void (*activation_bwd)(float* dx, const float* dy, const float* y, size_t n, Act act,
                         float alpha, void* stream);
  void (*softmax_fwd)(float* y, const float* x, size_t rows, size_t cols, void* stream);
  void (*softmax_bwd)(float* dx, const float* dy, const float* y, size_t rows, size_t cols,
                      void* stream);

  // ---- dropout (the same counter-based hash as the CPU: identical masks) ----
  void (*dropout_fwd)(float* y, float* mask, const float* x, size_t n, float rate, uint64_t seed,
                      void* stream);
  void (*mul)(float* y, const float* a, const float* b, size_t n, void* stream);

  // ---- batch normalization over the last axis: x [rows, C] ----
  void (*batchnorm_fwd_train)(float* y, float* save_mean, float* save_invstd, float* running_mean,
                              float* running_var, const float* x, const float* gamma,
                              const float* beta, size_t rows, int C, float eps, float momentum,
                              Act act, void* stream);
  void (*batchnorm_fwd_infer)(float* y, const float* x, const float* gamma, const float* beta,
                              const float* mean, const float* var, size_t rows, int C, float eps,
                              void* stream);
  void (*batchnorm_bwd)(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                        const float* save_mean, const float* save_invstd, const float* gamma,
                        size_t rows, int C, const float* y, Act act, void* stream);

  // ---- losses ----
  void (*softmax_xent)(float* loss, float* dx, const float* logits, const float* target,
                       size_t rows, size_t cols, LabelMode mode, float grad_scale, void* stream);
  void (*binary_xent)(float* loss, float* dx, const float* input, const float* target,
                      size_t rows, size_t cols, bool from_logits, float grad_scale, void* stream);
  void (*mse)(float* loss, float* dx, const float* y, const float* target, size_t rows,
              size_t cols, float grad_scale, void* stream);
  // *count (device) = the number of correct rows (overwritten, not accumulated).
  void (*accuracy_count)(uint64_t* count, const float* pred, const float* target, size_t rows,
                         size_t cols, LabelMode mode, float threshold, void* stream);

  // ---- optimizer updates over a flat parameter vector ----
  void (*sgd_update)(float* w, float* velocity, const float* g, size_t n, const SgdParams& p,
                     void* stream);
  void (*adam_update)(float* w, float* m, float* v, const float* g, size_t n, const AdamParams& p,
                      void* stream);
  void (*rmsprop_update)(float* w, float* ms, float* mom, float* mg, const float* g, size_t n,
                         const RmspropParams& p, void* stream);

  // ---- merges (y may be the same array as a or x) and the executor's device-side sums ----
  void (*add)(float* y, const float* a, const float* b, size_t n, void* stream);  // y = a + b
  void (*accumulate)(float* y, const float* x, size_t n, void* stream);            // y += x
  void (*scale)(float* y, const float* x, float s, size_t n, void* stream);        // y = x * s
  // *acc += the sum of x[0..n) (in double, in a fixed order); n == 0 adds nothing
  void (*sum_into)(double* acc, const float* x, size_t n, void* stream);
  // *acc += double(*count) / divisor
  void (*count_into)(double* acc, const uint64_t* count, double divisor, void* stream);

  // ---- per-step values read on the device (so that a captured CUDA graph replays each step's) ----
  // dropout_fwd with the mask seed dropout_layer_seed(*step_seed, layer) (cpu/dropout_hash.h).
  void (*dropout_fwd_at)(float* y, float* mask, const float* x, size_t n, float rate,
                         const uint64_t* step_seed, uint64_t layer, void* stream);
  // adam_update with the step size *alpha (adam_alpha of the step) instead of one from p.step.
  void (*adam_update_at)(float* w, float* m, float* v, const float* g, size_t n,
                         const AdamParams& p, const float* alpha, void* stream);

  // ---- the functional-model layers (CpuKernels's depthwise, grouped, spatial, Lp-pooling and
  // concatenation entries); concat_last / split_last take HOST arrays of device pointers ----
  void (*depthwise_conv2d_fwd)(float* y, const float* x, const float* w, const float* b,
                               const ConvParams& p, Act act, void* stream);
  void (*depthwise_conv2d_bwd_data)(float* dx, const float* dy, const float* w,
                                    const ConvParams& p, void* stream);
  void (*depthwise_conv2d_bwd_filter)(float* dw, float* db, const float* dy, const float* x,
                                      const ConvParams& p, void* stream);
  void (*grouped_conv2d_fwd)(float* y, const float* x, const float* w, const float* b,
                             const ConvParams& p, int groups, Act act, void* stream);
  void (*grouped_conv2d_bwd_data)(float* dx, const float* dy, const float* w, const ConvParams& p,
                                  int groups, void* stream);
  void (*grouped_conv2d_bwd_filter)(float* dw, float* db, const float* dy, const float* x,
                                    const ConvParams& p, int groups, void* stream);
  void (*zero_pad2d_fwd)(float* y, const float* x, const Pad2dParams& p, void* stream);
  void (*zero_pad2d_bwd)(float* dx, const float* dy, const Pad2dParams& p, void* stream);
  void (*upsample2d_fwd)(float* y, const float* x, const UpsampleParams& p, void* stream);
  void (*upsample2d_bwd)(float* dx, const float* dy, const UpsampleParams& p, void* stream);
  void (*lppool2d_fwd)(float* y, const float* x, const PoolParams& p, float norm, void* stream);
  void (*lppool2d_bwd)(float* dx, const float* dy, const float* x, const float* y,
                       const PoolParams& p, float norm, void* stream);
  void (*concat_last)(float* y, const float* const* parts, const int* widths, int count,
                      size_t rows, void* stream);
  void (*split_last)(float* const* parts, const float* y, const int* widths, int count,
                     size_t rows, void* stream);

  // ---- the executor's batch gather (CUDA inputs): dst row j = src row rows[j] (a device array
  // of n indices into src's src_rows rows of `row` floats) ----
  void (*gather_rows)(float* dst, const float* src, const int32_t* rows, size_t n, size_t row,
                      size_t src_rows, void* stream);
};

// The table (defined in cuda/table.cu). Needs no GPU to obtain; calling an entry does.
const CudaKernels& cuda_kernels();

}  // namespace ck
