// Scalar reference layer / group normalization: x [N, S, C], statistics per (sample, group) over
// the group's C/G channels at all S positions, in double with two passes (no cancellation).
#include <cmath>
#include <vector>

#include "reference.h"

namespace ck {
namespace ref {

namespace {

// Calls f(i) for every flat index of group g of sample n.
template <class F>
void each_in_group(size_t n, size_t S, int C, int Cg, int g, F&& f) {
  for (size_t s = 0; s < S; ++s)
    for (int c = g * Cg; c < (g + 1) * Cg; ++c) f((n * S + s) * size_t(C) + size_t(c), c);
}

}  // namespace

void groupnorm_fwd(float* y, float* save_mean, float* save_invstd, const float* x,
                   const float* gamma, const float* beta, size_t N, size_t S, int C, int G,
                   float eps) {
  const int Cg = C / G;
  const double count = double(S) * Cg;
  for (size_t n = 0; n < N; ++n)
    for (int g = 0; g < G; ++g) {
      double mean = 0, var = 0;
      each_in_group(n, S, C, Cg, g, [&](size_t i, int) { mean += x[i]; });
      mean /= count;
      each_in_group(n, S, C, Cg, g, [&](size_t i, int) { var += (x[i] - mean) * (x[i] - mean); });
      var /= count;
      const double invstd = 1.0 / std::sqrt(var + double(eps));
      each_in_group(n, S, C, Cg, g, [&](size_t i, int c) {
        y[i] = float((x[i] - mean) * invstd * (gamma ? gamma[c] : 1.f) + (beta ? beta[c] : 0.f));
      });
      if (save_mean) save_mean[n * size_t(G) + size_t(g)] = float(mean);
      if (save_invstd) save_invstd[n * size_t(G) + size_t(g)] = float(invstd);
    }
}

void groupnorm_bwd(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                   const float* save_mean, const float* save_invstd, const float* gamma,
                   size_t N, size_t S, int C, int G) {
  const int Cg = C / G;
  const double count = double(S) * Cg;
  std::vector<double> dg(size_t(C), 0.0), db(size_t(C), 0.0);
  for (size_t n = 0; n < N; ++n)
    for (int g = 0; g < G; ++g) {
      const double mean = save_mean[n * size_t(G) + size_t(g)];
      const double invstd = save_invstd[n * size_t(G) + size_t(g)];
      double sum_t = 0, sum_t_xhat = 0;
      each_in_group(n, S, C, Cg, g, [&](size_t i, int c) {
        const double xhat = (x[i] - mean) * invstd, t = double(dy[i]) * (gamma ? gamma[c] : 1.f);
        sum_t += t;
        sum_t_xhat += t * xhat;
        dg[size_t(c)] += double(dy[i]) * xhat;
        db[size_t(c)] += dy[i];
      });
      each_in_group(n, S, C, Cg, g, [&](size_t i, int c) {
        const double xhat = (x[i] - mean) * invstd, t = double(dy[i]) * (gamma ? gamma[c] : 1.f);
        dx[i] = float(invstd * (t - sum_t / count - xhat * sum_t_xhat / count));
      });
    }
  for (int c = 0; c < C; ++c) {
    if (dgamma) dgamma[c] = float(dg[size_t(c)]);
    if (dbeta) dbeta[c] = float(db[size_t(c)]);
  }
}

}  // namespace ref
}  // namespace ck
