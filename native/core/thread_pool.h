// A persistent pool of worker threads sized to the machine (no OpenMP). Work is split
// statically: the same range and thread count always give the same chunks, which keeps
// reductions (and so training) bitwise reproducible for a fixed thread count.
#pragma once
#include <cstddef>
#include <type_traits>
#include <utility>

namespace ck {

// A non-owning reference to a callable, cheaper than std::function on the hot path.
template <class Sig>
class FunctionRef;
template <class R, class... A>
class FunctionRef<R(A...)> {
 public:
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef>>>
  FunctionRef(F&& f)  // NOLINT: implicit by design
      : obj_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* o, A... a) -> R { return (*static_cast<std::remove_reference_t<F>*>(o))(std::forward<A>(a)...); }) {}
  R operator()(A... a) const { return call_(obj_, std::forward<A>(a)...); }

 private:
  void* obj_;
  R (*call_)(void*, A...);
};

// Number of threads parallel work is split over (workers + the calling thread); inside a
// ThreadCountScope, the count the scope fixed.
int num_threads();
// Resizes the pool (n <= 0: the machine's core count). Safe while streams run tasks: a running
// parallel_run finishes first, and each stream task keeps the count it started with.
void set_num_threads(int n);

// Fixes num_threads() on this thread for the scope's life. A stream task runs inside one, so it
// sizes per-chunk scratch (parallel_chunks) and splits its work (parallel_for) with the same count
// even if the pool is resized meanwhile; the pool runs any number of chunks on any number of
// workers, and chunking, not the worker, decides the results.
class ThreadCountScope {
 public:
  ThreadCountScope();
  ~ThreadCountScope();
  ThreadCountScope(const ThreadCountScope&) = delete;
  ThreadCountScope& operator=(const ThreadCountScope&) = delete;

 private:
  int saved_;
};

// Runs fn(task) for task in [0, tasks) across the pool; task t always runs on thread t % threads
// order-independently; returns when all are done. Safe to call from several threads at once
// (calls are serialised); a nested call from inside a task runs inline.
void parallel_run(int tasks, FunctionRef<void(int)> fn);

// Splits [0, n) into at most num_threads() contiguous chunks (at least `grain` items each) and
// runs fn(begin, end, chunk_index) on them.
void parallel_for(size_t n, size_t grain, FunctionRef<void(size_t, size_t, int)> fn);

// The chunk count parallel_for(n, grain, ...) will use; lets callers size per-chunk scratch.
int parallel_chunks(size_t n, size_t grain);

}  // namespace ck
