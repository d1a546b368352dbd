// dense kernels: the scalar reference against hand-computed values and finite differences, and
// every vector ISA this CPU runs against the reference on many shapes.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "check.h"
#include "kernel_check.h"
#include "errors.h"
#include "kernels.h"
#include "thread_pool.h"

using ck::Act;
using ck::CpuKernels;
using ck::Isa;

namespace {

void compare_all(const CpuKernels& k, int M, int K, int N, std::mt19937& rng) {
  const CpuKernels& ref = ck::scalar_kernels();
  std::string tag = std::string(ck::isa_name(k.isa)) + " M" + std::to_string(M) + " K" +
                    std::to_string(K) + " N" + std::to_string(N);
  auto x = cktest::random_vector(rng, size_t(M) * K);
  auto w = cktest::random_vector(rng, size_t(K) * N);
  auto b = cktest::random_vector(rng, size_t(N));
  auto dy = cktest::random_vector(rng, size_t(M) * N);

  std::vector<float> y0(size_t(M) * N, 7.f), y1(size_t(M) * N, -7.f);
  ref.dense_fwd(y0.data(), x.data(), w.data(), nullptr, M, K, N, Act::None);
  k.dense_fwd(y1.data(), x.data(), w.data(), nullptr, M, K, N, Act::None);
  EXPECT_CLOSE(y1, y0, K, "fwd " + tag);
  ref.dense_fwd(y0.data(), x.data(), w.data(), b.data(), M, K, N, Act::Relu);
  k.dense_fwd(y1.data(), x.data(), w.data(), b.data(), M, K, N, Act::Relu);
  EXPECT_CLOSE(y1, y0, K, "fwd bias relu " + tag);
  ref.dense_fwd(y0.data(), x.data(), w.data(), b.data(), M, K, N, Act::None);
  k.dense_fwd(y1.data(), x.data(), w.data(), b.data(), M, K, N, Act::None);
  EXPECT_CLOSE(y1, y0, K, "fwd bias " + tag);
  std::vector<float> b6(b.size());  // in [0, 8]: outputs on both sides of 6
  for (size_t i = 0; i < b.size(); ++i) b6[i] = 4.f + 4.f * b[i];
  ref.dense_fwd(y0.data(), x.data(), w.data(), b6.data(), M, K, N, Act::Relu6);
  k.dense_fwd(y1.data(), x.data(), w.data(), b6.data(), M, K, N, Act::Relu6);
  EXPECT_CLOSE(y1, y0, K, "fwd bias relu6 " + tag);

  std::vector<float> dx0(size_t(M) * K, 7.f), dx1(size_t(M) * K, -7.f);
  ref.dense_bwd_data(dx0.data(), dy.data(), w.data(), M, K, N);
  k.dense_bwd_data(dx1.data(), dy.data(), w.data(), M, K, N);
  EXPECT_CLOSE(dx1, dx0, N, "bwd_data " + tag);

  std::vector<float> dw0(size_t(K) * N, 7.f), dw1(size_t(K) * N, -7.f);
  std::vector<float> db0(size_t(N), 7.f), db1(size_t(N), -7.f);
  ref.dense_bwd_filter(dw0.data(), db0.data(), dy.data(), x.data(), M, K, N);
  k.dense_bwd_filter(dw1.data(), db1.data(), dy.data(), x.data(), M, K, N);
  EXPECT_CLOSE(dw1, dw0, M, "bwd_filter dw " + tag);
  EXPECT_CLOSE(db1, db0, M, "bwd_filter db " + tag);
  std::fill(dw1.begin(), dw1.end(), -3.f);
  k.dense_bwd_filter(dw1.data(), nullptr, dy.data(), x.data(), M, K, N);
  EXPECT_CLOSE(dw1, dw0, M, "bwd_filter (no db) " + tag);
}

}  // namespace

// x = [[1, 2]], w = [[1, 2, 3], [4, 5, 6]], b = [0.5, -20, 1]: y = [9.5, -8, 16] -> relu.
TEST(reference_hand_computed) {
  std::vector<float> x = {1, 2}, w = {1, 2, 3, 4, 5, 6}, b = {0.5f, -20, 1};
  std::vector<float> y(3);
  std::vector<const CpuKernels*> tables = {&ck::scalar_kernels()};
  for (Isa isa : cktest::vector_isas()) tables.push_back(&ck::cpu_kernels(isa));
  for (const CpuKernels* k : tables) {
    k->dense_fwd(y.data(), x.data(), w.data(), nullptr, 1, 2, 3, Act::None);
    CHECK_NEAR(y[0], 9, 1e-6);
    CHECK_NEAR(y[1], 12, 1e-6);
    CHECK_NEAR(y[2], 15, 1e-6);
    k->dense_fwd(y.data(), x.data(), w.data(), b.data(), 1, 2, 3, Act::Relu);
    CHECK_NEAR(y[0], 9.5, 1e-6);
    CHECK_NEAR(y[1], 0, 1e-6);
    CHECK_NEAR(y[2], 16, 1e-6);
    // dx = dy w^T with dy = [1, 0, -1]: [1-3, 4-6] = [-2, -2]; dw = x^T dy; db = dy.
    std::vector<float> dy = {1, 0, -1}, dx(2), dw(6), db(3);
    k->dense_bwd_data(dx.data(), dy.data(), w.data(), 1, 2, 3);
    CHECK_NEAR(dx[0], -2, 1e-6);
    CHECK_NEAR(dx[1], -2, 1e-6);
    k->dense_bwd_filter(dw.data(), db.data(), dy.data(), x.data(), 1, 2, 3);
    std::vector<float> want_dw = {1, 0, -1, 2, 0, -2};
    for (int i = 0; i < 6; ++i) CHECK_NEAR(dw[i], want_dw[i], 1e-6);
    for (int i = 0; i < 3; ++i) CHECK_NEAR(db[i], dy[i], 1e-6);
  }
}

TEST(unsupported_fused_activation_throws) {
  std::vector<float> x(4, 1.f), w(4, 1.f), y(4);
  std::vector<const CpuKernels*> tables = {&ck::scalar_kernels()};
  for (Isa isa : cktest::vector_isas()) tables.push_back(&ck::cpu_kernels(isa));
  for (const CpuKernels* k : tables) {
    for (Act act : {Act::LeakyRelu, Act::Elu, Act::Tanh, Act::Gelu}) {
      bool threw = false;
      try {
        k->dense_fwd(y.data(), x.data(), w.data(), nullptr, 2, 2, 2, act);
      } catch (const ck::Error& e) {
        threw = e.kind() == ck::ErrorKind::Value;
      }
      CHECK(threw);
    }
  }
}

// The smooth fused activations (sigmoid, swish, hard swish), as in test_conv, on the few-rows
// kernel (M <= 4), the GEMM's vector tiles and its dot tiles (N below half a vector): the
// reference against float64 loops, every ISA against the reference and, bit for bit, against
// its own act-free output passed through its activation_fwd.
TEST(smooth_fused_activations_match_float64_and_separate_activation) {
  const CpuKernels& ref = ck::scalar_kernels();
  std::mt19937 rng(21);
  struct Shape { int M, K, N; };
  for (Shape s : {Shape{1, 300, 37}, Shape{3, 64, 130}, Shape{37, 100, 45}, Shape{20, 70, 3}}) {
    const std::string tag = std::to_string(s.M) + "x" + std::to_string(s.K) + "->" + std::to_string(s.N);
    auto x = cktest::random_vector(rng, size_t(s.M) * s.K);
    auto w = cktest::random_vector(rng, size_t(s.K) * s.N, -0.3f, 0.3f);
    auto b = cktest::random_vector(rng, size_t(s.N), -8.f, 8.f);
    for (Act act : cktest::smooth_epilogue_acts()) {
      std::vector<float> y0(size_t(s.M) * s.N, 7.f);
      ref.dense_fwd(y0.data(), x.data(), w.data(), b.data(), s.M, s.K, s.N, act);
      for (int m = 0; m < s.M; ++m)
        for (int j = 0; j < s.N; ++j) {
          double sum = b[size_t(j)];
          for (int k = 0; k < s.K; ++k) sum += double(x[size_t(m) * s.K + k]) * w[size_t(k) * s.N + j];
          CHECK_NEAR(y0[size_t(m) * s.N + j], cktest::epilogue_act_f64(sum, act), 1e-5 * std::sqrt(double(s.K)) + 1e-6);
        }
      for (const CpuKernels* k : cktest::vector_tables()) {
        std::vector<float> y1(y0.size(), -7.f), plain(y0.size(), -7.f);
        k->dense_fwd(y1.data(), x.data(), w.data(), b.data(), s.M, s.K, s.N, act);
        EXPECT_CLOSE(y1, y0, double(s.K), std::string(ck::isa_name(k->isa)) + " fused act " + tag);
        k->dense_fwd(plain.data(), x.data(), w.data(), b.data(), s.M, s.K, s.N, Act::None);
        CHECK(cktest::same_as_separate_activation(*k, plain, y1, act));
      }
    }
  }
}

TEST(reference_gradients_match_finite_differences) {
  const CpuKernels& ref = ck::scalar_kernels();
  std::mt19937 rng(12);
  const int M = 3, K = 5, N = 4;
  auto x = cktest::random_vector(rng, M * K);
  auto w = cktest::random_vector(rng, K * N);
  auto b = cktest::random_vector(rng, N);
  auto g = cktest::random_vector(rng, M * N);
  std::vector<float> y(M * N);
  auto loss = [&]() {
    ref.dense_fwd(y.data(), x.data(), w.data(), b.data(), M, K, N, Act::None);
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += double(y[i]) * g[i];
    return s;
  };
  std::vector<float> dx(M * K), dw(K * N), db(N);
  ref.dense_bwd_data(dx.data(), g.data(), w.data(), M, K, N);
  ref.dense_bwd_filter(dw.data(), db.data(), g.data(), x.data(), M, K, N);
  const float eps = 1e-2f;
  auto numeric = [&](float& v) {
    float saved = v;
    v = saved + eps;
    double lp = loss();
    v = saved - eps;
    double lm = loss();
    v = saved;
    return (lp - lm) / (2.0 * eps);
  };
  for (size_t i = 0; i < x.size(); ++i) CHECK_NEAR(dx[i], numeric(x[i]), 1e-3);
  for (size_t i = 0; i < w.size(); ++i) CHECK_NEAR(dw[i], numeric(w[i]), 1e-3);
  for (size_t i = 0; i < b.size(); ++i) CHECK_NEAR(db[i], numeric(b[i]), 1e-3);
}

TEST(vector_kernels_match_reference_on_edge_shapes) {
  std::mt19937 rng(1);
  const int shapes[][3] = {{1, 1, 1},    {1, 1, 17},   {1, 17, 1},  {5, 3, 7},    {7, 1, 33},
                           {13, 17, 16}, {2, 64, 64},  {6, 64, 65}, {9, 33, 48},  {100, 1024, 10},
                           {1, 1024, 10}, {64, 100, 31}, {37, 9, 130}, {3, 200, 200}, {8, 16, 8},
                           {25, 70, 120}, {150, 300, 100}, {40, 1000, 50}, {7, 2000, 300}};
  for (Isa isa : cktest::vector_isas()) {
    for (auto& s : shapes) compare_all(ck::cpu_kernels(isa), s[0], s[1], s[2], rng);
  }
}

// Shapes large enough for the blocked paths, none a multiple of a tile: w packed transposed for
// the backward-data pass in several column blocks with partial squares; dw split by rows with x
// copied in several groups per thread (1000x1000->65), in one group (17x1000->1000), read in
// place (N = 17 fits one AVX-512 column block), and over several blocks of rows of x (M = 1100
// and 2100).
TEST(vector_kernels_match_reference_on_blocked_shapes) {
  std::mt19937 rng(3);
  const int shapes[][3] = {{1000, 1000, 17}, {17, 1000, 1000}, {1000, 1000, 65},
                           {1100, 70, 130},  {2100, 50, 1030}, {1, 1000, 1000}};
  for (Isa isa : cktest::vector_isas()) {
    for (auto& s : shapes) compare_all(ck::cpu_kernels(isa), s[0], s[1], s[2], rng);
  }
}

TEST(vector_kernels_match_reference_on_random_shapes) {
  std::mt19937 rng(2);
  auto U = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int it = 0; it < 100; ++it) {
    int M = U(1, 3) == 1 ? U(1, 8) : U(1, 150);
    int K = U(1, 3) == 1 ? U(1, 8) : U(1, 300);
    int N = U(1, 3) == 1 ? U(1, 8) : U(1, 150);
    for (Isa isa : cktest::vector_isas()) compare_all(ck::cpu_kernels(isa), M, K, N, rng);
  }
}

TEST(vector_kernels_match_reference_with_other_thread_counts) {
  std::mt19937 rng(5);
  for (int threads : {1, 3}) {
    ck::set_num_threads(threads);
    for (Isa isa : cktest::vector_isas()) {
      compare_all(ck::cpu_kernels(isa), 97, 130, 70, rng);
      compare_all(ck::cpu_kernels(isa), 3, 40, 300, rng);
      compare_all(ck::cpu_kernels(isa), 150, 300, 100, rng);  // dw split by chunks of x rows
      compare_all(ck::cpu_kernels(isa), 400, 300, 100, rng);  // dw split by rows
      compare_all(ck::cpu_kernels(isa), 800, 300, 13, rng);   // by rows, one column block
      compare_all(ck::cpu_kernels(isa), 40000, 9, 20, rng);   // dw split by chunks of x rows
    }
  }
  ck::set_num_threads(0);
}

// Each path's split: by rows of dw (K large) gives the same bits for every thread count; by
// chunks of rows of x (K small) the same bits for a fixed thread count.
TEST(vector_kernels_are_deterministic) {
  std::mt19937 rng(6);
  const int M = 600, K = 257;  // big enough to split dw by rows
  auto x = cktest::random_vector(rng, size_t(M) * K);
  for (Isa isa : cktest::vector_isas()) {
    const CpuKernels& k = ck::cpu_kernels(isa);
    for (int N : {90, 15}) {  // x copied into panels (several column blocks), and read in place
      auto dy = cktest::random_vector(rng, size_t(M) * N);
      std::vector<float> dw0(size_t(K) * N), dw1(size_t(K) * N), db0(N), db1(N);
      k.dense_bwd_filter(dw0.data(), db0.data(), dy.data(), x.data(), M, K, N);
      k.dense_bwd_filter(dw1.data(), db1.data(), dy.data(), x.data(), M, K, N);
      CHECK(std::memcmp(dw0.data(), dw1.data(), dw0.size() * sizeof(float)) == 0);
      CHECK(std::memcmp(db0.data(), db1.data(), db0.size() * sizeof(float)) == 0);
      ck::set_num_threads(3);
      k.dense_bwd_filter(dw1.data(), db1.data(), dy.data(), x.data(), M, K, N);
      CHECK(std::memcmp(dw0.data(), dw1.data(), dw0.size() * sizeof(float)) == 0);
      CHECK(std::memcmp(db0.data(), db1.data(), db0.size() * sizeof(float)) == 0);
      ck::set_num_threads(0);
    }
    // Few rows of dw, many rows of x: per-chunk partials.
    const int M2 = 30000, K2 = 7, N2 = 33;
    auto x2 = cktest::random_vector(rng, size_t(M2) * K2);
    auto dy2 = cktest::random_vector(rng, size_t(M2) * N2);
    std::vector<float> a(size_t(K2) * N2), b(size_t(K2) * N2), da(N2), dbb(N2);
    k.dense_bwd_filter(a.data(), da.data(), dy2.data(), x2.data(), M2, K2, N2);
    k.dense_bwd_filter(b.data(), dbb.data(), dy2.data(), x2.data(), M2, K2, N2);
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(da.data(), dbb.data(), da.size() * sizeof(float)) == 0);
  }
}

CK_TEST_MAIN()
