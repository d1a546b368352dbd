// The preprocessing layers' kernels: the reference against hand-computed values, and every
// vector ISA against the reference bitwise (rescale: one fused multiply-add per value;
// normalize: sqrt, max, subtract and divide, each correctly rounded), in place and out of place,
// over lengths and channel counts around the vector width and thread counts.
#include <cmath>
#include <random>
#include <vector>

#include "kernel_check.h"
#include "thread_pool.h"

using ck::CpuKernels;

TEST(reference_worked_examples) {
  const CpuKernels& ref = ck::scalar_kernels();
  std::vector<float> x = {0, 255, -2, 127.5f}, y(4, 9.f);
  ref.rescale(y.data(), x.data(), 4, 0.5f, -1.f);
  CHECK((y == std::vector<float>{-1, 126.5f, -2, 62.75f}));
  // One rounding: 3 * fl(1/3) is 1 + 2^-25 exactly, so 3 * fl(1/3) - 1 keeps 2^-25, where a
  // product rounded first (to 1) would leave 0.
  const float third = 1.f / 3.f;
  std::vector<float> three = {3.f}, out(1);
  ref.rescale(out.data(), three.data(), 1, third, -1.f);
  CHECK(out[0] == std::ldexp(1.f, -25));
}

TEST(vector_kernels_match_reference) {
  std::mt19937 rng(31);
  const CpuKernels& ref = ck::scalar_kernels();
  for (int threads : {0, 1, 3}) {
    ck::set_num_threads(threads);
    for (const CpuKernels* k : cktest::vector_tables()) {
      for (size_t n : {size_t(0), size_t(1), size_t(7), size_t(16), size_t(17), size_t(100003)}) {
        auto x = cktest::random_vector(rng, n, -300.f, 300.f);
        std::vector<float> want(n), got(n, 5.f), inplace = x;
        ref.rescale(want.data(), x.data(), n, 1.f / 255.f, -0.5f);
        k->rescale(got.data(), x.data(), n, 1.f / 255.f, -0.5f);
        CHECK(want == got);
        k->rescale(inplace.data(), inplace.data(), n, 1.f / 255.f, -0.5f);
        CHECK(want == inplace);
      }
    }
  }
  ck::set_num_threads(0);
}

TEST(normalize_channels_reference_worked_examples) {
  const CpuKernels& ref = ck::scalar_kernels();
  // Two rows of three channels; the last channel's variance 0 divides by Keras's epsilon 1e-7.
  std::vector<float> x = {1, 4, 3, 7, -2, 3}, mean = {1, 2, 3}, var = {4, 0.25f, 0}, y(6);
  ref.normalize_channels(y.data(), x.data(), mean.data(), var.data(), 2, 3);
  CHECK((y == std::vector<float>{0, 4, 0, 3, -8, 0}));
  std::vector<float> x2 = {1, 1, 1e-7f}, y2(3);
  ref.normalize_channels(y2.data(), x2.data(), nullptr, var.data(), 1, 3);
  CHECK((y2 == std::vector<float>{0.5f, 2, 1}));
}

TEST(normalize_channels_vector_kernels_match_reference) {
  std::mt19937 rng(37);
  const CpuKernels& ref = ck::scalar_kernels();
  for (int threads : {0, 1, 3}) {
    ck::set_num_threads(threads);
    for (const CpuKernels* k : cktest::vector_tables()) {
      for (int C : {1, 3, 8, 16, 17, 33}) {
        for (size_t rows : {size_t(1), size_t(5), size_t(4099)}) {
          auto x = cktest::random_vector(rng, rows * size_t(C), -8.f, 8.f);
          auto mean = cktest::random_vector(rng, size_t(C));
          auto var = cktest::random_vector(rng, size_t(C), 0.f, 4.f);
          var[0] = 0.f;  // the epsilon's lane
          for (const float* m : {static_cast<const float*>(mean.data()), static_cast<const float*>(nullptr)}) {
            std::vector<float> want(x.size()), got(x.size(), 5.f), inplace = x;
            ref.normalize_channels(want.data(), x.data(), m, var.data(), rows, C);
            k->normalize_channels(got.data(), x.data(), m, var.data(), rows, C);
            CHECK(want == got);
            k->normalize_channels(inplace.data(), inplace.data(), m, var.data(), rows, C);
            CHECK(want == inplace);
          }
        }
      }
    }
  }
  ck::set_num_threads(0);
}

CK_TEST_MAIN()
