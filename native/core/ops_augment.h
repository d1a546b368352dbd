// The image augmentation kernels as eager ops (ck.ops.imageTransform, ...): Keras's
// ops.image.affine_transform with its gradient, and the contrast and brightness adjustments of
// RandomContrast and RandomBrightness for given per-image factors and offsets.
#pragma once
#include "params.h"
#include "tensor.h"

namespace ck {

// images [N, H, W, C], transforms [N, 8] (Keras's [a0 a1 a2 b0 b1 b2 c0 c1] per image).
Tensor image_transform(const Tensor& images, const Tensor& transforms, const ImageSampling& s);
// The gradient wrt images of image_transform(images, transforms) given dy [N, H, W, C].
Tensor image_transform_grad(const Tensor& dy, const Tensor& transforms, const ImageSampling& s);
// images [N, H, W, C], factors [N]: clip((x - mean) * factor + mean, lo, hi) per image and channel.
Tensor image_contrast(const Tensor& images, const Tensor& factors, float lo, float hi);
Tensor image_contrast_grad(const Tensor& dy, const Tensor& images, const Tensor& factors, float lo, float hi);
// images [N, ...], deltas [N]: clip(x + delta, lo, hi) per image.
Tensor image_brightness(const Tensor& images, const Tensor& deltas, float lo, float hi);
Tensor image_brightness_grad(const Tensor& dy, const Tensor& images, const Tensor& deltas, float lo, float hi);

}  // namespace ck
