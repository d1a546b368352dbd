// conv2d kernels: the scalar reference against hand-computed values and finite differences, and
// every vector ISA this CPU runs against the reference on many odd shapes.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "check.h"
#include "conv_shapes.h"
#include "kernel_check.h"
#include "errors.h"
#include "kernels.h"
#include "thread_pool.h"

using ck::Act;
using ck::ConvParams;
using ck::CpuKernels;
using ck::Isa;
using cktest::conv_shape;
using cktest::describe;

namespace {

// Runs all passes of `k` and of the reference on p and compares them.
void compare_all(const CpuKernels& k, const ConvParams& p, std::mt19937& rng) {
  const CpuKernels& ref = ck::scalar_kernels();
  std::string tag = std::string(ck::isa_name(k.isa)) + " " + describe(p);
  auto x = cktest::random_vector(rng, p.x_size());
  auto w = cktest::random_vector(rng, p.w_size());
  auto b = cktest::random_vector(rng, size_t(p.K));
  auto dy = cktest::random_vector(rng, p.y_size());
  const double red_fwd = double(p.R) * p.S * p.C, red_bwd = double(p.R) * p.S * p.K;
  const double red_filter = double(p.N) * p.P * p.Q;

  std::vector<float> y0(p.y_size(), 7.f), y1(p.y_size(), -7.f);
  ref.conv2d_fwd(y0.data(), x.data(), w.data(), nullptr, p, Act::None);
  k.conv2d_fwd(y1.data(), x.data(), w.data(), nullptr, p, Act::None);
  EXPECT_CLOSE(y1, y0, red_fwd, "fwd " + tag);
  ref.conv2d_fwd(y0.data(), x.data(), w.data(), b.data(), p, Act::Relu);
  k.conv2d_fwd(y1.data(), x.data(), w.data(), b.data(), p, Act::Relu);
  EXPECT_CLOSE(y1, y0, red_fwd, "fwd bias relu " + tag);
  ref.conv2d_fwd(y0.data(), x.data(), w.data(), b.data(), p, Act::None);
  k.conv2d_fwd(y1.data(), x.data(), w.data(), b.data(), p, Act::None);
  EXPECT_CLOSE(y1, y0, red_fwd, "fwd bias " + tag);
  // ReLU6: a bias in [0, 8] puts outputs on both sides of 6
  std::vector<float> b6(b.size());
  for (size_t i = 0; i < b.size(); ++i) b6[i] = 4.f + 4.f * b[i];
  ref.conv2d_fwd(y0.data(), x.data(), w.data(), b6.data(), p, Act::Relu6);
  k.conv2d_fwd(y1.data(), x.data(), w.data(), b6.data(), p, Act::Relu6);
  EXPECT_CLOSE(y1, y0, red_fwd, "fwd bias relu6 " + tag);

  // Weights packed once ahead (inference) give conv2d_fwd's result bit for bit; the HWIO
  // weights handed beside them are NaN, so an output made from them instead would show.
  const size_t packed_floats = k.conv2d_packed_floats(p);
  if (packed_floats > 0) {
    std::vector<float> packed(packed_floats, std::nanf("")), nan_w(w.size(), std::nanf(""));
    k.conv2d_pack_weights(packed.data(), w.data(), p);
    k.conv2d_fwd(y0.data(), x.data(), w.data(), b6.data(), p, Act::Relu6);
    k.conv2d_fwd_packed(y1.data(), x.data(), nan_w.data(), packed.data(), b6.data(), p, Act::Relu6);
    CHECK(std::memcmp(y0.data(), y1.data(), y0.size() * sizeof(float)) == 0);
  }
  k.conv2d_fwd_packed(y1.data(), x.data(), w.data(), nullptr, b.data(), p, Act::Relu);
  ref.conv2d_fwd(y0.data(), x.data(), w.data(), b.data(), p, Act::Relu);
  EXPECT_CLOSE(y1, y0, red_fwd, "fwd_packed unpacked relu " + tag);

  std::vector<float> dx0(p.x_size(), 7.f), dx1(p.x_size(), -7.f);
  ref.conv2d_bwd_data(dx0.data(), dy.data(), w.data(), p);
  k.conv2d_bwd_data(dx1.data(), dy.data(), w.data(), p);
  EXPECT_CLOSE(dx1, dx0, red_bwd, "bwd_data " + tag);

  std::vector<float> dw0(p.w_size(), 7.f), dw1(p.w_size(), -7.f);
  std::vector<float> db0(size_t(p.K), 7.f), db1(size_t(p.K), -7.f);
  ref.conv2d_bwd_filter(dw0.data(), db0.data(), dy.data(), x.data(), p);
  k.conv2d_bwd_filter(dw1.data(), db1.data(), dy.data(), x.data(), p);
  EXPECT_CLOSE(dw1, dw0, red_filter, "bwd_filter dw " + tag);
  EXPECT_CLOSE(db1, db0, red_filter, "bwd_filter db " + tag);
  std::fill(dw1.begin(), dw1.end(), -3.f);
  k.conv2d_bwd_filter(dw1.data(), nullptr, dy.data(), x.data(), p);
  EXPECT_CLOSE(dw1, dw0, red_filter, "bwd_filter (no db) " + tag);
}

ConvParams random_shape(std::mt19937& rng) {
  auto U = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (;;) {
    int R = U(1, 5), S = U(1, 5), dh = U(1, 3) == 3 ? 2 : 1, dw = U(1, 3) == 3 ? 2 : 1;
    int sh = U(1, 3) == 3 ? U(2, 3) : 1, sw = U(1, 3) == 3 ? U(2, 3) : 1;
    int H = U(1, 14), W = U(1, 14);
    int pt = U(0, R), pb = U(0, R), pl = U(0, S), pr = U(0, S);
    int C = U(1, 3) == 1 ? U(1, 4) : U(1, 40);
    int K = U(1, 3) == 1 ? U(1, 5) : U(1, 90);
    ConvParams p = conv_shape(U(1, 3), H, W, C, K, R, S, sh, sw, pt, pb, pl, pr, dh, dw);
    if (p.P >= 1 && p.Q >= 1) return p;
  }
}

}  // namespace

// The seed tutorial's edge detector: one 3x3 window, one channel, valid convolution.
TEST(reference_edge_filter_gives_175) {
  ConvParams p = conv_shape(1, 3, 3, 1, 1, 3, 3);
  CHECK(p.P == 1 && p.Q == 1);
  std::vector<float> x = {150, 45, 25, 250, 200, 80, 215, 250, 235};
  std::vector<float> w = {0, -1, 0, -1, 4, -1, 0, -1, 0};
  float y = 0;
  ck::scalar_kernels().conv2d_fwd(&y, x.data(), w.data(), nullptr, p, Act::None);
  CHECK_NEAR(y, 175.0, 1e-4);
  for (Isa isa : cktest::vector_isas()) {
    float yv = 0;
    ck::cpu_kernels(isa).conv2d_fwd(&yv, x.data(), w.data(), nullptr, p, Act::None);
    CHECK_NEAR(yv, 175.0, 1e-4);
  }
}

// Ten 3x3x3 filters over a 32x32x3 image with no padding: a 30x30x10 output.
TEST(ten_filters_on_32x32x3_give_30x30x10) {
  const int Wd = 32, F = 3, Pd = 0, Sd = 1;
  const int out = (Wd - F + 2 * Pd) / Sd + 1;
  CHECK(out == 30);
  ConvParams p = conv_shape(1, 32, 32, 3, 10, 3, 3);
  CHECK(p.P == out && p.Q == out);
  CHECK(p.y_size() == size_t(30 * 30 * 10));
  std::mt19937 rng(3);
  for (Isa isa : cktest::vector_isas()) compare_all(ck::cpu_kernels(isa), p, rng);
}

// A hand-computed 3x3 input, 2x2 kernel, top/left padding 1, bias -40 and ReLU.
TEST(reference_hand_computed_padding_bias_relu) {
  ConvParams p = conv_shape(1, 3, 3, 1, 1, 2, 2, 1, 1, 1, 0, 1, 0);
  CHECK(p.P == 3 && p.Q == 3);
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<float> w = {1, 2, 3, 4};
  std::vector<float> want = {4, 11, 18, 18, 37, 47, 36, 67, 77};
  std::vector<float> y(9);
  ck::scalar_kernels().conv2d_fwd(y.data(), x.data(), w.data(), nullptr, p, Act::None);
  for (int i = 0; i < 9; ++i) CHECK_NEAR(y[i], want[i], 1e-5);
  float b = -40;
  ck::scalar_kernels().conv2d_fwd(y.data(), x.data(), w.data(), &b, p, Act::Relu);
  for (int i = 0; i < 9; ++i) CHECK_NEAR(y[i], std::max(want[i] - 40.f, 0.f), 1e-5);
  // ReLU6 (MobileNet's): min(max(x, 0), 6), with bias -40 the outputs are -36 .. 37
  ck::scalar_kernels().conv2d_fwd(y.data(), x.data(), w.data(), &b, p, Act::Relu6);
  for (int i = 0; i < 9; ++i) CHECK_NEAR(y[i], std::min(std::max(want[i] - 40.f, 0.f), 6.f), 1e-5);
  // Two channels in, two filters out: channel 1 is channel 0 doubled, filter 1 reads only it.
  ConvParams q = conv_shape(1, 3, 3, 2, 2, 2, 2, 1, 1, 1, 0, 1, 0);
  std::vector<float> x2(18), w2(16, 0.f), y2(18);
  for (int i = 0; i < 9; ++i) x2[2 * i] = x[i], x2[2 * i + 1] = 2 * x[i];
  for (int t = 0; t < 4; ++t) {
    w2[(t * 2 + 0) * 2 + 0] = w[t];  // filter 0 <- channel 0
    w2[(t * 2 + 1) * 2 + 1] = w[t];  // filter 1 <- channel 1
  }
  for (const CpuKernels* k : {&ck::scalar_kernels()}) {
    k->conv2d_fwd(y2.data(), x2.data(), w2.data(), nullptr, q, Act::None);
    for (int i = 0; i < 9; ++i) {
      CHECK_NEAR(y2[2 * i], want[i], 1e-5);
      CHECK_NEAR(y2[2 * i + 1], 2 * want[i], 1e-5);
    }
  }
}

TEST(unsupported_fused_activation_throws) {
  ConvParams p = conv_shape(1, 3, 3, 1, 1, 3, 3);
  std::vector<float> x(9, 1.f), w(9, 1.f);
  float y = 0;
  std::vector<const CpuKernels*> tables = {&ck::scalar_kernels()};
  for (Isa isa : cktest::vector_isas()) tables.push_back(&ck::cpu_kernels(isa));
  for (const CpuKernels* k : tables) {
    for (Act act : {Act::LeakyRelu, Act::Elu, Act::Tanh, Act::ClippedRelu, Act::Gelu, Act::Mish}) {
      bool threw = false;
      try {
        k->conv2d_fwd(&y, x.data(), w.data(), nullptr, p, act);
      } catch (const ck::Error& e) {
        threw = e.kind() == ck::ErrorKind::Value;
      }
      CHECK(threw);
    }
  }
}

// The smooth fused activations (sigmoid, swish, hard swish) on every forward path: the direct
// small-reduction kernel (1x1 and 3x3), the indirect GEMM (reductions past the direct kernel's
// bound) with vector and dot tiles (K below half a vector), weights packed ahead. The reference
// against float64 loops; every ISA against the reference, and bit for bit against its own
// act-free output passed through its activation_fwd. Biases in [-8, 8] put outputs in both
// saturated tails and at hard swish's corners.
TEST(smooth_fused_activations_match_float64_and_separate_activation) {
  const CpuKernels& ref = ck::scalar_kernels();
  std::mt19937 rng(17);
  for (const ConvParams& p : {conv_shape(2, 7, 9, 24, 37, 1, 1), conv_shape(1, 5, 6, 600, 20, 1, 1),
                              conv_shape(2, 6, 5, 70, 3, 3, 3, 1, 1, 1, 1, 1, 1),
                              conv_shape(1, 9, 8, 16, 48, 3, 3, 2, 2, 1, 1, 1, 1),
                              conv_shape(1, 4, 4, 200, 2, 1, 1)}) {
    const std::string tag = describe(p);
    auto x = cktest::random_vector(rng, p.x_size());
    auto w = cktest::random_vector(rng, p.w_size(), -0.2f, 0.2f);
    auto b = cktest::random_vector(rng, size_t(p.K), -8.f, 8.f);
    const double red = double(p.R) * p.S * p.C;
    for (Act act : cktest::smooth_epilogue_acts()) {
      std::vector<float> y0(p.y_size(), 7.f);
      ref.conv2d_fwd(y0.data(), x.data(), w.data(), b.data(), p, act);
      for (int n = 0; n < p.N; ++n)
        for (int op = 0; op < p.P; ++op)
          for (int oq = 0; oq < p.Q; ++oq)
            for (int k = 0; k < p.K; ++k) {
              double s = b[size_t(k)];
              for (int r = 0; r < p.R; ++r)
                for (int c = 0; c < p.S * p.C; ++c) {
                  const int h = op * p.stride_h - p.pad_h + r * p.dil_h, wi = oq * p.stride_w - p.pad_w + c / p.C;
                  if (h < 0 || h >= p.H || wi < 0 || wi >= p.W) continue;
                  s += double(x[((size_t(n) * p.H + h) * p.W + wi) * p.C + size_t(c % p.C)]) *
                       w[(size_t(r) * p.S * p.C + size_t(c)) * p.K + size_t(k)];
                }
              const size_t i = ((size_t(n) * p.P + op) * p.Q + oq) * p.K + size_t(k);
              CHECK_NEAR(y0[i], cktest::epilogue_act_f64(s, act), 1e-5 * std::sqrt(red) + 1e-6);
            }
      for (Isa isa : cktest::vector_isas()) {
        const CpuKernels& k = ck::cpu_kernels(isa);
        std::vector<float> y1(p.y_size(), -7.f), plain(p.y_size(), -7.f);
        k.conv2d_fwd(y1.data(), x.data(), w.data(), b.data(), p, act);
        EXPECT_CLOSE(y1, y0, red, std::string(ck::isa_name(isa)) + " fused act " + tag);
        k.conv2d_fwd(plain.data(), x.data(), w.data(), b.data(), p, Act::None);
        CHECK(cktest::same_as_separate_activation(k, plain, y1, act));
        const size_t packed_floats = k.conv2d_packed_floats(p);
        if (packed_floats > 0) {
          std::vector<float> packed(packed_floats), y2(p.y_size(), 3.f);
          k.conv2d_pack_weights(packed.data(), w.data(), p);
          k.conv2d_fwd_packed(y2.data(), x.data(), w.data(), packed.data(), b.data(), p, act);
          CHECK(std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)) == 0);
        }
      }
    }
  }
}

// Gradients of loss = sum(y * g) by the reference backward passes against central differences
// of the reference forward pass (computed in double from the float outputs).
TEST(reference_gradients_match_finite_differences) {
  const CpuKernels& ref = ck::scalar_kernels();
  std::mt19937 rng(11);
  for (const ConvParams& p :
       {conv_shape(2, 5, 4, 3, 2, 3, 2, 2, 1, 1, 1, 0, 1, 1, 2), conv_shape(1, 4, 5, 2, 3, 2, 3, 1, 2, 0, 1, 1, 1),
        conv_shape(1, 6, 6, 2, 2, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2)}) {
    auto x = cktest::random_vector(rng, p.x_size());
    auto w = cktest::random_vector(rng, p.w_size());
    auto b = cktest::random_vector(rng, size_t(p.K));
    auto g = cktest::random_vector(rng, p.y_size());
    std::vector<float> y(p.y_size());
    auto loss = [&]() {
      ref.conv2d_fwd(y.data(), x.data(), w.data(), b.data(), p, Act::None);
      double s = 0;
      for (size_t i = 0; i < y.size(); ++i) s += double(y[i]) * g[i];
      return s;
    };
    std::vector<float> dx(p.x_size()), dw(p.w_size()), db(size_t(p.K));
    ref.conv2d_bwd_data(dx.data(), g.data(), w.data(), p);
    ref.conv2d_bwd_filter(dw.data(), db.data(), g.data(), x.data(), p);
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
    for (size_t i = 0; i < x.size(); ++i) CHECK_NEAR(dx[i], numeric(x[i]), 2e-3);
    for (size_t i = 0; i < w.size(); ++i) CHECK_NEAR(dw[i], numeric(w[i]), 2e-3);
    for (size_t i = 0; i < b.size(); ++i) CHECK_NEAR(db[i], numeric(b[i]), 2e-3);
  }
}

TEST(vector_kernels_match_reference_on_edge_shapes) {
  std::mt19937 rng(1);
  for (Isa isa : cktest::vector_isas()) {
    for (const ConvParams& p : cktest::conv_edge_shapes()) compare_all(ck::cpu_kernels(isa), p, rng);
  }
}

TEST(vector_kernels_match_reference_on_random_shapes) {
  std::mt19937 rng(2);
  for (int it = 0; it < 150; ++it) {
    ConvParams p = random_shape(rng);
    for (Isa isa : cktest::vector_isas()) compare_all(ck::cpu_kernels(isa), p, rng);
  }
}

// The benchmark layers' shapes at a small batch (the tiling paths the real sizes take).
TEST(vector_kernels_match_reference_on_model_layers) {
  std::mt19937 rng(4);
  std::vector<ConvParams> shapes = {
      conv_shape(2, 28, 28, 1, 32, 5, 5),          conv_shape(2, 12, 12, 32, 64, 5, 5),
      conv_shape(2, 32, 32, 3, 32, 3, 3, 1, 1, 1, 1, 1, 1), conv_shape(1, 32, 32, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1),
      conv_shape(2, 16, 16, 32, 64, 3, 3, 1, 1, 1, 1, 1, 1), conv_shape(1, 16, 16, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1),
      conv_shape(1, 14, 14, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1)};
  for (Isa isa : cktest::vector_isas()) {
    for (const ConvParams& p : shapes) compare_all(ck::cpu_kernels(isa), p, rng);
  }
}

// Few input channels (R*S*C up to 160) take the direct forward kernel of conv2d_small.simd.cpp:
// tiles of several output pixels along a row x up to 4 vectors of output channels, input rows
// read in place or from a zero-padded copy. These shapes cover C = 1..4 and 12, 'valid' and
// 'same', strides 1 and 2, dilation, batch 1, odd K (partial vectors, several column blocks),
// rows shorter and longer than a tile, 1x1 images, and rows too wide for one padded band.
TEST(vector_kernels_match_reference_with_few_input_channels) {
  std::mt19937 rng(7);
  std::vector<ConvParams> shapes;
  for (int C : {1, 3}) {
    for (int K : {7, 32, 33}) {
      shapes.push_back(conv_shape(1, 28, 28, C, K, 5, 5));                     // 'valid'
      shapes.push_back(conv_shape(2, 17, 31, C, K, 3, 3, 1, 1, 1, 1, 1, 1));   // 'same'
      shapes.push_back(conv_shape(1, 15, 37, C, K, 3, 3, 2, 2, 0, 1, 0, 1));   // 'same' stride 2
      shapes.push_back(conv_shape(3, 13, 11, C, K, 5, 5, 2, 2));                // 'valid' stride 2
      shapes.push_back(conv_shape(2, 1, 1, C, K, 3, 3, 1, 1, 1, 1, 1, 1));     // 1x1 image
    }
  }
  shapes.push_back(conv_shape(1, 1, 1, 1, 1, 1, 1));
  shapes.push_back(conv_shape(2, 9, 10, 2, 16, 2, 4, 1, 3, 0, 1, 2, 1));       // left pad, stride 3
  shapes.push_back(conv_shape(1, 12, 12, 4, 70, 3, 3, 1, 1, 1, 1, 1, 1));      // K = 70: 5 vectors
  shapes.push_back(conv_shape(1, 12, 12, 12, 100, 3, 3, 1, 1, 1, 1, 1, 1));    // R*S*C = 108
  shapes.push_back(conv_shape(2, 10, 9, 16, 20, 3, 3, 1, 1, 1, 1, 1, 1));      // R*S*C = 144
  shapes.push_back(conv_shape(1, 30, 30, 3, 16, 7, 7, 2, 2, 2, 3, 2, 3));      // 7x7 stride-2 stem
  shapes.push_back(conv_shape(2, 11, 13, 3, 9, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2));  // dilation 2, 'same'
  shapes.push_back(conv_shape(1, 14, 9, 1, 5, 4, 2, 1, 1, 0, 0, 0, 0, 3, 1));  // dilation in h only
  shapes.push_back(conv_shape(1, 20, 700, 3, 8, 3, 3, 1, 1, 1, 1, 1, 1));      // several padded bands
  shapes.push_back(conv_shape(1, 24, 900, 1, 8, 5, 5, 2, 2, 2, 2, 2, 2));      // bands at stride 2
  shapes.push_back(conv_shape(1, 9, 5, 1, 3, 7, 7, 1, 1, 3, 3, 3, 3));         // kernel wider than the image
  for (Isa isa : cktest::vector_isas()) {
    for (const ConvParams& p : shapes) compare_all(ck::cpu_kernels(isa), p, rng);
  }
}

// Pointwise layers (1x1, unit strides, no padding) tile their N*P*Q pixels as one run, across
// image and row ends, in rows of a few tiles or one per thread: runs shorter than a tile, of
// one row, of several rows with a short last one, batches of 1x1 images; every thread count
// gives the same bits.
TEST(pointwise_layers_match_reference_and_thread_counts) {
  std::mt19937 rng(8);
  const std::vector<ConvParams> shapes = {conv_shape(3, 7, 7, 24, 37, 1, 1), conv_shape(1, 14, 14, 96, 40, 1, 1),
                                          conv_shape(2, 5, 9, 150, 24, 1, 1), conv_shape(5, 1, 1, 16, 8, 1, 1),
                                          conv_shape(1, 1, 3, 7, 9, 1, 1), conv_shape(4, 28, 28, 32, 16, 1, 1)};
  for (Isa isa : cktest::vector_isas()) {
    const CpuKernels& k = ck::cpu_kernels(isa);
    for (const ConvParams& p : shapes) {
      compare_all(k, p, rng);
      auto x = cktest::random_vector(rng, p.x_size()), w = cktest::random_vector(rng, p.w_size());
      auto b = cktest::random_vector(rng, size_t(p.K));
      std::vector<float> y1(p.y_size()), yn(p.y_size());
      ck::set_num_threads(1);
      k.conv2d_fwd(y1.data(), x.data(), w.data(), b.data(), p, Act::Swish);
      for (int threads : {2, 3}) {
        ck::set_num_threads(threads);
        k.conv2d_fwd(yn.data(), x.data(), w.data(), b.data(), p, Act::Swish);
        CHECK(std::memcmp(y1.data(), yn.data(), y1.size() * sizeof(float)) == 0);
      }
      ck::set_num_threads(0);
    }
  }
}

// Other thread counts (uneven chunks, three partial dw buffers) give the same answers. The
// kernels keep products under a few MFLOP on one thread, so these shapes are big enough to
// split.
TEST(vector_kernels_match_reference_with_other_thread_counts) {
  std::mt19937 rng(5);
  for (int threads : {1, 3}) {
    ck::set_num_threads(threads);
    for (Isa isa : cktest::vector_isas()) {
      for (const ConvParams& p : {conv_shape(3, 9, 7, 5, 19, 3, 3, 1, 1, 1, 1, 1, 1),
                                  conv_shape(8, 16, 16, 16, 33, 3, 3, 1, 1, 1, 1, 1, 1),
                                  conv_shape(24, 20, 18, 13, 40, 3, 3, 2, 2, 1, 1, 1, 1),
                                  conv_shape(40, 10, 10, 8, 70, 3, 1, 1, 1, 0, 0, 0, 0),
                                  conv_shape(3, 28, 28, 1, 32, 5, 5),
                                  conv_shape(1, 32, 32, 3, 32, 3, 3, 1, 1, 1, 1, 1, 1)}) {
        compare_all(ck::cpu_kernels(isa), p, rng);
      }
    }
  }
  ck::set_num_threads(0);
}

// Same inputs, same thread count: bitwise identical dw, db, y and dx.
TEST(vector_kernels_are_deterministic) {
  std::mt19937 rng(6);
  ConvParams p = conv_shape(12, 13, 11, 12, 40, 3, 3, 1, 1, 1, 1, 1, 1);  // big enough to split
  auto x = cktest::random_vector(rng, p.x_size());
  auto w = cktest::random_vector(rng, p.w_size());
  auto dy = cktest::random_vector(rng, p.y_size());
  for (Isa isa : cktest::vector_isas()) {
    const CpuKernels& k = ck::cpu_kernels(isa);
    std::vector<float> dw0(p.w_size()), dw1(p.w_size()), db0(size_t(p.K)), db1(size_t(p.K));
    k.conv2d_bwd_filter(dw0.data(), db0.data(), dy.data(), x.data(), p);
    k.conv2d_bwd_filter(dw1.data(), db1.data(), dy.data(), x.data(), p);
    CHECK(std::memcmp(dw0.data(), dw1.data(), dw0.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(db0.data(), db1.data(), db0.size() * sizeof(float)) == 0);
    std::vector<float> y0(p.y_size()), y1(p.y_size()), dx0(p.x_size()), dx1(p.x_size());
    k.conv2d_fwd(y0.data(), x.data(), w.data(), nullptr, p, Act::None);
    k.conv2d_fwd(y1.data(), x.data(), w.data(), nullptr, p, Act::None);
    CHECK(std::memcmp(y0.data(), y1.data(), y0.size() * sizeof(float)) == 0);
    k.conv2d_bwd_data(dx0.data(), dy.data(), w.data(), p);
    k.conv2d_bwd_data(dx1.data(), dy.data(), w.data(), p);
    CHECK(std::memcmp(dx0.data(), dx1.data(), dx0.size() * sizeof(float)) == 0);
  }
  // The forward and backward-data passes split work without changing any sum's order, so
  // they are bitwise identical across thread counts too.
  for (Isa isa : cktest::vector_isas()) {
    const CpuKernels& k = ck::cpu_kernels(isa);
    std::vector<float> y0(p.y_size()), y1(p.y_size());
    ck::set_num_threads(1);
    k.conv2d_fwd(y0.data(), x.data(), w.data(), nullptr, p, Act::None);
    ck::set_num_threads(3);
    k.conv2d_fwd(y1.data(), x.data(), w.data(), nullptr, p, Act::None);
    CHECK(std::memcmp(y0.data(), y1.data(), y0.size() * sizeof(float)) == 0);
  }
  ck::set_num_threads(0);
}

CK_TEST_MAIN()
