// Vector batch normalization over the last axis (channels contiguous). Per-channel sums are
// taken per row chunk and added in chunk order (in double), so results do not depend on timing.
#include <cmath>

#include "simd_kernels.h"
#include "../memory.h"
#include "../thread_pool.h"

namespace ck {
namespace CK_ISA_NS {

namespace {

constexpr int L = Vec::kLanes;


size_t row_grain(int C) { return size_t(16384 / (C + 1) + 1); }

// out[c] = sum over rows of f(row, c-vector), accumulated per chunk then in chunk order.
template <class F>
void channel_sums(double* out, size_t rows, int C, F&& f) {
  size_t grain = row_grain(C);
  int chunks = parallel_chunks(rows, grain);
  Scratch partial{size_t(chunks > 0 ? chunks : 1) * size_t(C)};
  parallel_for(rows, grain, [&](size_t b, size_t e, int chunk) {
    float* acc = partial.data() + size_t(chunk) * C;
    for (int c = 0; c < C; c += L) {
      int m = C - c < L ? C - c : L;
      Vec s = Vec::zero();
      for (size_t r = b; r < e; ++r) s = s + f(r, c, m);
      store_n(acc + c, s, m);
    }
  });
  for (int c = 0; c < C; ++c) out[c] = 0;
  for (int k = 0; k < chunks; ++k)
    for (int c = 0; c < C; ++c) out[c] += partial.data()[size_t(k) * C + c];
}

// y = x * scale + shift per channel.
void affine(float* y, const float* x, const float* scale, const float* shift, size_t rows, int C) {
  parallel_for(rows, row_grain(C), [&](size_t b, size_t e, int) {
    for (size_t r = b; r < e; ++r)
      for (int c = 0; c < C; c += L) {
        int m = C - c < L ? C - c : L;
        store_n(y + r * C + c, fmadd(load_n(x + r * C + c, m), load_n(scale + c, m), load_n(shift + c, m)), m);
      }
  });
}

}  // namespace

void batchnorm_fwd_train(float* y, float* save_mean, float* save_invstd, float* running_mean,
                         float* running_var, const float* x, const float* gamma, const float* beta,
                         size_t rows, int C, float eps, float momentum) {
  Scratch sums{size_t(C) * 4};  // doubles for sums, then scale/shift floats
  double* s = reinterpret_cast<double*>(sums.data());
  channel_sums(s, rows, C, [&](size_t r, int c, int m) { return load_n(x + r * C + c, m); });
  for (int c = 0; c < C; ++c) save_mean[c] = float(s[c] / double(rows));
  // Second pass over deviations: no cancellation for large means.
  channel_sums(s, rows, C, [&](size_t r, int c, int m) {
    Vec d = load_n(x + r * C + c, m) - load_n(save_mean + c, m);
    return d * d;
  });
  Scratch coef{size_t(C) * 2};
  float *scale = coef.data(), *shift = coef.data() + C;
  for (int c = 0; c < C; ++c) {
    float var = float(s[c] / double(rows));
    save_invstd[c] = 1.f / std::sqrt(var + eps);
    scale[c] = save_invstd[c] * (gamma ? gamma[c] : 1.f);
    shift[c] = (beta ? beta[c] : 0.f) - save_mean[c] * scale[c];
    if (running_mean) running_mean[c] = running_mean[c] * momentum + save_mean[c] * (1.f - momentum);
    if (running_var) running_var[c] = running_var[c] * momentum + var * (1.f - momentum);
  }
  affine(y, x, scale, shift, rows, C);
}

void batchnorm_fwd_infer(float* y, const float* x, const float* gamma, const float* beta,
                         const float* mean, const float* var, size_t rows, int C, float eps) {
  Scratch coef{size_t(C) * 2};
  float *scale = coef.data(), *shift = coef.data() + C;
  for (int c = 0; c < C; ++c) {
    scale[c] = (gamma ? gamma[c] : 1.f) / std::sqrt(var[c] + eps);
    shift[c] = (beta ? beta[c] : 0.f) - mean[c] * scale[c];
  }
  affine(y, x, scale, shift, rows, C);
}

void batchnorm_bwd(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                   const float* save_mean, const float* save_invstd, const float* gamma,
                   size_t rows, int C) {
  Scratch sums{size_t(C) * 4};
  double* sum_dy = reinterpret_cast<double*>(sums.data());
  Scratch sums2{size_t(C) * 2};
  double* sum_dy_xhat = reinterpret_cast<double*>(sums2.data());
  channel_sums(sum_dy, rows, C, [&](size_t r, int c, int m) { return load_n(dy + r * C + c, m); });
  channel_sums(sum_dy_xhat, rows, C, [&](size_t r, int c, int m) {
    Vec xhat = (load_n(x + r * C + c, m) - load_n(save_mean + c, m)) * load_n(save_invstd + c, m);
    return load_n(dy + r * C + c, m) * xhat;
  });
  // dx = k * (dy - mean(dy) - xhat * mean(dy * xhat)), k = gamma * invstd
  Scratch coef{size_t(C) * 3};
  float *k = coef.data(), *a = coef.data() + C, *b = coef.data() + 2 * C;
  for (int c = 0; c < C; ++c) {
    if (dgamma) dgamma[c] = float(sum_dy_xhat[c]);
    if (dbeta) dbeta[c] = float(sum_dy[c]);
    k[c] = (gamma ? gamma[c] : 1.f) * save_invstd[c];
    a[c] = float(sum_dy[c] / double(rows));
    b[c] = float(sum_dy_xhat[c] / double(rows));
  }
  parallel_for(rows, row_grain(C), [&](size_t lo, size_t hi, int) {
    for (size_t r = lo; r < hi; ++r)
      for (int c = 0; c < C; c += L) {
        int m = C - c < L ? C - c : L;
        Vec xhat = (load_n(x + r * C + c, m) - load_n(save_mean + c, m)) * load_n(save_invstd + c, m);
        Vec g = load_n(dy + r * C + c, m) - load_n(a + c, m) - xhat * load_n(b + c, m);
        store_n(dx + r * C + c, load_n(k + c, m) * g, m);
      }
  });
}

}  // namespace CK_ISA_NS
}  // namespace ck
