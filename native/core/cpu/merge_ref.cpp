// Scalar reference merges (the functional API's add / average / concatenate layers and the
// gradient sums where branches meet):
//
//   add:         y = a + b
//   accumulate:  y += a
//   scale:       y = s * a
//   concat_last: y[r, offset_i + j] = parts[i][r, j]   (last axis; offset_i = widths before i)
//   split_last:  parts[i][r, j] = y[r, offset_i + j]
//   mul_spatial: y[i, p, c] = x[i, p, c] * g[i, c]
//   mul_spatial_bwd_gate: dg[i, c] = sum_p dy[i, p, c] * x[i, p, c]   (in p order)
#include "reference.h"

namespace ck {
namespace ref {

void add(float* y, const float* a, const float* b, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void accumulate(float* y, const float* a, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] += a[i];
}

void scale(float* y, const float* a, float s, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = s * a[i];
}

void concat_last(float* y, const float* const* parts, const int* widths, int count, size_t rows) {
  size_t total = 0;
  for (int i = 0; i < count; ++i) total += size_t(widths[i]);
  for (size_t r = 0; r < rows; ++r) {
    size_t offset = 0;
    for (int i = 0; i < count; ++i) {
      for (int j = 0; j < widths[i]; ++j) y[r * total + offset + j] = parts[i][r * widths[i] + j];
      offset += size_t(widths[i]);
    }
  }
}

void split_last(float* const* parts, const float* y, const int* widths, int count, size_t rows) {
  size_t total = 0;
  for (int i = 0; i < count; ++i) total += size_t(widths[i]);
  for (size_t r = 0; r < rows; ++r) {
    size_t offset = 0;
    for (int i = 0; i < count; ++i) {
      if (parts[i]) {
        for (int j = 0; j < widths[i]; ++j) parts[i][r * widths[i] + j] = y[r * total + offset + j];
      }
      offset += size_t(widths[i]);
    }
  }
}

void mul_spatial(float* y, const float* x, const float* g, size_t n, size_t hw, int C) {
  for (size_t i = 0; i < n; ++i) {
    for (size_t p = 0; p < hw; ++p) {
      for (int c = 0; c < C; ++c) {
        size_t at = (i * hw + p) * size_t(C) + size_t(c);
        y[at] = x[at] * g[i * size_t(C) + size_t(c)];
      }
    }
  }
}

void mul_spatial_bwd_gate(float* dg, const float* dy, const float* x, size_t n, size_t hw, int C) {
  for (size_t i = 0; i < n; ++i) {
    for (int c = 0; c < C; ++c) {
      float sum = 0.f;
      for (size_t p = 0; p < hw; ++p) {
        size_t at = (i * hw + p) * size_t(C) + size_t(c);
        sum += dy[at] * x[at];
      }
      dg[i * size_t(C) + size_t(c)] = sum;
    }
  }
}

}  // namespace ref
}  // namespace ck
