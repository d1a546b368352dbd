// Depthwise convolution kernels: the scalar reference against an independent ground truth (a
// dense conv2d whose filter is zero off the depthwise blocks) and finite differences, and every
// vector ISA against the reference on edge and random shapes, thread counts and determinism.
#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "errors.h"
#include "kernel_check.h"
#include "thread_pool.h"

using ck::Act;
using ck::ConvParams;
using ck::CpuKernels;

namespace {

// TensorFlow's geometry: 'same' pads the smaller half at the top/left.
ConvParams make(int N, int H, int W, int C, int M, int R, int S, int sh, int sw, bool same,
                int dh = 1, int dw = 1) {
  ConvParams p;
  p.N = N, p.H = H, p.W = W, p.C = C, p.K = C * M, p.R = R, p.S = S;
  p.stride_h = sh, p.stride_w = sw, p.dil_h = dh, p.dil_w = dw;
  const int64_t eh = int64_t(R - 1) * dh + 1, ew = int64_t(S - 1) * dw + 1;
  if (same) {
    p.P = (H + sh - 1) / sh, p.Q = (W + sw - 1) / sw;
    p.pad_h = int(std::max<int64_t>((p.P - 1) * sh + eh - H, 0) / 2);
    p.pad_w = int(std::max<int64_t>((p.Q - 1) * sw + ew - W, 0) / 2);
  } else {
    p.P = H >= eh ? int((H - eh) / sh + 1) : 0, p.Q = W >= ew ? int((W - ew) / sw + 1) : 0;
  }
  return p;
}

std::string describe(const ConvParams& p) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "N%d H%d W%d C%d M%d R%d S%d P%d Q%d stride %d,%d pad %d,%d dil %d,%d",
                p.N, p.H, p.W, p.C, p.K / p.C, p.R, p.S, p.P, p.Q, p.stride_h, p.stride_w, p.pad_h,
                p.pad_w, p.dil_h, p.dil_w);
  return buf;
}

size_t w_size(const ConvParams& p) { return size_t(p.R) * p.S * p.K; }

// The depthwise filter [R,S,C,M] as a dense HWIO filter [R,S,C,C*M]: block c holds w[.,.,c,:].
std::vector<float> dense_filter(const std::vector<float>& w, const ConvParams& p) {
  const int C = p.C, K = p.K, M = K / C;
  std::vector<float> full(size_t(p.R) * p.S * C * K, 0.f);
  for (int rs = 0; rs < p.R * p.S; ++rs)
    for (int c = 0; c < C; ++c)
      for (int m = 0; m < M; ++m) full[(size_t(rs) * C + c) * K + c * M + m] = w[size_t(rs) * K + c * M + m];
  return full;
}

std::vector<ConvParams> edge_shapes() {
  return {
      make(2, 7, 7, 3, 1, 3, 3, 1, 1, true),    // odd sizes, 'same'
      make(3, 1, 1, 5, 2, 3, 3, 1, 1, true),    // 1x1 images: only the centre tap
      make(1, 1, 1, 1, 1, 1, 1, 1, 1, false),   // the smallest
      make(2, 9, 8, 17, 1, 3, 3, 2, 2, true),   // stride 2 'same' (pad after), odd C
      make(1, 11, 10, 6, 2, 3, 3, 1, 1, true, 2, 2),  // dilation 2, multiplier 2
      make(2, 12, 13, 32, 1, 3, 3, 2, 2, false),      // stride 2 'valid', vector-width C
      make(1, 8, 9, 33, 3, 5, 5, 1, 2, true),         // 5x5, multiplier 3, C off the width
      make(2, 14, 14, 64, 1, 3, 3, 1, 1, true),       // MobileNet-like
      make(1, 6, 20, 16, 2, 1, 7, 1, 3, true),        // wide filter, stride 3, M 2
      make(1, 10, 10, 8, 1, 3, 2, 3, 1, false, 2, 3), // odd strides and dilations
      make(1, 5, 5, 24, 1, 7, 7, 1, 1, true),         // filter larger than the image
  };
}

std::vector<ConvParams> random_shapes(std::mt19937& rng, int count) {
  std::uniform_int_distribution<int> small(1, 3), size(1, 13), ch(1, 40), mult(1, 3), ker(1, 5), pick(0, 1);
  std::vector<ConvParams> out;
  while (int(out.size()) < count) {
    const int dh = small(rng) == 3 ? 2 : 1, dw = small(rng) == 3 ? 2 : 1;
    ConvParams p = make(small(rng), size(rng), size(rng), ch(rng), mult(rng), ker(rng), ker(rng),
                        small(rng), small(rng), pick(rng) == 1, dh, dw);
    if (p.P >= 1 && p.Q >= 1) out.push_back(p);
  }
  return out;
}

// Every pass of `k` against the reference on p.
void compare_all(const CpuKernels& k, const ConvParams& p, std::mt19937& rng) {
  const CpuKernels& ref = ck::scalar_kernels();
  const std::string tag = std::string(ck::isa_name(k.isa)) + " " + describe(p);
  auto x = cktest::random_vector(rng, p.x_size());
  auto w = cktest::random_vector(rng, w_size(p));
  auto b = cktest::random_vector(rng, size_t(p.K));
  auto dy = cktest::random_vector(rng, p.y_size());
  const double red_fwd = double(p.R) * p.S, red_filter = double(p.N) * p.P * p.Q;
  std::vector<float> b6(b.size());  // in [0, 8]: ReLU6 outputs on both sides of 6
  for (size_t i = 0; i < b.size(); ++i) b6[i] = 4.f + 4.f * b[i];
  for (Act act : {Act::None, Act::Relu, Act::Relu6}) {
    const float* biased = act == Act::Relu6 ? b6.data() : b.data();
    for (const float* bias : {static_cast<const float*>(nullptr), biased}) {
      std::vector<float> y0(p.y_size(), 7.f), y1(p.y_size(), -7.f);
      ref.depthwise_conv2d_fwd(y0.data(), x.data(), w.data(), bias, p, act);
      k.depthwise_conv2d_fwd(y1.data(), x.data(), w.data(), bias, p, act);
      const char* name = act == Act::Relu ? " relu " : act == Act::Relu6 ? " relu6 " : " ";
      EXPECT_CLOSE(y1, y0, red_fwd, std::string("fwd") + (bias ? " bias" : "") + name + tag);
    }
  }
  std::vector<float> dx0(p.x_size(), 7.f), dx1(p.x_size(), -7.f);
  ref.depthwise_conv2d_bwd_data(dx0.data(), dy.data(), w.data(), p);
  k.depthwise_conv2d_bwd_data(dx1.data(), dy.data(), w.data(), p);
  EXPECT_CLOSE(dx1, dx0, red_fwd * (p.K / p.C), "bwd_data " + tag);
  std::vector<float> dw0(w_size(p), 7.f), dw1(w_size(p), -7.f), db0(size_t(p.K), 7.f), db1(size_t(p.K), -7.f);
  ref.depthwise_conv2d_bwd_filter(dw0.data(), db0.data(), dy.data(), x.data(), p);
  k.depthwise_conv2d_bwd_filter(dw1.data(), db1.data(), dy.data(), x.data(), p);
  EXPECT_CLOSE(dw1, dw0, red_filter, "bwd_filter dw " + tag);
  EXPECT_CLOSE(db1, db0, red_filter, "bwd_filter db " + tag);
  // Without db, dw is the same.
  std::fill(dw1.begin(), dw1.end(), -3.f);
  k.depthwise_conv2d_bwd_filter(dw1.data(), nullptr, dy.data(), x.data(), p);
  EXPECT_CLOSE(dw1, dw0, red_filter, "bwd_filter dw (no db) " + tag);
}

}  // namespace

TEST(reference_matches_a_dense_convolution_with_a_block_diagonal_filter) {
  std::mt19937 rng(11);
  const CpuKernels& ref = ck::scalar_kernels();
  std::vector<ConvParams> shapes = edge_shapes();
  for (const ConvParams& p : random_shapes(rng, 12)) shapes.push_back(p);
  for (const ConvParams& p : shapes) {
    const std::string tag = describe(p);
    ConvParams dense = p;  // the same geometry with C inputs and K = C*M outputs
    auto x = cktest::random_vector(rng, p.x_size());
    auto w = cktest::random_vector(rng, w_size(p));
    auto b = cktest::random_vector(rng, size_t(p.K));
    auto dy = cktest::random_vector(rng, p.y_size());
    auto full = dense_filter(w, p);
    std::vector<float> y0(p.y_size()), y1(p.y_size());
    ref.depthwise_conv2d_fwd(y0.data(), x.data(), w.data(), b.data(), p, Act::Relu);
    ref.conv2d_fwd(y1.data(), x.data(), full.data(), b.data(), dense, Act::Relu);
    EXPECT_CLOSE(y0, y1, double(p.R) * p.S, "fwd " + tag);
    std::vector<float> dx0(p.x_size()), dx1(p.x_size());
    ref.depthwise_conv2d_bwd_data(dx0.data(), dy.data(), w.data(), p);
    ref.conv2d_bwd_data(dx1.data(), dy.data(), full.data(), dense);
    EXPECT_CLOSE(dx0, dx1, double(p.R) * p.S * p.K, "bwd_data " + tag);
    std::vector<float> dw0(w_size(p)), db0(size_t(p.K)), dwf(full.size()), dbf(size_t(p.K));
    ref.depthwise_conv2d_bwd_filter(dw0.data(), db0.data(), dy.data(), x.data(), p);
    ref.conv2d_bwd_filter(dwf.data(), dbf.data(), dy.data(), x.data(), dense);
    std::vector<float> diag(w_size(p));
    const int M = p.K / p.C;
    for (int rs = 0; rs < p.R * p.S; ++rs)
      for (int c = 0; c < p.C; ++c)
        for (int m = 0; m < M; ++m) diag[size_t(rs) * p.K + c * M + m] = dwf[(size_t(rs) * p.C + c) * p.K + c * M + m];
    EXPECT_CLOSE(dw0, diag, double(p.N) * p.P * p.Q, "bwd_filter dw " + tag);
    EXPECT_CLOSE(db0, dbf, double(p.N) * p.P * p.Q, "bwd_filter db " + tag);
  }
}

TEST(reference_gradients_match_finite_differences) {
  std::mt19937 rng(12);
  const CpuKernels& ref = ck::scalar_kernels();
  for (const ConvParams& p : {make(2, 5, 6, 3, 2, 3, 3, 2, 1, true), make(1, 6, 5, 2, 1, 2, 3, 1, 2, false, 2, 1)}) {
    auto x = cktest::random_vector(rng, p.x_size());
    auto w = cktest::random_vector(rng, w_size(p));
    auto r = cktest::random_vector(rng, p.y_size());
    auto loss_x = [&](const std::vector<float>& in) {
      std::vector<float> y(p.y_size());
      ref.depthwise_conv2d_fwd(y.data(), in.data(), w.data(), nullptr, p, Act::None);
      return cktest::weighted_sum(y, r);
    };
    auto loss_w = [&](const std::vector<float>& in) {
      std::vector<float> y(p.y_size());
      ref.depthwise_conv2d_fwd(y.data(), x.data(), in.data(), nullptr, p, Act::None);
      return cktest::weighted_sum(y, r);
    };
    std::vector<float> dx(p.x_size()), dw(w_size(p));
    ref.depthwise_conv2d_bwd_data(dx.data(), r.data(), w.data(), p);
    ref.depthwise_conv2d_bwd_filter(dw.data(), nullptr, r.data(), x.data(), p);
    CHECK_GRADIENT("depthwise dx " + describe(p), dx, cktest::numeric_gradient(x, loss_x));
    CHECK_GRADIENT("depthwise dw " + describe(p), dw, cktest::numeric_gradient(w, loss_w));
  }
}

TEST(unsupported_fused_activation_throws) {
  ConvParams p = make(1, 3, 3, 2, 1, 3, 3, 1, 1, true);
  std::vector<float> x(p.x_size()), w(w_size(p)), y(p.y_size());
  std::vector<const CpuKernels*> tables = cktest::vector_tables();
  tables.push_back(&ck::scalar_kernels());
  for (const CpuKernels* k : tables) {
    bool threw = false;
    try {
      k->depthwise_conv2d_fwd(y.data(), x.data(), w.data(), nullptr, p, Act::Tanh);
    } catch (const ck::Error&) {
      threw = true;
    }
    CHECK(threw);
  }
}

// The smooth fused activations (sigmoid, swish, hard swish), as in test_conv: the reference
// against float64 loops, every ISA against the reference and, bit for bit, against its own
// act-free output passed through its activation_fwd. Biases in [-8, 8] reach both tails.
TEST(smooth_fused_activations_match_float64_and_separate_activation) {
  const CpuKernels& ref = ck::scalar_kernels();
  std::mt19937 rng(19);
  for (const ConvParams& p : {make(2, 9, 8, 17, 1, 3, 3, 2, 2, true), make(1, 8, 9, 33, 3, 5, 5, 1, 2, true),
                              make(1, 14, 14, 96, 1, 3, 3, 1, 1, true), make(1, 6, 7, 5, 2, 3, 3, 1, 1, false)}) {
    const std::string tag = describe(p);
    auto x = cktest::random_vector(rng, p.x_size());
    auto w = cktest::random_vector(rng, w_size(p));
    auto b = cktest::random_vector(rng, size_t(p.K), -8.f, 8.f);
    const int M = p.K / p.C;
    for (Act act : cktest::smooth_epilogue_acts()) {
      std::vector<float> y0(p.y_size(), 7.f);
      ref.depthwise_conv2d_fwd(y0.data(), x.data(), w.data(), b.data(), p, act);
      for (int n = 0; n < p.N; ++n)
        for (int op = 0; op < p.P; ++op)
          for (int oq = 0; oq < p.Q; ++oq)
            for (int k = 0; k < p.K; ++k) {
              double s = b[size_t(k)];
              for (int r = 0; r < p.R; ++r)
                for (int q = 0; q < p.S; ++q) {
                  const int h = op * p.stride_h - p.pad_h + r * p.dil_h, wi = oq * p.stride_w - p.pad_w + q * p.dil_w;
                  if (h < 0 || h >= p.H || wi < 0 || wi >= p.W) continue;
                  s += double(x[((size_t(n) * p.H + h) * p.W + wi) * p.C + size_t(k / M)]) *
                       w[(size_t(r) * p.S + q) * p.K + size_t(k)];
                }
              const size_t i = ((size_t(n) * p.P + op) * p.Q + oq) * p.K + size_t(k);
              CHECK_NEAR(y0[i], cktest::epilogue_act_f64(s, act), 1e-5 * p.R * p.S + 1e-6);
            }
      for (const CpuKernels* k : cktest::vector_tables()) {
        std::vector<float> y1(p.y_size(), -7.f), plain(p.y_size(), -7.f);
        k->depthwise_conv2d_fwd(y1.data(), x.data(), w.data(), b.data(), p, act);
        EXPECT_CLOSE(y1, y0, double(p.R) * p.S, std::string(ck::isa_name(k->isa)) + " fused act " + tag);
        k->depthwise_conv2d_fwd(plain.data(), x.data(), w.data(), b.data(), p, Act::None);
        CHECK(cktest::same_as_separate_activation(*k, plain, y1, act));
      }
    }
  }
}

// A 1x40001 filter dilated by 65536 under 'same' padding: tap offsets pass 2^31, and only the
// middle tap (s = 20000) lands in the image, on the output's own column.
TEST(huge_dilations_reach_only_the_middle_tap) {
  std::mt19937 rng(17);
  const ConvParams p = make(2, 2, 3, 5, 1, 1, 40001, 1, 1, true, 1, 65536);
  auto x = cktest::random_vector(rng, p.x_size());
  auto w = cktest::random_vector(rng, w_size(p));
  auto dy = cktest::random_vector(rng, p.y_size());
  const float* mid = w.data() + size_t(20000) * p.K;
  std::vector<float> y_want(p.y_size()), dx_want(p.x_size()), dw_want(w_size(p), 0.f);
  for (size_t i = 0; i < p.y_size(); ++i) {
    y_want[i] = x[i] * mid[i % p.K];
    dx_want[i] = dy[i] * mid[i % p.K];
  }
  for (size_t i = 0; i < p.y_size(); ++i) dw_want[size_t(20000) * p.K + i % p.K] += x[i] * dy[i];
  std::vector<const CpuKernels*> tables = cktest::vector_tables();
  tables.push_back(&ck::scalar_kernels());
  for (const CpuKernels* k : tables) {
    std::vector<float> y(p.y_size()), dx(p.x_size()), dw(w_size(p));
    k->depthwise_conv2d_fwd(y.data(), x.data(), w.data(), nullptr, p, Act::None);
    k->depthwise_conv2d_bwd_data(dx.data(), dy.data(), w.data(), p);
    k->depthwise_conv2d_bwd_filter(dw.data(), nullptr, dy.data(), x.data(), p);
    EXPECT_CLOSE(y, y_want, 1, std::string("fwd ") + ck::isa_name(k->isa));
    EXPECT_CLOSE(dx, dx_want, 1, std::string("bwd_data ") + ck::isa_name(k->isa));
    EXPECT_CLOSE(dw, dw_want, double(p.N) * p.P * p.Q, std::string("bwd_filter ") + ck::isa_name(k->isa));
  }
}

TEST(vector_kernels_match_reference_on_edge_shapes) {
  std::mt19937 rng(13);
  for (const CpuKernels* k : cktest::vector_tables())
    for (const ConvParams& p : edge_shapes()) compare_all(*k, p, rng);
}

TEST(vector_kernels_match_reference_on_random_shapes) {
  std::mt19937 rng(14);
  const std::vector<ConvParams> shapes = random_shapes(rng, 60);
  for (const CpuKernels* k : cktest::vector_tables())
    for (const ConvParams& p : shapes) compare_all(*k, p, rng);
}

// Other thread counts split rows differently (and the filter gradient into more partials).
TEST(vector_kernels_match_reference_with_other_thread_counts) {
  std::mt19937 rng(15);
  for (int threads : {1, 3, 5}) {
    ck::set_num_threads(threads);
    for (const CpuKernels* k : cktest::vector_tables()) {
      compare_all(*k, make(4, 30, 30, 40, 1, 3, 3, 1, 1, true), rng);
      compare_all(*k, make(3, 17, 23, 12, 2, 3, 3, 2, 2, true), rng);
    }
  }
  ck::set_num_threads(0);
}

// Same inputs, same thread count: bitwise identical results.
TEST(vector_kernels_are_deterministic) {
  std::mt19937 rng(16);
  const ConvParams p = make(6, 28, 28, 48, 1, 3, 3, 1, 1, true);
  auto x = cktest::random_vector(rng, p.x_size());
  auto w = cktest::random_vector(rng, w_size(p));
  auto dy = cktest::random_vector(rng, p.y_size());
  for (int threads : {1, 3}) {
    ck::set_num_threads(threads);
    for (const CpuKernels* k : cktest::vector_tables()) {
      std::vector<float> a(w_size(p)), b(w_size(p)), da(size_t(p.K)), db(size_t(p.K));
      std::vector<float> xa(p.x_size()), xb(p.x_size()), ya(p.y_size()), yb(p.y_size());
      k->depthwise_conv2d_bwd_filter(a.data(), da.data(), dy.data(), x.data(), p);
      k->depthwise_conv2d_bwd_filter(b.data(), db.data(), dy.data(), x.data(), p);
      CHECK(a == b && da == db);
      k->depthwise_conv2d_bwd_data(xa.data(), dy.data(), w.data(), p);
      k->depthwise_conv2d_bwd_data(xb.data(), dy.data(), w.data(), p);
      CHECK(xa == xb);
      k->depthwise_conv2d_fwd(ya.data(), x.data(), w.data(), nullptr, p, Act::Relu);
      k->depthwise_conv2d_fwd(yb.data(), x.data(), w.data(), nullptr, p, Act::Relu);
      CHECK(ya == yb);
    }
  }
  ck::set_num_threads(0);
}

CK_TEST_MAIN()
