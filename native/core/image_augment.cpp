#include "image_augment.h"

#include <cmath>
#include <cstdlib>

// Contracting a*b+c into one rounding would change pixels between builds and architectures.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace ck {
namespace {

// mulberry32, as lib/rng.ts defines it: the numbers the JS side and its tests draw.
class Mulberry32 {
 public:
  explicit Mulberry32(uint32_t seed) : state_(seed) {}
  double next() {
    state_ += 0x6d2b79f5u;
    uint32_t t = state_;
    t = (t ^ (t >> 15)) * (t | 1u);
    t ^= t + (t ^ (t >> 7)) * (t | 61u);
    return double(t ^ (t >> 14)) / 4294967296.0;
  }

 private:
  uint32_t state_;
};

// Index v reflected into [0, size): ... 2 1 | 0 1 2 ... size-1 | size-2 ...
int64_t reflect(int64_t v, int64_t size) {
  if (size == 1) return 0;
  const int64_t period = 2 * (size - 1);
  int64_t m = std::llabs(v) % period;
  return m > size - 1 ? period - m : m;
}

}  // namespace

void augment_images(float* out, const float* images, int64_t n, int64_t h, int64_t w, int64_t c,
                    const AugmentOptions& o, uint32_t seed) {
  Mulberry32 rand(seed);
  const int64_t size = h * w * c;
  const double cx = double(w - 1) / 2, cy = double(h - 1) / 2;
  for (int64_t i = 0; i < n; i++) {
    const bool flip = rand.next() < 0.5 && o.flip;
    const double scale = 1 + o.zoom * (2 * rand.next() - 1);
    const double dx = o.crop * double(w) * (2 * rand.next() - 1);
    const double dy = o.crop * double(h) * (2 * rand.next() - 1);
    const double delta = o.brightness * (2 * rand.next() - 1);
    const float* src = images + i * size;
    float* dst = out + i * size;
    const bool identity = scale == 1 && dx == 0 && dy == 0;
    for (int64_t y = 0; y < h; y++) {
      const double sy = identity ? double(y) : (double(y) - cy - dy) / scale + cy;
      const double y0 = std::floor(sy);
      const double fy = sy - y0;
      const int64_t ya = reflect(int64_t(y0), h), yb = reflect(int64_t(y0) + 1, h);
      for (int64_t x = 0; x < w; x++) {
        const int64_t xo = flip ? w - 1 - x : x;
        const double sx = identity ? double(xo) : (double(xo) - cx - dx) / scale + cx;
        const double x0 = std::floor(sx);
        const double fx = sx - x0;
        const int64_t xa = reflect(int64_t(x0), w), xb = reflect(int64_t(x0) + 1, w);
        for (int64_t ch = 0; ch < c; ch++) {
          const double p00 = src[(ya * w + xa) * c + ch], p01 = src[(ya * w + xb) * c + ch];
          const double p10 = src[(yb * w + xa) * c + ch], p11 = src[(yb * w + xb) * c + ch];
          double v = (p00 * (1 - fx) + p01 * fx) * (1 - fy) + (p10 * (1 - fx) + p11 * fx) * fy;
          if (delta != 0) {  // clamped as Math.min(1, Math.max(0, v)): NaN stays, -0 becomes +0
            v += delta;
            if (v > 1) v = 1;
            else if (v <= 0) v = 0.0;
          }
          dst[(y * w + x) * c + ch] = float(v);
        }
      }
    }
  }
}

}  // namespace ck
