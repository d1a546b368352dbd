// The pool splits work statically, covers every index once, and nests safely.
#include <atomic>
#include <vector>

#include "check.h"
#include "cpu_count.h"
#include "thread_pool.h"

TEST(parallel_for_covers_each_index_once) {
  for (int threads : {1, 2, 3, 8}) {
    ck::set_num_threads(threads);
    for (size_t n : {size_t(0), size_t(1), size_t(7), size_t(1000)}) {
      std::vector<std::atomic<int>> hits(n);
      ck::parallel_for(n, 1, [&](size_t b, size_t e, int) {
        for (size_t i = b; i < e; ++i) hits[i]++;
      });
      for (size_t i = 0; i < n; ++i) CHECK(hits[i] == 1);
    }
  }
  ck::set_num_threads(0);
}

TEST(chunks_are_deterministic) {
  ck::set_num_threads(4);
  std::vector<size_t> first(4, 0), second(4, 0);
  for (auto* v : {&first, &second}) {
    ck::parallel_for(103, 1, [&](size_t b, size_t, int c) { (*v)[c] = b; });
  }
  CHECK(first == second);
  CHECK(ck::parallel_chunks(103, 1) == 4);
  CHECK(ck::parallel_chunks(3, 2) == 2);
  ck::set_num_threads(0);
}

TEST(nested_calls_run_inline) {
  std::atomic<int> total{0};
  ck::parallel_run(4, [&](int) {
    ck::parallel_for(10, 1, [&](size_t b, size_t e, int) { total += int(e - b); });
  });
  CHECK(total == 40);
}

TEST(many_small_jobs) {
  std::atomic<long> sum{0};
  for (int rep = 0; rep < 20000; ++rep) {
    ck::parallel_run(2, [&](int t) { sum += t + 1; });
  }
  CHECK(sum == 60000);
}

// The default thread count's cgroup rule: whole CPUs of quota / period, rounded down, at least 1;
// no limit (0) for cgroup v1's -1 and v2's "max".
TEST(cgroup_quota_gives_whole_cpus) {
  CHECK(ck::quota_cpus(200000, 100000) == 2);
  CHECK(ck::quota_cpus(150000, 100000) == 1);
  CHECK(ck::quota_cpus(50000, 100000) == 1);
  CHECK(ck::quota_cpus(-1, 100000) == 0);
  CHECK(ck::quota_cpus(100000, 0) == 0);
  CHECK(ck::cpu_max_cpus("max 100000\n") == 0);
  CHECK(ck::cpu_max_cpus("400000 100000\n") == 4);
  CHECK(ck::cpu_max_cpus("250000 100000") == 2);
  CHECK(ck::cpu_max_cpus("") == 0);
  CHECK(ck::cpu_max_cpus("garbage here") == 0);
  CHECK(ck::default_threads().threads >= 1);
}

CK_TEST_MAIN()
