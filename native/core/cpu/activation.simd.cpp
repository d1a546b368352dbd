// Vector activations (from x forward; backward from the output y, or from x for those whose y
// does not determine x), softmax, dropout and mul.
// Elementwise work is split over the pool in large chunks; softmax by rows.
#include <limits>

#include "dropout_hash.h"
#include "simd_kernels.h"
#include "simd_loops.h"

namespace ck {
namespace CK_ISA_NS {

namespace {

constexpr int L = Vec::kLanes;
constexpr size_t kGrain = 1 << 15;

inline Vec tanh(Vec x) {
  // tanh|x| = (1 - e^{-2|x|}) / (1 + e^{-2|x|}), then the sign of x.
  const Vec one = Vec::set1(1.f);
  Vec t = exp(Vec::set1(-2.f) * abs(x));
  Vec r = (one - t) / (one + t);
  return select_gt(Vec::zero(), x, Vec::zero() - r, r);
}

// Phi(x), the standard normal CDF, and its density phi(x). erfc(z) = t * P(t) * e^{-z^2} with
// t = 1 / (1 + 0.4 z), z = |x| / sqrt(2) >= 0: P is convkit's least-squares fit of
// erfc(z) e^{z^2} / t over t in (0, 1] (relative error 6e-9, ~3e-7 evaluated in float), so Phi
// keeps its relative precision far into the lower tail, where gelu's values are tiny.
struct NormalCdfPdf { Vec cdf, pdf; };
inline NormalCdfPdf normal_cdf_pdf(Vec x) {
  static constexpr float kP[] = {2.2567583480e-01f, 2.2567586014e-01f, 2.0761372242e-01f, 1.7173938901e-01f,
                                 1.1900759724e-01f, 8.3919018835e-02f, -4.6901032238e-02f, 1.3756951006e-01f,
                                 -2.3553401866e-01f, 1.4044984534e-01f, -2.9215733124e-02f};
  const Vec one = Vec::set1(1.f), half = Vec::set1(0.5f);
  const Vec t = one / fmadd(abs(x), Vec::set1(0.4f * 0.70710678118654752f), one);
  Vec p = Vec::set1(kP[10]);
  for (int k = 9; k >= 0; --k) p = fmadd(p, t, Vec::set1(kP[k]));
  const Vec e = exp(Vec::set1(-0.5f) * x * x);
  const Vec half_erfc = half * t * p * e;
  return {select_gt0(x, one - half_erfc, half_erfc), Vec::set1(0.39894228040143268f) * e};
}

// log(1 + u) for u in [0, 1]: 2 atanh(s) with s = u / (2 + u) <= 1/3, its odd series to s^15
// (relative error ~1e-9).
inline Vec log1p_unit(Vec u) {
  const Vec s = u / (Vec::set1(2.f) + u), s2 = s * s;
  Vec p = Vec::set1(1.f / 15.f);
  for (float k : {13.f, 11.f, 9.f, 7.f, 5.f, 3.f, 1.f}) p = fmadd(p, s2, Vec::set1(1.f / k));
  return Vec::set1(2.f) * s * p;
}

inline Vec softplus(Vec x) { return max(x, Vec::zero()) + log1p_unit(exp(Vec::zero() - abs(x))); }

// sigmoid(x) and sigmoid(-x) = e^-x sigmoid(x), each with its relative precision (1 - sigmoid(x)
// would lose it where sigmoid(x) is near 1).
struct SigmoidPair { Vec pos, neg; };
inline SigmoidPair sigmoid_pair(Vec x) {
  const Vec e = exp(Vec::zero() - x);
  const Vec s = Vec::set1(1.f) / (Vec::set1(1.f) + e);
  return {s, e * s};
}

// GeluTanh's 0.5 (1 + tanh(u)) is sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3).
constexpr float kSqrt2OverPi = 0.7978845608028654f, kGeluCubic = 0.044715f;
inline Vec gelu_tanh_2u(Vec x) { return Vec::set1(2.f * kSqrt2OverPi) * fmadd(Vec::set1(kGeluCubic) * x * x, x, x); }

// Mish's tanh(softplus(x)) = n / (n + 2) with n = u (u + 2), u = e^x (clamped past 20, where
// the ratio is 1 in float anyway); for its gradient 1 - tanh^2 = 2 (1 + t) / (n + 2) (taken as 0
// past 20, below float's resolution there, where the clamped u would leave it finite), and
// sigmoid(x) = u / (1 + u).
struct MishTerms { Vec tanh_softplus, sech2_softplus, sigmoid; };
inline MishTerms mish_terms(Vec x) {
  const Vec one = Vec::set1(1.f), two = Vec::set1(2.f), clamp = Vec::set1(20.f);
  const Vec u = exp(min(x, clamp));
  const Vec n = u * (u + two);
  const Vec d = one / (n + two), t = n * d;
  return {t, select_gt(x, clamp, Vec::zero(), two * d * (one + t)), u / (one + u)};
}

inline Vec activate(Vec x, Act act, Vec alpha) {
  const Vec one = Vec::set1(1.f);
  switch (act) {
    case Act::None: return x;
    case Act::Relu: return max(x, Vec::zero());
    case Act::LeakyRelu: return select_gt0(x, x, alpha * x);
    case Act::Elu: return select_gt0(x, x, alpha * (exp(x) - one));
    case Act::Sigmoid: return sigmoid(x);
    case Act::Tanh: return tanh(x);
    case Act::ClippedRelu: return min(max(x, Vec::zero()), alpha);
    case Act::Relu6: return min(max(x, Vec::zero()), Vec::set1(6.f));
    case Act::Gelu: return x * normal_cdf_pdf(x).cdf;
    case Act::GeluTanh: return x * sigmoid(gelu_tanh_2u(x));
    case Act::Swish: return x * sigmoid(x);
    case Act::HardSwish: return x * hard_sigmoid(x);
    case Act::HardSigmoid: return hard_sigmoid(x);
    case Act::Softplus: return softplus(x);
    case Act::Selu: return Vec::set1(kSeluScale) * select_gt0(x, x, Vec::set1(kSeluAlpha) * (exp(x) - one));
    case Act::Mish: return x * mish_terms(x).tanh_softplus;
  }
  return Vec::set1(std::numeric_limits<float>::quiet_NaN());
}

// The acts with act_grad_from_output.
inline Vec derivative(Vec y, Act act, Vec alpha) {
  const Vec one = Vec::set1(1.f);
  switch (act) {
    case Act::None: return one;
    case Act::Relu: return select_gt0(y, one, Vec::zero());
    case Act::LeakyRelu: return select_gt0(y, one, alpha);
    case Act::Elu: return select_gt0(y, one, y + alpha);
    case Act::Sigmoid: return y * (one - y);
    case Act::Tanh: return one - y * y;
    case Act::ClippedRelu: return select_gt0(y, select_gt(alpha, y, one, Vec::zero()), Vec::zero());
    case Act::Relu6: return select_gt0(y, select_gt(Vec::set1(6.f), y, one, Vec::zero()), Vec::zero());
    default: return Vec::set1(std::numeric_limits<float>::quiet_NaN());
  }
}

// The others, from x; the hard ones' corners take the flat side's slope, as the reference.
inline Vec derivative_from_x(Vec x, Act act) {
  const Vec one = Vec::set1(1.f), zero = Vec::zero(), three = Vec::set1(3.f), minus3 = Vec::set1(-3.f);
  switch (act) {
    case Act::Gelu: {
      const NormalCdfPdf n = normal_cdf_pdf(x);
      return fmadd(x, n.pdf, n.cdf);
    }
    case Act::GeluTanh: {
      // sigmoid(2u) + 2x sigmoid(2u) sigmoid(-2u) u'; the clamp keeps u' finite where
      // sigmoid(-2u) is 0 anyway (as the reference).
      const SigmoidPair s = sigmoid_pair(gelu_tanh_2u(x));
      const Vec xc = min(max(x, Vec::set1(-10.f)), Vec::set1(10.f));
      const Vec du = Vec::set1(kSqrt2OverPi) * fmadd(Vec::set1(3.f * kGeluCubic) * xc, xc, one);
      return fmadd(Vec::set1(2.f) * x * s.pos * s.neg, du, s.pos);
    }
    case Act::Swish: {
      const SigmoidPair s = sigmoid_pair(x);
      return s.pos * fmadd(x, s.neg, one);
    }
    case Act::HardSwish:
      return select_gt(x, minus3, select_gt(three, x, (x + x + three) / Vec::set1(6.f), one), zero);
    case Act::HardSigmoid: return select_gt(x, minus3, select_gt(three, x, Vec::set1(1.f / 6.f), zero), zero);
    case Act::Softplus: return sigmoid(x);
    case Act::Selu:
      return Vec::set1(kSeluScale) * select_gt0(x, one, Vec::set1(kSeluAlpha) * exp(x));
    case Act::Mish: {
      const MishTerms m = mish_terms(x);
      return fmadd(x * m.sech2_softplus, m.sigmoid, m.tanh_softplus);
    }
    default: return Vec::set1(std::numeric_limits<float>::quiet_NaN());
  }
}

}  // namespace

void activation_fwd(float* y, const float* x, size_t n, Act act, float alpha) {
  Vec a = Vec::set1(alpha);
  for_each_vector(n, kGrain, [&](size_t i, size_t left) { store_n(y + i, activate(load_n(x + i, left), act, a), left); });
}

void activation_bwd(float* dx, const float* dy, const float* y, size_t n, Act act, float alpha) {
  Vec a = Vec::set1(alpha);
  for_each_vector(n, kGrain, [&](size_t i, size_t left) {
    store_n(dx + i, load_n(dy + i, left) * derivative(load_n(y + i, left), act, a), left);
  });
}

void activation_bwd_from_x(float* dx, const float* dy, const float* x, size_t n, Act act, float) {
  for_each_vector(n, kGrain, [&](size_t i, size_t left) {
    store_n(dx + i, load_n(dy + i, left) * derivative_from_x(load_n(x + i, left), act), left);
  });
}

void softmax_fwd(float* y, const float* x, size_t rows, size_t cols) {
  parallel_for(rows, kGrain / (cols + 1) + 1, [&](size_t b, size_t e, int) {
    for (size_t r = b; r < e; ++r) {
      const float* xr = x + r * cols;
      float* yr = y + r * cols;
      float mx = xr[0];
      size_t c = 0;
      if (cols >= size_t(L)) {
        Vec m = Vec::load(xr);
        for (c = L; c + L <= cols; c += L) m = max(m, Vec::load(xr + c));
        mx = m.reduce_max();
      }
      for (; c < cols; ++c) mx = xr[c] > mx ? xr[c] : mx;
      Vec mv = Vec::set1(mx);
      Vec sum = Vec::zero();
      for (size_t c = 0; c < cols; c += L) {
        size_t left = cols - c;
        Vec e = exp(load_n(xr + c, left) - mv);
        store_n(yr + c, e, left);
        sum = sum + (left >= size_t(L) ? e : load_n(yr + c, left));
      }
      Vec inv = Vec::set1(1.f / sum.reduce_add());
      for (size_t c = 0; c < cols; c += L) store_n(yr + c, load_n(yr + c, cols - c) * inv, cols - c);
    }
  });
}

void softmax_bwd(float* dx, const float* dy, const float* y, size_t rows, size_t cols) {
  parallel_for(rows, kGrain / (cols + 1) + 1, [&](size_t b, size_t e, int) {
    for (size_t r = b; r < e; ++r) {
      const float *dyr = dy + r * cols, *yr = y + r * cols;
      Vec dot = Vec::zero();
      for (size_t c = 0; c < cols; c += L) dot = fmadd(load_n(dyr + c, cols - c), load_n(yr + c, cols - c), dot);
      Vec d = Vec::set1(dot.reduce_add());
      for (size_t c = 0; c < cols; c += L) {
        store_n(dx + r * cols + c, load_n(yr + c, cols - c) * (load_n(dyr + c, cols - c) - d), cols - c);
      }
    }
  });
}

// The mask is an integer hash per element (identical to the reference's); the multiply is
// vectorized by the compiler for this ISA.
void dropout_fwd(float* y, float* mask, const float* x, size_t n, float rate, uint64_t seed) {
  float scale = rate > 0.f ? 1.f / (1.f - rate) : 1.f;
  parallel_for(n, kGrain, [&](size_t b, size_t e, int) {
    for (size_t i = b; i < e; ++i) mask[i] = rate <= 0.f || dropout_keep(seed, i, rate) ? scale : 0.f;
    for (size_t i = b; i < e; i += L) store_n(y + i, load_n(x + i, e - i) * load_n(mask + i, e - i), e - i);
  });
}

void mul(float* y, const float* a, const float* b, size_t n) {
  for_each_vector(n, kGrain, [&](size_t i, size_t left) { store_n(y + i, load_n(a + i, left) * load_n(b + i, left), left); });
}

}  // namespace CK_ISA_NS
}  // namespace ck
