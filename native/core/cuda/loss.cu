// Losses (one warp per row, warp-shuffle reductions), the accuracy count (integer counts:
// order-independent, so exact) and the device-side accumulators the executor totals an epoch's
// losses and counts in (sum_into, count_into: double, in an order fixed by n alone).
#include "cuda_common.cuh"
#include "internal.h"

namespace ck {
namespace cuda {

namespace {

constexpr int kRowWarps = 8;  // rows per 256-thread block

#define CK_ROWS_PER_WARP(r, rows)                                                   \
  for (size_t r = size_t(blockIdx.x) * kRowWarps + threadIdx.x / 32; r < (rows);    \
       r += size_t(gridDim.x) * kRowWarps)

__device__ __forceinline__ float target_at(const float* t, size_t r, size_t c, size_t cols,
                                           LabelMode mode) {
  if (mode == LabelMode::Sparse) {
    float tr = t[r];
    return tr >= 0.f && size_t(tr) == c ? 1.f : 0.f;
  }
  return t[r * cols + c];
}

__global__ void softmax_xent_kernel(float* loss, float* dx, const float* logits,
                                    const float* target, size_t rows, size_t cols,
                                    LabelMode mode, float smoothing, float grad_scale) {
  const int lane = threadIdx.x % 32;
  const float keep = 1.f - smoothing, spread = smoothing / float(cols);
  CK_ROWS_PER_WARP(r, rows) {
    const float* x = logits + r * cols;
    float m = -INFINITY;
    for (size_t c = lane; c < cols; c += 32) m = fmaxf(m, x[c]);
    m = warp_max(m);
    float s = 0.f;
    for (size_t c = lane; c < cols; c += 32) s += expf(x[c] - m);
    s = warp_sum(s);
    const float lse = m + logf(s);
    float l = 0.f, tsum = 0.f;
    for (size_t c = lane; c < cols; c += 32) {
      float t = target_at(target, r, c, cols, mode) * keep + spread;  // Keras's label smoothing
      l += t * (lse - x[c]);
      tsum += t;
    }
    l = warp_sum(l);
    tsum = warp_sum(tsum);
    if (lane == 0) loss[r] = l;
    if (dx) {
      for (size_t c = lane; c < cols; c += 32) {
        float p = expf(x[c] - lse);
        dx[r * cols + c] = (p * tsum - (target_at(target, r, c, cols, mode) * keep + spread)) * grad_scale;
      }
    }
  }
}

__global__ void binary_xent_kernel(float* loss, float* dx, const float* input,
                                   const float* target, size_t rows, size_t cols,
                                   bool from_logits, float grad_scale) {
  const float lo = 1e-7f, hi = 1.f - 1e-7f;
  const int lane = threadIdx.x % 32;
  CK_ROWS_PER_WARP(r, rows) {
    float l = 0.f;
    for (size_t c = lane; c < cols; c += 32) {
      const size_t i = r * cols + c;
      const float x = input[i], t = target[i];
      float g;
      if (from_logits) {
        l += fmaxf(x, 0.f) - x * t + log1pf(expf(-fabsf(x)));
        float s = x >= 0.f ? 1.f / (1.f + expf(-x)) : expf(x) / (1.f + expf(x));
        g = s - t;
      } else {
        float p = fminf(fmaxf(x, lo), hi);
        l -= t * logf(p) + (1.f - t) * logf(1.f - p);
        g = (x > lo && x < hi) ? (p - t) / (p * (1.f - p)) : 0.f;
      }
      if (dx) dx[i] = g * grad_scale / float(cols);
    }
    l = warp_sum(l);
    if (lane == 0) loss[r] = l / float(cols);
  }
}

__global__ void mse_kernel(float* loss, float* dx, const float* y, const float* target,
                           size_t rows, size_t cols, float grad_scale) {
  const int lane = threadIdx.x % 32;
  CK_ROWS_PER_WARP(r, rows) {
    float l = 0.f;
    for (size_t c = lane; c < cols; c += 32) {
      const size_t i = r * cols + c;
      const float d = y[i] - target[i];
      l += d * d;
      if (dx) dx[i] = 2.f * d / float(cols) * grad_scale;
    }
    l = warp_sum(l);
    if (lane == 0) loss[r] = l / float(cols);
  }
}

__global__ void huber_kernel(float* loss, float* dx, const float* y, const float* target,
                             size_t rows, size_t cols, float delta, float grad_scale) {
  const int lane = threadIdx.x % 32;
  CK_ROWS_PER_WARP(r, rows) {
    float l = 0.f;
    for (size_t c = lane; c < cols; c += 32) {
      const size_t i = r * cols + c;
      const float d = y[i] - target[i], a = fabsf(d);
      l += a <= delta ? 0.5f * d * d : delta * (a - 0.5f * delta);
      if (dx) dx[i] = fminf(fmaxf(d, -delta), delta) / float(cols) * grad_scale;
    }
    l = warp_sum(l);
    if (lane == 0) loss[r] = l / float(cols);
  }
}

__global__ void kl_divergence_kernel(float* loss, float* dx, const float* p, const float* target,
                                     size_t rows, size_t cols, float grad_scale) {
  const float lo = 1e-7f;
  const int lane = threadIdx.x % 32;
  CK_ROWS_PER_WARP(r, rows) {
    float l = 0.f;
    for (size_t c = lane; c < cols; c += 32) {
      const size_t i = r * cols + c;
      const float t = fminf(fmaxf(target[i], lo), 1.f), q = fminf(fmaxf(p[i], lo), 1.f);
      l += t * logf(t / q);
      if (dx) dx[i] = p[i] >= lo && p[i] <= 1.f ? -t / q * grad_scale : 0.f;
    }
    l = warp_sum(l);
    if (lane == 0) loss[r] = l;
  }
}

__global__ void weight_rows_kernel(float* loss, float* dx, const float* weights, size_t rows,
                                   size_t cols, size_t rows_per_weight) {
  const size_t n = rows * cols;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const size_t r = i / cols;
    const float w = weights[r / rows_per_weight];
    if (dx) dx[i] *= w;
    if (i % cols == 0) loss[r] *= w;
  }
}

// First index of the row's maximum by the reference's scan (start at 0, take strictly greater):
// the first maximum over the non-NaN values, or 0 when element 0 is NaN.
__device__ __forceinline__ long long row_argmax(const float* row, size_t cols, int lane) {
  ArgMax a = argmax_none();
  for (size_t c = lane; c < cols; c += 32) a = argmax_take(a, row[c], (long long)c);
  a = warp_argmax(a);
  float first = row[0];
  return (first != first || a.i < 0) ? 0 : a.i;
}

__global__ void accuracy_kernel(unsigned long long* count, const float* pred, const float* target,
                                size_t rows, size_t cols, LabelMode mode, float threshold) {
  __shared__ unsigned int block_count;
  if (threadIdx.x == 0) block_count = 0;
  __syncthreads();
  const int lane = threadIdx.x % 32;
  unsigned int mine = 0;
  if (cols == 1) {
    for (size_t r = size_t(blockIdx.x) * blockDim.x + threadIdx.x; r < rows;
         r += size_t(gridDim.x) * blockDim.x) {
      bool p = pred[r] > threshold, t = target[r] > 0.5f;
      mine += p == t;
    }
  } else {
    CK_ROWS_PER_WARP(r, rows) {
      long long best = row_argmax(pred + r * cols, cols, lane);
      long long want;
      if (mode == LabelMode::Sparse) {
        float tr = target[r];
        want = tr >= 0.f ? (long long)tr : -1;
      } else {
        want = row_argmax(target + r * cols, cols, lane);
      }
      if (lane == 0) mine += best == want;
    }
  }
  if (mine) atomicAdd(&block_count, mine);
  __syncthreads();
  if (threadIdx.x == 0 && block_count) atomicAdd(count, (unsigned long long)block_count);
}

// One warp per row: the target class (the class id, or the target row's first maximum), then the
// classes scored strictly above it, counted across the lanes.
__global__ void top_k_kernel(unsigned long long* count, const float* pred, const float* target,
                             size_t rows, size_t cols, LabelMode mode, int k) {
  __shared__ unsigned int block_count;
  if (threadIdx.x == 0) block_count = 0;
  __syncthreads();
  const int lane = threadIdx.x % 32;
  unsigned int mine = 0;
  CK_ROWS_PER_WARP(r, rows) {
    long long want;
    if (mode == LabelMode::Sparse) {
      const float tr = target[r];
      want = tr >= 0.f && tr < float(cols) ? (long long)tr : -1;
    } else {
      want = row_argmax(target + r * cols, cols, lane);
    }
    if (want < 0) continue;
    const float* p = pred + r * cols;
    const float pw = p[want];
    if (pw != pw) continue;  // NaN
    float above = 0.f;  // exact: at most cols < 2^24
    for (size_t c = lane; c < cols; c += 32) above += p[c] > pw ? 1.f : 0.f;
    above = warp_sum(above);
    if (lane == 0) mine += above < float(k);
  }
  if (mine) atomicAdd(&block_count, mine);
  __syncthreads();
  if (threadIdx.x == 0 && block_count) atomicAdd(count, (unsigned long long)block_count);
}

constexpr float kNegInf = -1e10f;  // Keras's NEG_INF, what _filter_top_k leaves outside the top k

__device__ __forceinline__ float rank_key(float v) { return v == v ? v : -INFINITY; }

// Value c of a row as Keras's _filter_top_k leaves it: kept when fewer than k values rank ahead
// of it (larger, or equal in a lower column; a NaN ranks below every number), else kNegInf.
__device__ __forceinline__ float top_k_filtered(const float* row, size_t cols, size_t c, int k) {
  const float v = rank_key(row[c]);
  size_t ahead = 0;
  for (size_t j = 0; j < cols; ++j) {
    const float u = rank_key(row[j]);
    ahead += u > v || (u == v && j < c);
  }
  return ahead < size_t(k) ? row[c] : kNegInf;
}

// One block per threshold: integer counts (exact in any order), added to the double sums once.
// The values counted are n, `step` apart from `first` (every value, or one column's). With
// top_k > 0 each value is ranked within its row first (cols reads per value).
__global__ void threshold_counts_kernel(double* counts, const float* pred, const float* target,
                                        size_t n, size_t first, size_t step, size_t cols, int top_k,
                                        const float* thresholds) {
  __shared__ unsigned long long c[3];  // tp, fp, fn
  if (threadIdx.x < 3) c[threadIdx.x] = 0;
  __syncthreads();
  const float th = thresholds[blockIdx.x];
  unsigned long long tp = 0, fp = 0, fn = 0;
  for (size_t k = threadIdx.x; k < n; k += blockDim.x) {
    const size_t i = first + k * step;
    const float p = top_k > 0 ? top_k_filtered(pred + i / cols * cols, cols, i % cols, top_k) : pred[i];
    const bool positive = p > th, label = target[i] != 0.f;
    tp += positive && label;
    fp += positive && !label;
    fn += !positive && label;
  }
  if (tp) atomicAdd(&c[0], tp);
  if (fp) atomicAdd(&c[1], fp);
  if (fn) atomicAdd(&c[2], fn);
  __syncthreads();
  if (threadIdx.x == 0) {
    double* out = counts + 4 * size_t(blockIdx.x);
    out[0] += double(c[0]);
    out[1] += double(c[1]);
    out[2] += double(n - c[0] - c[1] - c[2]);
    out[3] += double(c[2]);
  }
}

// One warp per row (one thread per row for a single column): the row's cell of the matrix gets
// 1 (atomic adds of whole numbers into doubles: exact in any order).
__global__ void confusion_matrix_kernel(double* counts, const float* pred, const float* target,
                                        size_t rows, size_t cols, LabelMode mode) {
  if (cols == 1) {
    for (size_t r = size_t(blockIdx.x) * blockDim.x + threadIdx.x; r < rows; r += size_t(gridDim.x) * blockDim.x) {
      const size_t label = target[r] > 0.5f, predicted = pred[r] > 0.5f;
      atomicAdd(&counts[label * 2 + predicted], 1.0);
    }
    return;
  }
  const int lane = threadIdx.x % 32;
  CK_ROWS_PER_WARP(r, rows) {
    const long long predicted = row_argmax(pred + r * cols, cols, lane);
    long long label;
    if (mode == LabelMode::Sparse) {
      const float tr = target[r];
      label = tr >= 0.f && tr < float(cols) ? (long long)tr : -1;
    } else {
      label = row_argmax(target + r * cols, cols, lane);
    }
    if (lane == 0 && label >= 0) atomicAdd(&counts[size_t(label) * cols + size_t(predicted)], 1.0);
  }
}

constexpr int kSumThreads = 256;

// One block: thread t sums x[t], x[t + 256], ... in double; the warps' butterflies and then
// thread 0's pass over the warp totals fix the order by n alone.
__global__ void sum_into_kernel(double* acc, const float* x, size_t n) {
  __shared__ double warp_totals[kSumThreads / 32];
  double s = 0.0;
  for (size_t i = threadIdx.x; i < n; i += kSumThreads) s += double(x[i]);
  s = warp_sum(s);
  if (threadIdx.x % 32 == 0) warp_totals[threadIdx.x / 32] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0.0;
    for (int w = 0; w < kSumThreads / 32; ++w) total += warp_totals[w];
    *acc += total;
  }
}

__global__ void count_into_kernel(double* acc, const unsigned long long* count, double divisor) {
  *acc += double(*count) / divisor;
}

}  // namespace

void softmax_xent(float* loss, float* dx, const float* logits, const float* target, size_t rows,
                  size_t cols, LabelMode mode, float smoothing, float grad_scale, void* stream) {
  if (rows == 0 || cols == 0) return;
  softmax_xent_kernel<<<grid_1d(rows, kRowWarps), 256, 0, as_stream(stream)>>>(
      loss, dx, logits, target, rows, cols, mode, smoothing, grad_scale);
  check_launch("softmaxCrossEntropy");
}

void binary_xent(float* loss, float* dx, const float* input, const float* target, size_t rows,
                 size_t cols, bool from_logits, float grad_scale, void* stream) {
  if (rows == 0 || cols == 0) return;
  binary_xent_kernel<<<grid_1d(rows, kRowWarps), 256, 0, as_stream(stream)>>>(
      loss, dx, input, target, rows, cols, from_logits, grad_scale);
  check_launch("binaryCrossEntropy");
}

void mse(float* loss, float* dx, const float* y, const float* target, size_t rows, size_t cols,
         float grad_scale, void* stream) {
  if (rows == 0 || cols == 0) return;
  mse_kernel<<<grid_1d(rows, kRowWarps), 256, 0, as_stream(stream)>>>(loss, dx, y, target, rows,
                                                                      cols, grad_scale);
  check_launch("meanSquaredError");
}

void huber(float* loss, float* dx, const float* y, const float* target, size_t rows, size_t cols,
           float delta, float grad_scale, void* stream) {
  if (rows == 0 || cols == 0) return;
  huber_kernel<<<grid_1d(rows, kRowWarps), 256, 0, as_stream(stream)>>>(loss, dx, y, target, rows,
                                                                        cols, delta, grad_scale);
  check_launch("huber");
}

void kl_divergence(float* loss, float* dx, const float* p, const float* target, size_t rows,
                   size_t cols, float grad_scale, void* stream) {
  if (rows == 0 || cols == 0) return;
  kl_divergence_kernel<<<grid_1d(rows, kRowWarps), 256, 0, as_stream(stream)>>>(
      loss, dx, p, target, rows, cols, grad_scale);
  check_launch("kullbackLeiblerDivergence");
}

void weight_rows(float* loss, float* dx, const float* weights, size_t rows, size_t cols,
                 size_t rows_per_weight, void* stream) {
  if (rows == 0 || cols == 0) return;
  weight_rows_kernel<<<grid_1d(rows * cols, 256), 256, 0, as_stream(stream)>>>(loss, dx, weights, rows, cols,
                                                                              rows_per_weight);
  check_launch("sampleWeight");
}

void accuracy_count(uint64_t* count, const float* pred, const float* target, size_t rows,
                    size_t cols, LabelMode mode, float threshold, void* stream) {
  static_assert(sizeof(uint64_t) == sizeof(unsigned long long), "count width");
  cudaStream_t s = as_stream(stream);
  check(cudaMemsetAsync(count, 0, sizeof(uint64_t), s), "accuracy: cudaMemsetAsync");
  if (rows == 0 || cols == 0) return;
  const unsigned grid = cols == 1 ? grid_1d(rows, 256, 4096) : grid_1d(rows, kRowWarps, 4096);
  accuracy_kernel<<<grid, 256, 0, s>>>(reinterpret_cast<unsigned long long*>(count), pred, target,
                                       rows, cols, mode, threshold);
  check_launch("accuracy");
}

void top_k_count(uint64_t* count, const float* pred, const float* target, size_t rows, size_t cols,
                 LabelMode mode, int k, void* stream) {
  cudaStream_t s = as_stream(stream);
  check(cudaMemsetAsync(count, 0, sizeof(uint64_t), s), "topK: cudaMemsetAsync");
  if (rows == 0 || cols == 0) return;
  top_k_kernel<<<grid_1d(rows, kRowWarps, 4096), 256, 0, s>>>(reinterpret_cast<unsigned long long*>(count),
                                                              pred, target, rows, cols, mode, k);
  check_launch("topK");
}

void threshold_counts(double* counts, const float* pred, const float* target, size_t rows, size_t cols,
                      int class_id, int top_k, const float* thresholds, size_t count, void* stream) {
  if (count == 0) return;
  const size_t first = class_id >= 0 ? size_t(class_id) : 0, step = class_id >= 0 ? cols : 1;
  const size_t n = class_id >= 0 ? rows : rows * cols;
  // A k of cols or more keeps every value.
  const int filter = top_k > 0 && size_t(top_k) < cols ? top_k : 0;
  threshold_counts_kernel<<<unsigned(count), 256, 0, as_stream(stream)>>>(counts, pred, target, n, first, step, cols,
                                                                          filter, thresholds);
  check_launch("thresholdCounts");
}

void confusion_matrix_counts(double* counts, const float* pred, const float* target, size_t rows, size_t cols,
                             LabelMode mode, void* stream) {
  if (rows == 0 || cols == 0) return;
  const unsigned grid = cols == 1 ? grid_1d(rows, 256, 4096) : grid_1d(rows, kRowWarps, 4096);
  confusion_matrix_kernel<<<grid, 256, 0, as_stream(stream)>>>(counts, pred, target, rows, cols, mode);
  check_launch("confusionMatrix");
}

void sum_into(double* acc, const float* x, size_t n, void* stream) {
  if (n == 0) return;
  sum_into_kernel<<<1, kSumThreads, 0, as_stream(stream)>>>(acc, x, n);
  check_launch("sum_into");
}

void count_into(double* acc, const uint64_t* count, double divisor, void* stream) {
  count_into_kernel<<<1, 1, 0, as_stream(stream)>>>(
      acc, reinterpret_cast<const unsigned long long*>(count), divisor);
  check_launch("count_into");
}

}  // namespace cuda
}  // namespace ck
