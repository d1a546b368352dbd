// Zero padding and up-sampling kernels: worked examples (including TensorFlow's bilinear values),
// the backward passes as exact adjoints of the forward passes (<fwd(x), dy> == <x, bwd(dy)>), and
// every vector ISA against the reference on odd shapes and thread counts.
#include <random>
#include <string>
#include <vector>

#include "kernel_check.h"
#include "thread_pool.h"

using ck::CpuKernels;
using ck::Interp;
using ck::Pad2dParams;
using ck::UpsampleParams;

namespace {

Pad2dParams pad(int N, int H, int W, int C, int t, int b, int l, int r) {
  Pad2dParams p;
  p.N = N, p.H = H, p.W = W, p.C = C, p.top = t, p.bottom = b, p.left = l, p.right = r;
  return p;
}

UpsampleParams up(int N, int H, int W, int C, int sh, int sw, Interp interp, bool half_pixel = true) {
  UpsampleParams p;
  p.N = N, p.H = H, p.W = W, p.C = C, p.size_h = sh, p.size_w = sw, p.interp = interp, p.half_pixel = half_pixel;
  return p;
}

std::string describe(const UpsampleParams& p) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s%s N%d H%d W%d C%d size %d,%d", p.interp == Interp::Nearest ? "nearest" : "bilinear",
                p.interp == Interp::Bilinear && !p.half_pixel ? " (legacy)" : "", p.N, p.H, p.W, p.C, p.size_h, p.size_w);
  return buf;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) { return cktest::weighted_sum(a, b); }

std::vector<Pad2dParams> pad_shapes() {
  return {pad(2, 3, 4, 3, 1, 1, 1, 1), pad(1, 1, 1, 1, 0, 0, 0, 0), pad(2, 5, 2, 17, 2, 0, 3, 1),
          pad(1, 7, 7, 33, 0, 3, 0, 2), pad(3, 1, 6, 8, 4, 4, 0, 0)};
}

std::vector<UpsampleParams> up_shapes() {
  std::vector<UpsampleParams> out;
  for (Interp interp : {Interp::Nearest, Interp::Bilinear})
    for (bool half : {true, false}) {
      if (interp == Interp::Nearest && !half) continue;
      for (UpsampleParams p : {up(2, 3, 4, 3, 2, 2, interp), up(1, 1, 1, 1, 3, 2, interp), up(2, 5, 3, 17, 3, 1, interp),
                               up(1, 4, 6, 33, 1, 4, interp), up(3, 7, 5, 8, 2, 3, interp), up(1, 2, 9, 16, 5, 5, interp)}) {
        p.half_pixel = half;
        out.push_back(p);
      }
    }
  return out;
}

}  // namespace

TEST(zero_padding_worked_example) {
  // One 2x2 channel padded by top 1, bottom 0, left 0, right 2.
  Pad2dParams p = pad(1, 2, 2, 1, 1, 0, 0, 2);
  std::vector<float> x = {1, 2, 3, 4}, y(p.y_size(), 9.f), dx(4);
  std::vector<float> want = {0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0};
  std::vector<const CpuKernels*> tables = cktest::vector_tables();
  tables.push_back(&ck::scalar_kernels());
  for (const CpuKernels* k : tables) {
    k->zero_pad2d_fwd(y.data(), x.data(), p);
    CHECK(y == want);
    k->zero_pad2d_bwd(dx.data(), want.data(), p);
    CHECK(dx == x);
  }
}

TEST(up_sampling_worked_examples) {
  std::vector<const CpuKernels*> tables = cktest::vector_tables();
  tables.push_back(&ck::scalar_kernels());
  for (const CpuKernels* k : tables) {
    // Nearest repeats each pixel into a size_h x size_w block.
    std::vector<float> x = {1, 2, 3, 4}, y(8);
    k->upsample2d_fwd(y.data(), x.data(), up(1, 2, 2, 1, 1, 2, Interp::Nearest));
    CHECK((y == std::vector<float>{1, 1, 2, 2, 3, 3, 4, 4}));
    // Bilinear 2x of the row [0, 1], as tf.image.resize (half-pixel centres) gives it:
    // source columns -0.25, 0.25, 0.75, 1.25 -> 0, 0.25, 0.75, 1 (clamped at the edges).
    std::vector<float> row = {0, 1}, out(4);
    k->upsample2d_fwd(out.data(), row.data(), up(1, 1, 2, 1, 1, 2, Interp::Bilinear, true));
    CHECK_ALL_CLOSE(out.data(), (std::vector<float>{0, 0.25f, 0.75f, 1}).data(), 4, 0.f, 1e-7f);
    // tf.image.resizeBilinear's default (tfjs's UpSampling2D): source columns 0, 0.5, 1, 1.5.
    k->upsample2d_fwd(out.data(), row.data(), up(1, 1, 2, 1, 1, 2, Interp::Bilinear, false));
    CHECK_ALL_CLOSE(out.data(), (std::vector<float>{0, 0.5f, 1, 1}).data(), 4, 0.f, 1e-7f);
    // 3x along rows of the column [0, 3]: sources -1/3, 0, 1/3, 2/3, 1, 4/3.
    std::vector<float> col = {0, 3}, out6(6);
    k->upsample2d_fwd(out6.data(), col.data(), up(1, 2, 1, 1, 3, 1, Interp::Bilinear, true));
    CHECK_ALL_CLOSE(out6.data(), (std::vector<float>{0, 0, 1, 2, 3, 3}).data(), 6, 1e-6f, 1e-6f);
  }
}

TEST(backward_passes_are_adjoints_of_the_forward_passes) {
  std::mt19937 rng(31);
  const CpuKernels& ref = ck::scalar_kernels();
  for (const Pad2dParams& p : pad_shapes()) {
    auto x = cktest::random_vector(rng, p.x_size()), dy = cktest::random_vector(rng, p.y_size());
    std::vector<float> y(p.y_size()), dx(p.x_size());
    ref.zero_pad2d_fwd(y.data(), x.data(), p);
    ref.zero_pad2d_bwd(dx.data(), dy.data(), p);
    CHECK_NEAR(dot(y, dy), dot(x, dx), 1e-9);
  }
  for (const UpsampleParams& p : up_shapes()) {
    auto x = cktest::random_vector(rng, p.x_size()), dy = cktest::random_vector(rng, p.y_size());
    std::vector<float> y(p.y_size()), dx(p.x_size());
    ref.upsample2d_fwd(y.data(), x.data(), p);
    ref.upsample2d_bwd(dx.data(), dy.data(), p);
    const double a = dot(y, dy), b = dot(x, dx);
    if (std::fabs(a - b) > 1e-4 * (1 + std::fabs(a))) cktest::fail(__FILE__, __LINE__, describe(p) + ": <up(x), dy> " + std::to_string(a) + " vs <x, up_bwd(dy)> " + std::to_string(b));
  }
}

TEST(vector_kernels_match_reference) {
  std::mt19937 rng(32);
  const CpuKernels& ref = ck::scalar_kernels();
  for (int threads : {0, 1, 3}) {
    ck::set_num_threads(threads);
    for (const CpuKernels* k : cktest::vector_tables()) {
      for (const Pad2dParams& p : pad_shapes()) {
        auto x = cktest::random_vector(rng, p.x_size()), dy = cktest::random_vector(rng, p.y_size());
        std::vector<float> y0(p.y_size(), 5.f), y1(p.y_size(), -5.f), dx0(p.x_size(), 5.f), dx1(p.x_size(), -5.f);
        ref.zero_pad2d_fwd(y0.data(), x.data(), p);
        k->zero_pad2d_fwd(y1.data(), x.data(), p);
        CHECK(y0 == y1);
        ref.zero_pad2d_bwd(dx0.data(), dy.data(), p);
        k->zero_pad2d_bwd(dx1.data(), dy.data(), p);
        CHECK(dx0 == dx1);
      }
      for (const UpsampleParams& p : up_shapes()) {
        const std::string tag = std::string(ck::isa_name(k->isa)) + " " + describe(p);
        auto x = cktest::random_vector(rng, p.x_size()), dy = cktest::random_vector(rng, p.y_size());
        std::vector<float> y0(p.y_size(), 5.f), y1(p.y_size(), -5.f), dx0(p.x_size(), 5.f), dx1(p.x_size(), -5.f);
        ref.upsample2d_fwd(y0.data(), x.data(), p);
        k->upsample2d_fwd(y1.data(), x.data(), p);
        EXPECT_CLOSE(y1, y0, 4, "fwd " + tag);
        ref.upsample2d_bwd(dx0.data(), dy.data(), p);
        k->upsample2d_bwd(dx1.data(), dy.data(), p);
        EXPECT_CLOSE(dx1, dx0, double(p.size_h) * p.size_w * 4, "bwd " + tag);
      }
    }
  }
  ck::set_num_threads(0);
}

CK_TEST_MAIN()
