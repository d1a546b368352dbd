// Vector preprocessing kernels (see preprocess_ref.cpp), matching the reference bitwise: rescale
// elementwise over the pool in large chunks, one fused multiply-add per value.
#include "simd_kernels.h"
#include "simd_loops.h"

namespace ck {
namespace CK_ISA_NS {

namespace {
constexpr size_t kGrain = 1 << 15;
}  // namespace

void rescale(float* y, const float* x, size_t n, float scale, float offset) {
  const Vec s = Vec::set1(scale), o = Vec::set1(offset);
  for_each_vector(n, kGrain, [&](size_t i, size_t left) { store_n(y + i, fmadd(load_n(x + i, left), s, o), left); });
}

}  // namespace CK_ISA_NS
}  // namespace ck
