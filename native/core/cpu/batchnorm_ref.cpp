// Scalar reference batch normalization over the last axis of x [rows, C].
#include <algorithm>
#include <cmath>

#include "reference.h"

namespace ck {
namespace ref {

void batchnorm_fwd_train(float* y, float* save_mean, float* save_invstd, float* running_mean,
                         float* running_var, const float* x, const float* gamma, const float* beta,
                         size_t rows, int C, float eps, float momentum, Act act) {
  const EpilogueClamp clamp(act);
  for (int c = 0; c < C; ++c) {
    double mean = 0;
    for (size_t r = 0; r < rows; ++r) mean += x[r * C + c];
    mean /= double(rows);
    double var = 0;  // two passes: no cancellation
    for (size_t r = 0; r < rows; ++r) {
      double d = x[r * C + c] - mean;
      var += d * d;
    }
    var /= double(rows);
    float invstd = float(1.0 / std::sqrt(var + eps));
    float g = gamma ? gamma[c] : 1.f, b = beta ? beta[c] : 0.f;
    for (size_t r = 0; r < rows; ++r) y[r * C + c] = clamp((x[r * C + c] - float(mean)) * invstd * g + b);
    save_mean[c] = float(mean);
    save_invstd[c] = invstd;
    if (running_mean) running_mean[c] = running_mean[c] * momentum + float(mean) * (1.f - momentum);
    if (running_var) running_var[c] = running_var[c] * momentum + float(var) * (1.f - momentum);
  }
}

void batchnorm_fwd_infer(float* y, const float* x, const float* gamma, const float* beta,
                         const float* mean, const float* var, size_t rows, int C, float eps) {
  for (size_t r = 0; r < rows; ++r)
    for (int c = 0; c < C; ++c) {
      float g = gamma ? gamma[c] : 1.f, b = beta ? beta[c] : 0.f;
      y[r * C + c] = (x[r * C + c] - mean[c]) / std::sqrt(var[c] + eps) * g + b;
    }
}

// dx = gamma * invstd / rows * (rows * dy - sum(dy) - xhat * sum(dy * xhat))
void batchnorm_bwd(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                   const float* save_mean, const float* save_invstd, const float* gamma,
                   const float* /*beta: y is read*/, size_t rows, int C, const float* y, Act act) {
  const EpilogueClamp clamp(act);
  // The gradient reaching the normalization: dy through the fused activation's derivative.
  auto grad = [&](size_t i) { return act == Act::None ? dy[i] : dy[i] * clamp.slope(y[i]); };
  for (int c = 0; c < C; ++c) {
    double sum_dy = 0, sum_dy_xhat = 0;
    for (size_t r = 0; r < rows; ++r) {
      double xhat = (x[r * C + c] - save_mean[c]) * save_invstd[c];
      sum_dy += grad(r * C + c);
      sum_dy_xhat += grad(r * C + c) * xhat;
    }
    if (dgamma) dgamma[c] = float(sum_dy_xhat);
    if (dbeta) dbeta[c] = float(sum_dy);
    double g = gamma ? gamma[c] : 1.0;
    double k = g * save_invstd[c] / double(rows);
    for (size_t r = 0; r < rows; ++r) {
      double xhat = (x[r * C + c] - save_mean[c]) * save_invstd[c];
      dx[r * C + c] = float(k * (double(rows) * grad(r * C + c) - sum_dy - xhat * sum_dy_xhat));
    }
  }
}

void batchnorm_stats(float* sums, const float* x, size_t rows, int C) {
  for (int c = 0; c < C; ++c) {
    double s = 0, s2 = 0;
    for (size_t r = 0; r < rows; ++r) {
      s += x[r * C + c];
      s2 += double(x[r * C + c]) * x[r * C + c];
    }
    sums[c] = float(s);
    sums[C + c] = float(s2);
  }
}

void batchnorm_fwd_apply(float* y, float* save_mean, float* save_invstd, float* running_mean,
                         float* running_var, const float* sums, float count, const float* x,
                         const float* gamma, const float* beta, size_t rows, int C, float eps,
                         float momentum, Act act) {
  const EpilogueClamp clamp(act);
  for (int c = 0; c < C; ++c) {
    double mean = double(sums[c]) / count;
    double var = std::max(0.0, double(sums[C + c]) / count - mean * mean);  // rounding may go below 0
    float invstd = float(1.0 / std::sqrt(var + eps));
    float g = gamma ? gamma[c] : 1.f, b = beta ? beta[c] : 0.f;
    for (size_t r = 0; r < rows; ++r) y[r * C + c] = clamp((x[r * C + c] - float(mean)) * invstd * g + b);
    save_mean[c] = float(mean);
    save_invstd[c] = invstd;
    if (running_mean) running_mean[c] = running_mean[c] * momentum + float(mean) * (1.f - momentum);
    if (running_var) running_var[c] = running_var[c] * momentum + float(var) * (1.f - momentum);
  }
}

void batchnorm_bwd_sums(float* sums, const float* dy, const float* x, const float* save_mean,
                        const float* save_invstd, const float* /*gamma*/, const float* /*beta: y is read*/,
                        size_t rows, int C, const float* y, Act act) {
  const EpilogueClamp clamp(act);
  for (int c = 0; c < C; ++c) {
    double sum_dy = 0, sum_dy_xhat = 0;
    for (size_t r = 0; r < rows; ++r) {
      const size_t i = r * C + c;
      const double g = act == Act::None ? dy[i] : dy[i] * clamp.slope(y[i]);
      sum_dy += g;
      sum_dy_xhat += g * ((x[i] - save_mean[c]) * save_invstd[c]);
    }
    sums[c] = float(sum_dy);
    sums[C + c] = float(sum_dy_xhat);
  }
}

void batchnorm_bwd_apply(float* dx, const float* dy, const float* x, const float* save_mean,
                         const float* save_invstd, const float* gamma, const float* /*beta: y is read*/,
                         const float* sums, float count, size_t rows, int C, const float* y, Act act) {
  const EpilogueClamp clamp(act);
  for (int c = 0; c < C; ++c) {
    const double k = (gamma ? gamma[c] : 1.0) * save_invstd[c] / double(count);
    for (size_t r = 0; r < rows; ++r) {
      const size_t i = r * C + c;
      const double g = act == Act::None ? dy[i] : dy[i] * clamp.slope(y[i]);
      const double xhat = (x[i] - save_mean[c]) * save_invstd[c];
      dx[i] = float(k * (double(count) * g - sums[c] - xhat * sums[C + c]));
    }
  }
}

}  // namespace ref
}  // namespace ck
