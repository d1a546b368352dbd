// Vector merges (see merge_ref.cpp): elementwise loops split over the pool in large chunks,
// concatenation / split as per-row copies of each part (threads over rows), and the spatially
// broadcast multiply with its gate gradient (threads over pixels, or over example x channel block).
#include <algorithm>
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
        if (parts[i]) std::memcpy(parts[i] + r * size_t(widths[i]), yr, size_t(widths[i]) * sizeof(float));
        yr += widths[i];
      }
    }
  });
}

void mul_spatial(float* y, const float* x, const float* g, size_t n, size_t hw, int C) {
  const size_t cols = size_t(C);
  parallel_for(n * hw, kGrain / (cols + 1) + 1, [&](size_t b, size_t e, int) {
    for (size_t r = b; r < e; ++r) {
      const float* gr = g + (r / hw) * cols;
      for (size_t c = 0; c < cols; c += Vec::kLanes) {
        const size_t left = cols - c;
        store_n(y + r * cols + c, load_n(x + r * cols + c, left) * load_n(gr + c, left), left);
      }
    }
  });
}

void mul_spatial_bwd_gate(float* dg, const float* dy, const float* x, size_t n, size_t hw, int C) {
  // A block of channels keeps its sums in registers while the pixels stream past; each sum adds
  // in pixel order (fused multiply-adds: the reference's products rounded once less).
  constexpr size_t kVecs = 4, kBlock = kVecs * Vec::kLanes;
  const size_t cols = size_t(C), blocks = (cols + kBlock - 1) / kBlock;
  parallel_for(n * blocks, kGrain / (hw * kBlock + 1) + 1, [&](size_t b, size_t e, int) {
    for (size_t t = b; t < e; ++t) {
      const size_t i = t / blocks, c0 = (t % blocks) * kBlock;
      const size_t width = std::min(kBlock, cols - c0);
      Vec acc[kVecs] = {Vec::zero(), Vec::zero(), Vec::zero(), Vec::zero()};
      for (size_t p = 0; p < hw; ++p) {
        const size_t at = (i * hw + p) * cols + c0;
        for (size_t v = 0; v * Vec::kLanes < width; ++v) {
          const size_t off = v * Vec::kLanes, left = width - off;
          acc[v] = fmadd(load_n(dy + at + off, left), load_n(x + at + off, left), acc[v]);
        }
      }
      for (size_t v = 0; v * Vec::kLanes < width; ++v) {
        store_n(dg + i * cols + c0 + v * Vec::kLanes, acc[v], width - v * Vec::kLanes);
      }
    }
  });
}

}  // namespace CK_ISA_NS
}  // namespace ck
