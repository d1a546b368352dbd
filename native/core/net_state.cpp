// The network executor's weights and optimizer state, read and written in stream order with its
// steps (getWeights / setWeights, get/setOptimizerState), on either device.
#include <string>

#include "errors.h"
#include "net.h"
#include "op_launch.h"

namespace ck {

Tensor Net::get_param(int index) {
  require(index >= 0 && size_t(index) < params_.size(), ErrorKind::Value,
          "getWeights: no weight " + std::to_string(index));
  const ParamInfo& p = params_[size_t(index)];
  Tensor out = empty_tensor(p.shape, "getWeights");
  float* src = param_ptr(index);
  enqueue("getWeights", {}, {&out}, [this, out, src] { download_values(out.data(), src, out.numel()); });
  return out;
}

void Net::set_param(int index, const Tensor& value) {
  require(index >= 0 && size_t(index) < params_.size(), ErrorKind::Value,
          "setWeights: no weight " + std::to_string(index));
  const ParamInfo& p = params_[size_t(index)];
  const std::string& layer = layers_[size_t(p.layer)].name;
  require(value.shape == p.shape, ErrorKind::Shape,
          "setWeights: " + layer + "/" + p.name + " has shape " + shape_str(p.shape) +
              ", got " + shape_str(value.shape));
  float* dst = param_ptr(index);
  enqueue("setWeights", {&value}, {}, [this, value, dst] {
    upload_values(dst, value.data(), value.numel());
    ++weights_version_;
  });
}

std::vector<Tensor> Net::get_optimizer_state() {
  std::vector<Tensor> out;
  for (const StoragePtr& s : opt_state_) {
    Tensor t = empty_tensor({int64_t(n_weights_)}, "getOptimizerState");
    const float* src = s->data();
    size_t n = n_weights_;
    enqueue("getOptimizerState", {}, {&t}, [this, t, src, n] { download_values(t.data(), src, n); });
    out.push_back(t);
  }
  return out;
}

void Net::set_optimizer_state(const std::vector<Tensor>& state, int64_t iterations) {
  require(compiled_, ErrorKind::Value, "setOptimizerState: compile the model first");
  require(state.size() == opt_state_.size(), ErrorKind::Format,
          "setOptimizerState: the optimizer keeps " + std::to_string(opt_state_.size()) +
              " buffers, got " + std::to_string(state.size()));
  require(iterations >= 0, ErrorKind::Value, "setOptimizerState: iterations must be >= 0");
  for (size_t i = 0; i < state.size(); ++i) {
    require(state[i].numel() == n_weights_, ErrorKind::Format,
            "setOptimizerState: buffer " + std::to_string(i) + " has " +
                std::to_string(state[i].numel()) + " values, expected " +
                std::to_string(n_weights_));
    float* dst = opt_state_[i]->data();
    const Tensor& src = state[i];
    size_t n = n_weights_;
    enqueue("setOptimizerState", {&src}, {}, [this, src, dst, n] { upload_values(dst, src.data(), n); });
  }
  enqueue("setOptimizerState", {}, {}, [this, iterations] { iterations_ = iterations; });
}

}  // namespace ck
