// An ordered task queue served by its own worker thread: the CPU's equivalent of a CUDA stream.
// Ops enqueue kernels and return at once; tasks run one after another in order (each may use
// the whole thread pool); callers wait for, or are called back on, a task's sequence number.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "errors.h"

namespace ck {

class Stream {
 public:
  Stream();
  ~Stream();  // runs what is queued, then stops
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Queues a task; returns its sequence number (1, 2, ...). A task that throws is reported to
  // `on_error` (if set) with the error's kind, never propagated.
  uint64_t enqueue(std::function<void()> task,
                   std::function<void(const Failure&)> on_error = nullptr);
  bool done(uint64_t seq) const;
  void wait(uint64_t seq) const;  // blocks the caller until task `seq` has run
  void synchronize() const;       // waits for everything queued so far
  // Calls cb once task `seq` has run: on the worker thread, or at once if it already has.
  void then(uint64_t seq, std::function<void()> cb);

  // The process-wide stream standalone ops run on.
  static const std::shared_ptr<Stream>& default_stream();

 private:
  void run();

  // How long an idle worker polls for the next task before it sleeps.
  static constexpr std::chrono::microseconds kIdleSpin{100};

  mutable std::mutex mutex_;
  mutable std::condition_variable cv_;
  std::deque<std::pair<std::function<void()>, std::function<void(const Failure&)>>> queue_;
  std::multimap<uint64_t, std::function<void()>> callbacks_;
  std::atomic<size_t> queued_{0};  // queue_.size(), readable without the mutex
  uint64_t enqueued_ = 0;
  uint64_t completed_ = 0;
  bool quit_ = false;
  std::thread worker_;
};

}  // namespace ck
