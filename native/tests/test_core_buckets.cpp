// Data-parallel gradient buckets (net_buckets.cpp), on one process with a recording reducer: the
// buckets tile the flat gradient buffer from its end to its start at layer boundaries, each at
// least the cap; each is handed over with the values the step ends with (bitwise), and the last
// layers' before backward reaches the first layer (the overlap); a step that has no rows hands
// every bucket over at its end; and the step's update equals a plain step's.
#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "check.h"
#include "tensor_check.h"
#include "errors.h"
#include "net.h"

using ck::LayerKind;
using ck::LayerSpec;

namespace {

using cktest::make;
using cktest::read;

LayerSpec layer(LayerKind kind, const char* name) { return LayerSpec(kind, name); }

// conv, batch norm, conv, flatten, dense (relu), dense, softmax on 8x8x2 images: 5 layers with
// weights, the batch norm's moving statistics outside the gradient buffer.
std::unique_ptr<ck::Net> make_net() {
  std::vector<LayerSpec> layers;
  LayerSpec c1 = layer(LayerKind::Conv2d, "conv1");
  ck::ConvAttrs& c1_attrs = c1.attrs<ck::ConvAttrs>();
  c1_attrs.filters = 4, c1_attrs.kernel_h = c1_attrs.kernel_w = 3;
  layers.push_back(c1);
  layers.push_back(layer(LayerKind::BatchNorm, "bn"));
  LayerSpec c2 = layer(LayerKind::Conv2d, "conv2");
  ck::ConvAttrs& c2_attrs = c2.attrs<ck::ConvAttrs>();
  c2_attrs.filters = 6, c2_attrs.kernel_h = c2_attrs.kernel_w = 3, c2_attrs.act = ck::Act::Relu;
  layers.push_back(c2);
  layers.push_back(layer(LayerKind::Flatten, "flatten"));
  LayerSpec d1 = layer(LayerKind::Dense, "hidden");
  ck::DenseAttrs& d1_attrs = d1.attrs<ck::DenseAttrs>();
  d1_attrs.units = 5, d1_attrs.act = ck::Act::Relu;
  layers.push_back(d1);
  LayerSpec d2 = layer(LayerKind::Dense, "out");
  ck::DenseAttrs& d2_attrs = d2.attrs<ck::DenseAttrs>();
  d2_attrs.units = 3;
  layers.push_back(d2);
  layers.push_back(layer(LayerKind::Softmax, "softmax"));
  auto net = std::make_unique<ck::Net>(ck::Shape{8, 8, 2}, layers);
  ck::OptimizerSpec sgd;
  sgd.kind = ck::OptimizerKind::Sgd;
  sgd.sgd.lr = 0.5f;
  net->compile(ck::LossKind::SparseCategoricalCrossentropy, sgd, false);
  std::mt19937 rng(5);
  for (size_t p = 0; p < net->params().size(); ++p) {
    const ck::ParamInfo& info = net->params()[p];
    auto v = cktest::random_vector(rng, info.size, -0.4f, 0.4f);
    if (!info.trainable) v.assign(v.size(), info.name == "moving_variance" ? 1.f : 0.f);
    net->set_param(int(p), make(info.shape, v));
  }
  return net;
}

struct Handed {
  size_t begin, end;
  std::vector<float> values;  // the bucket's values when handed over
  bool first_layer_untouched;  // conv1's kernel gradient still all zero then
};

struct Recording {
  std::vector<Handed> buckets;
  std::vector<float> final_grads;  // at finish
  int begins = 0, finishes = 0;
};

// A reducer of one process (the sum over one rank is the values themselves) that records what
// it was handed.
ck::GradientReducer recorder(size_t cap, const std::shared_ptr<Recording>& rec, const ck::ParamInfo& conv1_kernel) {
  ck::GradientReducer r;
  r.bucket_floats = cap;
  r.begin = [rec] { ++rec->begins; };
  r.bucket = [rec, conv1_kernel](const ck::StoragePtr& grads, size_t begin, size_t end) {
    const float* g = grads->data();
    const float* k = g + conv1_kernel.offset;
    rec->buckets.push_back({begin, end, std::vector<float>(g + begin, g + end),
                            std::all_of(k, k + conv1_kernel.size, [](float v) { return v == 0.f; })});
  };
  r.finish = [rec](const ck::StoragePtr& grads, size_t n, const ck::Failure&) {
    ++rec->finishes;
    rec->final_grads.assign(grads->data(), grads->data() + n);
  };
  return r;
}

const ck::ParamInfo& param_named(const ck::Net& net, int layer, const char* name) {
  for (const ck::ParamInfo& p : net.params()) {
    if (p.layer == layer && p.name == name) return p;
  }
  std::abort();
}

// [begin, end) of each trainable layer's gradients, from the buffer's end.
std::vector<std::pair<size_t, size_t>> layer_ranges(const ck::Net& net) {
  std::vector<std::pair<size_t, size_t>> ranges;
  for (int l = 6; l >= 0; --l) {
    size_t lo = SIZE_MAX, hi = 0;
    for (const ck::ParamInfo& p : net.params()) {
      if (p.layer == l && p.trainable) lo = std::min(lo, p.offset), hi = std::max(hi, p.offset + p.size);
    }
    if (hi > 0) ranges.emplace_back(lo, hi);
  }
  return ranges;
}

struct Batch {
  ck::Tensor x, y;
  std::vector<int32_t> rows;
};

Batch batch_of(int n) {
  std::mt19937 rng(9);
  std::vector<float> labels(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) labels[size_t(i)] = float(i % 3);
  Batch b{make({n, 8, 8, 2}, cktest::random_vector(rng, size_t(n) * 128)), make({n}, labels), {}};
  for (int i = 0; i < n; ++i) b.rows.push_back(i);
  return b;
}

std::vector<std::vector<float>> weights_of(ck::Net& net) {
  std::vector<std::vector<float>> w;
  for (size_t p = 0; p < net.params().size(); ++p) w.push_back(read(net.get_param(int(p))));
  return w;
}

}  // namespace

TEST(buckets_of_one_layer_each_carry_the_final_gradients_before_backward_ends) {
  const int n = 6;
  Batch b = batch_of(n);
  auto net = make_net();
  auto rec = std::make_shared<Recording>();
  net->set_gradient_reducer(recorder(1, rec, param_named(*net, 0, "kernel")));
  net->train_step({b.x}, {b.y}, b.rows, 1, nullptr, n);
  net->stream()->synchronize();
  CHECK(rec->begins == 1 && rec->finishes == 1);
  // a cap of one float: one bucket per layer with weights, from the last layer to the first
  auto ranges = layer_ranges(*net);
  CHECK(ranges.size() == 5);
  CHECK(rec->buckets.size() == ranges.size());
  for (size_t k = 0; k < std::min(ranges.size(), rec->buckets.size()); ++k) {
    const Handed& h = rec->buckets[k];
    CHECK(h.begin == ranges[k].first && h.end == ranges[k].second);
    // the values summed are those the update uses: backward had finished writing them
    CHECK(h.values == std::vector<float>(rec->final_grads.begin() + long(h.begin), rec->final_grads.begin() + long(h.end)));
    // every bucket but conv1's own went out before backward reached conv1
    CHECK(h.first_layer_untouched == (k + 1 < rec->buckets.size()));
  }
  const ck::ParamInfo& k1 = param_named(*net, 0, "kernel");
  CHECK(std::any_of(rec->final_grads.begin() + long(k1.offset), rec->final_grads.begin() + long(k1.offset + k1.size),
                    [](float v) { return v != 0.f; }));

  // the same step without a reducer (one process, the same rows) updates the weights alike, bitwise
  auto plain = make_net();
  plain->train_step({b.x}, {b.y}, b.rows, 1, nullptr);
  plain->stream()->synchronize();
  CHECK(weights_of(*net) == weights_of(*plain));
}

TEST(buckets_close_at_layer_boundaries_once_they_reach_the_cap) {
  const int n = 4;
  Batch b = batch_of(n);
  for (size_t cap : {size_t(20), size_t(100), size_t(1) << 40}) {
    auto net = make_net();
    auto rec = std::make_shared<Recording>();
    net->set_gradient_reducer(recorder(cap, rec, param_named(*net, 0, "kernel")));
    net->train_step({b.x}, {b.y}, b.rows, 1, nullptr, n);
    net->stream()->synchronize();
    // the reference cut: whole layers from the end, closing a bucket once it holds >= cap floats
    std::vector<std::pair<size_t, size_t>> want;
    size_t end = 0;
    bool open = false;
    for (auto [lo, hi] : layer_ranges(*net)) {
      if (!open) end = hi, open = true;
      if (end - lo >= cap) want.emplace_back(lo, end), open = false;
    }
    if (open) want.emplace_back(0, end);
    want.back().first = 0;
    CHECK(!rec->buckets.empty() && rec->buckets.front().end == net->params().back().offset + net->params().back().size);
    CHECK(rec->buckets.size() == want.size());
    for (size_t k = 0; k < std::min(want.size(), rec->buckets.size()); ++k) {
      CHECK(rec->buckets[k].begin == want[k].first && rec->buckets[k].end == want[k].second);
      const Handed& h = rec->buckets[k];
      CHECK(h.values == std::vector<float>(rec->final_grads.begin() + long(h.begin), rec->final_grads.begin() + long(h.end)));
    }
    if (cap > 1000) CHECK(rec->buckets.size() == 1);
  }
}

TEST(a_step_without_rows_hands_every_bucket_over_at_its_end_with_zeros) {
  Batch b = batch_of(3);
  auto net = make_net();
  auto rec = std::make_shared<Recording>();
  net->set_gradient_reducer(recorder(1, rec, param_named(*net, 0, "kernel")));
  net->train_step({b.x}, {b.y}, {}, 1, nullptr, 3);
  net->stream()->synchronize();
  CHECK(rec->buckets.size() == layer_ranges(*net).size());
  size_t covered = 0;
  for (const Handed& h : rec->buckets) {
    covered += h.end - h.begin;
    CHECK(std::all_of(h.values.begin(), h.values.end(), [](float v) { return v == 0.f; }));
  }
  CHECK(covered == rec->final_grads.size());
  CHECK(rec->begins == 1 && rec->finishes == 1);
}

// A dense layer applied twice in a chain (layer 1 reads layer 0's weights), a head and a
// softmax on 6 features: the shared weights' gradient is the sum of both applications', final
// only once backward has run the first of them (the lower layer), and only then handed over.
std::unique_ptr<ck::Net> make_shared_net() {
  std::vector<LayerSpec> layers;
  LayerSpec step = layer(LayerKind::Dense, "step");
  step.attrs<ck::DenseAttrs>().units = 6, step.attrs<ck::DenseAttrs>().act = ck::Act::Sigmoid;
  layers.push_back(step);
  LayerSpec again = step;
  again.name = "step_again";
  again.shares_params_with = 0;
  layers.push_back(again);
  LayerSpec head = layer(LayerKind::Dense, "head");
  head.attrs<ck::DenseAttrs>().units = 3;
  layers.push_back(head);
  layers.push_back(layer(LayerKind::Softmax, "softmax"));
  auto net = std::make_unique<ck::Net>(ck::Shape{6}, layers);
  ck::OptimizerSpec sgd;
  sgd.kind = ck::OptimizerKind::Sgd;
  sgd.sgd.lr = 0.5f;
  net->compile(ck::LossKind::SparseCategoricalCrossentropy, sgd, false);
  std::mt19937 rng(6);
  for (size_t p = 0; p < net->params().size(); ++p) {
    net->set_param(int(p), make(net->params()[p].shape, cktest::random_vector(rng, net->params()[p].size, -0.8f, 0.8f)));
  }
  return net;
}

TEST(a_shared_weights_bucket_goes_out_after_the_first_application_added_its_gradients) {
  const int n = 5;
  std::mt19937 rng(10);
  Batch b{make({n, 6}, cktest::random_vector(rng, size_t(n) * 6)), make({n}, {0, 1, 2, 1, 0}), {0, 1, 2, 3, 4}};
  auto net = make_shared_net();
  CHECK(net->params().size() == 4);  // step's kernel and bias once, the head's
  const ck::ParamInfo& step_kernel = param_named(*net, 0, "kernel");
  auto rec = std::make_shared<Recording>();
  net->set_gradient_reducer(recorder(1, rec, step_kernel));
  net->train_step({b.x}, {b.y}, b.rows, 1, nullptr, n);
  net->stream()->synchronize();
  CHECK(rec->buckets.size() == 2);
  for (const Handed& h : rec->buckets) {
    CHECK(h.values == std::vector<float>(rec->final_grads.begin() + long(h.begin), rec->final_grads.begin() + long(h.end)));
  }
  // the head's bucket went out before backward reached the step layers, the step's after both
  CHECK(rec->buckets.size() == 2 && rec->buckets[0].first_layer_untouched && !rec->buckets[1].first_layer_untouched);
  auto plain = make_shared_net();
  plain->train_step({b.x}, {b.y}, b.rows, 1, nullptr);
  plain->stream()->synchronize();
  CHECK(weights_of(*net) == weights_of(*plain));
}

TEST(a_layer_sharing_the_weights_of_a_later_or_other_kind_of_layer_is_a_value_error) {
  for (int variant = 0; variant < 2; ++variant) {
    std::vector<LayerSpec> layers;
    LayerSpec first = layer(variant == 0 ? LayerKind::Dense : LayerKind::Activation, "first");
    if (variant == 0) first.attrs<ck::DenseAttrs>().units = 4;
    first.shares_params_with = variant == 0 ? 1 : -1;
    LayerSpec second = layer(LayerKind::Dense, "second");
    second.attrs<ck::DenseAttrs>().units = 4;
    second.shares_params_with = variant == 0 ? -1 : 0;
    layers.push_back(first);
    layers.push_back(second);
    bool threw = false;
    try {
      ck::Net net(ck::Shape{4}, layers);
    } catch (const ck::Error& e) {
      threw = e.kind() == ck::ErrorKind::Value;
    }
    CHECK(threw);
  }
}

CK_TEST_MAIN()
