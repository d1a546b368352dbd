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
  double t = double(p.step);
  Vec alpha = Vec::set1(float(p.lr * std::sqrt(1.0 - std::pow(double(p.beta2), t)) /
                              (1.0 - std::pow(double(p.beta1), t))));
  Vec b1 = Vec::set1(1.f - p.beta1), b2 = Vec::set1(1.f - p.beta2), eps = Vec::set1(p.eps);
  Vec decay = Vec::set1(p.weight_decay * p.lr);
  bool decoupled = p.weight_decay > 0.f;
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
  Vec rho = Vec::set1(p.rho), one_rho = Vec::set1(1.f - p.rho), lr = Vec::set1(p.lr);
  Vec eps = Vec::set1(p.eps), momentum = Vec::set1(p.momentum);
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
    if (p.momentum > 0.f) {
      Vec mo = momentum * load_n(mom + i, k) + inc;
      store_n(mom + i, mo, k);
      inc = mo;
    }
    store_n(w + i, load_n(w + i, k) - inc, k);
  });
}

}  // namespace CK_ISA_NS
}  // namespace ck
