#include "tensor.h"

#include "errors.h"
#include "memory.h"

namespace ck {

namespace {
float* allocate(size_t floats, DeviceType device) {
  size_t bytes = floats * sizeof(float);
  return static_cast<float*>(device == DeviceType::Cuda ? cuda_backend().alloc(bytes)
                                                        : host_alloc(bytes));
}
}  // namespace

Storage::Storage(size_t floats, DeviceType device)
    : data_(allocate(floats, device)), size_(floats), owned_(true), device_(device) {}

Storage::Storage(float* data, size_t floats, std::function<void()> release)
    : data_(data), size_(floats), owned_(false), release_(std::move(release)) {}

Storage::~Storage() {
  if (owned_ && device_ == DeviceType::Cuda) {
    cuda_backend().release(data_, size_ * sizeof(float));
  } else if (owned_) {
    host_free(data_, size_ * sizeof(float));
  } else if (release_) {
    release_();
  }
}

void Storage::set_producer(std::shared_ptr<Stream> stream, uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  producer_ = std::move(stream);
  seq_ = seq;
}

std::pair<std::shared_ptr<Stream>, uint64_t> Storage::current_producer() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {producer_.lock(), seq_};
}

bool Storage::ready() const {
  auto [s, seq] = current_producer();
  return !s || s->done(seq);
}

void Storage::wait() const {
  auto [s, seq] = current_producer();
  if (s) s->wait(seq);
  if (Failure failed = error()) throw Error(*failed);
}

void Storage::set_error(Failure failure) {
  std::lock_guard<std::mutex> lock(mu_);
  error_ = std::move(failure);
}

Failure Storage::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

void Storage::wait_from_other_stream(const Stream* stream) const {
  auto [s, seq] = current_producer();
  if (s && s.get() != stream) s->wait(seq);
}

size_t shape_numel(const Shape& shape) {
  size_t n = 1;
  for (int64_t d : shape) n *= size_t(d);
  return n;
}

size_t Tensor::numel() const { return shape_numel(shape); }

void check_shape(const Shape& shape, const char* op) {
  if (shape.size() > 8) {
    throw_error(ErrorKind::Shape, std::string(op) + ": at most 8 dimensions are supported, got " +
                                      std::to_string(shape.size()) + " " + shape_str(shape));
  }
  // A zero dimension anywhere makes the tensor empty, however large the others are.
  bool empty = false;
  for (int64_t d : shape) empty |= d == 0;
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) {
      throw_error(ErrorKind::Shape,
                  std::string(op) + ": dimensions must be >= 0, got shape " + shape_str(shape));
    }
    if (empty) continue;
    if (n > kMaxElements / d) {
      throw_error(ErrorKind::Shape, std::string(op) + ": shape " + shape_str(shape) +
                                        " has more than 2^31-1 elements");
    }
    n *= d;
  }
}

Tensor empty_tensor(const Shape& shape, const char* op, DeviceType device) {
  check_shape(shape, op);
  if (device == DeviceType::Cuda && !cuda_backend().available()) {
    throw_error(ErrorKind::Device, std::string(op) + ": CUDA is unavailable: " +
                                       cuda_backend().unavailable_reason());
  }
  if (device == DeviceType::Cpu) return Tensor{shape, std::make_shared<Storage>(shape_numel(shape))};
  try {
    return Tensor{shape, std::make_shared<Storage>(shape_numel(shape), device)};
  } catch (const Error& e) {
    throw Error(e.kind(), std::string(op) + ": " + e.what());
  }
}

Tensor wrap_tensor(float* data, const Shape& shape, std::function<void()> release) {
  check_shape(shape, "tensor");
  return Tensor{shape, std::make_shared<Storage>(data, shape_numel(shape), std::move(release))};
}

}  // namespace ck
