// Activations, softmax, dropout and mul: vector variants against the reference, the reference
// against finite differences and known values, and extreme inputs.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "kernel_check.h"
#include "thread_pool.h"

namespace {
const ck::Act kActs[] = {ck::Act::None,     ck::Act::Relu,      ck::Act::LeakyRelu,   ck::Act::Elu,
                         ck::Act::Sigmoid,  ck::Act::Tanh,      ck::Act::ClippedRelu, ck::Act::Relu6,
                         ck::Act::Gelu,     ck::Act::GeluTanh,  ck::Act::Swish,       ck::Act::HardSwish,
                         ck::Act::HardSigmoid, ck::Act::Softplus, ck::Act::Selu,      ck::Act::Mish};

// The gradient through act at x (output y) with the kernel its contract names.
void activation_grad(const ck::CpuKernels& k, float* dx, const float* dy, const float* x, const float* y, size_t n,
                     ck::Act act, float alpha) {
  if (ck::act_grad_from_output(act)) k.activation_bwd(dx, dy, y, n, act, alpha);
  else k.activation_bwd_from_x(dx, dy, x, n, act, alpha);
}
}  // namespace

TEST(vector_activations_match_reference) {
  std::mt19937 rng(3);
  const ck::CpuKernels& ref = ck::scalar_kernels();
  for (const ck::CpuKernels* k : cktest::vector_tables()) {
    for (size_t n : {size_t(1), size_t(7), size_t(33), size_t(100003)}) {
      auto x = cktest::random_vector(rng, n, -6.f, 6.f);
      auto dy = cktest::random_vector(rng, n);
      for (ck::Act act : kActs) {
        float alpha = act == ck::Act::Elu ? 1.f : act == ck::Act::ClippedRelu ? 4.5f : 0.2f;
        std::vector<float> a(n), b(n), da(n), db(n);
        ref.activation_fwd(a.data(), x.data(), n, act, alpha);
        k->activation_fwd(b.data(), x.data(), n, act, alpha);
        CHECK_ALL_CLOSE(b.data(), a.data(), n, 2e-6f, 2e-6f);
        activation_grad(ref, da.data(), dy.data(), x.data(), a.data(), n, act, alpha);
        activation_grad(*k, db.data(), dy.data(), x.data(), a.data(), n, act, alpha);
        CHECK_ALL_CLOSE(db.data(), da.data(), n, 1e-6f, 1e-6f);
      }
      std::vector<float> a(n), b(n);
      ref.mul(a.data(), x.data(), dy.data(), n);
      k->mul(b.data(), x.data(), dy.data(), n);
      CHECK_ALL_CLOSE(b.data(), a.data(), n, 0.f, 0.f);
    }
  }
}

TEST(activations_saturate_without_nan) {
  float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {-inf, -1e30f, -100.f, -9.5f, 0.f, 9.5f, 100.f, 1e30f, inf};
  std::vector<const ck::CpuKernels*> tables = cktest::vector_tables();
  tables.push_back(&ck::scalar_kernels());
  for (const ck::CpuKernels* k : tables) {
    std::vector<float> y(x.size());
    k->activation_fwd(y.data(), x.data(), x.size(), ck::Act::Sigmoid, 0.f);
    CHECK(y[0] == 0.f && y[8] == 1.f && std::fabs(y[4] - 0.5f) < 1e-7f);
    for (float v : y) CHECK(std::isfinite(v));
    k->activation_fwd(y.data(), x.data(), x.size(), ck::Act::Tanh, 0.f);
    CHECK(y[0] == -1.f && y[8] == 1.f && y[4] == 0.f && std::fabs(y[5] - std::tanh(9.5f)) < 1e-6f);
    for (float v : y) CHECK(std::isfinite(v));
  }
}

// Far out, every table's newer activations reach their asymptotes, finite, value and slope:
// y -> y_neg, slope 0 as x -> -inf; y -> slope_pos * x + c_pos as x -> +inf.
TEST(newer_activations_reach_their_asymptotes) {
  struct Limit { ck::Act act; float y_neg, slope_pos, c_pos; };
  const Limit limits[] = {{ck::Act::Gelu, 0.f, 1.f, 0.f},        {ck::Act::GeluTanh, 0.f, 1.f, 0.f},
                          {ck::Act::Swish, 0.f, 1.f, 0.f},       {ck::Act::HardSwish, 0.f, 1.f, 0.f},
                          {ck::Act::HardSigmoid, 0.f, 0.f, 1.f}, {ck::Act::Softplus, 0.f, 1.f, 0.f},
                          {ck::Act::Selu, -ck::kSeluScale * ck::kSeluAlpha, ck::kSeluScale, 0.f},
                          {ck::Act::Mish, 0.f, 1.f, 0.f}};
  const std::vector<float> x = {-1e30f, -100.f, -20.f, 20.f, 100.f, 1e30f};
  const std::vector<float> ones(x.size(), 1.f);
  std::vector<const ck::CpuKernels*> tables = cktest::vector_tables();
  tables.push_back(&ck::scalar_kernels());
  for (const ck::CpuKernels* k : tables) {
    for (const Limit& l : limits) {
      std::vector<float> y(x.size()), dx(x.size());
      k->activation_fwd(y.data(), x.data(), x.size(), l.act, 0.f);
      k->activation_bwd_from_x(dx.data(), ones.data(), x.data(), x.size(), l.act, 0.f);
      for (size_t i = 0; i < x.size(); ++i) {
        const bool pos = x[i] > 0;
        const float want_y = pos ? l.slope_pos * x[i] + l.c_pos : l.y_neg, want_dx = pos ? l.slope_pos : 0.f;
        CHECK(std::isfinite(y[i]) && std::isfinite(dx[i]));
        CHECK(std::fabs(y[i] - want_y) <= 1e-6f * std::max(1.f, std::fabs(want_y)));
        CHECK(std::fabs(dx[i] - want_dx) <= 1e-6f);
      }
    }
  }
}

// Each gradient kernel is NaN for the acts of the other's contract, so a mix-up shows.
TEST(gradient_kernels_refuse_the_other_kernels_acts) {
  const std::vector<float> v = {0.5f, -0.5f, 2.f};
  std::vector<const ck::CpuKernels*> tables = cktest::vector_tables();
  tables.push_back(&ck::scalar_kernels());
  for (const ck::CpuKernels* k : tables) {
    for (ck::Act act : kActs) {
      std::vector<float> dx(v.size());
      if (ck::act_grad_from_output(act)) k->activation_bwd_from_x(dx.data(), v.data(), v.data(), v.size(), act, 0.2f);
      else k->activation_bwd(dx.data(), v.data(), v.data(), v.size(), act, 0.2f);
      for (float d : dx) CHECK(std::isnan(d));
    }
  }
}

// The vector max/min follow x86's maxps (a > b ? a : b), not a NaN-propagating max (NEON's
// FMAX): ReLU maps NaN to 0 as the reference's x > 0 ? x : 0 does, on every ISA.
TEST(relu_maps_nan_to_zero_as_the_reference_does) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> x = {nan, -nan, -0.f, 2.f, -3.f, nan, 7.f, nan, nan};
  for (const ck::CpuKernels* k : cktest::vector_tables()) {
    for (ck::Act act : {ck::Act::Relu, ck::Act::Relu6}) {
      std::vector<float> y(x.size(), -1.f);
      k->activation_fwd(y.data(), x.data(), x.size(), act, 0.f);
      const std::vector<float> want = {0.f, 0.f, 0.f, 2.f, 0.f, 0.f, act == ck::Act::Relu ? 7.f : 6.f, 0.f, 0.f};
      CHECK_ALL_CLOSE(y.data(), want.data(), x.size(), 0.f, 0.f);
    }
  }
  std::vector<float> y(x.size());
  ck::scalar_kernels().activation_fwd(y.data(), x.data(), x.size(), ck::Act::Relu, 0.f);
  CHECK(y[0] == 0.f && y[1] == 0.f && y[5] == 0.f);
}

TEST(reference_activation_gradients_match_finite_differences) {
  std::mt19937 rng(4);
  const ck::CpuKernels& ref = ck::scalar_kernels();
  auto x = cktest::random_vector(rng, 40, -4.f, 4.f);
  // Away from the kinks: relu's at 0, the hard ones' at -3 and 3, clippedRelu's at alpha.
  for (float& v : x) {
    for (float kink : {0.f, -3.f, 3.f, 2.5f}) if (std::fabs(v - kink) < 0.05f) v = kink + 0.3f;
  }
  auto w = cktest::random_vector(rng, 40);
  for (ck::Act act : kActs) {
    float alpha = act == ck::Act::Elu ? 1.f : act == ck::Act::ClippedRelu ? 2.5f : 0.2f;
    auto loss = [&](const std::vector<float>& in) {
      std::vector<float> y(in.size());
      ref.activation_fwd(y.data(), in.data(), in.size(), act, alpha);
      return cktest::weighted_sum(y, w);
    };
    std::vector<float> y(40), dx(40);
    ref.activation_fwd(y.data(), x.data(), 40, act, alpha);
    activation_grad(ref, dx.data(), w.data(), x.data(), y.data(), 40, act, alpha);
    CHECK_GRADIENT("activation dx", dx, cktest::numeric_gradient(x, loss, 1e-3f));
  }
}

TEST(softmax_known_values_vectors_and_gradient) {
  const ck::CpuKernels& ref = ck::scalar_kernels();
  std::vector<float> x = {1, 2, 3}, y(3);
  ref.softmax_fwd(y.data(), x.data(), 1, 3);
  double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  CHECK_NEAR(y[0], std::exp(1.0) / z, 1e-7);
  CHECK_NEAR(y[2], std::exp(3.0) / z, 1e-7);
  std::mt19937 rng(5);
  for (size_t cols : {size_t(1), size_t(10), size_t(17), size_t(64)}) {
    size_t rows = 13;
    auto in = cktest::random_vector(rng, rows * cols, -20.f, 20.f);
    auto dy = cktest::random_vector(rng, rows * cols);
    std::vector<float> a(rows * cols), b(rows * cols), da(a.size()), db(a.size());
    ref.softmax_fwd(a.data(), in.data(), rows, cols);
    ref.softmax_bwd(da.data(), dy.data(), a.data(), rows, cols);
    for (const ck::CpuKernels* k : cktest::vector_tables()) {
      k->softmax_fwd(b.data(), in.data(), rows, cols);
      CHECK_ALL_CLOSE(b.data(), a.data(), a.size(), 1e-5f, 1e-7f);
      k->softmax_bwd(db.data(), dy.data(), a.data(), rows, cols);
      CHECK_ALL_CLOSE(db.data(), da.data(), da.size(), 1e-5f, 1e-6f);
    }
    auto loss = [&](const std::vector<float>& v) {
      std::vector<float> o(v.size());
      ref.softmax_fwd(o.data(), v.data(), rows, cols);
      return cktest::weighted_sum(o, dy);
    };
    auto small = cktest::random_vector(rng, rows * cols, -2.f, 2.f);
    ref.softmax_fwd(a.data(), small.data(), rows, cols);
    ref.softmax_bwd(da.data(), dy.data(), a.data(), rows, cols);
    CHECK_GRADIENT("softmax dx", da, cktest::numeric_gradient(small, loss, 1e-3f));
  }
}

TEST(dropout_masks_are_seeded_and_identical_everywhere) {
  const size_t n = 100000;
  std::vector<float> x(n, 1.f), y(n), mask(n), y2(n), mask2(n);
  const ck::CpuKernels& ref = ck::scalar_kernels();
  ref.dropout_fwd(y.data(), mask.data(), x.data(), n, 0.3f, 42);
  size_t zeros = 0;
  for (size_t i = 0; i < n; ++i) {
    zeros += mask[i] == 0.f;
    CHECK(mask[i] == 0.f || std::fabs(mask[i] - 1.f / 0.7f) < 1e-6f);
  }
  CHECK(std::fabs(double(zeros) / n - 0.3) < 0.01);
  for (const ck::CpuKernels* k : cktest::vector_tables()) {
    for (int threads : {1, 2, 3}) {
      ck::set_num_threads(threads);
      k->dropout_fwd(y2.data(), mask2.data(), x.data(), n, 0.3f, 42);
      CHECK(mask2 == mask && y2 == y);
    }
    ck::set_num_threads(0);
  }
  ref.dropout_fwd(y2.data(), mask2.data(), x.data(), n, 0.3f, 43);
  CHECK(mask2 != mask);
  ref.dropout_fwd(y2.data(), mask2.data(), x.data(), n, 0.f, 43);
  for (size_t i = 0; i < n; ++i) CHECK(mask2[i] == 1.f);
}

TEST(relu_zeroes_negatives) {
  std::vector<float> x = {-0.11f, 0.77f, -1.f, 0.f, 0.33f}, y(5), want = {0.f, 0.77f, 0.f, 0.f, 0.33f};
  ck::scalar_kernels().activation_fwd(y.data(), x.data(), 5, ck::Act::Relu, 0.f);
  CHECK_ALL_CLOSE(y.data(), want.data(), 5, 0.f, 0.f);
}

CK_TEST_MAIN()
