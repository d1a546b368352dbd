// Vector merges (see merge_ref.cpp): elementwise loops split over the pool in large chunks, and
// concatenation / split as per-row copies of each part (threads over rows).
#include <cstring>

#include "simd_kernels.h"
#include "simd_loops.h"

namespace ck {
namespace CK_ISA_NS {

namespace {

constexpr size_t kGrain = 1 << 15;

size_t total_width(const int* widths, int count) {
  size_t total = 0;
  for (int i = 0; i < count; ++i) total += size_t(widths[i]);
  return total;
}

}  // namespace

void add(float* y, const float* a, const float* b, size_t n) {
  for_each_vector(n, kGrain, [&](size_t i, size_t left) { store_n(y + i, load_n(a + i, left) + load_n(b + i, left), left); });
}

void accumulate(float* y, const float* a, size_t n) {
  for_each_vector(n, kGrain, [&](size_t i, size_t left) { store_n(y + i, load_n(y + i, left) + load_n(a + i, left), left); });
}

void scale(float* y, const float* a, float s, size_t n) {
  const Vec sv = Vec::set1(s);
  for_each_vector(n, kGrain, [&](size_t i, size_t left) { store_n(y + i, sv * load_n(a + i, left), left); });
}

void concat_last(float* y, const float* const* parts, const int* widths, int count, size_t rows) {
  const size_t total = total_width(widths, count);
  parallel_for(rows, kGrain / (total + 1) + 1, [&](size_t b, size_t e, int) {
    for (size_t r = b; r < e; ++r) {
      float* yr = y + r * total;
      for (int i = 0; i < count; ++i) {
        std::memcpy(yr, parts[i] + r * size_t(widths[i]), size_t(widths[i]) * sizeof(float));
        yr += widths[i];
      }
    }
  });
}

void split_last(float* const* parts, const float* y, const int* widths, int count, size_t rows) {
  const size_t total = total_width(widths, count);
  parallel_for(rows, kGrain / (total + 1) + 1, [&](size_t b, size_t e, int) {
    for (size_t r = b; r < e; ++r) {
      const float* yr = y + r * total;
      for (int i = 0; i < count; ++i) {
        std::memcpy(parts[i] + r * size_t(widths[i]), yr, size_t(widths[i]) * sizeof(float));
        yr += widths[i];
      }
    }
  });
}

}  // namespace CK_ISA_NS
}  // namespace ck
