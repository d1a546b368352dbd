// Scalar reference optimizer updates, Keras 3's formulas over a flat parameter vector.
#include <cmath>

#include "reference.h"

namespace ck {
namespace ref {

// Every update first applies the decoupled weight decay, w -= w * (wd * lr), when wd > 0.

// v = momentum * v - lr * g; w += v (nesterov: w += momentum * v - lr * g)
void sgd_update(float* w, float* velocity, const float* g, size_t n, const SgdParams& p) {
  const float decay = sgd_decay(p);
  for (size_t i = 0; i < n; ++i) {
    if (p.weight_decay > 0) w[i] -= w[i] * decay;
    if (p.momentum == 0.f) {
      w[i] -= p.lr * g[i];
      continue;
    }
    velocity[i] = p.momentum * velocity[i] - p.lr * g[i];
    w[i] += p.nesterov ? p.momentum * velocity[i] - p.lr * g[i] : velocity[i];
  }
}

// alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t); m += (g - m)(1 - beta1); v += (g^2 - v)(1 - beta2);
// w -= alpha * m / (sqrt(v) + eps). AdamW first decays: w -= w * (wd * lr). The scalars are
// rounded from double once (adam_scalars).
void adam_update(float* w, float* m, float* v, const float* g, size_t n, const AdamParams& p) {
  const AdamScalars s = adam_scalars(p);
  for (size_t i = 0; i < n; ++i) {
    if (p.weight_decay > 0) w[i] -= w[i] * s.decay;
    m[i] += (g[i] - m[i]) * s.one_minus_beta1;
    v[i] += (g[i] * g[i] - v[i]) * s.one_minus_beta2;
    w[i] -= s.alpha * m[i] / (std::sqrt(v[i]) + s.eps);
  }
}

// ms = rho*ms + (1-rho)*g^2; centered: mg = rho*mg + (1-rho)*g, denom = ms - mg^2 + eps, else
// ms + eps; inc = lr * g / sqrt(denom); momentum: mom = momentum*mom + inc, w -= mom; else w -= inc.
void rmsprop_update(float* w, float* ms, float* mom, float* mg, const float* g, size_t n,
                    const RmspropParams& p) {
  const RmspropScalars s = rmsprop_scalars(p);
  for (size_t i = 0; i < n; ++i) {
    if (p.weight_decay > 0) w[i] -= w[i] * s.decay;
    ms[i] = s.rho * ms[i] + s.one_minus_rho * g[i] * g[i];
    float denom = ms[i];
    if (p.centered) {
      mg[i] = s.rho * mg[i] + s.one_minus_rho * g[i];
      denom -= mg[i] * mg[i];
    }
    float inc = s.lr * g[i] / std::sqrt(denom + s.eps);
    if (p.momentum > 0) {
      mom[i] = s.momentum * mom[i] + inc;
      w[i] -= mom[i];
    } else {
      w[i] -= inc;
    }
  }
}

// acc += g^2; w -= lr * g / sqrt(acc + eps)
void adagrad_update(float* w, float* acc, const float* g, size_t n, const AdagradParams& p) {
  const AdagradScalars s = adagrad_scalars(p);
  for (size_t i = 0; i < n; ++i) {
    if (p.weight_decay > 0) w[i] -= w[i] * s.decay;
    acc[i] += g[i] * g[i];
    w[i] -= s.lr * g[i] / std::sqrt(acc[i] + s.eps);
  }
}

// m += (g - m)(1 - beta1); v += (g^2 - v)(1 - beta2);
// w -= (m_coef * m + g_coef * g) / (sqrt(v * v_scale) + eps)   (NadamScalars)
void nadam_update(float* w, float* m, float* v, const float* g, size_t n, const NadamParams& p) {
  const NadamScalars s = nadam_scalars(p);
  for (size_t i = 0; i < n; ++i) {
    if (p.weight_decay > 0) w[i] -= w[i] * s.decay;
    m[i] += (g[i] - m[i]) * s.one_minus_beta1;
    v[i] += (g[i] * g[i] - v[i]) * s.one_minus_beta2;
    w[i] -= (s.m_coef * m[i] + s.g_coef * g[i]) / (std::sqrt(v[i] * s.v_scale) + s.eps);
  }
}

}  // namespace ref
}  // namespace ck
