// Shared pieces of the kernel tests: the vector kernel tables this CPU can run, and a
// central-difference gradient of a scalar function of one input array.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "check.h"
#include "kernels.h"

namespace cktest {

// The vector ISAs this CPU runs, and their tables, to compare against ck::scalar_kernels().
inline std::vector<ck::Isa> vector_isas() {
  std::vector<ck::Isa> out;
  const ck::Isa best = ck::detect_isa();
  if (best == ck::Isa::Avx2 || best == ck::Isa::Avx512) out.push_back(ck::Isa::Avx2);
  if (best == ck::Isa::Avx512) out.push_back(ck::Isa::Avx512);
  if (best == ck::Isa::Neon) out.push_back(ck::Isa::Neon);
  return out;
}
inline std::vector<const ck::CpuKernels*> vector_tables() {
  std::vector<const ck::CpuKernels*> out;
  for (ck::Isa isa : vector_isas()) out.push_back(&ck::cpu_kernels(isa));
  return out;
}

// `got` against the reference `want` for sums of `red` products of O(1) values: the absolute
// tolerance grows with the square root of the reduction length.
inline bool close_for_reduction(const std::vector<float>& got, const std::vector<float>& want,
                                double red, std::string* why) {
  float atol = float(1e-4 * std::sqrt(std::max(red, 1.0)));
  return all_close(got.data(), want.data(), want.size(), 1e-4f, atol, why);
}

// d f / d x[i] by central differences (in double), for every i.
inline std::vector<double> numeric_gradient(std::vector<float> x, const std::function<double(const std::vector<float>&)>& f,
                                            float eps = 1e-2f) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    float keep = x[i];
    x[i] = keep + eps;
    double up = f(x);
    x[i] = keep - eps;
    double down = f(x);
    x[i] = keep;
    g[i] = (up - down) / (2.0 * eps);
  }
  return g;
}

// Every analytic[i] within atol + rtol * |numeric[i]|.
inline void check_gradient(const char* file, int line, const std::string& what, const std::vector<float>& analytic,
                           const std::vector<double>& numeric, double rtol = 2e-2, double atol = 2e-3) {
  for (size_t i = 0; i < analytic.size(); ++i) {
    if (std::fabs(analytic[i] - numeric[i]) > atol + rtol * std::fabs(numeric[i])) {
      fail(file, line, what + "[" + std::to_string(i) + "]: analytic " + std::to_string(analytic[i]) +
                           " vs finite difference " + std::to_string(numeric[i]));
      return;
    }
  }
}

// sum_i w[i] * y[i] in double: a scalar loss whose gradient with respect to y is w.
inline double weighted_sum(const std::vector<float>& y, const std::vector<float>& w) {
  double s = 0;
  for (size_t i = 0; i < y.size(); ++i) s += double(y[i]) * w[i];
  return s;
}

}  // namespace cktest

#define EXPECT_CLOSE(got, want, red, what)                                           \
  do {                                                                               \
    std::string why_;                                                                \
    if (!cktest::close_for_reduction((got), (want), (red), &why_))                   \
      cktest::fail(__FILE__, __LINE__, std::string(what) + ": " + why_);            \
  } while (0)
#define CHECK_GRADIENT(what, analytic, numeric) cktest::check_gradient(__FILE__, __LINE__, what, analytic, numeric)

namespace cktest {

// The smooth acts a conv2d / depthwise / dense / bias epilogue fuses besides the clamps.
inline std::vector<ck::Act> smooth_epilogue_acts() { return {ck::Act::Sigmoid, ck::Act::Swish, ck::Act::HardSwish}; }

// act(v) of an epilogue act in float64: the plain loops' ground truth for the reference kernels.
inline double epilogue_act_f64(double v, ck::Act act) {
  const double sigmoid = 1.0 / (1.0 + std::exp(-v)), hard = std::min(std::max(v + 3.0, 0.0), 6.0) / 6.0;
  switch (act) {
    case ck::Act::Relu: return v > 0 ? v : 0.0;
    case ck::Act::Relu6: return std::min(std::max(v, 0.0), 6.0);
    case ck::Act::Sigmoid: return sigmoid;
    case ck::Act::Swish: return v * sigmoid;
    case ck::Act::HardSwish: return v * hard;
    default: return v;
  }
}

// A fused epilogue on one ISA gives what the same kernel without it gives, passed through that
// ISA's activation_fwd, bit for bit: `fused` against `plain` (the kernel's act-free output).
inline bool same_as_separate_activation(const ck::CpuKernels& k, std::vector<float> plain,
                                        const std::vector<float>& fused, ck::Act act) {
  k.activation_fwd(plain.data(), plain.data(), plain.size(), act, 0.f);
  return plain.size() == fused.size() &&
         std::memcmp(plain.data(), fused.data(), plain.size() * sizeof(float)) == 0;
}

}  // namespace cktest
