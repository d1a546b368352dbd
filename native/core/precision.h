// The math precision of the GPU's matrix products (conv2d and dense, forward and backward), as
// PyTorch's allow_tf32 / autocast: fp32 by default; 'tf32' rounds the operands to TF32 (10-bit
// mantissa) and 'bf16' to bfloat16 (7-bit) on the tensor cores, both accumulating in fp32 into
// fp32 results, so weights, activations and gradients stay fp32 (the master copy). The CPU
// always computes in fp32.
//
// ck.setPrecision sets the process default; work reads it when it is enqueued (an op when it is
// called, a training step when fit queues it), so a change never reaches work already queued.
// A PrecisionScope carries a step's precision onto the thread that builds its kernels.
#pragma once
#include <atomic>
#include <string>

namespace ck {

enum class MathPrecision : int { Fp32 = 0, Tf32 = 1, Bf16 = 2 };

namespace detail {
inline std::atomic<int> g_math_precision{0};
inline thread_local int t_math_precision = -1;  // a scope's, or -1: the process default
}  // namespace detail

inline void set_math_precision(MathPrecision p) { detail::g_math_precision = int(p); }

inline MathPrecision math_precision() {
  const int scoped = detail::t_math_precision;
  return MathPrecision(scoped >= 0 ? scoped : detail::g_math_precision.load());
}

class PrecisionScope {
 public:
  explicit PrecisionScope(MathPrecision p) : prev_(detail::t_math_precision) {
    detail::t_math_precision = int(p);
  }
  ~PrecisionScope() { detail::t_math_precision = prev_; }
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  int prev_;
};

inline const char* precision_name(MathPrecision p) {
  return p == MathPrecision::Tf32 ? "tf32" : p == MathPrecision::Bf16 ? "bf16" : "fp32";
}

inline bool parse_precision(const std::string& name, MathPrecision* out) {
  for (MathPrecision p : {MathPrecision::Fp32, MathPrecision::Tf32, MathPrecision::Bf16}) {
    if (name == precision_name(p)) {
      *out = p;
      return true;
    }
  }
  return false;
}

}  // namespace ck
