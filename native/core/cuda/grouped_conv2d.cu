// Grouped convolution (Keras Conv2D(groups)), composed of the CUDA conv2d kernels as
// cpu/grouped_conv2d.cpp composes the CPU ones: group g's input channels, filter columns and
// output channels are gathered into contiguous stream-ordered scratch, run as a plain conv2d and
// scattered back (Cg = C/groups, Kg = K/groups):
//
//   fwd:         y[..., g*Kg + k]   = act(conv2d(x[..., group g], w[.,.,.,group g]) + b)
//   bwd_data:    dx[..., g*Cg + c]  = conv2d_bwd_data(dy[..., group g], w[.,.,.,group g])
//   bwd_filter:  dw[.,.,.,g*Kg + k] = conv2d_bwd_filter(dy[..., group g], x[..., group g]);
//                db = sum of dy
//
// Cg == 1 is a depthwise convolution with multiplier Kg (w [R,S,1,K] is depthwise's [R,S,C,M]
// layout) and runs the depthwise kernels in place; groups == 1 is conv2d itself. The groups run
// one after another on the stream, reusing one scratch set.
#include "cuda_common.cuh"
#include "internal.h"

namespace ck {
namespace cuda {

namespace {

// One group's geometry: Cg inputs, Kg outputs, everything else as p.
ConvParams group_params(const ConvParams& p, int groups, const char* op) {
  if (groups < 1 || p.C % groups != 0 || p.K % groups != 0) {
    throw_error(ErrorKind::Value, std::string(op) + ": groups (" + std::to_string(groups) +
                                      ") must divide the input and output channels");
  }
  ConvParams g = p;
  g.C = p.C / groups;
  g.K = p.K / groups;
  return g;
}

size_t pixels_in(const ConvParams& p) { return size_t(p.N) * p.H * p.W; }
size_t pixels_out(const ConvParams& p) { return size_t(p.N) * p.P * p.Q; }
size_t filter_rows(const ConvParams& g) { return size_t(g.R) * g.S * g.C; }  // rows of w [R,S,Cg,K]

}  // namespace

void grouped_conv2d_fwd(float* y, const float* x, const float* w, const float* b,
                        const ConvParams& p, int groups, Act act, void* stream) {
  const char* op = "conv2d (grouped)";
  const ConvParams g = group_params(p, groups, op);
  if (groups == 1) return conv2d_fwd(y, x, w, b, p, act, stream);
  if (g.C == 1) return depthwise_conv2d_fwd(y, x, w, b, p, act, stream);
  if (p.y_size() == 0) return;
  const cudaStream_t s = as_stream(stream);
  Scratch xg(g.x_size() * sizeof(float), s), wg(g.w_size() * sizeof(float), s),
      yg(g.y_size() * sizeof(float), s);
  float *xs = xg.as<float>(), *ws = wg.as<float>(), *ys = yg.as<float>();
  for (int i = 0; i < groups; ++i) {
    copy_columns(xs, g.C, 0, x, p.C, i * g.C, pixels_in(p), g.C, stream, op);
    copy_columns(ws, g.K, 0, w, p.K, i * g.K, filter_rows(g), g.K, stream, op);
    conv2d_fwd(ys, xs, ws, b ? b + i * g.K : nullptr, g, act, stream);
    copy_columns(y, p.K, i * g.K, ys, g.K, 0, pixels_out(p), g.K, stream, op);
  }
}

void grouped_conv2d_bwd_data(float* dx, const float* dy, const float* w, const ConvParams& p,
                             int groups, void* stream) {
  const char* op = "conv2dGrad (grouped, data)";
  const ConvParams g = group_params(p, groups, op);
  if (groups == 1) return conv2d_bwd_data(dx, dy, w, p, stream);
  if (g.C == 1) return depthwise_conv2d_bwd_data(dx, dy, w, p, stream);
  if (p.x_size() == 0) return;
  const cudaStream_t s = as_stream(stream);
  Scratch dyg(g.y_size() * sizeof(float), s), wg(g.w_size() * sizeof(float), s),
      dxg(g.x_size() * sizeof(float), s);
  float *dys = dyg.as<float>(), *ws = wg.as<float>(), *dxs = dxg.as<float>();
  for (int i = 0; i < groups; ++i) {
    copy_columns(dys, g.K, 0, dy, p.K, i * g.K, pixels_out(p), g.K, stream, op);
    copy_columns(ws, g.K, 0, w, p.K, i * g.K, filter_rows(g), g.K, stream, op);
    conv2d_bwd_data(dxs, dys, ws, g, stream);
    copy_columns(dx, p.C, i * g.C, dxs, g.C, 0, pixels_in(p), g.C, stream, op);
  }
}

void grouped_conv2d_bwd_filter(float* dw, float* db, const float* dy, const float* x,
                               const ConvParams& p, int groups, void* stream) {
  const char* op = "conv2dGrad (grouped, filter)";
  const ConvParams g = group_params(p, groups, op);
  if (groups == 1) return conv2d_bwd_filter(dw, db, dy, x, p, stream);
  if (g.C == 1) return depthwise_conv2d_bwd_filter(dw, db, dy, x, p, stream);
  const cudaStream_t s = as_stream(stream);
  Scratch xg(g.x_size() * sizeof(float), s), dyg(g.y_size() * sizeof(float), s),
      dwg(g.w_size() * sizeof(float), s);
  float *xs = xg.as<float>(), *dys = dyg.as<float>(), *dws = dwg.as<float>();
  for (int i = 0; i < groups; ++i) {
    copy_columns(xs, g.C, 0, x, p.C, i * g.C, pixels_in(p), g.C, stream, op);
    copy_columns(dys, g.K, 0, dy, p.K, i * g.K, pixels_out(p), g.K, stream, op);
    conv2d_bwd_filter(dws, db ? db + i * g.K : nullptr, dys, xs, g, stream);
    copy_columns(dw, p.K, i * g.K, dws, g.K, 0, filter_rows(g), g.K, stream, op);
  }
}

}  // namespace cuda
}  // namespace ck
