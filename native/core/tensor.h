// Tensors of the core: a shape over a float32 Storage. A Storage remembers which stream task
// produces it, so readers can wait for (or be called back on) exactly that task.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "stream.h"

namespace ck {

using Shape = std::vector<int64_t>;

// Largest element count a tensor may hold (2^31-1 floats, 8 GiB); keeps every index in range of
// the kernels' int/size_t arithmetic and bounds what hostile shapes can make us allocate.
constexpr int64_t kMaxElements = (int64_t(1) << 31) - 1;

class Storage {
 public:
  // Owned, 64-byte-aligned host memory (uninitialised).
  explicit Storage(size_t floats);
  // Borrowed memory kept alive by `release` being called only when the storage dies.
  Storage(float* data, size_t floats, std::function<void()> release);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  float* data() const { return data_; }
  size_t size() const { return size_; }
  bool owned() const { return owned_; }

  // Producer tracking: set when a task that writes this storage is enqueued.
  void set_producer(std::shared_ptr<Stream> stream, uint64_t seq);
  // Blocks until the producer ran; throws its error, if it failed.
  void wait() const;
  bool ready() const;
  // The producing stream, or null when there is none or it is gone (and so has run all its
  // tasks): storages must not keep streams alive, or a stream's last owner could be its own
  // worker thread.
  std::shared_ptr<Stream> producer() const { return producer_.lock(); }
  uint64_t producer_seq() const { return seq_; }
  void set_error(const std::string& message);
  std::string error() const;
  // Makes `stream`'s next task wait for this storage's producer if it is on another stream.
  void wait_from_other_stream(const Stream* stream) const;

 private:
  float* data_;
  size_t size_;
  bool owned_;
  std::function<void()> release_;
  std::weak_ptr<Stream> producer_;
  uint64_t seq_ = 0;
  mutable std::shared_ptr<std::string> error_;
};

using StoragePtr = std::shared_ptr<Storage>;

struct Tensor {
  Shape shape;
  StoragePtr storage;

  int rank() const { return int(shape.size()); }
  int64_t dim(int i) const { return shape[size_t(i)]; }
  size_t numel() const;
  float* data() const { return storage->data(); }
};

size_t shape_numel(const Shape& shape);
// A new, uninitialised tensor; throws ShapeError for negative or oversized shapes (naming `op`).
Tensor empty_tensor(const Shape& shape, const char* op = "tensor");
// A tensor over borrowed memory (e.g. a JS Float32Array), released by `release`.
Tensor wrap_tensor(float* data, const Shape& shape, std::function<void()> release);

}  // namespace ck
