// The normalizations: batch norm (batch statistics in training, moving ones in inference and
// when frozen), and layer and group norm (the batch's own statistics always, as Keras).
#include <cmath>

#include "layers/layer.h"
#include "memory.h"

namespace ck {

namespace {

// The scale and shift of the last axis, as Keras names them.
void add_affine(LayerBuild& b) {
  const NormAttrs& l = b.spec().attrs<NormAttrs>();
  const int64_t C = b.in().back();
  if (l.scale) b.add_param(ParamRole::Gamma, "gamma", {C}, true);
  if (l.center) b.add_param(ParamRole::Beta, "beta", {C}, true);
}

// Where a synchronised step keeps a batch norm's sums (2C + 1 floats), on the net's device: in the
// statistics buffer, after the mean and the global row count (training_buffers).
float* sync_sums(const LayerPass& c, int C) { return c.stats_mean() + C + 1; }

// A synchronised step's backward: dgamma and dbeta are this process's sums (the gradient
// buckets sum them over the processes), dx takes the sums over the global batch.
template <class Ops>
void sync_batchnorm_bwd(const Ops& k, LayerPass& c, float* dx, const float* dy, size_t rows, int C) {
  const FusedActivation fused = c.fused_activation();
  const float* g = c.param(ParamRole::Gamma);
  const float* b = c.param(ParamRole::Beta);
  float* sums = sync_sums(c, C);  // sum(dy), then sum(dy * xhat)
  k.batchnorm_bwd_sums(sums, dy, c.x(), c.stats_mean(), c.stats_invstd(), g, b, rows, C, fused.y, fused.act);
  if (float* dbeta = c.grad(ParamRole::Beta)) c.copy(dbeta, sums, size_t(C));
  if (float* dgamma = c.grad(ParamRole::Gamma)) c.copy(dgamma, sums + C, size_t(C));
  c.sum_batch_stats(sums, 2 * size_t(C));
  k.batchnorm_bwd_apply(dx, dy, c.x(), c.stats_mean(), c.stats_invstd(), g, b, sums, c.read_value(c.stats_mean() + C),
                        rows, C, fused.y, fused.act);
}

struct BatchNorm {
  static Shape infer(LayerBuild& b) {
    const int64_t C = b.in().back();
    add_affine(b);
    b.add_param(ParamRole::MovingMean, "moving_mean", {C}, false);
    b.add_param(ParamRole::MovingVariance, "moving_variance", {C}, false);
    return b.in();
  }

  // The mean and inverse deviation per channel; the mean's buffer also keeps, after them, the
  // rows the statistics cover (a synchronised step's global count, for backward) and a
  // synchronised step's sums (sync_sums).
  static void training_buffers(const LayerSpec&, const Shape& in, int, size_t*, size_t* stats) {
    *stats = 3 * size_t(in.back()) + 2;
  }

  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    const NormAttrs& l = c.spec().attrs<NormAttrs>();
    const int C = int(c.in_shape().back());
    const size_t rows = c.n_in() / size_t(C);
    const float* g = c.param(ParamRole::Gamma);
    const float* b = c.param(ParamRole::Beta);
    float* mean = c.param(ParamRole::MovingMean);
    float* var = c.param(ParamRole::MovingVariance);
    // A frozen batch norm runs in inference mode, as in Keras.
    if (c.training() && c.spec().trainable) {
      // With its activation fused, the activated values go straight to the activation's value.
      const FusedActivation fused = c.fused_activation();
      float* y = fused.y ? fused.y : c.y();
      if (c.syncs_batch_stats()) {
        // The statistics of the global batch: this process's sums and rows, summed over all.
        float* sums = sync_sums(c, C);
        k.batchnorm_stats(sums, c.x(), rows, C);
        c.write_value(sums + 2 * C, float(rows));
        c.sum_batch_stats(sums, 2 * size_t(C) + 1);
        const float count = c.read_value(sums + 2 * C);
        c.write_value(c.stats_mean() + C, count);
        k.batchnorm_fwd_apply(y, c.stats_mean(), c.stats_invstd(), mean, var, sums, count, c.x(), g, b, rows, C,
                              l.eps, l.momentum, fused.act);
        return;
      }
      k.batchnorm_fwd_train(y, c.stats_mean(), c.stats_invstd(), mean, var, c.x(), g, b, rows, C, l.eps,
                            l.momentum, fused.act);
    } else {
      k.batchnorm_fwd_infer(c.y(), c.x(), g, b, mean, var, rows, C, l.eps);
    }
  }

  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    const int C = int(c.in_shape().back());
    const size_t rows = c.n_in() / size_t(C);
    const bool need_dx = c.needs_grad();
    if (c.trains()) {
      float* dx = need_dx ? c.begin_grad(0) : c.scratch_grad();
      // Fused: dy is the activation's output gradient, taken through its derivative here.
      const FusedActivation fused = c.fused_activation();
      if (c.syncs_batch_stats()) {
        sync_batchnorm_bwd(k, c, dx, dy, rows, C);
        if (need_dx) c.end_grad(0, dx, c.n_in());
        return;
      }
      k.batchnorm_bwd(dx, c.grad(ParamRole::Gamma), c.grad(ParamRole::Beta), dy, c.x(), c.stats_mean(),
                      c.stats_invstd(), c.param(ParamRole::Gamma), c.param(ParamRole::Beta), rows, C, fused.y,
                      fused.act);
      if (need_dx) c.end_grad(0, dx, c.n_in());
      return;
    }
    if (!need_dx) return;
    float* dx = c.begin_grad(0);
    // dx = dy * gamma / sqrt(var + eps): the inference transform of dy with mean 0 and no shift
    // (the statistics buffer, unused by a frozen layer, holds the zeros; its multiply-add with a
    // zero shift rounds as the product alone).
    c.zero(c.stats_mean(), size_t(C));
    k.batchnorm_fwd_infer(dx, dy, c.param(ParamRole::Gamma), nullptr, c.stats_mean(),
                          c.param(ParamRole::MovingVariance), rows, C, c.spec().attrs<NormAttrs>().eps);
    c.end_grad(0, dx, c.n_in());
  }
};

// LayerNorm / GroupNorm's kernel geometry for `batch` examples of shape `in`: x [N, S, C] in G
// groups (a layer norm normalizes each position's channels: N = every position, S = 1, G = 1).
struct NormGeometry {
  size_t N, S;
  int C, G;
};
NormGeometry norm_geometry(const LayerSpec& l, const Shape& in, int batch) {
  const size_t C = size_t(in.back()), positions = shape_numel(in) / C;
  if (l.kind == LayerKind::LayerNorm) return {size_t(batch) * positions, 1, int(C), 1};
  return {size_t(batch), positions, int(C), l.attrs<NormAttrs>().groups};
}

// Layer and group norm: one definition, the geometry telling them apart.
struct GroupNorm {
  static Shape infer(LayerBuild& b) {
    const LayerSpec& l = b.spec();
    const int groups = l.attrs<NormAttrs>().groups;
    const Shape& in = b.in();
    require(l.kind == LayerKind::LayerNorm || (groups >= 1 && in.back() % groups == 0), ErrorKind::Value,
            l.name + ": groups (" + std::to_string(groups) + ") must divide the channels of the last axis (" +
                std::to_string(in.back()) + ")");
    add_affine(b);
    return in;
  }

  // One mean and inverse deviation per (row, group) of the batch.
  static void training_buffers(const LayerSpec& l, const Shape& in, int batch, size_t*, size_t* stats) {
    const NormGeometry g = norm_geometry(l, in, batch);
    *stats = g.N * size_t(g.G);
  }

  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    // Batch statistics in training and inference alike (as Keras); kept for backward in a step.
    const NormGeometry g = norm_geometry(c.spec(), c.in_shape(), c.batch());
    const bool keep = c.training();
    k.groupnorm_fwd(c.y(), keep ? c.stats_mean() : nullptr, keep ? c.stats_invstd() : nullptr, c.x(),
                    c.param(ParamRole::Gamma), c.param(ParamRole::Beta), g.N, g.S, g.C, g.G,
                    c.spec().attrs<NormAttrs>().eps);
  }

  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    // Frozen, the layer still normalizes with the batch's statistics: dx takes the full form.
    const bool need_dx = c.needs_grad(), trains = c.trains();
    if (!need_dx && !trains) return;
    const NormGeometry g = norm_geometry(c.spec(), c.in_shape(), c.batch());
    float* dx = need_dx ? c.begin_grad(0) : c.scratch_grad();
    k.groupnorm_bwd(dx, trains ? c.grad(ParamRole::Gamma) : nullptr, trains ? c.grad(ParamRole::Beta) : nullptr, dy,
                    c.x(), c.stats_mean(), c.stats_invstd(), c.param(ParamRole::Gamma), g.N, g.S, g.C, g.G);
    if (need_dx) c.end_grad(0, dx, c.n_in());
  }
};

}  // namespace

// Only in a data-parallel step (its buckets open) of a net given a batch_stats reducer.
bool LayerPass::syncs_batch_stats() const {
  return net_.buckets_open_ && bool(net_.reduce_gradients_.batch_stats);
}

void LayerPass::sum_batch_stats(float* data, size_t n) const {
  if (net_.device_ != DeviceType::Cuda) return net_.reduce_gradients_.batch_stats(data, n);
  std::vector<float> host(n);
  net_.download_values(host.data(), data, n);
  net_.reduce_gradients_.batch_stats(host.data(), n);
  net_.upload_values(data, host.data(), n);
}

float LayerPass::read_value(const float* p) const {
  float v = 0.f;
  net_.download_values(&v, p, 1);
  return v;
}

void LayerPass::write_value(float* p, float v) const { net_.upload_values(p, &v, 1); }

// Mirrors the conditions under which BatchNorm's forward and backward above sum their statistics:
// a trainable batch norm in training, and its backward when a gradient reaches its output.
std::vector<size_t> Net::batch_norm_sync_sizes() const {
  std::vector<size_t> sizes;
  std::vector<int> synced;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const LayerSpec& l = layers_[i];
    if (l.kind != LayerKind::BatchNorm || !l.trainable) continue;
    synced.push_back(int(i));
    sizes.push_back(2 * size_t(shapes_[value_of(int(i))].back()) + 1);
  }
  for (auto it = synced.rbegin(); it != synced.rend(); ++it) {
    if (!needs_grad_[value_of(*it)]) continue;
    sizes.push_back(2 * size_t(shapes_[value_of(*it)].back()));
  }
  return sizes;
}

extern const LayerDef BatchNormLayer = define_layer<BatchNorm>();
extern const LayerDef LayerNormLayer = define_layer<GroupNorm>();
extern const LayerDef GroupNormLayer = define_layer<GroupNorm>();

}  // namespace ck
