// Shape parameters shared by every convolution and pooling kernel, with the standard letters:
// N,H,W,C input; K,R,S filters; P,Q output. Padding is the top/left amount; bottom/right is
// whatever the output size implies (TensorFlow's 'same' puts the larger half there).
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace ck {

struct ConvParams {
  int N = 0, H = 0, W = 0, C = 0;  // input
  int K = 0, R = 0, S = 0;         // filters: K outputs, R x S window
  int P = 0, Q = 0;                // output height, width
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;        // top, left
  int dil_h = 1, dil_w = 1;

  size_t x_size() const { return size_t(N) * H * W * C; }
  size_t y_size() const { return size_t(N) * P * Q * K; }
  size_t w_size() const { return size_t(R) * S * C * K; }
  double flops() const { return 2.0 * N * P * Q * K * R * S * C; }
};

struct PoolParams {
  int N = 0, H = 0, W = 0, C = 0;
  int R = 0, S = 0;  // window
  int P = 0, Q = 0;
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;

  size_t x_size() const { return size_t(N) * H * W * C; }
  size_t y_size() const { return size_t(N) * P * Q * C; }
};

// Zero padding (Keras ZeroPadding2D): x [N,H,W,C] -> y [N, H+top+bottom, W+left+right, C].
struct Pad2dParams {
  int N = 0, H = 0, W = 0, C = 0;
  int top = 0, bottom = 0, left = 0, right = 0;

  int P() const { return H + top + bottom; }
  int Q() const { return W + left + right; }
  size_t x_size() const { return size_t(N) * H * W * C; }
  size_t y_size() const { return size_t(N) * P() * Q() * C; }
};

// Up-sampling by integer factors (Keras UpSampling2D): x [N,H,W,C] -> y [N, H*sh, W*sw, C].
// Bilinear samples source coordinate (dst + 0.5) / s - 0.5 when half_pixel (tf.image.resize, as
// Keras uses it), dst / s otherwise (tf.image.resizeBilinear's default, as tfjs's layer uses it);
// both clamp at the last row/column.
enum class Interp : int { Nearest = 0, Bilinear };
struct UpsampleParams {
  int N = 0, H = 0, W = 0, C = 0;
  int size_h = 1, size_w = 1;
  Interp interp = Interp::Nearest;
  bool half_pixel = true;

  int P() const { return H * size_h; }
  int Q() const { return W * size_w; }
  size_t x_size() const { return size_t(N) * H * W * C; }
  size_t y_size() const { return size_t(N) * P() * Q() * C; }
};

// Fused activations (conv/dense epilogues) and the standalone activation op.
// ClippedRelu is min(max(x, 0), alpha): ReLU6 with alpha 6 (MobileNet), Keras's ReLU(max_value).
// Relu6 is ClippedRelu with alpha 6 in the form an epilogue takes (it has no alpha): the executor
// fuses MobileNet's ReLU6 into the convolution before it.
// From Gelu on, Keras 3's definitions: Gelu x*Phi(x) (Phi the standard normal CDF), GeluTanh its
// tanh approximation 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))), Swish (SiLU) x*sigmoid(x),
// HardSigmoid relu6(x+3)/6, HardSwish x*HardSigmoid(x), Softplus log(1+e^x), Selu (kSelu*) and
// Mish x*tanh(softplus(x)).
enum class Act : int {
  None = 0, Relu, LeakyRelu, Elu, Sigmoid, Tanh, ClippedRelu, Relu6,
  Gelu, GeluTanh, Swish, HardSwish, HardSigmoid, Softplus, Selu, Mish
};

// Whether act's gradient is taken from its output y (activation_bwd), as for the activations an
// epilogue may fuse, which keep no pre-activation; the others' from the input x
// (activation_bwd_from_x): swish, mish and gelu are not monotonic, so y does not determine x.
inline bool act_grad_from_output(Act act) { return int(act) <= int(Act::Relu6); }

// SELU's constants (Klambauer et al.), as Keras and tfjs write them.
constexpr float kSeluAlpha = 1.67326324235437728481f;
constexpr float kSeluScale = 1.05070098735548049342f;

// The activations a conv2d / depthwise / dense / bias epilogue applies: the clamps, and the
// smooth ones MobileNetV3 and EfficientNet put after their convolutions (sigmoid, swish, hard
// swish), applied to each output block while it is still in cache. Only the clamps have a
// derivative that the output alone determines (act_grad_from_output): a training pass that
// differentiates through the epilogue takes only those.
inline bool epilogue_act(Act act) {
  return act == Act::None || act == Act::Relu || act == Act::Relu6 || act == Act::Sigmoid ||
         act == Act::Swish || act == Act::HardSwish;
}
// The activations a layer that trains may fuse into its epilogue: its backward takes the
// derivative from the stored output, which only the clamps and sigmoid allow (swish and hard
// swish fuse in folded inference only).
inline bool trainable_epilogue_act(Act act) { return epilogue_act(act) && act_grad_from_output(act); }
// epilogue_act's acts as an error message lists them.
constexpr const char* kEpilogueActNames = "none, relu, relu6, sigmoid, swish or hardSwish";
// The epilogue of one act: the clamp, done in the microkernels' registers, and for the smooth
// acts `act` itself, which the kernels apply to the stored block with the vector activation
// (the same code as activation_fwd, so fused and separate give the same bits on one ISA).
struct EpilogueClamp {
  bool relu = false;    // max(x, 0)
  bool relu6 = false;   // then min(x, 6)
  bool smooth = false;  // act is Sigmoid, Swish or HardSwish: applied after the store
  Act act = Act::None;
  EpilogueClamp() = default;
  explicit EpilogueClamp(Act a)
      : relu(a == Act::Relu || a == Act::Relu6), relu6(a == Act::Relu6),
        smooth(a == Act::Sigmoid || a == Act::Swish || a == Act::HardSwish), act(a) {}
  // The clamp alone (the identity for the smooth acts).
  float operator()(float v) const {
    if (relu && !(v > 0.f)) v = 0.f;
    if (relu6 && v > 6.f) v = 6.f;
    return v;
  }
  // The clamp's derivative from its output y (1 or 0), as activation_bwd takes it.
  float slope(float y) const { return relu6 ? (y > 0.f && y < 6.f ? 1.f : 0.f) : relu ? (y > 0.f ? 1.f : 0.f) : 1.f; }
};

// Optimizer hyper-parameters in Keras's formulation (see optimizer_ref.cpp for the update rules).
// Adam's and RMSprop's are kept in double as the user gave them: the kernels' float scalars
// (1 - beta2, bias corrections, lr * weight decay) are derived in double and rounded once, since
// 1 - float(0.999) in float is off by 1.3e-5 relative.
// Every optimizer takes Keras 3's decoupled weight decay: before its update, w -= w * (wd * lr).
struct SgdParams {
  float lr = 0.01f, momentum = 0.f;
  bool nesterov = false;
  double weight_decay = 0;
};
struct AdamParams {
  double lr = 0.001, beta1 = 0.9, beta2 = 0.999, eps = 1e-7;
  double weight_decay = 0;  // AdamW's (decoupled, Keras: w -= w * wd * lr)
  int64_t step = 1;         // 1-based iteration count for bias correction
};
// The float scalars of one Adam step. alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t).
// static: see dropout_hash.h (no shared out-of-line copy across ISA units).
struct AdamScalars { float alpha, one_minus_beta1, one_minus_beta2, eps, decay; };
static inline float adam_alpha(const AdamParams& p) {
  const double t = double(p.step);
  return float(p.lr * std::sqrt(1.0 - std::pow(p.beta2, t)) / (1.0 - std::pow(p.beta1, t)));
}
static inline AdamScalars adam_scalars(const AdamParams& p) {
  return {adam_alpha(p), float(1.0 - p.beta1), float(1.0 - p.beta2), float(p.eps),
          float(p.weight_decay * p.lr)};
}
struct RmspropParams {
  double lr = 0.001, rho = 0.9, momentum = 0, eps = 1e-7;
  bool centered = false;
  double weight_decay = 0;
};
struct RmspropScalars { float lr, rho, one_minus_rho, momentum, eps, decay; };
static inline RmspropScalars rmsprop_scalars(const RmspropParams& p) {
  return {float(p.lr), float(p.rho), float(1.0 - p.rho), float(p.momentum), float(p.eps),
          float(p.weight_decay * p.lr)};
}
static inline float sgd_decay(const SgdParams& p) { return float(p.weight_decay * double(p.lr)); }

// Keras Adagrad: the accumulator starts at initial_accumulator (the executor fills it).
struct AdagradParams {
  double lr = 0.001, initial_accumulator = 0.1, eps = 1e-7, weight_decay = 0;
};
struct AdagradScalars { float lr, eps, decay; };
static inline AdagradScalars adagrad_scalars(const AdagradParams& p) {
  return {float(p.lr), float(p.eps), float(p.weight_decay * p.lr)};
}

// Keras 3 Nadam: momentum schedule u_t = beta1 * (1 - 0.5 * 0.96^t), u_product_t = u_1 * .. * u_t.
struct NadamParams {
  double lr = 0.001, beta1 = 0.9, beta2 = 0.999, eps = 1e-7, weight_decay = 0;
  int64_t step = 1;  // 1-based
};
// One Nadam step's float scalars: w -= (m_coef * m + g_coef * g) / (sqrt(v * v_scale) + eps), with
// m_coef = lr * u_{t+1} / (1 - u_product_{t+1}), g_coef = lr * (1 - u_t) / (1 - u_product_t),
// v_scale = 1 / (1 - beta2^t). The per-step ones lead, in the order the CUDA step uploads them.
struct NadamScalars { float m_coef, g_coef, v_scale, one_minus_beta1, one_minus_beta2, eps, decay; };
static inline NadamScalars nadam_scalars(const NadamParams& p) {
  const int64_t t = p.step < 1 ? 1 : p.step;
  auto u = [&](double s) { return p.beta1 * (1.0 - 0.5 * std::pow(0.96, s)); };
  // 0.96^s is below double's resolution past s = 1000: later factors are beta1 exactly, so the
  // product is computed in closed form from there (stateless, so resuming needs no extra state).
  const int64_t direct = t < 1000 ? t : 1000;
  double product = 1.0;
  for (int64_t s = 1; s <= direct; ++s) product *= u(double(s));
  product *= std::pow(p.beta1, double(t - direct));
  const double u_t = u(double(t)), u_next = u(double(t + 1));
  const double product_next = product * u_next;
  return {float(p.lr * u_next / (1.0 - product_next)), float(p.lr * (1.0 - u_t) / (1.0 - product)),
          float(1.0 / (1.0 - std::pow(p.beta2, double(t)))), float(1.0 - p.beta1),
          float(1.0 - p.beta2), float(p.eps), float(p.weight_decay * p.lr)};
}

// ---- image augmentation (Keras's random preprocessing layers) ----
// How a resampled image reads outside its edges (Keras's fill_mode, as scipy pads the image):
// reflect d c b a | a b c d | d c b a, wrap a b c d | a b c d, constant fill_value, nearest
// a a a a | a b c d | d d d d. Each corner of the bilinear cell (or the nearest pixel) is mapped
// on its own.
enum class FillMode : int { Reflect = 0, Wrap, Constant, Nearest };
struct ImageSampling {
  FillMode fill = FillMode::Reflect;
  Interp interp = Interp::Bilinear;
  float fill_value = 0.f;
};
// Floats per example of a drawn transform: Keras's [a0 a1 a2 b0 b1 b2 c0 c1], output pixel
// (x, y) reading the input at ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k), k = c0 x + c1 y + 1.
// Contrast and brightness draw one float per example (the factor, the offset).
constexpr int kImageTransformFloats = 8;
enum class AugmentKind : int { Flip = 0, Rotation, Zoom, Translation, Contrast, Brightness };
// What a random layer draws per example, from uniforms in [lo, hi] (Keras's ranges):
//   Flip: flips where u <= 1/2; flip_h / flip_v say which axes (both with one draw, as Keras);
//   Rotation: an angle of [lo0, hi0] turns (fractions of 2 pi) about the image's centre;
//   Zoom: heights scaled by 1 + [lo0, hi0], widths by 1 + [lo1, hi1] (same_draw: the height's);
//   Translation: shifts of [lo0, hi0] heights and [lo1, hi1] widths;
//   Contrast: factors in [1 - lo0, 1 + hi0]; Brightness: offsets [lo0, hi0] * value_span.
// seed (the layer's own) is mixed into the step's seed for the layer.
struct AugmentDraw {
  AugmentKind kind = AugmentKind::Flip;
  bool flip_h = true, flip_v = true, same_draw = false;
  double lo0 = 0, hi0 = 0, lo1 = 0, hi1 = 0;
  double value_span = 255;
  int height = 1, width = 1;
  uint64_t seed = 0;
};

}  // namespace ck
