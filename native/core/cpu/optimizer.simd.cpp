// Vector optimizer updates over the flat parameter vector, Keras 3's formulas (see
// optimizer_ref.cpp); each element is independent, so the split over threads changes nothing.
#include <cmath>

#include "simd_kernels.h"
#include "simd_loops.h"

namespace ck {
namespace CK_ISA_NS {

namespace {

constexpr int L = Vec::kLanes;
constexpr size_t kGrain = 1 << 15;


}  // namespace

void sgd_update(float* w, float* velocity, const float* g, size_t n, const SgdParams& p) {
  Vec lr = Vec::set1(p.lr), mom = Vec::set1(p.momentum);
  if (p.momentum == 0.f) {
    for_each_vector(n, kGrain, [&](size_t i, size_t k) { store_n(w + i, load_n(w + i, k) - lr * load_n(g + i, k), k); });
    return;
  }
  for_each_vector(n, kGrain, [&](size_t i, size_t k) {
    Vec gi = load_n(g + i, k);
    Vec v = mom * load_n(velocity + i, k) - lr * gi;
    store_n(velocity + i, v, k);
    Vec step = p.nesterov ? mom * v - lr * gi : v;
    store_n(w + i, load_n(w + i, k) + step, k);
  });
}

void adam_update(float* w, float* m, float* v, const float* g, size_t n, const AdamParams& p) {
  const AdamScalars s = adam_scalars(p);
  Vec alpha = Vec::set1(s.alpha), b1 = Vec::set1(s.one_minus_beta1), b2 = Vec::set1(s.one_minus_beta2);
  Vec eps = Vec::set1(s.eps), decay = Vec::set1(s.decay);
  bool decoupled = p.weight_decay > 0;
  for_each_vector(n, kGrain, [&](size_t i, size_t k) {
    Vec wi = load_n(w + i, k), gi = load_n(g + i, k);
    if (decoupled) wi = wi - wi * decay;
    Vec mi = load_n(m + i, k), vi = load_n(v + i, k);
    mi = mi + (gi - mi) * b1;
    vi = vi + (gi * gi - vi) * b2;
    store_n(m + i, mi, k);
    store_n(v + i, vi, k);
    store_n(w + i, wi - alpha * mi / (sqrt(vi) + eps), k);
  });
}

void rmsprop_update(float* w, float* ms, float* mom, float* mg, const float* g, size_t n,
                    const RmspropParams& p) {
  const RmspropScalars sc = rmsprop_scalars(p);
  Vec rho = Vec::set1(sc.rho), one_rho = Vec::set1(sc.one_minus_rho), lr = Vec::set1(sc.lr);
  Vec eps = Vec::set1(sc.eps), momentum = Vec::set1(sc.momentum);
  for_each_vector(n, kGrain, [&](size_t i, size_t k) {
    Vec gi = load_n(g + i, k);
    Vec s = rho * load_n(ms + i, k) + one_rho * gi * gi;
    store_n(ms + i, s, k);
    Vec denom = s;
    if (p.centered) {
      Vec a = rho * load_n(mg + i, k) + one_rho * gi;
      store_n(mg + i, a, k);
      denom = denom - a * a;
    }
    Vec inc = lr * gi / sqrt(denom + eps);
    if (p.momentum > 0) {
      Vec mo = momentum * load_n(mom + i, k) + inc;
      store_n(mom + i, mo, k);
      inc = mo;
    }
    store_n(w + i, load_n(w + i, k) - inc, k);
  });
}

}  // namespace CK_ISA_NS
}  // namespace ck
