// The tensor-core precisions of the GPU's matrix products (ck.setPrecision('tf32' | 'bf16')):
// conv2d and dense, forward (with bias and ReLU) and both gradients, against the scalar CPU
// reference run on operands rounded as the mode prescribes (TF32: 10 mantissa bits, to nearest
// with ties away; bf16: 7 bits, to nearest even). Products of rounded operands are exact in fp32,
// so the two differ only in summation order: the fp32 tolerances apply. The rounding reference
// here is plain frexp/ldexp arithmetic, independent of the kernels' bit tricks. Each mode must
// also really round: its result leaves the fp32 tolerance of the unrounded reference. On a GPU
// without tensor cores (before sm_80) the modes fall back to fp32, which is checked instead.
//
//   test_cuda_precision          all cases; exits 0 with a message when there is no GPU
//   test_cuda_precision --quick  fewer random shapes
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "precision.h"
#include "cuda/gpu_test_support.h"

using ck::Act;
using ck::ConvParams;
using ck::MathPrecision;
using namespace gputest;

namespace ck {
namespace cuda {
bool tensor_cores_available();
}
}  // namespace ck

namespace {

// v rounded to `bits` significant bits; ties away from zero (TF32's cvt.rna) or to even (bf16).
float round_significand(float v, int bits, bool ties_away) {
  if (!std::isfinite(v) || v == 0.f) return v;
  int e = 0;
  const double m = std::frexp(double(v), &e);  // v = m * 2^e, 0.5 <= |m| < 1
  const double scaled = std::ldexp(m, bits);
  const double r = ties_away ? std::round(scaled) : std::nearbyint(scaled);
  return float(std::ldexp(r, e - bits));
}

Vec rounded(const Vec& v, MathPrecision p) {
  if (p == MathPrecision::Fp32) return v;
  const bool tf32 = p == MathPrecision::Tf32;
  Vec out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = round_significand(v[i], tf32 ? 11 : 8, tf32);
  return out;
}

// The precision the kernels will use: the requested one, or fp32 without tensor cores.
MathPrecision effective(MathPrecision p) {
  return ck::cuda::tensor_cores_available() ? p : MathPrecision::Fp32;
}

std::string name(MathPrecision p) { return ck::precision_name(p); }

// Checks one product: `got` against the reference on rounded operands (want_rounded) within the
// fp32 tolerance; and, for a reduction long enough that rounding must show, that `got` is not
// within that tolerance of the unrounded reference (want_exact). Returns whether it showed.
bool check_product(const Vec& got, const Vec& want_rounded, const Vec& want_exact, double red,
                   MathPrecision p, const std::string& what) {
  EXPECT_CLOSE(got, want_rounded, red, what + " (" + name(p) + ")");
  std::string why;
  return !close(got, want_exact, red, 1.0, &why);
}

struct ConvData {
  Vec x, w, b, dy;
};

// conv2d's three products in precision p; returns whether each showed the rounding.
int compare_conv(const ConvParams& p, const ConvData& d, MathPrecision prec) {
  const MathPrecision used = effective(prec);
  ck::PrecisionScope scope(prec);
  const Vec xr = rounded(d.x, used), wr = rounded(d.w, used), dyr = rounded(d.dy, used);
  const std::string tag = describe(p);
  Dev gx(d.x), gw(d.w), gb(d.b), gdy(d.dy);
  int showed = 0;

  Vec want(p.y_size()), exact(p.y_size());
  ref().conv2d_fwd(want.data(), xr.data(), wr.data(), d.b.data(), p, Act::Relu);
  ref().conv2d_fwd(exact.data(), d.x.data(), d.w.data(), d.b.data(), p, Act::Relu);
  Dev y = Dev::out(p.y_size());
  gpu().conv2d_fwd(y.p(), gx.p(), gw.p(), gb.p(), p, Act::Relu, g_stream);
  showed += check_product(y.host(), want, exact, double(p.R * p.S * p.C), prec, "conv2d fwd bias relu " + tag);

  Vec want_dx(p.x_size()), exact_dx(p.x_size());
  ref().conv2d_bwd_data(want_dx.data(), dyr.data(), wr.data(), p);
  ref().conv2d_bwd_data(exact_dx.data(), d.dy.data(), d.w.data(), p);
  Dev dx = Dev::out(p.x_size());
  gpu().conv2d_bwd_data(dx.p(), gdy.p(), gw.p(), p, g_stream);
  showed += check_product(dx.host(), want_dx, exact_dx, double(p.R * p.S * p.K), prec, "conv2d bwd_data " + tag);

  Vec want_dw(p.w_size()), want_db(size_t(p.K)), exact_dw(p.w_size()), exact_db(size_t(p.K));
  ref().conv2d_bwd_filter(want_dw.data(), want_db.data(), dyr.data(), xr.data(), p);
  ref().conv2d_bwd_filter(exact_dw.data(), exact_db.data(), d.dy.data(), d.x.data(), p);
  Dev dw = Dev::out(p.w_size()), db = Dev::out(size_t(p.K));
  gpu().conv2d_bwd_filter(dw.p(), db.p(), gdy.p(), gx.p(), p, g_stream);
  const double pixels = double(p.N) * p.P * p.Q;
  showed += check_product(dw.host(), want_dw, exact_dw, pixels, prec, "conv2d bwd_filter dw " + tag);
  // The bias gradient is a plain fp32 column sum in every mode.
  EXPECT_CLOSE(db.host(), exact_db, pixels, "conv2d bwd_filter db (" + name(prec) + ") " + tag);
  return showed;
}

ConvData conv_data(const ConvParams& p, std::mt19937& rng) {
  return {rnd(rng, p.x_size()), rnd(rng, p.w_size()), rnd(rng, size_t(p.K)), rnd(rng, p.y_size())};
}

int compare_dense(int M, int K, int N, std::mt19937& rng, MathPrecision prec) {
  const MathPrecision used = effective(prec);
  ck::PrecisionScope scope(prec);
  const Vec x = rnd(rng, size_t(M) * K), w = rnd(rng, size_t(K) * N), b = rnd(rng, size_t(N)),
            dy = rnd(rng, size_t(M) * N);
  const Vec xr = rounded(x, used), wr = rounded(w, used), dyr = rounded(dy, used);
  const std::string tag = "M" + std::to_string(M) + " K" + std::to_string(K) + " N" + std::to_string(N);
  Dev gx(x), gw(w), gb(b), gdy(dy);
  int showed = 0;

  Vec want(size_t(M) * N), exact(size_t(M) * N);
  ref().dense_fwd(want.data(), xr.data(), wr.data(), b.data(), M, K, N, Act::None);
  ref().dense_fwd(exact.data(), x.data(), w.data(), b.data(), M, K, N, Act::None);
  Dev y = Dev::out(size_t(M) * N);
  gpu().dense_fwd(y.p(), gx.p(), gw.p(), gb.p(), M, K, N, Act::None, g_stream);
  showed += check_product(y.host(), want, exact, K, prec, "dense fwd bias " + tag);

  Vec want_dx(size_t(M) * K), exact_dx(size_t(M) * K);
  ref().dense_bwd_data(want_dx.data(), dyr.data(), wr.data(), M, K, N);
  ref().dense_bwd_data(exact_dx.data(), dy.data(), w.data(), M, K, N);
  Dev dx = Dev::out(size_t(M) * K);
  gpu().dense_bwd_data(dx.p(), gdy.p(), gw.p(), M, K, N, g_stream);
  showed += check_product(dx.host(), want_dx, exact_dx, N, prec, "dense bwd_data " + tag);

  Vec want_dw(size_t(K) * N), want_db(static_cast<size_t>(N)), exact_dw(size_t(K) * N),
      exact_db(static_cast<size_t>(N));
  ref().dense_bwd_filter(want_dw.data(), want_db.data(), dyr.data(), xr.data(), M, K, N);
  ref().dense_bwd_filter(exact_dw.data(), exact_db.data(), dy.data(), x.data(), M, K, N);
  Dev dw = Dev::out(size_t(K) * N), db = Dev::out(size_t(N));
  gpu().dense_bwd_filter(dw.p(), db.p(), gdy.p(), gx.p(), M, K, N, g_stream);
  showed += check_product(dw.host(), want_dw, exact_dw, M, prec, "dense bwd_filter dw " + tag);
  EXPECT_CLOSE(db.host(), exact_db, M, "dense bwd_filter db (" + name(prec) + ") " + tag);
  return showed;
}

const MathPrecision kModes[] = {MathPrecision::Tf32, MathPrecision::Bf16};

// Rounding must show on the long reductions when tensor cores run, and never without them.
void expect_rounding_shown(int showed, int products, MathPrecision prec, const std::string& what) {
  const bool tensor = effective(prec) != MathPrecision::Fp32;
  if (tensor ? showed < products : showed != 0) {
    cktest::fail(__FILE__, __LINE__,
                 what + " (" + name(prec) + "): " + std::to_string(showed) + " of " +
                     std::to_string(products) + " products differ from fp32 beyond its tolerance" +
                     (tensor ? "; the tensor-core path did not round" : " without tensor cores"));
  }
}

}  // namespace

TEST(rounding_reference) {
  // 1 + 2^-11 is a TF32 tie (rounds away, up) and a bf16 value below the tie (rounds down).
  const float tie_tf32 = 1.f + std::ldexp(1.f, -11);
  CHECK(round_significand(tie_tf32, 11, true) == 1.f + std::ldexp(1.f, -10));
  CHECK(round_significand(1.f + std::ldexp(1.f, -8), 8, false) == 1.f);  // tie to even
  CHECK(round_significand(1.f + 3 * std::ldexp(1.f, -8), 8, false) == 1.f + std::ldexp(1.f, -6));
  CHECK(round_significand(-tie_tf32, 11, true) == -(1.f + std::ldexp(1.f, -10)));
}

TEST(conv2d_edge_shapes_in_each_mode) {
  for (MathPrecision prec : kModes) {
    std::mt19937 rng(21);
    for (const ConvParams& p : gpu_conv_edge_shapes()) compare_conv(p, conv_data(p, rng), prec);
  }
}

TEST(conv2d_random_shapes_in_each_mode) {
  for (MathPrecision prec : kModes) {
    std::mt19937 rng(22);
    for (int i = 0; i < g_cases / 2; ++i) {
      ConvParams p = random_conv(rng);
      compare_conv(p, conv_data(p, rng), prec);
    }
  }
}

TEST(conv2d_rounding_shows) {
  // Long reductions in all three products (fwd 3*3*32, data 3*3*48, filter 2*12*12).
  const ConvParams p = conv_same(2, 12, 12, 32, 48, 3, 3);
  for (MathPrecision prec : kModes) {
    std::mt19937 rng(23);
    expect_rounding_shown(compare_conv(p, conv_data(p, rng), prec), 3, prec, "conv2d " + describe(p));
  }
}

TEST(dense_shapes_in_each_mode) {
  struct S {
    int M, K, N;
  };
  // Narrow and wide tiles, ragged edges, and long reductions split over blocks (split-K).
  const std::vector<S> shapes = {{1, 1, 1},     {3, 17, 33},  {100, 300, 10}, {257, 129, 65},
                                 {70, 65, 130}, {2, 3, 200},  {1024, 64, 64}, {40, 2048, 24}};
  for (MathPrecision prec : kModes) {
    std::mt19937 rng(24);
    int showed = 0;
    for (const S& s : shapes) {
      const int n = compare_dense(s.M, s.K, s.N, rng, prec);
      if (s.M >= 1024 || s.K >= 2048) showed += n;  // the long reductions: must round
    }
    expect_rounding_shown(showed, 6, prec, "dense long reductions");
  }
}

TEST(fp32_mode_is_unchanged) {
  // The default stays the CUDA-core fp32 kernel: within the usual tolerance of the unrounded
  // reference, even where a tensor-core mode would not be.
  std::mt19937 rng(25);
  const ConvParams p = conv_same(2, 12, 12, 32, 48, 3, 3);
  CHECK(compare_conv(p, conv_data(p, rng), MathPrecision::Fp32) == 0);
  CHECK(compare_dense(1024, 64, 64, rng, MathPrecision::Fp32) == 0);
}

int main(int argc, char** argv) { return gpu_test_main(argc, argv, "test_cuda_precision"); }
