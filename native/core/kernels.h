// The CPU backend's kernel table. Every op has a scalar reference (cpu/*_ref.cpp, plain loops)
// and vectorized variants compiled per ISA from cpu/*.simd.cpp; one table per ISA is chosen at
// load by cpuid (or CONVKIT_ISA). Callers go through cpu_kernels(), never through an #ifdef.
//
// Conventions: outputs first, then inputs, then parameters; gradients are d-prefixed. Tensors
// are dense float32: activations NHWC, conv weights HWIO (R,S,C,K), dense weights [in, out].
// Kernels split their own work over the thread pool (ck::parallel_for) and must give bitwise
// identical results for a fixed thread count.
#pragma once
#include <cstddef>
#include <cstdint>

#include "params.h"

namespace ck {

enum class Isa : int { Scalar = 0, Avx2 = 1, Avx512 = 2 };
const char* isa_name(Isa isa);

// How a loss reads its targets: one row of probabilities (one-hot) per example, or one integer
// class id (stored as float) per example.
enum class LabelMode : int { Dense = 0, Sparse = 1 };

struct CpuKernels {
  Isa isa;

  // ---- convolution (conv2d.*) ----
  // y = act(conv(x, w) + b); b may be null.
  void (*conv2d_fwd)(float* y, const float* x, const float* w, const float* b,
                     const ConvParams& p, Act act);
  // dx = full correlation of dy with w (overwrites dx).
  void (*conv2d_bwd_data)(float* dx, const float* dy, const float* w, const ConvParams& p);
  // dw = sum over pixels of x (x) dy (overwrites); db = sum of dy over N,P,Q if db != null.
  void (*conv2d_bwd_filter)(float* dw, float* db, const float* dy, const float* x,
                            const ConvParams& p);

  // ---- dense (dense.*): x [M,K], w [K,N], y [M,N] ----
  void (*dense_fwd)(float* y, const float* x, const float* w, const float* b, int M, int K, int N,
                    Act act);
  void (*dense_bwd_data)(float* dx, const float* dy, const float* w, int M, int K, int N);
  void (*dense_bwd_filter)(float* dw, float* db, const float* dy, const float* x, int M, int K,
                           int N);

  // ---- pooling (pool.*) ----
  // Max pooling pads with -inf; average pooling divides by the number of real cells in the window.
  void (*maxpool2d_fwd)(float* y, const float* x, const PoolParams& p);
  // relu_x: x is a ReLU's output; the ReLU's backward is folded in (dx is its input's gradient).
  void (*maxpool2d_bwd)(float* dx, const float* dy, const float* x, const PoolParams& p, bool relu_x);
  void (*avgpool2d_fwd)(float* y, const float* x, const PoolParams& p);
  void (*avgpool2d_bwd)(float* dx, const float* dy, const PoolParams& p);
  // Global pooling over the HW pixels of each image: x [N,HW,C] -> y [N,C].
  void (*global_avgpool_fwd)(float* y, const float* x, int N, int HW, int C);
  void (*global_avgpool_bwd)(float* dx, const float* dy, int N, int HW, int C);
  void (*global_maxpool_fwd)(float* y, const float* x, int N, int HW, int C);
  void (*global_maxpool_bwd)(float* dx, const float* dy, const float* x, int N, int HW, int C);

  // ---- activations (activation.*) ----
  // alpha: leakyRelu's negative slope (>= 0) or elu's alpha; ignored otherwise.
  void (*activation_fwd)(float* y, const float* x, size_t n, Act act, float alpha);
  // The gradient from the activation's OUTPUT y (valid for every Act with alpha >= 0), so that a
  // fused conv/dense epilogue needs no pre-activation buffer.
  void (*activation_bwd)(float* dx, const float* dy, const float* y, size_t n, Act act,
                         float alpha);
  // Softmax over the last axis of [rows, cols]; bwd: dx = y * (dy - sum(dy * y)).
  void (*softmax_fwd)(float* y, const float* x, size_t rows, size_t cols);
  void (*softmax_bwd)(float* dx, const float* dy, const float* y, size_t rows, size_t cols);

  // ---- dropout (dropout.*) ----
  // Inverted dropout: mask[i] = 0 or 1/(1-rate), drawn from a counter-based hash of (seed, i) so
  // the result does not depend on the thread count; y = x * mask.
  void (*dropout_fwd)(float* y, float* mask, const float* x, size_t n, float rate, uint64_t seed);
  // y = a * b elementwise (dropout's backward: dx = dy * mask).
  void (*mul)(float* y, const float* a, const float* b, size_t n);

  // ---- batch normalization (batchnorm.*) over the last axis: x [rows, C] ----
  // Training: normalizes with the batch's mean and biased variance, writes them (save_mean,
  // save_invstd = 1/sqrt(var+eps)) for the backward pass, and updates the running statistics
  // Keras-style: running = running * momentum + batch * (1 - momentum). gamma/beta may be null
  // (scale/center off); running_* may be null.
  // act (None, Relu or Relu6) is applied to y: a batch norm's activation fused into it.
  void (*batchnorm_fwd_train)(float* y, float* save_mean, float* save_invstd, float* running_mean,
                              float* running_var, const float* x, const float* gamma,
                              const float* beta, size_t rows, int C, float eps, float momentum,
                              Act act);
  void (*batchnorm_fwd_infer)(float* y, const float* x, const float* gamma, const float* beta,
                              const float* mean, const float* var, size_t rows, int C, float eps);
  // dgamma/dbeta may be null (not trained). With act (Relu or Relu6), dy is the gradient of the
  // activated output y and is first multiplied by act's derivative read from y.
  void (*batchnorm_bwd)(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                        const float* save_mean, const float* save_invstd, const float* gamma,
                        size_t rows, int C, const float* y, Act act);

  // ---- losses (loss.*): per-row loss into loss[rows]; gradient * grad_scale into dx (may be
  // null). Targets are [rows, cols] (Dense) or [rows] class ids (Sparse). ----
  // Softmax cross-entropy from logits, log-sum-exp stable: loss = -sum t*log_softmax(x).
  void (*softmax_xent)(float* loss, float* dx, const float* logits, const float* target,
                       size_t rows, size_t cols, LabelMode mode, float grad_scale);
  // Binary cross-entropy from probabilities (clipped to [1e-7, 1-1e-7] as Keras does) or from
  // logits (stable: max(x,0) - x*t + log(1+exp(-|x|))); per-row loss is the mean over cols.
  void (*binary_xent)(float* loss, float* dx, const float* input, const float* target,
                      size_t rows, size_t cols, bool from_logits, float grad_scale);
  // Mean squared error, per-row mean over cols.
  void (*mse)(float* loss, float* dx, const float* y, const float* target, size_t rows,
              size_t cols, float grad_scale);
  // Number of rows whose argmax matches the target (Dense: target's argmax; Sparse: class id).
  // cols == 1 means binary accuracy: prediction > threshold matches target > 0.5.
  size_t (*accuracy_count)(const float* pred, const float* target, size_t rows, size_t cols,
                           LabelMode mode, float threshold);

  // ---- optimizer updates over a flat parameter vector (optimizer.*), Keras formulas ----
  // velocity may be null when momentum == 0.
  void (*sgd_update)(float* w, float* velocity, const float* g, size_t n, const SgdParams& p);
  void (*adam_update)(float* w, float* m, float* v, const float* g, size_t n, const AdamParams& p);
  // mg (mean gradient) is used when centered; mom when momentum > 0; either may be null otherwise.
  void (*rmsprop_update)(float* w, float* ms, float* mom, float* mg, const float* g, size_t n,
                         const RmspropParams& p);

  // ---- depthwise convolution (depthwise.*), TensorFlow's layout ----
  // w [R,S,C,M] (M = depthMultiplier = p.K / p.C; w holds R*S*K floats, not p.w_size()); output
  // channel c*M+m: y[n,p,q,c*M+m] = act(b[c*M+m] + sum_{r,s} x[n,tap h,tap w,c] * w[r,s,c,m]),
  // with p the ConvParams of the op (K = C*M). act is None or Relu; b may be null.
  void (*depthwise_conv2d_fwd)(float* y, const float* x, const float* w, const float* b,
                               const ConvParams& p, Act act);
  // dx[n,h,w,c] = sum over taps and m of dy[n,p,q,c*M+m] * w[r,s,c,m] (overwrites dx).
  void (*depthwise_conv2d_bwd_data)(float* dx, const float* dy, const float* w,
                                    const ConvParams& p);
  // dw [R,S,C,M] (overwrites); db [K] = sum of dy over N,P,Q if db != null.
  void (*depthwise_conv2d_bwd_filter)(float* dw, float* db, const float* dy, const float* x,
                                      const ConvParams& p);

  // ---- grouped convolution (grouped_conv2d.cpp: this table's conv2d kernels per group) ----
  // Keras Conv2D(groups): p.C and p.K are the totals, w [R,S,C/groups,K] (R*S*(C/groups)*K
  // floats); group g maps input channels [g*C/G, (g+1)*C/G) to output channels
  // [g*K/G, (g+1)*K/G). groups divides C and K; groups == 1 is plain conv2d_*.
  void (*grouped_conv2d_fwd)(float* y, const float* x, const float* w, const float* b,
                             const ConvParams& p, int groups, Act act);
  void (*grouped_conv2d_bwd_data)(float* dx, const float* dy, const float* w, const ConvParams& p,
                                  int groups);
  void (*grouped_conv2d_bwd_filter)(float* dw, float* db, const float* dy, const float* x,
                                    const ConvParams& p, int groups);

  // ---- spatial re-layout (spatial.*) ----
  // y = x with zero rows/columns around it; bwd: dx = the [H,W] window of dy (overwrites).
  void (*zero_pad2d_fwd)(float* y, const float* x, const Pad2dParams& p);
  void (*zero_pad2d_bwd)(float* dx, const float* dy, const Pad2dParams& p);
  // Nearest: y[n,h*sh+i,w*sw+j,c] = x[n,h,w,c]; bilinear: see UpsampleParams. bwd: dx = the
  // transpose (each dy spread back onto the cells it read, with the same weights; overwrites).
  void (*upsample2d_fwd)(float* y, const float* x, const UpsampleParams& p);
  void (*upsample2d_bwd)(float* dx, const float* dy, const UpsampleParams& p);

  // ---- Lp pooling (pool.*), norm >= 1 ----
  // y = (mean over the window's real cells of |x|^norm)^(1/norm); norm 2: sqrt(mean x^2).
  void (*lppool2d_fwd)(float* y, const float* x, const PoolParams& p, float norm);
  // dx = sum over windows of dy * |x|^(norm-1) sign(x) / (cells * y^(norm-1)), 0 where y == 0;
  // y is lppool2d_fwd's output for x.
  void (*lppool2d_bwd)(float* dx, const float* dy, const float* x, const float* y,
                       const PoolParams& p, float norm);

  // ---- merges (merge.*): the functional API's add / average / concatenate and the sums of
  // gradients where branches meet. y may be the same array as a (or b). ----
  void (*add)(float* y, const float* a, const float* b, size_t n);    // y = a + b
  void (*accumulate)(float* y, const float* a, size_t n);             // y += a
  void (*scale)(float* y, const float* a, float s, size_t n);         // y = s * a
  // Concatenation along the last axis: parts[i] is [rows, widths[i]], y is [rows, sum widths].
  void (*concat_last)(float* y, const float* const* parts, const int* widths, int count,
                      size_t rows);
  // Its backward: parts[i] = y[:, offset_i : offset_i + widths[i]].
  void (*split_last)(float* const* parts, const float* y, const int* widths, int count,
                     size_t rows);
};

// The table chosen at load (cpuid, overridable by CONVKIT_ISA=scalar|avx2|avx512).
const CpuKernels& cpu_kernels();
// A specific table, for tests and benchmarks; throws if this CPU cannot run it.
const CpuKernels& cpu_kernels(Isa isa);
// The best ISA this CPU supports.
Isa detect_isa();
// Forces the table cpu_kernels() returns (tests); throws if the CPU lacks the ISA.
void set_isa(Isa isa);

// Per-ISA tables, each defined in its own translation unit.
const CpuKernels& scalar_kernels();
const CpuKernels& avx2_kernels();
const CpuKernels& avx512_kernels();

}  // namespace ck
