// Scalar reference losses (per-row loss, gradient of the mean scaled by grad_scale) and the
// accuracy count. Targets: Dense rows [rows, cols] or Sparse class ids [rows].
#include <algorithm>
#include <cmath>

#include "reference.h"

namespace ck {
namespace ref {

namespace {
float target_at(const float* t, size_t r, size_t c, size_t cols, LabelMode mode) {
  if (mode == LabelMode::Sparse) return t[r] >= 0.f && size_t(t[r]) == c ? 1.f : 0.f;
  return t[r * cols + c];
}
}  // namespace

// loss = logsumexp(x) * sum(t') - sum(t' * x); dx = softmax(x) * sum(t') - t', with the
// smoothed target t' = t * (1 - smoothing) + smoothing / cols.
void softmax_xent(float* loss, float* dx, const float* logits, const float* target, size_t rows,
                  size_t cols, LabelMode mode, float smoothing, float grad_scale) {
  auto smoothed = [&](size_t r, size_t c) {
    return double(target_at(target, r, c, cols, mode)) * (1.0 - smoothing) + double(smoothing) / double(cols);
  };
  for (size_t r = 0; r < rows; ++r) {
    const float* x = logits + r * cols;
    float m = x[0];
    for (size_t c = 1; c < cols; ++c) m = std::max(m, x[c]);
    double sum = 0;
    for (size_t c = 0; c < cols; ++c) sum += std::exp(double(x[c]) - m);
    double lse = m + std::log(sum);
    double l = 0, tsum = 0;
    for (size_t c = 0; c < cols; ++c) {
      double t = smoothed(r, c);
      l += t * (lse - x[c]);
      tsum += t;
    }
    loss[r] = float(l);
    if (dx) {
      for (size_t c = 0; c < cols; ++c) {
        double p = std::exp(double(x[c]) - lse);
        dx[r * cols + c] = float((p * tsum - smoothed(r, c)) * grad_scale);
      }
    }
  }
}

void binary_xent(float* loss, float* dx, const float* input, const float* target, size_t rows,
                 size_t cols, bool from_logits, float grad_scale) {
  const float lo = 1e-7f, hi = 1.f - 1e-7f;
  for (size_t r = 0; r < rows; ++r) {
    double l = 0;
    for (size_t c = 0; c < cols; ++c) {
      size_t i = r * cols + c;
      float x = input[i], t = target[i];
      float g;
      if (from_logits) {
        l += std::max(x, 0.f) - x * t + std::log1p(std::exp(-std::fabs(x)));
        float s = x >= 0 ? 1.f / (1.f + std::exp(-x)) : std::exp(x) / (1.f + std::exp(x));
        g = s - t;
      } else {
        float p = std::min(std::max(x, lo), hi);
        l -= t * std::log(p) + (1 - t) * std::log(1 - p);
        g = (x > lo && x < hi) ? (p - t) / (p * (1 - p)) : 0.f;
      }
      if (dx) dx[i] = g * grad_scale / float(cols);
    }
    loss[r] = float(l / double(cols));
  }
}

void mse(float* loss, float* dx, const float* y, const float* target, size_t rows, size_t cols,
         float grad_scale) {
  for (size_t r = 0; r < rows; ++r) {
    double l = 0;
    for (size_t c = 0; c < cols; ++c) {
      size_t i = r * cols + c;
      float d = y[i] - target[i];
      l += double(d) * d;
      if (dx) dx[i] = 2.f * d / float(cols) * grad_scale;
    }
    loss[r] = float(l / double(cols));
  }
}

size_t accuracy_count(const float* pred, const float* target, size_t rows, size_t cols,
                      LabelMode mode, float threshold) {
  size_t correct = 0;
  for (size_t r = 0; r < rows; ++r) {
    if (cols == 1) {
      bool p = pred[r] > threshold, t = target[r] > 0.5f;
      correct += p == t;
      continue;
    }
    size_t best = 0;
    for (size_t c = 1; c < cols; ++c) if (pred[r * cols + c] > pred[r * cols + best]) best = c;
    size_t want = 0;
    if (mode == LabelMode::Sparse) {
      want = target[r] >= 0.f ? size_t(target[r]) : cols;  // a negative id matches nothing
    } else {
      for (size_t c = 1; c < cols; ++c) if (target[r * cols + c] > target[r * cols + want]) want = c;
    }
    correct += best == want;
  }
  return correct;
}

void weight_rows(float* loss, float* dx, const float* weights, size_t rows, size_t cols,
                 size_t rows_per_weight) {
  for (size_t r = 0; r < rows; ++r) {
    const float w = weights[r / rows_per_weight];
    loss[r] *= w;
    if (dx) {
      for (size_t c = 0; c < cols; ++c) dx[r * cols + c] *= w;
    }
  }
}

void huber(float* loss, float* dx, const float* y, const float* target, size_t rows, size_t cols,
           float delta, float grad_scale) {
  for (size_t r = 0; r < rows; ++r) {
    double l = 0;
    for (size_t c = 0; c < cols; ++c) {
      size_t i = r * cols + c;
      double d = double(y[i]) - double(target[i]), a = std::fabs(d);
      l += a <= delta ? 0.5 * d * d : double(delta) * (a - 0.5 * delta);
      if (dx) dx[i] = float(std::min(std::max(d, -double(delta)), double(delta)) / double(cols) * grad_scale);
    }
    loss[r] = float(l / double(cols));
  }
}

void kl_divergence(float* loss, float* dx, const float* p, const float* target, size_t rows,
                   size_t cols, float grad_scale) {
  const double lo = 1e-7;
  for (size_t r = 0; r < rows; ++r) {
    double l = 0;
    for (size_t c = 0; c < cols; ++c) {
      size_t i = r * cols + c;
      double t = std::min(std::max(double(target[i]), lo), 1.0);
      double q = std::min(std::max(double(p[i]), lo), 1.0);
      l += t * std::log(t / q);
      if (dx) dx[i] = double(p[i]) >= lo && double(p[i]) <= 1.0 ? float(-t / q * grad_scale) : 0.f;
    }
    loss[r] = float(l);
  }
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
      for (size_t c = 1; c < cols; ++c) if (target[r * cols + c] > target[r * cols + want]) want = c;
    }
    const float* p = pred + r * cols;
    if (std::isnan(p[want])) continue;
    int above = 0;
    for (size_t c = 0; c < cols; ++c) above += p[c] > p[want];
    hits += above < k;
  }
  return hits;
}

namespace {
// Keras's _filter_top_k: whether row value c is among the row's top k (the k largest, the lower
// column first among equal ones; a NaN ranks as -inf), else the value counts as NEG_INF.
constexpr float kNegInf = -1e10f;
float rank_key(float v) { return v == v ? v : -INFINITY; }
bool in_top_k(const float* row, size_t cols, size_t c, int k) {
  const float v = rank_key(row[c]);
  size_t ahead = 0;
  for (size_t j = 0; j < cols; ++j) {
    const float u = rank_key(row[j]);
    ahead += u > v || (u == v && j < c);
  }
  return ahead < size_t(k);
}
}  // namespace

// One pass per threshold: the plain definition, against which the vector tables' one-pass
// bucketing is checked.
void threshold_counts(double* counts, const float* pred, const float* target, size_t rows, size_t cols,
                      int class_id, int top_k, const float* thresholds, size_t count) {
  for (size_t t = 0; t < count; ++t) {
    for (size_t r = 0; r < rows; ++r) {
      for (size_t c = 0; c < cols; ++c) {
        if (class_id >= 0 && c != size_t(class_id)) continue;
        const size_t i = r * cols + c;
        const float p = top_k > 0 && !in_top_k(pred + r * cols, cols, c, top_k) ? kNegInf : pred[i];
        const bool positive = p > thresholds[t], label = target[i] != 0.f;
        counts[4 * t + (label ? (positive ? 0 : 3) : (positive ? 1 : 2))] += 1;
      }
    }
  }
}

void confusion_matrix_counts(double* counts, const float* pred, const float* target, size_t rows, size_t cols,
                             LabelMode mode) {
  const size_t classes = cols == 1 ? 2 : cols;
  for (size_t r = 0; r < rows; ++r) {
    size_t label = 0, predicted = 0;
    if (cols == 1) {
      label = target[r] > 0.5f, predicted = pred[r] > 0.5f;
    } else {
      for (size_t c = 1; c < cols; ++c) if (pred[r * cols + c] > pred[r * cols + predicted]) predicted = c;
      if (mode == LabelMode::Sparse) {
        if (!(target[r] >= 0.f && target[r] < float(cols))) continue;
        label = size_t(target[r]);
      } else {
        for (size_t c = 1; c < cols; ++c) if (target[r * cols + c] > target[r * cols + label]) label = c;
      }
    }
    counts[label * classes + predicted] += 1;
  }
}

}  // namespace ref
}  // namespace ck
