// The image augmentation kernels (Keras's random preprocessing layers) with the CPU's
// arithmetic (cpu/augment_math.h; every float product and sum rounded on its own, as the CPU
// units compute them with contraction off):
//   augment_draw(_at): one thread per example;
//   image_transform: one thread per output pixel, its channels in a loop;
//   image_transform_bwd: one thread per (image, channel), scattering over the output pixels in
//     the CPU's order, so the sums into a dx pixel are the CPU's bit for bit (and need no
//     atomics: a thread owns its channel of the image);
//   image_contrast(_bwd): one block per (image, channel), its means reduced in double;
//   image_brightness(_bwd): one thread per value.
#include "../cpu/augment_math.h"
#include "cuda_common.cuh"
#include "internal.h"

#if defined(__CUDA_ARCH__)
#define CK_FMUL(a, b) __fmul_rn(a, b)
#define CK_FADD(a, b) __fadd_rn(a, b)
#else
#define CK_FMUL(a, b) ((a) * (b))
#define CK_FADD(a, b) ((a) + (b))
#endif

namespace ck {
namespace cuda {

namespace {

constexpr int kThreads = 256;

#define CK_AUG_GRID_STRIDE(i, n)                                              \
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);     \
       i += size_t(gridDim.x) * blockDim.x)

__device__ float read(const float* img, int y, int x, int w, int c, int ch, float fill) {
  return y < 0 || x < 0 ? fill : img[(size_t(y) * size_t(w) + size_t(x)) * size_t(c) + size_t(ch)];
}

__device__ float clip(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

__global__ void draw_kernel(float* params, size_t n, AugmentDraw d, uint64_t seed, uint64_t first,
                            const uint64_t* step_seed, uint64_t layer) {
  if (step_seed) seed = dropout_layer_seed(*step_seed, layer);
  const uint64_t s = augment_seed(seed, d.seed);
  const bool one = d.kind == AugmentKind::Contrast || d.kind == AugmentKind::Brightness;
  CK_AUG_GRID_STRIDE(i, n) augment_draw_one(params + i * (one ? 1 : kImageTransformFloats), d, s, first + i);
}

__global__ void transform_kernel(float* y, const float* x, const float* transforms, int n, int h, int w, int c,
                                 ImageSampling s) {
  const size_t pixels = size_t(n) * size_t(h) * size_t(w);
  CK_AUG_GRID_STRIDE(p, pixels) {
    const int ox = int(p % size_t(w)), oy = int(p / size_t(w) % size_t(h));
    const size_t i = p / (size_t(w) * size_t(h));
    const float* img = x + i * size_t(h) * size_t(w) * size_t(c);
    const AugmentCell a = augment_cell(transforms + i * kImageTransformFloats, ox, oy, h, w, s);
    float* out = y + p * size_t(c);
    for (int ch = 0; ch < c; ++ch) {
      if (s.interp == Interp::Nearest) {
        out[ch] = read(img, a.y0, a.x0, w, c, ch, s.fill_value);
        continue;
      }
      const float top = CK_FADD(CK_FMUL(read(img, a.y0, a.x0, w, c, ch, s.fill_value), a.wx0),
                                CK_FMUL(read(img, a.y0, a.x1, w, c, ch, s.fill_value), a.wx1));
      const float bottom = CK_FADD(CK_FMUL(read(img, a.y1, a.x0, w, c, ch, s.fill_value), a.wx0),
                                   CK_FMUL(read(img, a.y1, a.x1, w, c, ch, s.fill_value), a.wx1));
      out[ch] = CK_FADD(CK_FMUL(top, a.wy0), CK_FMUL(bottom, a.wy1));
    }
  }
}

__global__ void transform_bwd_kernel(float* dx, const float* dy, const float* transforms, int n, int h, int w,
                                     int c, ImageSampling s) {
  const size_t image = size_t(h) * size_t(w) * size_t(c);
  CK_AUG_GRID_STRIDE(j, size_t(n) * size_t(c)) {
    const size_t i = j / size_t(c);
    const int ch = int(j % size_t(c));
    float* img = dx + i * image;
    for (size_t p = 0; p < size_t(h) * size_t(w); ++p) img[p * size_t(c) + size_t(ch)] = 0.f;
    const float* t = transforms + i * kImageTransformFloats;
    auto add = [&](int yy, int xx, float v) {
      if (yy >= 0 && xx >= 0) {
        float* q = img + (size_t(yy) * size_t(w) + size_t(xx)) * size_t(c) + size_t(ch);
        *q = CK_FADD(*q, v);
      }
    };
    for (int oy = 0; oy < h; ++oy) {
      for (int ox = 0; ox < w; ++ox) {
        const AugmentCell a = augment_cell(t, ox, oy, h, w, s);
        const float g = dy[i * image + (size_t(oy) * size_t(w) + size_t(ox)) * size_t(c) + size_t(ch)];
        if (s.interp == Interp::Nearest) {
          add(a.y0, a.x0, g);
          continue;
        }
        const float top = CK_FMUL(g, a.wy0), bottom = CK_FMUL(g, a.wy1);
        add(a.y0, a.x0, CK_FMUL(top, a.wx0));
        add(a.y0, a.x1, CK_FMUL(top, a.wx1));
        add(a.y1, a.x0, CK_FMUL(bottom, a.wx0));
        add(a.y1, a.x1, CK_FMUL(bottom, a.wx1));
      }
    }
  }
}

// The block's sum of v (in double), on every thread.
__device__ double block_sum(double v, double* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (int(threadIdx.x) < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  const double total = shared[0];
  __syncthreads();
  return total;
}

// Block (image i, channel ch): the channel's mean over the image's hw pixels.
__device__ float channel_mean(const float* img, int hw, int c, int ch, double* shared) {
  double sum = 0.0;
  for (int p = int(threadIdx.x); p < hw; p += kThreads) sum += img[size_t(p) * size_t(c) + size_t(ch)];
  return float(block_sum(sum, shared) / hw);
}

__global__ void contrast_kernel(float* y, const float* x, const float* factors, int hw, int c, float lo, float hi) {
  __shared__ double shared[kThreads];
  const size_t i = blockIdx.x / unsigned(c);
  const int ch = int(blockIdx.x % unsigned(c));
  const size_t base = i * size_t(hw) * size_t(c) + size_t(ch);
  const float m = channel_mean(x + i * size_t(hw) * size_t(c), hw, c, ch, shared);
  const float f = factors[i];
  for (int p = int(threadIdx.x); p < hw; p += kThreads) {
    const size_t k = base + size_t(p) * size_t(c);
    y[k] = clip(CK_FADD(CK_FMUL(x[k] - m, f), m), lo, hi);
  }
}

__global__ void contrast_bwd_kernel(float* dx, const float* dy, const float* x, const float* factors, int hw, int c,
                                    float lo, float hi) {
  __shared__ double shared[kThreads];
  const size_t i = blockIdx.x / unsigned(c);
  const int ch = int(blockIdx.x % unsigned(c));
  const size_t base = i * size_t(hw) * size_t(c) + size_t(ch);
  const float m = channel_mean(x + i * size_t(hw) * size_t(c), hw, c, ch, shared);
  const float f = factors[i];
  double sum = 0.0;
  for (int p = int(threadIdx.x); p < hw; p += kThreads) {
    const size_t k = base + size_t(p) * size_t(c);
    const float v = CK_FADD(CK_FMUL(x[k] - m, f), m);
    dx[k] = lo <= v && v <= hi ? dy[k] : 0.f;
    sum += dx[k];
  }
  const float gmean = float(block_sum(sum, shared) / hw);
  for (int p = int(threadIdx.x); p < hw; p += kThreads) {
    const size_t k = base + size_t(p) * size_t(c);
    dx[k] = CK_FADD(CK_FMUL(dx[k], f), CK_FMUL(gmean, 1.f - f));
  }
}

__global__ void brightness_kernel(float* y, const float* x, const float* deltas, size_t total, size_t per_image,
                                  float lo, float hi) {
  CK_AUG_GRID_STRIDE(j, total) y[j] = clip(x[j] + deltas[j / per_image], lo, hi);
}

__global__ void brightness_bwd_kernel(float* dx, const float* dy, const float* x, const float* deltas, size_t total,
                                      size_t per_image, float lo, float hi) {
  CK_AUG_GRID_STRIDE(j, total) {
    const float v = x[j] + deltas[j / per_image];
    dx[j] = lo <= v && v <= hi ? dy[j] : 0.f;
  }
}

}  // namespace

void augment_draw(float* params, size_t n, const AugmentDraw& d, uint64_t seed, uint64_t first, void* stream) {
  if (n == 0) return;
  draw_kernel<<<grid_1d(n, kThreads), kThreads, 0, as_stream(stream)>>>(params, n, d, seed, first, nullptr, 0);
  check_launch("augmentDraw");
}

void augment_draw_at(float* params, size_t n, const AugmentDraw& d, const uint64_t* step_seed, uint64_t layer,
                     uint64_t first, void* stream) {
  if (n == 0) return;
  draw_kernel<<<grid_1d(n, kThreads), kThreads, 0, as_stream(stream)>>>(params, n, d, 0, first, step_seed, layer);
  check_launch("augmentDraw");
}

void image_transform(float* y, const float* x, const float* transforms, int n, int h, int w, int c,
                     const ImageSampling& s, void* stream) {
  const size_t pixels = size_t(n) * size_t(h) * size_t(w);
  if (pixels == 0 || c == 0) return;
  transform_kernel<<<grid_1d(pixels, kThreads), kThreads, 0, as_stream(stream)>>>(y, x, transforms, n, h, w, c, s);
  check_launch("imageTransform");
}

void image_transform_bwd(float* dx, const float* dy, const float* transforms, int n, int h, int w, int c,
                         const ImageSampling& s, void* stream) {
  const size_t lanes = size_t(n) * size_t(c);
  if (lanes == 0 || h == 0 || w == 0) return;
  transform_bwd_kernel<<<grid_1d(lanes, 64), 64, 0, as_stream(stream)>>>(dx, dy, transforms, n, h, w, c, s);
  check_launch("imageTransformGrad");
}

void image_contrast(float* y, const float* x, const float* factors, int n, int hw, int c, float lo, float hi,
                    void* stream) {
  if (n == 0 || hw == 0 || c == 0) return;
  contrast_kernel<<<unsigned(n) * unsigned(c), kThreads, 0, as_stream(stream)>>>(y, x, factors, hw, c, lo, hi);
  check_launch("imageContrast");
}

void image_contrast_bwd(float* dx, const float* dy, const float* x, const float* factors, int n, int hw, int c,
                        float lo, float hi, void* stream) {
  if (n == 0 || hw == 0 || c == 0) return;
  contrast_bwd_kernel<<<unsigned(n) * unsigned(c), kThreads, 0, as_stream(stream)>>>(dx, dy, x, factors, hw, c, lo, hi);
  check_launch("imageContrastGrad");
}

void image_brightness(float* y, const float* x, const float* deltas, int n, size_t per_image, float lo, float hi,
                      void* stream) {
  const size_t total = size_t(n) * per_image;
  if (total == 0) return;
  brightness_kernel<<<grid_1d(total, kThreads), kThreads, 0, as_stream(stream)>>>(y, x, deltas, total, per_image, lo, hi);
  check_launch("imageBrightness");
}

void image_brightness_bwd(float* dx, const float* dy, const float* x, const float* deltas, int n, size_t per_image,
                          float lo, float hi, void* stream) {
  const size_t total = size_t(n) * per_image;
  if (total == 0) return;
  brightness_bwd_kernel<<<grid_1d(total, kThreads), kThreads, 0, as_stream(stream)>>>(dx, dy, x, deltas, total,
                                                                                        per_image, lo, hi);
  check_launch("imageBrightnessGrad");
}

}  // namespace cuda
}  // namespace ck
