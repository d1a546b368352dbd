// Per-channel bias kernels (the transposed convolution's epilogue): the reference against
// hand-computed values, and every vector ISA against the reference: the forward bitwise (one add
// and the clamp per cell) for every fused activation, in place, with and without a bias; the
// gradient within a reduction's rounding, bitwise repeatable, over thread counts and column
// counts around the vector width.
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernel_check.h"
#include "thread_pool.h"

using ck::Act;
using ck::CpuKernels;

TEST(reference_worked_examples) {
  const CpuKernels& ref = ck::scalar_kernels();
  // Two rows of three channels.
  std::vector<float> y = {1, -2, 7, -0.5f, 3, 5.5f}, b = {0.25f, 1, -1};
  std::vector<float> plain = y;
  ref.bias_act_fwd(plain.data(), b.data(), 2, 3, Act::None);
  CHECK((plain == std::vector<float>{1.25f, -1, 6, -0.25f, 4, 4.5f}));
  std::vector<float> relu = y;
  ref.bias_act_fwd(relu.data(), b.data(), 2, 3, Act::Relu);
  CHECK((relu == std::vector<float>{1.25f, 0, 6, 0, 4, 4.5f}));
  std::vector<float> relu6 = y;
  ref.bias_act_fwd(relu6.data(), nullptr, 2, 3, Act::Relu6);
  CHECK((relu6 == std::vector<float>{1, 0, 6, 0, 3, 5.5f}));
  std::vector<float> db(3, 9.f);
  ref.bias_grad(db.data(), y.data(), 2, 3);
  CHECK((db == std::vector<float>{0.5f, 1, 12.5f}));
}

TEST(vector_kernels_match_reference) {
  std::mt19937 rng(23);
  const CpuKernels& ref = ck::scalar_kernels();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int threads : {0, 1, 3}) {
    ck::set_num_threads(threads);
    for (const CpuKernels* k : cktest::vector_tables()) {
      for (int C : {1, 3, 8, 16, 17, 33}) {
        for (size_t rows : {size_t(1), size_t(5), size_t(4099)}) {
          auto y = cktest::random_vector(rng, rows * size_t(C), -8.f, 8.f);
          y[0] = nan;  // EpilogueClamp turns NaN into 0 under relu, keeps it otherwise
          auto b = cktest::random_vector(rng, size_t(C));
          for (Act act : {Act::None, Act::Relu, Act::Relu6}) {
            for (const float* bias : {static_cast<const float*>(b.data()), static_cast<const float*>(nullptr)}) {
              std::vector<float> want = y, got = y;
              ref.bias_act_fwd(want.data(), bias, rows, C, act);
              k->bias_act_fwd(got.data(), bias, rows, C, act);
              CHECK(std::isnan(want[0]) == std::isnan(got[0]));
              want[0] = got[0] = 0.f;
              CHECK(want == got);
            }
          }
          auto dy = cktest::random_vector(rng, rows * size_t(C));
          std::vector<float> want(static_cast<size_t>(C)), got(static_cast<size_t>(C), 5.f), again(static_cast<size_t>(C), -5.f);
          ref.bias_grad(want.data(), dy.data(), rows, C);
          k->bias_grad(got.data(), dy.data(), rows, C);
          std::string why;
          if (!cktest::close_for_reduction(got, want, double(rows), &why)) cktest::fail(__FILE__, __LINE__, "bias_grad: " + why);
          k->bias_grad(again.data(), dy.data(), rows, C);
          CHECK(again == got);
        }
      }
    }
  }
  ck::set_num_threads(0);
}

// The smooth fused activations (sigmoid, swish, hard swish): the reference against float64,
// every ISA against the reference and, bit for bit, against its own activation_fwd of y + b.
TEST(smooth_fused_activations_match_float64_and_separate_activation) {
  std::mt19937 rng(29);
  const CpuKernels& ref = ck::scalar_kernels();
  for (int C : {3, 16, 33}) {
    const size_t rows = 37;
    auto y = cktest::random_vector(rng, rows * size_t(C), -8.f, 8.f);
    auto b = cktest::random_vector(rng, size_t(C));
    for (Act act : cktest::smooth_epilogue_acts()) {
      std::vector<float> want = y;
      ref.bias_act_fwd(want.data(), b.data(), rows, C, act);
      for (size_t i = 0; i < want.size(); ++i) {
        CHECK_NEAR(want[i], cktest::epilogue_act_f64(double(y[i]) + b[i % size_t(C)], act), 2e-6);
      }
      for (const CpuKernels* k : cktest::vector_tables()) {
        std::vector<float> got = y, plain = y;
        k->bias_act_fwd(got.data(), b.data(), rows, C, act);
        std::string why;
        CHECK(cktest::all_close(got.data(), want.data(), want.size(), 1e-5f, 1e-6f, &why));
        k->bias_act_fwd(plain.data(), b.data(), rows, C, Act::None);
        CHECK(cktest::same_as_separate_activation(*k, plain, got, act));
      }
    }
  }
}

CK_TEST_MAIN()
