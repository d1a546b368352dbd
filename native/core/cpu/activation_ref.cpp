// Scalar reference activations, softmax, dropout and elementwise multiply. Gradients of the
// activations are taken from their output y, or from their input x for those whose y does not
// determine x (see act_grad_from_output in params.h).
#include <cmath>
#include <limits>

#include "dropout_hash.h"
#include "reference.h"

namespace ck {
namespace ref {

namespace {

float sigmoid(float x) {
  // exp of a negative argument only: no overflow for large |x|.
  if (x >= 0) return 1.f / (1.f + std::exp(-x));
  float e = std::exp(x);
  return e / (1.f + e);
}

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kSqrt2OverPi = 0.7978845608028654f;  // sqrt(2/pi), GeluTanh's
constexpr float kGeluCubic = 0.044715f;

// The standard normal CDF and density.
float normal_cdf(float x) { return 0.5f * std::erfc(-x * 0.70710678118654752f); }
float normal_pdf(float x) { return 0.39894228040143268f * std::exp(-0.5f * x * x); }

// log(1 + e^x) without overflow.
float softplus(float x) { return (x > 0 ? x : 0.f) + std::log1p(std::exp(-std::fabs(x))); }

float hard_sigmoid(float x) {
  float r = x + 3.f;
  return (r > 0 ? (r < 6.f ? r : 6.f) : 0.f) / 6.f;
}

float gelu_tanh_inner(float x) { return kSqrt2OverPi * (x + kGeluCubic * x * x * x); }

float activate(float x, Act act, float alpha) {
  switch (act) {
    case Act::None: return x;
    case Act::Relu: return x > 0 ? x : 0.f;
    case Act::LeakyRelu: return x > 0 ? x : alpha * x;
    case Act::Elu: return x > 0 ? x : alpha * std::expm1(x);
    case Act::Sigmoid: return sigmoid(x);
    case Act::Tanh: return std::tanh(x);
    case Act::ClippedRelu: return x > 0 ? (x < alpha ? x : alpha) : 0.f;
    case Act::Relu6: return x > 0 ? (x < 6.f ? x : 6.f) : 0.f;
    case Act::Gelu: return x * normal_cdf(x);
    case Act::GeluTanh: return x * sigmoid(2.f * gelu_tanh_inner(x));  // 0.5 (1 + tanh u) = sigmoid(2u)
    case Act::Swish: return x * sigmoid(x);
    case Act::HardSwish: return x * hard_sigmoid(x);
    case Act::HardSigmoid: return hard_sigmoid(x);
    case Act::Softplus: return softplus(x);
    case Act::Selu: return kSeluScale * (x > 0 ? x : kSeluAlpha * std::expm1(x));
    case Act::Mish: return x * std::tanh(softplus(x));
  }
  return kNaN;
}

// d(act)/dx written in terms of the output y (the acts with act_grad_from_output).
float derivative(float y, Act act, float alpha) {
  switch (act) {
    case Act::None: return 1.f;
    case Act::Relu: return y > 0 ? 1.f : 0.f;
    case Act::LeakyRelu: return y > 0 ? 1.f : alpha;
    case Act::Elu: return y > 0 ? 1.f : y + alpha;
    case Act::Sigmoid: return y * (1.f - y);
    case Act::Tanh: return 1.f - y * y;
    case Act::ClippedRelu: return y > 0 && y < alpha ? 1.f : 0.f;
    case Act::Relu6: return y > 0 && y < 6.f ? 1.f : 0.f;
    default: return kNaN;
  }
}

// d(act)/dx from the input x (the acts without act_grad_from_output). At the hard ones' corners
// (x = -3, 3) the slope is that of the flat side, as relu6's gradient is 0 at 0 and 6.
float derivative_from_x(float x, Act act) {
  switch (act) {
    case Act::Gelu: return normal_cdf(x) + x * normal_pdf(x);
    case Act::GeluTanh: {
      // d/dx x sigmoid(2u) = sigmoid(2u) + 2x sigmoid(2u) sigmoid(-2u) u'; past |x| = 10 the
      // sigmoid(-2u) factor is 0 in float, and the clamp keeps u' = k (1 + 3c x^2) finite there.
      const float u = gelu_tanh_inner(x), xc = x < -10.f ? -10.f : x > 10.f ? 10.f : x;
      return sigmoid(2.f * u) + 2.f * x * sigmoid(2.f * u) * sigmoid(-2.f * u) * kSqrt2OverPi * (1.f + 3.f * kGeluCubic * xc * xc);
    }
    case Act::Swish: return sigmoid(x) * (1.f + x * sigmoid(-x));
    case Act::HardSwish: return x <= -3.f ? 0.f : x >= 3.f ? 1.f : (2.f * x + 3.f) / 6.f;
    case Act::HardSigmoid: return x > -3.f && x < 3.f ? 1.f / 6.f : 0.f;
    case Act::Softplus: return sigmoid(x);
    case Act::Selu: return x > 0 ? kSeluScale : kSeluScale * kSeluAlpha * std::exp(x);
    case Act::Mish: {
      // 1 - tanh^2 as 1 / cosh^2, which keeps its precision where tanh is near 1.
      const float sp = softplus(x), c = std::cosh(sp);
      return std::tanh(sp) + x * sigmoid(x) / (c * c);
    }
    default: return kNaN;
  }
}

}  // namespace

void activation_fwd(float* y, const float* x, size_t n, Act act, float alpha) {
  for (size_t i = 0; i < n; ++i) y[i] = activate(x[i], act, alpha);
}

void activation_bwd(float* dx, const float* dy, const float* y, size_t n, Act act, float alpha) {
  for (size_t i = 0; i < n; ++i) dx[i] = dy[i] * derivative(y[i], act, alpha);
}

void activation_bwd_from_x(float* dx, const float* dy, const float* x, size_t n, Act act, float) {
  for (size_t i = 0; i < n; ++i) dx[i] = dy[i] * derivative_from_x(x[i], act);
}

void softmax_fwd(float* y, const float* x, size_t rows, size_t cols) {
  for (size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    float m = xr[0];
    for (size_t c = 1; c < cols; ++c) m = xr[c] > m ? xr[c] : m;
    double sum = 0;
    for (size_t c = 0; c < cols; ++c) sum += (yr[c] = std::exp(xr[c] - m));
    for (size_t c = 0; c < cols; ++c) yr[c] = float(yr[c] / sum);
  }
}

void softmax_bwd(float* dx, const float* dy, const float* y, size_t rows, size_t cols) {
  for (size_t r = 0; r < rows; ++r) {
    const float *dyr = dy + r * cols, *yr = y + r * cols;
    double dot = 0;
    for (size_t c = 0; c < cols; ++c) dot += double(dyr[c]) * yr[c];
    for (size_t c = 0; c < cols; ++c) dx[r * cols + c] = yr[c] * (dyr[c] - float(dot));
  }
}

void dropout_fwd(float* y, float* mask, const float* x, size_t n, float rate, uint64_t seed) {
  float scale = 1.f / (1.f - rate);
  for (size_t i = 0; i < n; ++i) {
    mask[i] = rate <= 0.f || dropout_keep(seed, i, rate) ? (rate <= 0.f ? 1.f : scale) : 0.f;
    y[i] = x[i] * mask[i];
  }
}

void mul(float* y, const float* a, const float* b, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}

}  // namespace ref
}  // namespace ck
