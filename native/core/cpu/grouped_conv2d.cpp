// Grouped convolution (Keras Conv2D(groups)), composed of one kernel table's tuned kernels, so
// each ISA's table gets its own copy below. Group g's input channels, filter columns and output
// channels are copied into contiguous buffers and it runs as a plain conv2d:
//
//   grouped_conv2d_fwd:        y[..., g*Kg + k]  = act(conv2d(x[..., g*Cg : (g+1)*Cg], w[.,.,.,g*Kg + k]) + b)
//   grouped_conv2d_bwd_data:   dx[..., g*Cg + c] = conv2d_bwd_data(dy[..., group g], w[.,.,.,group g])
//   grouped_conv2d_bwd_filter: dw[.,.,.,g*Kg + k] = conv2d_bwd_filter(dy[..., group g], x[..., group g]);
//                              db = sum of dy
//
// with Cg = C/groups, Kg = K/groups. One input channel per group (Cg == 1) is a depthwise
// convolution with multiplier Kg, and w [R,S,1,K] is then exactly depthwise's [R,S,C,M] layout:
// those run the depthwise kernels on the tensors in place. groups == 1 is conv2d itself.
#include <cstring>

#include "../memory.h"
#include "../thread_pool.h"
#include "reference.h"

namespace ck {

// The vector tables of this build's architecture (see native/sources.json's "isa_units").
#if defined(__x86_64__) || defined(_M_X64)
namespace avx2 {
#include "kernel_decls.inc"
}  // namespace avx2
namespace avx512 {
#include "kernel_decls.inc"
}  // namespace avx512
#elif defined(__aarch64__) || defined(_M_ARM64)
namespace neon {
#include "kernel_decls.inc"
}  // namespace neon
#endif

namespace {

// dst[i, 0..width) = src[i, offset .. offset + width) for rows i of a [rows, src_cols] array.
void gather_cols(float* dst, const float* src, size_t rows, int src_cols, int offset, int width) {
  const size_t grain = size_t(16384 / width + 1);
  parallel_for(rows, grain, [&](size_t b, size_t e, int) {
    for (size_t i = b; i < e; ++i)
      std::memcpy(dst + i * width, src + i * src_cols + offset, size_t(width) * sizeof(float));
  });
}

// dst[i, offset .. offset + width) = src[i, 0..width) for rows i of a [rows, dst_cols] array.
void scatter_cols(float* dst, int dst_cols, int offset, const float* src, size_t rows, int width) {
  const size_t grain = size_t(16384 / width + 1);
  parallel_for(rows, grain, [&](size_t b, size_t e, int) {
    for (size_t i = b; i < e; ++i)
      std::memcpy(dst + i * dst_cols + offset, src + i * width, size_t(width) * sizeof(float));
  });
}

// One group's geometry: Cg inputs, Kg outputs, everything else as p.
ConvParams group_params(const ConvParams& p, int groups) {
  ConvParams g = p;
  g.C = p.C / groups;
  g.K = p.K / groups;
  return g;
}

size_t pixels_in(const ConvParams& p) { return size_t(p.N) * p.H * p.W; }
size_t pixels_out(const ConvParams& p) { return size_t(p.N) * p.P * p.Q; }
size_t filter_rows(const ConvParams& g) { return size_t(g.R) * g.S * g.C; }  // rows of w [R,S,Cg,K]

void fwd(const CpuKernels& k, float* y, const float* x, const float* w, const float* b,
         const ConvParams& p, int groups, Act act) {
  if (groups == 1) return k.conv2d_fwd(y, x, w, b, p, act);
  if (p.C == groups) return k.depthwise_conv2d_fwd(y, x, w, b, p, act);
  const ConvParams g = group_params(p, groups);
  Scratch xg(g.x_size()), wg(g.w_size()), yg(g.y_size());
  for (int i = 0; i < groups; ++i) {
    gather_cols(xg.data(), x, pixels_in(p), p.C, i * g.C, g.C);
    gather_cols(wg.data(), w, filter_rows(g), p.K, i * g.K, g.K);
    k.conv2d_fwd(yg.data(), xg.data(), wg.data(), b ? b + i * g.K : nullptr, g, act);
    scatter_cols(y, p.K, i * g.K, yg.data(), pixels_out(p), g.K);
  }
}

void bwd_data(const CpuKernels& k, float* dx, const float* dy, const float* w, const ConvParams& p,
              int groups) {
  if (groups == 1) return k.conv2d_bwd_data(dx, dy, w, p);
  if (p.C == groups) return k.depthwise_conv2d_bwd_data(dx, dy, w, p);
  const ConvParams g = group_params(p, groups);
  Scratch dyg(g.y_size()), wg(g.w_size()), dxg(g.x_size());
  for (int i = 0; i < groups; ++i) {
    gather_cols(dyg.data(), dy, pixels_out(p), p.K, i * g.K, g.K);
    gather_cols(wg.data(), w, filter_rows(g), p.K, i * g.K, g.K);
    k.conv2d_bwd_data(dxg.data(), dyg.data(), wg.data(), g);
    scatter_cols(dx, p.C, i * g.C, dxg.data(), pixels_in(p), g.C);
  }
}

void bwd_filter(const CpuKernels& k, float* dw, float* db, const float* dy, const float* x,
                const ConvParams& p, int groups) {
  if (groups == 1) return k.conv2d_bwd_filter(dw, db, dy, x, p);
  if (p.C == groups) return k.depthwise_conv2d_bwd_filter(dw, db, dy, x, p);
  const ConvParams g = group_params(p, groups);
  Scratch xg(g.x_size()), dyg(g.y_size()), dwg(g.w_size());
  for (int i = 0; i < groups; ++i) {
    gather_cols(xg.data(), x, pixels_in(p), p.C, i * g.C, g.C);
    gather_cols(dyg.data(), dy, pixels_out(p), p.K, i * g.K, g.K);
    k.conv2d_bwd_filter(dwg.data(), db ? db + i * g.K : nullptr, dyg.data(), xg.data(), g);
    scatter_cols(dw, p.K, i * g.K, dwg.data(), filter_rows(g), g.K);
  }
}

}  // namespace

#define CK_GROUPED_CONV2D(ns, table)                                                              \
  namespace ns {                                                                                  \
  void grouped_conv2d_fwd(float* y, const float* x, const float* w, const float* b,               \
                          const ConvParams& p, int groups, Act act) {                             \
    fwd(table(), y, x, w, b, p, groups, act);                                                     \
  }                                                                                               \
  void grouped_conv2d_bwd_data(float* dx, const float* dy, const float* w, const ConvParams& p,   \
                               int groups) {                                                      \
    bwd_data(table(), dx, dy, w, p, groups);                                                      \
  }                                                                                               \
  void grouped_conv2d_bwd_filter(float* dw, float* db, const float* dy, const float* x,           \
                                 const ConvParams& p, int groups) {                               \
    bwd_filter(table(), dw, db, dy, x, p, groups);                                                \
  }                                                                                               \
  }

CK_GROUPED_CONV2D(ref, scalar_kernels)
#if defined(__x86_64__) || defined(_M_X64)
CK_GROUPED_CONV2D(avx2, avx2_kernels)
CK_GROUPED_CONV2D(avx512, avx512_kernels)
#elif defined(__aarch64__) || defined(_M_ARM64)
CK_GROUPED_CONV2D(neon, neon_kernels)
#endif

}  // namespace ck
