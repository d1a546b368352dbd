// Loop helpers for the per-ISA kernel units (namespace ck::CK_ISA_NS, see simd.h).
#pragma once
#include "simd.h"
#include "../thread_pool.h"

namespace ck {
namespace CK_ISA_NS {

// Runs f(i, left) at each vector offset i of [0, n), left = elements from i to the chunk's end,
// split over the pool in chunks of at least `grain` elements.
template <class F>
inline void for_each_vector(size_t n, size_t grain, F&& f) {
  parallel_for(n, grain, [&](size_t b, size_t e, int) {
    for (size_t i = b; i < e; i += Vec::kLanes) f(i, e - i);
  });
}

}  // namespace CK_ISA_NS
}  // namespace ck
