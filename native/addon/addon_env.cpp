// Each environment that loads the addon (the main thread, each worker_thread) has its own state:
// the Tensor class and error classes, a dispatcher that settles its promises on its JS thread,
// the streams its models run on, and the references to wrapped Float32Arrays waiting to be
// released on that thread. A worker_thread may end, or be terminated, with work still queued:
// the environment's cleanup hook waits for that work (it may read the worker's arrays, which go
// with its heap) and then closes the dispatcher, so no thread calls into a torn-down environment.
#include <algorithm>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_set>
#include <utility>
#include <vector>

#include "addon.h"
#include "device.h"
#include "stream.h"

namespace ckaddon {

// Runs jobs posted from any thread on one environment's JS thread, through one thread-safe
// function that keeps the event loop alive only while promises wait on it.
class Dispatcher {
 public:
  static std::shared_ptr<Dispatcher> create(napi_env env) {
    auto self = std::shared_ptr<Dispatcher>(new Dispatcher());
    napi_value name;
    if (napi_create_string_utf8(env, "convkit.settle", NAPI_AUTO_LENGTH, &name) != napi_ok ||
        napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1,
                                        new std::shared_ptr<Dispatcher>(self), &Dispatcher::finalize,
                                        self.get(), &Dispatcher::call_js, &self->tsfn_) != napi_ok ||
        napi_unref_threadsafe_function(env, self->tsfn_) != napi_ok) {
      throw ck::Error(ck::ErrorKind::Value, "convkit: cannot create the promise dispatcher");
    }
    return self;
  }

  // JS thread: one more promise waits.
  void hold(napi_env env) {
    if (waiting_++ == 0) napi_ref_threadsafe_function(env, tsfn_);
  }
  void unhold(napi_env env) {
    if (--waiting_ == 0) napi_unref_threadsafe_function(env, tsfn_);
  }

  // Any thread. Once the environment is closing, `job` is dropped unrun (what it holds of the
  // environment is made with shared_reference, which lets go of a dead environment).
  void post(std::function<void(Napi::Env)> job) {
    auto* owned = new std::function<void(Napi::Env)>(std::move(job));
    std::unique_lock<std::mutex> lk(mutex_);
    if (!closed_ && napi_call_threadsafe_function(tsfn_, owned, napi_tsfn_nonblocking) == napi_ok) return;
    lk.unlock();
    delete owned;
  }

  void close() {
    std::lock_guard<std::mutex> lk(mutex_);
    closed_ = true;
  }

 private:
  Dispatcher() = default;

  static void call_js(napi_env env, napi_value, void* context, void* data) {
    auto* job = static_cast<std::function<void(Napi::Env)>*>(data);
    if (env == nullptr) {  // torn down with jobs queued
      delete job;
      return;
    }
    try {
      (*job)(Napi::Env(env));
    } catch (...) {
      // the environment can no longer run JS (a worker_thread being terminated)
    }
    delete job;
    static_cast<Dispatcher*>(context)->unhold(env);
  }

  static void finalize(napi_env, void* data, void*) {
    delete static_cast<std::shared_ptr<Dispatcher>*>(data);
  }

  std::mutex mutex_;
  bool closed_ = false;
  napi_threadsafe_function tsfn_ = nullptr;
  int waiting_ = 0;  // JS thread only
};

namespace {

// Environments alive, and references to wrapped arrays whose storage died on another thread:
// napi_ref may only be deleted on its own JS thread, so they wait for it to enter the addon.
std::mutex g_env_mutex;
std::unordered_set<napi_env> g_live_envs;
std::vector<std::pair<napi_env, napi_ref>> g_pending_release;

std::vector<napi_ref> take_releases(napi_env env) {
  std::vector<napi_ref> mine;
  for (size_t i = 0; i < g_pending_release.size();) {
    if (g_pending_release[i].first == env) {
      mine.push_back(g_pending_release[i].second);
      g_pending_release[i] = g_pending_release.back();
      g_pending_release.pop_back();
    } else {
      ++i;
    }
  }
  return mine;
}

// Everything queued so far, on every stream that may read this environment's memory or settle
// its promises: the default stream, its models' streams and the CUDA stream.
void finish_work(InstanceData& data) {
  ck::Stream::default_stream()->synchronize();
  for (const auto& weak : data.streams) {
    if (auto stream = weak.lock()) stream->synchronize();
  }
  ck::DeviceBackend& cuda = ck::cuda_backend();
  if (cuda.available()) {
    cuda.synchronize(cuda.stream());
    ck::Stream::default_stream()->synchronize();
  }
}

bool env_alive(napi_env env) {
  std::lock_guard<std::mutex> lk(g_env_mutex);
  return g_live_envs.count(env) > 0;
}

void on_env_cleanup(void* arg) {
  napi_env env = static_cast<napi_env>(arg);
  InstanceData& data = instance(Napi::Env(env));
  try {
    finish_work(data);
  } catch (...) {
    // a failed device sync: the work is over either way
  }
  // Dead before the dispatcher closes: a job dropped from here on lets go of its references.
  std::vector<napi_ref> refs;
  {
    std::lock_guard<std::mutex> lk(g_env_mutex);
    g_live_envs.erase(env);
    refs = take_releases(env);
  }
  for (napi_ref r : refs) napi_delete_reference(env, r);
  data.dispatcher->close();
}

}  // namespace

InstanceData& instance(Napi::Env env) { return *env.GetInstanceData<InstanceData>(); }

void init_env(Napi::Env env) {
  auto* data = new InstanceData();
  env.SetInstanceData(data);
  data->dispatcher = Dispatcher::create(env);
  {
    std::lock_guard<std::mutex> lk(g_env_mutex);
    g_live_envs.insert(env);
  }
  // Registered after the dispatcher's thread-safe function, so it runs before that is torn down.
  napi_add_env_cleanup_hook(env, on_env_cleanup, static_cast<napi_env>(env));
}

void track_stream(Napi::Env env, const std::shared_ptr<ck::Stream>& stream) {
  auto& streams = instance(env).streams;
  streams.erase(std::remove_if(streams.begin(), streams.end(), [](const auto& w) { return w.expired(); }),
                streams.end());
  streams.push_back(stream);
}

std::shared_ptr<Napi::ObjectReference> shared_reference(Napi::Object object) {
  return std::shared_ptr<Napi::ObjectReference>(
      new Napi::ObjectReference(Napi::Persistent(object)), [](Napi::ObjectReference* ref) {
        // a dead environment's references went with its heap
        if (!env_alive(ref->Env())) ref->SuppressDestruct();
        delete ref;
      });
}

void queue_release(napi_env env, napi_ref ref) {
  std::lock_guard<std::mutex> lk(g_env_mutex);
  // a reference of an environment that is gone went with its heap
  if (g_live_envs.count(env)) g_pending_release.emplace_back(env, ref);
}

void drain_releases(napi_env env) {
  std::vector<napi_ref> mine;
  {
    std::lock_guard<std::mutex> lk(g_env_mutex);
    if (g_pending_release.empty()) return;
    mine = take_releases(env);
  }
  for (napi_ref r : mine) napi_delete_reference(env, r);
}

Napi::Promise promise_after(Napi::Env env, const std::shared_ptr<ck::Stream>& stream, uint64_t seq,
                            std::function<Napi::Value(Napi::Env)> make_value) {
  return promise_when(
      env,
      [&](std::function<void()> settle) {
        if (stream) {
          stream->then(seq, std::move(settle));
        } else {
          settle();
        }
      },
      std::move(make_value));
}

Napi::Promise promise_when(Napi::Env env,
                           const std::function<void(std::function<void()>)>& subscribe,
                           std::function<Napi::Value(Napi::Env)> make_value) {
  auto deferred = std::make_shared<Napi::Promise::Deferred>(env);
  std::shared_ptr<Dispatcher> dispatcher = instance(env).dispatcher;
  dispatcher->hold(env);
  auto settle = [dispatcher, deferred, make_value = std::move(make_value)]() {
    dispatcher->post([deferred, make_value](Napi::Env env) {
      try {
        deferred->Resolve(make_value(env));
      } catch (const Napi::Error& e) {
        deferred->Reject(e.Value());
      } catch (const ck::Error& e) {
        deferred->Reject(make_error(env, e.kind(), e.what()));
      } catch (const std::exception& e) {
        deferred->Reject(make_error(env, ck::ErrorKind::Value, e.what()));
      }
    });
  };
  try {
    subscribe(settle);
  } catch (...) {
    dispatcher->unhold(env);  // settle will never run
    throw;
  }
  return deferred->Promise();
}

}  // namespace ckaddon
