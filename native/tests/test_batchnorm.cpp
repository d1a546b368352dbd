// Batch normalization: vector variants against the reference, the reference's training forward
// against direct statistics, its backward against finite differences, the running averages.
#include <cmath>
#include <random>

#include "kernel_check.h"

TEST(vector_batchnorm_matches_reference) {
  std::mt19937 rng(6);
  const ck::CpuKernels& ref = ck::scalar_kernels();
  for (const ck::CpuKernels* k : cktest::vector_tables()) {
    for (auto [rows, C] : {std::pair<size_t, int>{1, 1}, {7, 3}, {64, 17}, {5000, 32}, {300, 70}}) {
      auto x = cktest::random_vector(rng, rows * C, -2.f, 5.f);
      auto dy = cktest::random_vector(rng, rows * C);
      auto gamma = cktest::random_vector(rng, C, 0.5f, 2.f), beta = cktest::random_vector(rng, C);
      std::vector<float> ya(x.size()), yb(x.size()), ma(C), mb(C), ia(C), ib(C);
      std::vector<float> rma(C, 0.f), rmb(C, 0.f), rva(C, 1.f), rvb(C, 1.f);
      ref.batchnorm_fwd_train(ya.data(), ma.data(), ia.data(), rma.data(), rva.data(), x.data(), gamma.data(),
                              beta.data(), rows, C, 1e-3f, 0.99f, ck::Act::None);
      k->batchnorm_fwd_train(yb.data(), mb.data(), ib.data(), rmb.data(), rvb.data(), x.data(), gamma.data(),
                             beta.data(), rows, C, 1e-3f, 0.99f, ck::Act::None);
      CHECK_ALL_CLOSE(yb.data(), ya.data(), ya.size(), 1e-4f, 1e-4f);
      CHECK_ALL_CLOSE(mb.data(), ma.data(), size_t(C), 1e-5f, 1e-6f);
      CHECK_ALL_CLOSE(ib.data(), ia.data(), size_t(C), 1e-4f, 1e-6f);
      CHECK_ALL_CLOSE(rvb.data(), rva.data(), size_t(C), 1e-5f, 1e-6f);
      std::vector<float> da(x.size()), db(x.size()), ga(C), gb(C), ba(C), bb(C);
      ref.batchnorm_bwd(da.data(), ga.data(), ba.data(), dy.data(), x.data(), ma.data(), ia.data(), gamma.data(), nullptr, rows, C, nullptr, ck::Act::None);
      k->batchnorm_bwd(db.data(), gb.data(), bb.data(), dy.data(), x.data(), ma.data(), ia.data(), gamma.data(), nullptr, rows, C, nullptr, ck::Act::None);
      CHECK_ALL_CLOSE(db.data(), da.data(), da.size(), 1e-3f, 1e-4f);
      CHECK_ALL_CLOSE(gb.data(), ga.data(), size_t(C), 1e-3f, 1e-3f);
      CHECK_ALL_CLOSE(bb.data(), ba.data(), size_t(C), 1e-4f, 1e-4f);
      ref.batchnorm_fwd_infer(ya.data(), x.data(), gamma.data(), beta.data(), rma.data(), rva.data(), rows, C, 1e-3f);
      k->batchnorm_fwd_infer(yb.data(), x.data(), gamma.data(), beta.data(), rma.data(), rva.data(), rows, C, 1e-3f);
      CHECK_ALL_CLOSE(yb.data(), ya.data(), ya.size(), 1e-5f, 1e-5f);
    }
  }
}

TEST(vector_statistics_hold_for_a_large_mean_over_many_rows) {
  // One float running sum per channel over 1e5 rows loses the mean when |mean| >> std.
  std::mt19937 rng(8);
  std::normal_distribution<float> noise(0.f, 1.f);
  const size_t rows = 200000;
  const int C = 3;
  std::vector<float> x(rows * C);
  for (float& v : x) v = 1e4f + noise(rng);
  std::vector<float> ya(x.size()), yb(x.size()), ma(C), mb(C), ia(C), ib(C);
  ck::scalar_kernels().batchnorm_fwd_train(ya.data(), ma.data(), ia.data(), nullptr, nullptr, x.data(), nullptr,
                                           nullptr, rows, C, 1e-3f, 0.99f, ck::Act::None);
  for (const ck::CpuKernels* k : cktest::vector_tables()) {
    k->batchnorm_fwd_train(yb.data(), mb.data(), ib.data(), nullptr, nullptr, x.data(), nullptr, nullptr, rows, C,
                           1e-3f, 0.99f, ck::Act::None);
    CHECK_ALL_CLOSE(mb.data(), ma.data(), size_t(C), 1e-6f, 0.f);
    CHECK_ALL_CLOSE(ib.data(), ia.data(), size_t(C), 1e-4f, 0.f);
    CHECK_ALL_CLOSE(yb.data(), ya.data(), ya.size(), 0.f, 2e-3f);
  }
}

TEST(training_forward_normalizes_and_updates_running_statistics) {
  const size_t rows = 4;
  std::vector<float> x = {1, 10, 2, 20, 3, 30, 6, 40}, y(8), mean(2), invstd(2), rm = {1, 1}, rv = {2, 2};
  ck::scalar_kernels().batchnorm_fwd_train(y.data(), mean.data(), invstd.data(), rm.data(), rv.data(), x.data(),
                                           nullptr, nullptr, rows, 2, 1e-3f, 0.9f, ck::Act::None);
  CHECK_NEAR(mean[0], 3.0, 1e-6);
  CHECK_NEAR(mean[1], 25.0, 1e-5);
  double var0 = (4 + 1 + 0 + 9) / 4.0, var1 = (225 + 25 + 25 + 225) / 4.0;  // biased, as Keras
  CHECK_NEAR(invstd[0], 1 / std::sqrt(var0 + 1e-3), 1e-6);
  CHECK_NEAR(rm[0], 0.9 * 1 + 0.1 * 3, 1e-6);
  CHECK_NEAR(rv[1], 0.9 * 2 + 0.1 * var1, 1e-4);
  CHECK_NEAR(y[0], (1 - 3) / std::sqrt(var0 + 1e-3), 1e-5);
}

TEST(reference_backward_matches_finite_differences) {
  std::mt19937 rng(7);
  const ck::CpuKernels& ref = ck::scalar_kernels();
  const size_t rows = 6;
  const int C = 3;
  auto x = cktest::random_vector(rng, rows * C, -2.f, 2.f);
  auto w = cktest::random_vector(rng, rows * C);
  auto gamma = cktest::random_vector(rng, C, 0.5f, 1.5f), beta = cktest::random_vector(rng, C);
  auto forward = [&](const std::vector<float>& in, const std::vector<float>& g, const std::vector<float>& b) {
    std::vector<float> y(in.size()), m(C), s(C);
    ref.batchnorm_fwd_train(y.data(), m.data(), s.data(), nullptr, nullptr, in.data(), g.data(), b.data(), rows, C, 1e-3f, 0.99f, ck::Act::None);
    return cktest::weighted_sum(y, w);
  };
  std::vector<float> y(x.size()), m(C), s(C), dx(x.size()), dg(C), db(C);
  ref.batchnorm_fwd_train(y.data(), m.data(), s.data(), nullptr, nullptr, x.data(), gamma.data(), beta.data(), rows, C, 1e-3f, 0.99f, ck::Act::None);
  ref.batchnorm_bwd(dx.data(), dg.data(), db.data(), w.data(), x.data(), m.data(), s.data(), gamma.data(), nullptr, rows, C, nullptr, ck::Act::None);
  CHECK_GRADIENT("batchnorm dx", dx, cktest::numeric_gradient(x, [&](const std::vector<float>& v) { return forward(v, gamma, beta); }, 1e-3f));
  CHECK_GRADIENT("batchnorm dgamma", dg, cktest::numeric_gradient(gamma, [&](const std::vector<float>& v) { return forward(x, v, beta); }, 1e-3f));
  CHECK_GRADIENT("batchnorm dbeta", db, cktest::numeric_gradient(beta, [&](const std::vector<float>& v) { return forward(x, gamma, v); }, 1e-3f));
}

// A ReLU / ReLU6 fused into the batch norm gives bitwise what the separate activation kernels
// give after it: forward y = act(bn(x)), backward bn_bwd(dy * act'(y)) (the executor relies on it
// to keep fused training bitwise equal to unfused).
TEST(fused_activation_equals_separate_activation_kernels) {
  std::mt19937 rng(16);
  std::vector<const ck::CpuKernels*> tables = cktest::vector_tables();
  tables.push_back(&ck::scalar_kernels());
  for (const ck::CpuKernels* k : tables) {
    for (auto [rows, C] : {std::pair<size_t, int>{1, 1}, {7, 3}, {300, 70}, {2000, 16}}) {
      // x spread so that normalized values fall below 0, inside (0, 6) and above 6
      auto x = cktest::random_vector(rng, rows * C, -2.f, 5.f);
      auto dy = cktest::random_vector(rng, rows * C);
      auto gamma = cktest::random_vector(rng, C, 0.5f, 4.f), beta = cktest::random_vector(rng, C, -1.f, 3.f);
      for (auto [act, alpha] : {std::pair<ck::Act, float>{ck::Act::Relu, 0.f}, {ck::Act::Relu6, 6.f}}) {
        const ck::Act separate = act == ck::Act::Relu ? ck::Act::Relu : ck::Act::ClippedRelu;
        std::vector<float> y0(x.size()), y1(x.size()), m(C), s(C), m1(C), s1(C);
        k->batchnorm_fwd_train(y0.data(), m.data(), s.data(), nullptr, nullptr, x.data(), gamma.data(), beta.data(), rows, C,
                               1e-3f, 0.99f, ck::Act::None);
        k->activation_fwd(y0.data(), y0.data(), y0.size(), separate, alpha);
        k->batchnorm_fwd_train(y1.data(), m1.data(), s1.data(), nullptr, nullptr, x.data(), gamma.data(), beta.data(), rows,
                               C, 1e-3f, 0.99f, act);
        CHECK(y1 == y0);
        std::vector<float> d0(x.size()), d1(x.size()), g0(C), g1(C), b0(C), b1(C), masked(x.size());
        k->activation_bwd(masked.data(), dy.data(), y0.data(), masked.size(), separate, alpha);
        k->batchnorm_bwd(d0.data(), g0.data(), b0.data(), masked.data(), x.data(), m.data(), s.data(), gamma.data(), beta.data(), rows, C,
                         nullptr, ck::Act::None);
        k->batchnorm_bwd(d1.data(), g1.data(), b1.data(), dy.data(), x.data(), m.data(), s.data(), gamma.data(), beta.data(), rows, C,
                         y1.data(), act);
        CHECK(d1 == d0);
        CHECK(g1 == g0);
        CHECK(b1 == b0);
      }
    }
  }
}

CK_TEST_MAIN()
