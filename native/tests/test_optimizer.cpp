// Optimizer updates: vector variants against the reference, and the reference against Keras's
// formulas written out independently here in double.
#include <cmath>
#include <random>

#include "kernel_check.h"

TEST(vector_updates_match_reference) {
  std::mt19937 rng(10);
  const ck::CpuKernels& ref = ck::scalar_kernels();
  for (const ck::CpuKernels* k : cktest::vector_tables()) {
    for (size_t n : {size_t(1), size_t(15), size_t(62346), size_t(100001)}) {
      auto w0 = cktest::random_vector(rng, n), g = cktest::random_vector(rng, n);
      for (int step = 1; step <= 3; ++step) {
        // SGD with and without (nesterov) momentum.
        for (auto [mom, nest] : {std::pair<float, bool>{0.f, false}, {0.9f, false}, {0.9f, true}}) {
          auto wa = w0, wb = w0;
          std::vector<float> va(n, 0.1f), vb(n, 0.1f);
          ck::SgdParams p{0.01f, mom, nest};
          ref.sgd_update(wa.data(), va.data(), g.data(), n, p);
          k->sgd_update(wb.data(), vb.data(), g.data(), n, p);
          CHECK_ALL_CLOSE(wb.data(), wa.data(), n, 1e-6f, 1e-7f);
          CHECK_ALL_CLOSE(vb.data(), va.data(), n, 1e-6f, 1e-7f);
        }
        for (float wd : {0.f, 0.004f}) {
          auto wa = w0, wb = w0;
          std::vector<float> ma(n, 0.01f), mb(ma), va(n, 0.02f), vb(va);
          ck::AdamParams p;
          p.step = step, p.weight_decay = wd;
          ref.adam_update(wa.data(), ma.data(), va.data(), g.data(), n, p);
          k->adam_update(wb.data(), mb.data(), vb.data(), g.data(), n, p);
          CHECK_ALL_CLOSE(wb.data(), wa.data(), n, 1e-5f, 1e-6f);
          CHECK_ALL_CLOSE(vb.data(), va.data(), n, 1e-5f, 1e-7f);
        }
        for (auto [mom, centered] : {std::pair<float, bool>{0.f, false}, {0.5f, true}}) {
          auto wa = w0, wb = w0;
          std::vector<float> sa(n, 0.5f), sb(sa), oa(n, 0.1f), ob(oa), ga(n, 0.01f), gb(ga);
          ck::RmspropParams p;
          p.momentum = mom, p.centered = centered;
          ref.rmsprop_update(wa.data(), sa.data(), oa.data(), ga.data(), g.data(), n, p);
          k->rmsprop_update(wb.data(), sb.data(), ob.data(), gb.data(), g.data(), n, p);
          CHECK_ALL_CLOSE(wb.data(), wa.data(), n, 1e-5f, 1e-6f);
        }
        for (float wd : {0.f, 0.01f}) {  // decoupled weight decay on SGD, Adagrad and Nadam
          auto wa = w0, wb = w0;
          std::vector<float> va(n, 0.1f), vb(va);
          ck::SgdParams sp{0.05f, 0.9f, false, wd};
          ref.sgd_update(wa.data(), va.data(), g.data(), n, sp);
          k->sgd_update(wb.data(), vb.data(), g.data(), n, sp);
          CHECK_ALL_CLOSE(wb.data(), wa.data(), n, 1e-6f, 1e-7f);
          std::vector<float> aa(n, 0.1f), ab(aa);
          ck::AdagradParams ap;
          ap.lr = 0.05, ap.weight_decay = wd;
          ref.adagrad_update(wa.data(), aa.data(), g.data(), n, ap);
          k->adagrad_update(wb.data(), ab.data(), g.data(), n, ap);
          CHECK_ALL_CLOSE(wb.data(), wa.data(), n, 1e-5f, 1e-6f);
          CHECK_ALL_CLOSE(ab.data(), aa.data(), n, 1e-6f, 1e-7f);
          std::vector<float> ma(n, 0.01f), mb(ma), sa(n, 0.02f), sb(sa);
          ck::NadamParams np;
          np.step = step, np.weight_decay = wd;
          ref.nadam_update(wa.data(), ma.data(), sa.data(), g.data(), n, np);
          k->nadam_update(wb.data(), mb.data(), sb.data(), g.data(), n, np);
          CHECK_ALL_CLOSE(wb.data(), wa.data(), n, 1e-5f, 1e-6f);
          CHECK_ALL_CLOSE(sb.data(), sa.data(), n, 1e-5f, 1e-7f);
        }
      }
    }
  }
}

TEST(reference_follows_keras_formulas) {
  const ck::CpuKernels& ref = ck::scalar_kernels();
  // Adam, two steps from w = 1 with g = 0.5 then -0.25, Keras defaults.
  float w = 1.f, m = 0.f, v = 0.f;
  double W = 1, M = 0, V = 0;
  const double lr = 0.001, b1 = 0.9, b2 = 0.999, eps = 0.1;  // a large eps makes its placement visible
  double grads[] = {0.5, -0.25};
  for (int t = 1; t <= 2; ++t) {
    float g = float(grads[t - 1]);
    ck::AdamParams p;
    p.step = t, p.eps = float(eps);
    ref.adam_update(&w, &m, &v, &g, 1, p);
    M = b1 * M + (1 - b1) * grads[t - 1];
    V = b2 * V + (1 - b2) * grads[t - 1] * grads[t - 1];
    double mhat = M / (1 - std::pow(b1, t)), vhat = V / (1 - std::pow(b2, t));
    W -= lr * mhat / (std::sqrt(vhat) + eps / std::sqrt(1 - std::pow(b2, t)));  // Keras: eps on the uncorrected v
  }
  CHECK_NEAR(w, W, 1e-7);
  // SGD nesterov: v = 0.9 v - lr g; w += 0.9 v - lr g.
  float w2 = 2.f, vel = 0.5f, g2 = 1.f;
  ref.sgd_update(&w2, &vel, &g2, 1, ck::SgdParams{0.1f, 0.9f, true});
  CHECK_NEAR(vel, 0.9 * 0.5 - 0.1, 1e-7);
  CHECK_NEAR(w2, 2 + 0.9 * (0.9 * 0.5 - 0.1) - 0.1, 1e-6);
  // RMSprop centered with momentum.
  float w3 = 1.f, ms = 0.2f, mom = 0.1f, mg = 0.05f, g3 = 0.3f;
  ck::RmspropParams rp;
  rp.lr = 0.01f, rp.momentum = 0.5f, rp.centered = true;
  ref.rmsprop_update(&w3, &ms, &mom, &mg, &g3, 1, rp);
  double MS = 0.9 * 0.2 + 0.1 * 0.09, MG = 0.9 * 0.05 + 0.1 * 0.3;
  double inc = 0.01 * 0.3 / std::sqrt(MS - MG * MG + 1e-7), MOM = 0.5 * 0.1 + inc;
  CHECK_NEAR(w3, 1 - MOM, 1e-6);
  // AdamW decays the weight by w * wd * lr before the Adam step.
  float w4 = 3.f, m4 = 0.f, v4 = 0.f, g4 = 0.f;
  ck::AdamParams ap;
  ap.weight_decay = 0.004f;
  ref.adam_update(&w4, &m4, &v4, &g4, 1, ap);
  CHECK_NEAR(w4, 3 - 3 * 0.004 * 0.001, 1e-7);
}

// Ten steps with tiny gradients against Keras's formulas in double, relative tolerances only: the
// state is of the order of g^2 ~ 1e-12, so any absolute tolerance would hide errors (positive
// gradients: m sums without cancelling, so its relative error stays at rounding level). The float
// scalars (1 - beta2 above all) must come from the double hyper-parameters rounded once: 1 - 0.999
// computed in float from float(0.999) is 1.3e-5 off, and v with it.
TEST(adam_and_rmsprop_track_float64_over_steps) {
  const size_t n = 37;
  std::mt19937 rng(7);
  std::vector<std::vector<float>> grads;
  for (int t = 0; t < 10; ++t) grads.push_back(cktest::random_vector(rng, n, 1e-7f, 1e-6f));
  auto tables = cktest::vector_tables();
  tables.push_back(&ck::scalar_kernels());
  for (const ck::CpuKernels* k : tables) {
    for (double wd : {0.0, 0.004}) {
      ck::AdamParams p;
      p.lr = 0.01, p.beta1 = 0.8, p.beta2 = 0.999, p.eps = 1e-9, p.weight_decay = wd;
      std::vector<float> w(n, 0.5f), m(n, 0.f), v(n, 0.f);
      std::vector<double> W(n, 0.5), M(n, 0), V(n, 0);
      for (int t = 1; t <= 10; ++t) {
        p.step = t;
        k->adam_update(w.data(), m.data(), v.data(), grads[t - 1].data(), n, p);
        const double alpha = p.lr * std::sqrt(1 - std::pow(p.beta2, t)) / (1 - std::pow(p.beta1, t));
        for (size_t i = 0; i < n; ++i) {
          const double g = grads[t - 1][i];
          W[i] -= W[i] * wd * p.lr;
          M[i] = p.beta1 * M[i] + (1 - p.beta1) * g;
          V[i] = p.beta2 * V[i] + (1 - p.beta2) * g * g;
          W[i] -= alpha * M[i] / (std::sqrt(V[i]) + p.eps);
        }
      }
      std::vector<float> Mf(M.begin(), M.end()), Vf(V.begin(), V.end()), Wf(W.begin(), W.end());
      CHECK_ALL_CLOSE(m.data(), Mf.data(), n, 2e-6f, 0.f);
      CHECK_ALL_CLOSE(v.data(), Vf.data(), n, 2e-6f, 0.f);
      CHECK_ALL_CLOSE(w.data(), Wf.data(), n, 1e-6f, 0.f);
    }
    for (bool centered : {false, true}) {
      ck::RmspropParams p;
      p.lr = 0.001, p.rho = 0.999, p.momentum = 0.5, p.eps = 1e-14, p.centered = centered;
      std::vector<float> w(n, 0.5f), ms(n, 0.f), mom(n, 0.f), mg(n, 0.f);
      std::vector<double> W(n, 0.5), MS(n, 0), MOM(n, 0), MG(n, 0);
      for (int t = 1; t <= 10; ++t) {
        k->rmsprop_update(w.data(), ms.data(), mom.data(), mg.data(), grads[t - 1].data(), n, p);
        for (size_t i = 0; i < n; ++i) {
          const double g = grads[t - 1][i];
          MS[i] = p.rho * MS[i] + (1 - p.rho) * g * g;
          MG[i] = p.rho * MG[i] + (1 - p.rho) * g;
          const double denom = centered ? MS[i] - MG[i] * MG[i] : MS[i];
          MOM[i] = p.momentum * MOM[i] + p.lr * g / std::sqrt(denom + p.eps);
          W[i] -= MOM[i];
        }
      }
      std::vector<float> MSf(MS.begin(), MS.end()), MOMf(MOM.begin(), MOM.end());
      CHECK_ALL_CLOSE(ms.data(), MSf.data(), n, 2e-6f, 0.f);
      // centered: ms - mg^2 cancels a little, so the step's relative error grows with it
      CHECK_ALL_CLOSE(mom.data(), MOMf.data(), n, centered ? 2e-5f : 2e-6f, 0.f);
    }
  }
}

CK_TEST_MAIN()
