// The image augmentation eager ops (ops_augment.h): checks, then the augment kernels on the
// tensors' device.
#include "ops_augment.h"

#include <string>

#include "errors.h"
#include "op_launch.h"

namespace ck {

namespace {

void require_images(const char* op, const Tensor& t) {
  require(t.rank() == 4, ErrorKind::Shape,
          std::string(op) + ": images must be [batch, height, width, channels], got shape " + shape_str(t.shape));
  require(t.numel() < (size_t(1) << 31) && t.dim(0) < (1 << 30), ErrorKind::Shape,
          std::string(op) + ": images of shape " + shape_str(t.shape) + " are too large");
}

void require_per_image(const char* op, const char* what, const Tensor& t, const Tensor& images, int64_t width) {
  const bool ok = width == 1 ? t.rank() == 1 && t.dim(0) == images.dim(0)
                             : t.rank() == 2 && t.dim(0) == images.dim(0) && t.dim(1) == width;
  require(ok, ErrorKind::Shape,
          std::string(op) + ": " + what + " must have shape [" + std::to_string(images.dim(0)) +
              (width == 1 ? "" : ", " + std::to_string(width)) + "] for images " + shape_str(images.shape) + ", got " +
              shape_str(t.shape));
}

void require_range(const char* op, float lo, float hi) {
  require(lo < hi, ErrorKind::Value,
          std::string(op) + ": valueRange must be [low, high] with low < high, got [" + std::to_string(lo) + ", " +
              std::to_string(hi) + "]");
}

}  // namespace

Tensor image_transform(const Tensor& images, const Tensor& transforms, const ImageSampling& s) {
  const char* op = "imageTransform";
  require_images(op, images);
  require_per_image(op, "transforms", transforms, images, kImageTransformFloats);
  DeviceType dev = op_device(op, {{"images", &images}, {"transforms", &transforms}});
  Tensor y = empty_tensor(images.shape, op, dev);
  const int n = int(images.dim(0)), h = int(images.dim(1)), w = int(images.dim(2)), c = int(images.dim(3));
  launch_kernels(op, dev, {&images, &transforms}, {&y}, [=](const auto& k) {
    k.image_transform(y.data(), images.data(), transforms.data(), n, h, w, c, s);
  });
  return y;
}

Tensor image_transform_grad(const Tensor& dy, const Tensor& transforms, const ImageSampling& s) {
  const char* op = "imageTransformGrad";
  require_images(op, dy);
  require_per_image(op, "transforms", transforms, dy, kImageTransformFloats);
  DeviceType dev = op_device(op, {{"dy", &dy}, {"transforms", &transforms}});
  Tensor dx = empty_tensor(dy.shape, op, dev);
  const int n = int(dy.dim(0)), h = int(dy.dim(1)), w = int(dy.dim(2)), c = int(dy.dim(3));
  launch_kernels(op, dev, {&dy, &transforms}, {&dx}, [=](const auto& k) {
    k.image_transform_bwd(dx.data(), dy.data(), transforms.data(), n, h, w, c, s);
  });
  return dx;
}

Tensor image_contrast(const Tensor& images, const Tensor& factors, float lo, float hi) {
  const char* op = "imageContrast";
  require_images(op, images);
  require_per_image(op, "factors", factors, images, 1);
  require_range(op, lo, hi);
  DeviceType dev = op_device(op, {{"images", &images}, {"factors", &factors}});
  Tensor y = empty_tensor(images.shape, op, dev);
  const int n = int(images.dim(0)), hw = int(images.dim(1) * images.dim(2)), c = int(images.dim(3));
  launch_kernels(op, dev, {&images, &factors}, {&y}, [=](const auto& k) {
    k.image_contrast(y.data(), images.data(), factors.data(), n, hw, c, lo, hi);
  });
  return y;
}

Tensor image_contrast_grad(const Tensor& dy, const Tensor& images, const Tensor& factors, float lo, float hi) {
  const char* op = "imageContrastGrad";
  require_images(op, images);
  require_same_shape(op, "dy", dy, "images", images);
  require_per_image(op, "factors", factors, images, 1);
  require_range(op, lo, hi);
  DeviceType dev = op_device(op, {{"dy", &dy}, {"images", &images}, {"factors", &factors}});
  Tensor dx = empty_tensor(images.shape, op, dev);
  const int n = int(images.dim(0)), hw = int(images.dim(1) * images.dim(2)), c = int(images.dim(3));
  launch_kernels(op, dev, {&dy, &images, &factors}, {&dx}, [=](const auto& k) {
    k.image_contrast_bwd(dx.data(), dy.data(), images.data(), factors.data(), n, hw, c, lo, hi);
  });
  return dx;
}

Tensor image_brightness(const Tensor& images, const Tensor& deltas, float lo, float hi) {
  const char* op = "imageBrightness";
  require_images(op, images);
  require_per_image(op, "deltas", deltas, images, 1);
  require_range(op, lo, hi);
  DeviceType dev = op_device(op, {{"images", &images}, {"deltas", &deltas}});
  Tensor y = empty_tensor(images.shape, op, dev);
  const int n = int(images.dim(0));
  const size_t per_image = images.numel() / size_t(n > 0 ? n : 1);
  launch_kernels(op, dev, {&images, &deltas}, {&y}, [=](const auto& k) {
    k.image_brightness(y.data(), images.data(), deltas.data(), n, per_image, lo, hi);
  });
  return y;
}

Tensor image_brightness_grad(const Tensor& dy, const Tensor& images, const Tensor& deltas, float lo, float hi) {
  const char* op = "imageBrightnessGrad";
  require_images(op, images);
  require_same_shape(op, "dy", dy, "images", images);
  require_per_image(op, "deltas", deltas, images, 1);
  require_range(op, lo, hi);
  DeviceType dev = op_device(op, {{"dy", &dy}, {"images", &images}, {"deltas", &deltas}});
  Tensor dx = empty_tensor(images.shape, op, dev);
  const int n = int(images.dim(0));
  const size_t per_image = images.numel() / size_t(n > 0 ? n : 1);
  launch_kernels(op, dev, {&dy, &images, &deltas}, {&dx}, [=](const auto& k) {
    k.image_brightness_bwd(dx.data(), dy.data(), images.data(), deltas.data(), n, per_image, lo, hi);
  });
  return dx;
}

}  // namespace ck
