// The preprocessing layers' kernels: the reference against hand-computed values, and every
// vector ISA against the reference bitwise (rescale: one fused multiply-add per value), in place
// and out of place, over lengths around the vector width and thread counts.
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

CK_TEST_MAIN()
