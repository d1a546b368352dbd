// Deterministic reductions shared by the op families: the split-K sum of the GEMM and column
// sums (bias gradients, global average pooling). Every order is fixed by the shape alone.
#include <algorithm>
#include <atomic>

#include "gemm_tc.cuh"

namespace ck {
namespace cuda {

bool tensor_cores_available() {
  // Per device, looked up once: ops ask on every GEMM.
  static std::atomic<int> known[64];  // 0 unknown, 1 no, 2 yes
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) {
    cudaGetLastError();
    return false;
  }
  int v = known[dev].load(std::memory_order_relaxed);
  if (v == 0) {
    cudaDeviceProp prop;
    v = cudaGetDeviceProperties(&prop, dev) == cudaSuccess && prop.major >= 8 ? 2 : 1;
    cudaGetLastError();
    known[dev].store(v, std::memory_order_relaxed);
  }
  return v == 2;
}

int choose_splits(long long tiles, int threads, int Kred, int BK, long long MN, int* chunk) {
  // About half of a big GPU's resident threads (132 SMs x 2048) in blocks of this size.
  const long long target_blocks = std::max(1LL, 135168LL / threads);
  *chunk = std::max(Kred, 1);
  if (tiles * 2 >= target_blocks || Kred < 512) return 1;
  long long splits = (target_blocks + tiles - 1) / tiles;
  splits = std::min(splits, (long long)Kred / 256);
  splits = std::min(splits, std::max(1LL, (64LL << 20) / std::max(MN, 1LL)));  // <= 256 MiB
  splits = std::min(splits, 1024LL);
  if (splits < 2) return 1;
  long long per = (Kred + splits - 1) / splits;
  per = (per + BK - 1) / BK * BK;
  *chunk = int(per);
  return int((Kred + per - 1) / per);
}

namespace {

__global__ void splitk_reduce_kernel(float* c, const float* ws, const float* bias, int relu,
                                     int splits, int M, int N) {
  const int total = M * N;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    float v = 0.f;
    for (int s = 0; s < splits; ++s) v += ws[size_t(s) * total + i];
    if (bias) v += bias[i % N];
    if (relu && !(v > 0.f)) v = 0.f;
    c[i] = v;
  }
}

constexpr int kColTile = 32, kRowLanes = 8, kRowsPerChunk = 1024, kMaxChunks = 1024;

// Stage 1: block (32 columns, 8 row lanes) sums rows [chunk*rows_per, ...) of one batch.
// Writes out[b, col] / divisor directly when there is one chunk, else a partial.
__global__ void colsum_partial_kernel(float* dst, const float* in, size_t rows, int cols,
                                      size_t rows_per, int chunks, float divisor) {
  __shared__ float sh[kRowLanes][kColTile];
  const int col = blockIdx.x * kColTile + threadIdx.x;
  const int chunk = blockIdx.y, b = blockIdx.z;
  const size_t r0 = size_t(chunk) * rows_per, r1 = min(rows, r0 + rows_per);
  const float* base = in + size_t(b) * rows * cols;
  float s = 0.f;
  if (col < cols) {
    for (size_t r = r0 + threadIdx.y; r < r1; r += kRowLanes) s += base[r * cols + col];
  }
  sh[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && col < cols) {
    float t = sh[0][threadIdx.x];
#pragma unroll
    for (int l = 1; l < kRowLanes; ++l) t += sh[l][threadIdx.x];
    if (chunks == 1) {
      dst[size_t(b) * cols + col] = t / divisor;
    } else {
      dst[(size_t(b) * chunks + chunk) * cols + col] = t;
    }
  }
}

// Stage 2: one warp per (batch, column) sums the chunk partials: lane-strided, then a fixed
// butterfly.
__global__ void colsum_final_kernel(float* out, const float* part, int batches, int cols,
                                    int chunks, float divisor) {
  const long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= (long long)batches * cols) return;
  const int b = int(warp / cols), col = int(warp % cols);
  float s = 0.f;
  for (int k = lane; k < chunks; k += 32) s += part[(size_t(b) * chunks + k) * cols + col];
  s = warp_sum(s);
  if (lane == 0) out[size_t(b) * cols + col] = s / divisor;
}

}  // namespace

void splitk_reduce(float* c, const float* ws, const float* bias, bool relu, int splits, int M,
                   int N, cudaStream_t stream, const char* op) {
  splitk_reduce_kernel<<<grid_1d(size_t(M) * N, 256), 256, 0, stream>>>(c, ws, bias, relu ? 1 : 0,
                                                                         splits, M, N);
  check_launch(op);
}

void column_sums(float* out, const float* in, int batches, size_t rows, int cols, float divisor,
                 cudaStream_t stream, const char* op) {
  if (batches <= 0 || cols <= 0) return;
  if (batches > 65535) require_int_range(size_t(-1), op, "batch count");
  size_t chunks = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  if (chunks < 1) chunks = 1;
  if (chunks > size_t(kMaxChunks)) chunks = kMaxChunks;
  const size_t rows_per = std::max<size_t>(1, (rows + chunks - 1) / chunks);
  dim3 block(kColTile, kRowLanes);
  dim3 grid(unsigned((cols + kColTile - 1) / kColTile), unsigned(chunks), unsigned(batches));
  if (chunks == 1) {
    colsum_partial_kernel<<<grid, block, 0, stream>>>(out, in, rows, cols, rows_per, 1, divisor);
    check_launch(op);
    return;
  }
  Scratch part(size_t(batches) * chunks * cols * sizeof(float), stream);
  colsum_partial_kernel<<<grid, block, 0, stream>>>(part.as<float>(), in, rows, cols, rows_per,
                                                    int(chunks), divisor);
  check_launch(op);
  const size_t threads = size_t(batches) * cols * 32;
  colsum_final_kernel<<<grid_1d(threads, 256, size_t(1) << 30), 256, 0, stream>>>(
      out, part.as<float>(), batches, cols, int(chunks), divisor);
  check_launch(op);
}

}  // namespace cuda
}  // namespace ck
