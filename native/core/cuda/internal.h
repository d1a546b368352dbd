// Declarations of the CUDA kernel entry points (table.cu assembles the table from them by name)
// and of the helpers the .cu files share. Host-only: no CUDA types.
#pragma once
#include "cuda_kernels.h"

namespace ck {
namespace cuda {

// Every entry of the table, defined across the .cu files (conv2d.cu, dense.cu, pool.cu, ...).
#define CK_KERNEL(name, params) void name CK_WITH_STREAM params;
#define CK_DEVICE_KERNEL(name, params) void name CK_WITH_STREAM params;
#include "../kernel_list.inc"
// dst[i, dst_offset + j] = src[i, src_offset + j] for rows i < rows and columns j < width of the
// row-major arrays dst [rows, dst_cols] and src [rows, src_cols] (grouped_conv2d.cu's gathers).
void copy_columns(float* dst, int dst_cols, int dst_offset, const float* src, int src_cols,
                  int src_offset, size_t rows, int width, void* stream, const char* op);
// The fused activation of a conv2d / depthwise / dense forward (bias.cu): the kernels clamp
// with ReLU in their own epilogue (epilogue_relu: whether to; it throws, naming op, for an act
// that is not an epilogue_act), and epilogue_rest applies the others (relu6, sigmoid, swish,
// hard swish) to their n outputs y afterwards, as activation_fwd, on the same stream.
bool epilogue_relu(Act act, const char* op);
void epilogue_rest(float* y, size_t n, Act act, void* stream);

}  // namespace cuda
}  // namespace ck
