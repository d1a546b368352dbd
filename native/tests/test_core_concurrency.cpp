// The core under concurrency, as the addon drives it: JS finalizers drop the last references to
// tensors while the kernels that read them are still queued or running, ops are enqueued on the
// default stream from several threads at once (worker_threads), in-place updates follow reads
// of the same weights, and completion callbacks are registered while tasks finish. Every result
// is checked against plain loops, and the host memory returns to where it started. Meant to be
// run under ThreadSanitizer and AddressSanitizer too (scripts/sanitize.sh).
#include <atomic>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "check.h"
#include "tensor_check.h"
#include "memory.h"
#include "op_launch.h"
#include "ops.h"
#include "stream.h"
#include "thread_pool.h"

namespace {

using cktest::make;
using cktest::read;

// y[m][n] = relu(sum_k x[m][k] * w[k][n]) in double.
std::vector<float> dense_relu_reference(const std::vector<float>& x, const std::vector<float>& w, int M,
                                        int K, int N) {
  std::vector<float> y(size_t(M) * N);
  for (int m = 0; m < M; ++m) {
    for (int n = 0; n < N; ++n) {
      double s = 0;
      for (int k = 0; k < K; ++k) s += double(x[size_t(m) * K + k]) * w[size_t(k) * N + n];
      y[size_t(m) * N + n] = float(s > 0 ? s : 0);
    }
  }
  return y;
}

// A "finalizer thread": drops the tensors handed to it at its own pace, as V8's GC does.
class Finalizer {
 public:
  Finalizer() : thread_([this] { run(); }) {}
  ~Finalizer() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      quit_ = true;
    }
    thread_.join();
  }
  void drop(ck::Tensor t) {
    std::lock_guard<std::mutex> lk(mu_);
    queue_.push_back(std::move(t));
  }

 private:
  void run() {
    for (;;) {
      ck::Tensor t;
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (queue_.empty()) {
          if (quit_) return;
        } else {
          t = std::move(queue_.front());
          queue_.pop_front();
        }
      }
      if (!t.storage) std::this_thread::yield();
      // t (maybe the storage's last reference) is released here, on this thread.
    }
  }
  std::mutex mu_;
  std::deque<ck::Tensor> queue_;
  bool quit_ = false;
  std::thread thread_;
};

}  // namespace

TEST(inputs_released_while_their_kernels_run) {
  int64_t before = ck::host_memory_stats().live_bytes;
  std::mt19937 rng(3);
  const int M = 64, K = 96, N = 48;
  {
    Finalizer fin;
    for (int it = 0; it < 40; ++it) {
      auto xv = cktest::random_vector(rng, size_t(M) * K);
      auto wv = cktest::random_vector(rng, size_t(K) * N);
      ck::Tensor x = make({M, K}, xv), w = make({K, N}, wv);
      ck::Tensor y = ck::dense(x, w, nullptr, ck::Act::Relu);
      ck::Tensor z = ck::activation(y, ck::Act::Sigmoid, 0.f, "sigmoid");
      // The caller's references go at once, on another thread, while the kernels are queued.
      fin.drop(std::move(x));
      fin.drop(std::move(w));
      if (it % 2) fin.drop(std::move(z));
      auto got = read(y);
      CHECK_ALL_CLOSE(got.data(), dense_relu_reference(xv, wv, M, K, N).data(), got.size(), 1e-4f, 1e-5f);
      fin.drop(std::move(y));
    }
  }
  ck::Stream::default_stream()->synchronize();
  CHECK(ck::host_memory_stats().live_bytes == before);
}

TEST(ops_from_several_threads_on_the_default_stream) {
  int64_t before = ck::host_memory_stats().live_bytes;
  const int threads = 4, iters = 30, M = 16, K = 32, N = 8;
  std::atomic<int> bad{0};
  {
    Finalizer fin;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        std::mt19937 rng(100 + t);
        for (int it = 0; it < iters; ++it) {
          auto xv = cktest::random_vector(rng, size_t(M) * K);
          auto wv = cktest::random_vector(rng, size_t(K) * N);
          ck::Tensor x = make({M, K}, xv), w = make({K, N}, wv);
          ck::Tensor y = ck::dense(x, w, nullptr, ck::Act::Relu);
          ck::Tensor y2 = ck::mul(y, y, "mul");  // reads what the previous task writes
          fin.drop(std::move(x));
          fin.drop(std::move(w));
          auto want = dense_relu_reference(xv, wv, M, K, N);
          for (float& v : want) v *= v;
          auto got = read(y2);
          if (!cktest::all_close(got.data(), want.data(), got.size(), 1e-4f, 1e-5f, nullptr)) bad++;
          fin.drop(std::move(y));
          fin.drop(std::move(y2));
        }
      });
    }
    for (auto& th : pool) th.join();
  }
  ck::Stream::default_stream()->synchronize();
  CHECK(bad == 0);
  CHECK(ck::host_memory_stats().live_bytes == before);
}

TEST(in_place_updates_after_reads_of_the_same_weights) {
  // sgd_update writes w (and marks w's storage as produced by its task) while the tasks queued
  // before it still read w: each read must see the weights of its own turn.
  const int n = 4096, steps = 50;
  const float lr = 0.5f;
  ck::Tensor w = make({n}, std::vector<float>(n, 1.f));
  ck::Tensor g = make({n}, std::vector<float>(n, 0.01f));
  ck::SgdParams p;
  p.lr = lr;
  std::vector<ck::Tensor> snapshots;
  Finalizer fin;
  for (int s = 0; s < steps; ++s) {
    snapshots.push_back(ck::activation(w, ck::Act::None, 0.f, "identity"));  // a copy of w now
    ck::sgd_update(w, g, nullptr, p);
    if (s % 3 == 0) fin.drop(ck::mul(w, g, "mul"));  // a read nobody waits for
  }
  for (int s = 0; s < steps; ++s) {
    auto v = read(snapshots[size_t(s)]);
    float want = 1.f - float(s) * lr * 0.01f;
    CHECK_NEAR(v[0], want, 1e-5f);
    CHECK_NEAR(v[size_t(n) - 1], want, 1e-5f);
  }
  CHECK_NEAR(read(w)[7], 1.f - steps * lr * 0.01f, 1e-5f);
}

TEST(completion_callbacks_registered_while_tasks_finish) {
  auto stream = std::make_shared<ck::Stream>();
  std::atomic<int> called{0};
  const int tasks = 200, watchers = 3;
  std::vector<uint64_t> seqs(tasks);
  std::atomic<int> registered{0};
  std::vector<std::thread> pool;
  std::mutex seq_mu;
  std::atomic<int> enqueued{0};
  pool.emplace_back([&] {
    for (int i = 0; i < tasks; ++i) {
      uint64_t s = stream->enqueue([] { std::this_thread::yield(); });
      {
        std::lock_guard<std::mutex> lk(seq_mu);
        seqs[size_t(i)] = s;
      }
      enqueued++;
    }
  });
  for (int t = 0; t < watchers; ++t) {
    pool.emplace_back([&] {
      for (int i = 0; i < tasks; ++i) {
        while (enqueued.load() <= i) std::this_thread::yield();
        uint64_t s;
        {
          std::lock_guard<std::mutex> lk(seq_mu);
          s = seqs[size_t(i)];
        }
        stream->then(s, [&] { called++; });
        registered++;
      }
    });
  }
  for (auto& th : pool) th.join();
  // A task's callbacks run on the worker after it is marked done, before the next task starts.
  stream->enqueue([] {});
  stream->synchronize();
  CHECK(registered == tasks * watchers);
  CHECK(called == tasks * watchers);
}

TEST(a_stream_dropped_with_work_queued_finishes_it) {
  // A model's stream goes with the model (a finalizer) while its last tasks are queued.
  std::atomic<int> ran{0};
  for (int round = 0; round < 20; ++round) {
    auto stream = std::make_shared<ck::Stream>();
    ck::Tensor x = make({1000}, std::vector<float>(1000, 2.f));
    for (int i = 0; i < 5; ++i) {
      stream->enqueue([x, &ran] {
        float s = 0;
        for (size_t k = 0; k < x.numel(); ++k) s += x.data()[k];
        if (s == 2000.f) ran++;
      });
    }
    std::thread dropper([s = std::move(stream)]() mutable { s.reset(); });
    dropper.join();
  }
  CHECK(ran == 100);
}

// ck.setThreads while streams run tasks (a fit on its model's stream, ops on the default one): a
// task sizes per-chunk scratch with parallel_chunks and then splits with parallel_for, and the two
// must agree even if the pool is resized between them (ThreadSanitizer watches the pool's state).
TEST(resizing_while_streams_run_keeps_each_task_consistent) {
  std::atomic<int> mismatches{0};
  std::vector<std::shared_ptr<ck::Stream>> streams{ck::Stream::default_stream(), std::make_shared<ck::Stream>()};
  for (int round = 0; round < 200; ++round) {
    for (auto& stream : streams) {
      stream->enqueue([&mismatches] {
        for (int k = 0; k < 20; ++k) {
          const int chunks = ck::parallel_chunks(64, 1);
          std::vector<std::atomic<int>> scratch(static_cast<size_t>(chunks));
          ck::parallel_for(64, 1, [&](size_t, size_t, int c) {
            if (c >= chunks) mismatches++;
            else scratch[size_t(c)]++;
          });
          if (ck::parallel_chunks(64, 1) != chunks) mismatches++;
        }
      });
    }
    ck::set_num_threads(1 + round % 4);
  }
  for (auto& stream : streams) stream->synchronize();
  CHECK(mismatches.load() == 0);
  ck::set_num_threads(0);
}

// An error raised inside a queued task keeps its kind on the way to whoever waits: the failed
// op's output, and an op queued on that output (an "input failed" failure), both rethrow it as a
// ShapeError (a ValueError, ...), which the addon turns into the same JS class.
TEST(a_failed_task_keeps_its_error_kind_downstream) {
  const auto& stream = ck::Stream::default_stream();
  for (ck::ErrorKind kind : {ck::ErrorKind::Shape, ck::ErrorKind::Value, ck::ErrorKind::Format}) {
    ck::Tensor a = ck::empty_tensor({4});
    ck::Tensor b = ck::empty_tensor({4});
    ck::launch_on(stream, "first", {}, {&a}, [kind] { ck::throw_error(kind, "bad shape"); });
    ck::launch_on(stream, "second", {&a}, {&b}, [] {});
    for (const ck::Tensor* t : {&a, &b}) {
      bool thrown = false;
      try {
        t->storage->wait();
      } catch (const ck::Error& e) {
        thrown = true;
        CHECK(e.kind() == kind);
        CHECK(std::string(e.what()).find("first: bad shape") != std::string::npos);
      }
      CHECK(thrown);
    }
  }
  // Anything else thrown by a task (a C++ library's error) is a DeviceError.
  ck::Tensor c = ck::empty_tensor({4});
  ck::launch_on(stream, "third", {}, {&c}, [] { throw std::runtime_error("library failure"); });
  bool thrown = false;
  try {
    c.storage->wait();
  } catch (const ck::Error& e) {
    thrown = true;
    CHECK(e.kind() == ck::ErrorKind::Device);
  }
  CHECK(thrown);
}

CK_TEST_MAIN()
