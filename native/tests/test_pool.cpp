// Pooling kernels: vector variants against the reference on odd shapes, the reference against
// finite differences, and the seeds' worked examples.
#include <limits>
#include <random>

#include "kernel_check.h"
#include "thread_pool.h"

namespace {

ck::PoolParams params(int N, int H, int W, int C, int R, int S, int sh, int sw, bool same) {
  ck::PoolParams p;
  p.N = N, p.H = H, p.W = W, p.C = C, p.R = R, p.S = S, p.stride_h = sh, p.stride_w = sw;
  if (same) {
    p.P = (H + sh - 1) / sh, p.Q = (W + sw - 1) / sw;
    int th = std::max((p.P - 1) * sh + R - H, 0), tw = std::max((p.Q - 1) * sw + S - W, 0);
    p.pad_h = th / 2, p.pad_w = tw / 2;
  } else {
    p.P = (H - R) / sh + 1, p.Q = (W - S) / sw + 1;
  }
  return p;
}

std::vector<ck::PoolParams> shapes() {
  return {params(2, 7, 7, 3, 2, 2, 2, 2, true),  params(1, 1, 1, 1, 1, 1, 1, 1, false),
          params(3, 9, 7, 20, 2, 2, 2, 2, false), params(1, 24, 24, 32, 2, 2, 2, 2, false),
          params(2, 10, 9, 5, 3, 3, 3, 3, false),
          params(3, 9, 6, 17, 3, 2, 2, 1, true), params(2, 8, 8, 33, 3, 3, 1, 1, false),
          params(1, 5, 11, 16, 2, 3, 3, 2, true), params(4, 12, 12, 32, 2, 2, 2, 2, false)};
}

}  // namespace

TEST(vector_pooling_matches_reference) {
  std::mt19937 rng(1);
  const ck::CpuKernels& ref = ck::scalar_kernels();
  for (const ck::CpuKernels* k : cktest::vector_tables()) {
    for (const ck::PoolParams& p : shapes()) {
      auto x = cktest::random_vector(rng, p.x_size());
      auto dy = cktest::random_vector(rng, p.y_size());
      std::vector<float> a(p.y_size()), b(p.y_size()), da(p.x_size()), db(p.x_size());
      ref.maxpool2d_fwd(a.data(), x.data(), p);
      k->maxpool2d_fwd(b.data(), x.data(), p);
      CHECK_ALL_CLOSE(b.data(), a.data(), a.size(), 0.f, 0.f);
      for (bool relu_x : {false, true}) {
        ref.maxpool2d_bwd(da.data(), dy.data(), x.data(), p, relu_x);
        k->maxpool2d_bwd(db.data(), dy.data(), x.data(), p, relu_x);
        CHECK_ALL_CLOSE(db.data(), da.data(), da.size(), 1e-5f, 1e-6f);
      }
      ref.avgpool2d_fwd(a.data(), x.data(), p);
      k->avgpool2d_fwd(b.data(), x.data(), p);
      CHECK_ALL_CLOSE(b.data(), a.data(), a.size(), 1e-5f, 1e-6f);
      ref.avgpool2d_bwd(da.data(), dy.data(), p);
      k->avgpool2d_bwd(db.data(), dy.data(), p);
      CHECK_ALL_CLOSE(db.data(), da.data(), da.size(), 1e-5f, 1e-6f);
      int HW = p.H * p.W;
      std::vector<float> g1(size_t(p.N) * p.C), g2(g1.size()), gdy = cktest::random_vector(rng, g1.size());
      ref.global_avgpool_fwd(g1.data(), x.data(), p.N, HW, p.C);
      k->global_avgpool_fwd(g2.data(), x.data(), p.N, HW, p.C);
      CHECK_ALL_CLOSE(g2.data(), g1.data(), g1.size(), 1e-5f, 1e-6f);
      ref.global_maxpool_fwd(g1.data(), x.data(), p.N, HW, p.C);
      k->global_maxpool_fwd(g2.data(), x.data(), p.N, HW, p.C);
      CHECK_ALL_CLOSE(g2.data(), g1.data(), g1.size(), 0.f, 0.f);
      ref.global_avgpool_bwd(da.data(), gdy.data(), p.N, HW, p.C);
      k->global_avgpool_bwd(db.data(), gdy.data(), p.N, HW, p.C);
      CHECK_ALL_CLOSE(db.data(), da.data(), da.size(), 1e-6f, 1e-7f);
      ref.global_maxpool_bwd(da.data(), gdy.data(), x.data(), p.N, HW, p.C);
      k->global_maxpool_bwd(db.data(), gdy.data(), x.data(), p.N, HW, p.C);
      CHECK_ALL_CLOSE(db.data(), da.data(), da.size(), 0.f, 0.f);
    }
  }
}

TEST(max_pool_ties_route_to_the_first_maximum_on_every_path) {
  ck::PoolParams p = params(1, 4, 4, 1, 2, 2, 2, 2, false);
  std::vector<float> x(16, 1.f), dy = {1, 2, 3, 4}, want(16, 0.f);
  want[0] = 1, want[2] = 2, want[8] = 3, want[10] = 4;
  std::vector<float> dx(16);
  ck::scalar_kernels().maxpool2d_bwd(dx.data(), dy.data(), x.data(), p, false);
  CHECK_ALL_CLOSE(dx.data(), want.data(), 16, 0.f, 0.f);
  for (const ck::CpuKernels* k : cktest::vector_tables()) {
    k->maxpool2d_bwd(dx.data(), dy.data(), x.data(), p, false);
    CHECK_ALL_CLOSE(dx.data(), want.data(), 16, 0.f, 0.f);
  }
}

TEST(max_pool_gradient_reaches_only_the_argmax_even_when_infinite) {
  // Routing by multiplying with a 0/1 mask would turn 0 * inf into NaN in the other cells.
  const float inf = std::numeric_limits<float>::infinity();
  ck::PoolParams p = params(1, 2, 2, 1, 2, 2, 2, 2, false);
  std::vector<float> x = {1, 5, 2, 3}, dy = {inf}, want = {0, inf, 0, 0}, dx(4);
  for (const ck::CpuKernels* k : cktest::vector_tables()) {
    k->maxpool2d_bwd(dx.data(), dy.data(), x.data(), p, false);
    CHECK(dx == want);
    k->global_maxpool_bwd(dx.data(), dy.data(), x.data(), 1, 4, 1);
    CHECK(dx == want);
  }
}

TEST(max_pool_with_relu_x_is_the_relu_backward_of_the_plain_gradient) {
  // The folded pass must equal max-pool backward followed by ReLU's backward (dx where x > 0).
  std::mt19937 rng(3);
  for (ck::PoolParams p : {params(2, 6, 6, 17, 2, 2, 2, 2, false), params(1, 7, 5, 3, 3, 3, 2, 1, true)}) {
    auto x = cktest::random_vector(rng, p.x_size());
    for (size_t i = 0; i < x.size(); i += 3) x[i] = 0.f;  // a ReLU output: zeros, some maxima
    for (float& v : x) v = v < 0.f ? 0.f : v;
    auto dy = cktest::random_vector(rng, p.y_size());
    std::vector<float> want(p.x_size()), got(p.x_size());
    ck::scalar_kernels().maxpool2d_bwd(want.data(), dy.data(), x.data(), p, false);
    for (size_t i = 0; i < want.size(); ++i) want[i] = x[i] > 0.f ? want[i] : 0.f;
    std::vector<const ck::CpuKernels*> tables = cktest::vector_tables();
    tables.push_back(&ck::scalar_kernels());
    for (const ck::CpuKernels* k : tables) {
      k->maxpool2d_bwd(got.data(), dy.data(), x.data(), p, true);
      CHECK_ALL_CLOSE(got.data(), want.data(), want.size(), 0.f, 0.f);
    }
  }
}

TEST(reference_gradients_match_finite_differences) {
  std::mt19937 rng(2);
  const ck::CpuKernels& ref = ck::scalar_kernels();
  for (ck::PoolParams p : {params(2, 5, 6, 3, 2, 3, 2, 2, true), params(1, 6, 6, 2, 3, 3, 1, 1, false)}) {
    auto x = cktest::random_vector(rng, p.x_size());  // distinct values: no ties
    auto w = cktest::random_vector(rng, p.y_size());
    for (bool max : {true, false}) {
      auto loss = [&](const std::vector<float>& in) {
        std::vector<float> y(p.y_size());
        (max ? ref.maxpool2d_fwd : ref.avgpool2d_fwd)(y.data(), in.data(), p);
        return cktest::weighted_sum(y, w);
      };
      std::vector<float> dx(p.x_size());
      if (max) ref.maxpool2d_bwd(dx.data(), w.data(), x.data(), p, false);
      else ref.avgpool2d_bwd(dx.data(), w.data(), p);
      CHECK_GRADIENT(max ? "maxpool dx" : "avgpool dx", dx, cktest::numeric_gradient(x, loss, 1e-3f));
    }
  }
}

// Lp pooling: norm 2 against sqrt of the average pool of x^2 and norm 1 of non-negative x
// against the average pool (both independent of the Lp code), every vector ISA against the
// reference for norms 2, 1 and 3, and the reference gradient against finite differences.
TEST(lp_pooling) {
  std::mt19937 rng(3);
  const ck::CpuKernels& ref = ck::scalar_kernels();
  for (const ck::PoolParams& p : shapes()) {
    auto x = cktest::random_vector(rng, p.x_size());
    std::vector<float> sq(p.x_size()), absx(p.x_size()), avg(p.y_size()), lp(p.y_size());
    for (size_t i = 0; i < x.size(); ++i) sq[i] = x[i] * x[i], absx[i] = std::fabs(x[i]);
    ref.avgpool2d_fwd(avg.data(), sq.data(), p);
    for (float& v : avg) v = std::sqrt(v);
    ref.lppool2d_fwd(lp.data(), x.data(), p, 2.f);
    CHECK_ALL_CLOSE(lp.data(), avg.data(), avg.size(), 1e-5f, 1e-6f);
    ref.avgpool2d_fwd(avg.data(), absx.data(), p);
    ref.lppool2d_fwd(lp.data(), absx.data(), p, 1.f);
    CHECK_ALL_CLOSE(lp.data(), avg.data(), avg.size(), 1e-5f, 1e-6f);
  }
  for (int threads : {0, 3}) {
    ck::set_num_threads(threads);
    for (const ck::CpuKernels* k : cktest::vector_tables())
      for (const ck::PoolParams& p : shapes())
        for (float norm : {2.f, 1.f, 3.f}) {
          auto x = cktest::random_vector(rng, p.x_size());
          for (size_t i = 0; i < x.size(); i += 5) x[i] = 0.f;  // exact zeros: sign 0
          auto dy = cktest::random_vector(rng, p.y_size());
          std::vector<float> a(p.y_size()), b(p.y_size()), da(p.x_size(), 7.f), db(p.x_size(), -7.f);
          ref.lppool2d_fwd(a.data(), x.data(), p, norm);
          k->lppool2d_fwd(b.data(), x.data(), p, norm);
          CHECK_ALL_CLOSE(b.data(), a.data(), a.size(), 1e-5f, 1e-6f);
          ref.lppool2d_bwd(da.data(), dy.data(), x.data(), a.data(), p, norm);
          k->lppool2d_bwd(db.data(), dy.data(), x.data(), a.data(), p, norm);
          CHECK_ALL_CLOSE(db.data(), da.data(), da.size(), 1e-4f, 1e-5f);
        }
  }
  ck::set_num_threads(0);
  // A window of zeros has y == 0 and gets a zero gradient, never NaN.
  ck::PoolParams z = params(1, 2, 2, 3, 2, 2, 2, 2, false);
  std::vector<float> x(12, 0.f), y(3), dy = {1, 2, 3}, dx(12, 5.f);
  std::vector<const ck::CpuKernels*> tables = cktest::vector_tables();
  tables.push_back(&ref);
  for (const ck::CpuKernels* k : tables) {
    k->lppool2d_fwd(y.data(), x.data(), z, 2.f);
    k->lppool2d_bwd(dx.data(), dy.data(), x.data(), y.data(), z, 2.f);
    CHECK(y == std::vector<float>(3, 0.f) && dx == std::vector<float>(12, 0.f));
  }
  for (ck::PoolParams p : {params(2, 5, 6, 3, 2, 3, 2, 2, true), params(1, 6, 6, 2, 3, 3, 1, 1, false)})
    for (float norm : {2.f, 1.f, 3.f}) {
      auto xs = cktest::random_vector(rng, p.x_size());
      for (float& v : xs) v = v < 0 ? v - 0.2f : v + 0.2f;  // |x| >= 0.2: away from the kink of |x|
      auto w = cktest::random_vector(rng, p.y_size());
      auto loss = [&](const std::vector<float>& in) {
        std::vector<float> out(p.y_size());
        ref.lppool2d_fwd(out.data(), in.data(), p, norm);
        return cktest::weighted_sum(out, w);
      };
      std::vector<float> out(p.y_size()), dx2(p.x_size());
      ref.lppool2d_fwd(out.data(), xs.data(), p, norm);
      ref.lppool2d_bwd(dx2.data(), w.data(), xs.data(), out.data(), p, norm);
      CHECK_GRADIENT("lppool dx", dx2, cktest::numeric_gradient(xs, loss, 1e-2f));
    }
}

TEST(seed_examples) {
  // 2x2 stride-2 max pooling of the tutorial's 4x4 map.
  std::vector<float> x = {429, 505, 686, 856, 261, 792, 412, 640, 633, 653, 851, 751, 608, 913, 713, 657};
  std::vector<float> want = {792, 856, 913, 851}, y(4);
  ck::PoolParams p = params(1, 4, 4, 1, 2, 2, 2, 2, false);
  ck::scalar_kernels().maxpool2d_fwd(y.data(), x.data(), p);
  CHECK_ALL_CLOSE(y.data(), want.data(), 4, 0.f, 0.f);
  // 'same' 2x2 stride 2 on 7x7 gives 4x4; the last row/column windows hold one real cell.
  ck::PoolParams s = params(1, 7, 7, 1, 2, 2, 2, 2, true);
  CHECK(s.P == 4 && s.Q == 4 && s.pad_h == 0 && s.pad_w == 0);
  std::vector<float> m(49), out(16);
  for (int i = 0; i < 49; ++i) m[size_t(i)] = float(i);
  ck::scalar_kernels().maxpool2d_fwd(out.data(), m.data(), s);
  CHECK(out[0] == 8 && out[3] == 13 && out[12] == 43 && out[15] == 48);
}

CK_TEST_MAIN()
