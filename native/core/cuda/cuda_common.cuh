// Internal helpers shared by the .cu files of the CUDA backend (never included by host-only
// code): error checks, stream casts, fast integer division, stream-ordered scratch memory and
// warp reductions.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <string>

#include "../errors.h"
#include "cuda_kernels.h"

namespace ck {
namespace cuda {

[[noreturn]] void throw_cuda(cudaError_t err, const char* what);

inline void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw_cuda(err, what);
}
// After a launch: reports a bad configuration (and sticky errors from earlier kernels).
inline void check_launch(const char* op) { check(cudaGetLastError(), op); }

inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

inline unsigned grid_1d(size_t n, int block, size_t max_blocks = 65535u * 8) {
  size_t g = (n + size_t(block) - 1) / size_t(block);
  if (g > max_blocks) g = max_blocks;
  return unsigned(g < 1 ? 1 : g);
}

// Throws a ValueError naming `op` when v does not fit in an int-indexed kernel.
void require_int_range(size_t v, const char* op, const char* what);

// Unsigned division by a runtime constant with a multiply-high and a shift (Granlund &
// Montgomery; the form PyTorch's IntDivider uses). Valid for numerators < 2^31 and divisors >= 1.
struct FastDiv {
  uint32_t d = 1, m = 1, s = 0;
  FastDiv() = default;
  explicit FastDiv(uint32_t divisor) : d(divisor) {
    s = 0;
    while ((1ull << s) < divisor) ++s;
    m = uint32_t(((1ull << 32) * ((1ull << s) - divisor)) / divisor + 1);
  }
  __device__ __forceinline__ uint32_t div(uint32_t n) const {
    return (__umulhi(n, m) + n) >> s;
  }
  // q = n / d, r = n % d
  __device__ __forceinline__ void divmod(uint32_t n, uint32_t& q, uint32_t& r) const {
    q = div(n);
    r = n - q * d;
  }
};

// Stream-ordered device scratch (cudaMallocAsync / cudaFreeAsync): valid for the work enqueued
// on `stream` after construction; freed in stream order on destruction (so it is safe to return
// from the host function before the kernels run). Falls back to cudaMalloc + a stream sync where
// the device has no memory pools.
class Scratch {
 public:
  Scratch(size_t bytes, cudaStream_t stream);
  ~Scratch();
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <class T>
  T* as() const { return static_cast<T*>(p_); }

 private:
  void* p_ = nullptr;
  cudaStream_t stream_;
  bool async_ = true;
};

// ---- device-side helpers ----

// Launches one thread per cell of `total` through launch(I total, unsigned grid), with the
// index type I = uint32_t when every flat index (up to `extent`, the largest array's size) fits
// in 31 bits, else uint64_t.
template <class F>
inline void launch_cells(size_t total, size_t extent, const char* op, F&& launch) {
  if (total == 0) return;
  const unsigned grid = grid_1d(total, 256);
  if (std::max(total, extent) <= size_t(UINT32_MAX) / 2) {
    launch(uint32_t(total), grid);
  } else {
    launch(uint64_t(total), grid);
  }
  check_launch(op);
}

// A flat index into [N, rows, cols, C] (NHWC order) split into its coordinates.
struct Cell {
  int n, row, col, c;
};
template <class I>
__device__ __forceinline__ Cell cell_of(I i, int rows, int cols, int C) {
  Cell k;
  k.c = int(i % I(C)), i /= I(C);
  k.col = int(i % I(cols)), i /= I(cols);
  k.row = int(i % I(rows));
  k.n = int(i / I(rows));
  return k;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// An (value, index) candidate for "first index of the maximum": a candidate with a larger value
// wins, equal values go to the lower index, NaN values never win (callers handle the reference's
// NaN-at-the-first-position rule themselves). idx < 0 means "no candidate yet".
struct ArgMax {
  float v;
  long long i;
};
__device__ __forceinline__ ArgMax argmax_none() { return ArgMax{0.f, -1}; }
__device__ __forceinline__ ArgMax argmax_take(ArgMax a, float v, long long i) {
  if (v != v) return a;  // NaN
  if (a.i < 0 || v > a.v || (v == a.v && i < a.i)) return ArgMax{v, i};
  return a;
}
__device__ __forceinline__ ArgMax argmax_merge(ArgMax a, ArgMax b) {
  if (b.i < 0) return a;
  return argmax_take(a, b.v, b.i);
}
__device__ __forceinline__ ArgMax warp_argmax(ArgMax a) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    ArgMax b;
    b.v = __shfl_xor_sync(0xffffffffu, a.v, o);
    b.i = __shfl_xor_sync(0xffffffffu, a.i, o);
    a = argmax_merge(a, b);
  }
  return a;
}

}  // namespace cuda
}  // namespace ck
