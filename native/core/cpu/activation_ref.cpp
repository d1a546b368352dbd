// Scalar reference activations, softmax, dropout and elementwise multiply. Gradients of the
// activations are taken from their output y (see kernels.h).
#include <cmath>

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

float activate(float x, Act act, float alpha) {
  switch (act) {
    case Act::Relu: return x > 0 ? x : 0.f;
    case Act::LeakyRelu: return x > 0 ? x : alpha * x;
    case Act::Elu: return x > 0 ? x : alpha * std::expm1(x);
    case Act::Sigmoid: return sigmoid(x);
    case Act::Tanh: return std::tanh(x);
    case Act::ClippedRelu: return x > 0 ? (x < alpha ? x : alpha) : 0.f;
    case Act::Relu6: return x > 0 ? (x < 6.f ? x : 6.f) : 0.f;
    default: return x;
  }
}

// d(act)/dx written in terms of the output y.
float derivative(float y, Act act, float alpha) {
  switch (act) {
    case Act::Relu: return y > 0 ? 1.f : 0.f;
    case Act::LeakyRelu: return y > 0 ? 1.f : alpha;
    case Act::Elu: return y > 0 ? 1.f : y + alpha;
    case Act::Sigmoid: return y * (1.f - y);
    case Act::Tanh: return 1.f - y * y;
    case Act::ClippedRelu: return y > 0 && y < alpha ? 1.f : 0.f;
    case Act::Relu6: return y > 0 && y < 6.f ? 1.f : 0.f;
    default: return 1.f;
  }
}

}  // namespace

void activation_fwd(float* y, const float* x, size_t n, Act act, float alpha) {
  for (size_t i = 0; i < n; ++i) y[i] = activate(x[i], act, alpha);
}

void activation_bwd(float* dx, const float* dy, const float* y, size_t n, Act act, float alpha) {
  for (size_t i = 0; i < n; ++i) dx[i] = dy[i] * derivative(y[i], act, alpha);
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
