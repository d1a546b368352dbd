// The image pipeline's native step: resizing decoded pixels (sharp decodes, convkit resizes, so
// every platform and every decoder path gives the same pixels for the same image).
#include <string>

#include "../core/image_resize.h"
#include "addon.h"

namespace ckaddon {
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
  const std::string interpolation = o.text("interpolation");
  ck::ResizeFilter filter;
  if (interpolation == "bilinear") {
    filter = ck::ResizeFilter::Bilinear;
  } else if (interpolation == "nearest") {
    filter = ck::ResizeFilter::Nearest;
  } else {
    throw_js(o.env(), ck::ErrorKind::Value,
             std::string(op) + ": interpolation must be 'bilinear' or 'nearest', got '" +
                 interpolation + "'");
  }
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

}  // namespace

void register_image(Napi::Env env, Napi::Object exports) {
  exports.Set("resizeImage", Napi::Function::New(env, ResizeImage));
}

}  // namespace ckaddon
