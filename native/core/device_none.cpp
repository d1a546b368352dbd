// The CUDA backend of a build without CUDA (CONVKIT_CUDA=OFF, or node-gyp): reports CUDA as
// unavailable and refuses everything else with a DeviceError saying why.
#include "device.h"
#include "errors.h"

namespace ck {
namespace {

constexpr const char* kReason = "built without CUDA";

[[noreturn]] void refuse() {
  throw_error(ErrorKind::Device, std::string("CUDA is unavailable: ") + kReason);
}

class NoCudaBackend final : public DeviceBackend {
 public:
  bool available() override { return false; }
  std::string unavailable_reason() override { return kReason; }
  int device_count() override { return 0; }
  GpuInfo device_info(int) override { refuse(); }
  const CudaKernels& kernels() override { refuse(); }
  void* alloc(size_t) override { refuse(); }
  void release(void*, size_t) override {}
  void empty_cache() override {}
  DeviceMemoryStats memory_stats() override { return {}; }
  void* alloc_pinned(size_t) override { refuse(); }
  void release_pinned(void*, size_t) override {}
  void* stream() override { refuse(); }
  void* create_stream() override { refuse(); }
  void destroy_stream(void*) override {}  // runs in destructors: must not throw
  void copy_h2d(void*, const void*, size_t, void*) override { refuse(); }
  void copy_d2h(void*, const void*, size_t, void*) override { refuse(); }
  void copy_d2d(void*, const void*, size_t, void*) override { refuse(); }
  void zero(void*, size_t, void*) override { refuse(); }
  void begin_capture(void*) override { refuse(); }
  void* end_capture(void*) override { refuse(); }
  void launch_graph(void*, void*) override { refuse(); }
  void destroy_graph(void*) override {}  // runs in destructors: must not throw
  void host_callback(void*, std::function<void()>) override { refuse(); }
  void* record_event(void*) override { refuse(); }
  void event_synchronize(void*) override { refuse(); }
  void event_destroy(void*) override {}
  void stream_wait_event(void*, void*) override { refuse(); }
  void synchronize(void*) override {}
};

}  // namespace

DeviceBackend& cuda_backend() {
  static NoCudaBackend backend;
  return backend;
}

}  // namespace ck
