// Vector image augmentation kernels (see augment_ref.cpp for the definitions), each matching the
// reference bitwise: the same products and sums in the same order, vectorized over channels.
//
//   image_transform:     threads over output rows; per pixel its cell (augment_math.h), the
//                        four corner reads blended Vec::kLanes channels at a time
//   image_transform_bwd: threads over images (each image's dx is its own), pixels in order, so
//                        every sum into a dx pixel runs in the reference's order
//   image_contrast(_bwd), image_brightness(_bwd): threads over images; per-channel means in
//                        double in pixel order, elementwise work vectorized
#include <vector>

#include "augment_math.h"
#include "simd_kernels.h"
#include "simd_loops.h"

// As in augment_ref.cpp: no contraction, so the vector sums round as the scalar ones.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace ck {
namespace CK_ISA_NS {

namespace {

constexpr int L = Vec::kLanes;

// Channels [ch, ch + left) of a pixel, or the constant fill where the index is outside (-1).
Vec read(const float* img, int y, int x, int w, int c, int ch, size_t left, Vec fill) {
  return y < 0 || x < 0 ? fill : load_n(img + (size_t(y) * size_t(w) + size_t(x)) * size_t(c) + size_t(ch), left);
}

// v < lo ? lo : (v > hi ? hi : v), NaN kept, as the reference's clip.
Vec clip(Vec v, Vec lo, Vec hi) {
  const Vec low = select_gt(lo, v, lo, v);
  return select_gt(low, hi, hi, low);
}

// g where lo <= v <= hi, else 0 (NaN: 0).
Vec inside(Vec g, Vec v, Vec lo, Vec hi) {
  const Vec zero = Vec::zero();
  return select_eq(v, v, select_gt(lo, v, zero, select_gt(v, hi, zero, g)), zero);
}

std::vector<float> channel_means(const float* img, int hw, int c) {
  std::vector<double> sum(static_cast<size_t>(c), 0.0);
  for (int p = 0; p < hw; ++p) {
    for (int ch = 0; ch < c; ++ch) sum[size_t(ch)] += img[size_t(p) * size_t(c) + size_t(ch)];
  }
  std::vector<float> mean(static_cast<size_t>(c));
  for (int ch = 0; ch < c; ++ch) mean[size_t(ch)] = float(sum[size_t(ch)] / hw);
  return mean;
}

}  // namespace

void augment_draw(float* params, size_t n, const AugmentDraw& d, uint64_t seed, uint64_t first) {
  const uint64_t s = augment_seed(seed, d.seed);
  const bool one = d.kind == AugmentKind::Contrast || d.kind == AugmentKind::Brightness;
  for (size_t i = 0; i < n; ++i) augment_draw_one(params + i * (one ? 1 : kImageTransformFloats), d, s, first + i);
}

void image_transform(float* y, const float* x, const float* transforms, int n, int h, int w, int c,
                     const ImageSampling& s) {
  const size_t image = size_t(h) * size_t(w) * size_t(c);
  const Vec fill = Vec::set1(s.fill_value);
  parallel_for(size_t(n) * size_t(h), 16384 / (size_t(w) * size_t(c) + 1) + 1, [&](size_t rb, size_t re, int) {
    for (size_t r = rb; r < re; ++r) {
      const int i = int(r / size_t(h)), oy = int(r % size_t(h));
      const float* img = x + size_t(i) * image;
      const float* t = transforms + size_t(i) * kImageTransformFloats;
      for (int ox = 0; ox < w; ++ox) {
        const AugmentCell a = augment_cell(t, ox, oy, h, w, s);
        float* out = y + (r * size_t(w) + size_t(ox)) * size_t(c);
        const Vec wx0 = Vec::set1(a.wx0), wx1 = Vec::set1(a.wx1), wy0 = Vec::set1(a.wy0), wy1 = Vec::set1(a.wy1);
        for (int ch = 0; ch < c; ch += L) {
          const size_t left = size_t(c - ch);
          if (s.interp == Interp::Nearest) {
            store_n(out + ch, read(img, a.y0, a.x0, w, c, ch, left, fill), left);
            continue;
          }
          const Vec top = read(img, a.y0, a.x0, w, c, ch, left, fill) * wx0 + read(img, a.y0, a.x1, w, c, ch, left, fill) * wx1;
          const Vec bottom = read(img, a.y1, a.x0, w, c, ch, left, fill) * wx0 + read(img, a.y1, a.x1, w, c, ch, left, fill) * wx1;
          store_n(out + ch, top * wy0 + bottom * wy1, left);
        }
      }
    }
  });
}

void image_transform_bwd(float* dx, const float* dy, const float* transforms, int n, int h, int w, int c,
                         const ImageSampling& s) {
  const size_t image = size_t(h) * size_t(w) * size_t(c);
  parallel_for(size_t(n), 1, [&](size_t ib, size_t ie, int) {
    for (size_t i = ib; i < ie; ++i) {
      float* img = dx + i * image;
      for (size_t k = 0; k < image; ++k) img[k] = 0.f;
      const float* t = transforms + i * kImageTransformFloats;
      auto add = [&](int yy, int xx, int ch, Vec v, size_t left) {
        if (yy < 0 || xx < 0) return;
        float* p = img + (size_t(yy) * size_t(w) + size_t(xx)) * size_t(c) + size_t(ch);
        store_n(p, load_n(p, left) + v, left);
      };
      for (int oy = 0; oy < h; ++oy) {
        for (int ox = 0; ox < w; ++ox) {
          const AugmentCell a = augment_cell(t, ox, oy, h, w, s);
          const float* g = dy + i * image + (size_t(oy) * size_t(w) + size_t(ox)) * size_t(c);
          const Vec wx0 = Vec::set1(a.wx0), wx1 = Vec::set1(a.wx1), wy0 = Vec::set1(a.wy0), wy1 = Vec::set1(a.wy1);
          for (int ch = 0; ch < c; ch += L) {
            const size_t left = size_t(c - ch);
            const Vec gv = load_n(g + ch, left);
            if (s.interp == Interp::Nearest) {
              add(a.y0, a.x0, ch, gv, left);
              continue;
            }
            const Vec top = gv * wy0, bottom = gv * wy1;
            add(a.y0, a.x0, ch, top * wx0, left);
            add(a.y0, a.x1, ch, top * wx1, left);
            add(a.y1, a.x0, ch, bottom * wx0, left);
            add(a.y1, a.x1, ch, bottom * wx1, left);
          }
        }
      }
    }
  });
}

void image_contrast(float* y, const float* x, const float* factors, int n, int hw, int c, float lo, float hi) {
  const size_t image = size_t(hw) * size_t(c);
  const Vec vlo = Vec::set1(lo), vhi = Vec::set1(hi);
  parallel_for(size_t(n), 1, [&](size_t ib, size_t ie, int) {
    for (size_t i = ib; i < ie; ++i) {
      const float* img = x + i * image;
      float* out = y + i * image;
      const std::vector<float> mean = channel_means(img, hw, c);
      const Vec f = Vec::set1(factors[i]);
      for (int p = 0; p < hw; ++p) {
        for (int ch = 0; ch < c; ch += L) {
          const size_t left = size_t(c - ch), k = size_t(p) * size_t(c) + size_t(ch);
          const Vec m = load_n(mean.data() + ch, left);
          store_n(out + k, clip((load_n(img + k, left) - m) * f + m, vlo, vhi), left);
        }
      }
    }
  });
}

void image_contrast_bwd(float* dx, const float* dy, const float* x, const float* factors, int n, int hw, int c,
                        float lo, float hi) {
  const size_t image = size_t(hw) * size_t(c);
  const Vec vlo = Vec::set1(lo), vhi = Vec::set1(hi);
  parallel_for(size_t(n), 1, [&](size_t ib, size_t ie, int) {
    for (size_t i = ib; i < ie; ++i) {
      const float* img = x + i * image;
      const float* g = dy + i * image;
      float* out = dx + i * image;
      const std::vector<float> mean = channel_means(img, hw, c);
      const float fs = factors[i];
      const Vec f = Vec::set1(fs);
      for (int p = 0; p < hw; ++p) {
        for (int ch = 0; ch < c; ch += L) {
          const size_t left = size_t(c - ch), k = size_t(p) * size_t(c) + size_t(ch);
          const Vec m = load_n(mean.data() + ch, left);
          const Vec v = (load_n(img + k, left) - m) * f + m;
          store_n(out + k, inside(load_n(g + k, left), v, vlo, vhi), left);
        }
      }
      std::vector<float> gmean = channel_means(out, hw, c);
      const Vec rest = Vec::set1(1.f - fs);
      for (int p = 0; p < hw; ++p) {
        for (int ch = 0; ch < c; ch += L) {
          const size_t left = size_t(c - ch), k = size_t(p) * size_t(c) + size_t(ch);
          store_n(out + k, load_n(out + k, left) * f + load_n(gmean.data() + ch, left) * rest, left);
        }
      }
    }
  });
}

void image_brightness(float* y, const float* x, const float* deltas, int n, size_t per_image, float lo, float hi) {
  const Vec vlo = Vec::set1(lo), vhi = Vec::set1(hi);
  parallel_for(size_t(n), 1, [&](size_t ib, size_t ie, int) {
    for (size_t i = ib; i < ie; ++i) {
      const Vec d = Vec::set1(deltas[i]);
      for (size_t k = i * per_image; k < (i + 1) * per_image; k += L) {
        const size_t left = (i + 1) * per_image - k;
        store_n(y + k, clip(load_n(x + k, left) + d, vlo, vhi), left);
      }
    }
  });
}

void image_brightness_bwd(float* dx, const float* dy, const float* x, const float* deltas, int n, size_t per_image,
                          float lo, float hi) {
  const Vec vlo = Vec::set1(lo), vhi = Vec::set1(hi);
  parallel_for(size_t(n), 1, [&](size_t ib, size_t ie, int) {
    for (size_t i = ib; i < ie; ++i) {
      const Vec d = Vec::set1(deltas[i]);
      for (size_t k = i * per_image; k < (i + 1) * per_image; k += L) {
        const size_t left = (i + 1) * per_image - k;
        store_n(dx + k, inside(load_n(dy + k, left), load_n(x + k, left) + d, vlo, vhi), left);
      }
    }
  });
}

}  // namespace CK_ISA_NS
}  // namespace ck
