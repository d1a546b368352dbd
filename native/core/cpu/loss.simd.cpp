// Vector losses: softmax cross-entropy per row (log-sum-exp), MSE elementwise. Binary
// cross-entropy needs log/log1p per element and stays in scalar math (it is one small output
// layer); accuracy is a row-wise argmax.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "simd_kernels.h"
#include "../thread_pool.h"

namespace ck {
namespace CK_ISA_NS {

namespace {

constexpr int L = Vec::kLanes;


size_t row_grain(size_t cols) { return 8192 / (cols + 1) + 1; }

}  // namespace

// With smoothing s the target is t' = (1 - s) t + s / cols, so the loss is (1 - s) times the
// plain one plus s * (lse - mean(x)), sum(t') = (1 - s) sum(t) + s, and dx = p sum(t') - t'.
void softmax_xent(float* loss, float* dx, const float* logits, const float* target, size_t rows,
                  size_t cols, LabelMode mode, float smoothing, float grad_scale) {
  const float keep = 1.f - smoothing, spread = smoothing / float(cols);
  parallel_for(rows, row_grain(cols), [&](size_t b, size_t e, int) {
    for (size_t r = b; r < e; ++r) {
      const float* x = logits + r * cols;
      float mx = x[0];
      for (size_t c = 1; c < cols; ++c) mx = x[c] > mx ? x[c] : mx;
      Vec mv = Vec::set1(mx), sum = Vec::zero(), xsum = Vec::zero();
      for (size_t c = 0; c < cols; c += L) {
        size_t left = cols - c;
        Vec xc = load_n(x + c, left);
        xsum = xsum + xc;  // inactive lanes load 0
        Vec ev = exp(xc - mv);
        // Inactive lanes of a partial load hold exp(-mx): mask them out of the sum.
        sum = sum + (left >= size_t(L) ? ev : select_gt(Vec::set1(float(left)), lane_index(), ev, Vec::zero()));
      }
      float lse = mx + std::log(sum.reduce_add());
      float l = 0.f, tsum = 0.f;
      bool sparse = mode == LabelMode::Sparse;
      bool valid = !sparse || (target[r] >= 0.f && target[r] < float(cols));
      size_t label = sparse && valid ? size_t(target[r]) : 0;
      if (sparse) {
        if (valid) l = lse - x[label], tsum = 1.f;
      } else {
        const float* t = target + r * cols;
        Vec lv = Vec::zero(), tv = Vec::zero(), lsev = Vec::set1(lse);
        for (size_t c = 0; c < cols; c += L) {
          size_t left = cols - c;
          Vec tc = load_n(t + c, left);
          lv = fmadd(tc, lsev - load_n(x + c, left), lv);
          tv = tv + tc;
        }
        l = lv.reduce_add(), tsum = tv.reduce_add();
      }
      if (smoothing != 0.f) {
        l = keep * l + smoothing * (lse - xsum.reduce_add() / float(cols));
        tsum = keep * tsum + smoothing;
      }
      loss[r] = l;
      if (!dx) continue;
      Vec lsev = Vec::set1(lse), ts = Vec::set1(tsum), scale = Vec::set1(grad_scale);
      Vec keepv = Vec::set1(keep), spreadv = Vec::set1(spread);
      float* d = dx + r * cols;
      for (size_t c = 0; c < cols; c += L) {
        size_t left = cols - c;
        Vec p = exp(load_n(x + c, left) - lsev) * ts;
        Vec t = sparse ? Vec::zero() : load_n(target + r * cols + c, left);
        store_n(d + c, (p - fmadd(t, keepv, spreadv)) * scale, left);
      }
      if (sparse && valid) d[label] -= keep * grad_scale;
    }
  });
}

void binary_xent(float* loss, float* dx, const float* input, const float* target, size_t rows,
                 size_t cols, bool from_logits, float grad_scale) {
  const float lo = 1e-7f, hi = 1.f - 1e-7f;
  parallel_for(rows, row_grain(cols), [&](size_t b, size_t e, int) {
    for (size_t r = b; r < e; ++r) {
      double l = 0;
      for (size_t c = 0; c < cols; ++c) {
        size_t i = r * cols + c;
        float x = input[i], t = target[i], g;
        if (from_logits) {
          l += (x > 0.f ? x : 0.f) - x * t + std::log1p(std::exp(-std::fabs(x)));
          float s = x >= 0 ? 1.f / (1.f + std::exp(-x)) : std::exp(x) / (1.f + std::exp(x));
          g = s - t;
        } else {
          float p = x < lo ? lo : (x > hi ? hi : x);
          l -= t * std::log(p) + (1 - t) * std::log(1 - p);
          g = (x > lo && x < hi) ? (p - t) / (p * (1 - p)) : 0.f;
        }
        if (dx) dx[i] = g * grad_scale / float(cols);
      }
      loss[r] = float(l / double(cols));
    }
  });
}

void mse(float* loss, float* dx, const float* y, const float* target, size_t rows, size_t cols,
         float grad_scale) {
  parallel_for(rows, row_grain(cols), [&](size_t b, size_t e, int) {
    Vec k = Vec::set1(2.f / float(cols) * grad_scale);
    for (size_t r = b; r < e; ++r) {
      Vec acc = Vec::zero();
      for (size_t c = 0; c < cols; c += L) {
        size_t left = cols - c, i = r * cols + c;
        Vec d = load_n(y + i, left) - load_n(target + i, left);
        acc = fmadd(d, d, acc);
        if (dx) store_n(dx + i, d * k, left);
      }
      loss[r] = acc.reduce_add() / float(cols);
    }
  });
}

void weight_rows(float* loss, float* dx, const float* weights, size_t rows, size_t cols,
                 size_t rows_per_weight) {
  parallel_for(rows, row_grain(cols), [&](size_t b, size_t e, int) {
    for (size_t r = b; r < e; ++r) {
      const float w = weights[r / rows_per_weight];
      loss[r] *= w;
      if (!dx) continue;
      const Vec vw = Vec::set1(w);
      float* row = dx + r * cols;
      for (size_t c = 0; c < cols; c += size_t(Vec::kLanes)) {
        const size_t k = std::min(cols - c, size_t(Vec::kLanes));
        store_n(row + c, load_n(row + c, k) * vw, k);
      }
    }
  });
}

size_t accuracy_count(const float* pred, const float* target, size_t rows, size_t cols,
                      LabelMode mode, float threshold) {
  size_t correct = 0;
  for (size_t r = 0; r < rows; ++r) {
    if (cols == 1) {
      correct += (pred[r] > threshold) == (target[r] > 0.5f);
      continue;
    }
    const float* p = pred + r * cols;
    size_t best = 0, want = 0;
    for (size_t c = 1; c < cols; ++c) best = p[c] > p[best] ? c : best;
    if (mode == LabelMode::Sparse) {
      want = target[r] >= 0.f ? size_t(target[r]) : cols;  // a negative id matches nothing
    } else {
      const float* t = target + r * cols;
      for (size_t c = 1; c < cols; ++c) want = t[c] > t[want] ? c : want;
    }
    correct += best == want;
  }
  return correct;
}

void huber(float* loss, float* dx, const float* y, const float* target, size_t rows, size_t cols,
           float delta, float grad_scale) {
  parallel_for(rows, row_grain(cols), [&](size_t b, size_t e, int) {
    const Vec dv = Vec::set1(delta), ndv = Vec::set1(-delta), half = Vec::set1(0.5f);
    const Vec k = Vec::set1(grad_scale / float(cols));
    for (size_t r = b; r < e; ++r) {
      Vec acc = Vec::zero();
      for (size_t c = 0; c < cols; c += L) {
        size_t left = cols - c, i = r * cols + c;
        Vec d = load_n(y + i, left) - load_n(target + i, left);  // inactive lanes: 0
        // q = clamp(d, -delta, delta): the loss is 0.5 q^2 + delta (|d| - |q|).
        Vec q = min(max(d, ndv), dv);
        Vec lin = max(d, Vec::zero() - d) - max(q, Vec::zero() - q);
        acc = acc + fmadd(half * q, q, dv * lin);
        if (dx) store_n(dx + i, q * k, left);
      }
      loss[r] = acc.reduce_add() / float(cols);
    }
  });
}

void kl_divergence(float* loss, float* dx, const float* p, const float* target, size_t rows,
                   size_t cols, float grad_scale) {
  const float lo = 1e-7f;
  parallel_for(rows, row_grain(cols), [&](size_t b, size_t e, int) {
    for (size_t r = b; r < e; ++r) {
      double l = 0;
      for (size_t c = 0; c < cols; ++c) {
        size_t i = r * cols + c;
        float t = std::min(std::max(target[i], lo), 1.f), q = std::min(std::max(p[i], lo), 1.f);
        l += double(t) * std::log(double(t) / double(q));
        if (dx) dx[i] = p[i] >= lo && p[i] <= 1.f ? -t / q * grad_scale : 0.f;
      }
      loss[r] = float(l);
    }
  });
}

size_t top_k_count(const float* pred, const float* target, size_t rows, size_t cols,
                   LabelMode mode, int k) {
  size_t hits = 0;
  for (size_t r = 0; r < rows; ++r) {
    size_t want = 0;
    if (mode == LabelMode::Sparse) {
      if (!(target[r] >= 0.f && target[r] < float(cols))) continue;
      want = size_t(target[r]);
    } else {
      const float* t = target + r * cols;
      for (size_t c = 1; c < cols; ++c) want = t[c] > t[want] ? c : want;
    }
    const float* p = pred + r * cols;
    if (p[want] != p[want]) continue;  // NaN
    // Lanes past the row's end load 0 and are masked out by the lane index.
    const Vec pw = Vec::set1(p[want]), one = Vec::set1(1.f);
    Vec above = Vec::zero();
    for (size_t c = 0; c < cols; c += L) {
      size_t left = cols - c;
      Vec active = select_gt(Vec::set1(float(left)), lane_index(), one, Vec::zero());
      above = above + select_gt(load_n(p + c, left), pw, active, Vec::zero());
    }
    hits += above.reduce_add() < float(k);
  }
  return hits;
}

namespace {
constexpr float kNegInf = -1e10f;  // Keras's NEG_INF, what _filter_top_k leaves outside the top k
float rank_key(float v) { return v == v ? v : -INFINITY; }  // a NaN ranks below every number

// Keras's _filter_top_k of one row into `out`: the row's k largest values (the lower column first
// among equal ones) kept, the others kNegInf. `keys` is scratch of cols floats.
void filter_top_k(float* out, const float* row, size_t cols, int k, std::vector<float>& keys) {
  keys.resize(cols);
  for (size_t c = 0; c < cols; ++c) keys[c] = rank_key(row[c]);
  std::nth_element(keys.begin(), keys.begin() + (k - 1), keys.end(), std::greater<float>());
  const float kth = keys[size_t(k - 1)];
  size_t ties = size_t(k);  // the places left for values equal to the k-th largest
  for (size_t c = 0; c < cols; ++c) ties -= rank_key(row[c]) > kth;
  for (size_t c = 0; c < cols; ++c) {
    const float key = rank_key(row[c]);
    bool kept = key > kth;
    if (key == kth && ties > 0) kept = true, --ties;
    out[c] = kept ? row[c] : kNegInf;
  }
}
}  // namespace

// One pass over the values: each falls in the bucket of how many thresholds lie below it (a
// binary search), and the counts at threshold i are the buckets above i. With top_k, each row is
// filtered first (a k below cols; at cols every value is kept).
void threshold_counts(double* counts, const float* pred, const float* target, size_t rows, size_t cols,
                      int class_id, int top_k, const float* thresholds, size_t count) {
  std::vector<uint64_t> pos(count + 1, 0), neg(count + 1, 0);
  auto bucket = [&](float v, float label) {
    // pred > thresholds[j] exactly for j below the first threshold >= pred (none for NaN).
    const size_t below = v == v ? size_t(std::lower_bound(thresholds, thresholds + count, v) - thresholds) : 0;
    (label != 0.f ? pos : neg)[below] += 1;
  };
  const bool filtered = top_k > 0 && size_t(top_k) < cols;
  std::vector<float> row, keys;
  if (filtered) row.resize(cols);
  for (size_t r = 0; r < rows; ++r) {
    const float* p = pred + r * cols;
    if (filtered) {
      filter_top_k(row.data(), p, cols, top_k, keys);
      p = row.data();
    }
    // Every value of the row, or one column's.
    const size_t from = class_id >= 0 ? size_t(class_id) : 0, to = class_id >= 0 ? from + 1 : cols;
    for (size_t c = from; c < to; ++c) bucket(p[c], target[r * cols + c]);
  }
  uint64_t tp = 0, fp = 0, all_pos = 0, all_neg = 0;
  for (size_t j = 0; j <= count; ++j) all_pos += pos[j], all_neg += neg[j];
  for (size_t t = count; t-- > 0;) {
    tp += pos[t + 1];
    fp += neg[t + 1];
    counts[4 * t] += double(tp);
    counts[4 * t + 1] += double(fp);
    counts[4 * t + 2] += double(all_neg - fp);
    counts[4 * t + 3] += double(all_pos - tp);
  }
}

// tf.math.confusion_matrix of the rows' labels and predictions (see kernel_list.inc).
void confusion_matrix_counts(double* counts, const float* pred, const float* target, size_t rows, size_t cols,
                             LabelMode mode) {
  const size_t classes = cols == 1 ? 2 : cols;
  auto first_max = [cols](const float* v) {
    size_t best = 0;
    for (size_t c = 1; c < cols; ++c) best = v[c] > v[best] ? c : best;
    return best;
  };
  for (size_t r = 0; r < rows; ++r) {
    size_t label, predicted;
    if (cols == 1) {
      label = target[r] > 0.5f, predicted = pred[r] > 0.5f;
    } else {
      predicted = first_max(pred + r * cols);
      if (mode == LabelMode::Sparse) {
        if (!(target[r] >= 0.f && target[r] < float(cols))) continue;
        label = size_t(target[r]);
      } else {
        label = first_max(target + r * cols);
      }
    }
    counts[label * classes + predicted] += 1;
  }
}

}  // namespace CK_ISA_NS
}  // namespace ck
