#pragma once
// A rate-limited work queue of object keys with client-go's guarantees:
// - A key is queued at most once however often it is added (dirty set).
// - A key is never handed to two workers at once: added while being processed, it is queued again only when
//   the worker calls done() (processing set).
// - addAfter() delays a key; addRateLimited() delays it by the rate limiter (per-key exponential backoff and a
//   global token bucket by default); forget() resets the key's backoff after success.
// - After shutdown() nothing is added and get() returns std::nullopt at once, even with keys still queued:
//   workers finish the key in hand and stop (a lost lease must stop reconciling without draining the queue).
// Delayed keys are promoted by the threads calling into the queue, reading the injected Clock; there is no timer
// thread. Thread-safe.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/clock.h"
#include "kube/rate_limiter.h"
#include "runtime/metrics.h"
#include "runtime/stop.h"

namespace poolguard::runtime {

class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  // How long the key should wait before it is processed again; counts a retry.
  virtual std::chrono::nanoseconds when(const std::string& key) = 0;
  // The key succeeded: its backoff starts over.
  virtual void forget(const std::string& key) = 0;
  virtual int numRequeues(const std::string& key) const = 0;
};

// base * 2^failures per key, capped at max.
class ItemExponentialRateLimiter final : public RateLimiter {
 public:
  ItemExponentialRateLimiter(std::chrono::nanoseconds base, std::chrono::nanoseconds max) : base_(base), max_(max) {}
  std::chrono::nanoseconds when(const std::string& key) override;
  void forget(const std::string& key) override;
  int numRequeues(const std::string& key) const override;

 private:
  std::chrono::nanoseconds base_, max_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, int> failures_;
};

// One token bucket for all keys: bounds the overall retry rate when many keys fail at once.
class BucketRateLimiter final : public RateLimiter {
 public:
  BucketRateLimiter(const Clock& clock, double qps, int burst) : bucket_(qps, burst, clock) {}
  std::chrono::nanoseconds when(const std::string&) override { return bucket_.reserve(); }
  void forget(const std::string&) override {}
  int numRequeues(const std::string&) const override { return 0; }

 private:
  kube::RateLimiter bucket_;
};

// The longest delay of its limiters.
class MaxOfRateLimiter final : public RateLimiter {
 public:
  explicit MaxOfRateLimiter(std::vector<std::shared_ptr<RateLimiter>> limiters) : limiters_(std::move(limiters)) {}
  std::chrono::nanoseconds when(const std::string& key) override;
  void forget(const std::string& key) override;
  int numRequeues(const std::string& key) const override;

 private:
  std::vector<std::shared_ptr<RateLimiter>> limiters_;
};

// Per-key 5 ms .. 1000 s exponential backoff combined with a 10 qps / burst 100 bucket (client-go's default).
std::shared_ptr<RateLimiter> defaultControllerRateLimiter(const Clock& clock);

struct WorkQueueOptions {
  std::string name = "default";                    // the "name" label of the workqueue_* metrics
  const Clock* clock = nullptr;                    // SystemClock when null
  std::shared_ptr<RateLimiter> rateLimiter;        // defaultControllerRateLimiter when null
  std::shared_ptr<prometheus::Registry> registry;  // metricsRegistry() when null
  std::chrono::milliseconds clockPoll = kDefaultClockPoll;
};

class WorkQueue {
 public:
  explicit WorkQueue(WorkQueueOptions opts = {});
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  void add(const std::string& key);
  // Adds the key once `delay` has passed on the clock; an earlier pending delay for the key wins.
  void addAfter(const std::string& key, std::chrono::nanoseconds delay);
  void addRateLimited(const std::string& key);
  void forget(const std::string& key);
  int numRequeues(const std::string& key) const;

  // Blocks until a key is ready; std::nullopt once shut down. Every key returned must be passed to done().
  std::optional<std::string> get();
  // Non-blocking get().
  std::optional<std::string> tryGet();
  void done(const std::string& key);

  void shutdown();
  bool shuttingDown() const;
  // Keys ready to be handed out (due delayed keys included).
  size_t len();
  // Keys waiting for their delay.
  size_t delayedLen() const;

 private:
  struct Metrics;
  void addLocked(const std::string& key);
  void promoteDueLocked();
  std::string popLocked();

  const Clock& clock_;
  std::shared_ptr<RateLimiter> limiter_;
  std::chrono::milliseconds clockPoll_;
  std::unique_ptr<Metrics> metrics_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::unordered_set<std::string> dirty_;
  std::unordered_set<std::string> processing_;
  std::multimap<Clock::steady_point, std::string> delayed_;
  std::unordered_map<std::string, Clock::steady_point> delayedAt_;
  std::unordered_map<std::string, Clock::steady_point> queuedSince_;
  std::unordered_map<std::string, Clock::steady_point> processingSince_;
  bool shuttingDown_ = false;
};

}  // namespace poolguard::runtime
