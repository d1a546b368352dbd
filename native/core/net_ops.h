// The kernels a net's passes call, on the net's device (internal to the net*.cpp files). The
// passes are templates over the kernel set: the CPU table (CpuKernels) as it is, or CudaOps
// (cuda_ops.h) with the net's stream and step scalars bound.
#pragma once
#include <string>
#include <type_traits>

#include "cuda_ops.h"
#include "errors.h"
#include "kernels.h"
#include "net.h"

namespace ck {



// Whether the passes are instantiated for the CPU (layers CUDA lacks compile only there).
template <class K>
constexpr bool on_host = std::is_same_v<K, CpuKernels>;

}  // namespace ck
