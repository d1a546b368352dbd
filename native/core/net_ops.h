// The kernels a net's passes call, on the net's device (internal to the net*.cpp files). The
// passes are templates over the kernel set: the CPU table (CpuKernels) as it is, or CudaOps,
// the CUDA table with the net's stream and step scalars bound, whose members take the CPU
// table's arguments.
#pragma once
#include <string>
#include <type_traits>

#include "cuda/cuda_kernels.h"
#include "errors.h"
#include "kernels.h"
#include "net.h"

namespace ck {

struct CudaOps {
  const CudaKernels& t;
  void* s;
  // The step's scalars on the device (a captured graph replays each step's values).
  const uint64_t* step_seed;
  const float* adam_alpha;

  void conv2d_fwd(float* y, const float* x, const float* w, const float* b, const ConvParams& p,
                  Act act) const {
    t.conv2d_fwd(y, x, w, b, p, act, s);
  }
  void conv2d_bwd_data(float* dx, const float* dy, const float* w, const ConvParams& p) const {
    t.conv2d_bwd_data(dx, dy, w, p, s);
  }
  void conv2d_bwd_filter(float* dw, float* db, const float* dy, const float* x,
                         const ConvParams& p) const {
    t.conv2d_bwd_filter(dw, db, dy, x, p, s);
  }
  void depthwise_conv2d_fwd(float* y, const float* x, const float* w, const float* b,
                            const ConvParams& p, Act act) const {
    t.depthwise_conv2d_fwd(y, x, w, b, p, act, s);
  }
  void depthwise_conv2d_bwd_data(float* dx, const float* dy, const float* w,
                                 const ConvParams& p) const {
    t.depthwise_conv2d_bwd_data(dx, dy, w, p, s);
  }
  void depthwise_conv2d_bwd_filter(float* dw, float* db, const float* dy, const float* x,
                                   const ConvParams& p) const {
    t.depthwise_conv2d_bwd_filter(dw, db, dy, x, p, s);
  }
  void grouped_conv2d_fwd(float* y, const float* x, const float* w, const float* b,
                          const ConvParams& p, int groups, Act act) const {
    t.grouped_conv2d_fwd(y, x, w, b, p, groups, act, s);
  }
  void grouped_conv2d_bwd_data(float* dx, const float* dy, const float* w, const ConvParams& p,
                               int groups) const {
    t.grouped_conv2d_bwd_data(dx, dy, w, p, groups, s);
  }
  void grouped_conv2d_bwd_filter(float* dw, float* db, const float* dy, const float* x,
                                 const ConvParams& p, int groups) const {
    t.grouped_conv2d_bwd_filter(dw, db, dy, x, p, groups, s);
  }
  void zero_pad2d_fwd(float* y, const float* x, const Pad2dParams& p) const { t.zero_pad2d_fwd(y, x, p, s); }
  void zero_pad2d_bwd(float* dx, const float* dy, const Pad2dParams& p) const { t.zero_pad2d_bwd(dx, dy, p, s); }
  void upsample2d_fwd(float* y, const float* x, const UpsampleParams& p) const { t.upsample2d_fwd(y, x, p, s); }
  void upsample2d_bwd(float* dx, const float* dy, const UpsampleParams& p) const { t.upsample2d_bwd(dx, dy, p, s); }
  void lppool2d_fwd(float* y, const float* x, const PoolParams& p, float norm) const {
    t.lppool2d_fwd(y, x, p, norm, s);
  }
  void lppool2d_bwd(float* dx, const float* dy, const float* x, const float* y, const PoolParams& p,
                    float norm) const {
    t.lppool2d_bwd(dx, dy, x, y, p, norm, s);
  }
  void concat_last(float* y, const float* const* parts, const int* widths, int count, size_t rows) const {
    t.concat_last(y, parts, widths, count, rows, s);
  }
  void split_last(float* const* parts, const float* y, const int* widths, int count, size_t rows) const {
    t.split_last(parts, y, widths, count, rows, s);
  }
  void dense_fwd(float* y, const float* x, const float* w, const float* b, int M, int K, int N,
                 Act act) const {
    t.dense_fwd(y, x, w, b, M, K, N, act, s);
  }
  void dense_bwd_data(float* dx, const float* dy, const float* w, int M, int K, int N) const {
    t.dense_bwd_data(dx, dy, w, M, K, N, s);
  }
  void dense_bwd_filter(float* dw, float* db, const float* dy, const float* x, int M, int K,
                        int N) const {
    t.dense_bwd_filter(dw, db, dy, x, M, K, N, s);
  }
  void maxpool2d_fwd(float* y, const float* x, const PoolParams& p) const {
    t.maxpool2d_fwd(y, x, p, s);
  }
  void maxpool2d_bwd(float* dx, const float* dy, const float* x, const PoolParams& p,
                     bool relu_x) const {
    t.maxpool2d_bwd(dx, dy, x, p, relu_x, s);
  }
  void avgpool2d_fwd(float* y, const float* x, const PoolParams& p) const {
    t.avgpool2d_fwd(y, x, p, s);
  }
  void avgpool2d_bwd(float* dx, const float* dy, const PoolParams& p) const {
    t.avgpool2d_bwd(dx, dy, p, s);
  }
  void global_avgpool_fwd(float* y, const float* x, int N, int HW, int C) const {
    t.global_avgpool_fwd(y, x, N, HW, C, s);
  }
  void global_avgpool_bwd(float* dx, const float* dy, int N, int HW, int C) const {
    t.global_avgpool_bwd(dx, dy, N, HW, C, s);
  }
  void global_maxpool_fwd(float* y, const float* x, int N, int HW, int C) const {
    t.global_maxpool_fwd(y, x, N, HW, C, s);
  }
  void global_maxpool_bwd(float* dx, const float* dy, const float* x, int N, int HW, int C) const {
    t.global_maxpool_bwd(dx, dy, x, N, HW, C, s);
  }
  void activation_fwd(float* y, const float* x, size_t n, Act act, float alpha) const {
    t.activation_fwd(y, x, n, act, alpha, s);
  }
  void activation_bwd(float* dx, const float* dy, const float* y, size_t n, Act act,
                      float alpha) const {
    t.activation_bwd(dx, dy, y, n, act, alpha, s);
  }
  void softmax_fwd(float* y, const float* x, size_t rows, size_t cols) const {
    t.softmax_fwd(y, x, rows, cols, s);
  }
  void softmax_bwd(float* dx, const float* dy, const float* y, size_t rows, size_t cols) const {
    t.softmax_bwd(dx, dy, y, rows, cols, s);
  }
  // Layer `layer`'s mask for the step seed on the device (dropout_layer_seed).
  void dropout_fwd_at(float* y, float* mask, const float* x, size_t n, float rate,
                      uint64_t layer) const {
    t.dropout_fwd_at(y, mask, x, n, rate, step_seed, layer, s);
  }
  void mul(float* y, const float* a, const float* b, size_t n) const { t.mul(y, a, b, n, s); }
  void add(float* y, const float* a, const float* b, size_t n) const { t.add(y, a, b, n, s); }
  void accumulate(float* y, const float* x, size_t n) const { t.accumulate(y, x, n, s); }
  void scale(float* y, const float* x, float f, size_t n) const { t.scale(y, x, f, n, s); }
  void batchnorm_fwd_train(float* y, float* save_mean, float* save_invstd, float* running_mean,
                           float* running_var, const float* x, const float* gamma,
                           const float* beta, size_t rows, int C, float eps,
                           float momentum, Act act) const {
    t.batchnorm_fwd_train(y, save_mean, save_invstd, running_mean, running_var, x, gamma, beta,
                          rows, C, eps, momentum, act, s);
  }
  void batchnorm_fwd_infer(float* y, const float* x, const float* gamma, const float* beta,
                           const float* mean, const float* var, size_t rows, int C,
                           float eps) const {
    t.batchnorm_fwd_infer(y, x, gamma, beta, mean, var, rows, C, eps, s);
  }
  void batchnorm_bwd(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                     const float* save_mean, const float* save_invstd, const float* gamma,
                     size_t rows, int C, const float* y, Act act) const {
    t.batchnorm_bwd(dx, dgamma, dbeta, dy, x, save_mean, save_invstd, gamma, rows, C, y, act, s);
  }
  void softmax_xent(float* loss, float* dx, const float* logits, const float* target,
                    size_t rows, size_t cols, LabelMode mode, float grad_scale) const {
    t.softmax_xent(loss, dx, logits, target, rows, cols, mode, grad_scale, s);
  }
  void binary_xent(float* loss, float* dx, const float* input, const float* target, size_t rows,
                   size_t cols, bool from_logits, float grad_scale) const {
    t.binary_xent(loss, dx, input, target, rows, cols, from_logits, grad_scale, s);
  }
  void mse(float* loss, float* dx, const float* y, const float* target, size_t rows, size_t cols,
           float grad_scale) const {
    t.mse(loss, dx, y, target, rows, cols, grad_scale, s);
  }
  void sgd_update(float* w, float* velocity, const float* g, size_t n, const SgdParams& p) const {
    t.sgd_update(w, velocity, g, n, p, s);
  }
  // The step's alpha (bias correction) comes from the device, not from p.step.
  void adam_update(float* w, float* m, float* v, const float* g, size_t n,
                   const AdamParams& p) const {
    t.adam_update_at(w, m, v, g, n, p, adam_alpha, s);
  }
  void rmsprop_update(float* w, float* ms, float* mom, float* mg, const float* g, size_t n,
                      const RmspropParams& p) const {
    t.rmsprop_update(w, ms, mom, mg, g, n, p, s);
  }
};

// Whether the passes are instantiated for the CPU (layers CUDA lacks compile only there).
template <class K>
constexpr bool on_host = std::is_same_v<K, CpuKernels>;

}  // namespace ck
