#include "thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "cpu_count.h"
#include "denormals.h"
#include "spin_wait.h"

namespace ck {
namespace {

thread_local bool tl_inside_pool = false;
thread_local int tl_fixed_threads = 0;  // set by ThreadCountScope; 0: the pool's current count

int machine_threads() { return default_threads().threads; }

class Pool {
 public:
  static constexpr std::chrono::microseconds kIdleSpin{100};
  static constexpr std::chrono::microseconds kJoinSpin{200};

  explicit Pool(int threads) { start(threads); }
  ~Pool() { stop(); }

  int threads() const { return threads_.load(std::memory_order_acquire); }

  void resize(int threads) {
    std::lock_guard<std::mutex> run_lock(run_mutex_);
    stop();
    start(threads);
  }

  void run(int tasks, FunctionRef<void(int)> fn) {
    if (tasks <= 0) return;
    auto run_inline = [&] {
      for (int t = 0; t < tasks; ++t) fn(t);
    };
    if (tasks == 1 || threads() == 1 || tl_inside_pool) return run_inline();
    std::lock_guard<std::mutex> run_lock(run_mutex_);
    if (threads_ == 1) return run_inline();  // resized to one thread while this waited
    enable_flush_denormals();
    fn_ = &fn;
    tasks_ = tasks;
    pending_.store(threads_ - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lk(wake_mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_cv_.notify_all();
    tl_inside_pool = true;
    run_share(0);
    tl_inside_pool = false;
    // Spin briefly (most chunks finish together), then sleep until the last worker reports.
    auto all_done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
    if (!spin_until(all_done, kJoinSpin)) {
      std::unique_lock<std::mutex> lk(done_mutex_);
      done_cv_.wait(lk, all_done);
    }
    fn_ = nullptr;
  }

 private:
  void start(int threads) {
    threads_ = std::max(1, threads);
    quit_ = false;
    // Workers start from the current generation so a job posted before they run is not missed.
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, i, gen] { worker(i, gen); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(wake_mutex_);
      quit_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  void run_share(int index) {
    const int threads = threads_.load(std::memory_order_relaxed);
    for (int t = index; t < tasks_; t += threads) (*fn_)(t);
  }

  void worker(int index, uint64_t seen) {
    enable_flush_denormals();
    tl_inside_pool = true;
    for (;;) {
      // Between the layers of a step the next job follows within microseconds: poll first.
      spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; }, kIdleSpin);
      uint64_t gen = generation_.load(std::memory_order_acquire);
      if (gen == seen) {
        std::unique_lock<std::mutex> lk(wake_mutex_);
        wake_cv_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        gen = generation_.load(std::memory_order_acquire);
      }
      seen = gen;
      if (quit_) return;
      run_share(index);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lk(done_mutex_);
        done_cv_.notify_one();
      }
    }
  }

  std::atomic<int> threads_{1};  // written under run_mutex_, read without it by num_threads()
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;
  std::mutex wake_mutex_;
  std::condition_variable wake_cv_;
  std::mutex done_mutex_;
  std::condition_variable done_cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> quit_{false};
  FunctionRef<void(int)>* fn_ = nullptr;
  int tasks_ = 0;
};

Pool& pool() {
  // Never destroyed: at exit, stream workers may still be inside a parallel region, and joining
  // the pool's threads from a static destructor could then wait forever.
  static Pool* instance = new Pool(machine_threads());
  return *instance;
}

}  // namespace

int num_threads() { return tl_fixed_threads ? tl_fixed_threads : pool().threads(); }

ThreadCountScope::ThreadCountScope() : saved_(tl_fixed_threads) { tl_fixed_threads = num_threads(); }
ThreadCountScope::~ThreadCountScope() { tl_fixed_threads = saved_; }

void set_num_threads(int n) { pool().resize(n <= 0 ? machine_threads() : std::min(n, 256)); }

void parallel_run(int tasks, FunctionRef<void(int)> fn) { pool().run(tasks, fn); }

int parallel_chunks(size_t n, size_t grain) {
  if (n == 0) return 0;
  grain = std::max<size_t>(grain, 1);
  size_t by_grain = (n + grain - 1) / grain;
  return int(std::min<size_t>(by_grain, size_t(num_threads())));
}

void parallel_for(size_t n, size_t grain, FunctionRef<void(size_t, size_t, int)> fn) {
  int chunks = parallel_chunks(n, grain);
  if (chunks <= 1) {
    if (n) fn(0, n, 0);
    return;
  }
  parallel_run(chunks, [&](int c) {
    size_t begin = n * size_t(c) / size_t(chunks);
    size_t end = n * size_t(c + 1) / size_t(chunks);
    if (begin < end) fn(begin, end, c);
  });
}

}  // namespace ck
