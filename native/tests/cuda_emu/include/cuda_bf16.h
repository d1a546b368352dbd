// convkit's CUDA emulator: the part of cuda_bf16.h our kernels use. bfloat16 is the top half of
// a float; conversion rounds to nearest even, as the device's cvt.rn.bf16.f32 does.
#pragma once
#include <cstdint>
#include <cstring>

struct __nv_bfloat16 {
  uint16_t __x;
};

inline __nv_bfloat16 __float2bfloat16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  __nv_bfloat16 h;
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0) {
    h.__x = uint16_t((bits >> 16) | 0x0040u);  // NaN stays NaN (quiet)
    return h;
  }
  bits += 0x7fffu + ((bits >> 16) & 1u);
  h.__x = uint16_t(bits >> 16);
  return h;
}

inline float __bfloat162float(__nv_bfloat16 h) {
  uint32_t bits = uint32_t(h.__x) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
