// Dense forward for a few rows (dense_rows.simd.cpp), which dense.simd.cpp tries before its
// packed GEMM.
#pragma once
#include "../params.h"
#include "simd.h"

namespace ck {
namespace CK_ISA_NS {

// Computes y as dense_fwd does and returns true for up to 4 rows with act None or Relu;
// returns false, writing nothing, otherwise.
bool dense_rows_fwd(float* y, const float* x, const float* w, const float* b, int M, int K, int N,
                    Act act);

}  // namespace CK_ISA_NS
}  // namespace ck
