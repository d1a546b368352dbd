// Merge kernels (add, accumulate, scale, concatenation along the last axis and its split):
// the reference against hand-computed values, and every vector ISA against the reference on
// odd lengths (vector tails), in place, and over thread counts.
#include <random>
#include <vector>

#include "kernel_check.h"
#include "thread_pool.h"

using ck::CpuKernels;

TEST(reference_worked_examples) {
  const CpuKernels& ref = ck::scalar_kernels();
  std::vector<float> a = {1, 2, 3}, b = {10, 20, 30}, y(3);
  ref.add(y.data(), a.data(), b.data(), 3);
  CHECK((y == std::vector<float>{11, 22, 33}));
  ref.accumulate(y.data(), a.data(), 3);
  CHECK((y == std::vector<float>{12, 24, 36}));
  ref.scale(y.data(), y.data(), 0.5f, 3);
  CHECK((y == std::vector<float>{6, 12, 18}));
  // Two rows of [2] and [3] columns -> two rows of 5.
  std::vector<float> p0 = {1, 2, 3, 4}, p1 = {5, 6, 7, 8, 9, 10}, cat(10);
  const float* parts[] = {p0.data(), p1.data()};
  const int widths[] = {2, 3};
  ref.concat_last(cat.data(), parts, widths, 2, 2);
  CHECK((cat == std::vector<float>{1, 2, 5, 6, 7, 3, 4, 8, 9, 10}));
  std::vector<float> s0(4), s1(6);
  float* outs[] = {s0.data(), s1.data()};
  ref.split_last(outs, cat.data(), widths, 2, 2);
  CHECK(s0 == p0 && s1 == p1);
}

TEST(vector_kernels_match_reference) {
  std::mt19937 rng(41);
  const CpuKernels& ref = ck::scalar_kernels();
  for (int threads : {0, 1, 3}) {
    ck::set_num_threads(threads);
    for (const CpuKernels* k : cktest::vector_tables()) {
      for (size_t n : {size_t(1), size_t(7), size_t(16), size_t(33), size_t(1000), size_t(200003)}) {
        auto a = cktest::random_vector(rng, n), b = cktest::random_vector(rng, n);
        std::vector<float> y0(n), y1(n);
        ref.add(y0.data(), a.data(), b.data(), n);
        k->add(y1.data(), a.data(), b.data(), n);
        CHECK(y0 == y1);
        ref.accumulate(y0.data(), a.data(), n);
        k->accumulate(y1.data(), a.data(), n);
        CHECK(y0 == y1);
        ref.scale(y0.data(), y0.data(), -0.75f, n);  // in place
        k->scale(y1.data(), y1.data(), -0.75f, n);
        CHECK(y0 == y1);
        std::vector<float> in_place = a;
        k->add(in_place.data(), in_place.data(), b.data(), n);
        ref.add(y0.data(), a.data(), b.data(), n);
        CHECK(in_place == y0);
      }
      for (size_t rows : {size_t(1), size_t(5), size_t(4001)}) {
        const std::vector<int> widths = {1, 16, 3, 33};
        std::vector<std::vector<float>> parts;
        std::vector<const float*> ptrs;
        size_t total = 0;
        for (int w : widths) {
          parts.push_back(cktest::random_vector(rng, rows * size_t(w)));
          ptrs.push_back(parts.back().data());
          total += size_t(w);
        }
        std::vector<float> y0(rows * total), y1(rows * total, 7.f);
        ref.concat_last(y0.data(), ptrs.data(), widths.data(), 4, rows);
        k->concat_last(y1.data(), ptrs.data(), widths.data(), 4, rows);
        CHECK(y0 == y1);
        std::vector<std::vector<float>> back;
        std::vector<float*> outs;
        for (int w : widths) back.emplace_back(rows * size_t(w), 7.f);
        for (auto& v : back) outs.push_back(v.data());
        k->split_last(outs.data(), y1.data(), widths.data(), 4, rows);
        for (size_t i = 0; i < parts.size(); ++i) CHECK(back[i] == parts[i]);
      }
    }
  }
  ck::set_num_threads(0);
}

CK_TEST_MAIN()
