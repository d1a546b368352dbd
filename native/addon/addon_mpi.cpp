// The MPI communicator behind ck.distributed: Open MPI is loaded at run time, so the addon has no
// build- or load-time dependency on MPI and trains on machines without it.
//
// Open MPI's ABI (libmpi.so.40), declared here instead of including mpi.h (checked against
// Open MPI 4.1's /usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h): MPI_Comm, MPI_Datatype, MPI_Op
// and MPI_Info are pointers to opaque structs, and each predefined handle (MPI_COMM_WORLD,
// MPI_FLOAT, MPI_BYTE, MPI_SUM, MPI_INFO_NULL) is the address of a global object
// (ompi_mpi_comm_world, ompi_mpi_float, ompi_mpi_byte, ompi_mpi_op_sum, ompi_mpi_info_null) found
// here with dlsym; the functions return int with MPI_SUCCESS == 0; MPI_THREAD_FUNNELED == 1 and
// MPI_COMM_TYPE_SHARED == 0 are the enums' values there, and MPI_IN_PLACE is the address 1.
// MPICH's ABI (int handles, libmpi.so.12) differs and is not loaded.
//
// Every MPI call runs on one communication thread, the one that initialised MPI (so
// MPI_THREAD_FUNNELED suffices), in the order the JS thread submitted them: every rank must issue
// the same collectives in the same order. Each call settles a promise; a call that has not
// finished within its timeout is rejected with a DeviceError by a watchdog thread and the
// communicator is broken from then on (a blocked MPI call cannot be cancelled).
//
// A data-parallel fit hands each step's gradients to the communication thread from the step's
// own thread (mpi_gradient_reducer), bucket by bucket while backward runs, and waits for them
// before the update: the JS thread takes no part mid-step, MPI still runs on one thread, and the
// watchdog bounds the wait. With syncBatchNorm the step's batch norms hand their statistics the
// same way and wait for the sum (in the order Net::batch_norm_sync_sizes lists, every rank the
// same; a rank that made fewer makes the rest, with zeros, at the step's end, before the buckets
// that waited for them). Each step, and each of fit's own sync points (mpiSync), first
// exchanges the ranks' status (exchange_status), and a step exchanges it again after its
// buckets, so that a failure on one rank stops every rank at the same point with its message.
#ifndef _WIN32
#include <dlfcn.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <list>
#include <map>
#include <mutex>
#include <thread>

#include "addon.h"
#include "memory.h"
#include "net.h"
#include "spin_wait.h"

namespace ckaddon {
namespace {

using MpiHandle = void*;  // MPI_Comm, MPI_Datatype, MPI_Op, MPI_Info: struct pointers in Open MPI
constexpr int kMpiSuccess = 0;
constexpr int kMpiThreadFunneled = 1;
constexpr int kMpiCommTypeShared = 0;
constexpr int kMpiMaxErrorString = 256;
// The most of a failing rank's message that the others receive (bytes, its end cut off).
constexpr int kFailureMessageBytes = 2048;
void* const kMpiInPlace = reinterpret_cast<void*>(1);

const char* const kInstallHint =
    "install Open MPI (apt-get install openmpi-bin, or the distribution's equivalent)";

// The Open MPI entry points convkit uses, resolved from the library.
struct MpiApi {
  int (*Init_thread)(int*, char***, int, int*);
  int (*Finalize)();
  int (*Comm_rank)(MpiHandle, int*);
  int (*Comm_size)(MpiHandle, int*);
  int (*Comm_split_type)(MpiHandle, int, int, MpiHandle, MpiHandle*);
  int (*Comm_free)(MpiHandle*);
  int (*Allreduce)(const void*, void*, int, MpiHandle, MpiHandle, MpiHandle);
  int (*Allgather)(const void*, int, MpiHandle, void*, int, MpiHandle, MpiHandle);
  int (*Bcast)(void*, int, MpiHandle, int, MpiHandle);
  int (*Barrier)(MpiHandle);
  int (*Error_string)(int, char*, int*);
  MpiHandle comm_world;
  MpiHandle float_type;
  MpiHandle byte_type;
  MpiHandle op_sum;
  MpiHandle info_null;
};

// Loads the library named by CONVKIT_MPI_LIBRARY, else libmpi.so.40 (libmpi.40.dylib on macOS,
// unverified: no Mac has run it). RTLD_GLOBAL: Open MPI's own
// plugins, which it dlopens, resolve libmpi's symbols from the global scope.
#ifdef _WIN32
MpiApi load_mpi() {
  throw ck::Error(ck::ErrorKind::Device,
                  "distributed.init: this process runs under an MPI launcher, but convkit's distributed "
                  "jobs need Open MPI on Linux or macOS");
}
#else
#ifdef __APPLE__
const char* const kDefaultLibrary = "libmpi.40.dylib";
#else
const char* const kDefaultLibrary = "libmpi.so.40";
#endif

MpiApi load_mpi() {
  const char* name = std::getenv("CONVKIT_MPI_LIBRARY");
  if (!name || !*name) name = kDefaultLibrary;
  void* lib = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
  if (!lib) {
    const char* why = dlerror();
    throw ck::Error(ck::ErrorKind::Device,
                    std::string("distributed.init: this process runs under an MPI launcher but "
                                "cannot load the MPI library '") +
                        name + "' (" + (why ? why : "unknown reason") + "); " + kInstallHint);
  }
  auto sym = [&](const char* s) {
    void* p = dlsym(lib, s);
    if (!p) {
      throw ck::Error(ck::ErrorKind::Device,
                      std::string("distributed.init: '") + name + "' lacks " + s +
                          ": convkit needs Open MPI 4 or later (libmpi.so.40); " + kInstallHint);
    }
    return p;
  };
  MpiApi api;
  api.Init_thread = reinterpret_cast<decltype(api.Init_thread)>(sym("MPI_Init_thread"));
  api.Finalize = reinterpret_cast<decltype(api.Finalize)>(sym("MPI_Finalize"));
  api.Comm_rank = reinterpret_cast<decltype(api.Comm_rank)>(sym("MPI_Comm_rank"));
  api.Comm_size = reinterpret_cast<decltype(api.Comm_size)>(sym("MPI_Comm_size"));
  api.Comm_split_type = reinterpret_cast<decltype(api.Comm_split_type)>(sym("MPI_Comm_split_type"));
  api.Comm_free = reinterpret_cast<decltype(api.Comm_free)>(sym("MPI_Comm_free"));
  api.Allreduce = reinterpret_cast<decltype(api.Allreduce)>(sym("MPI_Allreduce"));
  api.Allgather = reinterpret_cast<decltype(api.Allgather)>(sym("MPI_Allgather"));
  api.Bcast = reinterpret_cast<decltype(api.Bcast)>(sym("MPI_Bcast"));
  api.Barrier = reinterpret_cast<decltype(api.Barrier)>(sym("MPI_Barrier"));
  api.Error_string = reinterpret_cast<decltype(api.Error_string)>(sym("MPI_Error_string"));
  api.comm_world = sym("ompi_mpi_comm_world");
  api.float_type = sym("ompi_mpi_float");
  api.byte_type = sym("ompi_mpi_byte");
  api.op_sum = sym("ompi_mpi_op_sum");
  api.info_null = sym("ompi_mpi_info_null");
  return api;
}
#endif

// One MPI call and the promise waiting for it; settled exactly once, by the communication thread
// when the call returns or by the watchdog when its deadline passes first.
struct Job {
  std::string what;  // "allreduce", ... for messages
  std::function<void(const MpiApi&)> run;
  int64_t timeout_ms = 0;
  std::chrono::steady_clock::time_point deadline;
  std::function<void()> settle;
  std::mutex mu;  // guards settled, error and the results below
  bool settled = false;
  ck::Failure error;
  ck::Tensor result;
  int rank = 0, size = 1, local_rank = 0;
};

class Communicator {
 public:
  // The process's one communicator, created by the first init and never destroyed: a thread
  // blocked in MPI when the process exits must not be joined.
  static Communicator& get() {
    static Communicator* c = new Communicator();
    return *c;
  }

  bool started() {
    std::lock_guard<std::mutex> lk(mu_);
    return started_;
  }

  // Loads MPI (throws a DeviceError when it cannot) and starts the communication thread and the
  // watchdog.
  void start() {
    std::lock_guard<std::mutex> lk(mu_);
    if (started_) return;
    api_ = load_mpi();
    started_ = true;
    std::thread([this] { communicate(); }).detach();
    std::thread([this] { watch(); }).detach();
  }

  // Queues `job` behind earlier calls; a broken communicator rejects it at once.
  void submit(const std::shared_ptr<Job>& job) {
    std::lock_guard<std::mutex> lk(mu_);
    if (!broken_.empty()) {
      finish(job, std::make_shared<ck::Error>(
                      ck::ErrorKind::Device, "distributed." + job->what + ": the communicator is unusable since " + broken_));
      return;
    }
    queue_.push_back(job);
    pending_.push_back(job);
    queued_.store(queue_.size(), std::memory_order_release);
    // Wake-ups cost tens of microseconds on a VM, more than a small allreduce: the communication
    // thread is woken only when it sleeps (not while it polls after a call), and the watchdog
    // only when this deadline comes before the one it sleeps until.
    if (idle_) work_cv_.notify_one();
    if (job->deadline < watch_until_) watch_cv_.notify_one();
  }

  // Why the communicator cannot be used any more; empty while it can.
  std::string broken() {
    std::lock_guard<std::mutex> lk(mu_);
    return broken_;
  }

  // Settles `job` unless that already happened.
  static void finish(const std::shared_ptr<Job>& job, ck::Failure error) {
    std::function<void()> settle;
    {
      std::lock_guard<std::mutex> lk(job->mu);
      if (job->settled) return;
      job->settled = true;
      job->error = std::move(error);
      settle = std::move(job->settle);
    }
    settle();
  }

  static std::string mpi_error(const MpiApi& api, const char* call, int code) {
    char text[kMpiMaxErrorString + 1] = {0};
    int len = 0;
    if (api.Error_string(code, text, &len) != kMpiSuccess) std::snprintf(text, sizeof text, "error %d", code);
    return std::string(call) + " failed: " + text;
  }

  const MpiApi& api() const { return api_; }

 private:
  void communicate() {
    for (;;) {
      std::shared_ptr<Job> job;
      // The next call of a loop of collectives (or a step's next bucket) usually comes within
      // microseconds of the last one settling: poll for it before sleeping.
      ck::spin_until([&] { return queued_.load(std::memory_order_acquire) != 0; }, kIdleSpin);
      {
        std::unique_lock<std::mutex> lk(mu_);
        idle_ = true;
        work_cv_.wait(lk, [&] { return !queue_.empty(); });
        idle_ = false;
        job = queue_.front();
        queue_.pop_front();
        queued_.store(queue_.size(), std::memory_order_release);
      }
      ck::Failure error;
      try {
        job->run(api_);
      } catch (...) {
        error = ck::with_prefix(ck::current_failure(), "distributed." + job->what + ": ");
      }
      job->run = nullptr;  // drops the tensors the call captured
      {
        std::lock_guard<std::mutex> lk(mu_);
        pending_.remove(job);
      }
      finish(job, std::move(error));
    }
  }

  // Rejects the first call past its deadline and marks the communicator broken: the calls queued
  // behind it can never run, so they are rejected with it.
  void watch() {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
      auto now = std::chrono::steady_clock::now();
      auto next = std::chrono::steady_clock::time_point::max();
      std::shared_ptr<Job> late;
      for (const auto& job : pending_) {
        if (job->deadline <= now) {
          late = job;
          break;
        }
        next = std::min(next, job->deadline);
      }
      if (late) {
        broken_ = late->what + " timed out";
        const std::string why = broken_;
        std::list<std::shared_ptr<Job>> abandoned;
        abandoned.swap(pending_);
        queue_.clear();
        queued_.store(0, std::memory_order_release);
        lk.unlock();
        finish(late, std::make_shared<ck::Error>(
                         ck::ErrorKind::Device,
                         "distributed." + late->what + ": not every rank took part within timeoutMs (" +
                             std::to_string(late->timeout_ms) +
                             " ms): a rank is missing or hung, or the ranks issued different collectives"));
        for (const auto& job : abandoned) {
          finish(job, std::make_shared<ck::Error>(ck::ErrorKind::Device, "distributed." + job->what +
                                                                             ": the communicator is unusable since " +
                                                                             why));
        }
        lk.lock();
        continue;
      }
      watch_until_ = next;
      if (next == std::chrono::steady_clock::time_point::max()) {
        watch_cv_.wait(lk);
      } else {
        watch_cv_.wait_until(lk, next);
      }
    }
  }

  static constexpr std::chrono::microseconds kIdleSpin{100};
  std::mutex mu_;
  std::condition_variable work_cv_;   // the communication thread's: a call was queued
  std::condition_variable watch_cv_;  // the watchdog's: a deadline earlier than watch_until_
  bool idle_ = false;                 // the communication thread sleeps on work_cv_
  std::atomic<size_t> queued_{0};     // queue_.size(), for polling without the lock
  std::chrono::steady_clock::time_point watch_until_ = std::chrono::steady_clock::time_point::min();
  bool started_ = false;
  std::string broken_;
  MpiApi api_{};
  std::deque<std::shared_ptr<Job>> queue_;  // not yet started
  std::list<std::shared_ptr<Job>> pending_;  // not yet finished (queued or running)
};

// The output buffers of allreduce and broadcast, kept once their tensor is freed for the next
// call of the same size. A fresh buffer of a few MB costs its allocation and one page fault per
// 4 KB page when MPI first writes it, inside the collective: more than the sum itself on one
// machine. At most kKeptBytes wait here (counted as live host memory meanwhile); smaller buffers
// than kPooledBytes come from the allocator, whose own free lists serve them.
class OutputPool {
 public:
  static OutputPool& get() {
    static OutputPool* pool = new OutputPool();  // never destroyed: tensors may be freed at exit
    return *pool;
  }

  ck::Tensor take(const ck::Shape& shape, const char* op) {
    ck::check_shape(shape, op);
    const size_t n = ck::shape_numel(shape);
    if (n * sizeof(float) < kPooledBytes) return ck::empty_tensor(shape, op);
    float* data = nullptr;
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto it = free_.find(n);
      if (it != free_.end() && !it->second.empty()) {
        data = it->second.back();
        it->second.pop_back();
        kept_ -= n * sizeof(float);
      }
    }
    if (!data) data = static_cast<float*>(ck::host_alloc(n * sizeof(float)));
    return ck::wrap_tensor(data, shape, [this, data, n] { give(data, n); });
  }

 private:
  void give(float* data, size_t n) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (kept_ + n * sizeof(float) <= kKeptBytes) {
        free_[n].push_back(data);
        kept_ += n * sizeof(float);
        return;
      }
    }
    ck::host_free(data, n * sizeof(float));
  }

  static constexpr size_t kPooledBytes = size_t(64) << 10;
  static constexpr size_t kKeptBytes = size_t(256) << 20;
  std::mutex mu_;
  std::map<size_t, std::vector<float*>> free_;  // by float count
  size_t kept_ = 0;
};

void check_mpi(const MpiApi& api, const char* call, int code) {
  if (code != kMpiSuccess) throw ck::Error(ck::ErrorKind::Device, Communicator::mpi_error(api, call, code));
}

// The element-wise sum over the ranks of `in`'s n floats, into `out` (`in` may be `out`), in
// calls of at most one MPI count each. MPI_Allreduce adds the ranks' floats in an order of its
// choosing (by message size, by algorithm); `ordered` (init's orderedSum, a test and debugging
// mode) gathers every rank's floats on every rank instead and adds them in rank order,
// ((x0 + x1) + x2) + ..., the association a process that sums its slices in order
// (fit's gradientSlices) uses: size times the traffic and memory, but the same bits everywhere.
void sum_floats(const MpiApi& api, const float* in, float* out, size_t n, bool ordered) {
  int size = 1;
  if (ordered) check_mpi(api, "MPI_Comm_size", api.Comm_size(api.comm_world, &size));
  std::vector<float> all;
  for (size_t at = 0; at < n;) {
    const int count = int(std::min<size_t>(n - at, size_t(std::numeric_limits<int>::max()) / size_t(size)));
    if (!ordered) {
      check_mpi(api, "MPI_Allreduce",
                api.Allreduce(in == out ? kMpiInPlace : in + at, out + at, count, api.float_type, api.op_sum,
                              api.comm_world));
    } else {
      all.resize(size_t(count) * size_t(size));
      check_mpi(api, "MPI_Allgather",
                api.Allgather(in + at, count, api.float_type, all.data(), count, api.float_type, api.comm_world));
      float* o = out + at;
      std::copy(all.begin(), all.begin() + count, o);
      for (int r = 1; r < size; ++r) {
        const float* x = all.data() + size_t(r) * size_t(count);
        for (int i = 0; i < count; ++i) o[i] += x[i];
      }
    }
    at += size_t(count);
  }
}

// What a data-parallel fit's sync point found: the ranks whose work since the last one failed
// (none: every rank goes on), the lowest one's message, and each rank's value (what fitDataset
// says at each step: the rows of its next batch).
struct SyncOutcome {
  std::vector<int> failed;
  std::string message;
  std::vector<float> values;

  // "rank 1 failed: Error: ..." for the message of a DistributedError on the other ranks.
  std::string text() const {
    std::string who = "rank " + std::to_string(failed[0]);
    if (failed.size() > 1) {
      who = "ranks ";
      for (size_t i = 0; i < failed.size(); ++i) {
        who += std::to_string(failed[i]) + (i + 2 < failed.size() ? ", " : i + 2 == failed.size() ? " and " : "");
      }
      who += " (the first's error)";
    }
    return who + " failed: " + message;
  }
};

// A sync point of a data-parallel fit, on the communication thread: every rank says whether its
// work since the last one failed (`failure`, null when it did not) and gives a value, in two
// floats per rank, summed (MPI_Allreduce), and when any failed, the lowest failing rank broadcasts
// its message (MPI_Bcast of kFailureMessageBytes), so that every rank stops at the same point
// with it. Every sync point has this one shape, so a failing rank can join whichever the others
// are at. Without a failure it costs one allreduce of 2 x size floats.
SyncOutcome exchange_status(const MpiApi& api, const std::string* failure, float value = 0.f) {
  int rank = 0, size = 1;
  check_mpi(api, "MPI_Comm_rank", api.Comm_rank(api.comm_world, &rank));
  check_mpi(api, "MPI_Comm_size", api.Comm_size(api.comm_world, &size));
  std::vector<float> table(2 * size_t(size), 0.f);  // rank r: [failed, value]
  table[2 * size_t(rank)] = failure ? 1.f : 0.f;
  table[2 * size_t(rank) + 1] = value;
  check_mpi(api, "MPI_Allreduce",
            api.Allreduce(kMpiInPlace, table.data(), 2 * size, api.float_type, api.op_sum, api.comm_world));
  SyncOutcome outcome;
  for (int r = 0; r < size; ++r) {
    if (table[2 * size_t(r)] > 0.f) outcome.failed.push_back(r);
    outcome.values.push_back(table[2 * size_t(r) + 1]);
  }
  if (outcome.failed.empty()) return outcome;
  std::vector<char> text(kFailureMessageBytes, 0);
  if (rank == outcome.failed[0]) {
    std::memcpy(text.data(), failure->data(), std::min(failure->size(), text.size() - 1));
  }
  check_mpi(api, "MPI_Bcast",
            api.Bcast(text.data(), kFailureMessageBytes, api.byte_type, outcome.failed[0], api.comm_world));
  outcome.message = text.data();
  return outcome;
}

// Why every rank stops, for the ranks that did not fail themselves.
ck::Failure job_failure(const SyncOutcome& outcome) {
  return std::make_shared<const ck::Error>(
      ck::ErrorKind::Distributed, "every rank stopped at the same step without applying it, because " + outcome.text());
}

// Submits `run` as a job named `what` and returns the promise that job settles with
// make_value(job) (or its error).
Napi::Promise submit_job(Napi::Env env, const std::string& what, int64_t timeout_ms,
                         std::function<void(Job&, const MpiApi&)> run,
                         std::function<Napi::Value(Napi::Env, Job&)> make_value) {
  auto job = std::make_shared<Job>();
  job->what = what;
  job->timeout_ms = timeout_ms;
  job->deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  Job* raw = job.get();
  job->run = [raw, run = std::move(run)](const MpiApi& api) { run(*raw, api); };
  return promise_when(
      env,
      [&](std::function<void()> settle) {
        job->settle = std::move(settle);
        Communicator::get().submit(job);
      },
      [job, make_value = std::move(make_value)](Napi::Env env) -> Napi::Value {
        if (job->error) throw ck::Error(*job->error);
        return make_value(env, *job);
      });
}

// A job that a native thread (a step's) waits for, instead of a promise.
class NativeJob {
 public:
  // Queues `run` on the communication thread behind the calls before it.
  NativeJob(const std::string& what, int64_t timeout_ms, std::function<void(const MpiApi&)> run)
      : done_(std::make_shared<Done>()), job_(std::make_shared<Job>()) {
    job_->what = what;
    job_->timeout_ms = timeout_ms;
    job_->deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    job_->run = std::move(run);
    job_->settle = [done = done_] {
      std::lock_guard<std::mutex> lk(done->mu);
      done->flag.store(true, std::memory_order_release);
      done->cv.notify_all();
    };
    Communicator::get().submit(job_);
  }

  // Blocks until the job is settled: finished, failed, or past its deadline (the watchdog); its
  // error, if any. Polls first, briefly: a small allreduce on one machine returns in
  // microseconds, less than a futex sleep and wake-up costs.
  ck::Failure wait() const {
    Done& d = *done_;
    if (!ck::spin_until([&] { return d.flag.load(std::memory_order_acquire); }, std::chrono::microseconds(50))) {
      std::unique_lock<std::mutex> lk(d.mu);
      d.cv.wait(lk, [&] { return d.flag.load(std::memory_order_relaxed); });
    }
    std::lock_guard<std::mutex> lk(job_->mu);
    return job_->error;
  }

 private:
  struct Done {
    std::mutex mu;
    std::condition_variable cv;
    std::atomic<bool> flag{false};
  };
  std::shared_ptr<Done> done_;
  std::shared_ptr<Job> job_;
};

// Runs `run` on the communication thread and blocks the calling thread until it is settled;
// throws its error.
void run_blocking(const std::string& what, int64_t timeout_ms, std::function<void(const MpiApi&)> run) {
  if (ck::Failure error = NativeJob(what, timeout_ms, std::move(run)).wait()) throw ck::Error(*error);
}

int64_t arg_timeout(const Napi::CallbackInfo& info, size_t i, const char* op) {
  double ms = arg_number(info, i, op, "timeoutMs");
  if (ms <= 0) {
    throw_js(info.Env(), ck::ErrorKind::Value,
             std::string(op) + ": timeoutMs must be positive, got " + std::to_string(ms));
  }
  return int64_t(std::min(ms, 1e12));
}

void require_started(const char* op) {
  if (!Communicator::get().started()) {
    throw ck::Error(ck::ErrorKind::Value, std::string(op) + ": call distributed.init() first");
  }
}

// mpiInit(timeoutMs) -> Promise<{ rank, size, localRank }>: loads MPI (a DeviceError saying what
// to install when it cannot) and initialises it on the communication thread.
Napi::Value MpiInit(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    int64_t timeout = arg_timeout(info, 0, "distributed.init");
    Communicator::get().start();
    return submit_job(
        info.Env(), "init", timeout,
        [](Job& job, const MpiApi& api) {
          int provided = 0;
          check_mpi(api, "MPI_Init_thread", api.Init_thread(nullptr, nullptr, kMpiThreadFunneled, &provided));
          if (provided < kMpiThreadFunneled) {
            throw ck::Error(ck::ErrorKind::Device,
                            "the MPI library does not support calls from a thread other than the "
                            "process's main thread (MPI_THREAD_FUNNELED)");
          }
          check_mpi(api, "MPI_Comm_rank", api.Comm_rank(api.comm_world, &job.rank));
          check_mpi(api, "MPI_Comm_size", api.Comm_size(api.comm_world, &job.size));
          MpiHandle node = nullptr;  // the ranks sharing this machine's memory
          check_mpi(api, "MPI_Comm_split_type",
                    api.Comm_split_type(api.comm_world, kMpiCommTypeShared, job.rank, api.info_null, &node));
          check_mpi(api, "MPI_Comm_rank", api.Comm_rank(node, &job.local_rank));
          check_mpi(api, "MPI_Comm_free", api.Comm_free(&node));
        },
        [](Napi::Env env, Job& job) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          o.Set("rank", job.rank);
          o.Set("size", job.size);
          o.Set("localRank", job.local_rank);
          return o;
        });
  });
}

// mpiAllreduce(x, timeoutMs, inPlace, ordered) -> Promise<Tensor | undefined>: the element-wise
// sum of x over every rank (ordered: added in rank order, sum_floats), in a new tensor or (inPlace, as PyTorch's all_reduce) in x itself, which then
// skips the output's allocation. In place it resolves to nothing (the caller has x): a second
// handle on x would report x's bytes to V8 once more per call, and the garbage collections that
// this phantom memory brings on would take the core from MPI.
Napi::Value MpiAllreduce(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    require_started("distributed.allreduce");
    ck::Tensor x = arg_host_tensor(info, 0, "distributed.allreduce", "x");
    int64_t timeout = arg_timeout(info, 1, "distributed.allreduce");
    const bool in_place = info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
    const bool ordered = info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
    ck::Tensor out = in_place ? x : OutputPool::get().take(x.shape, "distributed.allreduce");
    return submit_job(
        info.Env(), "allreduce", timeout,
        [x, out, in_place, ordered](Job& job, const MpiApi& api) {
          x.storage->wait();  // x's producer, if it is still queued
          sum_floats(api, x.data(), out.data(), x.numel(), ordered);
          if (!in_place) job.result = out;
        },
        [in_place](Napi::Env env, Job& job) -> Napi::Value {
          return in_place ? env.Undefined() : Napi::Value(TensorHandle::Wrap(env, job.result));
        });
  });
}

// mpiBroadcast(x, root, timeoutMs) -> Promise<Tensor>: root's x, on every rank.
Napi::Value MpiBroadcast(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    require_started("distributed.broadcast");
    ck::Tensor x = arg_host_tensor(info, 0, "distributed.broadcast", "x");
    int root = arg_int(info, 1, "distributed.broadcast", "root", 0, 1 << 30);
    int64_t timeout = arg_timeout(info, 2, "distributed.broadcast");
    ck::Tensor out = OutputPool::get().take(x.shape, "distributed.broadcast");
    return submit_job(
        info.Env(), "broadcast", timeout,
        [x, out, root](Job& job, const MpiApi& api) {
          x.storage->wait();
          if (x.numel()) std::memcpy(out.data(), x.data(), x.numel() * sizeof(float));
          check_mpi(api, "MPI_Bcast", api.Bcast(out.data(), int(out.numel()), api.float_type, root, api.comm_world));
          job.result = out;
        },
        [](Napi::Env env, Job& job) -> Napi::Value { return TensorHandle::Wrap(env, job.result); });
  });
}

// mpiBarrier(timeoutMs) -> Promise<void>: resolves once every rank has called it.
Napi::Value MpiBarrier(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    require_started("distributed.barrier");
    int64_t timeout = arg_timeout(info, 0, "distributed.barrier");
    return submit_job(
        info.Env(), "barrier", timeout,
        [](Job&, const MpiApi& api) { check_mpi(api, "MPI_Barrier", api.Barrier(api.comm_world)); },
        [](Napi::Env env, Job&) -> Napi::Value { return env.Undefined(); });
  });
}

// mpiSync(failure | null, value, timeoutMs) -> Promise<{ failed: string | null, values: number[] }>:
// a data-parallel fit's sync point outside a step (exchange_status): what failed ("rank 1
// failed: ...", null when nothing did) and every rank's value. `failure`: this rank's message,
// when its own work failed.
Napi::Value MpiSync(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    const char* op = "fit (distributed)";
    require_started(op);
    const bool failed = !info[0].IsNull();
    std::string failure = failed ? arg_string(info, 0, op, "failure") : "";
    float value = float(arg_number(info, 1, op, "value"));
    int64_t timeout = arg_timeout(info, 2, op);
    auto outcome = std::make_shared<SyncOutcome>();
    return submit_job(
        info.Env(), "status exchange", timeout,
        [failed, failure, value, outcome](Job&, const MpiApi& api) {
          *outcome = exchange_status(api, failed ? &failure : nullptr, value);
        },
        [outcome](Napi::Env env, Job&) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          o.Set("failed", outcome->failed.empty() ? env.Null() : Napi::String::New(env, outcome->text()));
          Napi::Array values = Napi::Array::New(env, outcome->values.size());
          for (size_t r = 0; r < outcome->values.size(); ++r) values.Set(uint32_t(r), double(outcome->values[r]));
          o.Set("values", values);
          return o;
        });
  });
}

// mpiFinalize(timeoutMs): ends MPI after the calls already queued, blocking the JS thread (it is
// called as the process exits cleanly). A DeviceError if the communicator is broken or the
// finalize did not finish in time: the process must then exit with an error so that the
// launcher ends the job.
Napi::Value MpiFinalize(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    int64_t timeout = arg_timeout(info, 0, "distributed.finalize");
    Communicator& c = Communicator::get();
    if (!c.started()) return info.Env().Undefined();
    std::string broken = c.broken();
    if (!broken.empty()) {
      throw ck::Error(ck::ErrorKind::Device, "distributed: MPI was not finalized because " + broken);
    }
    run_blocking("finalize", timeout, [](const MpiApi& api) { check_mpi(api, "MPI_Finalize", api.Finalize()); });
    return info.Env().Undefined();
  });
}

}  // namespace

ck::GradientReducer mpi_gradient_reducer(int64_t timeout_ms, size_t bucket_floats,
                                         std::vector<size_t> batch_stats_sizes, bool ordered) {
  require_started("fit (distributed)");
  // The step thread's view of the job: every callback runs there, one step after another.
  struct Steps {
    // Once a step failed on some rank, every rank has heard so at that step: the steps queued
    // behind it fail at once with the same error, without MPI (the other ranks skip theirs too).
    ck::Failure stopped;
    // The running step's opening status exchange (its outcome written on the communication
    // thread before any of the step's buckets runs there) and its collectives, in order.
    std::shared_ptr<SyncOutcome> opening;
    std::vector<NativeJob> jobs;
    // Sync batch norm: the floats of each batch_stats call of a step, how many this step made,
    // and the buckets that wait for the last of them (see reducer.bucket).
    std::vector<size_t> stats_sizes;
    size_t stats_done = 0;
    struct Bucket {
      ck::StoragePtr grads;
      size_t begin, end;
    };
    std::vector<Bucket> held;
  };
  auto steps = std::make_shared<Steps>();
  steps->stats_sizes = std::move(batch_stats_sizes);
  const std::string what = "allreduce of the gradients";
  const std::string stats_what = "allreduce of the batch norm statistics";
  ck::GradientReducer reducer;
  reducer.bucket_floats = bucket_floats;
  // The step's sync point, as every sync point of fit starts: a rank whose JS failed since the
  // last one joins it with its message (mpiSync), and then no rank sums or applies this step.
  reducer.begin = [steps, what, timeout_ms] {
    if (steps->stopped) throw ck::Error(*steps->stopped);
    steps->jobs.clear();
    steps->stats_done = 0;
    steps->held.clear();
    auto opening = steps->opening = std::make_shared<SyncOutcome>();
    steps->jobs.emplace_back(what, timeout_ms, [opening](const MpiApi& api) { *opening = exchange_status(api, nullptr); });
  };
  // A bucket's in-place sum, queued behind the ones before it while backward goes on. The job
  // holds the buffer: after a timeout the blocked MPI call may still write to it. Larger than
  // one MPI count (2^31 - 1 floats), it goes in several calls, each element still in one.
  auto send_bucket = [steps, what, timeout_ms, ordered](const ck::StoragePtr& grads, size_t begin, size_t end) {
    steps->jobs.emplace_back(what, timeout_ms, [opening = steps->opening, grads, begin, end, ordered](const MpiApi& api) {
      if (!opening->failed.empty()) return;  // every rank skips it: a rank failed before the step
      sum_floats(api, grads->data() + begin, grads->data() + begin, end - begin, ordered);
    });
  };
  // With sync batch norm, the buckets that backward hands over before its last batch norm's sums
  // wait for them: every rank must issue its collectives in one order, and a rank that runs no
  // backward (no rows, or its part failed) cannot know where between the batch norms' sums the
  // others' buckets fell, but can send all the sums and then all the buckets.
  reducer.bucket = [steps, send_bucket](const ck::StoragePtr& grads, size_t begin, size_t end) {
    if (steps->stopped) return;  // as on every rank: this step makes no MPI call
    if (steps->stats_done < steps->stats_sizes.size()) {
      steps->held.push_back({grads, begin, end});
    } else {
      send_bucket(grads, begin, end);
    }
  };
  // One batch norm sum, on a copy that the job owns (after a timeout the blocked MPI call may
  // still write to it); zeros where this rank adds nothing.
  auto send_stats = [steps, stats_what, timeout_ms, ordered](std::shared_ptr<std::vector<float>> values) {
    ++steps->stats_done;
    return NativeJob(stats_what, timeout_ms, [opening = steps->opening, values, ordered](const MpiApi& api) {
      if (!opening->failed.empty()) return;
      sum_floats(api, values->data(), values->data(), values->size(), ordered);
    });
  };
  auto release_held = [steps, send_bucket] {
    if (steps->stats_done < steps->stats_sizes.size()) return;
    for (const Steps::Bucket& b : steps->held) send_bucket(b.grads, b.begin, b.end);
    steps->held.clear();
  };
  if (!steps->stats_sizes.empty()) {
    reducer.batch_stats = [steps, send_stats, release_held](float* data, size_t n) {
      if (steps->stopped) throw ck::Error(*steps->stopped);
      const size_t k = steps->stats_done;
      if (k >= steps->stats_sizes.size() || steps->stats_sizes[k] != n) {
        throw ck::Error(ck::ErrorKind::Value,
                        "fit (syncBatchNorm): batch norm statistics sum " + std::to_string(k + 1) + " of the step has " +
                            std::to_string(n) + " floats, expected " +
                            (k < steps->stats_sizes.size() ? std::to_string(steps->stats_sizes[k]) + " floats"
                                                           : "none (the step makes " +
                                                                 std::to_string(steps->stats_sizes.size()) + ")"));
      }
      auto values = std::make_shared<std::vector<float>>(data, data + n);
      NativeJob job = send_stats(values);
      release_held();
      if (ck::Failure error = job.wait()) throw ck::Error(*error);
      std::copy(values->begin(), values->end(), data);
    };
  }
  // Waits for the buckets, then closes the step's sync point: when this rank's part failed it
  // says so, and no rank applies the step.
  reducer.finish = [steps, what, timeout_ms, send_stats, release_held](const ck::StoragePtr&, size_t,
                                                                       const ck::Failure& failed) {
    if (steps->stopped) throw ck::Error(*steps->stopped);
    // The batch norm sums this rank did not make (it had no rows, or its part failed), as the
    // others make them, then the buckets that waited for them.
    while (steps->stats_done < steps->stats_sizes.size()) {
      steps->jobs.push_back(send_stats(std::make_shared<std::vector<float>>(steps->stats_sizes[steps->stats_done], 0.f)));
    }
    release_held();
    ck::Failure error;
    for (const NativeJob& job : steps->jobs) {
      ck::Failure e = job.wait();
      if (!error) error = e;
    }
    steps->jobs.clear();
    if (error) throw ck::Error(*error);  // a timeout: the communicator is broken
    const SyncOutcome* outcome = steps->opening.get();
    auto closing = std::make_shared<SyncOutcome>();
    if (outcome->failed.empty()) {
      const bool own = bool(failed);
      std::string failure = own ? std::string(error_class_name(failed->kind())) + ": " + failed->what() : "";
      run_blocking(what, timeout_ms, [closing, own, failure](const MpiApi& api) {
        *closing = exchange_status(api, own ? &failure : nullptr);
      });
      outcome = closing.get();
    }
    if (outcome->failed.empty()) return;
    steps->stopped = failed ? failed : job_failure(*outcome);
    throw ck::Error(*steps->stopped);
  };
  return reducer;
}

void register_mpi(Napi::Env env, Napi::Object exports) {
  exports.Set("mpiInit", Napi::Function::New(env, MpiInit));
  exports.Set("mpiAllreduce", Napi::Function::New(env, MpiAllreduce));
  exports.Set("mpiBroadcast", Napi::Function::New(env, MpiBroadcast));
  exports.Set("mpiBarrier", Napi::Function::New(env, MpiBarrier));
  exports.Set("mpiSync", Napi::Function::New(env, MpiSync));
  exports.Set("mpiFinalize", Napi::Function::New(env, MpiFinalize));
}

}  // namespace ckaddon
