// GPU twins of the split batch-norm training kernels (batchnorm_stats / batchnorm_fwd_apply,
// batchnorm_bwd_sums / batchnorm_bwd_apply) against the scalar reference's, over edge shapes
// (one row, one channel, channel counts off the 32-channel tile, a process's part with no rows)
// and random ones, with and without a fused ReLU / ReLU6 and gamma / beta. Exits 0 with a
// message where there is no GPU.
#include <cstdio>
#include <string>
#include <vector>

#include "cuda/gpu_test_support.h"

using ck::Act;
using namespace gputest;

namespace {

struct Shape {
  size_t rows;
  int C;
};

void compare(const Shape& s, Act act, bool affine, std::mt19937& rng) {
  const std::string tag = std::to_string(s.rows) + "x" + std::to_string(s.C) + " act " +
                          std::to_string(int(act)) + (affine ? " affine" : "");
  const size_t n = s.rows * size_t(s.C), C = size_t(s.C);
  const Vec x = rnd(rng, n, -2.f, 5.f), dy = rnd(rng, n), gamma = rnd(rng, C, 0.5f, 2.f), beta = rnd(rng, C);
  const float* g = affine ? gamma.data() : nullptr;
  const float* b = affine ? beta.data() : nullptr;
  Dev gx(x), gdy(dy), gg(gamma), gb(beta);
  float* gpg = affine ? gg.p() : nullptr;
  float* gpb = affine ? gb.p() : nullptr;

  Vec sums(2 * C);
  ref().batchnorm_stats(sums.data(), x.data(), s.rows, s.C);
  Dev gsums = Dev::out(2 * C);
  gpu().batchnorm_stats(gsums.p(), gx.p(), s.rows, s.C, g_stream);
  EXPECT_CLOSE_T(gsums.host(), sums, double(s.rows), 5.0, 1e-4f, 1e-4, "bn stats " + tag);

  // Applied as a process with half of a batch of 2 * rows + 1 rows whose sums are these plus 1s.
  const float count = float(2 * s.rows + 1);
  Vec total = sums;
  for (float& v : total) v = v * 2.f + 1.f;
  Vec y(n), m(C), is(C), rm(C, 0.5f), rv(C, 2.f);
  ref().batchnorm_fwd_apply(y.data(), m.data(), is.data(), rm.data(), rv.data(), total.data(), count, x.data(), g, b,
                            s.rows, s.C, 1e-3f, 0.9f, act);
  Dev gtotal(total), grm(Vec(C, 0.5f)), grv(Vec(C, 2.f));
  Dev gy = Dev::out(n), gm = Dev::out(C), gis = Dev::out(C);
  gpu().batchnorm_fwd_apply(gy.p(), gm.p(), gis.p(), grm.p(), grv.p(), gtotal.p(), count, gx.p(), gpg, gpb, s.rows,
                            s.C, 1e-3f, 0.9f, act, g_stream);
  EXPECT_CLOSE_T(gm.host(), m, 1, 1.0, 1e-5f, 1e-5, "bn apply mean " + tag);
  EXPECT_CLOSE_T(gis.host(), is, 1, 1.0, 1e-5f, 1e-5, "bn apply invstd " + tag);
  EXPECT_CLOSE_T(grm.host(), rm, 1, 1.0, 1e-5f, 1e-6, "bn apply running_mean " + tag);
  EXPECT_CLOSE_T(grv.host(), rv, 1, 1.0, 1e-5f, 1e-6, "bn apply running_var " + tag);
  EXPECT_CLOSE_T(gy.host(), y, 1, 1.0, 1e-4f, 1e-4, "bn apply y " + tag);

  // Backward from the reference's statistics and output.
  Vec bsums(2 * C);
  ref().batchnorm_bwd_sums(bsums.data(), dy.data(), x.data(), m.data(), is.data(), g, b, s.rows, s.C, y.data(), act);
  Dev gm_r(m), gis_r(is), gy_r(y), gbsums = Dev::out(2 * C);
  gpu().batchnorm_bwd_sums(gbsums.p(), gdy.p(), gx.p(), gm_r.p(), gis_r.p(), gpg, gpb, s.rows, s.C, gy_r.p(), act,
                           g_stream);
  EXPECT_CLOSE_T(gbsums.host(), bsums, double(s.rows), 1.0, 1e-4f, 1e-4, "bn bwd sums " + tag);
  Vec btotal = bsums;
  for (float& v : btotal) v = v * 2.f - 0.5f;
  Vec dx(n);
  ref().batchnorm_bwd_apply(dx.data(), dy.data(), x.data(), m.data(), is.data(), g, b, btotal.data(), count, s.rows,
                            s.C, y.data(), act);
  Dev gbtotal(btotal), gdx = Dev::out(n);
  gpu().batchnorm_bwd_apply(gdx.p(), gdy.p(), gx.p(), gm_r.p(), gis_r.p(), gpg, gpb, gbtotal.p(), count, s.rows, s.C,
                            gy_r.p(), act, g_stream);
  double scale = 0;
  for (size_t c = 0; c < C; ++c) scale = std::max(scale, double(is[c]) * (affine ? gamma[c] : 1.f));
  EXPECT_CLOSE_T(gdx.host(), dx, 1, scale, 1e-4f, 1e-4, "bn bwd apply " + tag);
}

}  // namespace

TEST(split_batchnorm_matches_reference) {
  std::mt19937 rng(21);
  std::vector<Shape> shapes{{1, 1}, {0, 5}, {3, 33}, {1025, 7}, {5000, 64}, {70, 130}};
  for (int i = 0; i < g_cases; ++i) shapes.push_back({size_t(U(rng, 1, 3000)), U(rng, 1, 96)});
  int variant = 0;
  for (const Shape& s : shapes) {
    for (Act act : {Act::None, Act::Relu, Act::Relu6}) compare(s, act, variant++ % 2 == 0, rng);
  }
}

int main(int argc, char** argv) { return gpu_test_main(argc, argv, "test_cuda_batchnorm_sync"); }
