// The scalar reference kernels: plain loops, the ground truth every vector variant is tested
// against, and the path CONVKIT_ISA=scalar runs.
#pragma once
#include "../kernels.h"

namespace ck {
namespace ref {
#include "kernel_decls.inc"
}  // namespace ref
}  // namespace ck
