// The op layer of the core: each op checks its arguments (throwing ck::Error that names the op
// and the shapes), allocates its outputs, enqueues the kernel on the stream and returns at once.
// The N-API addon exposes these as ck.ops.*; the network executor calls the kernels directly.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels.h"
#include "tensor.h"

namespace ck {

enum class Padding { Valid, Same };

struct Conv2dAttrs {
  int stride_h = 1, stride_w = 1;
  int dil_h = 1, dil_w = 1;
  Padding padding = Padding::Valid;
  Act act = Act::None;  // fused epilogue: None or Relu
  int groups = 1;       // Keras Conv2D groups (conv2d only): divides C and K; filter [kH,kW,C/groups,K]
};

struct Pool2dAttrs {
  int pool_h = 2, pool_w = 2;
  int stride_h = 2, stride_w = 2;
  Padding padding = Padding::Valid;
};

// Output size and top/left padding along one axis, as TensorFlow defines 'valid' and 'same'.
struct AxisGeometry {
  int out, pad_before;
};
AxisGeometry axis_geometry(int64_t in, int kernel, int stride, int dilation, Padding padding);

ConvParams conv2d_params(const Shape& x, const Shape& w, const Conv2dAttrs& a, const char* op);
PoolParams pool2d_params(const Shape& x, const Pool2dAttrs& a, const char* op);

// ---- convolution and dense ----
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv2dAttrs& a);
struct Conv2dGrads {
  Tensor dx, dw, db;  // db empty unless requested
};
Conv2dGrads conv2d_grad(const Tensor& dy, const Tensor& x, const Tensor& w, const Conv2dAttrs& a,
                        bool with_bias);
// x [..., K] (all leading dims are rows), w [K, N] -> [..., N]
Tensor dense(const Tensor& x, const Tensor& w, const Tensor* bias, Act act);
struct DenseGrads {
  Tensor dx, dw, db;
};
DenseGrads dense_grad(const Tensor& dy, const Tensor& x, const Tensor& w, bool with_bias);

// ---- pooling ----
Tensor max_pool2d(const Tensor& x, const Pool2dAttrs& a);
Tensor max_pool2d_grad(const Tensor& dy, const Tensor& x, const Pool2dAttrs& a);
Tensor avg_pool2d(const Tensor& x, const Pool2dAttrs& a);
Tensor avg_pool2d_grad(const Tensor& dy, const Tensor& x, const Pool2dAttrs& a);
Tensor global_avg_pool(const Tensor& x);  // [N,H,W,C] -> [N,C]
Tensor global_avg_pool_grad(const Tensor& dy, const Tensor& x);
Tensor global_max_pool(const Tensor& x);
Tensor global_max_pool_grad(const Tensor& dy, const Tensor& x);

// ---- activations ----
Tensor activation(const Tensor& x, Act act, float alpha, const char* op);
// The gradient from the activation's output y (act_grad_from_output(act)) ...
Tensor activation_grad(const Tensor& dy, const Tensor& y, Act act, float alpha, const char* op);
// ... or from its input x (the others: gelu, swish, mish, ...).
Tensor activation_grad_from_x(const Tensor& dy, const Tensor& x, Act act, float alpha, const char* op);
Tensor softmax(const Tensor& x);  // over the last axis
Tensor softmax_grad(const Tensor& dy, const Tensor& y);
struct DropoutResult {
  Tensor y, mask;
};
DropoutResult dropout(const Tensor& x, float rate, uint64_t seed);
// a * b of equal shapes, or of an image [N, ..., C] and a gate [N, 1, ..., 1, C] (either order)
// broadcast over the axes between (squeeze-and-excitation); the gradients of both.
Tensor mul(const Tensor& a, const Tensor& b, const char* op);
struct MulGrads {
  Tensor da, db;
};
MulGrads mul_grad(const Tensor& dy, const Tensor& a, const Tensor& b);

// ---- batch normalization over the last axis ----
struct BatchNormResult {
  Tensor y, mean, invstd;
};
// Updates running_mean / running_var in place when given.
BatchNormResult batch_norm_train(const Tensor& x, const Tensor* gamma, const Tensor* beta,
                                 const Tensor* running_mean, const Tensor* running_var, float eps,
                                 float momentum);
Tensor batch_norm_infer(const Tensor& x, const Tensor* gamma, const Tensor* beta,
                        const Tensor& mean, const Tensor& var, float eps);
struct BatchNormGrads {
  Tensor dx, dgamma, dbeta;
};
BatchNormGrads batch_norm_grad(const Tensor& dy, const Tensor& x, const Tensor& mean,
                               const Tensor& invstd, const Tensor* gamma);

// ---- losses: per-example loss [rows] and the gradient of the batch MEAN loss ----
struct LossResult {
  Tensor loss, grad;
};
// labels: [rows, classes] one-hot/probabilities, or [rows] class ids when sparse.
LossResult softmax_cross_entropy(const Tensor& logits, const Tensor& labels, bool sparse);
LossResult binary_cross_entropy(const Tensor& input, const Tensor& target, bool from_logits);
LossResult mean_squared_error(const Tensor& y, const Tensor& target);

// ---- optimizer updates, in place on w and the state tensors ----
void sgd_update(const Tensor& w, const Tensor& g, const Tensor* velocity, const SgdParams& p);
void adam_update(const Tensor& w, const Tensor& g, const Tensor& m, const Tensor& v,
                 const AdamParams& p);
void rmsprop_update(const Tensor& w, const Tensor& g, const Tensor& ms, const Tensor* mom,
                    const Tensor* mg, const RmspropParams& p);

// ---- depthwise convolution: filter [kH, kW, C, M] (TensorFlow's layout) -> [N,P,Q,C*M] ----
// The ConvParams of the op: K = C*M (the filter holds R*S*K floats).
ConvParams depthwise_conv2d_params(const Shape& x, const Shape& w, const Conv2dAttrs& a,
                                   const char* op);
Tensor depthwise_conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv2dAttrs& a);
Conv2dGrads depthwise_conv2d_grad(const Tensor& dy, const Tensor& x, const Tensor& w,
                                  const Conv2dAttrs& a, bool with_bias);

// ---- spatial re-layout ----
struct ZeroPadding2dAttrs {
  int top = 1, bottom = 1, left = 1, right = 1;
};
Pad2dParams zero_padding2d_params(const Shape& x, const ZeroPadding2dAttrs& a, const char* op);
Tensor zero_padding2d(const Tensor& x, const ZeroPadding2dAttrs& a);
Tensor zero_padding2d_grad(const Tensor& dy, const Tensor& x, const ZeroPadding2dAttrs& a);
struct UpSampling2dAttrs {
  int size_h = 2, size_w = 2;
  Interp interp = Interp::Nearest;
  bool half_pixel = true;  // bilinear: tf.image.resize (Keras); false: tfjs's resizeBilinear
};
UpsampleParams up_sampling2d_params(const Shape& x, const UpSampling2dAttrs& a, const char* op);
Tensor up_sampling2d(const Tensor& x, const UpSampling2dAttrs& a);
Tensor up_sampling2d_grad(const Tensor& dy, const Tensor& x, const UpSampling2dAttrs& a);

// ---- Lp pooling: (mean over the window's real cells of |x|^norm)^(1/norm), norm >= 1 ----
// Lp pooling's exponent p (the kernels' `norm`): the one rule, for the op and the layer alike.
constexpr float kMaxLpNorm = 1e6f;
void check_lp_norm(const std::string& where, float norm);
Tensor lp_pool2d(const Tensor& x, const Pool2dAttrs& a, float norm);
Tensor lp_pool2d_grad(const Tensor& dy, const Tensor& x, const Pool2dAttrs& a, float norm);

// ---- merges ----
Tensor add(const Tensor& a, const Tensor& b);  // same shapes
// Along the last axis: parts agree on every other dimension.
Tensor concatenate(const std::vector<Tensor>& parts);
// The backward of concatenate: dy split into tensors shaped like parts.
std::vector<Tensor> concatenate_grad(const Tensor& dy, const std::vector<Tensor>& parts);

// ---- transposed convolution (Keras Conv2DTranspose): filter [kH, kW, filters, inChannels] ----
// The gradient of a convolution with respect to its input: the forward op is conv2d_bwd_data of
// the convolution from the output [N, Ho, Wo, filters] back to the input [N, H, W, inChannels],
// whose HWIO filter is this op's filter as it stands.
struct Conv2dTransposeAttrs {
  int stride_h = 1, stride_w = 1;
  int dil_h = 1, dil_w = 1;
  Padding padding = Padding::Valid;
  int out_pad_h = -1, out_pad_w = -1;  // Keras's output_padding; -1: None (Keras's default size)
  Act act = Act::None;                 // fused: None, Relu or Relu6
};
// Output length along one axis, as Keras's deconv_output_length (-1 output_padding: None).
int64_t conv2d_transpose_length(int64_t in, int kernel, int stride, int dilation, Padding padding,
                                int output_padding);
// The ConvParams of that convolution: H, W, C the transposed op's output (C = filters); P, Q, K
// its input. Throws ValueError / ShapeError naming `op` for a configuration Keras refuses.
ConvParams conv2d_transpose_params(const Shape& x, const Shape& w, const Conv2dTransposeAttrs& a,
                                   const char* op);
Tensor conv2d_transpose(const Tensor& x, const Tensor& w, const Tensor* bias,
                        const Conv2dTransposeAttrs& a);
// The gradients of conv2d_transpose without its activation: dx (a conv2d forward of dy), dw (the
// conv2d filter gradient with the roles of x and dy swapped), db (the sums of dy) if asked.
Conv2dGrads conv2d_transpose_grad(const Tensor& dy, const Tensor& x, const Tensor& w,
                                  const Conv2dTransposeAttrs& a, bool with_bias);

// ---- data movement ----
Tensor copy(const Tensor& x, const Shape& shape);  // a reshaped copy (same element count)

}  // namespace ck
