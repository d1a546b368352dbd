// Decoding plain JPEGs with libjpeg-turbo's TurboJPEG API, for the image pipeline.
//
// sharp (libvips) decodes everything, but its per-image machinery costs ~0.7 ms of CPU for a
// small JPEG that libjpeg-turbo decodes in a fraction of that. TurboJPEG (libturbojpeg.so.0) is
// loaded at run time, so the addon has no build- or load-time dependency on it: where it is
// missing, or for JPEGs whose pixels sharp would change after decoding (an EXIF orientation, an
// ICC profile, CMYK, colour to greyscale) or that libjpeg warns about, decodeJpeg answers null and
// sharp decodes the file. Both paths run the same libjpeg-turbo decoder (sharp's libvips bundles
// it), so they give the same pixels.
//
// TurboJPEG's API, declared here instead of including turbojpeg.h (checked against
// libjpeg-turbo 2.1's turbojpeg.h; the same functions and values are in 3.x): the handle is an
// opaque pointer, the functions return 0 on success, TJPF_RGB == 0, TJPF_GRAY == 6,
// TJCS_YCbCr == 1, TJCS_GRAY == 2, TJFLAG_STOPONWARNING == 8192, TJFLAG_LIMITSCANS == 32768.
#ifndef _WIN32
#include <dlfcn.h>
#endif

#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "../core/image_resize.h"
#include "addon.h"

namespace ckaddon {
namespace {

using TjHandle = void*;
constexpr int kTjPixelRgb = 0;
constexpr int kTjPixelGray = 6;
constexpr int kTjColourYCbCr = 1;
constexpr int kTjColourGray = 2;
constexpr int kTjStopOnWarning = 8192;
constexpr int kTjLimitScans = 32768;  // refuses progressive files with hundreds of scans (a DoS)

struct TurboJpeg {
  TjHandle (*init_decompress)() = nullptr;
  int (*decompress_header3)(TjHandle, const unsigned char*, unsigned long, int*, int*, int*,
                            int*) = nullptr;
  int (*decompress2)(TjHandle, const unsigned char*, unsigned long, unsigned char*, int, int, int,
                     int, int) = nullptr;
  int (*destroy)(TjHandle) = nullptr;
  std::string library;  // the file loaded; empty when none could be
};

const TurboJpeg& turbojpeg() {
  static TurboJpeg api;
  static std::once_flag once;
  std::call_once(once, [] {
#ifndef _WIN32
    for (const char* name : {"libturbojpeg.so.0", "libturbojpeg.0.dylib", "libturbojpeg.dylib"}) {
      void* lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (!lib) continue;
      TurboJpeg t;
      t.init_decompress = reinterpret_cast<decltype(t.init_decompress)>(dlsym(lib, "tjInitDecompress"));
      t.decompress_header3 =
          reinterpret_cast<decltype(t.decompress_header3)>(dlsym(lib, "tjDecompressHeader3"));
      t.decompress2 = reinterpret_cast<decltype(t.decompress2)>(dlsym(lib, "tjDecompress2"));
      t.destroy = reinterpret_cast<decltype(t.destroy)>(dlsym(lib, "tjDestroy"));
      if (t.init_decompress && t.decompress_header3 && t.decompress2 && t.destroy) {
        t.library = name;
        api = t;
        return;
      }
      dlclose(lib);
    }
#endif
  });
  return api;
}

// One decompressor per thread of libuv's pool, made on first use.
TjHandle thread_decompressor() {
  struct Owned {
    TjHandle h = nullptr;
    ~Owned() {
      if (h) turbojpeg().destroy(h);
    }
  };
  thread_local Owned owned;
  if (!owned.h) owned.h = turbojpeg().init_decompress();
  return owned.h;
}

uint32_t read_be(const uint8_t* p, int n) {
  uint32_t v = 0;
  for (int i = 0; i < n; i++) v = (v << 8) | p[i];
  return v;
}

// The EXIF orientation in an APP1 "Exif\0\0" segment's TIFF data (1 when it has none); 0 when
// the data cannot be read, which sends the file to sharp.
int exif_orientation(const uint8_t* tiff, size_t n) {
  if (n < 8) return 0;
  const bool little = tiff[0] == 'I' && tiff[1] == 'I';
  if (!little && !(tiff[0] == 'M' && tiff[1] == 'M')) return 0;
  const auto u = [&](size_t at, int bytes) -> uint32_t {
    uint32_t v = 0;
    for (int i = 0; i < bytes; i++) v |= uint32_t{tiff[at + i]} << (8 * (little ? i : bytes - 1 - i));
    return v;
  };
  const size_t ifd = u(4, 4);
  if (ifd + 2 > n) return 0;
  const size_t entries = u(ifd, 2);
  for (size_t e = 0; e < entries; e++) {
    const size_t at = ifd + 2 + e * 12;
    if (at + 12 > n) return 0;
    if (u(at, 2) == 0x0112) return static_cast<int>(u(at + 8, 2));
  }
  return 1;
}

// Whether the segments before the image data leave the decoded pixels as they are: no EXIF
// orientation other than 1 and no ICC profile (sharp would rotate, or convert through the
// profile). A malformed marker sequence answers false too: sharp then reports it.
bool plain_jpeg(const uint8_t* d, size_t n) {
  size_t at = 2;  // after SOI
  while (at + 4 <= n) {
    if (d[at] != 0xFF) return false;
    const uint8_t marker = d[at + 1];
    if (marker == 0xFF) {
      at++;
      continue;
    }
    if (marker == 0xDA) return true;  // start of scan: every header segment was read
    const size_t len = read_be(d + at + 2, 2);
    if (len < 2 || at + 2 + len > n) return false;
    const uint8_t* seg = d + at + 4;
    const size_t seg_len = len - 2;
    if (marker == 0xE1 && seg_len >= 6 && std::memcmp(seg, "Exif\0\0", 6) == 0 &&
        exif_orientation(seg + 6, seg_len - 6) != 1) {
      return false;
    }
    if (marker == 0xE2 && seg_len >= 12 && std::memcmp(seg, "ICC_PROFILE\0", 12) == 0) return false;
    at += 2 + len;
  }
  return false;
}

// Whole decodes above this many pixels are left to sharp, which streams them (the same bound as
// lib/data/images.ts).
constexpr int64_t kMaxWholeDecodePixels = int64_t{4096} * 4096;

#ifndef S_ISREG  // MSVC's <sys/stat.h> has the flags without the macro
#define S_ISREG(m) (((m) & S_IFMT) == S_IFREG)
#endif

// Files larger than this are left to the JS path, which reports them (lib/data/images.ts).
constexpr int64_t kMaxFileBytes = int64_t{512} << 20;

// The whole of a regular file of at most kMaxFileBytes, or false (a FIFO or device named like an
// image would block or never end: such files are for the JS path to refuse).
bool read_regular_file(const std::string& path, std::vector<uint8_t>& out) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > kMaxFileBytes) return false;
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out.resize(size_t(st.st_size));
  in.read(reinterpret_cast<char*>(out.data()), std::streamsize(out.size()));
  return in.gcount() == std::streamsize(out.size());
}

class DecodeJpegWorker : public Napi::AsyncWorker {
 public:
  // Decodes `bytes`, or the file at `path` read on the pool thread; the output is uint8 pixels,
  // or with `unit_floats` float32 values v / 255 (what a model takes), made here off the JS thread.
  // The output array is made now and written in place by Execute, so the JS thread copies nothing.
  DecodeJpegWorker(Napi::Env env, std::vector<uint8_t> bytes, std::string path, int channels,
                   int out_h, int out_w, ck::ResizeFilter filter, bool unit_floats)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        bytes_(std::move(bytes)),
        path_(std::move(path)),
        channels_(channels),
        out_h_(out_h),
        out_w_(out_w),
        filter_(filter),
        unit_floats_(unit_floats) {
    const size_t n = static_cast<size_t>(out_h) * out_w * channels;
    if (unit_floats) {
      Napi::Float32Array out = Napi::Float32Array::New(env, n);
      floats_ = out.Data();
      out_ = Napi::Persistent(Napi::Value(out).As<Napi::Object>());
    } else {
      Napi::Uint8Array out = Napi::Uint8Array::New(env, n);
      bytes_out_ = out.Data();
      out_ = Napi::Persistent(Napi::Value(out).As<Napi::Object>());
    }
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      decode();
    } catch (const std::exception&) {
      decoded_ = false;  // out of memory, say: sharp tries, and reports what it finds
    }
  }

  void decode() {
    const TurboJpeg& tj = turbojpeg();
    if (tj.library.empty()) return;
    if (!path_.empty() && !read_regular_file(path_, bytes_)) return;
    if (bytes_.size() < 3 || bytes_[0] != 0xFF || bytes_[1] != 0xD8 || bytes_[2] != 0xFF) return;
    if (!plain_jpeg(bytes_.data(), bytes_.size())) return;
    TjHandle h = thread_decompressor();
    if (!h) return;
    int w = 0, ht = 0, subsampling = 0, colour = 0;
    if (tj.decompress_header3(h, bytes_.data(), bytes_.size(), &w, &ht, &subsampling, &colour) != 0) {
      return;
    }
    if (w < 1 || ht < 1 || int64_t{w} * ht > kMaxWholeDecodePixels) return;
    // Colour to greyscale is sharp's (libvips's luminance differs from the JPEG's Y channel).
    const bool grey = colour == kTjColourGray;
    if (!(grey || colour == kTjColourYCbCr) || (channels_ == 1 && !grey)) return;
    std::vector<uint8_t> pixels(static_cast<size_t>(w) * ht * channels_);
    if (tj.decompress2(h, bytes_.data(), bytes_.size(), pixels.data(), w, 0, ht,
                       channels_ == 1 ? kTjPixelGray : kTjPixelRgb,
                       kTjStopOnWarning | kTjLimitScans) != 0) {
      return;  // an error, or a warning (a truncated file, corrupt data; the flag stops at once)
    }
    const size_t n = static_cast<size_t>(out_h_) * out_w_ * channels_;
    if (unit_floats_) {
      std::vector<uint8_t> resized(n);
      ck::resize_image_u8(pixels.data(), ht, w, channels_, resized.data(), out_h_, out_w_, filter_);
      for (size_t i = 0; i < n; i++) floats_[i] = float(double(resized[i]) / 255.0);
    } else {
      ck::resize_image_u8(pixels.data(), ht, w, channels_, bytes_out_, out_h_, out_w_, filter_);
    }
    decoded_ = true;
  }

  void OnOK() override {
    if (decoded_) deferred_.Resolve(out_.Value());
    else deferred_.Resolve(Env().Null());
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<uint8_t> bytes_;
  std::string path_;
  int channels_, out_h_, out_w_;
  ck::ResizeFilter filter_;
  bool unit_floats_;
  Napi::ObjectReference out_;  // the Float32Array or Uint8Array Execute writes
  float* floats_ = nullptr;
  uint8_t* bytes_out_ = nullptr;
  bool decoded_ = false;
};

// decodeJpeg({ bytes: Uint8Array | path: string, channels: 1 | 3, outHeight, outWidth,
// interpolation, unitFloats?: boolean }) -> Promise<Uint8Array | Float32Array [outHeight,
// outWidth, channels] | null>: null when the file is for sharp (or, given a path, not a regular
// file of a plain JPEG).
Napi::Value DecodeJpeg(const Napi::CallbackInfo& info) {
  const char* op = "decodeJpeg";
  OpOptions o(info, 0, op, {"bytes", "path", "channels", "outHeight", "outWidth", "interpolation", "unitFloats"});
  const int c = o.integer("channels", 1, 3);
  if (c == 2) throw_js(o.env(), ck::ErrorKind::Value, std::string(op) + ": channels must be 1 or 3");
  const int oh = o.integer("outHeight", 1, 4096);
  const int ow = o.integer("outWidth", 1, 4096);
  const ck::ResizeFilter filter = parse_resize_filter(o);
  Napi::Object opts = info[0].As<Napi::Object>();
  const bool unit_floats = !opts.Get("unitFloats").IsUndefined() && o.flag("unitFloats");
  Napi::Value bv = opts.Get("bytes"), pv = opts.Get("path");
  std::vector<uint8_t> bytes;
  std::string path;
  if (pv.IsString() && bv.IsUndefined()) {
    path = pv.As<Napi::String>().Utf8Value();
    if (path.empty() || path.find('\0') != std::string::npos) {
      throw_js(o.env(), ck::ErrorKind::Value, std::string(op) + ": path must be a non-empty file path");
    }
  } else if (pv.IsUndefined() && bv.IsTypedArray() && bv.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
    Napi::Uint8Array b = bv.As<Napi::Uint8Array>();
    bytes.assign(b.Data(), b.Data() + b.ElementLength());
  } else {
    throw_js(o.env(), ck::ErrorKind::Value, std::string(op) + ": pass either bytes (a Uint8Array) or path (a string)");
  }
  auto* worker = new DecodeJpegWorker(o.env(), std::move(bytes), std::move(path), c, oh, ow, filter, unit_floats);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace

void register_jpeg(Napi::Env env, Napi::Object exports) {
  exports.Set("decodeJpeg", Napi::Function::New(env, DecodeJpeg));
  // The TurboJPEG library decodeJpeg uses, or null (every JPEG then goes through sharp).
  exports.Set("jpegLibrary", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    const std::string& lib = turbojpeg().library;
    return lib.empty() ? info.Env().Null() : Napi::String::New(info.Env(), lib);
  }));
}

}  // namespace ckaddon
