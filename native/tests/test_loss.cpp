// Losses and accuracy: vector variants against the reference, the reference against finite
// differences and hand-computed values, sparse and dense labels agreeing, extreme logits.
#include <algorithm>
#include <cmath>
#include <random>
#include <tuple>

#include "kernel_check.h"

namespace {
std::vector<float> one_hot(const std::vector<float>& ids, size_t cols) {
  std::vector<float> t(ids.size() * cols, 0.f);
  for (size_t r = 0; r < ids.size(); ++r) t[r * cols + size_t(ids[r])] = 1.f;
  return t;
}
}  // namespace

TEST(vector_losses_match_reference) {
  std::mt19937 rng(8);
  const ck::CpuKernels& ref = ck::scalar_kernels();
  for (const ck::CpuKernels* k : cktest::vector_tables()) {
    for (auto [rows, cols] : {std::pair<size_t, size_t>{1, 1}, {5, 2}, {100, 10}, {33, 17}, {7, 40}}) {
      auto x = cktest::random_vector(rng, rows * cols, -8.f, 8.f);
      std::vector<float> ids(rows);
      for (auto& v : ids) v = float(rng() % cols);
      auto dense = one_hot(ids, cols);
      auto probs = cktest::random_vector(rng, rows * cols, 0.f, 1.f);
      std::vector<float> la(rows), lb(rows), ga(rows * cols), gb(rows * cols);
      for (bool sparse : {false, true}) {
        const float* t = sparse ? ids.data() : dense.data();
        ck::LabelMode mode = sparse ? ck::LabelMode::Sparse : ck::LabelMode::Dense;
        ref.softmax_xent(la.data(), ga.data(), x.data(), t, rows, cols, mode, 0.f, 0.5f);
        k->softmax_xent(lb.data(), gb.data(), x.data(), t, rows, cols, mode, 0.f, 0.5f);
        CHECK_ALL_CLOSE(lb.data(), la.data(), rows, 1e-5f, 1e-5f);
        CHECK_ALL_CLOSE(gb.data(), ga.data(), ga.size(), 1e-5f, 1e-6f);
        CHECK(ref.accuracy_count(x.data(), t, rows, cols, mode, 0.5f) == k->accuracy_count(x.data(), t, rows, cols, mode, 0.5f));
      }
      for (bool logits : {false, true}) {
        const float* in = logits ? x.data() : probs.data();
        ref.binary_xent(la.data(), ga.data(), in, dense.data(), rows, cols, logits, 0.25f);
        k->binary_xent(lb.data(), gb.data(), in, dense.data(), rows, cols, logits, 0.25f);
        CHECK_ALL_CLOSE(lb.data(), la.data(), rows, 1e-5f, 1e-6f);
        CHECK_ALL_CLOSE(gb.data(), ga.data(), ga.size(), 1e-5f, 1e-6f);
      }
      ref.mse(la.data(), ga.data(), x.data(), probs.data(), rows, cols, 0.25f);
      k->mse(lb.data(), gb.data(), x.data(), probs.data(), rows, cols, 0.25f);
      CHECK_ALL_CLOSE(lb.data(), la.data(), rows, 1e-5f, 1e-5f);
      CHECK_ALL_CLOSE(gb.data(), ga.data(), ga.size(), 1e-5f, 1e-6f);
    }
  }
}

// Per-row loss weights: one multiply per element, so the vector variants equal the reference
// exactly, with a weight shared by each run of rows_per_weight rows.
TEST(weight_rows_match_reference) {
  std::mt19937 rng(9);
  const ck::CpuKernels& ref = ck::scalar_kernels();
  for (const ck::CpuKernels* k : cktest::vector_tables()) {
    for (auto [rows, cols, per] : {std::tuple<size_t, size_t, size_t>{1, 1, 1}, {12, 10, 3}, {33, 17, 1}, {8, 40, 4}}) {
      auto la = cktest::random_vector(rng, rows), ga = cktest::random_vector(rng, rows * cols);
      auto w = cktest::random_vector(rng, rows / per, 0.f, 2.f);
      const auto g0 = ga;
      auto lb = la, gb = ga, lc = la;
      ref.weight_rows(la.data(), ga.data(), w.data(), rows, cols, per);
      k->weight_rows(lb.data(), gb.data(), w.data(), rows, cols, per);
      CHECK_ALL_CLOSE(lb.data(), la.data(), rows, 0.f, 0.f);
      CHECK_ALL_CLOSE(gb.data(), ga.data(), rows * cols, 0.f, 0.f);
      k->weight_rows(lc.data(), nullptr, w.data(), rows, cols, per);  // no gradient
      CHECK_ALL_CLOSE(lc.data(), la.data(), rows, 0.f, 0.f);
      for (size_t i = 0; i < rows * cols; ++i) CHECK(ga[i] == g0[i] * w[i / cols / per]);  // the reference itself
    }
  }
}

TEST(known_values_and_sparse_equals_dense) {
  const ck::CpuKernels& ref = ck::scalar_kernels();
  std::vector<float> x = {1, 2, 3}, id = {2}, loss(1), g(3);
  ref.softmax_xent(loss.data(), g.data(), x.data(), id.data(), 1, 3, ck::LabelMode::Sparse, 0.f, 1.f);
  double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  CHECK_NEAR(loss[0], lse - 3.0, 1e-6);
  CHECK_NEAR(g[2], std::exp(3.0 - lse) - 1.0, 1e-6);
  // Huge logits stay finite.
  std::vector<float> big = {1e4f, -1e4f, 0.f};
  ref.softmax_xent(loss.data(), g.data(), big.data(), id.data(), 1, 3, ck::LabelMode::Sparse, 0.f, 1.f);
  CHECK_NEAR(loss[0], 1e4, 1e-1);
  for (const ck::CpuKernels* k : cktest::vector_tables()) {
    std::vector<float> l2(1), g2(3);
    k->softmax_xent(l2.data(), g2.data(), big.data(), id.data(), 1, 3, ck::LabelMode::Sparse, 0.f, 1.f);
    CHECK(std::isfinite(l2[0]) && std::fabs(l2[0] - loss[0]) < 1e-1);
  }
  // BCE from logits equals BCE from the sigmoid's probabilities.
  std::vector<float> z = {-3.f, -0.5f, 0.2f, 2.5f}, t = {0.f, 1.f, 1.f, 0.f}, p(4), l1(1), l2(1);
  for (int i = 0; i < 4; ++i) p[size_t(i)] = 1.f / (1.f + std::exp(-z[size_t(i)]));
  ref.binary_xent(l1.data(), nullptr, z.data(), t.data(), 1, 4, true, 1.f);
  ref.binary_xent(l2.data(), nullptr, p.data(), t.data(), 1, 4, false, 1.f);
  CHECK_NEAR(l1[0], l2[0], 1e-5);
  // MSE by hand.
  std::vector<float> y = {1, 2}, tt = {0, 4};
  ref.mse(l1.data(), nullptr, y.data(), tt.data(), 1, 2, 1.f);
  CHECK_NEAR(l1[0], 2.5, 1e-6);
}

TEST(reference_loss_gradients_match_finite_differences) {
  std::mt19937 rng(9);
  const ck::CpuKernels& ref = ck::scalar_kernels();
  const size_t rows = 4, cols = 5;
  auto x = cktest::random_vector(rng, rows * cols, -2.f, 2.f);
  auto probs = cktest::random_vector(rng, rows * cols, 0.1f, 0.9f);
  std::vector<float> ids = {0, 4, 2, 2};
  auto t = one_hot(ids, cols);
  auto mean_loss = [&](auto&& fn) {
    return [&, fn](const std::vector<float>& in) {
      std::vector<float> l(rows);
      fn(l.data(), nullptr, in.data());
      double s = 0;
      for (float v : l) s += v;
      return s / rows;
    };
  };
  std::vector<float> g(rows * cols), l(rows);
  auto xent = [&](float* lo, float* go, const float* in) { ref.softmax_xent(lo, go, in, t.data(), rows, cols, ck::LabelMode::Dense, 0.f, 1.f / rows); };
  xent(l.data(), g.data(), x.data());
  CHECK_GRADIENT("softmax_xent", g, cktest::numeric_gradient(x, mean_loss(xent), 1e-3f));
  auto bce = [&](float* lo, float* go, const float* in) { ref.binary_xent(lo, go, in, t.data(), rows, cols, false, 1.f / rows); };
  bce(l.data(), g.data(), probs.data());
  CHECK_GRADIENT("binary_xent", g, cktest::numeric_gradient(probs, mean_loss(bce), 1e-4f));
  auto bcel = [&](float* lo, float* go, const float* in) { ref.binary_xent(lo, go, in, t.data(), rows, cols, true, 1.f / rows); };
  bcel(l.data(), g.data(), x.data());
  CHECK_GRADIENT("binary_xent logits", g, cktest::numeric_gradient(x, mean_loss(bcel), 1e-3f));
  auto sq = [&](float* lo, float* go, const float* in) { ref.mse(lo, go, in, probs.data(), rows, cols, 1.f / rows); };
  sq(l.data(), g.data(), x.data());
  CHECK_GRADIENT("mse", g, cktest::numeric_gradient(x, mean_loss(sq), 1e-3f));
}

TEST(binary_accuracy_uses_the_threshold) {
  std::vector<float> p = {0.2f, 0.7f, 0.6f, 0.4f}, t = {0, 1, 0, 1};
  CHECK(ck::scalar_kernels().accuracy_count(p.data(), t.data(), 4, 1, ck::LabelMode::Dense, 0.5f) == 2);
}

// Keras's other losses and the native metrics: every vector table against the reference, with
// label smoothing on both label layouts, Huber differences on both sides of delta, and KL
// probabilities at and beyond the clip range.
TEST(vector_keras_losses_and_metrics_match_reference) {
  std::mt19937 rng(21);
  const ck::CpuKernels& ref = ck::scalar_kernels();
  for (const ck::CpuKernels* k : cktest::vector_tables()) {
    for (auto [rows, cols] : {std::pair<size_t, size_t>{1, 1}, {5, 2}, {100, 10}, {33, 17}, {7, 40}}) {
      auto x = cktest::random_vector(rng, rows * cols, -4.f, 4.f);
      auto probs = cktest::random_vector(rng, rows * cols, 0.f, 1.f);
      if (rows * cols > 3) probs[0] = 0.f, probs[1] = 1.f, probs[2] = 1e-9f;
      std::vector<float> ids(rows);
      for (auto& v : ids) v = float(rng() % cols);
      if (rows > 2) ids[1] = -1.f;  // matches no class
      auto dense = one_hot(ids, cols);
      std::vector<float> la(rows), lb(rows), ga(rows * cols), gb(rows * cols);
      for (bool sparse : {false, true}) {
        const float* t = sparse ? ids.data() : dense.data();
        ck::LabelMode mode = sparse ? ck::LabelMode::Sparse : ck::LabelMode::Dense;
        ref.softmax_xent(la.data(), ga.data(), x.data(), t, rows, cols, mode, 0.1f, 0.5f);
        k->softmax_xent(lb.data(), gb.data(), x.data(), t, rows, cols, mode, 0.1f, 0.5f);
        CHECK_ALL_CLOSE(lb.data(), la.data(), rows, 1e-5f, 1e-5f);
        CHECK_ALL_CLOSE(gb.data(), ga.data(), ga.size(), 1e-5f, 1e-6f);
        for (int top : {1, 2, 3, 50}) {
          CHECK(ref.top_k_count(x.data(), t, rows, cols, mode, top) == k->top_k_count(x.data(), t, rows, cols, mode, top));
        }
      }
      ref.huber(la.data(), ga.data(), x.data(), probs.data(), rows, cols, 1.5f, 0.25f);
      k->huber(lb.data(), gb.data(), x.data(), probs.data(), rows, cols, 1.5f, 0.25f);
      CHECK_ALL_CLOSE(lb.data(), la.data(), rows, 1e-5f, 1e-6f);
      CHECK_ALL_CLOSE(gb.data(), ga.data(), ga.size(), 1e-6f, 1e-7f);
      auto soft = cktest::random_vector(rng, rows * cols, 0.f, 1.f);
      ref.kl_divergence(la.data(), ga.data(), probs.data(), soft.data(), rows, cols, 0.25f);
      k->kl_divergence(lb.data(), gb.data(), probs.data(), soft.data(), rows, cols, 0.25f);
      CHECK_ALL_CLOSE(lb.data(), la.data(), rows, 1e-5f, 1e-5f);
      CHECK_ALL_CLOSE(gb.data(), ga.data(), ga.size(), 1e-5f, 1e-6f);
      // Thresholds like Keras's AUC's (below 0, inside, above 1), values on a threshold exactly.
      std::vector<float> th = {-1e-7f, 0.25f, 0.5f, 0.75f, 1.f + 1e-7f};
      auto pred = probs;
      if (pred.size() > 4) pred[3] = 0.5f, pred[4] = std::nanf("");
      std::vector<double> ca(4 * th.size(), 1.0), cb(4 * th.size(), 1.0);  // they add to what is there
      ref.threshold_counts(ca.data(), pred.data(), dense.data(), rows, cols, -1, 0, th.data(), th.size());
      k->threshold_counts(cb.data(), pred.data(), dense.data(), rows, cols, -1, 0, th.data(), th.size());
      for (size_t i = 0; i < ca.size(); ++i) CHECK(ca[i] == cb[i]);
      for (size_t i = 0; i < th.size(); ++i) CHECK(ca[4 * i] + ca[4 * i + 1] + ca[4 * i + 2] + ca[4 * i + 3] == double(rows * cols + 4));
      // classId: one column's counts, as those of that column alone taken as a [rows, 1] output.
      for (int class_id : {0, int(cols) - 1}) {
        std::vector<float> col_pred(rows), col_label(rows);
        for (size_t r = 0; r < rows; ++r) col_pred[r] = pred[r * cols + size_t(class_id)], col_label[r] = dense[r * cols + size_t(class_id)];
        std::vector<double> want(4 * th.size(), 0.0), got(4 * th.size(), 0.0);
        ref.threshold_counts(want.data(), col_pred.data(), col_label.data(), rows, 1, -1, 0, th.data(), th.size());
        k->threshold_counts(got.data(), pred.data(), dense.data(), rows, cols, class_id, 0, th.data(), th.size());
        for (size_t i = 0; i < want.size(); ++i) CHECK(want[i] == got[i]);
        ref.threshold_counts(got.data(), pred.data(), dense.data(), rows, cols, class_id, 0, th.data(), th.size());
        for (size_t i = 0; i < want.size(); ++i) CHECK(2 * want[i] == got[i]);
      }
    }
  }
}

TEST(keras_loss_gradients_match_finite_differences) {
  std::mt19937 rng(22);
  const ck::CpuKernels& ref = ck::scalar_kernels();
  const size_t rows = 4, cols = 5;
  auto x = cktest::random_vector(rng, rows * cols, -2.f, 2.f);
  auto probs = cktest::random_vector(rng, rows * cols, 0.05f, 0.95f);
  auto soft = cktest::random_vector(rng, rows * cols, 0.f, 1.f);
  std::vector<float> ids = {0, 4, 2, 2};
  auto t = one_hot(ids, cols);
  auto mean_loss = [&](auto&& fn) {
    return [&, fn](const std::vector<float>& in) {
      std::vector<float> l(rows);
      fn(l.data(), nullptr, in.data());
      double s = 0;
      for (float v : l) s += v;
      return s / rows;
    };
  };
  std::vector<float> g(rows * cols), l(rows);
  for (bool sparse : {false, true}) {
    const float* tt = sparse ? ids.data() : t.data();
    const ck::LabelMode mode = sparse ? ck::LabelMode::Sparse : ck::LabelMode::Dense;
    auto xent = [&, tt, mode](float* lo, float* go, const float* in) { ref.softmax_xent(lo, go, in, tt, rows, cols, mode, 0.2f, 1.f / rows); };
    xent(l.data(), g.data(), x.data());
    CHECK_GRADIENT("softmax_xent smoothed", g, cktest::numeric_gradient(x, mean_loss(xent), 1e-3f));
  }
  // Huber: differences spread over [-3, 3] around delta 1 (none within the step of a kink).
  std::vector<float> y(rows * cols);
  for (size_t i = 0; i < y.size(); ++i) y[i] = probs[i] + (float(i % 7) - 3.f) + 0.3f;
  auto hub = [&](float* lo, float* go, const float* in) { ref.huber(lo, go, in, probs.data(), rows, cols, 1.f, 1.f / rows); };
  hub(l.data(), g.data(), y.data());
  CHECK_GRADIENT("huber", g, cktest::numeric_gradient(y, mean_loss(hub), 1e-3f));
  auto kld = [&](float* lo, float* go, const float* in) { ref.kl_divergence(lo, go, in, soft.data(), rows, cols, 1.f / rows); };
  kld(l.data(), g.data(), probs.data());
  CHECK_GRADIENT("kl_divergence", g, cktest::numeric_gradient(probs, mean_loss(kld), 1e-4f));
}

// Values worked out by hand from Keras's definitions.
TEST(keras_losses_and_metrics_known_values) {
  const ck::CpuKernels& ref = ck::scalar_kernels();
  std::vector<float> l(1), g(2);
  // Huber, delta 1: d = 0.5 -> 0.125; d = -3 -> 1 * (3 - 0.5) = 2.5; mean 1.3125.
  std::vector<float> y = {0.5f, -3.f}, t = {0.f, 0.f};
  ref.huber(l.data(), g.data(), y.data(), t.data(), 1, 2, 1.f, 1.f);
  CHECK_NEAR(l[0], 1.3125, 1e-6);
  CHECK_NEAR(g[0], 0.25, 1e-7);
  CHECK_NEAR(g[1], -0.5, 1e-7);
  // KL: t = (0.5, 0.5), p = (0.25, 0.75): 0.5 log 2 + 0.5 log(2/3).
  std::vector<float> p = {0.25f, 0.75f}, tk = {0.5f, 0.5f};
  ref.kl_divergence(l.data(), nullptr, p.data(), tk.data(), 1, 2, 1.f);
  CHECK_NEAR(l[0], 0.5 * std::log(2.0) + 0.5 * std::log(2.0 / 3.0), 1e-6);
  // Smoothing 0.3 over 3 classes turns label 2 into (0.1, 0.1, 0.8).
  std::vector<float> x = {1, 2, 3}, id = {2}, l3(1);
  ref.softmax_xent(l3.data(), nullptr, x.data(), id.data(), 1, 3, ck::LabelMode::Sparse, 0.3f, 1.f);
  double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  CHECK_NEAR(l3[0], 0.1 * (lse - 1) + 0.1 * (lse - 2) + 0.8 * (lse - 3), 1e-6);
  // Top-k: row 0's class 1 is third (two above it), row 1's class 0 ties for first.
  std::vector<float> pr = {0.5f, 0.1f, 0.3f, 0.1f, 0.4f, 0.4f, 0.2f, 0.f}, ids = {1, 0};
  CHECK(ref.top_k_count(pr.data(), ids.data(), 2, 4, ck::LabelMode::Sparse, 2) == 1);
  CHECK(ref.top_k_count(pr.data(), ids.data(), 2, 4, ck::LabelMode::Sparse, 3) == 2);
  CHECK(ref.top_k_count(pr.data(), ids.data(), 2, 4, ck::LabelMode::Sparse, 1) == 1);
  // Confusion counts at 0.5: preds 0.9 (label 1) tp, 0.6 (0) fp, 0.5 (1) fn, 0.1 (0) tn.
  std::vector<float> cp = {0.9f, 0.6f, 0.5f, 0.1f}, cl = {1, 0, 1, 0}, th = {0.5f};
  std::vector<double> c(4, 0.0);
  ref.threshold_counts(c.data(), cp.data(), cl.data(), 4, 1, -1, 0, th.data(), 1);
  CHECK(c[0] == 1 && c[1] == 1 && c[2] == 1 && c[3] == 1);
  // Top 2 of (0.2, 0.7, 0.7, 0.9): 0.9 and the first 0.7; the others count as -1e10, so at
  // Keras's top-k threshold (-1e10) only those two are positive: column 1 (label 1) is a hit,
  // column 3 (label 0) a false positive, column 0 (label 1) a miss, column 2 (label 0) a true
  // negative.
  std::vector<float> kp = {0.2f, 0.7f, 0.7f, 0.9f}, kl = {1, 1, 0, 0}, kth = {-1e10f};
  std::vector<double> kc(4, 0.0);
  ref.threshold_counts(kc.data(), kp.data(), kl.data(), 1, 4, -1, 2, kth.data(), 1);
  CHECK(kc[0] == 1 && kc[1] == 1 && kc[2] == 1 && kc[3] == 1);
  // Confusion matrix, 3 classes: labels (0, 2, 2, 1), predictions' argmax (0, 2, 1, 1).
  std::vector<float> mp = {0.8f, 0.1f, 0.1f, 0.1f, 0.2f, 0.7f, 0.3f, 0.4f, 0.3f, 0.2f, 0.5f, 0.3f};
  std::vector<float> ml = {0, 2, 2, 1};
  std::vector<double> m(9, 0.0);
  ref.confusion_matrix_counts(m.data(), mp.data(), ml.data(), 4, 3, ck::LabelMode::Sparse);
  CHECK(m == (std::vector<double>{1, 0, 0, 0, 1, 0, 0, 1, 1}));
}

// Precision and recall's top_k and the confusion matrix: every vector table against the
// reference (rows with ties and NaNs, k across the row's width, class_id), and the reference's
// top_k against its own counts over predictions filtered by hand.
TEST(vector_top_k_counts_and_confusion_matrix_match_reference) {
  std::mt19937 rng(23);
  const ck::CpuKernels& ref = ck::scalar_kernels();
  for (auto [rows, cols] : {std::pair<size_t, size_t>{1, 1}, {6, 2}, {40, 5}, {9, 33}}) {
    auto pred = cktest::random_vector(rng, rows * cols, 0.f, 1.f);
    for (auto& v : pred) v = std::floor(v * 4.f) / 4.f;  // many ties inside each row
    if (pred.size() > 10) pred[9] = std::nanf("");
    std::vector<float> ids(rows), dense(rows * cols);
    for (auto& v : ids) v = float(rng() % cols);
    if (rows > 2) ids[1] = float(cols);  // outside the classes: no cell
    for (auto& v : dense) v = float(rng() % 3 == 0);
    std::vector<float> th = {-1e10f, 0.3f, 0.5f, 0.9f};
    for (int top_k : {1, 2, int(cols)}) {
      if (size_t(top_k) > cols) continue;
      for (int class_id : {-1, 0, int(cols) - 1}) {
        std::vector<double> want(4 * th.size(), 0.0);
        ref.threshold_counts(want.data(), pred.data(), dense.data(), rows, cols, class_id, top_k, th.data(), th.size());
        // By hand: the k largest of each row (lower column first among ties, NaN lowest) kept.
        std::vector<float> filtered(pred.size());
        for (size_t r = 0; r < rows; ++r) {
          std::vector<size_t> order(cols);
          for (size_t c = 0; c < cols; ++c) order[c] = c;
          auto key = [&](size_t c) { float v = pred[r * cols + c]; return v == v ? v : -INFINITY; };
          std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key(a) > key(b); });
          for (size_t c = 0; c < cols; ++c) filtered[r * cols + c] = -1e10f;
          for (size_t j = 0; j < size_t(top_k); ++j) filtered[r * cols + order[j]] = pred[r * cols + order[j]];
        }
        std::vector<double> by_hand(4 * th.size(), 0.0);
        ref.threshold_counts(by_hand.data(), filtered.data(), dense.data(), rows, cols, class_id, 0, th.data(), th.size());
        CHECK(want == by_hand);
        for (const ck::CpuKernels* k : cktest::vector_tables()) {
          std::vector<double> got(4 * th.size(), 0.0);
          k->threshold_counts(got.data(), pred.data(), dense.data(), rows, cols, class_id, top_k, th.data(), th.size());
          CHECK(want == got);
        }
      }
    }
    for (bool sparse : {false, true}) {
      const ck::LabelMode mode = sparse ? ck::LabelMode::Sparse : ck::LabelMode::Dense;
      const size_t classes = cols == 1 ? 2 : cols;
      std::vector<double> want(classes * classes, 0.0);
      ref.confusion_matrix_counts(want.data(), pred.data(), sparse ? ids.data() : dense.data(), rows, cols, mode);
      double total = 0, trace = 0;
      for (size_t i = 0; i < want.size(); ++i) total += want[i], trace += i % (classes + 1) == 0 ? want[i] : 0;
      CHECK(total <= double(rows) && total >= double(rows) - 1);  // ids[1] lies outside the classes
      if (!sparse) CHECK(total == double(rows));
      // The diagonal is what accuracy counts correct.
      if (cols > 1) {
        std::vector<float> valid_ids = ids;
        if (rows > 2) valid_ids[1] = -1.f;
        CHECK(trace == double(ref.accuracy_count(pred.data(), sparse ? valid_ids.data() : dense.data(), rows, cols, mode, 0.5f)));
      }
      for (const ck::CpuKernels* k : cktest::vector_tables()) {
        std::vector<double> got(classes * classes, 0.0);
        k->confusion_matrix_counts(got.data(), pred.data(), sparse ? ids.data() : dense.data(), rows, cols, mode);
        CHECK(want == got);
      }
    }
  }
}

CK_TEST_MAIN()
