// Vector optimizer updates over the flat parameter vector, Keras 3's formulas (see
// optimizer_ref.cpp); each element is independent, so the split over threads changes nothing.
#include <cmath>

#include "simd_kernels.h"
#include "../thread_pool.h"

namespace ck {
namespace CK_ISA_NS {

namespace {

constexpr int L = Vec::kLanes;
constexpr size_t kGrain = 1 << 15;

inline Vec load(const float* p, size_t n) { return n >= size_t(L) ? Vec::load(p) : Vec::load_partial(p, int(n)); }
inline void store(float* p, Vec v, size_t n) {
  if (n >= size_t(L)) v.store(p);
  else v.store_partial(p, int(n));
}

template <class F>
void elementwise(size_t n, F&& f) {
  parallel_for(n, kGrain, [&](size_t b, size_t e, int) {
    for (size_t i = b; i < e; i += L) f(i, e - i);
  });
}

}  // namespace

void sgd_update(float* w, float* velocity, const float* g, size_t n, const SgdParams& p) {
  Vec lr = Vec::set1(p.lr), mom = Vec::set1(p.momentum);
  if (p.momentum == 0.f) {
    elementwise(n, [&](size_t i, size_t k) { store(w + i, load(w + i, k) - lr * load(g + i, k), k); });
    return;
  }
  elementwise(n, [&](size_t i, size_t k) {
    Vec gi = load(g + i, k);
    Vec v = mom * load(velocity + i, k) - lr * gi;
    store(velocity + i, v, k);
    Vec step = p.nesterov ? mom * v - lr * gi : v;
    store(w + i, load(w + i, k) + step, k);
  });
}

void adam_update(float* w, float* m, float* v, const float* g, size_t n, const AdamParams& p) {
  double t = double(p.step);
  Vec alpha = Vec::set1(float(p.lr * std::sqrt(1.0 - std::pow(double(p.beta2), t)) /
                              (1.0 - std::pow(double(p.beta1), t))));
  Vec b1 = Vec::set1(1.f - p.beta1), b2 = Vec::set1(1.f - p.beta2), eps = Vec::set1(p.eps);
  Vec decay = Vec::set1(p.weight_decay * p.lr);
  bool decoupled = p.weight_decay > 0.f;
  elementwise(n, [&](size_t i, size_t k) {
    Vec wi = load(w + i, k), gi = load(g + i, k);
    if (decoupled) wi = wi - wi * decay;
    Vec mi = load(m + i, k), vi = load(v + i, k);
    mi = mi + (gi - mi) * b1;
    vi = vi + (gi * gi - vi) * b2;
    store(m + i, mi, k);
    store(v + i, vi, k);
    store(w + i, wi - alpha * mi / (sqrt(vi) + eps), k);
  });
}

void rmsprop_update(float* w, float* ms, float* mom, float* mg, const float* g, size_t n,
                    const RmspropParams& p) {
  Vec rho = Vec::set1(p.rho), one_rho = Vec::set1(1.f - p.rho), lr = Vec::set1(p.lr);
  Vec eps = Vec::set1(p.eps), momentum = Vec::set1(p.momentum);
  elementwise(n, [&](size_t i, size_t k) {
    Vec gi = load(g + i, k);
    Vec s = rho * load(ms + i, k) + one_rho * gi * gi;
    store(ms + i, s, k);
    Vec denom = s;
    if (p.centered) {
      Vec a = rho * load(mg + i, k) + one_rho * gi;
      store(mg + i, a, k);
      denom = denom - a * a;
    }
    Vec inc = lr * gi / sqrt(denom + eps);
    if (p.momentum > 0.f) {
      Vec mo = momentum * load(mom + i, k) + inc;
      store(mom + i, mo, k);
      inc = mo;
    }
    store(w + i, load(w + i, k) - inc, k);
  });
}

}  // namespace CK_ISA_NS
}  // namespace ck
