#pragma once
// Runs a level-based Reconciler over a WorkQueue with N workers (controller-runtime's reconcile contract):
// - A key in, {requeue, requeueAfter} or an Error out. The reconciler reads caches, never event payloads, and
//   running it twice for the same state changes nothing the second time.
// - Ok with requeueAfter > 0: the key's backoff is forgotten and it comes back after that delay.
// - Ok with requeue: the key comes back rate limited (its backoff grows).
// - Ok otherwise: the key's backoff is forgotten.
// - An Error marked terminal (Error::asTerminal) is logged, forgotten, not retried until the key is added
//   again by an event. Any other Error, whatever its code or HTTP status, is retried rate limited.
// - An exception escaping the reconciler is treated as a retryable error; the worker survives.
// - A key is never reconciled by two workers at once (WorkQueue guarantee).
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>

#include "common/clock.h"
#include "common/result.h"
#include "runtime/workqueue.h"

namespace poolguard::runtime {

struct ReconcileResult {
  bool requeue = false;
  std::chrono::milliseconds requeueAfter{0};
};

using Reconciler = std::function<Result<ReconcileResult>(const std::string& key)>;

struct ControllerOptions {
  std::string name = "controller";  // queue name and "controller" metrics label
  int workers = 2;
  const Clock* clock = nullptr;                    // SystemClock when null
  std::shared_ptr<RateLimiter> rateLimiter;        // defaultControllerRateLimiter when null
  std::shared_ptr<prometheus::Registry> registry;  // metricsRegistry() when null
  std::chrono::milliseconds clockPoll = kDefaultClockPoll;
  // Called by the worker that finished the last key when the queue is empty and no reconcile runs (a burst of
  // work is over): the operator gives freed memory back there. Must be quick and must not throw.
  std::function<void()> onDrained;
};

class Controller {
 public:
  Controller(ControllerOptions opts, Reconciler reconciler);
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // Where informer handlers put keys (see enqueueKeys).
  WorkQueue& queue() { return queue_; }

  // Runs the workers until `stop` is requested, then shuts the queue down and waits for the reconciles in
  // flight. Blocks. A Controller runs once: its queue stays shut down afterwards.
  void run(std::stop_token stop);

  // Takes one key, reconciles it and files the outcome. Blocks for a key; returns false once the queue is shut
  // down. For tests and custom loops.
  bool processNextWorkItem();

  // The key reconciled the longest right now and when that reconcile started (std::chrono::steady_clock);
  // nullopt when every worker is idle.
  std::optional<std::pair<std::string, std::chrono::steady_clock::time_point>> longestInFlight() const;

 private:
  struct Metrics;
  ControllerOptions opts_;
  Reconciler reconciler_;
  WorkQueue queue_;
  std::unique_ptr<Metrics> metrics_;
  mutable std::mutex inFlightMu_;
  std::map<std::string, std::chrono::steady_clock::time_point> inFlight_;  // key -> when its reconcile started
};

}  // namespace poolguard::runtime
