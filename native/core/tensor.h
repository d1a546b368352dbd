// Tensors of the core: a shape over a float32 Storage. A Storage remembers which stream task
// produces it, so readers can wait for (or be called back on) exactly that task.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "device.h"
#include "stream.h"

namespace ck {

using Shape = std::vector<int64_t>;

// Largest element count a tensor may hold (2^31-1 floats, 8 GiB); keeps every index in range of
// the kernels' int/size_t arithmetic and bounds what hostile shapes can make us allocate.
constexpr int64_t kMaxElements = (int64_t(1) << 31) - 1;

class Storage {
 public:
  // Owned memory (uninitialised): 64-byte-aligned host memory, or a block of the CUDA backend's
  // caching allocator (throws DeviceError when CUDA is unavailable or out of memory).
  explicit Storage(size_t floats, DeviceType device = DeviceType::Cpu);
  // Borrowed memory kept alive by `release` being called only when the storage dies.
  Storage(float* data, size_t floats, std::function<void()> release);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  float* data() const { return data_; }
  size_t size() const { return size_; }
  bool owned() const { return owned_; }
  DeviceType device() const { return device_; }

  // Producer tracking: set when a task that writes this storage is enqueued. CUDA storages have
  // no producer: their work is ordered by the backend's one stream. The producer and the error
  // are read by stream threads while the JS thread enqueues the next writer, so a mutex guards
  // them.
  void set_producer(std::shared_ptr<Stream> stream, uint64_t seq);
  // Blocks until the producer ran; throws its error, if it failed.
  void wait() const;
  bool ready() const;
  // The producing stream and its task, the stream null when there is none or it is gone (and so
  // has run all its tasks): storages must not keep streams alive, or a stream's last owner could
  // be its own worker thread.
  std::pair<std::shared_ptr<Stream>, uint64_t> current_producer() const;
  void set_error(Failure failure);
  Failure error() const;  // null unless the producer failed
  // Makes `stream`'s next task wait for this storage's producer if it is on another stream.
  void wait_from_other_stream(const Stream* stream) const;

 private:
  float* data_;
  size_t size_;
  bool owned_;
  DeviceType device_ = DeviceType::Cpu;
  std::function<void()> release_;
  mutable std::mutex mu_;  // guards producer_, seq_ and error_
  std::weak_ptr<Stream> producer_;
  uint64_t seq_ = 0;
  Failure error_;
};

using StoragePtr = std::shared_ptr<Storage>;

struct Tensor {
  Shape shape;
  StoragePtr storage;

  int rank() const { return int(shape.size()); }
  int64_t dim(int i) const { return shape[size_t(i)]; }
  size_t numel() const;
  float* data() const { return storage->data(); }
  DeviceType device() const { return storage ? storage->device() : DeviceType::Cpu; }
};

size_t shape_numel(const Shape& shape);
// Throws ShapeError (naming `op`) for more than 8 dimensions, negative or oversized shapes.
void check_shape(const Shape& shape, const char* op);
// A new, uninitialised tensor; throws ShapeError for negative or oversized shapes (naming `op`),
// DeviceError when the device cannot hold it.
Tensor empty_tensor(const Shape& shape, const char* op = "tensor",
                    DeviceType device = DeviceType::Cpu);
// A tensor over borrowed memory (e.g. a JS Float32Array), released by `release`.
Tensor wrap_tensor(float* data, const Shape& shape, std::function<void()> release);

// ---- moving values between devices (all asynchronous) ----
// A copy of x on `device` (x itself when it is already there), of its values as of this call in
// stream order. Host -> CUDA: a task on the default CPU stream stages x (after its producer,
// before later CPU ops), and the CUDA stream waits for that task; CUDA -> host: a task on the
// default CPU stream that finishes when the copy has arrived, so CPU ops and data() order after
// it as usual.
Tensor to_device(const Tensor& x, DeviceType device, const char* op = "to");
// Enqueues a copy of CUDA tensor x into a new host tensor and calls done(null or the failure) on a
// CUDA-owned thread once the values are there. The host tensor has no producer: read it only
// after done. done must not throw or make CUDA calls.
Tensor download_async(const Tensor& x, std::function<void(const Failure& error)> done);

}  // namespace ck
