// Layer / group normalization: the reference's forward against float64 loops written here, its
// backward against finite differences, the vector variants against the reference (edge shapes:
// C/G below, at and above the vector width, one position, a large mean over many values).
#include <cmath>
#include <random>

#include "kernel_check.h"

namespace {

struct Shape4 {
  size_t N, S;
  int C, G;
};

// y of group normalization in float64, straight from the definition.
std::vector<double> direct_groupnorm(const std::vector<float>& x, const std::vector<float>& gamma,
                                     const std::vector<float>& beta, const Shape4& s, double eps) {
  std::vector<double> y(x.size());
  const int Cg = s.C / s.G;
  for (size_t n = 0; n < s.N; ++n)
    for (int g = 0; g < s.G; ++g) {
      std::vector<size_t> idx;
      for (size_t p = 0; p < s.S; ++p)
        for (int c = g * Cg; c < (g + 1) * Cg; ++c) idx.push_back((n * s.S + p) * size_t(s.C) + size_t(c));
      double mean = 0, var = 0;
      for (size_t i : idx) mean += x[i];
      mean /= double(idx.size());
      for (size_t i : idx) var += (x[i] - mean) * (x[i] - mean);
      var /= double(idx.size());
      for (size_t i : idx) {
        const size_t c = i % size_t(s.C);
        y[i] = (x[i] - mean) / std::sqrt(var + eps) * gamma[c] + beta[c];
      }
    }
  return y;
}

const Shape4 kShapes[] = {{1, 1, 1, 1}, {3, 1, 37, 1}, {2, 5, 6, 3}, {2, 9, 64, 32}, {4, 7, 48, 2},
                          {1, 30, 40, 4}, {65, 1, 512, 1}, {3, 50, 20, 5}};

}  // namespace

TEST(reference_forward_matches_float64_loops) {
  std::mt19937 rng(21);
  for (const Shape4& s : kShapes) {
    auto x = cktest::random_vector(rng, s.N * s.S * size_t(s.C), -3.f, 5.f);
    auto gamma = cktest::random_vector(rng, size_t(s.C), 0.5f, 2.f), beta = cktest::random_vector(rng, size_t(s.C));
    std::vector<float> y(x.size()), mean(s.N * size_t(s.G)), invstd(mean.size());
    ck::scalar_kernels().groupnorm_fwd(y.data(), mean.data(), invstd.data(), x.data(), gamma.data(), beta.data(), s.N,
                                       s.S, s.C, s.G, 1e-3f);
    const std::vector<double> want = direct_groupnorm(x, gamma, beta, s, 1e-3);
    for (size_t i = 0; i < y.size(); ++i) CHECK_NEAR(y[i], want[i], 1e-5 + 1e-5 * std::fabs(want[i]));
  }
}

TEST(vector_groupnorm_matches_reference) {
  std::mt19937 rng(22);
  const ck::CpuKernels& ref = ck::scalar_kernels();
  for (const ck::CpuKernels* k : cktest::vector_tables()) {
    for (const Shape4& s : kShapes) {
      const size_t n = s.N * s.S * size_t(s.C), units = s.N * size_t(s.G);
      auto x = cktest::random_vector(rng, n, -2.f, 5.f), dy = cktest::random_vector(rng, n);
      auto gamma = cktest::random_vector(rng, size_t(s.C), 0.5f, 2.f), beta = cktest::random_vector(rng, size_t(s.C));
      for (bool affine : {true, false}) {
        const float* g = affine ? gamma.data() : nullptr;
        const float* b = affine ? beta.data() : nullptr;
        std::vector<float> ya(n), yb(n), ma(units), mb(units), ia(units), ib(units);
        ref.groupnorm_fwd(ya.data(), ma.data(), ia.data(), x.data(), g, b, s.N, s.S, s.C, s.G, 1e-3f);
        k->groupnorm_fwd(yb.data(), mb.data(), ib.data(), x.data(), g, b, s.N, s.S, s.C, s.G, 1e-3f);
        CHECK_ALL_CLOSE(yb.data(), ya.data(), n, 1e-4f, 1e-4f);
        CHECK_ALL_CLOSE(mb.data(), ma.data(), units, 1e-5f, 1e-6f);
        CHECK_ALL_CLOSE(ib.data(), ia.data(), units, 1e-4f, 1e-6f);
        // Inference keeps no statistics and gives the same y.
        std::vector<float> yc(n);
        k->groupnorm_fwd(yc.data(), nullptr, nullptr, x.data(), g, b, s.N, s.S, s.C, s.G, 1e-3f);
        CHECK(yc == yb);
        std::vector<float> da(n), db(n), ga(size_t(s.C)), gb(size_t(s.C)), ba(size_t(s.C)), bb(size_t(s.C));
        ref.groupnorm_bwd(da.data(), ga.data(), ba.data(), dy.data(), x.data(), ma.data(), ia.data(), g, s.N, s.S, s.C,
                          s.G);
        k->groupnorm_bwd(db.data(), gb.data(), bb.data(), dy.data(), x.data(), ma.data(), ia.data(), g, s.N, s.S, s.C,
                         s.G);
        CHECK_ALL_CLOSE(db.data(), da.data(), n, 1e-3f, 1e-4f);
        CHECK_ALL_CLOSE(gb.data(), ga.data(), size_t(s.C), 1e-3f, 1e-3f);
        CHECK_ALL_CLOSE(bb.data(), ba.data(), size_t(s.C), 1e-4f, 1e-4f);
        // Not trained: dx alone, the same.
        std::vector<float> dc(n);
        k->groupnorm_bwd(dc.data(), nullptr, nullptr, dy.data(), x.data(), ma.data(), ia.data(), g, s.N, s.S, s.C, s.G);
        CHECK(dc == db);
      }
    }
  }
}

TEST(vector_statistics_hold_for_a_large_mean) {
  // A float running sum over 1e5 values loses the mean when |mean| >> std.
  std::mt19937 rng(23);
  std::normal_distribution<float> noise(0.f, 1.f);
  const Shape4 s{2, 50000, 4, 2};
  std::vector<float> x(s.N * s.S * size_t(s.C));
  for (float& v : x) v = 1e4f + noise(rng);
  const size_t units = s.N * size_t(s.G);
  std::vector<float> ya(x.size()), yb(x.size()), ma(units), mb(units), ia(units), ib(units);
  ck::scalar_kernels().groupnorm_fwd(ya.data(), ma.data(), ia.data(), x.data(), nullptr, nullptr, s.N, s.S, s.C, s.G,
                                     1e-3f);
  for (const ck::CpuKernels* k : cktest::vector_tables()) {
    k->groupnorm_fwd(yb.data(), mb.data(), ib.data(), x.data(), nullptr, nullptr, s.N, s.S, s.C, s.G, 1e-3f);
    CHECK_ALL_CLOSE(mb.data(), ma.data(), units, 1e-6f, 0.f);
    CHECK_ALL_CLOSE(ib.data(), ia.data(), units, 1e-4f, 0.f);
    CHECK_ALL_CLOSE(yb.data(), ya.data(), ya.size(), 0.f, 2e-3f);
  }
}

TEST(reference_backward_matches_finite_differences) {
  std::mt19937 rng(24);
  const ck::CpuKernels& ref = ck::scalar_kernels();
  for (const Shape4& s : {Shape4{2, 3, 6, 3}, Shape4{3, 1, 5, 1}}) {
    const size_t n = s.N * s.S * size_t(s.C), units = s.N * size_t(s.G);
    auto x = cktest::random_vector(rng, n, -2.f, 2.f), w = cktest::random_vector(rng, n);
    auto gamma = cktest::random_vector(rng, size_t(s.C), 0.5f, 1.5f), beta = cktest::random_vector(rng, size_t(s.C));
    auto forward = [&](const std::vector<float>& in, const std::vector<float>& g, const std::vector<float>& b) {
      std::vector<float> y(in.size());
      ref.groupnorm_fwd(y.data(), nullptr, nullptr, in.data(), g.data(), b.data(), s.N, s.S, s.C, s.G, 1e-3f);
      return cktest::weighted_sum(y, w);
    };
    std::vector<float> y(n), m(units), is(units), dx(n), dg(size_t(s.C)), db(size_t(s.C));
    ref.groupnorm_fwd(y.data(), m.data(), is.data(), x.data(), gamma.data(), beta.data(), s.N, s.S, s.C, s.G, 1e-3f);
    ref.groupnorm_bwd(dx.data(), dg.data(), db.data(), w.data(), x.data(), m.data(), is.data(), gamma.data(), s.N, s.S,
                      s.C, s.G);
    CHECK_GRADIENT("groupnorm dx", dx, cktest::numeric_gradient(x, [&](const std::vector<float>& v) { return forward(v, gamma, beta); }, 1e-3f));
    CHECK_GRADIENT("groupnorm dgamma", dg, cktest::numeric_gradient(gamma, [&](const std::vector<float>& v) { return forward(x, v, beta); }, 1e-3f));
    CHECK_GRADIENT("groupnorm dbeta", db, cktest::numeric_gradient(beta, [&](const std::vector<float>& v) { return forward(x, gamma, v); }, 1e-3f));
  }
}

CK_TEST_MAIN()
