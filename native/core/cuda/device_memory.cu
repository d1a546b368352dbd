// Device memory, streams and events (device_memory.h), and the internal error / scratch helpers
// of cuda_common.cuh.
#include <cstdio>
#include <mutex>

#include "cuda_common.cuh"
#include "device_memory.h"

namespace ck {
namespace cuda {

void throw_cuda(cudaError_t err, const char* what) {
  throw_error(ErrorKind::Device, std::string("cuda: ") + what + ": " + cudaGetErrorName(err) +
                                     " (" + cudaGetErrorString(err) + ")");
}

void require_int_range(size_t v, const char* op, const char* what) {
  if (v > size_t(INT_MAX)) {
    throw_error(ErrorKind::Value, std::string(op) + ": " + what + " (" + std::to_string(v) +
                                      ") exceeds the CUDA kernels' 2^31-1 limit");
  }
}

namespace {
bool pools_supported() {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return false;
  static std::mutex mu;
  static int cache[64];  // 0 unknown, 1 yes, 2 no
  std::lock_guard<std::mutex> lock(mu);
  if (dev < 0 || dev >= 64) return false;
  if (cache[dev] == 0) {
    int v = 0;
    cudaDeviceGetAttribute(&v, cudaDevAttrMemoryPoolsSupported, dev);
    cache[dev] = v ? 1 : 2;
  }
  return cache[dev] == 1;
}
}  // namespace

Scratch::Scratch(size_t bytes, cudaStream_t stream) : stream_(stream) {
  if (bytes == 0) return;
  async_ = pools_supported();
  if (async_) {
    check(cudaMallocAsync(&p_, bytes, stream), "cudaMallocAsync (kernel scratch)");
  } else {
    check(cudaMalloc(&p_, bytes), "cudaMalloc (kernel scratch)");
  }
}

Scratch::~Scratch() {
  if (!p_) return;
  if (async_) {
    cudaFreeAsync(p_, stream_);
  } else {
    cudaStreamSynchronize(stream_);
    cudaFree(p_);
  }
}

int device_count(std::string* why) {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    if (why) {
      *why = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(err) + " (" +
             cudaGetErrorString(err) + ")";
    }
    cudaGetLastError();  // clear
    return 0;
  }
  if (n == 0 && why) *why = "no CUDA device";
  return n;
}

std::string device_description(int device) {
  cudaDeviceProp prop;
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  char buf[512];
  std::snprintf(buf, sizeof buf, "%s (sm_%d%d, %d SMs, %.1f GiB)", prop.name, prop.major,
                prop.minor, prop.multiProcessorCount,
                double(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

void set_device(int device) { check(cudaSetDevice(device), "cudaSetDevice"); }

void* device_alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = nullptr;
  check(cudaMalloc(&p, bytes), "cudaMalloc");
  return p;
}

void device_free(void* p) {
  if (p) cudaFree(p);
}

void copy_to_device(void* dst, const void* src, size_t bytes) {
  if (bytes) check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy H2D");
}

void copy_to_host(void* dst, const void* src, size_t bytes) {
  if (bytes) check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
}

void device_memset(void* p, int value, size_t bytes) {
  if (bytes) check(cudaMemset(p, value, bytes), "cudaMemset");
}

void* stream_create() {
  cudaStream_t s = nullptr;
  check(cudaStreamCreate(&s), "cudaStreamCreate");
  return s;
}

void stream_destroy(void* stream) {
  if (stream) cudaStreamDestroy(as_stream(stream));
}

void stream_sync(void* stream) {
  check(cudaStreamSynchronize(as_stream(stream)), "cudaStreamSynchronize");
}

void device_sync() { check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

void* event_create() {
  cudaEvent_t e = nullptr;
  check(cudaEventCreate(&e), "cudaEventCreate");
  return e;
}

void event_destroy(void* event) {
  if (event) cudaEventDestroy(static_cast<cudaEvent_t>(event));
}

void event_record(void* event, void* stream) {
  check(cudaEventRecord(static_cast<cudaEvent_t>(event), as_stream(stream)), "cudaEventRecord");
}

float event_elapsed_ms(void* start, void* end) {
  check(cudaEventSynchronize(static_cast<cudaEvent_t>(end)), "cudaEventSynchronize");
  float ms = 0.f;
  check(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start), static_cast<cudaEvent_t>(end)),
        "cudaEventElapsedTime");
  return ms;
}

}  // namespace cuda
}  // namespace ck
