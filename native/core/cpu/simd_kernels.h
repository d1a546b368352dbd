// Declarations of this ISA's kernels for the *.simd.cpp units that call each other's.
#pragma once
#include "simd.h"
#include "../kernels.h"

namespace ck {
namespace CK_ISA_NS {
#include "kernel_decls.inc"
}  // namespace CK_ISA_NS
}  // namespace ck
