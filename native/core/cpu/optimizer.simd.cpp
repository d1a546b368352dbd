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
  Vec lr = Vec::set1(p.lr), mom = Vec::set1(p.momentum), decay = Vec::set1(sgd_decay(p));
  const bool decoupled = p.weight_decay > 0;
  if (p.momentum == 0.f) {
    for_each_vector(n, kGrain, [&](size_t i, size_t k) {
      Vec wi = load_n(w + i, k);
      if (decoupled) wi = wi - wi * decay;
      store_n(w + i, wi - lr * load_n(g + i, k), k);
    });
    return;
  }
  for_each_vector(n, kGrain, [&](size_t i, size_t k) {
    Vec gi = load_n(g + i, k), wi = load_n(w + i, k);
    if (decoupled) wi = wi - wi * decay;
    Vec v = mom * load_n(velocity + i, k) - lr * gi;
    store_n(velocity + i, v, k);
    Vec step = p.nesterov ? mom * v - lr * gi : v;
    store_n(w + i, wi + step, k);
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
  Vec eps = Vec::set1(sc.eps), momentum = Vec::set1(sc.momentum), decay = Vec::set1(sc.decay);
  const bool decoupled = p.weight_decay > 0;
  for_each_vector(n, kGrain, [&](size_t i, size_t k) {
    Vec gi = load_n(g + i, k), wi = load_n(w + i, k);
    if (decoupled) wi = wi - wi * decay;
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
    store_n(w + i, wi - inc, k);
  });
}

void adagrad_update(float* w, float* acc, const float* g, size_t n, const AdagradParams& p) {
  const AdagradScalars s = adagrad_scalars(p);
  Vec lr = Vec::set1(s.lr), eps = Vec::set1(s.eps), decay = Vec::set1(s.decay);
  const bool decoupled = p.weight_decay > 0;
  for_each_vector(n, kGrain, [&](size_t i, size_t k) {
    Vec gi = load_n(g + i, k), wi = load_n(w + i, k);
    if (decoupled) wi = wi - wi * decay;
    Vec a = load_n(acc + i, k) + gi * gi;
    store_n(acc + i, a, k);
    store_n(w + i, wi - lr * gi / sqrt(a + eps), k);
  });
}

void nadam_update(float* w, float* m, float* v, const float* g, size_t n, const NadamParams& p) {
  const NadamScalars s = nadam_scalars(p);
  Vec m_coef = Vec::set1(s.m_coef), g_coef = Vec::set1(s.g_coef), v_scale = Vec::set1(s.v_scale);
  Vec b1 = Vec::set1(s.one_minus_beta1), b2 = Vec::set1(s.one_minus_beta2);
  Vec eps = Vec::set1(s.eps), decay = Vec::set1(s.decay);
  const bool decoupled = p.weight_decay > 0;
  for_each_vector(n, kGrain, [&](size_t i, size_t k) {
    Vec wi = load_n(w + i, k), gi = load_n(g + i, k);
    if (decoupled) wi = wi - wi * decay;
    Vec mi = load_n(m + i, k), vi = load_n(v + i, k);
    mi = mi + (gi - mi) * b1;
    vi = vi + (gi * gi - vi) * b2;
    store_n(m + i, mi, k);
    store_n(v + i, vi, k);
    store_n(w + i, wi - (m_coef * mi + g_coef * gi) / (sqrt(vi * v_scale) + eps), k);
  });
}

}  // namespace CK_ISA_NS
}  // namespace ck
