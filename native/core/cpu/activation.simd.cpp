// Vector activations (from x forward, from the output y backward), softmax, dropout and mul.
// Elementwise work is split over the pool in large chunks; softmax by rows.
#include "dropout_hash.h"
#include "simd_kernels.h"
#include "simd_loops.h"

namespace ck {
namespace CK_ISA_NS {

namespace {

constexpr int L = Vec::kLanes;
constexpr size_t kGrain = 1 << 15;


// Applies f to vectors of [0, n) in parallel chunks.
inline Vec sigmoid(Vec x) {
  // 1 / (1 + e^-x); exp saturates, so large |x| gives 0 or 1 without overflow.
  const Vec one = Vec::set1(1.f);
  return one / (one + exp(Vec::zero() - x));
}

inline Vec tanh(Vec x) {
  // tanh|x| = (1 - e^{-2|x|}) / (1 + e^{-2|x|}), then the sign of x.
  const Vec one = Vec::set1(1.f);
  Vec t = exp(Vec::set1(-2.f) * abs(x));
  Vec r = (one - t) / (one + t);
  return select_gt(Vec::zero(), x, Vec::zero() - r, r);
}

inline Vec activate(Vec x, Act act, Vec alpha) {
  switch (act) {
    case Act::Relu: return max(x, Vec::zero());
    case Act::LeakyRelu: return select_gt0(x, x, alpha * x);
    case Act::Elu: return select_gt0(x, x, alpha * (exp(x) - Vec::set1(1.f)));
    case Act::Sigmoid: return sigmoid(x);
    case Act::Tanh: return tanh(x);
    case Act::ClippedRelu: return min(max(x, Vec::zero()), alpha);
    case Act::Relu6: return min(max(x, Vec::zero()), Vec::set1(6.f));
    default: return x;
  }
}

inline Vec derivative(Vec y, Act act, Vec alpha) {
  const Vec one = Vec::set1(1.f);
  switch (act) {
    case Act::Relu: return select_gt0(y, one, Vec::zero());
    case Act::LeakyRelu: return select_gt0(y, one, alpha);
    case Act::Elu: return select_gt0(y, one, y + alpha);
    case Act::Sigmoid: return y * (one - y);
    case Act::Tanh: return one - y * y;
    case Act::ClippedRelu: return select_gt0(y, select_gt(alpha, y, one, Vec::zero()), Vec::zero());
    case Act::Relu6: return select_gt0(y, select_gt(Vec::set1(6.f), y, one, Vec::zero()), Vec::zero());
    default: return one;
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
