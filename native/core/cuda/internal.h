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

}  // namespace cuda
}  // namespace ck
