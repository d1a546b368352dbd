// The vector type the *.simd.cpp kernels are written against. Each of those files is compiled
// once per vector ISA of the target architecture (native/sources.json's "isa_units"): on x86-64
// with -DCK_ISA_AVX2 (-mavx2 -mfma) and -DCK_ISA_AVX512 (-mavx512f ...), on aarch64 with
// -DCK_ISA_NEON (baseline there); everything it defines lives in namespace ck::CK_ISA_NS, so the
// builds never collide. Architecture-specific intrinsics stay in this header: the kernels use
// Vec, its free functions and Blocking (the register-block sizes of the microkernels), and never
// test which ISA they are compiled for.
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
#elif defined(CK_ISA_NEON)
#if !defined(__aarch64__) && !defined(_M_ARM64)
#error "CK_ISA_NEON is for aarch64 targets (vfmaq_f32, vqtbl1q_u8, vdivq_f32 are A64-only)"
#endif
#include <arm_neon.h>
#define CK_ISA_NS neon
#define CK_ISA_ENUM ::ck::Isa::Neon
#define CK_ISA_TABLE neon_kernels
#else
#error "simd.h is for the per-ISA kernel units: define CK_ISA_AVX2, CK_ISA_AVX512 or CK_ISA_NEON"
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

#elif defined(CK_ISA_NEON)  // aarch64 Advanced SIMD, 128-bit, with FMA

struct Vec {
  static constexpr int kLanes = 4;
  float32x4_t v;
  Vec() = default;
  Vec(float32x4_t x) : v(x) {}  // NOLINT
  static Vec zero() { return vdupq_n_f32(0.f); }
  static Vec set1(float x) { return vdupq_n_f32(x); }
  static Vec load(const float* p) { return vld1q_f32(p); }
  // Lane by lane: no masked loads in NEON, and none may touch memory past p + n.
  static Vec load_partial(const float* p, int n) {
    float32x4_t r = vdupq_n_f32(0.f);
    if (n > 0) r = vld1q_lane_f32(p, r, 0);
    if (n > 1) r = vld1q_lane_f32(p + 1, r, 1);
    if (n > 2) r = vld1q_lane_f32(p + 2, r, 2);
    return r;
  }
  void store(float* p) const { vst1q_f32(p, v); }
  void store_partial(float* p, int n) const {
    if (n > 0) vst1q_lane_f32(p, v, 0);
    if (n > 1) vst1q_lane_f32(p + 1, v, 1);
    if (n > 2) vst1q_lane_f32(p + 2, v, 2);
  }
  float reduce_add() const { return vaddvq_f32(v); }
  float reduce_max() const { return vmaxvq_f32(v); }
};
inline Vec fmadd(Vec a, Vec b, Vec c) { return vfmaq_f32(c.v, a.v, b.v); }
inline Vec operator+(Vec a, Vec b) { return vaddq_f32(a.v, b.v); }
inline Vec operator-(Vec a, Vec b) { return vsubq_f32(a.v, b.v); }
inline Vec operator*(Vec a, Vec b) { return vmulq_f32(a.v, b.v); }
inline Vec operator/(Vec a, Vec b) { return vdivq_f32(a.v, b.v); }
// x86's maxps/minps semantics (a > b ? a : b, so a NaN in either gives b, and max(-0, +0) is
// +0), not FMAX's NaN propagation: ReLU maps NaN to 0 as the scalar reference's x > 0 ? x : 0
// does, and every ISA gives the same bits.
inline Vec max(Vec a, Vec b) { return vbslq_f32(vcgtq_f32(a.v, b.v), a.v, b.v); }
inline Vec min(Vec a, Vec b) { return vbslq_f32(vcltq_f32(a.v, b.v), a.v, b.v); }
inline Vec sqrt(Vec a) { return vsqrtq_f32(a.v); }
inline Vec select_gt0(Vec c, Vec a, Vec b) {
  return vbslq_f32(vcgtq_f32(c.v, vdupq_n_f32(0.f)), a.v, b.v);
}
inline Vec select_gt(Vec a, Vec b, Vec x, Vec y) { return vbslq_f32(vcgtq_f32(a.v, b.v), x.v, y.v); }
inline Vec lane_index() {
  static const float kIndex[4] = {0.f, 1.f, 2.f, 3.f};
  return vld1q_f32(kIndex);
}
inline Vec select_eq(Vec a, Vec b, Vec x, Vec y) { return vbslq_f32(vceqq_f32(a.v, b.v), x.v, y.v); }
// Ties to even, as x86's _MM_FROUND_TO_NEAREST_INT.
inline Vec round_nearest(Vec a) { return vrndnq_f32(a.v); }
inline Vec pow2i(Vec n) {
  int32x4_t i = vcvtnq_s32_f32(n.v);
  return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(i, vdupq_n_s32(127)), 23));
}

// A table lookup over the vector's 16 bytes: float lane l takes bytes 4*i[l] .. 4*i[l] + 3
// (the lane-to-byte order of a little-endian target, the only kind convkit builds for).
using LaneIdx = uint8x16_t;
inline LaneIdx lane_indices(const int* i) {
  uint8_t bytes[16];
  for (int l = 0; l < 4; ++l) {
    for (int b = 0; b < 4; ++b) bytes[4 * l + b] = uint8_t(4 * i[l] + b);
  }
  return vld1q_u8(bytes);
}
inline Vec permute(Vec a, LaneIdx idx) {
  return vreinterpretq_f32_u8(vqtbl1q_u8(vreinterpretq_u8_f32(a.v), idx));
}

inline void transpose(Vec (&r)[Vec::kLanes]) {
  // Pairs of rows interleaved by 32 bits, then the 64-bit halves of those pairs.
  const float32x4_t t0 = vtrn1q_f32(r[0].v, r[1].v), t1 = vtrn2q_f32(r[0].v, r[1].v);
  const float32x4_t t2 = vtrn1q_f32(r[2].v, r[3].v), t3 = vtrn2q_f32(r[2].v, r[3].v);
  const float64x2_t d0 = vreinterpretq_f64_f32(t0), d1 = vreinterpretq_f64_f32(t1);
  const float64x2_t d2 = vreinterpretq_f64_f32(t2), d3 = vreinterpretq_f64_f32(t3);
  r[0] = vreinterpretq_f32_f64(vtrn1q_f64(d0, d2));
  r[1] = vreinterpretq_f32_f64(vtrn1q_f64(d1, d3));
  r[2] = vreinterpretq_f32_f64(vtrn2q_f64(d0, d2));
  r[3] = vreinterpretq_f32_f64(vtrn2q_f64(d1, d3));
}

// For 32 q registers, as AVX-512's 32 zmm (set1 is one ld1r: the broadcast takes one register).
// Unmeasured on arm64 hardware; the small-reduction convolution keeps the bound at which the
// direct kernel and the GEMM were even on one x86 thread.
struct Blocking {
  static constexpr int kGemmMaxVecs = 4;
  static constexpr int kGemmRows[kGemmMaxVecs] = {8, 8, 8, 6};
  static constexpr int kDotRows[Vec::kLanes / 2 - 1] = {8};
  static constexpr int kSmallConvMaxReduction = 160;
  static constexpr int kSmallConvMaxVecs = 4;
  static constexpr int kSmallConvPixels[kSmallConvMaxVecs] = {16, 14, 9, 6};
  static constexpr int kDepthwisePixels = 8;
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

// Asks for the cache line holding p ahead of a read (prefetcht0 on x86, prfm pldl1keep on arm64).
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

// The sigmoid and hard sigmoid of the vector activations (activation.simd.cpp) and of the
// kernels' fused epilogues: one definition, so a fused activation gives activation_fwd's bits.
inline Vec sigmoid(Vec x) {
  // 1 / (1 + e^-x); exp saturates, so large |x| gives 0 or 1 without overflow.
  const Vec one = Vec::set1(1.f);
  return one / (one + exp(Vec::zero() - x));
}
inline Vec hard_sigmoid(Vec x) {
  return min(max(x + Vec::set1(3.f), Vec::zero()), Vec::set1(6.f)) / Vec::set1(6.f);
}

}  // namespace CK_ISA_NS
}  // namespace ck
