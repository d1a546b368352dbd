// GPU parity: every entry of ck::cuda_kernels() against the scalar reference ck::scalar_kernels()
// on the host, over edge shapes (1x1 images, C or K = 1, odd channel counts, sizes off the tile
// size, misaligned pointers) and random shapes, with tolerances scaled by the reduction length;
// bitwise checks where the GPU must match exactly (dropout masks, pooling routes, counts) and a
// determinism check (same inputs -> bitwise-identical outputs). Needs no Node.
//
//   test_cuda_parity            all cases; exits 0 with a message when there is no GPU
//   test_cuda_parity --quick    fewer random shapes (for compute-sanitizer)
//   test_cuda_parity --bench    times conv2d on N=256, 56x56x64 -> 64, 3x3 'same' (and a GEMM)
//                               in fp32, TF32 and bf16
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cuda/gpu_test_support.h"
#include "precision.h"

using ck::Act;
using ck::ConvParams;
using ck::LabelMode;
using ck::PoolParams;
using ck::cuda::DeviceArray;
using namespace gputest;

namespace {

// The forward passes' variants: 0 without a bias and act, then with a bias, each epilogue act.
constexpr Act kVariantAct[] = {Act::None, Act::Relu, Act::None, Act::Relu6, Act::Sigmoid, Act::Swish, Act::HardSwish};
constexpr int kVariants = int(sizeof kVariantAct / sizeof kVariantAct[0]);

// All passes of conv2d on p, GPU against the reference. misalign: data pointers offset by one
// float (the kernels' non-vector paths).
void compare_conv(const ConvParams& p, std::mt19937& rng, bool misalign = false) {
  const std::string tag = describe(p) + (misalign ? " misaligned" : "");
  const size_t off = misalign ? 1 : 0;
  Vec x = rnd(rng, p.x_size()), w = rnd(rng, p.w_size()), b = rnd(rng, size_t(p.K));
  Vec dy = rnd(rng, p.y_size());
  const double red_fwd = double(p.R) * p.S * p.C, red_bwd = double(p.R) * p.S * p.K;
  const double red_filter = double(p.N) * p.P * p.Q;
  Dev dx_(x, off), dw_(w, off), db_(b, off), ddy(dy, off);

  for (int variant = 0; variant < kVariants; ++variant) {
    const float* bias = variant == 0 ? nullptr : b.data();
    const Act act = kVariantAct[variant];
    Vec want(p.y_size());
    ref().conv2d_fwd(want.data(), x.data(), w.data(), bias, p, act);
    Dev y = Dev::out(p.y_size(), off);
    gpu().conv2d_fwd(y.p(), dx_.p(), dw_.p(), bias ? db_.p() : nullptr, p, act, g_stream);
    EXPECT_CLOSE(y.host(), want, red_fwd, "conv2d fwd " + std::to_string(variant) + " " + tag);
  }
  {
    Vec want(p.x_size());
    ref().conv2d_bwd_data(want.data(), dy.data(), w.data(), p);
    Dev dx = Dev::out(p.x_size(), off);
    gpu().conv2d_bwd_data(dx.p(), ddy.p(), dw_.p(), p, g_stream);
    EXPECT_CLOSE(dx.host(), want, red_bwd, "conv2d bwd_data " + tag);
  }
  {
    Vec want_w(p.w_size()), want_b(size_t(p.K));
    ref().conv2d_bwd_filter(want_w.data(), want_b.data(), dy.data(), x.data(), p);
    Dev gw = Dev::out(p.w_size(), off), gb = Dev::out(size_t(p.K), off);
    gpu().conv2d_bwd_filter(gw.p(), gb.p(), ddy.p(), dx_.p(), p, g_stream);
    EXPECT_CLOSE(gw.host(), want_w, red_filter, "conv2d bwd_filter dw " + tag);
    EXPECT_CLOSE(gb.host(), want_b, red_filter, "conv2d bwd_filter db " + tag);
    Dev gw2 = Dev::out(p.w_size(), off);
    gpu().conv2d_bwd_filter(gw2.p(), nullptr, ddy.p(), dx_.p(), p, g_stream);
    EXPECT_CLOSE(gw2.host(), want_w, red_filter, "conv2d bwd_filter (no db) " + tag);
  }
}

// ---------------------------------------------------------------- pooling

PoolParams pool(int N, int H, int W, int C, int R, int S, int sh, int sw, bool same, int extra_pad = 0) {
  PoolParams p;
  p.N = N, p.H = H, p.W = W, p.C = C, p.R = R, p.S = S, p.stride_h = sh, p.stride_w = sw;
  if (same) {
    p.P = (H + sh - 1) / sh, p.Q = (W + sw - 1) / sw;
    int th = std::max((p.P - 1) * sh + R - H, 0), tw = std::max((p.Q - 1) * sw + S - W, 0);
    p.pad_h = th / 2, p.pad_w = tw / 2;
  } else {
    p.pad_h = p.pad_w = extra_pad;
    p.P = (H + 2 * extra_pad - R) / sh + 1, p.Q = (W + 2 * extra_pad - S) / sw + 1;
  }
  return p;
}

}  // namespace

// ================================================================== tests

TEST(conv2d_edge_shapes) {
  std::mt19937 rng(1);
  for (const ConvParams& p : gpu_conv_edge_shapes()) compare_conv(p, rng);
}

TEST(conv2d_random_shapes) {
  std::mt19937 rng(2);
  for (int i = 0; i < g_cases; ++i) compare_conv(random_conv(rng), rng);
}

TEST(conv2d_misaligned_pointers) {
  std::mt19937 rng(3);
  for (const ConvParams& p : {conv_same(2, 9, 7, 8, 12, 3, 3), conv_same(3, 5, 5, 16, 64, 3, 3, 2, 2),
                              conv_shape(1, 1, 1, 4, 4, 1, 1)})
    compare_conv(p, rng, true);
}

TEST(conv2d_rejects_other_fused_activations) {
  ConvParams p = conv_shape(1, 3, 3, 1, 1, 3, 3);
  bool threw = false;
  try {
    gpu().conv2d_fwd(nullptr, nullptr, nullptr, nullptr, p, Act::Tanh, g_stream);
  } catch (const ck::Error& e) {
    threw = e.kind() == ck::ErrorKind::Value;
  }
  CHECK(threw);
}

TEST(conv2d_empty_batch_zeroes_filter_gradient) {
  ConvParams p = conv_shape(0, 5, 5, 3, 4, 3, 3);
  Dev gw = Dev::out(p.w_size()), gb = Dev::out(size_t(p.K));
  gpu().conv2d_fwd(nullptr, nullptr, nullptr, nullptr, p, Act::None, g_stream);
  gpu().conv2d_bwd_data(nullptr, nullptr, nullptr, p, g_stream);
  gpu().conv2d_bwd_filter(gw.p(), gb.p(), nullptr, nullptr, p, g_stream);
  EXPECT_EXACT(gw.host(), Vec(p.w_size(), 0.f), "dw");
  EXPECT_EXACT(gb.host(), Vec(size_t(p.K), 0.f), "db");
}

TEST(dense_shapes) {
  std::mt19937 rng(4);
  struct S { int M, K, N; };
  std::vector<S> shapes = {{1, 1, 1},     {3, 17, 33},   {100, 1024, 10}, {1, 4096, 7},
                           {257, 129, 65}, {64, 3136, 10}, {2, 3, 200},    {513, 64, 128},
                           {33, 1, 5},    {7, 300, 1},   {1000, 37, 3},   {4, 4, 4}};
  for (int i = 0; i < g_cases / 2; ++i) shapes.push_back({U(rng, 1, 300), U(rng, 1, 300), U(rng, 1, 300)});
  for (int misalign = 0; misalign < 2; ++misalign) {
    for (const S& s : shapes) {
      if (misalign && s.M > 300) continue;
      const size_t off = size_t(misalign);
      const std::string tag = "M" + std::to_string(s.M) + " K" + std::to_string(s.K) + " N" +
                              std::to_string(s.N) + (misalign ? " misaligned" : "");
      Vec x = rnd(rng, size_t(s.M) * s.K), w = rnd(rng, size_t(s.K) * s.N), b = rnd(rng, size_t(s.N));
      Vec dy = rnd(rng, size_t(s.M) * s.N);
      Dev gx(x, off), gw(w, off), gbias(b, off), gdy(dy, off);
      for (int variant = 0; variant < kVariants; ++variant) {
        const float* bias = variant == 0 ? nullptr : b.data();
        const Act act = kVariantAct[variant];
        Vec want(size_t(s.M) * s.N);
        ref().dense_fwd(want.data(), x.data(), w.data(), bias, s.M, s.K, s.N, act);
        Dev y = Dev::out(want.size(), off);
        gpu().dense_fwd(y.p(), gx.p(), gw.p(), bias ? gbias.p() : nullptr, s.M, s.K, s.N, act, g_stream);
        EXPECT_CLOSE(y.host(), want, s.K, "dense fwd " + std::to_string(variant) + " " + tag);
      }
      Vec want_dx(x.size());
      ref().dense_bwd_data(want_dx.data(), dy.data(), w.data(), s.M, s.K, s.N);
      Dev dx = Dev::out(x.size(), off);
      gpu().dense_bwd_data(dx.p(), gdy.p(), gw.p(), s.M, s.K, s.N, g_stream);
      EXPECT_CLOSE(dx.host(), want_dx, s.N, "dense bwd_data " + tag);
      Vec want_dw(w.size()), want_db(b.size());
      ref().dense_bwd_filter(want_dw.data(), want_db.data(), dy.data(), x.data(), s.M, s.K, s.N);
      Dev dw = Dev::out(w.size(), off), db = Dev::out(b.size(), off);
      gpu().dense_bwd_filter(dw.p(), db.p(), gdy.p(), gx.p(), s.M, s.K, s.N, g_stream);
      EXPECT_CLOSE(dw.host(), want_dw, s.M, "dense bwd_filter dw " + tag);
      EXPECT_CLOSE(db.host(), want_db, s.M, "dense bwd_filter db " + tag);
      Dev dw2 = Dev::out(w.size(), off);
      gpu().dense_bwd_filter(dw2.p(), nullptr, gdy.p(), gx.p(), s.M, s.K, s.N, g_stream);
      EXPECT_CLOSE(dw2.host(), want_dw, s.M, "dense bwd_filter (no db) " + tag);
    }
  }
}

TEST(dense_long_reduction_split_k) {
  std::mt19937 rng(5);
  for (auto s : {std::array<int, 3>{20000, 9, 11}, std::array<int, 3>{3, 50000, 5}}) {
    const int M = s[0], K = s[1], N = s[2];
    Vec x = rnd(rng, size_t(M) * K), w = rnd(rng, size_t(K) * N), dy = rnd(rng, size_t(M) * N);
    Vec want(size_t(M) * N), want_dw(w.size()), want_db(static_cast<size_t>(N));
    ref().dense_fwd(want.data(), x.data(), w.data(), nullptr, M, K, N, Act::None);
    ref().dense_bwd_filter(want_dw.data(), want_db.data(), dy.data(), x.data(), M, K, N);
    Dev gx(x), gw(w), gdy(dy), y = Dev::out(want.size()), dw = Dev::out(w.size()), db = Dev::out(size_t(N));
    gpu().dense_fwd(y.p(), gx.p(), gw.p(), nullptr, M, K, N, Act::None, g_stream);
    gpu().dense_bwd_filter(dw.p(), db.p(), gdy.p(), gx.p(), M, K, N, g_stream);
    EXPECT_CLOSE(y.host(), want, K, "dense fwd long K");
    EXPECT_CLOSE(dw.host(), want_dw, M, "dense bwd_filter long M");
    EXPECT_CLOSE(db.host(), want_db, M, "dense bwd_filter db long M");
  }
}

TEST(pooling_windows) {
  std::mt19937 rng(6);
  std::vector<PoolParams> shapes = {
      pool(2, 7, 7, 3, 2, 2, 2, 2, true),  pool(1, 1, 1, 1, 1, 1, 1, 1, false),
      pool(3, 9, 6, 17, 3, 2, 2, 1, true), pool(2, 8, 8, 33, 3, 3, 1, 1, false),
      pool(1, 1, 1, 5, 3, 3, 1, 1, true),  pool(2, 5, 4, 1, 3, 3, 2, 2, true),
      pool(1, 6, 6, 2, 2, 2, 2, 2, false, 2),  // windows entirely in the padding: 0
      pool(4, 28, 28, 32, 2, 2, 2, 2, false), pool(2, 13, 11, 7, 3, 3, 2, 2, true),
  };
  for (int i = 0; i < g_cases; ++i) {
    int R = U(rng, 1, 4), S = U(rng, 1, 4), sh = U(rng, 1, 3), sw = U(rng, 1, 3);
    bool same = U(rng, 0, 1);
    int H = U(rng, same ? 1 : R, 15), W = U(rng, same ? 1 : S, 15);
    shapes.push_back(pool(U(rng, 1, 3), H, W, U(rng, 1, 40), R, S, sh, sw, same));
  }
  for (size_t si = 0; si < shapes.size(); ++si) {
    const PoolParams& p = shapes[si];
    if (p.P < 1 || p.Q < 1) continue;
    char tag[160];
    std::snprintf(tag, sizeof tag, "N%d H%d W%d C%d R%d S%d P%d Q%d stride %d,%d pad %d,%d", p.N,
                  p.H, p.W, p.C, p.R, p.S, p.P, p.Q, p.stride_h, p.stride_w, p.pad_h, p.pad_w);
    // Small integers (ties: the first-maximum rule) on odd shapes, distinct values otherwise.
    Vec x = si % 2 ? ints(rng, p.x_size()) : rnd(rng, p.x_size());
    Vec dy = rnd(rng, p.y_size());
    Dev gx(x), gdy(dy);
    Vec want(p.y_size()), want_dx(p.x_size());
    ref().maxpool2d_fwd(want.data(), x.data(), p);
    Dev y = Dev::out(p.y_size());
    gpu().maxpool2d_fwd(y.p(), gx.p(), p, g_stream);
    EXPECT_EXACT(y.host(), want, std::string("maxpool fwd ") + tag);
    Dev dx = Dev::out(p.x_size());
    for (bool relu_x : {false, true}) {
      ref().maxpool2d_bwd(want_dx.data(), dy.data(), x.data(), p, relu_x);
      gpu().maxpool2d_bwd(dx.p(), gdy.p(), gx.p(), p, relu_x, g_stream);
      EXPECT_EXACT(dx.host(), want_dx, std::string("maxpool bwd") + (relu_x ? " relu_x " : " ") + tag);
    }
    ref().avgpool2d_fwd(want.data(), x.data(), p);
    gpu().avgpool2d_fwd(y.p(), gx.p(), p, g_stream);
    EXPECT_CLOSE_T(y.host(), want, p.R * p.S, 1.0, 1e-5f, 1e-6, std::string("avgpool fwd ") + tag);
    ref().avgpool2d_bwd(want_dx.data(), dy.data(), p);
    gpu().avgpool2d_bwd(dx.p(), gdy.p(), p, g_stream);
    EXPECT_EXACT(dx.host(), want_dx, std::string("avgpool bwd ") + tag);
  }
  // An infinite gradient reaches only the argmax (no 0 * inf).
  const float inf = std::numeric_limits<float>::infinity();
  PoolParams p = pool(1, 2, 2, 1, 2, 2, 2, 2, false);
  Dev gx(Vec{1, 5, 2, 3}), gdy(Vec{inf}), dx = Dev::out(4);
  gpu().maxpool2d_bwd(dx.p(), gdy.p(), gx.p(), p, false, g_stream);
  EXPECT_EXACT(dx.host(), (Vec{0, inf, 0, 0}), "maxpool bwd inf");
  gpu().global_maxpool_bwd(dx.p(), gdy.p(), gx.p(), 1, 4, 1, g_stream);
  EXPECT_EXACT(dx.host(), (Vec{0, inf, 0, 0}), "global maxpool bwd inf");
}

TEST(global_pooling) {
  std::mt19937 rng(7);
  struct S { int N, HW, C; };
  std::vector<S> shapes = {{1, 1, 1}, {2, 1, 7}, {3, 49, 512}, {1, 3000, 3}, {5, 17, 33},
                           {2, 2500, 70}, {64, 9, 1}};
  for (int i = 0; i < g_cases / 2; ++i) shapes.push_back({U(rng, 1, 6), U(rng, 1, 200), U(rng, 1, 80)});
  for (size_t si = 0; si < shapes.size(); ++si) {
    const S& s = shapes[si];
    const std::string tag = "N" + std::to_string(s.N) + " HW" + std::to_string(s.HW) + " C" + std::to_string(s.C);
    const size_t nx = size_t(s.N) * s.HW * s.C, ny = size_t(s.N) * s.C;
    Vec x = si % 2 ? ints(rng, nx) : rnd(rng, nx), dy = rnd(rng, ny);
    Dev gx(x), gdy(dy), y = Dev::out(ny), dx = Dev::out(nx);
    Vec want(ny), want_dx(nx);
    ref().global_avgpool_fwd(want.data(), x.data(), s.N, s.HW, s.C);
    gpu().global_avgpool_fwd(y.p(), gx.p(), s.N, s.HW, s.C, g_stream);
    EXPECT_CLOSE_T(y.host(), want, s.HW, 1.0, 1e-5f, 1e-6, "global avgpool fwd " + tag);
    ref().global_avgpool_bwd(want_dx.data(), dy.data(), s.N, s.HW, s.C);
    gpu().global_avgpool_bwd(dx.p(), gdy.p(), s.N, s.HW, s.C, g_stream);
    EXPECT_EXACT(dx.host(), want_dx, "global avgpool bwd " + tag);
    ref().global_maxpool_fwd(want.data(), x.data(), s.N, s.HW, s.C);
    gpu().global_maxpool_fwd(y.p(), gx.p(), s.N, s.HW, s.C, g_stream);
    EXPECT_EXACT(y.host(), want, "global maxpool fwd " + tag);
    ref().global_maxpool_bwd(want_dx.data(), dy.data(), x.data(), s.N, s.HW, s.C);
    gpu().global_maxpool_bwd(dx.p(), gdy.p(), gx.p(), s.N, s.HW, s.C, g_stream);
    EXPECT_EXACT(dx.host(), want_dx, "global maxpool bwd " + tag);
  }
}

TEST(activations) {
  std::mt19937 rng(8);
  for (size_t n : {size_t(1), size_t(7), size_t(1000), size_t(100003)}) {
    Vec x = rnd(rng, n, -6.f, 6.f), dy = rnd(rng, n);
    if (n > 3) x[0] = 0.f, x[1] = -0.f, x[2] = 30.f;
    Dev gx(x), gdy(dy);
    for (Act act : {Act::None, Act::Relu, Act::LeakyRelu, Act::Elu, Act::Sigmoid, Act::Tanh, Act::ClippedRelu,
                    Act::Relu6, Act::Gelu, Act::GeluTanh, Act::Swish, Act::HardSwish, Act::HardSigmoid,
                    Act::Softplus, Act::Selu, Act::Mish}) {
      for (float alpha : {0.f, 0.3f, 1.f}) {
        const std::string tag = "act " + std::to_string(int(act)) + " alpha " + std::to_string(alpha) +
                                " n " + std::to_string(n);
        Vec y(n), dx(n);
        ref().activation_fwd(y.data(), x.data(), n, act, alpha);
        Dev gy = Dev::out(n), gdx = Dev::out(n);
        gpu().activation_fwd(gy.p(), gx.p(), n, act, alpha, g_stream);
        EXPECT_CLOSE_T(gy.host(), y, 1, 1.0, 1e-5f, 1e-6, "activation fwd " + tag);
        // The gradient from the reference's y isolates the backward kernel; it must outlive the
        // queued kernel, so it lives until gdx.host() has waited for the stream.
        Dev gyr(y);
        if (ck::act_grad_from_output(act)) {
          ref().activation_bwd(dx.data(), dy.data(), y.data(), n, act, alpha);
          gpu().activation_bwd(gdx.p(), gdy.p(), gyr.p(), n, act, alpha, g_stream);
        } else {
          ref().activation_bwd_from_x(dx.data(), dy.data(), x.data(), n, act, alpha);
          gpu().activation_bwd_from_x(gdx.p(), gdy.p(), gx.p(), n, act, alpha, g_stream);
        }
        EXPECT_CLOSE_T(gdx.host(), dx, 1, 1.0, 1e-5f, 1e-6, "activation bwd " + tag);
      }
    }
  }
}

TEST(softmax) {
  std::mt19937 rng(9);
  struct S { size_t rows, cols; };
  for (S s : {S{1, 1}, S{7, 10}, S{300, 33}, S{5, 1000}, S{2, 5000}, S{1000, 2}}) {
    const std::string tag = std::to_string(s.rows) + "x" + std::to_string(s.cols);
    const size_t n = s.rows * s.cols;
    Vec x = rnd(rng, n, -8.f, 8.f), dy = rnd(rng, n);
    Vec y(n), dx(n);
    ref().softmax_fwd(y.data(), x.data(), s.rows, s.cols);
    Dev gx(x), gdy(dy), gy = Dev::out(n), gdx = Dev::out(n);
    gpu().softmax_fwd(gy.p(), gx.p(), s.rows, s.cols, g_stream);
    EXPECT_CLOSE_T(gy.host(), y, s.cols, 1.0, 1e-4f, 1e-6, "softmax fwd " + tag);
    ref().softmax_bwd(dx.data(), dy.data(), y.data(), s.rows, s.cols);
    Dev gyr(y);
    gpu().softmax_bwd(gdx.p(), gdy.p(), gyr.p(), s.rows, s.cols, g_stream);
    EXPECT_CLOSE_T(gdx.host(), dx, s.cols, 1.0, 1e-4f, 1e-6, "softmax bwd " + tag);
  }
}

TEST(dropout_masks_match_the_cpu_bitwise) {
  std::mt19937_64 rng(10);
  std::mt19937 rng32(10);
  for (size_t n : {size_t(1), size_t(33), size_t(100003)}) {
    for (float rate : {0.f, 0.3f, 0.5f, 0.9f}) {
      const uint64_t seed = rng();
      Vec x = rnd(rng32, n), y(n), mask(n);
      ref().dropout_fwd(y.data(), mask.data(), x.data(), n, rate, seed);
      Dev gx(x), gy = Dev::out(n), gm = Dev::out(n);
      gpu().dropout_fwd(gy.p(), gm.p(), gx.p(), n, rate, seed, g_stream);
      const std::string tag = "n " + std::to_string(n) + " rate " + std::to_string(rate);
      EXPECT_EXACT(gm.host(), mask, "dropout mask " + tag);
      EXPECT_EXACT(gy.host(), y, "dropout y " + tag);
      Vec prod(n);
      ref().mul(prod.data(), x.data(), mask.data(), n);
      Dev gp = Dev::out(n);
      gpu().mul(gp.p(), gx.p(), gm.p(), n, g_stream);
      EXPECT_EXACT(gp.host(), prod, "mul " + tag);
    }
  }
}

TEST(batchnorm) {
  std::mt19937 rng(11);
  struct S { size_t rows; int C; };
  std::vector<S> shapes = {{1, 1}, {7, 3}, {2000, 5}, {5000, 64}, {3000, 33}, {2, 130}, {40000, 3}};
  for (int i = 0; i < g_cases / 4; ++i) shapes.push_back({size_t(U(rng, 1, 3000)), U(rng, 1, 70)});
  int variant = 0;
  for (const S& s : shapes) {
    ++variant;
    const size_t n = s.rows * s.C;
    const std::string tag = "rows " + std::to_string(s.rows) + " C " + std::to_string(s.C) +
                            " act " + std::to_string(variant % 5);
    const bool affine = variant % 3 != 0, running = variant % 2 == 1;
    // A fused ReLU / ReLU6 (the executor's batch norm + activation) on some variants.
    const ck::Act act = variant % 5 == 1 ? ck::Act::Relu : variant % 5 == 3 ? ck::Act::Relu6 : ck::Act::None;
    Vec x = rnd(rng, n, 2.f, 4.f);  // an offset mean: the variance must not cancel
    Vec gamma = rnd(rng, size_t(s.C), 0.5f, 1.5f), beta = rnd(rng, size_t(s.C));
    Vec rmean = rnd(rng, size_t(s.C)), rvar = rnd(rng, size_t(s.C), 0.5f, 2.f);
    Vec dy = rnd(rng, n);
    const float eps = 1e-3f, momentum = 0.99f;

    Vec y(n), smean(s.C), sinv(s.C), rm = rmean, rv = rvar;
    ref().batchnorm_fwd_train(y.data(), smean.data(), sinv.data(), running ? rm.data() : nullptr,
                              running ? rv.data() : nullptr, x.data(), affine ? gamma.data() : nullptr,
                              affine ? beta.data() : nullptr, s.rows, s.C, eps, momentum, act);
    Dev gx(x), gg(gamma), gb(beta), grm(rmean), grv(rvar), gdy(dy);
    Dev gy = Dev::out(n), gsm = Dev::out(s.C), gsi = Dev::out(s.C);
    gpu().batchnorm_fwd_train(gy.p(), gsm.p(), gsi.p(), running ? grm.p() : nullptr,
                              running ? grv.p() : nullptr, gx.p(), affine ? gg.p() : nullptr,
                              affine ? gb.p() : nullptr, s.rows, s.C, eps, momentum, act, g_stream);
    EXPECT_CLOSE_T(gsm.host(), smean, 1, 1.0, 1e-5f, 1e-5, "bn save_mean " + tag);
    EXPECT_CLOSE_T(gsi.host(), sinv, 1, 1.0, 1e-4f, 1e-5, "bn save_invstd " + tag);
    EXPECT_CLOSE_T(gy.host(), y, 1, 1.0, 1e-3f, 1e-3, "bn y " + tag);
    if (running) {
      EXPECT_CLOSE_T(grm.host(), rm, 1, 1.0, 1e-5f, 1e-6, "bn running_mean " + tag);
      EXPECT_CLOSE_T(grv.host(), rv, 1, 1.0, 1e-5f, 1e-6, "bn running_var " + tag);
    }

    Vec yi(n);
    ref().batchnorm_fwd_infer(yi.data(), x.data(), affine ? gamma.data() : nullptr,
                              affine ? beta.data() : nullptr, rmean.data(), rvar.data(), s.rows, s.C, eps);
    Dev gyi = Dev::out(n);
    Dev grm0(rmean), grv0(rvar);
    gpu().batchnorm_fwd_infer(gyi.p(), gx.p(), affine ? gg.p() : nullptr, affine ? gb.p() : nullptr,
                              grm0.p(), grv0.p(), s.rows, s.C, eps, g_stream);
    EXPECT_CLOSE_T(gyi.host(), yi, 1, 1.0, 1e-5f, 1e-5, "bn infer " + tag);

    // Backward from the reference's saved statistics.
    Vec dx(n), dgamma(s.C), dbeta(s.C);
    ref().batchnorm_bwd(dx.data(), dgamma.data(), dbeta.data(), dy.data(), x.data(), smean.data(),
                        sinv.data(), affine ? gamma.data() : nullptr, affine ? beta.data() : nullptr, s.rows, s.C, y.data(), act);
    Dev gsm_r(smean), gsi_r(sinv), gy_ref(y), gdx = Dev::out(n), gdg = Dev::out(s.C), gdb = Dev::out(s.C);
    gpu().batchnorm_bwd(gdx.p(), variant % 4 == 0 ? nullptr : gdg.p(), variant % 4 == 0 ? nullptr : gdb.p(),
                        gdy.p(), gx.p(), gsm_r.p(), gsi_r.p(), affine ? gg.p() : nullptr, affine ? gb.p() : nullptr, s.rows, s.C,
                        gy_ref.p(), act, g_stream);
    double scale = 0;  // |dx| grows with gamma * invstd
    for (int c = 0; c < s.C; ++c) scale = std::max(scale, double(sinv[c]) * (affine ? gamma[c] : 1.f));
    EXPECT_CLOSE_T(gdx.host(), dx, 1, scale, 1e-3f, 1e-4, "bn dx " + tag);
    if (variant % 4 != 0) {
      EXPECT_CLOSE_T(gdg.host(), dgamma, double(s.rows), 1.0, 1e-4f, 1e-4, "bn dgamma " + tag);
      EXPECT_CLOSE_T(gdb.host(), dbeta, double(s.rows), 1.0, 1e-4f, 1e-4, "bn dbeta " + tag);
    }
  }
}

TEST(groupnorm) {
  std::mt19937 rng(12);
  struct S { size_t N, S; int C, G; };
  // Layer norm (S = 1, G = 1) and group norm shapes: C/G of 1, below, at and above a warp.
  std::vector<S> shapes = {{1, 1, 1, 1}, {5, 1, 37, 1}, {300, 1, 256, 1}, {2, 9, 64, 32}, {3, 49, 40, 4},
                           {2, 300, 6, 3}, {1, 2, 70, 1}};
  for (int i = 0; i < g_cases / 8; ++i) {
    const int G = U(rng, 1, 6);
    shapes.push_back({size_t(U(rng, 1, 6)), size_t(U(rng, 1, 60)), G * U(rng, 1, 20), G});
  }
  int variant = 0;
  for (const S& s : shapes) {
    const bool affine = ++variant % 3 != 0, trains = variant % 4 != 0;
    const size_t n = s.N * s.S * size_t(s.C), units = s.N * size_t(s.G);
    const std::string tag = "N " + std::to_string(s.N) + " S " + std::to_string(s.S) + " C " + std::to_string(s.C) +
                            " G " + std::to_string(s.G);
    Vec x = rnd(rng, n, 2.f, 4.f), dy = rnd(rng, n);  // an offset mean: the variance must not cancel
    Vec gamma = rnd(rng, size_t(s.C), 0.5f, 1.5f), beta = rnd(rng, size_t(s.C));
    Vec y(n), mean(units), invstd(units);
    ref().groupnorm_fwd(y.data(), mean.data(), invstd.data(), x.data(), affine ? gamma.data() : nullptr,
                        affine ? beta.data() : nullptr, s.N, s.S, s.C, s.G, 1e-3f);
    Dev gx(x), gg(gamma), gb(beta), gdy(dy), gy = Dev::out(n), gm = Dev::out(units), gi = Dev::out(units);
    gpu().groupnorm_fwd(gy.p(), gm.p(), gi.p(), gx.p(), affine ? gg.p() : nullptr, affine ? gb.p() : nullptr, s.N, s.S,
                        s.C, s.G, 1e-3f, g_stream);
    EXPECT_CLOSE_T(gm.host(), mean, 1, 1.0, 1e-5f, 1e-5, "gn mean " + tag);
    EXPECT_CLOSE_T(gi.host(), invstd, 1, 1.0, 1e-4f, 1e-5, "gn invstd " + tag);
    EXPECT_CLOSE_T(gy.host(), y, 1, 1.0, 1e-3f, 1e-3, "gn y " + tag);
    Dev gy2 = Dev::out(n);
    gpu().groupnorm_fwd(gy2.p(), nullptr, nullptr, gx.p(), affine ? gg.p() : nullptr, affine ? gb.p() : nullptr, s.N,
                        s.S, s.C, s.G, 1e-3f, g_stream);
    EXPECT_EXACT(gy2.host(), gy.host(), "gn inference y " + tag);

    Vec dx(n), dgamma(size_t(s.C)), dbeta(size_t(s.C));
    ref().groupnorm_bwd(dx.data(), dgamma.data(), dbeta.data(), dy.data(), x.data(), mean.data(), invstd.data(),
                        affine ? gamma.data() : nullptr, s.N, s.S, s.C, s.G);
    Dev gm_r(mean), gi_r(invstd), gdx = Dev::out(n), gdg = Dev::out(size_t(s.C)), gdb = Dev::out(size_t(s.C));
    gpu().groupnorm_bwd(gdx.p(), trains ? gdg.p() : nullptr, trains ? gdb.p() : nullptr, gdy.p(), gx.p(), gm_r.p(),
                        gi_r.p(), affine ? gg.p() : nullptr, s.N, s.S, s.C, s.G, g_stream);
    double scale = 0;  // |dx| grows with gamma * invstd
    for (size_t u = 0; u < units; ++u) scale = std::max(scale, double(invstd[u]) * (affine ? 1.5 : 1.0));
    EXPECT_CLOSE_T(gdx.host(), dx, 1, scale, 1e-3f, 1e-4, "gn dx " + tag);
    if (trains) {
      EXPECT_CLOSE_T(gdg.host(), dgamma, double(s.N * s.S), 1.0, 1e-4f, 1e-4, "gn dgamma " + tag);
      EXPECT_CLOSE_T(gdb.host(), dbeta, double(s.N * s.S), 1.0, 1e-4f, 1e-4, "gn dbeta " + tag);
    }
  }
}

TEST(losses) {
  std::mt19937 rng(12);
  struct S { size_t rows, cols; };
  for (S s : {S{1, 1}, S{7, 10}, S{100, 10}, S{33, 1000}, S{3, 3000}, S{257, 2}}) {
    const size_t n = s.rows * s.cols;
    const std::string tag = std::to_string(s.rows) + "x" + std::to_string(s.cols);
    Vec logits = rnd(rng, n, -5.f, 5.f);
    // Dense targets: one-hot rows, some soft rows; sparse: class ids (one out of range).
    Vec dense(n, 0.f), sparse(s.rows);
    for (size_t r = 0; r < s.rows; ++r) {
      size_t k = size_t(U(rng, 0, int(s.cols) - 1));
      sparse[r] = float(k);
      if (r % 5 == 4) {
        for (size_t c = 0; c < s.cols; ++c) dense[r * s.cols + c] = 1.f / float(s.cols);
      } else {
        dense[r * s.cols + k] = 1.f;
      }
    }
    if (s.rows > 2) sparse[1] = float(s.cols + 3), sparse[2] = -1.f;  // ids matching no class
    Dev gl(logits), gd(dense), gs(sparse);
    for (auto [mode, smoothing] : {std::pair{LabelMode::Dense, 0.f}, {LabelMode::Sparse, 0.f},
                                   {LabelMode::Dense, 0.1f}, {LabelMode::Sparse, 0.2f}}) {
      const Vec& t = mode == LabelMode::Dense ? dense : sparse;
      const Dev& gt = mode == LabelMode::Dense ? gd : gs;
      Vec loss(s.rows), dx(n);
      ref().softmax_xent(loss.data(), dx.data(), logits.data(), t.data(), s.rows, s.cols, mode, smoothing, 0.25f);
      Dev gloss = Dev::out(s.rows), gdx = Dev::out(n);
      gpu().softmax_xent(gloss.p(), gdx.p(), gl.p(), gt.p(), s.rows, s.cols, mode, smoothing, 0.25f, g_stream);
      const std::string m = (mode == LabelMode::Dense ? " dense " : " sparse ") + std::to_string(smoothing) + " ";
      EXPECT_CLOSE_T(gloss.host(), loss, s.cols, 1.0, 1e-5f, 1e-5, "softmax_xent loss" + m + tag);
      EXPECT_CLOSE_T(gdx.host(), dx, s.cols, 1.0, 1e-4f, 1e-6, "softmax_xent dx" + m + tag);
      Dev gloss2 = Dev::out(s.rows);
      gpu().softmax_xent(gloss2.p(), nullptr, gl.p(), gt.p(), s.rows, s.cols, mode, smoothing, 1.f, g_stream);
      EXPECT_CLOSE_T(gloss2.host(), loss, s.cols, 1.0, 1e-5f, 1e-5, "softmax_xent (no dx)" + m + tag);
    }
    {  // per-row loss weights, one weight per two rows (an example with two pixel rows)
      Vec loss = rnd(rng, s.rows), dx = logits, w = rnd(rng, (s.rows + 1) / 2, 0.f, 2.f);
      Dev gloss(loss), gdx(dx), gw(w);
      ref().weight_rows(loss.data(), dx.data(), w.data(), s.rows, s.cols, 2);
      gpu().weight_rows(gloss.p(), gdx.p(), gw.p(), s.rows, s.cols, 2, g_stream);
      EXPECT_CLOSE_T(gloss.host(), loss, 1, 1.0, 0.f, 0, "weight_rows loss " + tag);
      EXPECT_CLOSE_T(gdx.host(), dx, 1, 1.0, 0.f, 0, "weight_rows dx " + tag);
    }
    // Binary cross-entropy: targets in [0,1]; probabilities with exact 0 / 1 (clipped).
    Vec bt = rnd(rng, n, 0.f, 1.f), probs = rnd(rng, n, 0.f, 1.f);
    if (n > 2) probs[0] = 0.f, probs[1] = 1.f;
    Dev gbt(bt), gprobs(probs);
    for (bool from_logits : {true, false}) {
      const Vec& in = from_logits ? logits : probs;
      Vec loss(s.rows), dx(n);
      ref().binary_xent(loss.data(), dx.data(), in.data(), bt.data(), s.rows, s.cols, from_logits, 0.5f);
      Dev gloss = Dev::out(s.rows), gdx = Dev::out(n);
      gpu().binary_xent(gloss.p(), gdx.p(), from_logits ? gl.p() : gprobs.p(), gbt.p(), s.rows, s.cols,
                        from_logits, 0.5f, g_stream);
      const std::string m = from_logits ? " logits " : " probs ";
      EXPECT_CLOSE_T(gloss.host(), loss, s.cols, 1.0, 1e-4f, 1e-5, "binary_xent loss" + m + tag);
      EXPECT_CLOSE_T(gdx.host(), dx, 1, 1.0, 1e-4f, 1e-6, "binary_xent dx" + m + tag);
    }
    Vec loss(s.rows), dx(n);
    ref().mse(loss.data(), dx.data(), logits.data(), bt.data(), s.rows, s.cols, 2.f);
    Dev gloss = Dev::out(s.rows), gdx = Dev::out(n);
    gpu().mse(gloss.p(), gdx.p(), gl.p(), gbt.p(), s.rows, s.cols, 2.f, g_stream);
    EXPECT_CLOSE_T(gloss.host(), loss, s.cols, 1.0, 1e-5f, 1e-5, "mse loss " + tag);
    EXPECT_CLOSE_T(gdx.host(), dx, 1, 1.0, 1e-5f, 1e-7, "mse dx " + tag);
    gpu().mse(gloss.p(), nullptr, gl.p(), gbt.p(), s.rows, s.cols, 2.f, g_stream);
    EXPECT_CLOSE_T(gloss.host(), loss, s.cols, 1.0, 1e-5f, 1e-5, "mse (no dx) " + tag);
    // Huber with differences on both sides of delta; KL with probabilities at the clip edges.
    ref().huber(loss.data(), dx.data(), logits.data(), bt.data(), s.rows, s.cols, 1.5f, 2.f);
    gpu().huber(gloss.p(), gdx.p(), gl.p(), gbt.p(), s.rows, s.cols, 1.5f, 2.f, g_stream);
    EXPECT_CLOSE_T(gloss.host(), loss, s.cols, 1.0, 1e-5f, 1e-5, "huber loss " + tag);
    EXPECT_CLOSE_T(gdx.host(), dx, 1, 1.0, 1e-5f, 1e-7, "huber dx " + tag);
    ref().kl_divergence(loss.data(), dx.data(), probs.data(), bt.data(), s.rows, s.cols, 0.5f);
    gpu().kl_divergence(gloss.p(), gdx.p(), gprobs.p(), gbt.p(), s.rows, s.cols, 0.5f, g_stream);
    EXPECT_CLOSE_T(gloss.host(), loss, s.cols, 1.0, 1e-4f, 1e-5, "kl_divergence loss " + tag);
    EXPECT_CLOSE_T(gdx.host(), dx, 1, 1.0, 1e-4f, 1e-6, "kl_divergence dx " + tag);
  }
}

TEST(accuracy_count) {
  std::mt19937 rng(13);
  DeviceArray<uint64_t> count(1);
  struct S { size_t rows, cols; };
  for (S s : {S{1, 1}, S{1, 5}, S{100, 10}, S{5000, 3}, S{77, 1}, S{1000, 1}, S{9, 700}, S{60000, 10}}) {
    const size_t n = s.rows * s.cols;
    const std::string tag = std::to_string(s.rows) + "x" + std::to_string(s.cols);
    Vec pred = ints(rng, n, 0, 4);  // ties: the first maximum wins
    Vec dense = ints(rng, n, 0, 2), sparse(s.rows);
    for (auto& v : sparse) v = float(U(rng, 0, int(s.cols) - 1));
    if (s.rows > 3) sparse[0] = -1.f, sparse[1] = float(s.cols);  // match nothing
    if (s.cols == 1) {
      pred = rnd(rng, n, 0.f, 1.f);
      for (auto& v : dense) v = v > 0 ? 1.f : 0.f;
    }
    Dev gp(pred), gd(dense), gs(sparse);
    for (LabelMode mode : {LabelMode::Dense, LabelMode::Sparse}) {
      if (s.cols == 1 && mode == LabelMode::Sparse) continue;
      const Vec& t = mode == LabelMode::Dense ? dense : sparse;
      size_t want = ref().accuracy_count(pred.data(), t.data(), s.rows, s.cols, mode, 0.5f);
      gpu().accuracy_count(count.data(), gp.p(), (mode == LabelMode::Dense ? gd : gs).p(), s.rows,
                           s.cols, mode, 0.5f, g_stream);
      ck::cuda::stream_sync(g_stream);
      uint64_t got = count.to_host()[0];
      if (got != want) {
        cktest::fail(__FILE__, __LINE__, "accuracy " + tag + " mode " + std::to_string(int(mode)) +
                                             ": " + std::to_string(got) + " vs " + std::to_string(want));
      }
    }
  }
}

// Top-k counts and confusion counts at thresholds: integers, so the device equals the reference
// exactly (ties and NaNs included); the confusion counts add to what the sums hold.
TEST(metric_counts) {
  std::mt19937 rng(15);
  DeviceArray<uint64_t> count(1);
  struct S { size_t rows, cols; };
  for (S s : {S{1, 1}, S{1, 5}, S{100, 10}, S{77, 1}, S{9, 700}, S{3000, 10}}) {
    const size_t n = s.rows * s.cols;
    const std::string tag = std::to_string(s.rows) + "x" + std::to_string(s.cols);
    Vec pred = ints(rng, n, 0, 4);  // many ties
    Vec dense = ints(rng, n, 0, 2), sparse(s.rows);
    for (auto& v : sparse) v = float(U(rng, 0, int(s.cols) - 1));
    if (s.rows > 3) sparse[0] = -1.f, sparse[1] = float(s.cols);  // match nothing
    if (n > 3) pred[2] = std::nanf("");
    Dev gp(pred), gd(dense), gs(sparse);
    for (LabelMode mode : {LabelMode::Dense, LabelMode::Sparse}) {
      for (int k : {1, 2, 5}) {
        const Vec& t = mode == LabelMode::Dense ? dense : sparse;
        size_t want = ref().top_k_count(pred.data(), t.data(), s.rows, s.cols, mode, k);
        gpu().top_k_count(count.data(), gp.p(), (mode == LabelMode::Dense ? gd : gs).p(), s.rows, s.cols, mode, k,
                          g_stream);
        ck::cuda::stream_sync(g_stream);
        if (count.to_host()[0] != want) {
          cktest::fail(__FILE__, __LINE__, "top_k " + tag + " k " + std::to_string(k) + ": " +
                                               std::to_string(count.to_host()[0]) + " vs " + std::to_string(want));
        }
      }
    }
    Vec probs = rnd(rng, n, 0.f, 1.f);
    if (n > 3) probs[0] = 0.5f, probs[1] = std::nanf("");
    Vec th = {-1e-7f, 0.25f, 0.5f, 0.75f, 1.f + 1e-7f};
    Vec th_k = {-1e10f, 0.5f, 2.5f};  // Keras's top-k threshold, and some among the tied whole numbers
    Dev gprobs(probs), gth(th), gth_k(th_k);
    // top_k over probabilities, and over whole numbers with many ties and a NaN.
    for (int top_k : {0, 1, 3, -1}) {
      const bool ties = top_k < 0;
      const int k = ties ? 2 : top_k;
      const Vec& in = ties ? pred : probs;
      const Vec& thresholds = ties ? th_k : th;
      for (int class_id : {-1, 0, int(s.cols) - 1}) {
        std::vector<double> want(4 * thresholds.size(), 2.0);
        ref().threshold_counts(want.data(), in.data(), dense.data(), s.rows, s.cols, class_id, k, thresholds.data(),
                               thresholds.size());
        std::vector<double> start(4 * thresholds.size(), 2.0);
        DeviceArray<double> counts(start);
        gpu().threshold_counts(counts.data(), (ties ? gp : gprobs).p(), gd.p(), s.rows, s.cols, class_id, k,
                               (ties ? gth_k : gth).p(), thresholds.size(), g_stream);
        ck::cuda::stream_sync(g_stream);
        const std::vector<double> got = counts.to_host();
        for (size_t i = 0; i < want.size(); ++i) {
          if (got[i] != want[i]) {
            cktest::fail(__FILE__, __LINE__, "threshold_counts " + tag + " class " + std::to_string(class_id) + " top_k " +
                                                 std::to_string(k) + " [" + std::to_string(i) + "]: " +
                                                 std::to_string(got[i]) + " vs " + std::to_string(want[i]));
          }
        }
      }
    }
    // The confusion matrix over tied predictions (first maximum), both label layouts.
    for (LabelMode mode : {LabelMode::Dense, LabelMode::Sparse}) {
      const size_t classes = s.cols == 1 ? 2 : s.cols;
      std::vector<double> want(classes * classes, 2.0);
      ref().confusion_matrix_counts(want.data(), pred.data(), (mode == LabelMode::Dense ? dense : sparse).data(), s.rows,
                                    s.cols, mode);
      DeviceArray<double> counts(std::vector<double>(classes * classes, 2.0));
      gpu().confusion_matrix_counts(counts.data(), gp.p(), (mode == LabelMode::Dense ? gd : gs).p(), s.rows, s.cols, mode,
                                    g_stream);
      ck::cuda::stream_sync(g_stream);
      if (counts.to_host() != want) {
        cktest::fail(__FILE__, __LINE__, "confusion_matrix_counts " + tag + " mode " + std::to_string(int(mode)));
      }
    }
  }
}

TEST(optimizers) {
  std::mt19937 rng(14);
  for (size_t n : {size_t(1), size_t(10007)}) {
    Vec w0 = rnd(rng, n), s0 = rnd(rng, n, 0.f, 0.1f), s1 = rnd(rng, n, -0.1f, 0.1f);
    std::vector<Vec> grads;
    for (int step = 0; step < 3; ++step) grads.push_back(rnd(rng, n));
    std::vector<Dev> gg;
    for (auto& g : grads) gg.emplace_back(g);
    auto expect = [&](const Dev& d, const Vec& want, const std::string& what) {
      EXPECT_CLOSE_T(d.host(), want, 1, 1.0, 1e-5f, 1e-6, what + " n " + std::to_string(n));
    };
    for (int v = 0; v < 3; ++v) {  // sgd: plain, momentum, nesterov
      ck::SgdParams p;
      p.lr = 0.05f, p.momentum = v ? 0.9f : 0.f, p.nesterov = v == 2;
      Vec w = w0, vel = s1;
      Dev gw(w0), gv(s1);
      for (int step = 0; step < 3; ++step) {
        ref().sgd_update(w.data(), v ? vel.data() : nullptr, grads[step].data(), n, p);
        gpu().sgd_update(gw.p(), v ? gv.p() : nullptr, gg[step].p(), n, p, g_stream);
      }
      expect(gw, w, "sgd w " + std::to_string(v));
      if (v) expect(gv, vel, "sgd velocity " + std::to_string(v));
    }
    for (float wd : {0.f, 0.01f}) {
      ck::AdamParams p;
      p.lr = 0.01f, p.weight_decay = wd;
      Vec w = w0, m = s1, vv = s0;
      Dev gw(w0), gm(s1), gv(s0);
      for (int step = 0; step < 3; ++step) {
        p.step = step + 1;
        ref().adam_update(w.data(), m.data(), vv.data(), grads[step].data(), n, p);
        gpu().adam_update(gw.p(), gm.p(), gv.p(), gg[step].p(), n, p, g_stream);
      }
      expect(gw, w, "adam w wd " + std::to_string(wd));
      expect(gm, m, "adam m");
      expect(gv, vv, "adam v");
    }
    for (int v = 0; v < 4; ++v) {  // rmsprop: plain, momentum, centered, both
      ck::RmspropParams p;
      p.lr = 0.01f, p.momentum = v & 1 ? 0.9f : 0.f, p.centered = v & 2;
      // ms well above mg^2, so that the centered denominator stays positive.
      Vec ms0 = s0;
      for (auto& x : ms0) x = 0.05f + 0.5f * x;
      Vec w = w0, ms = ms0, mom = s1, mg = s1;
      for (auto& x : mg) x *= 0.1f;
      Dev gw(w0), gms(ms0), gmom(s1), gmg(mg);
      for (int step = 0; step < 3; ++step) {
        ref().rmsprop_update(w.data(), ms.data(), (v & 1) ? mom.data() : nullptr,
                             (v & 2) ? mg.data() : nullptr, grads[step].data(), n, p);
        gpu().rmsprop_update(gw.p(), gms.p(), (v & 1) ? gmom.p() : nullptr, (v & 2) ? gmg.p() : nullptr,
                             gg[step].p(), n, p, g_stream);
      }
      expect(gw, w, "rmsprop w " + std::to_string(v));
      expect(gms, ms, "rmsprop ms " + std::to_string(v));
      if (v & 1) expect(gmom, mom, "rmsprop mom");
      if (v & 2) expect(gmg, mg, "rmsprop mg");
    }
    for (float wd : {0.f, 0.01f}) {  // Adagrad and Nadam, with and without weight decay
      ck::AdagradParams ap;
      ap.lr = 0.05, ap.weight_decay = wd;
      ck::NadamParams np;
      np.lr = 0.01, np.weight_decay = wd;
      Vec w = w0, acc = s0, nw = w0, m = s1, vv = s0;
      Dev gw(w0), gacc(s0), gnw(w0), gm(s1), gv(s0);
      for (int step = 0; step < 3; ++step) {
        ref().adagrad_update(w.data(), acc.data(), grads[step].data(), n, ap);
        gpu().adagrad_update(gw.p(), gacc.p(), gg[step].p(), n, ap, g_stream);
        np.step = step + 1;
        ref().nadam_update(nw.data(), m.data(), vv.data(), grads[step].data(), n, np);
        gpu().nadam_update(gnw.p(), gm.p(), gv.p(), gg[step].p(), n, np, g_stream);
      }
      expect(gw, w, "adagrad w wd " + std::to_string(wd));
      expect(gacc, acc, "adagrad accumulator");
      expect(gnw, nw, "nadam w wd " + std::to_string(wd));
      expect(gm, m, "nadam m");
      expect(gv, vv, "nadam v");
    }
  }
}

// add / accumulate / scale are one float operation per element: bitwise equal to the CPU, over
// sizes off the block size, misaligned pointers and in place (y the same array as a or x).
TEST(merges_match_the_cpu_bitwise) {
  std::mt19937 rng(17);
  for (size_t n : {size_t(1), size_t(7), size_t(255), size_t(257), size_t(1000), size_t(300000)}) {
    for (size_t off : {size_t(0), size_t(1)}) {
      const std::string tag = "n " + std::to_string(n) + (off ? " misaligned" : "");
      Vec a = rnd(rng, n, -4.f, 4.f), b = rnd(rng, n, -4.f, 4.f);
      Dev ga(a, off), gb(b, off);

      Vec sum(n);
      ref().add(sum.data(), a.data(), b.data(), n);
      Dev gy = Dev::out(n, off);
      gpu().add(gy.p(), ga.p(), gb.p(), n, g_stream);
      EXPECT_EXACT(gy.host(), sum, "add " + tag);
      Dev in_place(a, off);
      gpu().add(in_place.p(), in_place.p(), gb.p(), n, g_stream);
      EXPECT_EXACT(in_place.host(), sum, "add in place " + tag);

      Vec acc = a;
      ref().accumulate(acc.data(), b.data(), n);
      ref().accumulate(acc.data(), a.data(), n);
      Dev gacc(a, off);
      gpu().accumulate(gacc.p(), gb.p(), n, g_stream);
      gpu().accumulate(gacc.p(), ga.p(), n, g_stream);
      EXPECT_EXACT(gacc.host(), acc, "accumulate twice " + tag);

      for (float s : {0.5f, -1.f / 3.f, 0.f}) {
        Vec scaled(n);
        ref().scale(scaled.data(), a.data(), s, n);
        Dev gs = Dev::out(n, off);
        gpu().scale(gs.p(), ga.p(), s, n, g_stream);
        EXPECT_EXACT(gs.host(), scaled, "scale " + std::to_string(s) + " " + tag);
        Dev gs_in_place(a, off);
        gpu().scale(gs_in_place.p(), gs_in_place.p(), s, n, g_stream);
        EXPECT_EXACT(gs_in_place.host(), scaled, "scale in place " + std::to_string(s) + " " + tag);
      }
    }
  }
  // n == 0 writes nothing.
  Dev untouched(Vec{1.f, 2.f});
  gpu().add(untouched.p(), untouched.p(), untouched.p(), 0, g_stream);
  gpu().accumulate(untouched.p(), untouched.p(), 0, g_stream);
  gpu().scale(untouched.p(), untouched.p(), 3.f, 0, g_stream);
  EXPECT_EXACT(untouched.host(), (Vec{1.f, 2.f}), "merges with n = 0");
}

// sum_into and count_into add to a device double (+=, not =): against plain double loops.
TEST(sum_and_count_accumulators) {
  std::mt19937 rng(18);
  auto read = [](const DeviceArray<double>& acc) {
    ck::cuda::stream_sync(g_stream);
    return acc.to_host()[0];
  };
  for (size_t n : {size_t(0), size_t(1), size_t(31), size_t(256), size_t(257), size_t(1000),
                   size_t(300000)}) {
    for (size_t off : {size_t(0), size_t(1)}) {
      const std::string tag = "n " + std::to_string(n) + (off ? " misaligned" : "");
      Vec x = rnd(rng, n, -2.f, 3.f);
      Dev gx(x, off);
      const double start = 0.75;
      double want = start, magnitude = std::fabs(start);
      for (int rep = 0; rep < 2; ++rep) {
        double s = 0.0;
        for (float v : x) s += double(v), magnitude += std::fabs(double(v));
        want += s;
      }
      DeviceArray<double> acc(std::vector<double>{start});
      gpu().sum_into(acc.data(), gx.p(), n, g_stream);
      gpu().sum_into(acc.data(), gx.p(), n, g_stream);
      const double got = read(acc);
      if (n == 0 ? got != start : !(std::fabs(got - want) <= 1e-9 * magnitude)) {
        cktest::fail(__FILE__, __LINE__, "sum_into twice " + tag + ": " + std::to_string(got) +
                                             " vs " + std::to_string(want));
      }
    }
  }
  // A count above 2^32 (the full 64-bit width) and a divisor that rounds.
  const uint64_t c = (uint64_t(1) << 33) + 12345;
  DeviceArray<uint64_t> count(std::vector<uint64_t>{c});
  for (double divisor : {1.0, 3.0, 64.0}) {
    DeviceArray<double> acc(std::vector<double>{-2.5});
    gpu().count_into(acc.data(), count.data(), divisor, g_stream);
    gpu().count_into(acc.data(), count.data(), divisor, g_stream);
    const double want = -2.5 + double(c) / divisor + double(c) / divisor;
    const double got = read(acc);
    if (got != want) {
      cktest::fail(__FILE__, __LINE__, "count_into twice, divisor " + std::to_string(divisor) +
                                           ": " + std::to_string(got) + " vs " + std::to_string(want));
    }
  }
}

// ------------------------------------------------- functional-model layers

namespace {

// Depthwise convolution with multiplier M on p's geometry (p.K = p.C * M): every pass against
// the reference, and the filter gradient rerun bitwise (fixed-order chunk sums).
void compare_depthwise(const ConvParams& p, std::mt19937& rng, bool misalign = false) {
  const std::string tag =
      describe(p) + " M" + std::to_string(p.K / p.C) + (misalign ? " misaligned" : "");
  const size_t off = misalign ? 1 : 0, wn = size_t(p.R) * p.S * p.K;
  const int M = p.K / p.C;
  Vec x = rnd(rng, p.x_size()), w = rnd(rng, wn), b = rnd(rng, size_t(p.K));
  Vec dy = rnd(rng, p.y_size());
  Dev gx(x, off), gw(w, off), gb(b, off), gdy(dy, off);
  for (int variant = 0; variant < kVariants; ++variant) {
    const float* bias = variant == 0 ? nullptr : b.data();
    const Act act = kVariantAct[variant];
    Vec want(p.y_size());
    ref().depthwise_conv2d_fwd(want.data(), x.data(), w.data(), bias, p, act);
    Dev y = Dev::out(p.y_size(), off);
    gpu().depthwise_conv2d_fwd(y.p(), gx.p(), gw.p(), bias ? gb.p() : nullptr, p, act, g_stream);
    EXPECT_CLOSE(y.host(), want, double(p.R) * p.S,
                 "depthwise fwd " + std::to_string(variant) + " " + tag);
  }
  Vec want_dx(p.x_size());
  ref().depthwise_conv2d_bwd_data(want_dx.data(), dy.data(), w.data(), p);
  Dev dx = Dev::out(p.x_size(), off);
  gpu().depthwise_conv2d_bwd_data(dx.p(), gdy.p(), gw.p(), p, g_stream);
  EXPECT_CLOSE(dx.host(), want_dx, double(p.R) * p.S * M, "depthwise bwd_data " + tag);
  Vec want_dw(wn), want_db(size_t(p.K));
  ref().depthwise_conv2d_bwd_filter(want_dw.data(), want_db.data(), dy.data(), x.data(), p);
  const double red = double(p.N) * p.P * p.Q;
  Dev dw = Dev::out(wn, off), db = Dev::out(size_t(p.K), off), dw2 = Dev::out(wn, off);
  gpu().depthwise_conv2d_bwd_filter(dw.p(), db.p(), gdy.p(), gx.p(), p, g_stream);
  const Vec first = dw.host();
  EXPECT_CLOSE(first, want_dw, red, "depthwise bwd_filter dw " + tag);
  EXPECT_CLOSE(db.host(), want_db, red, "depthwise bwd_filter db " + tag);
  gpu().depthwise_conv2d_bwd_filter(dw2.p(), nullptr, gdy.p(), gx.p(), p, g_stream);
  EXPECT_EXACT(dw2.host(), first, "depthwise bwd_filter rerun (no db) " + tag);
}

// Grouped convolution: w [R,S,C/groups,K].
void compare_grouped(const ConvParams& p, int groups, std::mt19937& rng) {
  const std::string tag = describe(p) + " groups " + std::to_string(groups);
  const int Cg = p.C / groups, Kg = p.K / groups;
  const size_t wn = size_t(p.R) * p.S * Cg * p.K;
  Vec x = rnd(rng, p.x_size()), w = rnd(rng, wn), b = rnd(rng, size_t(p.K));
  Vec dy = rnd(rng, p.y_size());
  Dev gx(x), gw(w), gb(b), gdy(dy);
  for (int variant = 0; variant < 3; ++variant) {
    const float* bias = variant == 0 ? nullptr : b.data();
    const Act act = variant == 1 ? Act::Relu : Act::None;
    Vec want(p.y_size());
    ref().grouped_conv2d_fwd(want.data(), x.data(), w.data(), bias, p, groups, act);
    Dev y = Dev::out(p.y_size());
    gpu().grouped_conv2d_fwd(y.p(), gx.p(), gw.p(), bias ? gb.p() : nullptr, p, groups, act,
                             g_stream);
    EXPECT_CLOSE(y.host(), want, double(p.R) * p.S * Cg,
                 "grouped fwd " + std::to_string(variant) + " " + tag);
  }
  Vec want_dx(p.x_size());
  ref().grouped_conv2d_bwd_data(want_dx.data(), dy.data(), w.data(), p, groups);
  Dev dx = Dev::out(p.x_size());
  gpu().grouped_conv2d_bwd_data(dx.p(), gdy.p(), gw.p(), p, groups, g_stream);
  EXPECT_CLOSE(dx.host(), want_dx, double(p.R) * p.S * Kg, "grouped bwd_data " + tag);
  Vec want_dw(wn), want_db(size_t(p.K));
  ref().grouped_conv2d_bwd_filter(want_dw.data(), want_db.data(), dy.data(), x.data(), p, groups);
  const double red = double(p.N) * p.P * p.Q;
  Dev dw = Dev::out(wn), db = Dev::out(size_t(p.K)), dw2 = Dev::out(wn);
  gpu().grouped_conv2d_bwd_filter(dw.p(), db.p(), gdy.p(), gx.p(), p, groups, g_stream);
  EXPECT_CLOSE(dw.host(), want_dw, red, "grouped bwd_filter dw " + tag);
  EXPECT_CLOSE(db.host(), want_db, red, "grouped bwd_filter db " + tag);
  gpu().grouped_conv2d_bwd_filter(dw2.p(), nullptr, gdy.p(), gx.p(), p, groups, g_stream);
  EXPECT_CLOSE(dw2.host(), want_dw, red, "grouped bwd_filter (no db) " + tag);
}

ck::Pad2dParams pad2d(int N, int H, int W, int C, int top, int bottom, int left, int right) {
  ck::Pad2dParams p;
  p.N = N, p.H = H, p.W = W, p.C = C;
  p.top = top, p.bottom = bottom, p.left = left, p.right = right;
  return p;
}

ck::UpsampleParams upsample(int N, int H, int W, int C, int sh, int sw, ck::Interp interp,
                            bool half_pixel) {
  ck::UpsampleParams p;
  p.N = N, p.H = H, p.W = W, p.C = C, p.size_h = sh, p.size_w = sw, p.interp = interp;
  p.half_pixel = half_pixel;
  return p;
}

}  // namespace

TEST(depthwise_edge_and_random_shapes) {
  std::mt19937 rng(19);
  std::vector<ConvParams> shapes;
  for (int M : {1, 3}) {
    for (const ConvParams& q : {
             conv_shape(1, 1, 1, 1, 1, 1, 1),                          // 1x1 image, C = 1
             conv_same(2, 1, 1, 5, 5, 3, 3),                     // 1x1 image, 'same' 3x3
             conv_same(2, 13, 11, 1, 1, 3, 3),                   // C = 1
             conv_same(3, 9, 8, 7, 7, 3, 3, 2, 2),               // odd C, 'same' stride 2
             conv_shape(2, 9, 9, 5, 5, 3, 3),                          // 'valid'
             conv_shape(1, 11, 10, 6, 6, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2),  // dilation 2
             conv_shape(2, 12, 9, 3, 3, 3, 5, 2, 1, 1, 1, 2, 2, 2, 1),   // dilation + stride
             conv_shape(1, 2, 3, 4, 4, 5, 5, 1, 1, 2, 2, 2, 2),         // kernel larger than the image
             conv_shape(1, 7, 7, 33, 33, 1, 1, 2, 2),                   // dx cells with no tap
             conv_shape(8, 33, 31, 3, 3, 3, 3),                         // long filter-gradient reduction
             conv_same(4, 40, 40, 2, 2, 3, 3),                    // several pixel chunks
         }) {
      ConvParams p = q;
      p.K = p.C * M;
      shapes.push_back(p);
    }
  }
  for (int i = 0; i < g_cases; ++i) {
    ConvParams p = random_conv(rng);
    p.C = U(rng, 1, 3) == 1 ? U(rng, 1, 4) : U(rng, 1, 40);
    p.K = p.C * U(rng, 1, 4);
    shapes.push_back(p);
  }
  for (const ConvParams& p : shapes) compare_depthwise(p, rng);
  compare_depthwise(conv_same(2, 9, 7, 8, 16, 3, 3), rng, true);
}

TEST(depthwise_rejects_other_fused_activations) {
  ConvParams p = conv_shape(1, 3, 3, 1, 1, 3, 3);
  bool threw = false;
  try {
    gpu().depthwise_conv2d_fwd(nullptr, nullptr, nullptr, nullptr, p, Act::Tanh, g_stream);
  } catch (const ck::Error& e) {
    threw = e.kind() == ck::ErrorKind::Value;
  }
  CHECK(threw);
}

// The transposed convolution's bias epilogue with every epilogue act, in place, with and
// without a bias, on row counts around the block size.
TEST(bias_act_every_epilogue_act) {
  std::mt19937 rng(33);
  for (int C : {1, 7, 64}) {
    for (size_t rows : {size_t(1), size_t(300)}) {
      Vec y = rnd(rng, rows * size_t(C), -8.f, 8.f), b = rnd(rng, size_t(C));
      Dev gb(b);
      for (int variant = 0; variant < kVariants; ++variant) {
        const float* bias = variant == 0 ? nullptr : b.data();
        Vec want = y;
        ref().bias_act_fwd(want.data(), bias, rows, C, kVariantAct[variant]);
        Dev gy(y);
        gpu().bias_act_fwd(gy.p(), bias ? gb.p() : nullptr, rows, C, kVariantAct[variant], g_stream);
        EXPECT_CLOSE(gy.host(), want, 1.0, "bias_act " + std::to_string(variant) + " C " + std::to_string(C));
      }
    }
  }
}

TEST(grouped_conv2d_shapes) {
  std::mt19937 rng(20);
  struct G { ConvParams p; int groups; };
  std::vector<G> shapes = {
      {conv_shape(1, 1, 1, 2, 2, 1, 1), 2},                           // 1x1 image, Cg = 1: depthwise
      {conv_same(2, 7, 6, 4, 8, 3, 3), 2},
      {conv_same(2, 7, 6, 8, 12, 3, 3), 4},
      {conv_same(3, 9, 9, 12, 4, 3, 3, 2, 2), 4},               // 'same' stride 2, Kg = 1
      {conv_shape(2, 9, 8, 6, 6, 3, 3), 2},                           // 'valid'
      {conv_shape(1, 11, 10, 8, 16, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2), 4},  // dilation 2
      {conv_same(2, 5, 5, 4, 12, 3, 3), 4},                     // Cg = 1: depthwise with M = 3
      {conv_same(2, 5, 5, 6, 10, 3, 3), 1},                     // groups == 1: conv2d
      {conv_shape(1, 1, 1, 10, 6, 3, 3, 1, 1, 1, 1, 1, 1), 2},         // 1x1 image, 'same' 3x3
      {conv_same(8, 16, 16, 8, 8, 3, 3), 2},                    // long filter-gradient reduction
  };
  for (int i = 0; i < g_cases / 2; ++i) {
    ConvParams p = random_conv(rng);
    const int groups = U(rng, 0, 1) ? 2 : 4;
    p.C = groups * U(rng, 1, 6), p.K = groups * U(rng, 1, 6);
    shapes.push_back({p, groups});
  }
  for (const G& g : shapes) compare_grouped(g.p, g.groups, rng);
  bool threw = false;
  try {
    gpu().grouped_conv2d_fwd(nullptr, nullptr, nullptr, nullptr, conv_shape(1, 3, 3, 6, 4, 1, 1), 4,
                             Act::None, g_stream);
  } catch (const ck::Error& e) {
    threw = e.kind() == ck::ErrorKind::Value;
  }
  CHECK(threw);
}

// Padding is a copy: bitwise both ways.
TEST(zero_padding_is_bitwise) {
  std::mt19937 rng(21);
  std::vector<ck::Pad2dParams> shapes = {
      pad2d(1, 1, 1, 1, 1, 1, 1, 1), pad2d(2, 3, 4, 5, 0, 0, 0, 0), pad2d(2, 5, 3, 1, 2, 0, 0, 3),
      pad2d(3, 1, 7, 17, 0, 4, 1, 0), pad2d(1, 9, 9, 64, 1, 2, 3, 4)};
  for (int i = 0; i < g_cases; ++i) {
    shapes.push_back(pad2d(U(rng, 1, 3), U(rng, 1, 12), U(rng, 1, 12), U(rng, 1, 20), U(rng, 0, 3),
                           U(rng, 0, 3), U(rng, 0, 3), U(rng, 0, 3)));
  }
  for (const ck::Pad2dParams& p : shapes) {
    char tag[128];
    std::snprintf(tag, sizeof tag, "N%d H%d W%d C%d pad %d,%d,%d,%d", p.N, p.H, p.W, p.C, p.top,
                  p.bottom, p.left, p.right);
    Vec x = rnd(rng, p.x_size()), dy = rnd(rng, p.y_size());
    Vec want(p.y_size()), want_dx(p.x_size());
    ref().zero_pad2d_fwd(want.data(), x.data(), p);
    ref().zero_pad2d_bwd(want_dx.data(), dy.data(), p);
    Dev gx(x), gdy(dy), y = Dev::out(p.y_size()), dx = Dev::out(p.x_size());
    gpu().zero_pad2d_fwd(y.p(), gx.p(), p, g_stream);
    gpu().zero_pad2d_bwd(dx.p(), gdy.p(), p, g_stream);
    EXPECT_EXACT(y.host(), want, std::string("zero_pad2d fwd ") + tag);
    EXPECT_EXACT(dx.host(), want_dx, std::string("zero_pad2d bwd ") + tag);
  }
}

// Nearest: bitwise both ways (the gradient adds in the reference's order); bilinear (both
// coordinate conventions): within rounding.
TEST(upsampling) {
  std::mt19937 rng(22);
  struct S { int N, H, W, C, sh, sw; };
  std::vector<S> shapes = {{1, 1, 1, 1, 1, 1}, {1, 1, 1, 3, 2, 2}, {2, 3, 4, 5, 2, 2},
                           {1, 5, 3, 1, 3, 2}, {2, 4, 4, 17, 1, 3}, {1, 2, 7, 8, 4, 4},
                           {3, 6, 5, 2, 2, 1}};
  for (int i = 0; i < g_cases; ++i) {
    shapes.push_back(
        {U(rng, 1, 3), U(rng, 1, 9), U(rng, 1, 9), U(rng, 1, 20), U(rng, 1, 4), U(rng, 1, 4)});
  }
  for (const S& s : shapes) {
    for (int mode = 0; mode < 3; ++mode) {
      const ck::Interp interp = mode == 0 ? ck::Interp::Nearest : ck::Interp::Bilinear;
      const ck::UpsampleParams p = upsample(s.N, s.H, s.W, s.C, s.sh, s.sw, interp, mode != 2);
      char tag[128];
      std::snprintf(tag, sizeof tag, "N%d H%d W%d C%d size %d,%d mode %d", s.N, s.H, s.W, s.C,
                    s.sh, s.sw, mode);
      Vec x = rnd(rng, p.x_size()), dy = rnd(rng, p.y_size());
      Vec want(p.y_size()), want_dx(p.x_size());
      ref().upsample2d_fwd(want.data(), x.data(), p);
      ref().upsample2d_bwd(want_dx.data(), dy.data(), p);
      Dev gx(x), gdy(dy), y = Dev::out(p.y_size()), dx = Dev::out(p.x_size());
      gpu().upsample2d_fwd(y.p(), gx.p(), p, g_stream);
      gpu().upsample2d_bwd(dx.p(), gdy.p(), p, g_stream);
      if (mode == 0) {
        EXPECT_EXACT(y.host(), want, std::string("upsample fwd ") + tag);
        EXPECT_EXACT(dx.host(), want_dx, std::string("upsample bwd ") + tag);
      } else {
        // Each dx cell sums at most (2 size_h) x (2 size_w) weighted dy cells.
        const double red = 4.0 * s.sh * s.sw;
        EXPECT_CLOSE_T(y.host(), want, 1, 1.0, 1e-5f, 1e-6, std::string("upsample fwd ") + tag);
        EXPECT_CLOSE_T(dx.host(), want_dx, red, 1.0, 1e-5f, 1e-6,
                       std::string("upsample bwd ") + tag);
      }
    }
  }
}

TEST(lp_pooling) {
  std::mt19937 rng(23);
  std::vector<PoolParams> shapes = {
      pool(1, 1, 1, 1, 1, 1, 1, 1, false), pool(2, 7, 7, 3, 2, 2, 2, 2, true),
      pool(1, 1, 1, 5, 3, 3, 1, 1, true),  pool(3, 9, 6, 17, 3, 2, 2, 1, true),
      pool(2, 8, 8, 33, 3, 3, 1, 1, false), pool(2, 5, 4, 1, 3, 3, 2, 2, true),
      pool(1, 6, 6, 2, 2, 2, 2, 2, false, 2),  // windows entirely in the padding: 0
  };
  for (int i = 0; i < g_cases / 2; ++i) {
    int R = U(rng, 1, 4), S = U(rng, 1, 4), sh = U(rng, 1, 3), sw = U(rng, 1, 3);
    bool same = U(rng, 0, 1);
    int H = U(rng, same ? 1 : R, 12), W = U(rng, same ? 1 : S, 12);
    shapes.push_back(pool(U(rng, 1, 3), H, W, U(rng, 1, 24), R, S, sh, sw, same));
  }
  for (size_t si = 0; si < shapes.size(); ++si) {
    const PoolParams& p = shapes[si];
    if (p.P < 1 || p.Q < 1) continue;
    // Small integers (zeros: windows with y == 0, cells with sign 0) on odd shapes.
    Vec x = si % 2 ? ints(rng, p.x_size(), -1, 1) : rnd(rng, p.x_size());
    Vec dy = rnd(rng, p.y_size());
    Dev gx(x), gdy(dy);
    for (float norm : {1.f, 2.f, 3.f}) {
      char tag[160];
      std::snprintf(tag, sizeof tag, "N%d H%d W%d C%d R%d S%d stride %d,%d pad %d,%d norm %g", p.N,
                    p.H, p.W, p.C, p.R, p.S, p.stride_h, p.stride_w, p.pad_h, p.pad_w, norm);
      Vec want(p.y_size()), want_dx(p.x_size());
      ref().lppool2d_fwd(want.data(), x.data(), p, norm);
      Dev y = Dev::out(p.y_size());
      gpu().lppool2d_fwd(y.p(), gx.p(), p, norm, g_stream);
      EXPECT_CLOSE_T(y.host(), want, 1, 1.0, 1e-5f, 1e-6, std::string("lppool fwd ") + tag);
      ref().lppool2d_bwd(want_dx.data(), dy.data(), x.data(), want.data(), p, norm);
      Dev gy(want), dx = Dev::out(p.x_size());  // from the reference's y: isolates the backward
      gpu().lppool2d_bwd(dx.p(), gdy.p(), gx.p(), gy.p(), p, norm, g_stream);
      EXPECT_CLOSE_T(dx.host(), want_dx, double(p.R) * p.S, 1.0, 1e-5f, 1e-6,
                     std::string("lppool bwd ") + tag);
    }
  }
}

// Concatenation is a copy: bitwise, parts of width 0 and 1 included.
// The executor's batch gather from CUDA inputs: any rows, repeated or not, bitwise.
TEST(gather_rows_is_bitwise) {
  std::mt19937 rng(17);
  struct S {
    size_t src_rows, row, n;
  };
  for (const S& s : {S{1, 1, 1}, S{7, 3, 20}, S{100, 784, 33}, S{5, 1000, 5}, S{300, 17, 257}}) {
    const Vec src = rnd(rng, s.src_rows * s.row);
    std::vector<int32_t> rows(s.n);
    for (auto& r : rows) r = U(rng, 0, int(s.src_rows) - 1);
    Vec want(s.n * s.row);
    for (size_t j = 0; j < s.n; ++j)
      std::memcpy(&want[j * s.row], &src[size_t(rows[j]) * s.row], s.row * sizeof(float));
    Dev gsrc(src), out = Dev::out(want.size());
    DeviceArray<int32_t> grows(rows);
    gpu().gather_rows(out.p(), gsrc.p(), grows.data(), s.n, s.row, s.src_rows, g_stream);
    EXPECT_EXACT(out.host(), want, "gather_rows n" + std::to_string(s.n) + " row" + std::to_string(s.row));
  }
}

TEST(concat_and_split_are_bitwise) {
  std::mt19937 rng(24);
  const std::vector<std::vector<int>> layouts = {{1}, {3, 5}, {1, 0, 7, 1}, {64, 32, 17}, {0, 2}};
  for (size_t rows : {size_t(1), size_t(7), size_t(1000)}) {
    for (const std::vector<int>& widths : layouts) {
      const int count = int(widths.size());
      int total = 0;
      for (int w : widths) total += w;
      const std::string tag = "rows " + std::to_string(rows) + " parts " + std::to_string(count) +
                              " width " + std::to_string(total);
      std::vector<Vec> parts;
      std::vector<Dev> dparts, dsplit;
      std::vector<const float*> host_in, gpu_in;
      std::vector<float*> gpu_out;
      for (int w : widths) parts.push_back(rnd(rng, rows * size_t(w)));
      for (int i = 0; i < count; ++i) {
        dparts.emplace_back(parts[i]);
        dsplit.push_back(Dev::out(parts[i].size()));
      }
      for (int i = 0; i < count; ++i) {
        host_in.push_back(parts[i].data());
        gpu_in.push_back(dparts[i].p());
        gpu_out.push_back(dsplit[i].p());
      }
      Vec want(rows * size_t(total));
      ref().concat_last(want.data(), host_in.data(), widths.data(), count, rows);
      Dev y = Dev::out(want.size());
      gpu().concat_last(y.p(), gpu_in.data(), widths.data(), count, rows, g_stream);
      EXPECT_EXACT(y.host(), want, "concat_last " + tag);
      gpu().split_last(gpu_out.data(), y.p(), widths.data(), count, rows, g_stream);
      for (int i = 0; i < count; ++i) EXPECT_EXACT(dsplit[i].host(), parts[i], "split_last " + tag);
    }
  }
}

// The multiply by a gate broadcast over space: the product is exact; the gate's gradient adds
// each channel's pixels in the reference's order, within a reduction's tolerance.
TEST(mul_spatial_matches_reference) {
  std::mt19937 rng(29);
  struct S { size_t n, hw; int C; };
  for (const S& s : {S{1, 1, 1}, S{2, 9, 16}, S{3, 196, 67}, S{1, 3136, 16}, S{4, 49, 1152}}) {
    const std::string tag = "n" + std::to_string(s.n) + " hw" + std::to_string(s.hw) + " C" + std::to_string(s.C);
    const size_t nx = s.n * s.hw * size_t(s.C), ng = s.n * size_t(s.C);
    Vec x = rnd(rng, nx), dy = rnd(rng, nx), g = rnd(rng, ng), want(nx), want_dg(ng);
    Dev gx(x), gdy(dy), gg(g), y = Dev::out(nx), dg = Dev::out(ng);
    ref().mul_spatial(want.data(), x.data(), g.data(), s.n, s.hw, s.C);
    gpu().mul_spatial(y.p(), gx.p(), gg.p(), s.n, s.hw, s.C, g_stream);
    EXPECT_EXACT(y.host(), want, "mul_spatial " + tag);
    ref().mul_spatial_bwd_gate(want_dg.data(), dy.data(), x.data(), s.n, s.hw, s.C);
    gpu().mul_spatial_bwd_gate(dg.p(), gdy.p(), gx.p(), s.n, s.hw, s.C, g_stream);
    EXPECT_CLOSE(dg.host(), want_dg, double(s.hw), "mul_spatial_bwd_gate " + tag);
  }
}

// Same inputs twice -> bitwise-identical outputs (no float atomics, shape-only reduction order).
TEST(deterministic_reductions) {
  std::mt19937 rng(15);
  ConvParams p = conv_same(32, 20, 20, 16, 24, 3, 3);
  Vec x = rnd(rng, p.x_size()), dy = rnd(rng, p.y_size());
  Dev gx(x), gdy(dy);
  Vec first_w, first_b;
  for (int rep = 0; rep < 2; ++rep) {
    Dev gw = Dev::out(p.w_size()), gb = Dev::out(size_t(p.K));
    gpu().conv2d_bwd_filter(gw.p(), gb.p(), gdy.p(), gx.p(), p, g_stream);
    if (rep == 0) {
      first_w = gw.host(), first_b = gb.host();
    } else {
      EXPECT_EXACT(gw.host(), first_w, "conv dw rerun");
      EXPECT_EXACT(gb.host(), first_b, "conv db rerun");
    }
  }
  const size_t rows = 50000;
  const int C = 24;
  Vec bx = rnd(rng, rows * C), bdy = rnd(rng, rows * C);
  Dev gbx(bx), gbdy(bdy);
  Vec firsts[4];
  for (int rep = 0; rep < 2; ++rep) {
    Dev y = Dev::out(rows * C), m = Dev::out(C), is = Dev::out(C), dx = Dev::out(rows * C),
        dg = Dev::out(C), db = Dev::out(C);
    gpu().batchnorm_fwd_train(y.p(), m.p(), is.p(), nullptr, nullptr, gbx.p(), nullptr, nullptr, rows, C,
                              1e-3f, 0.99f, ck::Act::None, g_stream);
    gpu().batchnorm_bwd(dx.p(), dg.p(), db.p(), gbdy.p(), gbx.p(), m.p(), is.p(), nullptr, nullptr, rows, C,
                        nullptr, ck::Act::None, g_stream);
    Vec got[4] = {m.host(), is.host(), dx.host(), dg.host()};
    for (int i = 0; i < 4; ++i) {
      if (rep == 0) firsts[i] = got[i];
      else EXPECT_EXACT(got[i], firsts[i], "batchnorm rerun " + std::to_string(i));
    }
  }
}

// ------------------------------------------------------------------ bench

namespace {

// Times the passes in each precision (ck.setPrecision): fp32 on the CUDA cores, then TF32 and
// bf16 on the tensor cores (sm_80+; older GPUs run fp32 in those rows).
int bench() {
  ConvParams p = conv_same(256, 56, 56, 64, 64, 3, 3);
  std::mt19937 rng(16);
  std::printf("bench: conv2d %s, %.1f GFLOP per pass\n", describe(p).c_str(), p.flops() / 1e9);
  Dev x(rnd(rng, p.x_size())), w(rnd(rng, p.w_size())), b(rnd(rng, size_t(p.K))),
      dy(rnd(rng, p.y_size()));
  Dev y = Dev::out(p.y_size()), dx = Dev::out(p.x_size()), dw = Dev::out(p.w_size()),
      db = Dev::out(size_t(p.K));
  const int n = 4096;
  Dev a(rnd(rng, size_t(n) * n)), bm(rnd(rng, size_t(n) * n)), c = Dev::out(size_t(n) * n);
  void* e0 = ck::cuda::event_create();
  void* e1 = ck::cuda::event_create();
  auto time = [&](const char* what, double flops, auto&& fn) {
    for (int i = 0; i < 3; ++i) fn();
    const int iters = 20;
    ck::cuda::event_record(e0, g_stream);
    for (int i = 0; i < iters; ++i) fn();
    ck::cuda::event_record(e1, g_stream);
    double ms = ck::cuda::event_elapsed_ms(e0, e1) / iters;
    std::printf("  %-28s %8.3f ms  %8.0f GFLOP/s\n", what, ms, flops / (ms * 1e6));
  };
  for (ck::MathPrecision prec : {ck::MathPrecision::Fp32, ck::MathPrecision::Tf32, ck::MathPrecision::Bf16}) {
    ck::PrecisionScope scope(prec);
    std::printf("%s\n", ck::precision_name(prec));
    time("forward", p.flops(), [&] { gpu().conv2d_fwd(y.p(), x.p(), w.p(), nullptr, p, Act::None, g_stream); });
    time("forward + bias + relu", p.flops(),
         [&] { gpu().conv2d_fwd(y.p(), x.p(), w.p(), b.p(), p, Act::Relu, g_stream); });
    time("backward data", p.flops(), [&] { gpu().conv2d_bwd_data(dx.p(), dy.p(), w.p(), p, g_stream); });
    time("backward filter (+ bias)", p.flops(),
         [&] { gpu().conv2d_bwd_filter(dw.p(), db.p(), dy.p(), x.p(), p, g_stream); });
    time("dense 4096x4096x4096", 2.0 * n * n * n,
         [&] { gpu().dense_fwd(c.p(), a.p(), bm.p(), nullptr, n, n, n, Act::None, g_stream); });
  }
  ck::cuda::event_destroy(e0);
  ck::cuda::event_destroy(e1);
  ck::cuda::device_sync();
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return gpu_test_main(argc, argv, "test_cuda_parity", bench); }
