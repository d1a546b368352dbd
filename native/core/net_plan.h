// The executor's buffers for one batch size (internal to net.cpp / net_train.cpp): every
// layer's activations (flatten layers alias their input), two ping-pong gradient buffers sized
// for the largest activation, dropout masks, batch-norm statistics, targets and per-row losses.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "errors.h"

#include "memory.h"
#include "net.h"

namespace ck {

struct Net::Plan {
  int capacity = 0;  // largest batch the buffers hold
  int batch = 0;     // the batch being run
  std::vector<float*> act;
  std::vector<std::unique_ptr<Scratch>> act_storage;
  std::unique_ptr<Scratch> grad_a, grad_b;
  std::vector<std::unique_ptr<Scratch>> masks, bn_mean, bn_invstd;
  std::unique_ptr<Scratch> targets, row_loss;
};

// {batch, ...example}
inline Shape with_batch(int64_t batch, const Shape& example) {
  Shape out{batch};
  out.insert(out.end(), example.begin(), example.end());
  return out;
}

// "[None,28,28,1]", as Keras prints a batch of examples.
inline std::string batch_shape_str(const Shape& example) {
  std::string s = shape_str(example);
  return "[None" + std::string(example.empty() ? "" : ",") + s.substr(1);
}

}  // namespace ck
