// Seeded image augmentation (ck.data.augmentImages, ck.data.augment): random horizontal flip,
// translation (a random crop of the reflect-padded image), zoom about the centre and a
// brightness offset, as Keras's RandomFlip / RandomTranslation / RandomZoom / RandomBrightness
// layers do them, with bilinear sampling and 'reflect' fill.
#pragma once
#include <cstdint>

namespace ck {

struct AugmentOptions {
  bool flip = false;       // mirror left-right with probability 1/2
  double crop = 0;         // translate by up to this fraction of the width and height
  double zoom = 0;         // scale by a factor in [1 - zoom, 1 + zoom]
  double brightness = 0;   // add an offset in [-brightness, brightness], then clamp to [0, 1]
};

// out [n, h, w, c] from images [n, h, w, c] (values in 0..1), drawing five numbers per image
// from mulberry32(seed) in a fixed order whatever is enabled. The arithmetic is float64 in a
// fixed order with no fused multiply-adds, so every platform gives the same pixels.
void augment_images(float* out, const float* images, int64_t n, int64_t h, int64_t w, int64_t c,
                    const AugmentOptions& options, uint32_t seed);

}  // namespace ck
