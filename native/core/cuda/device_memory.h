// Plain device-memory and stream helpers (cudaMalloc / cudaMemcpy wrappers) for tests and
// benchmarks; no CUDA types, so host-only C++ can include this. Errors throw ck::Error
// (ErrorKind::Device) naming the CUDA call. The caching allocator comes later.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace ck {
namespace cuda {

// Number of usable CUDA devices; 0 with the reason in *why when there is none (no driver, no
// GPU, driver too old for this runtime, ...). Never throws.
int device_count(std::string* why = nullptr);
// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)"
std::string device_description(int device = 0);
void set_device(int device);

void* device_alloc(size_t bytes);   // cudaMalloc; 0 bytes gives nullptr
void device_free(void* p);          // cudaFree; nullptr is a no-op
void copy_to_device(void* dst, const void* src, size_t bytes);  // synchronous
void copy_to_host(void* dst, const void* src, size_t bytes);    // synchronous
void device_memset(void* p, int value, size_t bytes);           // synchronous

// A stream that orders with the legacy default stream (so the synchronous copies and memsets
// above are ordered with the kernels enqueued on it).
void* stream_create();
void stream_destroy(void* stream);
void stream_sync(void* stream);     // nullptr: the legacy default stream
void device_sync();                 // cudaDeviceSynchronize, and reports errors from kernels

// Events for timing: record on a stream, elapsed milliseconds between two recorded events.
void* event_create();
void event_destroy(void* event);
void event_record(void* event, void* stream);
float event_elapsed_ms(void* start, void* end);  // waits for `end`

// An owning device array of T (trivially copyable).
template <class T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(size_t n) : n_(n), p_(static_cast<T*>(device_alloc(n * sizeof(T)))) {}
  explicit DeviceArray(const std::vector<T>& v) : DeviceArray(v.size()) { upload(v); }
  ~DeviceArray() { device_free(p_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& o) noexcept : n_(o.n_), p_(o.p_) { o.n_ = 0, o.p_ = nullptr; }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    if (this != &o) {
      device_free(p_);
      n_ = o.n_, p_ = o.p_;
      o.n_ = 0, o.p_ = nullptr;
    }
    return *this;
  }

  T* data() const { return p_; }
  size_t size() const { return n_; }
  void upload(const T* src, size_t n) { copy_to_device(p_, src, n * sizeof(T)); }
  void upload(const std::vector<T>& v) { upload(v.data(), v.size() < n_ ? v.size() : n_); }
  void download(T* dst, size_t n) const { copy_to_host(dst, p_, n * sizeof(T)); }
  std::vector<T> to_host() const {
    std::vector<T> v(n_);
    if (n_) download(v.data(), n_);
    return v;
  }
  void fill_bytes(int value) { device_memset(p_, value, n_ * sizeof(T)); }

 private:
  size_t n_ = 0;
  T* p_ = nullptr;
};

}  // namespace cuda
}  // namespace ck
