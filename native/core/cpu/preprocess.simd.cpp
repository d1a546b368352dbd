// Vector preprocessing kernels (see preprocess_ref.cpp), each matching the reference bitwise:
// rescale elementwise over the pool in large chunks, one fused multiply-add per value.
#include <algorithm>
#include <cmath>
#include <vector>

#include "simd_kernels.h"
#include "simd_loops.h"

namespace ck {
namespace CK_ISA_NS {

namespace {
constexpr size_t kGrain = 1 << 15;
// Keras's backend.epsilon(), the smallest deviation Normalization divides by.
constexpr float kNormalizationEpsilon = 1e-7f;
}  // namespace

void rescale(float* y, const float* x, size_t n, float scale, float offset) {
  const Vec s = Vec::set1(scale), o = Vec::set1(offset);
  for_each_vector(n, kGrain, [&](size_t i, size_t left) { store_n(y + i, fmadd(load_n(x + i, left), s, o), left); });
}

// The deviations max(sqrt(var), 1e-7) once per channel (the same correctly rounded sqrt and max
// as the reference), then threads over rows, C lanes at a time: subtract, divide.
void normalize_channels(float* y, const float* x, const float* mean, const float* var, size_t rows, int C) {
  if (C <= 0) return;
  std::vector<float> deviation(static_cast<size_t>(C));
  for (int c = 0; c < C; ++c) deviation[size_t(c)] = std::max(std::sqrt(var[c]), kNormalizationEpsilon);
  const float* d = deviation.data();
  parallel_for(rows, kGrain / size_t(C) + 1, [&](size_t rb, size_t re, int) {
    for (size_t r = rb; r < re; ++r) {
      const float* xr = x + r * size_t(C);
      float* yr = y + r * size_t(C);
      for (int c = 0; c < C; c += Vec::kLanes) {
        const size_t left = size_t(C - c);
        const Vec m = mean ? load_n(mean + c, left) : Vec::zero();
        // the partial tail's unused lanes divide 0 by 0 and are never stored
        store_n(yr + c, (load_n(xr + c, left) - m) / load_n(d + c, left), left);
      }
    }
  });
}

}  // namespace CK_ISA_NS
}  // namespace ck
