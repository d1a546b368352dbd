#include "cpu_count.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#if defined(__linux__)
#include <sched.h>
#endif

namespace ck {

int quota_cpus(double quota, double period) {
  if (!(quota > 0) || !(period > 0)) return 0;
  return std::max(1, int(std::floor(quota / period)));
}

int cpu_max_cpus(const std::string& cpu_max) {
  std::istringstream in(cpu_max);
  std::string quota;
  double period = 0;
  if (!(in >> quota >> period) || quota == "max") return 0;
  char* end = nullptr;
  const double q = std::strtod(quota.c_str(), &end);
  return end && *end == '\0' ? quota_cpus(q, period) : 0;
}

namespace {

#if defined(__linux__)
std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return f ? s.str() : std::string();
}

// The smallest limit along a cgroup path and its ancestors: a parent's quota bounds its children.
template <class LimitAt>
int smallest_limit(std::string path, LimitAt limit_at) {
  int best = 0;
  for (;;) {
    const int n = limit_at(path);
    if (n > 0 && (best == 0 || n < best)) best = n;
    if (path.empty() || path == "/") break;
    const size_t slash = path.find_last_of('/');
    path = slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
  }
  return best;
}

// The CFS quota of this process's cgroups (v2 cpu.max, or v1 cpu.cfs_quota_us / cpu.cfs_period_us)
// in whole CPUs, or 0 when there is none.
int cgroup_cpus() {
  std::istringstream lines(read_file("/proc/self/cgroup"));
  std::string line;
  int best = 0;
  auto keep = [&](int n) {
    if (n > 0 && (best == 0 || n < best)) best = n;
  };
  while (std::getline(lines, line)) {
    // hierarchy-id:controllers:path
    const size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (controllers.empty()) {  // cgroup v2
      for (const char* root : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
        keep(smallest_limit(path, [&](const std::string& p) { return cpu_max_cpus(read_file(root + p + "/cpu.max")); }));
      }
      continue;
    }
    std::istringstream names(controllers);
    std::string name;
    bool cpu = false;
    while (std::getline(names, name, ',')) cpu = cpu || name == "cpu";
    if (!cpu) continue;
    for (const char* root : {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpuacct,cpu"}) {
      keep(smallest_limit(path, [&](const std::string& p) {
        const std::string dir = std::string(root) + (p == "/" ? "" : p);
        const std::string quota = read_file(dir + "/cpu.cfs_quota_us"), period = read_file(dir + "/cpu.cfs_period_us");
        return quota.empty() || period.empty() ? 0 : quota_cpus(std::atof(quota.c_str()), std::atof(period.c_str()));
      }));
    }
  }
  return best;
}
#endif

ThreadDefault compute() {
  if (const char* env = std::getenv("CONVKIT_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return {std::min(n, 256), "CONVKIT_THREADS"};
  }
  const unsigned hw = std::thread::hardware_concurrency();
  ThreadDefault d{hw == 0 ? 1 : int(std::min(hw, 256u)), "CPU count"};
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int allowed = CPU_COUNT(&set);
    if (allowed > 0 && allowed < d.threads) d = {allowed, "CPU affinity mask"};
  }
  const int quota = cgroup_cpus();
  if (quota > 0 && quota < d.threads) d = {quota, "cgroup CPU quota"};
#endif
  return d;
}

}  // namespace

const ThreadDefault& default_threads() {
  static const ThreadDefault d = compute();
  return d;
}

}  // namespace ck
