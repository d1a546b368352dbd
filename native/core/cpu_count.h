// How many threads the pool starts with: the CPUs this process may run on. The affinity mask
// (taskset, an MPI launcher's core binding) is read first, then capped by the cgroup CPU quota (a
// container limited to 2 CPUs on a 64-core host gets 2); CONVKIT_THREADS overrides both.
#pragma once
#include <string>

namespace ck {

struct ThreadDefault {
  int threads;
  const char* source;  // "CONVKIT_THREADS", "cgroup CPU quota", "CPU affinity mask" or "CPU count"
};

// Computed once per process.
const ThreadDefault& default_threads();

// The whole CPUs a CFS quota allows (quota / period, rounded down, at least 1), or 0 when there
// is no limit (quota <= 0: cgroup v1's -1, cgroup v2's "max"). Exposed for tests.
int quota_cpus(double quota, double period);
// cgroup v2's cpu.max ("max 100000" or "200000 100000") as quota_cpus; 0 when unreadable.
int cpu_max_cpus(const std::string& cpu_max);

}  // namespace ck
