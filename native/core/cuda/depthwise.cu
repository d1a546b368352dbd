// Depthwise convolution in TensorFlow's layout (w [R,S,C,M], output channel k = c*M + m):
//   forward      y[n,p,q,k]  = act(b[k] + sum_{r,s} x[n, h(p,r), w(q,s), c] * w[r,s,c,m])
//   data grad    dx[n,h,w,c] = sum over the taps (r,s) reading (h,w) from output (p,q) of
//                              sum_m dy[n,p,q,c*M+m] * w[r,s,c,m]
//   filter grad  dw[r,s,c,m] = sum_{n,p,q} x[n, h(p,r), w(q,s), c] * dy[n,p,q,k]; db = sum of dy
// The forward and data gradient run one thread per output cell and add in the reference's order
// (the data gradient visits its taps by increasing output pixel, as the reference's scatter
// does). The filter gradient sums fixed pixel chunks per block, then the chunk partials in order.
#include <algorithm>

#include "gemm.cuh"
#include "internal.h"

namespace ck {
namespace cuda {

namespace {

__device__ __forceinline__ bool inside(int h, int w, int H, int W) {
  return unsigned(h) < unsigned(H) && unsigned(w) < unsigned(W);
}

template <class I>
__global__ void depthwise_fwd_kernel(float* y, const float* x, const float* w, const float* b,
                                     ConvParams p, int M, int relu, I total) {
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += I(gridDim.x) * blockDim.x) {
    const Cell at = cell_of(i, p.P, p.Q, p.K);
    const int k = at.c, oq = at.col, op = at.row, n = at.n;
    const int c = k / M;
    const float* xn = x + size_t(n) * p.H * p.W * p.C + c;
    float acc = 0.f;
    for (int r = 0; r < p.R; ++r) {
      const int h = op * p.stride_h - p.pad_h + r * p.dil_h;
      for (int s = 0; s < p.S; ++s) {
        const int wi = oq * p.stride_w - p.pad_w + s * p.dil_w;
        if (!inside(h, wi, p.H, p.W)) continue;
        acc += __ldg(xn + (size_t(h) * p.W + wi) * p.C) *
               __ldg(w + (size_t(r) * p.S + s) * p.K + k);
      }
    }
    float v = acc + (b ? __ldg(b + k) : 0.f);
    if (relu && !(v > 0.f)) v = 0.f;
    y[i] = v;
  }
}

// The output position o (a row p or column q) whose tap `tap` reads input position pos
// (o * stride - pad + tap * dil == pos), or -1 when there is none.
__device__ __forceinline__ int reading_output(int pos, int pad, int tap, int dil, int stride,
                                              int outs) {
  const int t = pos + pad - tap * dil;
  if (t < 0 || t % stride != 0) return -1;
  const int o = t / stride;
  return o < outs ? o : -1;
}

template <class I>
__global__ void depthwise_dgrad_kernel(float* dx, const float* dy, const float* w, ConvParams p,
                                       int M, I total) {
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += I(gridDim.x) * blockDim.x) {
    const Cell at = cell_of(i, p.H, p.W, p.C);
    const int c = at.c, wi = at.col, h = at.row, n = at.n;
    const float* dyn = dy + size_t(n) * p.P * p.Q * p.K + size_t(c) * M;
    float acc = 0.f;
    for (int r = p.R - 1; r >= 0; --r) {
      const int op = reading_output(h, p.pad_h, r, p.dil_h, p.stride_h, p.P);
      if (op < 0) continue;
      for (int s = p.S - 1; s >= 0; --s) {
        const int oq = reading_output(wi, p.pad_w, s, p.dil_w, p.stride_w, p.Q);
        if (oq < 0) continue;
        const float* g = dyn + (size_t(op) * p.Q + oq) * p.K;
        const float* wt = w + (size_t(r) * p.S + s) * p.K + size_t(c) * M;
        float sum = 0.f;
        for (int m = 0; m < M; ++m) sum += __ldg(g + m) * __ldg(wt + m);
        acc += sum;
      }
    }
    dx[i] = acc;
  }
}

constexpr int kColTile = 32, kPixLanes = 8, kPixPerChunk = 1024, kMaxChunks = 1024;

// Block (32 output channels, 8 pixel lanes) of tap blockIdx.z sums pixels
// [chunk * pix_per, ...): the lanes stride over them, then merge in lane order. Writes
// dst[(tap * chunks + chunk) * K + k] (with one chunk, that is dw itself).
__global__ void depthwise_wgrad_partial_kernel(float* dst, const float* dy, const float* x,
                                               ConvParams p, int M, int pix_per, int chunks) {
  __shared__ float lanes[kPixLanes][kColTile];
  const int k = blockIdx.x * kColTile + threadIdx.x, chunk = blockIdx.y, tap = blockIdx.z;
  const int r = tap / p.S, s = tap % p.S;
  const int pixels = p.N * p.P * p.Q;
  float acc = 0.f;
  if (k < p.K) {
    const int c = k / M;
    const int m1 = min(pixels, (chunk + 1) * pix_per);
    for (int m = chunk * pix_per + threadIdx.y; m < m1; m += kPixLanes) {
      const int oq = m % p.Q, np = m / p.Q, op = np % p.P, n = np / p.P;
      const int h = op * p.stride_h - p.pad_h + r * p.dil_h;
      const int wi = oq * p.stride_w - p.pad_w + s * p.dil_w;
      if (!inside(h, wi, p.H, p.W)) continue;
      acc += __ldg(x + ((size_t(n) * p.H + h) * p.W + wi) * p.C + c) *
             __ldg(dy + size_t(m) * p.K + k);
    }
  }
  lanes[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y != 0 || k >= p.K) return;
  float sum = lanes[0][threadIdx.x];
#pragma unroll
  for (int l = 1; l < kPixLanes; ++l) sum += lanes[l][threadIdx.x];
  dst[(size_t(tap) * chunks + chunk) * p.K + k] = sum;
}

// Returns the depthwise multiplier M = K / C.
int check_depthwise(const ConvParams& p, const char* op) {
  if (p.N < 0 || p.H < 0 || p.W < 0 || p.C < 1 || p.K < 0 || p.R < 0 || p.S < 0 || p.P < 0 ||
      p.Q < 0 || p.stride_h < 1 || p.stride_w < 1 || p.dil_h < 1 || p.dil_w < 1 ||
      p.K % p.C != 0) {
    throw_error(ErrorKind::Value, std::string(op) + ": invalid depthwise convolution parameters");
  }
  require_int_range(size_t(p.N) * p.P * p.Q, op, "N*P*Q");
  require_int_range(size_t(p.N) * p.H * p.W, op, "N*H*W");
  require_int_range(size_t(p.R) * p.S * p.K, op, "R*S*K");
  return p.K / p.C;
}

}  // namespace

void depthwise_conv2d_fwd(float* y, const float* x, const float* w, const float* b,
                          const ConvParams& p, Act act, void* stream) {
  const bool relu = epilogue_relu(act, "depthwiseConv2d");
  const int M = check_depthwise(p, "depthwiseConv2d");
  launch_cells(p.y_size(), p.y_size(), "depthwiseConv2d", [&](auto total, unsigned grid) {
    depthwise_fwd_kernel<decltype(total)><<<grid, 256, 0, as_stream(stream)>>>(
        y, x, w, b, p, M, relu ? 1 : 0, total);
  });
  epilogue_rest(y, p.y_size(), act, stream);
}

void depthwise_conv2d_bwd_data(float* dx, const float* dy, const float* w, const ConvParams& p,
                               void* stream) {
  const int M = check_depthwise(p, "depthwiseConv2dGrad (data)");
  launch_cells(p.x_size(), p.x_size(), "depthwiseConv2dGrad (data)", [&](auto total, unsigned grid) {
    depthwise_dgrad_kernel<decltype(total)><<<grid, 256, 0, as_stream(stream)>>>(dx, dy, w, p, M,
                                                                               total);
  });
}

void depthwise_conv2d_bwd_filter(float* dw, float* db, const float* dy, const float* x,
                                 const ConvParams& p, void* stream) {
  const char* op = "depthwiseConv2dGrad (filter)";
  const int M = check_depthwise(p, op);
  const int pixels = p.N * p.P * p.Q, taps = p.R * p.S;
  cudaStream_t s = as_stream(stream);
  if (db && p.K > 0) {
    column_sums(db, dy, 1, size_t(pixels), p.K, 1.f, s, "depthwiseConv2dGrad (bias)");
  }
  if (taps == 0 || p.K == 0) return;
  if (taps > 65535) require_int_range(size_t(-1), op, "R*S");
  require_int_range(size_t(pixels) + kPixPerChunk, op, "N*P*Q");  // the kernel's pixel loop
  // Chunks of about kPixPerChunk pixels, at most kMaxChunks and 64 MiB of partials.
  const long long max_chunks = std::max(1LL, (16LL << 20) / (1LL * taps * p.K));
  const int chunks = int(std::max(1LL, std::min({(long long)kMaxChunks, max_chunks,
                                                 (pixels + kPixPerChunk - 1LL) / kPixPerChunk})));
  const int pix_per = std::max(1, (pixels + chunks - 1) / chunks);
  dim3 block(kColTile, kPixLanes);
  dim3 grid(unsigned((p.K + kColTile - 1) / kColTile), unsigned(chunks), unsigned(taps));
  if (chunks == 1) {
    depthwise_wgrad_partial_kernel<<<grid, block, 0, s>>>(dw, dy, x, p, M, pix_per, 1);
    check_launch(op);
    return;
  }
  Scratch part(size_t(taps) * chunks * p.K * sizeof(float), s);
  depthwise_wgrad_partial_kernel<<<grid, block, 0, s>>>(part.as<float>(), dy, x, p, M, pix_per,
                                                        chunks);
  check_launch(op);
  column_sums(dw, part.as<float>(), taps, size_t(chunks), p.K, 1.f, s, op);
}

}  // namespace cuda
}  // namespace ck
