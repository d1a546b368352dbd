// The vector type the *.simd.cpp kernels are written against. Each of those files is compiled
// twice, once with -DCK_ISA_AVX2 (-mavx2 -mfma) and once with -DCK_ISA_AVX512 (-mavx512f ...),
// and everything it defines lives in namespace ck::CK_ISA_NS, so the two builds never collide.
// The intrinsics stay in this header: the kernels use Vec, its free functions and Blocking (the
// register-block sizes of the microkernels), and never test which ISA they are compiled for.
//
// One-definition hazard: an inline function from a shared header compiled in an AVX-512 unit
// may be the copy the linker keeps for everyone. So *.simd.cpp files include only this header,
// params.h, kernels.h, thread_pool.h and scratch.h (all free of floating-point inline code),
// plus <cstdint>/<cstring>/<cmath>; no std containers or algorithms.
#pragma once
#include <cstddef>
#include <cstdint>

#if defined(CK_ISA_AVX512)
#include <immintrin.h>
#define CK_ISA_NS avx512
#define CK_ISA_ENUM ::ck::Isa::Avx512
#define CK_ISA_TABLE avx512_kernels
#elif defined(CK_ISA_AVX2)
#include <immintrin.h>
#define CK_ISA_NS avx2
#define CK_ISA_ENUM ::ck::Isa::Avx2
#define CK_ISA_TABLE avx2_kernels
#else
#error "simd.h is for the per-ISA kernel units: define CK_ISA_AVX2 or CK_ISA_AVX512"
#endif

namespace ck {
namespace CK_ISA_NS {

#if defined(CK_ISA_AVX512)

struct Vec {
  static constexpr int kLanes = 16;
  __m512 v;
  Vec() = default;
  Vec(__m512 x) : v(x) {}  // NOLINT
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec set1(float x) { return _mm512_set1_ps(x); }
  static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  static __mmask16 mask(int n) { return __mmask16((1u << n) - 1u); }
  // Loads the first n (< kLanes) lanes, zero elsewhere; never touches memory past p + n.
  static Vec load_partial(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
  void store_partial(float* p, int n) const { _mm512_mask_storeu_ps(p, mask(n), v); }
  float reduce_add() const { return _mm512_reduce_add_ps(v); }
  float reduce_max() const { return _mm512_reduce_max_ps(v); }
};
inline Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a.v, b.v, c.v); }
inline Vec operator+(Vec a, Vec b) { return _mm512_add_ps(a.v, b.v); }
inline Vec operator-(Vec a, Vec b) { return _mm512_sub_ps(a.v, b.v); }
inline Vec operator*(Vec a, Vec b) { return _mm512_mul_ps(a.v, b.v); }
inline Vec operator/(Vec a, Vec b) { return _mm512_div_ps(a.v, b.v); }
inline Vec max(Vec a, Vec b) { return _mm512_max_ps(a.v, b.v); }
inline Vec min(Vec a, Vec b) { return _mm512_min_ps(a.v, b.v); }
inline Vec sqrt(Vec a) { return _mm512_sqrt_ps(a.v); }
// c > 0 ? a : b, lane by lane.
inline Vec select_gt0(Vec c, Vec a, Vec b) {
  __mmask16 m = _mm512_cmp_ps_mask(c.v, _mm512_setzero_ps(), _CMP_GT_OQ);
  return _mm512_mask_blend_ps(m, b.v, a.v);
}
// a > b ? x : y
inline Vec select_gt(Vec a, Vec b, Vec x, Vec y) {
  __mmask16 m = _mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ);
  return _mm512_mask_blend_ps(m, y.v, x.v);
}
// 0, 1, 2, ... in the lanes.
inline Vec lane_index() {
  return _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
// a == b ? x : y
inline Vec select_eq(Vec a, Vec b, Vec x, Vec y) {
  __mmask16 m = _mm512_cmp_ps_mask(a.v, b.v, _CMP_EQ_OQ);
  return _mm512_mask_blend_ps(m, y.v, x.v);
}
inline Vec round_nearest(Vec a) {
  return _mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
// 2^n for integral-valued n in [-126, 127].
inline Vec pow2i(Vec n) {
  __m512i i = _mm512_cvtps_epi32(n.v);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(i, _mm512_set1_epi32(127)), 23));
}

// Lane permutation: permute(a, idx)[l] = a[i[l]] for the kLanes indices i that lane_indices
// prepared (once per use site, outside the loops).
using LaneIdx = __m512i;
inline LaneIdx lane_indices(const int* i) { return _mm512_loadu_si512(i); }
inline Vec permute(Vec a, LaneIdx idx) { return _mm512_permutexvar_ps(idx, a.v); }

// Transposes the kLanes x kLanes square r in registers: r[j] becomes what was lane j of every
// r[i].
inline void transpose(Vec (&r)[Vec::kLanes]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 16; i += 2) {  // pairs of rows, interleaved by 32 bits within 128-bit lanes
    t[i] = _mm512_unpacklo_ps(r[i].v, r[i + 1].v);
    t[i + 1] = _mm512_unpackhi_ps(r[i].v, r[i + 1].v);
  }
  for (int i = 0; i < 16; i += 4) {  // quads of rows: lane q of u[i + c] is column 4q + c
    u[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int c = 0; c < 4; ++c) {  // gather the 128-bit lanes of column c, 4 + c, 8 + c, 12 + c
    const __m512 a = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
    const __m512 b = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
    const __m512 d = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
    const __m512 e = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
    r[c] = _mm512_shuffle_f32x4(a, d, 0x88);
    r[8 + c] = _mm512_shuffle_f32x4(a, d, 0xDD);
    r[4 + c] = _mm512_shuffle_f32x4(b, e, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(b, e, 0xDD);
  }
}

// Register-block sizes of the microkernels (gemm.simd.h, conv2d_small.simd.cpp,
// depthwise.simd.cpp) for 32 zmm registers: every tile's accumulators, its weight vectors and
// one broadcast fit the register file.
struct Blocking {
  // GEMM / outer-product tiles: rows per tile of 1..kGemmMaxVecs vectors of output columns
  // (rows * vecs accumulators + vecs weight vectors + 1 broadcast); more columns take
  // kGemmMaxVecs vectors per tile.
  static constexpr int kGemmMaxVecs = 4;
  static constexpr int kGemmRows[kGemmMaxVecs] = {8, 8, 8, 6};
  // Dot tiles (C < kLanes/2 output columns, vectorized along the reduction): rows for C = 1, 2...
  static constexpr int kDotRows[Vec::kLanes / 2 - 1] = {8, 8, 6, 5, 4, 3, 3};
  // The direct small-reduction convolution: its largest reduction R*S*C (measured: see
  // conv2d_small.simd.cpp) and its output pixels per tile for 1..kSmallConvMaxVecs vectors.
  static constexpr int kSmallConvMaxReduction = 576;
  static constexpr int kSmallConvMaxVecs = 4;
  static constexpr int kSmallConvPixels[kSmallConvMaxVecs] = {16, 14, 9, 6};
  // Depthwise convolution: output pixels per tile of one channel vector.
  static constexpr int kDepthwisePixels = 8;
};

#elif defined(CK_ISA_AVX2)  // AVX2 + FMA

struct Vec {
  static constexpr int kLanes = 8;
  __m256 v;
  Vec() = default;
  Vec(__m256 x) : v(x) {}  // NOLINT
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec set1(float x) { return _mm256_set1_ps(x); }
  static Vec load(const float* p) { return _mm256_loadu_ps(p); }
  static __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static Vec load_partial(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
  void store_partial(float* p, int n) const { _mm256_maskstore_ps(p, mask(n), v); }
  float reduce_add() const {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  float reduce_max() const {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};
inline Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a.v, b.v, c.v); }
inline Vec operator+(Vec a, Vec b) { return _mm256_add_ps(a.v, b.v); }
inline Vec operator-(Vec a, Vec b) { return _mm256_sub_ps(a.v, b.v); }
inline Vec operator*(Vec a, Vec b) { return _mm256_mul_ps(a.v, b.v); }
inline Vec operator/(Vec a, Vec b) { return _mm256_div_ps(a.v, b.v); }
inline Vec max(Vec a, Vec b) { return _mm256_max_ps(a.v, b.v); }
inline Vec min(Vec a, Vec b) { return _mm256_min_ps(a.v, b.v); }
inline Vec sqrt(Vec a) { return _mm256_sqrt_ps(a.v); }
inline Vec select_gt0(Vec c, Vec a, Vec b) {
  __m256 m = _mm256_cmp_ps(c.v, _mm256_setzero_ps(), _CMP_GT_OQ);
  return _mm256_blendv_ps(b.v, a.v, m);
}
inline Vec select_gt(Vec a, Vec b, Vec x, Vec y) {
  __m256 m = _mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ);
  return _mm256_blendv_ps(y.v, x.v, m);
}
inline Vec lane_index() { return _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7); }
inline Vec select_eq(Vec a, Vec b, Vec x, Vec y) {
  __m256 m = _mm256_cmp_ps(a.v, b.v, _CMP_EQ_OQ);
  return _mm256_blendv_ps(y.v, x.v, m);
}
inline Vec round_nearest(Vec a) {
  return _mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
inline Vec pow2i(Vec n) {
  __m256i i = _mm256_cvtps_epi32(n.v);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(i, _mm256_set1_epi32(127)), 23));
}

using LaneIdx = __m256i;
inline LaneIdx lane_indices(const int* i) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(i));
}
inline Vec permute(Vec a, LaneIdx idx) { return _mm256_permutevar8x32_ps(a.v, idx); }

inline void transpose(Vec (&r)[Vec::kLanes]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i].v, r[i + 1].v);
    t[i + 1] = _mm256_unpackhi_ps(r[i].v, r[i + 1].v);
  }
  for (int i = 0; i < 8; i += 4) {  // lane q of u[i + c] is column 4q + c
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
    r[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
  }
}

// For 16 ymm registers (see the AVX-512 Blocking).
struct Blocking {
  static constexpr int kGemmMaxVecs = 2;
  static constexpr int kGemmRows[kGemmMaxVecs] = {8, 6};
  static constexpr int kDotRows[Vec::kLanes / 2 - 1] = {8, 6, 4};
  static constexpr int kSmallConvMaxReduction = 160;
  static constexpr int kSmallConvMaxVecs = 3;
  static constexpr int kSmallConvPixels[kSmallConvMaxVecs] = {12, 6, 4};
  static constexpr int kDepthwisePixels = 4;
};

#endif

inline Vec abs(Vec a) { return max(a, Vec::zero() - a); }

// The first min(n, kLanes) floats at p (zeros in the other lanes), and the store back.
inline Vec load_n(const float* p, size_t n) {
  return n >= size_t(Vec::kLanes) ? Vec::load(p) : Vec::load_partial(p, int(n));
}
inline void store_n(float* p, Vec v, size_t n) {
  if (n >= size_t(Vec::kLanes)) v.store(p);
  else v.store_partial(p, int(n));
}

// Asks for the cache line holding p ahead of a read (prefetcht0).
inline void prefetch(const void* p) { __builtin_prefetch(p, 0, 3); }

// e^x, relative error ~2 ulp over the float range; saturates to 0 / +inf outside it.
inline Vec exp(Vec x) {
  const Vec hi = Vec::set1(88.3762626647949f), lo = Vec::set1(-87.3365447504f);
  x = min(max(x, lo), hi);
  Vec n = round_nearest(x * Vec::set1(1.44269504088896341f));
  // r = x - n*ln2, with ln2 split in two for precision.
  Vec r = fmadd(n, Vec::set1(-0.693359375f), x);
  r = fmadd(n, Vec::set1(2.12194440e-4f), r);
  Vec p = Vec::set1(1.9875691500e-4f);
  p = fmadd(p, r, Vec::set1(1.3981999507e-3f));
  p = fmadd(p, r, Vec::set1(8.3334519073e-3f));
  p = fmadd(p, r, Vec::set1(4.1665795894e-2f));
  p = fmadd(p, r, Vec::set1(1.6666665459e-1f));
  p = fmadd(p, r, Vec::set1(5.0000001201e-1f));
  p = fmadd(p * r, r, r + Vec::set1(1.f));
  return p * pow2i(n);
}

}  // namespace CK_ISA_NS
}  // namespace ck
