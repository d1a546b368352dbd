// Grouped convolution kernels: the reference table's against an independent ground truth (a
// dense conv2d whose filter is zero between groups), and every vector ISA against the
// reference, including one group per channel (the depthwise route) and groups == 1.
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "kernel_check.h"
#include "thread_pool.h"

using ck::Act;
using ck::ConvParams;
using ck::CpuKernels;

namespace {

struct Case {
  ConvParams p;  // C and K are the totals
  int groups;
};

Case make(int N, int H, int W, int C, int K, int groups, int R, int S, int sh, int sw, bool same,
          int dh = 1, int dw = 1) {
  ConvParams p;
  p.N = N, p.H = H, p.W = W, p.C = C, p.K = K, p.R = R, p.S = S;
  p.stride_h = sh, p.stride_w = sw, p.dil_h = dh, p.dil_w = dw;
  const int eh = (R - 1) * dh + 1, ew = (S - 1) * dw + 1;
  if (same) {
    p.P = (H + sh - 1) / sh, p.Q = (W + sw - 1) / sw;
    p.pad_h = std::max((p.P - 1) * sh + eh - H, 0) / 2;
    p.pad_w = std::max((p.Q - 1) * sw + ew - W, 0) / 2;
  } else {
    p.P = H >= eh ? (H - eh) / sh + 1 : 0, p.Q = W >= ew ? (W - ew) / sw + 1 : 0;
  }
  return {p, groups};
}

std::string describe(const Case& c) {
  const ConvParams& p = c.p;
  char buf[256];
  std::snprintf(buf, sizeof buf, "groups %d N%d H%d W%d C%d K%d R%d S%d stride %d,%d pad %d,%d dil %d,%d",
                c.groups, p.N, p.H, p.W, p.C, p.K, p.R, p.S, p.stride_h, p.stride_w, p.pad_h,
                p.pad_w, p.dil_h, p.dil_w);
  return buf;
}

size_t w_size(const Case& c) { return size_t(c.p.R) * c.p.S * (c.p.C / c.groups) * c.p.K; }

// w [R,S,C/G,K] as a dense HWIO filter [R,S,C,K], zero where input and output groups differ.
std::vector<float> dense_filter(const std::vector<float>& w, const Case& c) {
  const int C = c.p.C, K = c.p.K, Cg = C / c.groups, Kg = K / c.groups;
  std::vector<float> full(size_t(c.p.R) * c.p.S * C * K, 0.f);
  for (int rs = 0; rs < c.p.R * c.p.S; ++rs)
    for (int ci = 0; ci < C; ++ci)
      for (int k = 0; k < K; ++k)
        if (k / Kg == ci / Cg) full[(size_t(rs) * C + ci) * K + k] = w[(size_t(rs) * Cg + ci % Cg) * K + k];
  return full;
}

std::vector<Case> cases() {
  return {
      make(2, 7, 7, 4, 6, 2, 3, 3, 1, 1, true),          // two groups, odd sizes
      make(3, 1, 1, 6, 9, 3, 3, 3, 1, 1, true),          // 1x1 images
      make(1, 9, 8, 8, 8, 8, 3, 3, 2, 2, true),          // one channel per group: depthwise
      make(1, 9, 8, 6, 12, 6, 3, 3, 1, 1, true, 2, 2),   // depthwise route, multiplier 2, dilation 2
      make(2, 10, 11, 12, 20, 4, 3, 3, 2, 2, false),     // stride 2 'valid'
      make(1, 8, 8, 32, 32, 4, 1, 1, 1, 1, false),       // grouped 1x1 (ResNeXt / ShuffleNet style)
      make(2, 6, 9, 5, 10, 1, 3, 2, 1, 2, true),         // groups == 1: plain conv2d
      make(1, 12, 12, 48, 64, 16, 3, 3, 1, 1, true),     // many groups of 3 -> 4
      make(1, 9, 10, 6, 3, 3, 2, 3, 3, 1, true, 1, 2),   // fewer outputs than inputs
  };
}

void check_against(const CpuKernels& k, const CpuKernels& truth_k, const Case& c, bool dense_truth,
                   std::mt19937& rng) {
  const ConvParams& p = c.p;
  const std::string tag = std::string(ck::isa_name(k.isa)) + " " + describe(c);
  auto x = cktest::random_vector(rng, p.x_size());
  auto w = cktest::random_vector(rng, w_size(c));
  auto b = cktest::random_vector(rng, size_t(p.K));
  auto dy = cktest::random_vector(rng, p.y_size());
  auto full = dense_filter(w, c);
  const double red = double(p.R) * p.S * p.C, red_filter = double(p.N) * p.P * p.Q;

  std::vector<float> y0(p.y_size(), 7.f), y1(p.y_size(), -7.f);
  if (dense_truth) truth_k.conv2d_fwd(y0.data(), x.data(), full.data(), b.data(), p, Act::Relu);
  else truth_k.grouped_conv2d_fwd(y0.data(), x.data(), w.data(), b.data(), p, c.groups, Act::Relu);
  k.grouped_conv2d_fwd(y1.data(), x.data(), w.data(), b.data(), p, c.groups, Act::Relu);
  EXPECT_CLOSE(y1, y0, red, "fwd " + tag);

  std::vector<float> dx0(p.x_size(), 7.f), dx1(p.x_size(), -7.f);
  if (dense_truth) truth_k.conv2d_bwd_data(dx0.data(), dy.data(), full.data(), p);
  else truth_k.grouped_conv2d_bwd_data(dx0.data(), dy.data(), w.data(), p, c.groups);
  k.grouped_conv2d_bwd_data(dx1.data(), dy.data(), w.data(), p, c.groups);
  EXPECT_CLOSE(dx1, dx0, double(p.R) * p.S * p.K, "bwd_data " + tag);

  std::vector<float> dw0(w_size(c), 7.f), dw1(w_size(c), -7.f), db0(size_t(p.K), 7.f), db1(size_t(p.K), -7.f);
  if (dense_truth) {
    std::vector<float> dwf(full.size());
    truth_k.conv2d_bwd_filter(dwf.data(), db0.data(), dy.data(), x.data(), p);
    const int Cg = p.C / c.groups, Kg = p.K / c.groups;
    for (int rs = 0; rs < p.R * p.S; ++rs)
      for (int ci = 0; ci < Cg; ++ci)
        for (int kk = 0; kk < p.K; ++kk)
          dw0[(size_t(rs) * Cg + ci) * p.K + kk] = dwf[(size_t(rs) * p.C + (kk / Kg) * Cg + ci) * p.K + kk];
  } else {
    truth_k.grouped_conv2d_bwd_filter(dw0.data(), db0.data(), dy.data(), x.data(), p, c.groups);
  }
  k.grouped_conv2d_bwd_filter(dw1.data(), db1.data(), dy.data(), x.data(), p, c.groups);
  EXPECT_CLOSE(dw1, dw0, red_filter, "bwd_filter dw " + tag);
  EXPECT_CLOSE(db1, db0, red_filter, "bwd_filter db " + tag);
  std::fill(dw1.begin(), dw1.end(), -3.f);
  k.grouped_conv2d_bwd_filter(dw1.data(), nullptr, dy.data(), x.data(), p, c.groups);
  EXPECT_CLOSE(dw1, dw0, red_filter, "bwd_filter dw (no db) " + tag);
}

}  // namespace

TEST(reference_matches_a_dense_convolution_with_a_block_diagonal_filter) {
  std::mt19937 rng(21);
  const CpuKernels& ref = ck::scalar_kernels();
  for (const Case& c : cases()) check_against(ref, ref, c, true, rng);
}

TEST(vector_kernels_match_reference) {
  std::mt19937 rng(22);
  const CpuKernels& ref = ck::scalar_kernels();
  std::uniform_int_distribution<int> small(1, 3), size(1, 11), per(1, 5), grp(1, 6), ker(1, 4), pick(0, 1);
  std::vector<Case> all = cases();
  while (all.size() < 40) {
    const int g = grp(rng);
    Case c = make(small(rng), size(rng), size(rng), g * per(rng), g * per(rng), g, ker(rng), ker(rng),
                  small(rng), small(rng), pick(rng) == 1, small(rng) == 3 ? 2 : 1, 1);
    if (c.p.P >= 1 && c.p.Q >= 1) all.push_back(c);
  }
  for (int threads : {0, 3}) {
    ck::set_num_threads(threads);
    for (const CpuKernels* k : cktest::vector_tables())
      for (const Case& c : all) check_against(*k, ref, c, false, rng);
  }
  ck::set_num_threads(0);
}

CK_TEST_MAIN()
