// The counter-based hash behind dropout masks: element i of a mask drawn with `seed` depends on
// (seed, i) alone, so every ISA, thread count and device draws the same mask.
#pragma once
#include <cstdint>

namespace ck {

// splitmix64's finalizer over seed and index.
inline uint64_t dropout_hash(uint64_t seed, uint64_t index) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// True when element `index` is kept: its hash's top 24 bits, as a fraction, are >= rate.
inline bool dropout_keep(uint64_t seed, uint64_t index, float rate) {
  return float(dropout_hash(seed, index) >> 40) * (1.0f / 16777216.0f) >= rate;
}

}  // namespace ck
