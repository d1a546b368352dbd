// Moving tensors between host and CUDA memory (tensor.h: to_device, download_async). The copies
// go through cached page-locked staging so that they are asynchronous: nothing here blocks the
// calling thread on the device.
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include "device.h"
#include "errors.h"
#include "op_launch.h"
#include "stream.h"
#include "tensor.h"

namespace ck {

const char* device_name(DeviceType d) { return d == DeviceType::Cuda ? "cuda" : "cpu"; }

namespace {

Tensor upload(const Tensor& x, const char* op) {
  Tensor y = empty_tensor(x.shape, op, DeviceType::Cuda);
  size_t bytes = x.numel() * sizeof(float);
  if (bytes == 0) return y;
  DeviceBackend& b = cuda_backend();
  void* s = b.stream();
  void* pinned = b.alloc_pinned(bytes);
  StoragePtr xs = x.storage, ys = y.storage;
  std::string name = op;
  // The values are taken when to() is called: a task on the default CPU stream copies x into the
  // staging buffer after x's producer and before any later CPU op (an in-place update, say)
  // writes x; the CUDA stream waits for that task with a host callback, then copies to the
  // device. Nothing blocks the calling thread.
  const std::shared_ptr<Stream>& cpu = Stream::default_stream();
  const Stream* self = cpu.get();
  uint64_t seq = cpu->enqueue([xs, ys, pinned, bytes, name, self] {
    try {
      xs->wait_from_other_stream(self);
      if (Failure failed = xs->error()) throw Error(*failed);
      std::memcpy(pinned, xs->data(), bytes);
    } catch (...) {
      ys->set_error(with_prefix(current_failure(), name + ": input failed: "));
    }
  });
  try {
    std::shared_ptr<Stream> waiter = cpu;  // the default stream is never destroyed
    b.host_callback(s, [waiter, seq] { waiter->wait(seq); });
  } catch (...) {
    cpu->wait(seq);
    b.release_pinned(pinned, bytes);
    throw;
  }
  b.copy_h2d(y.data(), pinned, bytes, s);
  b.host_callback(s, [&b, pinned, bytes] { b.release_pinned(pinned, bytes); });
  return y;
}

struct Arrival {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Failure error;
};

Tensor download(const Tensor& x, const char* op) {
  auto arrival = std::make_shared<Arrival>();
  Tensor y = download_async(x, [arrival](const Failure& error) {
    std::lock_guard<std::mutex> lk(arrival->mu);
    arrival->error = error;
    arrival->done = true;
    arrival->cv.notify_all();
  });
  DeviceBackend& b = cuda_backend();
  void* event = b.record_event(b.stream());
  // The CPU side: a task on the default stream that finishes when the values are in y, so CPU
  // ops, data() and dataSync() on y wait for it as for any op. It waits for the event (which
  // reports a failed device instead of waiting forever), then for the copy's callback.
  launch_on(Stream::default_stream(), op, {}, {&y}, [arrival, event, &b] {
    struct Destroy {
      DeviceBackend& b;
      void* e;
      ~Destroy() { b.event_destroy(e); }
    } destroy{b, event};
    b.event_synchronize(event);
    std::unique_lock<std::mutex> lk(arrival->mu);
    arrival->cv.wait(lk, [&] { return arrival->done; });
    if (arrival->error) throw Error(*arrival->error);
  });
  return y;
}

}  // namespace

Tensor download_async(const Tensor& x, std::function<void(const Failure&)> done) {
  require(x.device() == DeviceType::Cuda, ErrorKind::Device, "download: the tensor is not on cuda");
  Tensor y = empty_tensor(x.shape, "data", DeviceType::Cpu);
  size_t bytes = x.numel() * sizeof(float);
  DeviceBackend& b = cuda_backend();
  void* s = b.stream();
  void* pinned = bytes ? b.alloc_pinned(bytes) : nullptr;
  try {
    b.copy_d2h(pinned, x.data(), bytes, s);
  } catch (...) {
    b.release_pinned(pinned, bytes);
    throw;
  }
  StoragePtr xs = x.storage, ys = y.storage;
  b.host_callback(s, [&b, xs, ys, pinned, bytes, done = std::move(done)]() mutable {
    if (bytes) std::memcpy(ys->data(), pinned, bytes);
    b.release_pinned(pinned, bytes);
    const Failure error = xs->error();
    // Let go of x before the caller hears of the values: once data() settles, x's device block
    // is the caller's alone (dispose() then ck.memory() sees it freed).
    xs.reset();
    ys.reset();
    done(error);
  });
  return y;
}

Tensor to_device(const Tensor& x, DeviceType device, const char* op) {
  if (x.device() == device) return x;
  if (device == DeviceType::Cuda) return upload(x, op);
  return download(x, op);
}

}  // namespace ck
