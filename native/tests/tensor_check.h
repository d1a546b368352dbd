// Helpers for the tests of the core's tensors, ops and network executor (not the kernels):
// a tensor from values, and a tensor's values once its producing task has run.
#pragma once
#include <cstring>
#include <vector>

#include "ops.h"
#include "tensor.h"

namespace cktest {

inline ck::Tensor make(const ck::Shape& shape, const std::vector<float>& values) {
  ck::Tensor t = ck::empty_tensor(shape);
  std::memcpy(t.data(), values.data(), values.size() * sizeof(float));
  return t;
}

inline std::vector<float> read(const ck::Tensor& t) {
  t.storage->wait();
  return std::vector<float>(t.data(), t.data() + t.numel());
}

}  // namespace cktest
