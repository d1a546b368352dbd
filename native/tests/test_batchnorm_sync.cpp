// The split batch-norm training kernels of a batch norm synchronised over processes
// (batchnorm_stats / batchnorm_fwd_apply, batchnorm_bwd_sums / batchnorm_bwd_apply): on every
// ISA, a batch cut into parts (one of them empty, as a process without rows), each part's sums
// added as the processes' allreduce adds them and each part normalised with the total, must give
// what the scalar fused kernels give on the whole batch: y, the saved and running statistics, dx,
// and the parts' dgamma / dbeta summing to the whole batch's.
#include <cmath>
#include <random>

#include "kernel_check.h"

namespace {

struct Case {
  size_t rows;
  int C;
  ck::Act act;
};

// n_parts even row ranges, after an empty one.
std::vector<std::pair<size_t, size_t>> parts_of(size_t rows, int n_parts) {
  std::vector<std::pair<size_t, size_t>> out{{0, 0}};
  for (int p = 0; p < n_parts; ++p) out.push_back({rows * size_t(p) / size_t(n_parts), rows * size_t(p + 1) / size_t(n_parts)});
  return out;
}

void check_split(const ck::CpuKernels& k, const Case& s, int n_parts, std::mt19937& rng) {
  const ck::CpuKernels& ref = ck::scalar_kernels();
  const size_t rows = s.rows, C = size_t(s.C), n = rows * C;
  auto x = cktest::random_vector(rng, n, -2.f, 5.f);
  auto dy = cktest::random_vector(rng, n);
  auto gamma = cktest::random_vector(rng, C, 0.5f, 2.f), beta = cktest::random_vector(rng, C);
  const float eps = 1e-3f, momentum = 0.9f;

  // The whole batch, fused.
  std::vector<float> y(n), mean(C), invstd(C), rmean(C, 0.5f), rvar(C, 2.f);
  ref.batchnorm_fwd_train(y.data(), mean.data(), invstd.data(), rmean.data(), rvar.data(), x.data(), gamma.data(),
                          beta.data(), rows, s.C, eps, momentum, s.act);
  std::vector<float> dx(n), dgamma(C), dbeta(C);
  ref.batchnorm_bwd(dx.data(), dgamma.data(), dbeta.data(), dy.data(), x.data(), mean.data(), invstd.data(),
                    gamma.data(), beta.data(), rows, s.C, y.data(), s.act);

  // The parts: sums added in float (as MPI_SUM adds floats), each part applied with the total.
  const auto parts = parts_of(rows, n_parts);
  std::vector<float> total(2 * C, 0.f), part_sums(2 * C);
  for (auto [lo, hi] : parts) {
    k.batchnorm_stats(part_sums.data(), x.data() + lo * C, hi - lo, s.C);
    for (size_t i = 0; i < 2 * C; ++i) total[i] += part_sums[i];
  }
  std::vector<float> ys(n), dxs(n);
  std::vector<float> pmean(C), pinv(C), prm, prv;
  for (auto [lo, hi] : parts) {
    prm.assign(C, 0.5f), prv.assign(C, 2.f);  // every process updates its own copy alike
    k.batchnorm_fwd_apply(ys.data() + lo * C, pmean.data(), pinv.data(), prm.data(), prv.data(), total.data(),
                          float(rows), x.data() + lo * C, gamma.data(), beta.data(), hi - lo, s.C, eps, momentum, s.act);
  }
  CHECK_ALL_CLOSE(ys.data(), y.data(), n, 1e-3f, 1e-3f);
  CHECK_ALL_CLOSE(pmean.data(), mean.data(), C, 1e-5f, 1e-5f);
  CHECK_ALL_CLOSE(pinv.data(), invstd.data(), C, 1e-3f, 1e-5f);
  CHECK_ALL_CLOSE(prm.data(), rmean.data(), C, 1e-5f, 1e-6f);
  CHECK_ALL_CLOSE(prv.data(), rvar.data(), C, 1e-4f, 1e-5f);

  // Backward from the whole batch's saved statistics and activated output.
  std::vector<float> bwd_total(2 * C, 0.f), local_dbeta(C, 0.f), local_dgamma(C, 0.f);
  for (auto [lo, hi] : parts) {
    k.batchnorm_bwd_sums(part_sums.data(), dy.data() + lo * C, x.data() + lo * C, mean.data(), invstd.data(),
                         gamma.data(), beta.data(), hi - lo, s.C, y.data() + lo * C, s.act);
    for (size_t i = 0; i < 2 * C; ++i) bwd_total[i] += part_sums[i];
  }
  for (auto [lo, hi] : parts) {
    k.batchnorm_bwd_apply(dxs.data() + lo * C, dy.data() + lo * C, x.data() + lo * C, mean.data(), invstd.data(),
                          gamma.data(), beta.data(), bwd_total.data(), float(rows), hi - lo, s.C, y.data() + lo * C,
                          s.act);
  }
  double scale = 0;  // |dx| grows with gamma * invstd
  for (size_t c = 0; c < C; ++c) scale = std::max(scale, double(invstd[c]) * gamma[c]);
  CHECK_ALL_CLOSE(dxs.data(), dx.data(), n, 1e-3f, float(1e-4 * scale));
  CHECK_ALL_CLOSE(bwd_total.data(), dbeta.data(), C, 1e-4f, float(1e-4 * std::sqrt(double(rows))));
  CHECK_ALL_CLOSE(bwd_total.data() + C, dgamma.data(), C, 1e-3f, float(1e-4 * std::sqrt(double(rows))));
}

}  // namespace

TEST(split_batchnorm_over_parts_matches_the_fused_reference) {
  std::mt19937 rng(11);
  std::vector<const ck::CpuKernels*> tables{&ck::scalar_kernels()};
  for (const ck::CpuKernels* k : cktest::vector_tables()) tables.push_back(k);
  for (const ck::CpuKernels* k : tables) {
    for (Case s : {Case{1, 1, ck::Act::None}, Case{7, 3, ck::Act::Relu}, Case{64, 17, ck::Act::Relu6},
                   Case{5000, 32, ck::Act::None}, Case{300, 70, ck::Act::Relu}}) {
      for (int n_parts : {1, 2, 3}) check_split(*k, s, n_parts, rng);
    }
  }
}

TEST(split_statistics_hold_a_mean_large_against_the_deviation) {
  // The parts' sum of squares carries the mean's square: the variance of x = 40 + N(0, 1) over
  // 4 parts still comes out within float rounding of the two-pass reference's.
  std::mt19937 rng(3);
  const size_t rows = 4000;
  const int C = 5;
  std::normal_distribution<float> normal(40.f, 1.f);
  std::vector<float> x(rows * C);
  for (float& v : x) v = normal(rng);
  for (const ck::CpuKernels* k : cktest::vector_tables()) {
    std::vector<float> total(2 * C, 0.f), part(2 * C);
    for (int p = 0; p < 4; ++p) {
      k->batchnorm_stats(part.data(), x.data() + rows / 4 * size_t(p) * C, rows / 4, C);
      for (int i = 0; i < 2 * C; ++i) total[i] += part[i];
    }
    std::vector<float> y(rows * C), m(C), is(C), rm(C, 0.f), rv(C, 1.f), ym(rows * C), mm(C), ism(C);
    k->batchnorm_fwd_apply(y.data(), m.data(), is.data(), rm.data(), rv.data(), total.data(), float(rows), x.data(),
                           nullptr, nullptr, rows, C, 1e-3f, 0.f, ck::Act::None);
    ck::scalar_kernels().batchnorm_fwd_train(ym.data(), mm.data(), ism.data(), nullptr, nullptr, x.data(), nullptr,
                                             nullptr, rows, C, 1e-3f, 0.f, ck::Act::None);
    CHECK_ALL_CLOSE(m.data(), mm.data(), size_t(C), 1e-6f, 1e-5f);
    CHECK_ALL_CLOSE(is.data(), ism.data(), size_t(C), 1e-3f, 0.f);
  }
}

CK_TEST_MAIN()
