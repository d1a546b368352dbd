// Folded inference of inverted-residual blocks (MobileNetV2's expand 1x1 -> depthwise ->
// project 1x1, each with its batch norm folded in, and the residual add) band by band of output
// rows. Layer by layer, the block writes its 6x-wide expanded activations out and reads them back
// twice (a 112x112x96 image is 4.8 MB, past the L2); by bands they stay in the caches, and a batch
// of one splits over the threads by rows with no barrier between the block's layers.
#include <algorithm>
#include <cstring>
#include <exception>

#include "net.h"
#include "net_plan.h"
#include "thread_pool.h"

namespace ck {

namespace {

// Expanded and depthwise rows one band holds (per thread): well inside a core's L2 beside the
// block's weights.
constexpr size_t kBandBytes = size_t(256) << 10;

}  // namespace

void Net::plan_band_blocks() {
  const size_t n_layers = layers_.size();
  bands_.clear();
  band_at_.assign(n_layers, -1);
  in_band_.assign(n_layers, 0);
  // The value a layer writes in folded inference: its batch norm's or ReLU's after it, or its own.
  auto out_value = [&](int i) {
    const int out = folds_[size_t(i)].out_layer;
    return value_of(out >= 0 ? out : i);
  };
  // Its epilogue is one the kernels apply, whatever is folded into it (a batch norm or not: an
  // imported graph's exporter has folded its batch norms already).
  auto epilogue_ok = [&](int i) {
    return epilogue_act(folds_[size_t(i)].out_layer >= 0 ? folds_[size_t(i)].act : layers_[size_t(i)].fused_act());
  };
  auto pointwise = [&](int i) {
    const LayerSpec& l = layers_[size_t(i)];
    const ConvParams& p = conv_geo_[size_t(i)];
    return l.kind == LayerKind::Conv2d && l.attrs<ConvAttrs>().groups == 1 && p.R == 1 && p.S == 1 &&
           p.stride_h == 1 && p.stride_w == 1 && p.pad_h == 0 && p.pad_w == 0 && folds_[size_t(i)].pad < 0 &&
           epilogue_ok(i);
  };
  for (size_t d = 0; d < n_layers; ++d) {
    const ConvParams& dp = conv_geo_[d];
    if (layers_[d].kind != LayerKind::DepthwiseConv2d || dp.K != dp.C || !epilogue_ok(int(d))) continue;
    const int project = only_reader(out_value(int(d)));
    if (project < 0 || !pointwise(project)) continue;
    BandBlock b;
    b.depthwise = int(d), b.project = project;
    const int pad = folds_[d].pad;
    b.input = pad >= 0 ? layers_[size_t(pad)].inputs[0] : layers_[d].inputs[0];
    // An expansion: the pointwise convolution whose folded output only the depthwise (or the
    // padding folded into it) reads, unless an earlier block runs it (as its projection: a
    // block without expansion after another).
    const int reader = pad >= 0 ? pad : int(d);
    if (size_t(b.input) >= inputs_.size() && only_reader(size_t(b.input)) == reader) {
      for (size_t e = 0; e < d; ++e) {
        if (pointwise(int(e)) && out_value(int(e)) == size_t(b.input) && !in_band_[e] && band_at_[e] < 0) b.expand = int(e);
      }
    }
    if (b.expand >= 0) b.input = layers_[size_t(b.expand)].inputs[0];
    b.output = int(out_value(project));
    const int add = only_reader(out_value(project));
    if (add >= 0 && layers_[size_t(add)].kind == LayerKind::Add && layers_[size_t(add)].inputs.size() == 2) {
      const std::vector<int>& in = layers_[size_t(add)].inputs;
      const int other = in[0] == b.output ? in[1] : in[0];
      if (other == b.input && shapes_[size_t(other)] == shapes_[size_t(b.output)]) {
        b.add = add;
        const int out = folds_[size_t(project)].out_layer;
        unwritten_[size_t(out >= 0 ? out : project)] = 1;
        b.output = int(value_of(add));
      }
    }
    const int head = b.expand >= 0 ? b.expand : b.depthwise;
    band_at_[size_t(head)] = int(bands_.size());
    for (int i : {b.expand, b.depthwise, b.project, b.add}) {
      if (i >= 0 && i != head) in_band_[size_t(i)] = 1;
    }
    for (int i : {b.expand, int(d)}) {
      if (i >= 0) unwritten_[size_t(folds_[size_t(i)].out_layer >= 0 ? folds_[size_t(i)].out_layer : i)] = 1;
    }
    bands_.push_back(b);
  }
}

void Net::forward_band_block(const CpuKernels& k, Plan& pl, const BandBlock& bb, int batch) {
  struct Folded {
    const float *w, *packed, *b;
    Act act;
  };
  // A layer's weights as folded inference runs it: batch norm folded in, or its own.
  auto folded = [&](int i) {
    const InferenceFold& f = folds_[size_t(i)];
    const bool packed = packed_for_ == &k && packed_at_[size_t(i)] != kNotPacked;
    const float* packed_w = packed ? packed_weights_->data() + packed_at_[size_t(i)] : nullptr;
    const Act act = f.out_layer >= 0 ? f.act : layers_[size_t(i)].fused_act();
    if (f.bn < 0) return Folded{param_ptr(kernel_param_[size_t(i)]), packed_w, param_ptr(bias_param_[size_t(i)]), act};
    return Folded{folded_weights_->data() + f.kernel_at, packed_w, folded_weights_->data() + f.bias_at, act};
  };
  const bool expand = bb.expand >= 0;
  const Folded fe = expand ? folded(bb.expand) : Folded{}, fd = folded(bb.depthwise), fp = folded(bb.project);
  // The depthwise window over its input (the expansion's output), a folded padding added.
  const ConvParams dp = folded_geometry(bb.depthwise, 1);
  const int H = dp.H, W = dp.W, Ce = dp.C, P = dp.P, Q = dp.Q, sh = dp.stride_h;
  const int reach = (dp.R - 1) * dp.dil_h + 1;  // input rows one output row reads
  const int Cin = expand ? conv_geo_[size_t(bb.expand)].C : Ce;
  const int Co = conv_geo_[size_t(bb.project)].K;
  const size_t row_bytes = (size_t(sh) * W + size_t(Q)) * size_t(Ce) * sizeof(float);
  const int band = int(std::clamp<size_t>(kBandBytes / row_bytes, 1, size_t(P)));
  const float* X = pl.act[size_t(bb.input)];
  float* Y = pl.act[size_t(bb.output)];
  const int parts = std::min(num_threads(), P);
  std::vector<std::exception_ptr> failed(static_cast<size_t>(parts));
  // Part t: output rows [P*t/parts, P*(t+1)/parts) of every image, band by band. Consecutive
  // bands overlap in expanded rows (the depthwise window's reach): those are kept, not recomputed.
  parallel_run(parts, [&](int t) {
    try {
      const int p_begin = P * t / parts, p_end = P * (t + 1) / parts;
      Scratch ebuf(expand ? size_t((band - 1) * sh + reach) * W * Ce : 0), dbuf(size_t(band) * Q * Ce);
      for (int n = 0; n < batch; ++n) {
        const float* x = X + size_t(n) * H * W * Cin;
        int held_lo = 0, held_hi = 0;  // expanded rows in ebuf
        for (int p0 = p_begin; p0 < p_end; p0 += band) {
          const int p1 = std::min(p_end, p0 + band);
          const int e_lo = std::max(0, p0 * sh - dp.pad_h), e_hi = std::min(H, (p1 - 1) * sh - dp.pad_h + reach);
          const float* E = x + size_t(e_lo) * W * Ce;
          if (expand) {
            int from = e_lo;
            if (held_hi > e_lo && e_lo >= held_lo) {
              std::memmove(ebuf.data(), ebuf.data() + size_t(e_lo - held_lo) * W * Ce,
                           size_t(held_hi - e_lo) * W * Ce * sizeof(float));
              from = held_hi;
            }
            ConvParams ep = conv_geometry(bb.expand, 1);
            ep.H = ep.P = e_hi - from;
            if (ep.H > 0) {
              k.conv2d_fwd_packed(ebuf.data() + size_t(from - e_lo) * W * Ce, x + size_t(from) * W * Cin, fe.w,
                                  fe.packed, fe.b, ep, fe.act);
            }
            held_lo = e_lo, held_hi = e_hi;
            E = ebuf.data();
          }
          ConvParams bp = dp;
          bp.N = 1, bp.H = e_hi - e_lo, bp.P = p1 - p0;
          bp.pad_h = e_lo - p0 * sh + dp.pad_h;
          k.depthwise_conv2d_fwd(dbuf.data(), E, fd.w, fd.b, bp, fd.act);
          ConvParams pp = conv_geometry(bb.project, 1);
          pp.H = pp.P = p1 - p0;
          float* y = Y + (size_t(n) * P + p0) * Q * Co;
          k.conv2d_fwd_packed(y, dbuf.data(), fp.w, fp.packed, fp.b, pp, fp.act);
          if (bb.add >= 0) k.accumulate(y, x + size_t(p0) * W * Cin, size_t(p1 - p0) * Q * Co);
        }
      }
    } catch (...) {
      failed[size_t(t)] = std::current_exception();
    }
  });
  for (auto& e : failed) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace ck
