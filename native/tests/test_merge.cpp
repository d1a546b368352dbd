// Merge kernels (add, accumulate, scale, concatenation along the last axis and its split):
// the reference against hand-computed values, and every vector ISA against the reference on
// odd lengths (vector tails), in place, and over thread counts.
#include <algorithm>
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
  // A null part is skipped: the other still gets its band.
  std::vector<float> only1(6, -1.f);
  float* skip0[] = {nullptr, only1.data()};
  ref.split_last(skip0, cat.data(), widths, 2, 2);
  CHECK(only1 == p1);
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
        // Null parts are skipped: only part 2's band is written.
        for (auto& v : back) std::fill(v.begin(), v.end(), 7.f);
        std::vector<float*> one(4, nullptr);
        one[2] = back[2].data();
        k->split_last(one.data(), y1.data(), widths.data(), 4, rows);
        CHECK(back[2] == parts[2]);
        for (size_t i : {size_t(0), size_t(1), size_t(3)}) CHECK(std::all_of(back[i].begin(), back[i].end(), [](float v) { return v == 7.f; }));
      }
    }
  }
  ck::set_num_threads(0);
}

CK_TEST_MAIN()

// The spatially broadcast multiply against hand-computed values: 2 examples, 2 pixels, 2 channels.
TEST(mul_spatial_worked_example) {
  const CpuKernels& ref = ck::scalar_kernels();
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8}, g = {10, 100, -1, 0.5f}, y(8), dg(4);
  ref.mul_spatial(y.data(), x.data(), g.data(), 2, 2, 2);
  CHECK((y == std::vector<float>{10, 200, 30, 400, -5, 3, -7, 4}));
  std::vector<float> dy = {1, 1, 2, -1, 0.5f, 1, 1, 3};
  ref.mul_spatial_bwd_gate(dg.data(), dy.data(), x.data(), 2, 2, 2);
  // dg[0] = (1*1 + 2*3, 1*2 - 1*4), dg[1] = (0.5*5 + 1*7, 1*6 + 3*8)
  CHECK((dg == std::vector<float>{7, -2, 9.5f, 30}));
}

// The gate gradient is the derivative of sum(w * y) by g, which central differences of the
// reference's forward give independently.
TEST(mul_spatial_gate_gradient_matches_finite_differences) {
  std::mt19937 rng(43);
  const CpuKernels& ref = ck::scalar_kernels();
  const size_t n = 2, hw = 5;
  const int C = 3;
  auto x = cktest::random_vector(rng, n * hw * size_t(C)), w = cktest::random_vector(rng, x.size());
  auto g = cktest::random_vector(rng, n * size_t(C));
  auto loss = [&](const std::vector<float>& gate) {
    std::vector<float> y(x.size());
    ref.mul_spatial(y.data(), x.data(), gate.data(), n, hw, C);
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += double(w[i]) * y[i];
    return s;
  };
  std::vector<double> want = cktest::numeric_gradient(g, loss);
  std::vector<float> dg(g.size());
  ref.mul_spatial_bwd_gate(dg.data(), w.data(), x.data(), n, hw, C);
  for (size_t i = 0; i < dg.size(); ++i) CHECK(std::fabs(dg[i] - want[i]) < 1e-3);
}

// Every vector ISA against the reference (the product bitwise, the gate's sums within a
// reduction's rounding): channel counts below, at and past the vector width and the gate
// kernel's register block (tails), in place, over thread counts.
TEST(mul_spatial_vector_kernels_match_reference) {
  std::mt19937 rng(47);
  const CpuKernels& ref = ck::scalar_kernels();
  for (int threads : {0, 1, 3}) {
    ck::set_num_threads(threads);
    for (const CpuKernels* k : cktest::vector_tables()) {
      for (int C : {1, 7, 16, 67, 130}) {
        for (size_t hw : {size_t(1), size_t(9), size_t(196)}) {
          for (size_t n : {size_t(1), size_t(3)}) {
            const size_t m = n * hw * size_t(C);
            auto x = cktest::random_vector(rng, m), dy = cktest::random_vector(rng, m);
            auto g = cktest::random_vector(rng, n * size_t(C));
            std::vector<float> y0(m), y1(m, 7.f), dg0(g.size()), dg1(g.size(), 7.f);
            ref.mul_spatial(y0.data(), x.data(), g.data(), n, hw, C);
            k->mul_spatial(y1.data(), x.data(), g.data(), n, hw, C);
            CHECK(y0 == y1);
            k->mul_spatial(x.data(), x.data(), g.data(), n, hw, C);  // in place
            CHECK(x == y0);
            ref.mul_spatial_bwd_gate(dg0.data(), dy.data(), y0.data(), n, hw, C);
            k->mul_spatial_bwd_gate(dg1.data(), dy.data(), y0.data(), n, hw, C);
            std::string why;
            CHECK(cktest::close_for_reduction(dg1, dg0, double(hw), &why));
          }
        }
      }
    }
  }
  ck::set_num_threads(0);
}
