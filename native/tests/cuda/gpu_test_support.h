// Shared pieces of the GPU test programs (test_cuda_parity, test_cuda_precision): device copies
// of host vectors, random data, tolerances scaled by the reduction length, the convolution
// shapes' helpers, and a main that skips (exit 0, saying why) where there is no GPU.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "conv_shapes.h"
#include "cuda/cuda_kernels.h"
#include "cuda/device_memory.h"
#include "errors.h"
#include "kernels.h"

namespace gputest {

using ck::ConvParams;
using ck::cuda::DeviceArray;
using cktest::conv_same;
using cktest::conv_shape;
using cktest::describe;

inline int g_cases = 40;  // random shapes per family (--quick: 6)
inline void* g_stream = nullptr;

inline const ck::CpuKernels& ref() { return ck::scalar_kernels(); }
inline const ck::CudaKernels& gpu() { return ck::cuda_kernels(); }

using Vec = std::vector<float>;

// A device copy of v; `offset` floats of padding in front make the data pointer misaligned.
struct Dev {
  DeviceArray<float> buf;
  size_t offset = 0, n = 0;
  Dev() = default;
  explicit Dev(const Vec& v, size_t off = 0) : buf(v.size() + off), offset(off), n(v.size()) {
    if (n) ck::cuda::copy_to_device(buf.data() + off, v.data(), n * sizeof(float));
  }
  // Uninitialized output, pre-filled with NaN bytes so unwritten elements fail the comparison.
  static Dev out(size_t n, size_t off = 0) {
    Dev d;
    d.buf = DeviceArray<float>(n + off);
    d.offset = off, d.n = n;
    d.buf.fill_bytes(0xFF);
    return d;
  }
  float* p() const { return n || offset ? buf.data() + offset : buf.data(); }
  Vec host() const {
    ck::cuda::stream_sync(g_stream);
    Vec v(n);
    if (n) ck::cuda::copy_to_host(v.data(), buf.data() + offset, n * sizeof(float));
    return v;
  }
};

inline Vec rnd(std::mt19937& rng, size_t n, float lo = -1.f, float hi = 1.f) {
  return cktest::random_vector(rng, n, lo, hi);
}
// Small integers: many ties (exercises the first-maximum rules).
inline Vec ints(std::mt19937& rng, size_t n, int lo = -3, int hi = 3) {
  std::uniform_int_distribution<int> d(lo, hi);
  Vec v(n);
  for (auto& x : v) x = float(d(rng));
  return v;
}
inline int U(std::mt19937& rng, int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }

// |got - want| <= atol + rtol |want| everywhere, with atol = base * sqrt(reduction length) *
// scale (the size of the summed terms).
inline bool close(const Vec& got, const Vec& want, double red, double scale, std::string* why,
           float rtol = 1e-4f, double base = 1e-4) {
  if (got.size() != want.size()) {
    *why = "size " + std::to_string(got.size()) + " vs " + std::to_string(want.size());
    return false;
  }
  float atol = float(base * std::sqrt(std::max(red, 1.0)) * scale);
  return cktest::all_close(got.data(), want.data(), want.size(), rtol, atol, why);
}

#define EXPECT_CLOSE_T(got, want, red, scale, rtol, base, what)                   \
  do {                                                                            \
    std::string why_;                                                             \
    if (!close((got), (want), (red), (scale), &why_, (rtol), (base)))             \
      cktest::fail(__FILE__, __LINE__, std::string(what) + ": " + why_);         \
  } while (0)
#define EXPECT_CLOSE(got, want, red, what) EXPECT_CLOSE_T(got, want, red, 1.0, 1e-4f, 1e-4, what)
#define EXPECT_EXACT(got, want, what)                                                       \
  do {                                                                                      \
    const Vec& g_ = (got);                                                                  \
    const Vec& w_ = (want);                                                                 \
    bool same_ = g_.size() == w_.size() &&                                                  \
                 (g_.empty() || std::memcmp(g_.data(), w_.data(), g_.size() * 4) == 0);     \
    if (!same_) {                                                                           \
      std::string why_ = "sizes " + std::to_string(g_.size()) + "/" + std::to_string(w_.size()); \
      for (size_t i_ = 0; i_ < std::min(g_.size(), w_.size()); ++i_)                        \
        if (std::memcmp(&g_[i_], &w_[i_], 4) != 0) {                                        \
          why_ = "element " + std::to_string(i_) + ": " + std::to_string(g_[i_]) + " vs " +  \
                 std::to_string(w_[i_]);                                                    \
          break;                                                                            \
        }                                                                                   \
      cktest::fail(__FILE__, __LINE__, std::string(what) + " (bitwise): " + why_);         \
    }                                                                                       \
  } while (0)

// ---------------------------------------------------------------- convolution

// The CPU tests' edge shapes plus the GPU kernels' own edges: tile sizes, vector paths, split-K.
inline std::vector<ConvParams> gpu_conv_edge_shapes() {
  std::vector<ConvParams> shapes = cktest::conv_edge_shapes();
  for (const ConvParams& p : {
           conv_shape(5, 1, 1, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1),  // 1x1 image, vector channels
           conv_same(2, 13, 11, 1, 1, 3, 3),                    // C = K = 1
           conv_same(3, 9, 9, 4, 4, 3, 3, 2, 2),                // vector paths, stride 2
           conv_same(2, 17, 15, 12, 129, 3, 3),                 // K just past a 128 tile
           conv_same(4, 16, 16, 64, 128, 3, 3),                 // 128x128 tiles
           conv_same(2, 7, 7, 20, 36, 1, 1),                    // 1x1 conv, K % 4 == 0
           conv_shape(8, 33, 31, 3, 8, 3, 3),                   // long filter-gradient reduction
           conv_same(16, 24, 24, 8, 16, 3, 3),                  // split-K filter gradient
       })
    shapes.push_back(p);
  return shapes;
}

inline ConvParams random_conv(std::mt19937& rng) {
  for (;;) {
    int R = U(rng, 1, 5), S = U(rng, 1, 5), dh = U(rng, 1, 3) == 3 ? 2 : 1,
        dw = U(rng, 1, 3) == 3 ? 2 : 1;
    int sh = U(rng, 1, 3) == 3 ? U(rng, 2, 3) : 1, sw = U(rng, 1, 3) == 3 ? U(rng, 2, 3) : 1;
    int H = U(rng, 1, 14), W = U(rng, 1, 14);
    int pt = U(rng, 0, R), pb = U(rng, 0, R), pl = U(rng, 0, S), pr = U(rng, 0, S);
    int C = U(rng, 1, 3) == 1 ? U(rng, 1, 4) : U(rng, 1, 40);
    int K = U(rng, 1, 3) == 1 ? U(rng, 1, 5) : U(rng, 1, 140);
    if (U(rng, 0, 2) == 0) C = (C + 3) / 4 * 4;  // vector paths
    if (U(rng, 0, 2) == 0) K = (K + 3) / 4 * 4;
    ConvParams p = conv_shape(U(rng, 1, 4), H, W, C, K, R, S, sh, sw, pt, pb, pl, pr, dh, dw);
    if (p.P >= 1 && p.Q >= 1) return p;
  }
}

// The test program's main: --quick runs fewer random shapes; `bench` (if any) runs instead of
// the tests with --bench.
inline int gpu_test_main(int argc, char** argv, const char* program, int (*bench)() = nullptr) {
  bool do_bench = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) g_cases = 6;
    if (!std::strcmp(argv[i], "--bench")) do_bench = bench != nullptr;
  }
  std::string why;
  if (ck::cuda::device_count(&why) == 0) {
    std::printf("%s: skipped: %s\n", program, why.c_str());
    return 0;
  }
  try {
    std::printf("device: %s\n", ck::cuda::device_description(0).c_str());
    g_stream = ck::cuda::stream_create();
    if (do_bench) return bench();
    int rc = cktest::run_all();
    ck::cuda::device_sync();
    ck::cuda::stream_destroy(g_stream);
    return rc;
  } catch (const std::exception& e) {
    std::printf("%s: error: %s\n", program, e.what());
    return 1;
  }
}

}  // namespace gputest
