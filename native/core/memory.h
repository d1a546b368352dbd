// Host memory: 64-byte-aligned allocations with exact live counts (ck.memory()), and the
// Scratch buffer kernels use for temporaries. Defined out of line so the per-ISA kernel units
// stay free of std containers (see cpu/simd.h).
#pragma once
#include <cstddef>
#include <cstdint>

namespace ck {

constexpr size_t kAlignment = 64;

// Throws DeviceError (out of memory) on failure; zero bytes gives a valid unique pointer.
void* host_alloc(size_t bytes);
void host_free(void* p, size_t bytes);

struct HostMemoryStats {
  int64_t live_bytes;
  int64_t live_allocations;
  int64_t peak_bytes;
};
HostMemoryStats host_memory_stats();

// Uninitialised float scratch, freed on scope exit (into a small per-thread cache that the
// next Scratch of a similar size on that thread reuses).
class Scratch {
 public:
  explicit Scratch(size_t floats);
  ~Scratch();
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  float* data() const { return data_; }

 private:
  float* data_ = nullptr;
  size_t bytes_;
  size_t capacity_ = 0;  // bytes of the block behind data_
};

}  // namespace ck
