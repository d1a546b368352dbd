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

// The moments of rows [r0, r1) of G channel vectors starting at channel c (the last m lanes
// wide), merged into acc: the block's float mean, then a second sweep from cache for the
// deviations d around it; sum(d) corrects that mean (the corrected two-pass algorithm). The
// sums stay in registers; x is a local, so nothing is reloaded in the loops.
template <int G>
inline void moments_block(Moments* acc, const float* x, size_t r0, size_t r1, int C, int c, int m) {
  const double nb = double(r1 - r0);
  const Vec inv_nb = Vec::set1(float(1.0 / nb));
  Vec mu[G], d1[G], d2[G];
  for (int v = 0; v < G; ++v) mu[v] = d1[v] = d2[v] = Vec::zero();
  for (size_t r = r0; r < r1; ++r)
    for (int v = 0; v < G; ++v) mu[v] = mu[v] + load_n(x + r * C + c + v * L, v == G - 1 ? m : L);
  for (int v = 0; v < G; ++v) mu[v] = mu[v] * inv_nb;
  for (size_t r = r0; r < r1; ++r)
    for (int v = 0; v < G; ++v) {
      const Vec d = load_n(x + r * C + c + v * L, v == G - 1 ? m : L) - mu[v];
      d1[v] = d1[v] + d;
      d2[v] = fmadd(d, d, d2[v]);
    }
  float mean[L], s1[L], s2[L];
  for (int v = 0; v < G; ++v) {
    mu[v].store(mean);
    d1[v].store(s1);
    d2[v].store(s2);
    const int width = v == G - 1 ? m : L;
    for (int j = 0; j < width; ++j) {
      const double shift = double(s1[j]) / nb;
      merge(acc[c + v * L + j], Moments{nb, mean[j] + shift, s2[j] - double(s1[j]) * shift});
    }
  }
}

// Per-channel moments of x [rows, C] in one pass over memory: each block of rows, kGroup channel
// vectors at a time (then the rest one by one), by moments_block; blocks are merged in double.
void channel_moments(Moments* out, const float* x, size_t rows, int C) {
  const size_t grain = row_grain(C), block = block_rows(C);
  int chunks = parallel_chunks(rows, grain);
  if (chunks < 1) chunks = 1;
  Scratch partial{size_t(chunks) * C * (sizeof(Moments) / sizeof(float))};
  Moments* part = reinterpret_cast<Moments*>(partial.data());
  for (size_t i = 0; i < size_t(chunks) * C; ++i) part[i] = Moments{0, 0, 0};
  parallel_for(rows, grain, [&](size_t b, size_t e, int chunk) {
    Moments* acc = part + size_t(chunk) * C;
    const float* const xl = x;
    for (size_t r0 = b; r0 < e; r0 += block) {
      const size_t r1 = e - r0 < block ? e : r0 + block;
      int c = 0;
      for (; c + kGroup * L <= C; c += kGroup * L) moments_block<kGroup>(acc, xl, r0, r1, C, c, L);
      for (; c + L <= C; c += L) moments_block<1>(acc, xl, r0, r1, C, c, L);
      if (c < C) moments_block<1>(acc, xl, r0, r1, C, c, C - c);
    }
  });
  for (int c = 0; c < C; ++c) out[c] = Moments{0, 0, 0};
  for (int k = 0; k < chunks; ++k)
    for (int c = 0; c < C; ++c) merge(out[c], part[size_t(k) * C + c]);
}

// Adds rows [r0, r1) of G channel vectors starting at channel c (the last vector m lanes wide,
// the others full) into acc: per row the G vectors are adjacent in memory, so the sweep reads
// each row's cache lines once and in order; the sums stay in registers (no store in the loop, so
// nothing f reads is reloaded) and go into doubles at the end.
template <int G, int NS, class F>
inline void sum_block(double* acc, size_t r0, size_t r1, int C, int c, int m, F& f) {
  Vec s[G][NS];
  for (int v = 0; v < G; ++v)
    for (int k = 0; k < NS; ++k) s[v][k] = Vec::zero();
  for (size_t r = r0; r < r1; ++r)
    for (int v = 0; v < G; ++v) f(r, c + v * L, v == G - 1 ? m : L, s[v]);
  float lanes[L];
  for (int v = 0; v < G; ++v)
    for (int k = 0; k < NS; ++k) {
      s[v][k].store(lanes);
      const int width = v == G - 1 ? m : L;
      for (int j = 0; j < width; ++j) acc[size_t(k) * C + c + v * L + j] += lanes[j];
    }
}

// out[k*C + c] = sum over rows of term k (< NS) for channel c, where f(r, c, m, s) adds row r's
// terms for channels [c, c+m) into s[0..NS). A chunk of rows sums each block kGroup full channel
// vectors at a time (then the rest one by one) in float registers and adds them into doubles;
// chunks are added in chunk order, so a fixed thread count gives bitwise-equal results.
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
      const size_t r1 = e - r0 < block ? e : r0 + block;
      int c = 0;
      for (; c + kGroup * L <= C; c += kGroup * L) sum_block<kGroup, NS>(acc, r0, r1, C, c, L, f);
      for (; c + L <= C; c += L) sum_block<1, NS>(acc, r0, r1, C, c, L, f);
      if (c < C) sum_block<1, NS>(acc, r0, r1, C, c, C - c, f);
    }
  });
  for (size_t i = 0; i < nc; ++i) out[i] = 0;
  for (int k = 0; k < chunks; ++k)
    for (size_t i = 0; i < nc; ++i) out[i] += part[size_t(k) * nc + i];
}

// Calls f(c, m) for each channel vector of a row, m its lanes: the full vectors first, with
// m = L a constant the compiler folds into load_n, then the tail.
template <class F>
inline void for_channel_vectors(int C, F&& f) {
  int c = 0;
  for (; c + L <= C; c += L) f(c, L);
  if (c < C) f(c, C - c);
}

// y = act(x * scale + shift) per channel, act a fused ReLU / ReLU6 (as activation_fwd computes it).
void affine(float* y, const float* x, const float* scale, const float* shift, size_t rows, int C,
            EpilogueClamp clamp = EpilogueClamp()) {
  parallel_for(rows, row_grain(C), [=](size_t b, size_t e, int) {
    // Locals: the vector stores may alias any memory, so values read through the closure would
    // be reloaded after each of them.
    float* const yl = y;
    const float *const xl = x, *const scl = scale, *const shl = shift;
    const bool relu = clamp.relu, relu6 = clamp.relu6;
    const Vec six = Vec::set1(6.f);
    for (size_t r = b; r < e; ++r)
      for_channel_vectors(C, [&](int c, int m) {
        Vec v = fmadd(load_n(xl + r * C + c, m), load_n(scl + c, m), load_n(shl + c, m));
        if (relu) v = max(v, Vec::zero());
        if (relu6) v = min(v, six);
        store_n(yl + r * C + c, v, m);
      });
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

// out[c] = sum(g), out[C + c] = sum(g * xhat) over the rows, g = dy through the fused
// activation's derivative and xhat = (x - mean) * invstd: the backward's one pass for both sums.
void gradient_sums(double* out, const float* dy, const float* x, const float* mean, const float* invstd,
                   const float* scale, const float* shift, EpilogueClamp clamp, size_t rows, int C) {
  channel_sums<2>(out, rows, C, [&](size_t r, int c, int m, Vec* acc) {
    const Vec xv = load_n(x + r * C + c, m);
    const Vec g = through_act(load_n(dy + r * C + c, m), xv, scale + c, shift + c, m, clamp);
    const Vec xhat = (xv - load_n(mean + c, m)) * load_n(invstd + c, m);
    acc[0] = acc[0] + g;
    acc[1] = fmadd(g, xhat, acc[1]);
  });
}

// The per-channel coefficients of batch norm's input gradient (see input_gradient).
struct InputGradient {
  float* dx;
  const float *dy, *x, *mean, *invstd, *scale, *shift, *k, *a, *b;
  EpilogueClamp clamp;
};

// dx = k * (g - a - xhat * b) per channel, g = dy through the fused activation's derivative and
// xhat = (x - mean) * invstd. The coefficients are copied into locals: a vector store may alias
// any memory, so anything read through the closure would be reloaded after each one.
void input_gradient(const InputGradient& coefficients, size_t rows, int C) {
  parallel_for(rows, row_grain(C), [&](size_t lo, size_t hi, int) {
    const InputGradient q = coefficients;
    for (size_t r = lo; r < hi; ++r)
      for_channel_vectors(C, [&](int c, int m) {
        const Vec xv = load_n(q.x + r * C + c, m);
        const Vec xhat = (xv - load_n(q.mean + c, m)) * load_n(q.invstd + c, m);
        const Vec g = through_act(load_n(q.dy + r * C + c, m), xv, q.scale + c, q.shift + c, m, q.clamp) -
                      load_n(q.a + c, m) - xhat * load_n(q.b + c, m);
        store_n(q.dx + r * C + c, load_n(q.k + c, m) * g, m);
      });
  });
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
  gradient_sums(sum_dy, dy, x, save_mean, save_invstd, scale, shift, clamp, rows, C);
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
  input_gradient({dx, dy, x, save_mean, save_invstd, scale, shift, k, a, b, clamp}, rows, C);
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
  gradient_sums(sum, dy, x, save_mean, save_invstd, scale, shift, clamp, rows, C);
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
  input_gradient({dx, dy, x, save_mean, save_invstd, scale, shift, k, a, b, clamp}, rows, C);
}

}  // namespace CK_ISA_NS
}  // namespace ck
