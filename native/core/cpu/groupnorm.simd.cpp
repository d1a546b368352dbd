// Vector layer / group normalization over x [N, S, C]: a (sample, group) unit reads its C/G
// channels at each of the S positions, a contiguous run, vectorized along it (masked at the
// run's end). Statistics: float vector partial sums, added into doubles every kFlush vectors per
// lane, with the corrected two-pass algorithm (sum of deviations around the first pass's mean).
// The forward splits (sample, group) units over the threads, each computed whole by one thread;
// the backward splits samples, with per-chunk dgamma/dbeta partials added in chunk order, so a
// fixed thread count gives bitwise-equal results.
#include <cmath>

#include "simd_kernels.h"
#include "../memory.h"
#include "../thread_pool.h"

namespace ck {
namespace CK_ISA_NS {

namespace {

constexpr int L = Vec::kLanes;
// Vectors summed per lane in float before they go into double: few enough that a float sum
// keeps its digits when |mean| >> std.
constexpr int kFlush = 64;

// Adds acc's lanes into tot in lane order (double) and clears acc.
template <int NS>
void flush(double* tot, Vec* acc) {
  float lanes[L];
  for (int k = 0; k < NS; ++k) {
    acc[k].store(lanes);
    for (int j = 0; j < L; ++j) tot[k] += lanes[j];
    acc[k] = Vec::zero();
  }
}

// tot[k] (k < NS) = the sum over one unit (its Cg channels at each of S positions from flat
// index `base`, rows of C) of the terms f(i, c, m, acc) adds into acc[k] for the m (<= L) values
// at flat index i, channel c of the group.
template <int NS, class F>
void unit_sums(double* tot, size_t base, size_t S, int C, int Cg, F&& f) {
  Vec acc[NS];
  for (int k = 0; k < NS; ++k) acc[k] = Vec::zero(), tot[k] = 0;
  int pending = 0;
  for (size_t s = 0; s < S; ++s)
    for (int c = 0; c < Cg; c += L) {
      f(base + s * size_t(C) + size_t(c), c, Cg - c < L ? Cg - c : L, acc);
      if (++pending == kFlush) flush<NS>(tot, acc), pending = 0;
    }
  flush<NS>(tot, acc);
}

// Units (or samples) per chunk: about 16K floats of work each.
size_t grain_for(size_t floats_per_item) { return 16384 / (floats_per_item + 1) + 1; }

}  // namespace

void groupnorm_fwd(float* y, float* save_mean, float* save_invstd, const float* x,
                   const float* gamma, const float* beta, size_t N, size_t S, int C, int G,
                   float eps) {
  const int Cg = C / G;
  const double count = double(S) * Cg;
  parallel_for(N * size_t(G), grain_for(S * size_t(Cg)), [&](size_t u0, size_t u1, int) {
    for (size_t u = u0; u < u1; ++u) {
      const size_t n = u / size_t(G), g = u % size_t(G), base = n * S * size_t(C) + g * size_t(Cg);
      double sum[1];
      unit_sums<1>(sum, base, S, C, Cg, [&](size_t i, int, int m, Vec* acc) { acc[0] = acc[0] + load_n(x + i, m); });
      const Vec shift0 = Vec::set1(float(sum[0] / count));
      double dev[2];
      unit_sums<2>(dev, base, S, C, Cg, [&](size_t i, int, int m, Vec* acc) {
        // Lanes past the run load 0: their deviation -shift0 is masked out.
        Vec d = load_n(x + i, m) - shift0;
        if (m < L) d = select_gt(Vec::set1(float(m)), lane_index(), d, Vec::zero());
        acc[0] = acc[0] + d;
        acc[1] = fmadd(d, d, acc[1]);
      });
      const double mean = double(float(sum[0] / count)) + dev[0] / count;
      double var = (dev[1] - dev[0] * dev[0] / count) / count;
      if (var < 0) var = 0;
      const float invstd = float(1.0 / std::sqrt(var + double(eps)));
      if (save_mean) save_mean[u] = float(mean);
      if (save_invstd) save_invstd[u] = invstd;
      const Vec vmean = Vec::set1(float(mean)), vinv = Vec::set1(invstd);
      const float* gam = gamma ? gamma + g * size_t(Cg) : nullptr;
      const float* bet = beta ? beta + g * size_t(Cg) : nullptr;
      for (size_t s = 0; s < S; ++s)
        for (int c = 0; c < Cg; c += L) {
          const int m = Cg - c < L ? Cg - c : L;
          const size_t i = base + s * size_t(C) + size_t(c);
          Vec v = (load_n(x + i, m) - vmean) * vinv;
          if (gam) v = v * load_n(gam + c, m);
          if (bet) v = v + load_n(bet + c, m);
          store_n(y + i, v, m);
        }
    }
  });
}

void groupnorm_bwd(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                   const float* save_mean, const float* save_invstd, const float* gamma,
                   size_t N, size_t S, int C, int G) {
  const int Cg = C / G;
  const double count = double(S) * Cg;
  const size_t grain = grain_for(S * size_t(C));
  int chunks = parallel_chunks(N, grain);
  if (chunks < 1) chunks = 1;
  // Per chunk: dgamma's then dbeta's C partial sums, in double.
  Scratch partial{size_t(chunks) * size_t(C) * 4};
  double* part = reinterpret_cast<double*>(partial.data());
  for (size_t i = 0; i < size_t(chunks) * size_t(C) * 2; ++i) part[i] = 0;
  parallel_for(N, grain, [&](size_t n0, size_t n1, int chunk) {
    double* pg = part + size_t(chunk) * size_t(C) * 2;
    double* pb = pg + C;
    for (size_t n = n0; n < n1; ++n)
      for (int g = 0; g < G; ++g) {
        const size_t base = n * S * size_t(C) + size_t(g) * size_t(Cg);
        const float* gam = gamma ? gamma + size_t(g) * size_t(Cg) : nullptr;
        const Vec vmean = Vec::set1(save_mean[n * size_t(G) + size_t(g)]);
        const Vec vinv = Vec::set1(save_invstd[n * size_t(G) + size_t(g)]);
        // t = dy * gamma; masked lanes load dy = 0, so t = 0 there.
        auto t_of = [&](size_t i, int c, int m) {
          const Vec d = load_n(dy + i, m);
          return gam ? d * load_n(gam + c, m) : d;
        };
        double sums[2];
        unit_sums<2>(sums, base, S, C, Cg, [&](size_t i, int c, int m, Vec* acc) {
          const Vec t = t_of(i, c, m);
          acc[0] = acc[0] + t;
          acc[1] = fmadd(t, (load_n(x + i, m) - vmean) * vinv, acc[1]);
        });
        const Vec a = Vec::set1(float(sums[0] / count)), b = Vec::set1(float(sums[1] / count));
        // dx, and this group's channels' dgamma / dbeta summed over the S positions.
        for (int c = 0; c < Cg; c += L) {
          const int m = Cg - c < L ? Cg - c : L;
          Vec acc[2] = {Vec::zero(), Vec::zero()};
          for (size_t s = 0; s < S; ++s) {
            const size_t i = base + s * size_t(C) + size_t(c);
            const Vec xhat = (load_n(x + i, m) - vmean) * vinv, d = load_n(dy + i, m);
            store_n(dx + i, vinv * (t_of(i, c, m) - a - xhat * b), m);
            acc[0] = fmadd(d, xhat, acc[0]);
            acc[1] = acc[1] + d;
            if ((s + 1) % kFlush == 0 || s + 1 == S) {
              // Per channel (lane), not per unit: each lane is its own channel's sum.
              float add[L];
              for (int k = 0; k < 2; ++k) {
                acc[k].store(add);
                for (int j = 0; j < m; ++j) (k == 0 ? pg : pb)[size_t(g) * size_t(Cg) + size_t(c + j)] += add[j];
                acc[k] = Vec::zero();
              }
            }
          }
        }
      }
  });
  for (int c = 0; c < C; ++c) {
    double sg = 0, sb = 0;
    for (int k = 0; k < chunks; ++k) sg += part[size_t(k) * size_t(C) * 2 + size_t(c)], sb += part[size_t(k) * size_t(C) * 2 + size_t(C) + size_t(c)];
    if (dgamma) dgamma[c] = float(sg);
    if (dbeta) dbeta[c] = float(sb);
  }
}

}  // namespace CK_ISA_NS
}  // namespace ck
