// Vector batch normalization over the last axis (channels contiguous). The training forward reads
// x from memory twice (statistics, then y, with a fused ReLU / ReLU6 applied), the backward reads
// dy and x twice (sums, then dx; with a fused activation, dy goes through its derivative first,
// found from x rather than from a third stream, the activated output);
// per-row-block partial results are combined in double, chunk by chunk in chunk order, so a
// fixed thread count gives bitwise-equal results.
#include <algorithm>
#include <cmath>

#include "simd_kernels.h"
#include "../memory.h"
#include "../thread_pool.h"

namespace ck {
namespace CK_ISA_NS {

namespace {

constexpr int L = Vec::kLanes;
constexpr int kGroup = 4;  // channel vectors summed together in one sweep over a block of rows

size_t row_grain(int C) { return size_t(16384 / (C + 1) + 1); }

// Rows per block: few enough that float partial sums keep their digits (one float running sum
// over 1e5 rows loses the mean when |mean| >> std) and that a block stays in cache while each
// group of channels sweeps it.
size_t block_rows(int C) {
  size_t b = 32768 / size_t(C);
  return b < 32 ? 32 : (b > 256 ? 256 : b);
}

// Welford-style state of one channel: count, mean and M2 = sum of squared deviations.
struct Moments {
  double n, mean, m2;
};
// Chan et al.'s pairwise merge of b into a.
inline void merge(Moments& a, const Moments& b) {
  double n = a.n + b.n;
  if (n == 0) return;
  double delta = b.mean - a.mean;
  a.mean += delta * (b.n / n);
  a.m2 += b.m2 + delta * delta * (a.n * b.n / n);
  a.n = n;
}

// Per-channel moments of x [rows, C] in one pass over memory: a block's channel group is summed,
// then swept again from cache for its deviations d around the block's float mean; sum(d) corrects
// that mean (the corrected two-pass algorithm), and blocks are merged in double.
void channel_moments(Moments* out, const float* x, size_t rows, int C) {
  const size_t grain = row_grain(C), block = block_rows(C);
  int chunks = parallel_chunks(rows, grain);
  if (chunks < 1) chunks = 1;
  Scratch partial{size_t(chunks) * C * (sizeof(Moments) / sizeof(float))};
  Moments* part = reinterpret_cast<Moments*>(partial.data());
  for (size_t i = 0; i < size_t(chunks) * C; ++i) part[i] = Moments{0, 0, 0};
  parallel_for(rows, grain, [&](size_t b, size_t e, int chunk) {
    Moments* acc = part + size_t(chunk) * C;
    for (size_t r0 = b; r0 < e; r0 += block) {
      size_t r1 = e - r0 < block ? e : r0 + block;
      const double nb = double(r1 - r0);
      const Vec inv_nb = Vec::set1(float(1.0 / nb));
      for (int c0 = 0; c0 < C; c0 += kGroup * L) {
        int nv = (C - c0 + L - 1) / L;
        if (nv > kGroup) nv = kGroup;
        Vec mu[kGroup], d1[kGroup], d2[kGroup];
        for (int v = 0; v < kGroup; ++v) mu[v] = d1[v] = d2[v] = Vec::zero();
        for (size_t r = r0; r < r1; ++r)
          for (int v = 0; v < kGroup; ++v)
            if (v < nv) mu[v] = mu[v] + load_n(x + r * C + c0 + v * L, size_t(C - c0 - v * L));
        for (int v = 0; v < kGroup; ++v) mu[v] = mu[v] * inv_nb;
        for (size_t r = r0; r < r1; ++r)
          for (int v = 0; v < kGroup; ++v)
            if (v < nv) {
              Vec d = load_n(x + r * C + c0 + v * L, size_t(C - c0 - v * L)) - mu[v];
              d1[v] = d1[v] + d;
              d2[v] = fmadd(d, d, d2[v]);
            }
        float m[L], s1[L], s2[L];
        for (int v = 0; v < nv; ++v) {
          mu[v].store(m);
          d1[v].store(s1);
          d2[v].store(s2);
          for (int j = 0; j < L && c0 + v * L + j < C; ++j) {
            double shift = double(s1[j]) / nb;
            merge(acc[c0 + v * L + j], Moments{nb, m[j] + shift, s2[j] - double(s1[j]) * shift});
          }
        }
      }
    }
  });
  for (int c = 0; c < C; ++c) out[c] = Moments{0, 0, 0};
  for (int k = 0; k < chunks; ++k)
    for (int c = 0; c < C; ++c) merge(out[c], part[size_t(k) * C + c]);
}

// out[k*C + c] = sum over rows of term k (< NS) for channel c, where f(r, c, m, s) adds row r's
// terms for channels [c, c+m) into s[0..NS). A chunk of rows sums each block in float registers
// and adds it into doubles; chunks are added in chunk order, so a fixed thread count gives
// bitwise-equal results.
template <int NS, class F>
void channel_sums(double* out, size_t rows, int C, F&& f) {
  const size_t grain = row_grain(C), block = block_rows(C), nc = size_t(NS) * C;
  int chunks = parallel_chunks(rows, grain);
  if (chunks < 1) chunks = 1;
  Scratch partial{size_t(chunks) * nc * 2};  // nc doubles per chunk
  double* part = reinterpret_cast<double*>(partial.data());
  for (size_t i = 0; i < size_t(chunks) * nc; ++i) part[i] = 0;
  parallel_for(rows, grain, [&](size_t b, size_t e, int chunk) {
    double* acc = part + size_t(chunk) * nc;
    for (size_t r0 = b; r0 < e; r0 += block) {
      size_t r1 = e - r0 < block ? e : r0 + block;
      for (int c0 = 0; c0 < C; c0 += kGroup * L) {
        Vec s[kGroup][NS];
        for (int v = 0; v < kGroup; ++v)
          for (int k = 0; k < NS; ++k) s[v][k] = Vec::zero();
        for (size_t r = r0; r < r1; ++r)
          for (int v = 0; v < kGroup; ++v) {
            int c = c0 + v * L;
            if (c < C) f(r, c, C - c < L ? C - c : L, s[v]);
          }
        float lanes[L];
        for (int v = 0; v < kGroup; ++v) {
          int c = c0 + v * L;
          for (int k = 0; k < NS && c < C; ++k) {
            s[v][k].store(lanes);
            for (int j = 0; j < L && c + j < C; ++j) acc[size_t(k) * C + c + j] += lanes[j];
          }
        }
      }
    }
  });
  for (size_t i = 0; i < nc; ++i) out[i] = 0;
  for (int k = 0; k < chunks; ++k)
    for (size_t i = 0; i < nc; ++i) out[i] += part[size_t(k) * nc + i];
}

// y = act(x * scale + shift) per channel, act a fused ReLU / ReLU6 (as activation_fwd computes it).
void affine(float* y, const float* x, const float* scale, const float* shift, size_t rows, int C,
            EpilogueClamp clamp = EpilogueClamp()) {
  const Vec six = Vec::set1(6.f);
  parallel_for(rows, row_grain(C), [&](size_t b, size_t e, int) {
    for (size_t r = b; r < e; ++r)
      for (int c = 0; c < C; c += L) {
        int m = C - c < L ? C - c : L;
        Vec v = fmadd(load_n(x + r * C + c, m), load_n(scale + c, m), load_n(shift + c, m));
        if (clamp.relu) v = max(v, Vec::zero());
        if (clamp.relu6) v = min(v, six);
        store_n(y + r * C + c, v, m);
      }
  });
}

// dy through a fused activation's derivative at the batch norm's output z, recomputed from x as
// affine() computed it (z = x * scale + shift, the same fused multiply-add): the slope where
// act(z) is not clamped, which is where the activated output read back would be inside (0, 6).
inline Vec through_act(Vec dy, Vec x, const float* scale, const float* shift, int m, EpilogueClamp clamp) {
  if (!clamp.relu) return dy;
  const Vec z = fmadd(x, load_n(scale, m), load_n(shift, m)), one = Vec::set1(1.f);
  const Vec slope = clamp.relu6 ? select_gt0(z, select_gt(Vec::set1(6.f), z, one, Vec::zero()), Vec::zero())
                                : select_gt0(z, one, Vec::zero());
  return dy * slope;
}

// The per-channel scale and shift of y = x * scale + shift, as the training forward computes them.
void affine_coefficients(float* scale, float* shift, const float* mean, const float* invstd, const float* gamma,
                         const float* beta, int C) {
  for (int c = 0; c < C; ++c) {
    scale[c] = invstd[c] * (gamma ? gamma[c] : 1.f);
    shift[c] = (beta ? beta[c] : 0.f) - mean[c] * scale[c];
  }
}

}  // namespace

void batchnorm_fwd_train(float* y, float* save_mean, float* save_invstd, float* running_mean,
                         float* running_var, const float* x, const float* gamma, const float* beta,
                         size_t rows, int C, float eps, float momentum, Act act) {
  Scratch moments{size_t(C) * (sizeof(Moments) / sizeof(float))};
  Moments* mo = reinterpret_cast<Moments*>(moments.data());
  channel_moments(mo, x, rows, C);
  Scratch coef{size_t(C) * 2};
  float *scale = coef.data(), *shift = coef.data() + C;
  for (int c = 0; c < C; ++c) {
    save_mean[c] = float(mo[c].mean);
    float var = float(mo[c].m2 / double(rows));
    save_invstd[c] = 1.f / std::sqrt(var + eps);
    if (running_mean) running_mean[c] = running_mean[c] * momentum + save_mean[c] * (1.f - momentum);
    if (running_var) running_var[c] = running_var[c] * momentum + var * (1.f - momentum);
  }
  affine_coefficients(scale, shift, save_mean, save_invstd, gamma, beta, C);
  affine(y, x, scale, shift, rows, C, EpilogueClamp(act));
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
                   const float* beta, size_t rows, int C, const float* /*y: recomputed*/, Act act) {
  const EpilogueClamp clamp(act);
  Scratch affine_coef{size_t(C) * 2};
  float *scale = affine_coef.data(), *shift = scale + C;
  affine_coefficients(scale, shift, save_mean, save_invstd, gamma, beta, C);
  // One pass for both sums: sum(dy) then sum(dy * xhat).
  Scratch sums{size_t(C) * 4};
  double *sum_dy = reinterpret_cast<double*>(sums.data()), *sum_dy_xhat = sum_dy + C;
  channel_sums<2>(sum_dy, rows, C, [&](size_t r, int c, int m, Vec* acc) {
    const Vec xv = load_n(x + r * C + c, m);
    Vec g = through_act(load_n(dy + r * C + c, m), xv, scale + c, shift + c, m, clamp);
    Vec xhat = (xv - load_n(save_mean + c, m)) * load_n(save_invstd + c, m);
    acc[0] = acc[0] + g;
    acc[1] = fmadd(g, xhat, acc[1]);
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
        const Vec xv = load_n(x + r * C + c, m);
        Vec xhat = (xv - load_n(save_mean + c, m)) * load_n(save_invstd + c, m);
        Vec g = through_act(load_n(dy + r * C + c, m), xv, scale + c, shift + c, m, clamp) - load_n(a + c, m) - xhat * load_n(b + c, m);
        store_n(dx + r * C + c, load_n(k + c, m) * g, m);
      }
  });
}

// ---- the split training kernels of a batch norm synchronised over processes ----

void batchnorm_stats(float* sums, const float* x, size_t rows, int C) {
  Scratch moments{size_t(C) * (sizeof(Moments) / sizeof(float))};
  Moments* mo = reinterpret_cast<Moments*>(moments.data());
  channel_moments(mo, x, rows, C);
  for (int c = 0; c < C; ++c) {
    sums[c] = float(mo[c].n * mo[c].mean);
    sums[C + c] = float(mo[c].m2 + mo[c].n * mo[c].mean * mo[c].mean);
  }
}

void batchnorm_fwd_apply(float* y, float* save_mean, float* save_invstd, float* running_mean,
                         float* running_var, const float* sums, float count, const float* x,
                         const float* gamma, const float* beta, size_t rows, int C, float eps,
                         float momentum, Act act) {
  Scratch coef{size_t(C) * 2};
  float *scale = coef.data(), *shift = coef.data() + C;
  for (int c = 0; c < C; ++c) {
    const double mean = double(sums[c]) / count;
    const double var = std::max(0.0, double(sums[C + c]) / count - mean * mean);  // rounding may go below 0
    save_mean[c] = float(mean);
    save_invstd[c] = float(1.0 / std::sqrt(var + eps));
    if (running_mean) running_mean[c] = running_mean[c] * momentum + save_mean[c] * (1.f - momentum);
    if (running_var) running_var[c] = running_var[c] * momentum + float(var) * (1.f - momentum);
  }
  affine_coefficients(scale, shift, save_mean, save_invstd, gamma, beta, C);
  affine(y, x, scale, shift, rows, C, EpilogueClamp(act));
}

void batchnorm_bwd_sums(float* sums, const float* dy, const float* x, const float* save_mean,
                        const float* save_invstd, const float* gamma, const float* beta, size_t rows,
                        int C, const float* /*y: recomputed*/, Act act) {
  const EpilogueClamp clamp(act);
  Scratch affine_coef{size_t(C) * 2};
  float *scale = affine_coef.data(), *shift = scale + C;
  affine_coefficients(scale, shift, save_mean, save_invstd, gamma, beta, C);
  Scratch wide{size_t(C) * 4};
  double* sum = reinterpret_cast<double*>(wide.data());  // sum(g), then sum(g * xhat)
  channel_sums<2>(sum, rows, C, [&](size_t r, int c, int m, Vec* acc) {
    const Vec xv = load_n(x + r * C + c, m);
    Vec g = through_act(load_n(dy + r * C + c, m), xv, scale + c, shift + c, m, clamp);
    Vec xhat = (xv - load_n(save_mean + c, m)) * load_n(save_invstd + c, m);
    acc[0] = acc[0] + g;
    acc[1] = fmadd(g, xhat, acc[1]);
  });
  for (int c = 0; c < 2 * C; ++c) sums[c] = float(sum[c]);
}

void batchnorm_bwd_apply(float* dx, const float* dy, const float* x, const float* save_mean,
                         const float* save_invstd, const float* gamma, const float* beta, const float* sums,
                         float count, size_t rows, int C, const float* /*y: recomputed*/, Act act) {
  const EpilogueClamp clamp(act);
  Scratch affine_coef{size_t(C) * 2};
  float *scale = affine_coef.data(), *shift = scale + C;
  affine_coefficients(scale, shift, save_mean, save_invstd, gamma, beta, C);
  // dx = k * (g - mean(g) - xhat * mean(g * xhat)) over the count rows, k = gamma * invstd
  Scratch coef{size_t(C) * 3};
  float *k = coef.data(), *a = coef.data() + C, *b = coef.data() + 2 * C;
  for (int c = 0; c < C; ++c) {
    k[c] = (gamma ? gamma[c] : 1.f) * save_invstd[c];
    a[c] = float(double(sums[c]) / count);
    b[c] = float(double(sums[C + c]) / count);
  }
  parallel_for(rows, row_grain(C), [&](size_t lo, size_t hi, int) {
    for (size_t r = lo; r < hi; ++r)
      for (int c = 0; c < C; c += L) {
        int m = C - c < L ? C - c : L;
        const Vec xv = load_n(x + r * C + c, m);
        Vec xhat = (xv - load_n(save_mean + c, m)) * load_n(save_invstd + c, m);
        Vec g = through_act(load_n(dy + r * C + c, m), xv, scale + c, shift + c, m, clamp) - load_n(a + c, m) - xhat * load_n(b + c, m);
        store_n(dx + r * C + c, load_n(k + c, m) * g, m);
      }
  });
}

}  // namespace CK_ISA_NS
}  // namespace ck
