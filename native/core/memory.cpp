#include "memory.h"

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#ifdef _WIN32
#include <malloc.h>
#endif

#include "errors.h"

namespace ck {
namespace {
// The MSVC runtime has no std::aligned_alloc (its free() cannot release an over-aligned block):
// Windows pairs _aligned_malloc with _aligned_free. Every block here goes through this pair.
void* aligned_block(size_t bytes) {
#ifdef _WIN32
  return _aligned_malloc(bytes, kAlignment);
#else
  return std::aligned_alloc(kAlignment, bytes);
#endif
}

void free_block(void* p) {
#ifdef _WIN32
  _aligned_free(p);
#else
  std::free(p);
#endif
}

std::atomic<int64_t> g_live_bytes{0}, g_live_allocs{0}, g_peak_bytes{0};

void count_live(size_t bytes) {
  int64_t now = g_live_bytes.fetch_add(int64_t(bytes)) + int64_t(bytes);
  g_live_allocs.fetch_add(1);
  int64_t peak = g_peak_bytes.load();
  while (now > peak && !g_peak_bytes.compare_exchange_weak(peak, now)) {
  }
}
}  // namespace

void* host_alloc(size_t bytes) {
  size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  void* p = aligned_block(rounded);
  if (!p) {
    throw_error(ErrorKind::Device,
                "out of host memory allocating " + std::to_string(bytes) + " bytes");
  }
  count_live(bytes);
  return p;
}

void host_free(void* p, size_t bytes) {
  if (!p) return;
  free_block(p);
  g_live_bytes.fetch_sub(int64_t(bytes));
  g_live_allocs.fetch_sub(1);
}

HostMemoryStats host_memory_stats() {
  return {g_live_bytes.load(), g_live_allocs.load(), g_peak_bytes.load()};
}

namespace {

// Kernels take and give back the same few temporaries on every step (packed weights, tile
// tables, padded rows): each thread keeps its last freed scratch blocks and hands out one that
// is large enough, so the steady state of fit and predict calls no allocator. Blocks over
// kMaxCachedBytes (activations of a plan) are not kept.
class ScratchCache {
 public:
  static constexpr int kSlots = 8;
  static constexpr size_t kMaxCachedBytes = size_t(256) << 10;

  ~ScratchCache() {
    for (int i = 0; i < count_; ++i) free_block(blocks_[i].p);
    count_ = 0;
    dead_ = true;
  }

  // The smallest kept block of at least `bytes` (and not more than 4x it), or null.
  void* take(size_t bytes, size_t* capacity) {
    int best = -1;
    for (int i = 0; i < count_; ++i) {
      size_t c = blocks_[i].capacity;
      if (c >= bytes && c / 4 <= bytes && (best < 0 || c < blocks_[best].capacity)) best = i;
    }
    if (best < 0) return nullptr;
    void* p = blocks_[best].p;
    *capacity = blocks_[best].capacity;
    blocks_[best] = blocks_[--count_];
    return p;
  }

  // Keeps the block (evicting the oldest when full); false when the caller must free it.
  bool give(void* p, size_t capacity) {
    if (dead_ || capacity > kMaxCachedBytes) return false;
    if (count_ == kSlots) {
      free_block(blocks_[0].p);
      for (int i = 1; i < count_; ++i) blocks_[i - 1] = blocks_[i];
      --count_;
    }
    blocks_[count_++] = {p, capacity};
    return true;
  }

 private:
  struct Block {
    void* p;
    size_t capacity;
  };
  Block blocks_[kSlots] = {};
  int count_ = 0;
  bool dead_ = false;  // this thread is exiting: its scratch goes back to the allocator
};

thread_local ScratchCache t_scratch_cache;

}  // namespace

Scratch::Scratch(size_t floats) : bytes_(floats * sizeof(float)) {
  size_t rounded = (bytes_ + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  if (void* p = t_scratch_cache.take(rounded, &capacity_)) {
    data_ = static_cast<float*>(p);
    count_live(bytes_);
  } else {
    data_ = static_cast<float*>(host_alloc(bytes_));
    capacity_ = rounded;
  }
}

Scratch::~Scratch() {
  if (!data_) return;
  if (t_scratch_cache.give(data_, capacity_)) {
    g_live_bytes.fetch_sub(int64_t(bytes_));
    g_live_allocs.fetch_sub(1);
  } else {
    host_free(data_, bytes_);
  }
}

}  // namespace ck
