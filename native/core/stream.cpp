#include "stream.h"

#include <exception>
#include <vector>

#include "denormals.h"
#include "spin_wait.h"
#include "thread_pool.h"

namespace ck {

Stream::Stream() : worker_([this] { run(); }) {}

Stream::~Stream() {
  {
    std::lock_guard<std::mutex> lk(mutex_);
    quit_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

uint64_t Stream::enqueue(std::function<void()> task,
                         std::function<void(const Failure&)> on_error) {
  uint64_t seq;
  {
    std::lock_guard<std::mutex> lk(mutex_);
    queue_.emplace_back(std::move(task), std::move(on_error));
    seq = ++enqueued_;
    queued_.store(queue_.size(), std::memory_order_release);
  }
  cv_.notify_all();
  return seq;
}

bool Stream::done(uint64_t seq) const {
  std::lock_guard<std::mutex> lk(mutex_);
  return completed_ >= seq;
}

void Stream::wait(uint64_t seq) const {
  std::unique_lock<std::mutex> lk(mutex_);
  cv_.wait(lk, [&] { return completed_ >= seq; });
}

void Stream::synchronize() const {
  uint64_t last;
  {
    std::lock_guard<std::mutex> lk(mutex_);
    last = enqueued_;
  }
  wait(last);
}

void Stream::then(uint64_t seq, std::function<void()> cb) {
  {
    std::lock_guard<std::mutex> lk(mutex_);
    if (completed_ < seq) {
      callbacks_.emplace(seq, std::move(cb));
      return;
    }
  }
  cb();
}

void Stream::run() {
  enable_flush_denormals();
  for (;;) {
    std::function<void()> task;
    std::function<void(const Failure&)> on_error;
    // The next request of a loop (predictOnBatch after predictOnBatch) usually comes within
    // microseconds of the last one's promise settling: poll for it before sleeping.
    spin_until([&] { return queued_.load(std::memory_order_acquire) != 0; }, kIdleSpin);
    {
      std::unique_lock<std::mutex> lk(mutex_);
      cv_.wait(lk, [&] { return quit_ || !queue_.empty(); });
      if (queue_.empty()) return;  // quit with nothing left
      task = std::move(queue_.front().first);
      on_error = std::move(queue_.front().second);
      queue_.pop_front();
      queued_.store(queue_.size(), std::memory_order_release);
    }
    try {
      ThreadCountScope fixed_threads;  // ck.setThreads may resize the pool while this runs
      task();
    } catch (...) {
      if (on_error) on_error(current_failure());
    }
    // Release captured buffers (the task's and its error handler's) before anyone is told the
    // task is done: a caller that synchronizes then sees its memory freed.
    task = nullptr;
    on_error = nullptr;
    std::vector<std::function<void()>> ready;
    {
      std::lock_guard<std::mutex> lk(mutex_);
      ++completed_;
      auto end = callbacks_.upper_bound(completed_);
      for (auto it = callbacks_.begin(); it != end; ++it) ready.push_back(std::move(it->second));
      callbacks_.erase(callbacks_.begin(), end);
    }
    cv_.notify_all();
    for (auto& cb : ready) cb();
  }
}

const std::shared_ptr<Stream>& Stream::default_stream() {
  // Never destroyed: its worker may still be running at exit, when statics are torn down.
  static auto* stream = new std::shared_ptr<Stream>(std::make_shared<Stream>());
  return *stream;
}

}  // namespace ck
