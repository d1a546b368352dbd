// The counter-based hash behind dropout masks: element i of a mask drawn with `seed` depends on
// (seed, i) alone, so every ISA, thread count and device draws the same mask.
#pragma once
#include <cstdint>

// Callable from CUDA kernels too, so the GPU draws the identical mask.
#if defined(__CUDACC__)
#define CK_HOST_DEVICE __host__ __device__
#else
#define CK_HOST_DEVICE
#endif

namespace ck {

// static: each unit keeps its own copy. An inline function's out-of-line copy from an AVX-512
// unit (it converts with vcvtusi2ss) could otherwise be the one the linker keeps for the
// reference and AVX2 code too (see simd.h).
//
// splitmix64's finalizer over seed and index.
static CK_HOST_DEVICE inline uint64_t dropout_hash(uint64_t seed, uint64_t index) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// True when element `index` is kept: its hash's top 24 bits, as a fraction, are >= rate.
static CK_HOST_DEVICE inline bool dropout_keep(uint64_t seed, uint64_t index, float rate) {
  return float(dropout_hash(seed, index) >> 40) * (1.0f / 16777216.0f) >= rate;
}

// The seed under which element i of a mask draws what element first + i draws under `seed`:
// dropout_hash reads seed + golden * (index + 1), so moving the index moves the seed. A
// data-parallel step's share of a global batch draws the masks of its rows' global positions.
static CK_HOST_DEVICE inline uint64_t dropout_seed_from(uint64_t seed, uint64_t first) {
  return seed + 0x9E3779B97F4A7C15ull * first;
}

// A training step's dropout seed for layer `layer` of a network: each step and layer draws its
// own mask, and the same step seed repeats the run bit for bit (the executor's rule, on the CPU
// and, from a device copy of the step seed, in CUDA kernels).
static CK_HOST_DEVICE inline uint64_t dropout_layer_seed(uint64_t step_seed, uint64_t layer) {
  return step_seed * 0x9E3779B97F4A7C15ull + layer * 0xBF58476D1CE4E5B9ull;
}

// The inverse of dropout_layer_seed's layer factor modulo 2^64 (it is odd): Newton's iteration
// x <- x * (2 - b * x) doubles the correct low bits, from 3 (b * b == 1 modulo 8) to 96.
static constexpr uint64_t dropout_layer_factor_inverse() {
  uint64_t x = 0xBF58476D1CE4E5B9ull;
  for (int i = 0; i < 5; ++i) x *= 2 - 0xBF58476D1CE4E5B9ull * x;
  return x;
}
static_assert(0xBF58476D1CE4E5B9ull * dropout_layer_factor_inverse() == 1, "the layer factor's inverse");

// The layer argument under which dropout_layer_seed(s, it) == dropout_seed_from(
// dropout_layer_seed(s, layer), first) for every step seed s: a CUDA step, whose kernels read
// the step seed from the device, draws the masks of a data-parallel share's global positions
// (elements from `first` on) through the layer argument alone.
static inline uint64_t dropout_layer_from(uint64_t layer, uint64_t first) {
  return layer + 0x9E3779B97F4A7C15ull * first * dropout_layer_factor_inverse();
}

}  // namespace ck
