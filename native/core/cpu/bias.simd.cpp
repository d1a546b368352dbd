// Vector per-channel bias over channels-last rows (see bias_ref.cpp). The forward adds the bias
// row by row, C lanes at a time, with the epilogue's clamp (max with 0 turns NaN into 0, as
// EpilogueClamp does) or smooth act; the gradient sums rows in chunks added in chunk order
// (gemm::chunked_accumulate), so it is deterministic for a fixed thread count.
#include "gemm.simd.h"
#include "reference.h"
#include "simd_kernels.h"

namespace ck {
namespace CK_ISA_NS {

namespace {
constexpr size_t kGrainFloats = 1 << 15;
size_t row_grain(int C) { return kGrainFloats / size_t(C > 0 ? C : 1) + 1; }
}  // namespace

void bias_act_fwd(float* y, const float* b, size_t rows, int C, Act act) {
  if (!epilogue_act(act)) {
    ref::bias_act_fwd(y, b, rows, C, act);  // rejects the unsupported fused activation
    return;
  }
  if (C <= 0) return;
  const EpilogueClamp epi(act);
  const Vec zero = Vec::zero(), six = Vec::set1(6.f);
  auto clamp = [&](Vec v) {
    if (epi.relu) v = max(v, zero);
    if (epi.relu6) v = min(v, six);
    return epi.smooth ? gemm::smooth_act(v, act) : v;
  };
  parallel_for(rows, row_grain(C), [&](size_t rb, size_t re, int) {
    for (size_t r = rb; r < re; ++r) {
      float* row = y + r * size_t(C);
      int c = 0;
      for (; c + Vec::kLanes <= C; c += Vec::kLanes) {
        Vec v = Vec::load(row + c);
        if (b) v = v + Vec::load(b + c);
        clamp(v).store(row + c);
      }
      if (c < C) {
        const int rem = C - c;
        Vec v = Vec::load_partial(row + c, rem);
        if (b) v = v + Vec::load_partial(b + c, rem);
        clamp(v).store_partial(row + c, rem);
      }
    }
  });
}

void bias_grad(float* db, const float* dy, size_t rows, int C) {
  if (C <= 0) return;
  // No weight block here: db stands in for chunked_accumulate's (empty) dw, so each chunk's
  // partial is only its C column sums.
  gemm::chunked_accumulate(db, 0, db, C, rows, row_grain(C), [&](float*, float* dbc, size_t b, size_t e) {
    gemm::add_rows(dbc, dy + b * size_t(C), e - b, C);
  });
}

}  // namespace CK_ISA_NS
}  // namespace ck
