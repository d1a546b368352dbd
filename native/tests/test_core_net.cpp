// The network executor end to end: the weight gradients one training step applies (read back
// through plain SGD, w' = w - lr * g) against central finite differences of the evaluated loss,
// for stacks that exercise every layer kind and loss; plus determinism of whole steps.
#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
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

using Tensors = std::vector<ck::Tensor>;

double eval_loss(ck::Net& net, const Tensors& x, const Tensors& y, int n) {
  std::vector<int32_t> rows(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) rows[size_t(i)] = i;
  net.reset_metrics();
  auto out = std::make_shared<ck::Accumulators>();
  net.eval_step(x, y, rows, out);
  net.stream()->synchronize();
  if (out->error) std::fprintf(stderr, "evaluation error: %s\n", out->error->what());
  CHECK(!out->error && out->count == n);
  return out->loss_sum / out->count;
}

// Checks every weight of `net` (a sample of each tensor) against finite differences.
void check_gradients(ck::Net& net, const Tensors& x, const Tensors& y, int n, ck::LossKind loss) {
  std::mt19937 rng(7);
  ck::OptimizerSpec sgd;
  sgd.kind = ck::OptimizerKind::Sgd;
  sgd.sgd.lr = 1.f;
  net.compile(loss, sgd, false);
  std::vector<std::vector<float>> before;
  for (size_t p = 0; p < net.params().size(); ++p) {
    auto v = cktest::random_vector(rng, net.params()[p].size, -0.5f, 0.5f);
    if (!net.params()[p].trainable) v.assign(v.size(), net.params()[p].name == "moving_variance" ? 1.f : 0.f);
    net.set_param(int(p), make(net.params()[p].shape, v));
    before.push_back(v);
  }
  // Finite differences first (evaluation does not change the weights).
  std::vector<std::vector<std::pair<size_t, double>>> numeric(before.size());
  const float eps = 1e-2f;
  for (size_t p = 0; p < before.size(); ++p) {
    if (!net.params()[p].trainable) continue;
    for (int s = 0; s < 4; ++s) {
      size_t i = size_t(rng() % before[p].size());
      auto v = before[p];
      v[i] = before[p][i] + eps;
      net.set_param(int(p), make(net.params()[p].shape, v));
      double up = eval_loss(net, x, y, n);
      v[i] = before[p][i] - eps;
      net.set_param(int(p), make(net.params()[p].shape, v));
      double down = eval_loss(net, x, y, n);
      net.set_param(int(p), make(net.params()[p].shape, before[p]));
      numeric[p].emplace_back(i, (up - down) / (2 * eps));
    }
  }
  std::vector<int32_t> rows(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) rows[size_t(i)] = i;
  auto out = std::make_shared<ck::Accumulators>();
  net.train_step(x, y, rows, 1, out);
  for (size_t p = 0; p < before.size(); ++p) {
    std::vector<float> after = read(net.get_param(int(p)));
    for (auto [i, want] : numeric[p]) {
      double got = before[p][i] - after[i];  // lr = 1
      double tol = 2e-3 + 2e-2 * std::fabs(want);
      if (std::fabs(got - want) > tol) {
        cktest::fail(__FILE__, __LINE__, net.params()[p].name + "[" + std::to_string(i) + "] of layer " +
                                             std::to_string(net.params()[p].layer) + ": step gradient " +
                                             std::to_string(got) + " vs finite difference " + std::to_string(want));
      }
    }
  }
  if (out->error) std::fprintf(stderr, "step error: %s\n", out->error->what());
  CHECK(!out->error);
}

}  // namespace

TEST(conv_pool_dense_softmax_crossentropy) {
  ck::set_isa(ck::Isa::Scalar);
  std::vector<LayerSpec> layers;
  LayerSpec conv = layer(LayerKind::Conv2d, "conv");
  ck::ConvAttrs& conv_attrs = conv.attrs<ck::ConvAttrs>();
  conv_attrs.filters = 3, conv_attrs.kernel_h = 3, conv_attrs.kernel_w = 2;
  conv_attrs.stride_h = 1, conv_attrs.stride_w = 2;
  conv_attrs.padding = ck::Padding::Same;
  layers.push_back(conv);
  LayerSpec act = layer(LayerKind::Activation, "tanh");
  ck::ActivationAttrs& act_attrs = act.attrs<ck::ActivationAttrs>();
  act_attrs.act = ck::Act::Tanh;
  layers.push_back(act);
  LayerSpec pool = layer(LayerKind::AvgPool2d, "pool");
  ck::PoolAttrs& pool_attrs = pool.attrs<ck::PoolAttrs>();
  pool_attrs.kernel_h = pool_attrs.kernel_w = 2, pool_attrs.stride_h = pool_attrs.stride_w = 2;
  pool_attrs.padding = ck::Padding::Same;
  layers.push_back(pool);
  layers.push_back(layer(LayerKind::Flatten, "flatten"));
  LayerSpec hidden = layer(LayerKind::Dense, "hidden");
  ck::DenseAttrs& hidden_attrs = hidden.attrs<ck::DenseAttrs>();
  hidden_attrs.units = 5, hidden_attrs.act = ck::Act::Relu;
  layers.push_back(hidden);
  LayerSpec out = layer(LayerKind::Dense, "out");
  ck::DenseAttrs& out_attrs = out.attrs<ck::DenseAttrs>();
  out_attrs.units = 4;
  layers.push_back(out);
  layers.push_back(layer(LayerKind::Softmax, "softmax"));
  ck::Net net({7, 6, 2}, layers);
  std::mt19937 rng(3);
  int n = 5;
  ck::Tensor x = make({n, 7, 6, 2}, cktest::random_vector(rng, size_t(n) * 7 * 6 * 2));
  std::vector<float> labels = {0, 3, 1, 2, 3};
  check_gradients(net, {x}, {make({n}, labels)}, n, ck::LossKind::SparseCategoricalCrossentropy);
}

TEST(maxpool_globalpool_sigmoid_binary_crossentropy) {
  ck::set_isa(ck::Isa::Scalar);
  std::vector<LayerSpec> layers;
  LayerSpec conv = layer(LayerKind::Conv2d, "conv");
  ck::ConvAttrs& conv_attrs = conv.attrs<ck::ConvAttrs>();
  conv_attrs.filters = 4, conv_attrs.kernel_h = conv_attrs.kernel_w = 3, conv_attrs.act = ck::Act::Relu;
  layers.push_back(conv);
  LayerSpec pool = layer(LayerKind::MaxPool2d, "pool");
  ck::PoolAttrs& pool_attrs = pool.attrs<ck::PoolAttrs>();
  pool_attrs.kernel_h = pool_attrs.kernel_w = 2, pool_attrs.stride_h = pool_attrs.stride_w = 1;
  layers.push_back(pool);
  layers.push_back(layer(LayerKind::GlobalAvgPool, "gap"));
  LayerSpec out = layer(LayerKind::Dense, "out");
  ck::DenseAttrs& out_attrs = out.attrs<ck::DenseAttrs>();
  out_attrs.units = 2;
  layers.push_back(out);
  LayerSpec sig = layer(LayerKind::Activation, "sigmoid");
  ck::ActivationAttrs& sig_attrs = sig.attrs<ck::ActivationAttrs>();
  sig_attrs.act = ck::Act::Sigmoid;
  layers.push_back(sig);
  ck::Net net({6, 6, 1}, layers);
  std::mt19937 rng(5);
  int n = 4;
  ck::Tensor x = make({n, 6, 6, 1}, cktest::random_vector(rng, size_t(n) * 36));
  ck::Tensor y = make({n, 2}, {1, 0, 0, 1, 1, 1, 0, 0});
  check_gradients(net, {x}, {y}, n, ck::LossKind::BinaryCrossentropy);
}

TEST(dense_elu_mean_squared_error) {
  ck::set_isa(ck::Isa::Scalar);
  std::vector<LayerSpec> layers;
  LayerSpec hidden = layer(LayerKind::Dense, "hidden");
  ck::DenseAttrs& hidden_attrs = hidden.attrs<ck::DenseAttrs>();
  hidden_attrs.units = 6;
  layers.push_back(hidden);
  LayerSpec elu = layer(LayerKind::Activation, "elu");
  ck::ActivationAttrs& elu_attrs = elu.attrs<ck::ActivationAttrs>();
  elu_attrs.act = ck::Act::Elu, elu_attrs.alpha = 1.f;
  layers.push_back(elu);
  LayerSpec out = layer(LayerKind::Dense, "out");
  ck::DenseAttrs& out_attrs = out.attrs<ck::DenseAttrs>();
  out_attrs.units = 3;
  layers.push_back(out);
  ck::Net net({5}, layers);
  std::mt19937 rng(9);
  int n = 6;
  ck::Tensor x = make({n, 5}, cktest::random_vector(rng, size_t(n) * 5));
  ck::Tensor y = make({n, 3}, cktest::random_vector(rng, size_t(n) * 3));
  check_gradients(net, {x}, {y}, n, ck::LossKind::MeanSquaredError);
}

// A functional graph: two inputs, a value read by four layers, every merge, a reshape, and two
// outputs, one of them also read by another layer (so its softmax is not folded into the loss).
TEST(graph_with_branches_merges_two_inputs_and_two_outputs) {
  ck::set_isa(ck::Isa::Scalar);
  auto reads = [](LayerSpec l, std::vector<int> inputs) {
    l.inputs = std::move(inputs);
    return l;
  };
  // values: 0 image [5,5,2], 1 vector [3], then 2 + layer index
  std::vector<LayerSpec> layers;
  LayerSpec c1 = layer(LayerKind::Conv2d, "c1");                 // 2
  ck::ConvAttrs& c1_attrs = c1.attrs<ck::ConvAttrs>();
  c1_attrs.filters = 3, c1_attrs.kernel_h = c1_attrs.kernel_w = 3, c1_attrs.padding = ck::Padding::Same;
  c1_attrs.act = ck::Act::Relu;
  layers.push_back(reads(c1, {0}));
  LayerSpec c2 = layer(LayerKind::Conv2d, "c2");                 // 3
  ck::ConvAttrs& c2_attrs = c2.attrs<ck::ConvAttrs>();
  c2_attrs.filters = 3, c2_attrs.kernel_h = c2_attrs.kernel_w = 3, c2_attrs.padding = ck::Padding::Same;
  layers.push_back(reads(c2, {2}));
  layers.push_back(reads(layer(LayerKind::Add, "add"), {2, 3}));          // 4
  layers.push_back(reads(layer(LayerKind::Multiply, "mul"), {4, 2, 3}));  // 5
  layers.push_back(reads(layer(LayerKind::Average, "avg"), {5, 2}));      // 6
  layers.push_back(reads(layer(LayerKind::Concatenate, "cat"), {6, 2, 4}));  // 7: [5,5,9]
  layers.push_back(reads(layer(LayerKind::GlobalAvgPool, "gap"), {7}));   // 8: [9]
  LayerSpec side = layer(LayerKind::Dense, "side");                       // 9: [4]
  ck::DenseAttrs& side_attrs = side.attrs<ck::DenseAttrs>();
  side_attrs.units = 4;
  layers.push_back(reads(side, {1}));
  layers.push_back(reads(layer(LayerKind::Concatenate, "joined"), {8, 9}));  // 10: [13]
  LayerSpec r = layer(LayerKind::Reshape, "reshape");                     // 11: [13,1] -> flat again
  ck::ReshapeAttrs& r_attrs = r.attrs<ck::ReshapeAttrs>();
  r_attrs.target_shape = {13, 1};
  layers.push_back(reads(r, {10}));
  layers.push_back(reads(layer(LayerKind::Flatten, "flat"), {11}));       // 12: [13]
  LayerSpec d1 = layer(LayerKind::Dense, "logits1");                      // 13: [3]
  ck::DenseAttrs& d1_attrs = d1.attrs<ck::DenseAttrs>();
  d1_attrs.units = 3;
  layers.push_back(reads(d1, {12}));
  layers.push_back(reads(layer(LayerKind::Softmax, "out1"), {13}));      // 14: output 1
  layers.push_back(reads(layer(LayerKind::Concatenate, "feed"), {14, 12}));  // 15: [16]
  LayerSpec d2 = layer(LayerKind::Dense, "logits2");                      // 16: [2]
  ck::DenseAttrs& d2_attrs = d2.attrs<ck::DenseAttrs>();
  d2_attrs.units = 2;
  layers.push_back(reads(d2, {15}));
  layers.push_back(reads(layer(LayerKind::Softmax, "out2"), {16}));      // 17: output 2
  ck::Net net({{5, 5, 2}, {3}}, layers, {14, 17});
  CHECK(net.layer_output_shape(5) == ck::Shape({5, 5, 9}));
  std::mt19937 rng(13);
  int n = 4;
  Tensors x = {make({n, 5, 5, 2}, cktest::random_vector(rng, size_t(n) * 50)),
               make({n, 3}, cktest::random_vector(rng, size_t(n) * 3))};
  Tensors y = {make({n}, {0, 2, 1, 2}), make({n}, {1, 0, 0, 1})};
  check_gradients(net, x, y, n, ck::LossKind::SparseCategoricalCrossentropy);
}

// The layers of MobileNet-style and encoder-decoder networks in one stack.
TEST(padding_depthwise_grouped_upsampling_lp_pooling) {
  ck::set_isa(ck::Isa::Scalar);
  for (bool bilinear : {false, true}) {
    std::vector<LayerSpec> layers;
    LayerSpec pad = layer(LayerKind::ZeroPadding2d, "pad");
    ck::PaddingAttrs& pad_attrs = pad.attrs<ck::PaddingAttrs>();
    pad_attrs.top = 1, pad_attrs.bottom = 0, pad_attrs.left = 2, pad_attrs.right = 1;
    layers.push_back(pad);
    LayerSpec dw = layer(LayerKind::DepthwiseConv2d, "depthwise");
    ck::ConvAttrs& dw_attrs = dw.attrs<ck::ConvAttrs>();
    dw_attrs.kernel_h = dw_attrs.kernel_w = 3, dw_attrs.depth_multiplier = 2, dw_attrs.stride_h = dw_attrs.stride_w = 2;
    dw_attrs.padding = ck::Padding::Same;
    layers.push_back(dw);
    LayerSpec tanh = layer(LayerKind::Activation, "tanh");
    ck::ActivationAttrs& tanh_attrs = tanh.attrs<ck::ActivationAttrs>();
    tanh_attrs.act = ck::Act::Tanh;
    layers.push_back(tanh);
    LayerSpec grouped = layer(LayerKind::Conv2d, "grouped");
    ck::ConvAttrs& grouped_attrs = grouped.attrs<ck::ConvAttrs>();
    grouped_attrs.filters = 4, grouped_attrs.groups = 2, grouped_attrs.kernel_h = grouped_attrs.kernel_w = 2;
    layers.push_back(grouped);
    LayerSpec up = layer(LayerKind::UpSampling2d, "up");
    ck::UpSamplingAttrs& up_attrs = up.attrs<ck::UpSamplingAttrs>();
    up_attrs.size_h = 2, up_attrs.size_w = 3, up_attrs.bilinear = bilinear;
    layers.push_back(up);
    LayerSpec lp = layer(LayerKind::LpPool2d, "lp");
    ck::PoolAttrs& lp_attrs = lp.attrs<ck::PoolAttrs>();
    lp_attrs.kernel_h = lp_attrs.kernel_w = 2, lp_attrs.stride_h = lp_attrs.stride_w = 2, lp_attrs.power = 2.f;
    layers.push_back(lp);
    layers.push_back(layer(LayerKind::GlobalAvgPool, "gap"));
    LayerSpec out = layer(LayerKind::Dense, "out");
    ck::DenseAttrs& out_attrs = out.attrs<ck::DenseAttrs>();
    out_attrs.units = 3;
    layers.push_back(out);
    layers.push_back(layer(LayerKind::Softmax, "softmax"));
    ck::Net net({6, 5, 2}, layers);
    CHECK(net.layer_output_shape(0) == ck::Shape({7, 8, 2}));
    CHECK(net.layer_output_shape(1) == ck::Shape({4, 4, 4}));
    CHECK(net.layer_output_shape(4) == ck::Shape({6, 9, 4}));
    std::mt19937 rng(17);
    int n = 3;
    ck::Tensor x = make({n, 6, 5, 2}, cktest::random_vector(rng, size_t(n) * 60));
    check_gradients(net, {x}, {make({n}, {2, 0, 1})}, n, ck::LossKind::SparseCategoricalCrossentropy);
  }
}

// Squeeze-and-excitation: an image multiplied by a gate of its channels computed from it, the
// gate [1, 1, C] (reshaped, gate first) or [C] (gate second, broadcast as Keras does): its
// gradient reaches the gate's dense layers as the sum over space and the conv through both paths.
TEST(squeeze_and_excitation_multiply_broadcasts_over_space) {
  for (ck::Isa isa : {ck::Isa::Scalar, ck::detect_isa()}) {
    ck::set_isa(isa);
    for (bool reshaped : {true, false}) {
      auto reads = [](LayerSpec l, std::vector<int> inputs) {
        l.inputs = std::move(inputs);
        return l;
      };
      std::vector<LayerSpec> layers;  // values: 0 image [4,5,2], then 1 + layer index
      LayerSpec conv = layer(LayerKind::Conv2d, "conv");  // 1: [4,5,6]
      ck::ConvAttrs& conv_attrs = conv.attrs<ck::ConvAttrs>();
      conv_attrs.filters = 6, conv_attrs.kernel_h = conv_attrs.kernel_w = 3, conv_attrs.padding = ck::Padding::Same;
      layers.push_back(reads(conv, {0}));
      layers.push_back(reads(layer(LayerKind::GlobalAvgPool, "squeeze"), {1}));  // 2: [6]
      LayerSpec reduce = layer(LayerKind::Dense, "reduce");                       // 3: [3]
      ck::DenseAttrs& reduce_attrs = reduce.attrs<ck::DenseAttrs>();
      reduce_attrs.units = 3, reduce_attrs.act = ck::Act::Relu;
      layers.push_back(reads(reduce, {2}));
      LayerSpec expand = layer(LayerKind::Dense, "expand");                       // 4: [6]
      ck::DenseAttrs& expand_attrs = expand.attrs<ck::DenseAttrs>();
      expand_attrs.units = 6;
      layers.push_back(reads(expand, {3}));
      LayerSpec sigmoid = layer(LayerKind::Activation, "sigmoid");                // 5: [6]
      ck::ActivationAttrs& sigmoid_attrs = sigmoid.attrs<ck::ActivationAttrs>();
      sigmoid_attrs.act = ck::Act::Sigmoid;
      layers.push_back(reads(sigmoid, {4}));
      LayerSpec r = layer(LayerKind::Reshape, "gate");                            // 6: [1,1,6] or [6]
      ck::ReshapeAttrs& r_attrs = r.attrs<ck::ReshapeAttrs>();
      r_attrs.target_shape = reshaped ? ck::Shape{1, 1, 6} : ck::Shape{6};
      layers.push_back(reads(r, {5}));
      layers.push_back(reads(layer(LayerKind::Multiply, "excite"), reshaped ? std::vector<int>{6, 1} : std::vector<int>{1, 6}));  // 7
      layers.push_back(reads(layer(LayerKind::GlobalAvgPool, "gap"), {7}));       // 8: [6]
      LayerSpec out = layer(LayerKind::Dense, "out");                             // 9: [3]
      ck::DenseAttrs& out_attrs = out.attrs<ck::DenseAttrs>();
      out_attrs.units = 3;
      layers.push_back(reads(out, {8}));
      layers.push_back(reads(layer(LayerKind::Softmax, "softmax"), {9}));         // 10
      ck::Net net({{4, 5, 2}}, layers, {10});
      CHECK(net.layer_output_shape(6) == ck::Shape({4, 5, 6}));
      std::mt19937 rng(19);
      int n = 3;
      ck::Tensor x = make({n, 4, 5, 2}, cktest::random_vector(rng, size_t(n) * 40, -2.f, 2.f));
      check_gradients(net, {x}, {make({n}, {1, 0, 2})}, n, ck::LossKind::SparseCategoricalCrossentropy);
    }
  }
  ck::set_isa(ck::Isa::Scalar);
}

// A multiply whose inputs neither match nor gate one another is a ShapeError naming the layer.
TEST(multiply_rejects_shapes_that_do_not_broadcast) {
  for (ck::Shape gate : {ck::Shape{1, 1, 3}, ck::Shape{4, 1, 2}, ck::Shape{2, 1}}) {
    LayerSpec a = layer(LayerKind::Reshape, "gate");
    ck::ReshapeAttrs& a_attrs = a.attrs<ck::ReshapeAttrs>();
    a_attrs.target_shape = gate;
    a.inputs = {1};
    LayerSpec m = layer(LayerKind::Multiply, "se_excite");
    m.inputs = {0, 2};
    bool threw = false;
    try {
      ck::Net net({{4, 5, 2}, {int64_t(ck::shape_numel(gate))}}, {a, m}, {3});
    } catch (const ck::Error& e) {
      threw = e.kind() == ck::ErrorKind::Shape && std::string(e.what()).find("se_excite") != std::string::npos;
    }
    CHECK(threw);
  }
}

// Zero padding and up-sampling refuse what their ops refuse, naming the layer: a negative pad, a
// padded size past the tensor limit, a size factor out of range, an up-sampled size past it.
TEST(padding_and_upsampling_share_their_ops_checks) {
  struct Case { LayerKind kind; int a, b; ck::ErrorKind want; };
  for (const Case& c : {Case{LayerKind::ZeroPadding2d, -1, 0, ck::ErrorKind::Value},
                        Case{LayerKind::ZeroPadding2d, 1 << 24, 0, ck::ErrorKind::Value},
                        Case{LayerKind::ZeroPadding2d, (1 << 24) - 2, 0, ck::ErrorKind::Shape},
                        Case{LayerKind::UpSampling2d, 0, 1, ck::ErrorKind::Value},
                        Case{LayerKind::UpSampling2d, 1 << 16, 1, ck::ErrorKind::Value},
                        Case{LayerKind::UpSampling2d, (1 << 16) - 1, 1 << 10, ck::ErrorKind::Shape}}) {
    LayerSpec l = layer(c.kind, "spatial_layer");
    if (c.kind == LayerKind::ZeroPadding2d) {
      ck::PaddingAttrs& a = l.attrs<ck::PaddingAttrs>();
      a.top = c.a, a.bottom = c.b;
    } else {
      ck::UpSamplingAttrs& a = l.attrs<ck::UpSamplingAttrs>();
      a.size_h = c.a, a.size_w = c.b;
    }
    bool threw = false;
    try {
      ck::Net net({{8, 8, 1}}, {l}, {1});
    } catch (const ck::Error& e) {
      threw = e.kind() == c.want && std::string(e.what()).find("spatial_layer") != std::string::npos;
    }
    CHECK(threw);
  }
}

TEST(graph_rejects_layers_out_of_order) {
  LayerSpec d = layer(LayerKind::Dense, "d");
  ck::DenseAttrs& d_attrs = d.attrs<ck::DenseAttrs>();
  d_attrs.units = 2, d.inputs = {2};  // its own output
  bool threw = false;
  try {
    ck::Net net({{3}}, {d}, {});
  } catch (const ck::Error& e) {
    threw = e.kind() == ck::ErrorKind::Value;
  }
  CHECK(threw);
}

// Folded inference runs an inverted-residual block (expand, depthwise, project, each with its
// batch norm and ReLU6, and the residual add) by bands of rows over the threads; asking for a
// value inside the block runs the call unfolded, layer by layer. The two must agree, at batch
// sizes that split rows over the threads and that split one image's rows.
TEST(inverted_residual_block_by_bands_equals_layer_by_layer) {
  const int H = 19, C = 8, E = 48;
  auto bn_relu6 = [](std::vector<LayerSpec>& layers, const char* bn, const char* relu) {
    LayerSpec b = layer(LayerKind::BatchNorm, bn);
    ck::NormAttrs& b_attrs = b.attrs<ck::NormAttrs>();
    b_attrs.eps = 1e-3f;
    layers.push_back(b);
    if (!relu) return;
    LayerSpec r = layer(LayerKind::Activation, relu);
    ck::ActivationAttrs& r_attrs = r.attrs<ck::ActivationAttrs>();
    r_attrs.act = ck::Act::ClippedRelu, r_attrs.alpha = 6.f;
    layers.push_back(r);
  };
  auto reads = [](LayerSpec l, std::vector<int> inputs) {
    l.inputs = std::move(inputs);
    return l;
  };
  // values: 0 the image, then 1 + layer index
  std::vector<LayerSpec> layers;
  LayerSpec expand = layer(LayerKind::Conv2d, "expand");  // 1
  ck::ConvAttrs& expand_attrs = expand.attrs<ck::ConvAttrs>();
  expand_attrs.filters = E, expand_attrs.kernel_h = expand_attrs.kernel_w = 1, expand_attrs.use_bias = false;
  layers.push_back(reads(expand, {0}));
  bn_relu6(layers, "expand_bn", "expand_relu");  // 2, 3
  LayerSpec dw = layer(LayerKind::DepthwiseConv2d, "depthwise");  // 4
  ck::ConvAttrs& dw_attrs = dw.attrs<ck::ConvAttrs>();
  dw_attrs.kernel_h = dw_attrs.kernel_w = 3, dw_attrs.depth_multiplier = 1, dw_attrs.padding = ck::Padding::Same;
  dw_attrs.use_bias = false;
  layers.push_back(reads(dw, {3}));
  bn_relu6(layers, "depthwise_bn", "depthwise_relu");  // 5, 6
  LayerSpec project = layer(LayerKind::Conv2d, "project");  // 7
  ck::ConvAttrs& project_attrs = project.attrs<ck::ConvAttrs>();
  project_attrs.filters = C, project_attrs.kernel_h = project_attrs.kernel_w = 1, project_attrs.use_bias = false;
  layers.push_back(reads(project, {6}));
  bn_relu6(layers, "project_bn", nullptr);  // 8
  layers.push_back(reads(layer(LayerKind::Add, "add"), {0, 8}));  // 9
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i].inputs.empty()) layers[i].inputs = {int(i)};
  }
  ck::Net net({{H, H, C}}, layers, {9});
  std::mt19937 rng(23);
  for (size_t p = 0; p < net.params().size(); ++p) {
    const bool variance = net.params()[p].name == "moving_variance";
    net.set_param(int(p), make(net.params()[p].shape,
                               cktest::random_vector(rng, net.params()[p].size, variance ? 0.5f : -0.5f, variance ? 2.f : 0.5f)));
  }
  const int n = 5;
  ck::Tensor x = make({n, H, H, C}, cktest::random_vector(rng, size_t(n) * H * H * C));
  for (int batch : {1, 2, n}) {
    std::vector<ck::Tensor> banded = net.layer_outputs({x}, 0, n, {8}, batch);
    std::vector<ck::Tensor> unfolded = net.layer_outputs({x}, 0, n, {8, 2}, batch);  // asks for expand_relu's value
    net.stream()->synchronize();
    const std::vector<float> a = read(banded[0]), b = read(unfolded[0]);
    CHECK(a.size() == b.size());
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(double(a[i]) - double(b[i])));
    CHECK(worst < 1e-4);
  }
}

TEST(training_steps_are_deterministic) {
  for (ck::Isa isa : {ck::Isa::Scalar, ck::detect_isa()}) {
    ck::set_isa(isa);
    std::vector<std::vector<float>> runs;
    for (int run = 0; run < 2; ++run) {
      std::vector<LayerSpec> layers;
      LayerSpec conv = layer(LayerKind::Conv2d, "conv");
      ck::ConvAttrs& conv_attrs = conv.attrs<ck::ConvAttrs>();
      conv_attrs.filters = 8, conv_attrs.kernel_h = conv_attrs.kernel_w = 3, conv_attrs.act = ck::Act::Relu;
      layers.push_back(conv);
      layers.push_back(layer(LayerKind::Flatten, "flatten"));
      LayerSpec drop = layer(LayerKind::Dropout, "drop");
      ck::DropoutAttrs& drop_attrs = drop.attrs<ck::DropoutAttrs>();
      drop_attrs.rate = 0.3f;
      layers.push_back(drop);
      LayerSpec out = layer(LayerKind::Dense, "out");
      ck::DenseAttrs& out_attrs = out.attrs<ck::DenseAttrs>();
      out_attrs.units = 3;
      layers.push_back(out);
      layers.push_back(layer(LayerKind::Softmax, "softmax"));
      ck::Net net({9, 9, 2}, layers);
      ck::OptimizerSpec adam;
      adam.kind = ck::OptimizerKind::Adam;
      net.compile(ck::LossKind::SparseCategoricalCrossentropy, adam, true);
      std::mt19937 rng(11);
      for (size_t p = 0; p < net.params().size(); ++p) {
        net.set_param(int(p), make(net.params()[p].shape, cktest::random_vector(rng, net.params()[p].size, -0.3f, 0.3f)));
      }
      int n = 16;
      ck::Tensor x = make({n, 9, 9, 2}, cktest::random_vector(rng, size_t(n) * 162));
      std::vector<float> labels(static_cast<size_t>(n));
      for (int i = 0; i < n; ++i) labels[size_t(i)] = float(i % 3);
      ck::Tensor y = make({n}, labels);
      for (int step = 0; step < 5; ++step) {
        net.train_step({x}, {y}, {1, 5, 7, 2, 9, 11, 0, 15}, uint64_t(step), nullptr);
      }
      runs.push_back(read(net.get_param(0)));
    }
    CHECK(runs[0] == runs[1]);
  }
  ck::set_isa(ck::detect_isa());
}

// A spec holds its own kind's attribute struct only: reading it as another kind's (or after its
// kind was changed) is an internal error naming the layer, never a read of the wrong fields.
TEST(layer_spec_attributes_belong_to_their_kind) {
  auto wrong_access = [](auto&& read) {
    try {
      read();
    } catch (const std::logic_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  LayerSpec conv(LayerKind::Conv2d, "conv");
  conv.attrs<ck::ConvAttrs>().filters = 5;
  CHECK(conv.attrs<ck::ConvAttrs>().filters == 5 && conv.attrs<ck::ConvAttrs>().kernel_h == 1);
  CHECK(conv.fused_act() == ck::Act::None);
  const std::string dense = wrong_access([&] { return conv.attrs<ck::DenseAttrs>().units; });
  CHECK(dense.find("conv: a conv2d layer's attributes read as DenseAttrs") != std::string::npos);
  // Kinds sharing a struct: a depthwise conv2d's are ConvAttrs, an up-sampling's not PoolAttrs.
  const LayerSpec dw(LayerKind::DepthwiseConv2d, "dw"), up(LayerKind::UpSampling2d, "up");
  CHECK(wrong_access([&] { return dw.attrs<ck::ConvAttrs>().depth_multiplier; }).empty());
  CHECK(wrong_access([&] { return up.attrs<ck::UpSamplingAttrs>().size_h; }).empty());
  CHECK(!wrong_access([&] { return up.attrs<ck::PoolAttrs>().kernel_h; }).empty());
  LayerSpec changed(LayerKind::Dense, "changed");
  changed.kind = LayerKind::Conv2d;  // still holding DenseAttrs
  CHECK(!wrong_access([&] { return changed.attrs<ck::ConvAttrs>().filters; }).empty());
  CHECK(!wrong_access([&] { return changed.attrs<ck::DenseAttrs>().units; }).empty());
}

CK_TEST_MAIN()
