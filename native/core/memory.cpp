#include "memory.h"

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "errors.h"

namespace ck {
namespace {
std::atomic<int64_t> g_live_bytes{0}, g_live_allocs{0}, g_peak_bytes{0};
}

void* host_alloc(size_t bytes) {
  size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (!p) {
    throw_error(ErrorKind::Device,
                "out of host memory allocating " + std::to_string(bytes) + " bytes");
  }
  int64_t now = g_live_bytes.fetch_add(int64_t(bytes)) + int64_t(bytes);
  g_live_allocs.fetch_add(1);
  int64_t peak = g_peak_bytes.load();
  while (now > peak && !g_peak_bytes.compare_exchange_weak(peak, now)) {
  }
  return p;
}

void host_free(void* p, size_t bytes) {
  if (!p) return;
  std::free(p);
  g_live_bytes.fetch_sub(int64_t(bytes));
  g_live_allocs.fetch_sub(1);
}

HostMemoryStats host_memory_stats() {
  return {g_live_bytes.load(), g_live_allocs.load(), g_peak_bytes.load()};
}

Scratch::Scratch(size_t floats)
    : data_(static_cast<float*>(host_alloc(floats * sizeof(float)))), bytes_(floats * sizeof(float)) {}
Scratch::~Scratch() { host_free(data_, bytes_); }

}  // namespace ck
