// The direct convolution for layers with few input channels (conv2d_small.simd.cpp), which
// conv2d.simd.cpp tries before its indirect GEMM.
#pragma once
#include "../params.h"
#include "simd.h"

namespace ck {
namespace CK_ISA_NS {

// Computes y as conv2d_fwd does and returns true when the layer suits the direct kernel (a
// small reduction R*S*C, an epilogue_act); returns false, writing nothing, otherwise.
bool conv2d_small_fwd(float* y, const float* x, const float* w, const float* b,
                      const ConvParams& p, Act act);

// Whether the reduction R*S*C is small enough for the direct kernel (conv2d_small_fwd may still
// decline a layer for its padding); lets a caller skip preparing its inputs.
bool conv2d_small_reduction(const ConvParams& p);

}  // namespace CK_ISA_NS
}  // namespace ck
