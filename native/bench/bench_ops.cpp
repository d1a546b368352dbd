// bench_ops: GFLOP/s of the conv2d and dense kernels per ISA on the example models' layer shapes
// (W1: the MNIST convnet, batch 100, and its forward pass at batch 1; W2: the CIFAR convnet,
// batch 64; W3: ResNet-20's 3x3 layers, batch 128; W5: MobileNetV2's 1x1 expansions and
// projections at batch 1), one large conv and a 1024^3 GEMM. Median of several timed
// repetitions after one warm-up call.
//
//   bench_ops [--isa avx512|avx2|scalar] [--quick] [--threads N] [--only GROUP]
//
// Without --isa every vector ISA the CPU supports runs, plus the scalar reference on the small
// layers only (it is slow). --quick times fewer repetitions; --only runs one group (W1, W1b1,
// W2, W3, W5, BN, large, gemm). The BN group times batch norm's training kernels on MobileNetV2's
// W4 shapes in GB/s of the traffic a one-pass kernel must move (forward: x in, y out; backward:
// x and dy in, dx out) beside a plain copy of the same size, the memory's pace on this machine.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels.h"
#include "thread_pool.h"

using ck::Act;
using ck::ConvParams;
using ck::CpuKernels;
using ck::Isa;

namespace {

struct Options {
  std::vector<Isa> isas;
  bool quick = false;
  std::string only;  // a group name, or empty for all
  bool runs(const char* group) const { return only.empty() || only == group; }
};

std::vector<float> random_vector(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Median wall time in milliseconds of `reps` calls after one warm-up call.
template <class F>
double time_ms(int reps, F&& fn) {
  fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    auto t1 = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Repetitions: aim for ~0.3 s per measurement (less with --quick), between 1 and 15.
int reps_for(double flops, const Options& o, Isa isa) {
  double rate = isa == Isa::Scalar ? 2e9 : 60e9;
  double budget = o.quick ? 0.08 : 0.3;
  int reps = int(budget * rate / flops);
  return std::max(isa == Isa::Scalar ? 1 : 3, std::min(reps, o.quick ? 5 : 15));
}

void print_row(const char* group, const std::string& shape, const char* pass, Isa isa, double ms,
               double flops) {
  std::printf("%-6s %-34s %-10s %-7s %9.3f %9.1f\n", group, shape.c_str(), pass,
              ck::isa_name(isa), ms, flops / (ms * 1e-3) / 1e9);
  std::fflush(stdout);
}

ConvParams conv(int N, int H, int W, int C, int K, int R, bool same) {
  ConvParams p;
  p.N = N, p.H = H, p.W = W, p.C = C, p.K = K, p.R = R, p.S = R;
  if (same) {
    p.P = H, p.Q = W;
    p.pad_h = (R - 1) / 2, p.pad_w = (R - 1) / 2;  // TF 'same', stride 1: the larger half after
  } else {
    p.P = H - R + 1, p.Q = W - R + 1;
  }
  return p;
}

void bench_conv(const char* group, const ConvParams& p, const Options& o, Isa isa,
                bool fwd_only = false) {
  if (!o.runs(group)) return;
  const CpuKernels& k = ck::cpu_kernels(isa);
  auto x = random_vector(p.x_size(), 1), w = random_vector(p.w_size(), 2);
  auto b = random_vector(size_t(p.K), 3), dy = random_vector(p.y_size(), 4);
  std::vector<float> y(p.y_size()), dx(p.x_size()), dw(p.w_size()), db(size_t(p.K));
  char shape[96];
  std::snprintf(shape, sizeof shape, "conv %dx%dx%dx%d->%d %dx%d%s", p.N, p.H, p.W, p.C, p.K,
                p.R, p.S, p.pad_h || p.pad_w ? " same" : "");
  const double f = p.flops();
  const int reps = reps_for(f, o, isa);
  print_row(group, shape, "fwd", isa,
            time_ms(reps, [&] { k.conv2d_fwd(y.data(), x.data(), w.data(), b.data(), p, Act::Relu); }), f);
  if (fwd_only) {
    // Inference packs the weights once, ahead (conv2d_fwd packs them on every call).
    std::vector<float> packed(k.conv2d_packed_floats(p));
    if (packed.empty()) return;
    k.conv2d_pack_weights(packed.data(), w.data(), p);
    print_row(group, shape, "fwd_packed", isa, time_ms(reps, [&] {
                k.conv2d_fwd_packed(y.data(), x.data(), w.data(), packed.data(), b.data(), p, Act::Relu);
              }), f);
    return;
  }
  print_row(group, shape, "bwd_data", isa,
            time_ms(reps, [&] { k.conv2d_bwd_data(dx.data(), dy.data(), w.data(), p); }), f);
  print_row(group, shape, "bwd_filter", isa,
            time_ms(reps, [&] { k.conv2d_bwd_filter(dw.data(), db.data(), dy.data(), x.data(), p); }), f);
}

void bench_dense(const char* group, int M, int K, int N, const Options& o, Isa isa,
                 bool fwd_only = false) {
  if (!o.runs(group)) return;
  const CpuKernels& k = ck::cpu_kernels(isa);
  auto x = random_vector(size_t(M) * K, 1), w = random_vector(size_t(K) * N, 2);
  auto b = random_vector(size_t(N), 3), dy = random_vector(size_t(M) * N, 4);
  std::vector<float> y(size_t(M) * N), dx(size_t(M) * K), dw(size_t(K) * N), db(N);
  char shape[96];
  std::snprintf(shape, sizeof shape, "dense %dx%d->%d", M, K, N);
  const double f = 2.0 * M * K * N;
  const int reps = reps_for(f, o, isa);
  print_row(group, shape, "fwd", isa,
            time_ms(reps, [&] { k.dense_fwd(y.data(), x.data(), w.data(), b.data(), M, K, N, Act::None); }), f);
  if (fwd_only) return;
  print_row(group, shape, "bwd_data", isa,
            time_ms(reps, [&] { k.dense_bwd_data(dx.data(), dy.data(), w.data(), M, K, N); }), f);
  print_row(group, shape, "bwd_filter", isa,
            time_ms(reps, [&] { k.dense_bwd_filter(dw.data(), db.data(), dy.data(), x.data(), M, K, N); }), f);
}

// A depthwise 3x3 'same' layer (multiplier 1), forward only, as inference runs it.
void bench_depthwise(const char* group, int N, int H, int C, int stride, const Options& o, Isa isa) {
  if (!o.runs(group)) return;
  const CpuKernels& k = ck::cpu_kernels(isa);
  ConvParams p;
  p.N = N, p.H = p.W = H, p.C = p.K = C, p.R = p.S = 3, p.stride_h = p.stride_w = stride;
  p.P = p.Q = (H + stride - 1) / stride;
  p.pad_h = p.pad_w = std::max((p.P - 1) * stride + 3 - H, 0) / 2;
  auto x = random_vector(p.x_size(), 1), w = random_vector(size_t(9) * C, 2), b = random_vector(size_t(C), 3);
  std::vector<float> y(p.y_size());
  char shape[96];
  std::snprintf(shape, sizeof shape, "depthwise %dx%dx%dx%d 3x3/%d", N, H, H, C, stride);
  const double f = 2.0 * N * p.P * p.Q * C * 9;
  print_row(group, shape, "fwd", isa, time_ms(reps_for(f, o, isa), [&] {
              k.depthwise_conv2d_fwd(y.data(), x.data(), w.data(), b.data(), p, Act::Relu6);
            }), f);
}

// Batch norm's training forward and backward with a fused ReLU6 on [rows, C] (rows = N*H*W).
void bench_batchnorm(const char* group, int N, int H, int C, const Options& o, Isa isa) {
  if (!o.runs(group)) return;
  const CpuKernels& k = ck::cpu_kernels(isa);
  const size_t rows = size_t(N) * H * H, n = rows * size_t(C);
  auto x = random_vector(n, 1), dy = random_vector(n, 2);
  auto gamma = random_vector(size_t(C), 3), beta = random_vector(size_t(C), 4);
  const size_t nc = size_t(C);
  std::vector<float> y(n), dx(n), mean(nc), invstd(nc), run_mean(nc), run_var(nc, 1.f);
  std::vector<float> dgamma(nc), dbeta(nc);
  char shape[96];
  std::snprintf(shape, sizeof shape, "batchnorm %dx%dx%dx%d relu6", N, H, H, C);
  const int reps = o.quick ? 5 : 15;
  // print_row's rate column: bytes / 1e9 per second (GB/s) for these rows.
  const double bytes = double(n) * sizeof(float);
  print_row(group, shape, "copy", isa, time_ms(reps, [&] { std::memcpy(y.data(), x.data(), n * sizeof(float)); }),
            2 * bytes);
  print_row(group, shape, "fwd_train", isa, time_ms(reps, [&] {
              k.batchnorm_fwd_train(y.data(), mean.data(), invstd.data(), run_mean.data(), run_var.data(), x.data(),
                                    gamma.data(), beta.data(), rows, C, 1e-3f, 0.99f, Act::Relu6);
            }), 2 * bytes);
  print_row(group, shape, "bwd", isa, time_ms(reps, [&] {
              k.batchnorm_bwd(dx.data(), dgamma.data(), dbeta.data(), dy.data(), x.data(), mean.data(), invstd.data(),
                              gamma.data(), beta.data(), rows, C, y.data(), Act::Relu6);
            }), 3 * bytes);
}

[[noreturn]] void usage() {
  std::fprintf(stderr, "usage: bench_ops [--isa avx512|avx2|scalar] [--quick] [--threads N] [--only GROUP]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      o.quick = true;
    } else if (a == "--isa" && i + 1 < argc) {
      std::string v = argv[++i];
      if (v == "avx512") o.isas.push_back(Isa::Avx512);
      else if (v == "avx2") o.isas.push_back(Isa::Avx2);
      else if (v == "scalar") o.isas.push_back(Isa::Scalar);
      else usage();
    } else if (a == "--only" && i + 1 < argc) {
      o.only = argv[++i];
    } else if (a == "--threads" && i + 1 < argc) {
      ck::set_num_threads(std::atoi(argv[++i]));
    } else {
      usage();
    }
  }
  const Isa best = ck::detect_isa();
  bool all = o.isas.empty();
  if (all) {
    if (best >= Isa::Avx512) o.isas.push_back(Isa::Avx512);
    if (best >= Isa::Avx2) o.isas.push_back(Isa::Avx2);
    o.isas.push_back(Isa::Scalar);
  }
  for (Isa isa : o.isas) {
    if (isa > best) {
      std::fprintf(stderr, "this CPU cannot run %s\n", ck::isa_name(isa));
      return 1;
    }
  }

  std::printf("bench_ops: %d threads, median of timed reps%s\n", ck::num_threads(),
              o.quick ? " (--quick)" : "");
  std::printf("%-6s %-34s %-10s %-7s %9s %9s\n", "group", "shape", "pass", "isa", "ms", "GFLOP/s");
  for (Isa isa : o.isas) {
    // The scalar reference is slow: with no --isa it only runs the small layers.
    const bool small_only = isa == Isa::Scalar && all;
    bench_conv("W1", conv(100, 28, 28, 1, 32, 5, false), o, isa);
    bench_conv("W1", conv(100, 12, 12, 32, 64, 5, false), o, isa);
    bench_dense("W1", 100, 1024, 10, o, isa);
    // W1 inference at batch 1 (the latency figure of npm run bench)
    bench_conv("W1b1", conv(1, 28, 28, 1, 32, 5, false), o, isa, true);
    bench_conv("W1b1", conv(1, 12, 12, 32, 64, 5, false), o, isa, true);
    bench_dense("W1b1", 1, 1024, 10, o, isa, true);
    if (!small_only) {
      bench_conv("W2", conv(64, 32, 32, 3, 32, 3, true), o, isa);
      bench_conv("W2", conv(64, 32, 32, 32, 32, 3, true), o, isa);
      bench_conv("W2", conv(64, 16, 16, 32, 64, 3, true), o, isa);
      bench_conv("W2", conv(64, 16, 16, 64, 64, 3, true), o, isa);
    }
    bench_dense("W2", 64, 4096, 10, o, isa);
    if (!small_only) {
      // ResNet-20 (CIFAR-10) training: its three stages' 3x3 layers.
      bench_conv("W3", conv(128, 32, 32, 16, 16, 3, true), o, isa);
      bench_conv("W3", conv(128, 16, 16, 32, 32, 3, true), o, isa);
      bench_conv("W3", conv(128, 8, 8, 64, 64, 3, true), o, isa);
      // MobileNetV2 224x224 inference at batch 1: the 1x1 expansions and projections.
      for (const auto& s : {std::array<int, 3>{56, 24, 144}, {28, 32, 192}, {14, 64, 384}, {14, 96, 576},
                            {7, 160, 960}}) {
        bench_conv("W5", conv(1, s[0], s[0], s[1], s[2], 1, false), o, isa, true);
        bench_conv("W5", conv(1, s[0], s[0], s[2], s[1], 1, false), o, isa, true);
      }
      bench_conv("W5", conv(1, 7, 7, 320, 1280, 1, false), o, isa, true);
      // Its depthwise layers.
      for (const auto& s : {std::array<int, 3>{112, 96, 2}, {56, 144, 1}, {28, 192, 1}, {14, 384, 1}, {14, 576, 1},
                            {7, 960, 1}}) {
        bench_depthwise("W5", 1, s[0], s[1], s[2], o, isa);
      }
      // MobileNetV2 96x96 training at batch 32 (W4): batch norms after its expansions.
      for (const auto& s : {std::array<int, 2>{48, 32}, {48, 96}, {24, 144}, {12, 192}, {6, 384}})
        bench_batchnorm("BN", 32, s[0], s[1], o, isa);
      bench_conv("large", conv(64, 56, 56, 64, 64, 3, true), o, isa);
      bench_dense("gemm", 1024, 1024, 1024, o, isa);
    }
  }
  return 0;
}
