// The image pipeline's native steps beside decoding (addon_jpeg.cpp): resizing decoded pixels,
// so every decoder path gives the same pixels for the same image, and seeded augmentation, on
// libuv's thread pool so the next epoch's images are made while the current one trains.
#include <array>
#include <cmath>
#include <string>

#include "../core/image_augment.h"
#include "../core/image_resize.h"
#include "addon.h"

namespace ckaddon {

ck::ResizeFilter parse_resize_filter(const OpOptions& o) {
  const std::string interpolation = o.text("interpolation");
  if (interpolation == "bilinear") return ck::ResizeFilter::Bilinear;
  if (interpolation == "nearest") return ck::ResizeFilter::Nearest;
  throw_js(o.env(), ck::ErrorKind::Value,
           o.op() + ": interpolation must be 'bilinear' or 'nearest', got '" + interpolation + "'");
}

namespace {

// resizeImage({ pixels: Uint8Array, height, width, channels, outHeight, outWidth,
// interpolation: 'bilinear' | 'nearest' }) -> Uint8Array [outHeight, outWidth, channels].
Napi::Value ResizeImage(const Napi::CallbackInfo& info) {
  const char* op = "resizeImage";
  OpOptions o(info, 0, op,
              {"pixels", "height", "width", "channels", "outHeight", "outWidth", "interpolation"});
  constexpr int kMaxSide = 1 << 24;
  const int h = o.integer("height", 1, kMaxSide);
  const int w = o.integer("width", 1, kMaxSide);
  const int c = o.integer("channels", 1, 4);
  const int oh = o.integer("outHeight", 1, kMaxSide);
  const int ow = o.integer("outWidth", 1, kMaxSide);
  constexpr double kMaxOutput = 1 << 30;  // bytes: far above any model input (4096x4096x4 is 64 MiB)
  if (static_cast<double>(oh) * ow * c > kMaxOutput) {
    throw_js(o.env(), ck::ErrorKind::Value,
             std::string(op) + ": the output " + std::to_string(oh) + "x" + std::to_string(ow) +
                 "x" + std::to_string(c) + " exceeds 2^30 values");
  }
  const ck::ResizeFilter filter = parse_resize_filter(o);
  Napi::Value pv = info[0].As<Napi::Object>().Get("pixels");
  if (!pv.IsTypedArray() || pv.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw_js(o.env(), ck::ErrorKind::Value, std::string(op) + ": pixels must be a Uint8Array");
  }
  Napi::Uint8Array pixels = pv.As<Napi::Uint8Array>();
  const size_t expected = static_cast<size_t>(h) * w * c;
  if (pixels.ElementLength() != expected) {
    throw_js(o.env(), ck::ErrorKind::Shape,
             std::string(op) + ": expected " + std::to_string(expected) + " pixel values (" +
                 std::to_string(h) + "x" + std::to_string(w) + "x" + std::to_string(c) +
                 "), got " + std::to_string(pixels.ElementLength()));
  }
  Napi::Uint8Array out = Napi::Uint8Array::New(o.env(), static_cast<size_t>(oh) * ow * c);
  try {
    ck::resize_image_u8(pixels.Data(), h, w, c, out.Data(), oh, ow, filter);
  } catch (const ck::Error& e) {
    throw_js(o.env(), e.kind(), e.what());
  }
  return out;
}

class AugmentWorker : public Napi::AsyncWorker {
 public:
  AugmentWorker(Napi::Env env, Napi::Float32Array images, std::array<int64_t, 4> shape,
                ck::AugmentOptions options, uint32_t seed)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        images_(Napi::Persistent(images)),
        out_(Napi::Persistent(Napi::Float32Array::New(env, images.ElementLength()))),
        src_(images.Data()),
        dst_(out_.Value().Data()),
        shape_(shape),
        options_(options),
        seed_(seed) {}

  Napi::Promise Promise() { return deferred_.Promise(); }
  // Runs on a thread of libuv's pool; both arrays stay referenced until it is done.
  void Execute() override {
    ck::augment_images(dst_, src_, shape_[0], shape_[1], shape_[2], shape_[3], options_, seed_);
  }
  void OnOK() override { deferred_.Resolve(out_.Value()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Float32Array> images_, out_;
  const float* src_;
  float* dst_;
  std::array<int64_t, 4> shape_;
  ck::AugmentOptions options_;
  uint32_t seed_;
};

// augmentImages({ images: Float32Array, shape: [n, h, w, c], flip, crop, zoom, brightness, seed })
// -> Promise<Float32Array>: augmented copies (the images must not change until it settles).
Napi::Value AugmentImages(const Napi::CallbackInfo& info) {
  const char* op = "augmentImages";
  OpOptions o(info, 0, op, {"images", "shape", "flip", "crop", "zoom", "brightness", "seed"});
  Napi::Value iv = info[0].As<Napi::Object>().Get("images");
  if (!iv.IsTypedArray() || iv.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw_js(o.env(), ck::ErrorKind::Value, std::string(op) + ": images must be a Float32Array");
  }
  Napi::Value sv = info[0].As<Napi::Object>().Get("shape");
  if (!sv.IsArray() || sv.As<Napi::Array>().Length() != 4) {
    throw_js(o.env(), ck::ErrorKind::Value, std::string(op) + ": shape must be [n, height, width, channels]");
  }
  std::array<int64_t, 4> shape{};
  double count = 1;
  for (uint32_t i = 0; i < 4; i++) {
    Napi::Value d = sv.As<Napi::Array>().Get(i);
    const double v = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
    if (!(v >= 1 && v <= double(1 << 30) && v == std::floor(v))) {
      throw_js(o.env(), ck::ErrorKind::Value, std::string(op) + ": shape must hold positive integers");
    }
    shape[i] = int64_t(v);
    count *= v;
  }
  Napi::Float32Array images = iv.As<Napi::Float32Array>();
  if (count != double(images.ElementLength())) {
    throw_js(o.env(), ck::ErrorKind::Shape,
             std::string(op) + ": shape [" + std::to_string(shape[0]) + "," + std::to_string(shape[1]) +
                 "," + std::to_string(shape[2]) + "," + std::to_string(shape[3]) + "] needs " +
                 std::to_string(int64_t(count)) + " values, got " + std::to_string(images.ElementLength()));
  }
  ck::AugmentOptions options;
  options.flip = o.flag("flip");
  const auto fraction = [&](const char* key, double max) {
    const double v = o.number(key);
    if (!(v >= 0 && v <= max)) {
      throw_js(o.env(), ck::ErrorKind::Value,
               std::string(op) + ": " + key + " must be in [0, " + std::to_string(max) + "]");
    }
    return v;
  };
  options.crop = fraction("crop", 0.5);
  options.zoom = fraction("zoom", 0.5);
  options.brightness = fraction("brightness", 1);
  const double seed = o.number("seed");
  if (!(seed >= 0 && seed <= 4294967295.0 && seed == std::floor(seed))) {
    throw_js(o.env(), ck::ErrorKind::Value, std::string(op) + ": seed must be an integer in [0, 2^32)");
  }
  auto* worker = new AugmentWorker(o.env(), images, shape, options, uint32_t(seed));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace

void register_image(Napi::Env env, Napi::Object exports) {
  exports.Set("resizeImage", Napi::Function::New(env, ResizeImage));
  exports.Set("augmentImages", Napi::Function::New(env, AugmentImages));
}

}  // namespace ckaddon
