// Scalar reference of the image augmentation kernels (kernel_list.inc's augment section):
//
//   augment_draw: each example's parameters (augment_math.h's augment_draw_one)
//   image_transform: y[i, y, x, c] = the bilinear (or nearest) read of x[i] at the transformed
//     point, ((x[y0, x0] wx0 + x[y0, x1] wx1) wy0 + (x[y1, x0] wx0 + x[y1, x1] wx1) wy1)
//   image_transform_bwd: dx = 0, then each dy added into those four pixels times their weights
//   image_contrast(_bwd) / image_brightness(_bwd): as kernel_list.inc writes them
#include <vector>

#include "augment_math.h"
#include "reference.h"

// Contracting a*b+c into one rounding would make the vector units and CUDA differ from these.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace ck {
namespace ref {

namespace {

// A pixel's channel c, or the constant fill where the index is outside (-1).
float read(const float* img, int y, int x, int w, int c, int ch, float fill) {
  return y < 0 || x < 0 ? fill : img[(size_t(y) * size_t(w) + size_t(x)) * size_t(c) + size_t(ch)];
}

float clip(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Per channel of image i: the mean over its hw pixels, summed in double in pixel order.
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
  for (int i = 0; i < n; ++i) {
    const float* img = x + size_t(i) * size_t(h) * size_t(w) * size_t(c);
    const float* t = transforms + size_t(i) * kImageTransformFloats;
    for (int oy = 0; oy < h; ++oy) {
      for (int ox = 0; ox < w; ++ox) {
        const AugmentCell a = augment_cell(t, ox, oy, h, w, s);
        float* out = y + ((size_t(i) * size_t(h) + size_t(oy)) * size_t(w) + size_t(ox)) * size_t(c);
        for (int ch = 0; ch < c; ++ch) {
          if (s.interp == Interp::Nearest) {
            out[ch] = read(img, a.y0, a.x0, w, c, ch, s.fill_value);
            continue;
          }
          const float top = read(img, a.y0, a.x0, w, c, ch, s.fill_value) * a.wx0 +
                            read(img, a.y0, a.x1, w, c, ch, s.fill_value) * a.wx1;
          const float bottom = read(img, a.y1, a.x0, w, c, ch, s.fill_value) * a.wx0 +
                               read(img, a.y1, a.x1, w, c, ch, s.fill_value) * a.wx1;
          out[ch] = top * a.wy0 + bottom * a.wy1;
        }
      }
    }
  }
}

void image_transform_bwd(float* dx, const float* dy, const float* transforms, int n, int h, int w, int c,
                         const ImageSampling& s) {
  const size_t image = size_t(h) * size_t(w) * size_t(c);
  for (size_t k = 0; k < size_t(n) * image; ++k) dx[k] = 0.f;
  auto add = [&](float* img, int yy, int xx, int ch, float v) {
    if (yy >= 0 && xx >= 0) img[(size_t(yy) * size_t(w) + size_t(xx)) * size_t(c) + size_t(ch)] += v;
  };
  for (int i = 0; i < n; ++i) {
    float* img = dx + size_t(i) * image;
    const float* t = transforms + size_t(i) * kImageTransformFloats;
    for (int oy = 0; oy < h; ++oy) {
      for (int ox = 0; ox < w; ++ox) {
        const AugmentCell a = augment_cell(t, ox, oy, h, w, s);
        const float* g = dy + size_t(i) * image + (size_t(oy) * size_t(w) + size_t(ox)) * size_t(c);
        for (int ch = 0; ch < c; ++ch) {
          if (s.interp == Interp::Nearest) {
            add(img, a.y0, a.x0, ch, g[ch]);
            continue;
          }
          const float top = g[ch] * a.wy0, bottom = g[ch] * a.wy1;
          add(img, a.y0, a.x0, ch, top * a.wx0);
          add(img, a.y0, a.x1, ch, top * a.wx1);
          add(img, a.y1, a.x0, ch, bottom * a.wx0);
          add(img, a.y1, a.x1, ch, bottom * a.wx1);
        }
      }
    }
  }
}

void image_contrast(float* y, const float* x, const float* factors, int n, int hw, int c, float lo, float hi) {
  const size_t image = size_t(hw) * size_t(c);
  for (int i = 0; i < n; ++i) {
    const float* img = x + size_t(i) * image;
    const std::vector<float> mean = channel_means(img, hw, c);
    const float f = factors[i];
    for (size_t k = 0; k < image; ++k) {
      const float m = mean[k % size_t(c)];
      y[size_t(i) * image + k] = clip((img[k] - m) * f + m, lo, hi);
    }
  }
}

void image_contrast_bwd(float* dx, const float* dy, const float* x, const float* factors, int n, int hw, int c,
                        float lo, float hi) {
  const size_t image = size_t(hw) * size_t(c);
  for (int i = 0; i < n; ++i) {
    const float* img = x + size_t(i) * image;
    const float* g = dy + size_t(i) * image;
    float* out = dx + size_t(i) * image;
    const std::vector<float> mean = channel_means(img, hw, c);
    const float f = factors[i];
    std::vector<double> gsum(static_cast<size_t>(c), 0.0);
    for (size_t k = 0; k < image; ++k) {
      const float m = mean[k % size_t(c)];
      const float v = (img[k] - m) * f + m;
      out[k] = lo <= v && v <= hi ? g[k] : 0.f;  // the clipped gradient, for now
      gsum[k % size_t(c)] += out[k];
    }
    for (size_t k = 0; k < image; ++k) {
      const float gmean = float(gsum[k % size_t(c)] / hw);
      out[k] = out[k] * f + gmean * (1.f - f);
    }
  }
}

void image_brightness(float* y, const float* x, const float* deltas, int n, size_t per_image, float lo, float hi) {
  for (int i = 0; i < n; ++i) {
    for (size_t k = 0; k < per_image; ++k) {
      const size_t j = size_t(i) * per_image + k;
      y[j] = clip(x[j] + deltas[i], lo, hi);
    }
  }
}

void image_brightness_bwd(float* dx, const float* dy, const float* x, const float* deltas, int n, size_t per_image,
                          float lo, float hi) {
  for (int i = 0; i < n; ++i) {
    for (size_t k = 0; k < per_image; ++k) {
      const size_t j = size_t(i) * per_image + k;
      const float v = x[j] + deltas[i];
      dx[j] = lo <= v && v <= hi ? dy[j] : 0.f;
    }
  }
}

}  // namespace ref
}  // namespace ck
