// Declarations of the CUDA kernel entry points, one set per .cu file (table.cu assembles the
// table from them in CudaKernels's member order). Host-only: no CUDA types.
#pragma once
#include "cuda_kernels.h"

namespace ck {
namespace cuda {

// conv2d.cu
void conv2d_fwd(float* y, const float* x, const float* w, const float* b, const ConvParams& p,
                Act act, void* stream);
void conv2d_bwd_data(float* dx, const float* dy, const float* w, const ConvParams& p,
                     void* stream);
void conv2d_bwd_filter(float* dw, float* db, const float* dy, const float* x, const ConvParams& p,
                       void* stream);
// dense.cu
void dense_fwd(float* y, const float* x, const float* w, const float* b, int M, int K, int N,
               Act act, void* stream);
void dense_bwd_data(float* dx, const float* dy, const float* w, int M, int K, int N,
                    void* stream);
void dense_bwd_filter(float* dw, float* db, const float* dy, const float* x, int M, int K, int N,
                      void* stream);
// pool.cu
void maxpool2d_fwd(float* y, const float* x, const PoolParams& p, void* stream);
void maxpool2d_bwd(float* dx, const float* dy, const float* x, const PoolParams& p, bool relu_x,
                   void* stream);
void avgpool2d_fwd(float* y, const float* x, const PoolParams& p, void* stream);
void avgpool2d_bwd(float* dx, const float* dy, const PoolParams& p, void* stream);
void global_avgpool_fwd(float* y, const float* x, int N, int HW, int C, void* stream);
void global_avgpool_bwd(float* dx, const float* dy, int N, int HW, int C, void* stream);
void global_maxpool_fwd(float* y, const float* x, int N, int HW, int C, void* stream);
void global_maxpool_bwd(float* dx, const float* dy, const float* x, int N, int HW, int C,
                        void* stream);
// activation.cu
void activation_fwd(float* y, const float* x, size_t n, Act act, float alpha, void* stream);
void activation_bwd(float* dx, const float* dy, const float* y, size_t n, Act act, float alpha,
                    void* stream);
void softmax_fwd(float* y, const float* x, size_t rows, size_t cols, void* stream);
void softmax_bwd(float* dx, const float* dy, const float* y, size_t rows, size_t cols,
                 void* stream);
void dropout_fwd(float* y, float* mask, const float* x, size_t n, float rate, uint64_t seed,
                 void* stream);
void mul(float* y, const float* a, const float* b, size_t n, void* stream);
void add(float* y, const float* a, const float* b, size_t n, void* stream);
void accumulate(float* y, const float* x, size_t n, void* stream);
void scale(float* y, const float* x, float s, size_t n, void* stream);
// batchnorm.cu
void batchnorm_fwd_train(float* y, float* save_mean, float* save_invstd, float* running_mean,
                         float* running_var, const float* x, const float* gamma, const float* beta,
                         size_t rows, int C, float eps, float momentum, Act act, void* stream);
void batchnorm_fwd_infer(float* y, const float* x, const float* gamma, const float* beta,
                         const float* mean, const float* var, size_t rows, int C, float eps,
                         void* stream);
void batchnorm_bwd(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                   const float* save_mean, const float* save_invstd, const float* gamma,
                   size_t rows, int C, const float* y, Act act, void* stream);
// loss.cu
void softmax_xent(float* loss, float* dx, const float* logits, const float* target, size_t rows,
                  size_t cols, LabelMode mode, float grad_scale, void* stream);
void binary_xent(float* loss, float* dx, const float* input, const float* target, size_t rows,
                 size_t cols, bool from_logits, float grad_scale, void* stream);
void mse(float* loss, float* dx, const float* y, const float* target, size_t rows, size_t cols,
         float grad_scale, void* stream);
void accuracy_count(uint64_t* count, const float* pred, const float* target, size_t rows,
                    size_t cols, LabelMode mode, float threshold, void* stream);
void sum_into(double* acc, const float* x, size_t n, void* stream);
void count_into(double* acc, const uint64_t* count, double divisor, void* stream);
// activation.cu / optimizer.cu: the per-step-value variants
void dropout_fwd_at(float* y, float* mask, const float* x, size_t n, float rate,
                    const uint64_t* step_seed, uint64_t layer, void* stream);
void adam_update_at(float* w, float* m, float* v, const float* g, size_t n, const AdamParams& p,
                    const float* alpha, void* stream);
// optimizer.cu
void sgd_update(float* w, float* velocity, const float* g, size_t n, const SgdParams& p,
                void* stream);
void adam_update(float* w, float* m, float* v, const float* g, size_t n, const AdamParams& p,
                 void* stream);
void rmsprop_update(float* w, float* ms, float* mom, float* mg, const float* g, size_t n,
                    const RmspropParams& p, void* stream);
// depthwise.cu
void depthwise_conv2d_fwd(float* y, const float* x, const float* w, const float* b,
                          const ConvParams& p, Act act, void* stream);
void depthwise_conv2d_bwd_data(float* dx, const float* dy, const float* w, const ConvParams& p,
                               void* stream);
void depthwise_conv2d_bwd_filter(float* dw, float* db, const float* dy, const float* x,
                                 const ConvParams& p, void* stream);
// grouped_conv2d.cu
void grouped_conv2d_fwd(float* y, const float* x, const float* w, const float* b,
                        const ConvParams& p, int groups, Act act, void* stream);
void grouped_conv2d_bwd_data(float* dx, const float* dy, const float* w, const ConvParams& p,
                             int groups, void* stream);
void grouped_conv2d_bwd_filter(float* dw, float* db, const float* dy, const float* x,
                               const ConvParams& p, int groups, void* stream);
// spatial.cu
void zero_pad2d_fwd(float* y, const float* x, const Pad2dParams& p, void* stream);
void zero_pad2d_bwd(float* dx, const float* dy, const Pad2dParams& p, void* stream);
void upsample2d_fwd(float* y, const float* x, const UpsampleParams& p, void* stream);
void upsample2d_bwd(float* dx, const float* dy, const UpsampleParams& p, void* stream);
void gather_rows(float* dst, const float* src, const int32_t* rows, size_t n, size_t row,
                 size_t src_rows, void* stream);
void concat_last(float* y, const float* const* parts, const int* widths, int count, size_t rows,
                 void* stream);
void split_last(float* const* parts, const float* y, const int* widths, int count, size_t rows,
                void* stream);
// dst[i, dst_offset + j] = src[i, src_offset + j] for rows i < rows and columns j < width of the
// row-major arrays dst [rows, dst_cols] and src [rows, src_cols] (grouped_conv2d.cu's gathers).
void copy_columns(float* dst, int dst_cols, int dst_offset, const float* src, int src_cols,
                  int src_offset, size_t rows, int width, void* stream, const char* op);
// pool.cu
void lppool2d_fwd(float* y, const float* x, const PoolParams& p, float norm, void* stream);
void lppool2d_bwd(float* dx, const float* dy, const float* x, const float* y, const PoolParams& p,
                  float norm, void* stream);

}  // namespace cuda
}  // namespace ck
