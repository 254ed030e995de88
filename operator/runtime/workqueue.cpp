#include "runtime/workqueue.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <algorithm>

namespace poolguard::runtime {

using std::chrono::nanoseconds;

nanoseconds ItemExponentialRateLimiter::when(const std::string& key) {
  std::lock_guard lock(mu_);
  int exp = failures_[key]++;
  // 2^exp overflows long before it matters: clamp the exponent, then the product.
  if (exp >= 62) return max_;
  double d = static_cast<double>(base_.count()) * static_cast<double>(1ULL << std::min(exp, 62));
  if (d > static_cast<double>(max_.count())) return max_;
  return nanoseconds(static_cast<int64_t>(d));
}

void ItemExponentialRateLimiter::forget(const std::string& key) {
  std::lock_guard lock(mu_);
  failures_.erase(key);
}

int ItemExponentialRateLimiter::numRequeues(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

nanoseconds MaxOfRateLimiter::when(const std::string& key) {
  nanoseconds longest{0};
  for (auto& l : limiters_) longest = std::max(longest, l->when(key));
  return longest;
}

void MaxOfRateLimiter::forget(const std::string& key) {
  for (auto& l : limiters_) l->forget(key);
}

int MaxOfRateLimiter::numRequeues(const std::string& key) const {
  int most = 0;
  for (const auto& l : limiters_) most = std::max(most, l->numRequeues(key));
  return most;
}

std::shared_ptr<RateLimiter> defaultControllerRateLimiter(const Clock& clock) {
  return std::make_shared<MaxOfRateLimiter>(std::vector<std::shared_ptr<RateLimiter>>{
      std::make_shared<ItemExponentialRateLimiter>(std::chrono::milliseconds(5), std::chrono::seconds(1000)),
      std::make_shared<BucketRateLimiter>(clock, 10.0, 100)});
}

struct WorkQueue::Metrics {
  std::shared_ptr<prometheus::Registry> registry;  // keeps the families below alive
  prometheus::Gauge* depth;
  prometheus::Counter* adds;
  prometheus::Counter* retries;
  prometheus::Histogram* queueDuration;
  prometheus::Histogram* workDuration;

  Metrics(std::shared_ptr<prometheus::Registry> r, const std::string& name) : registry(std::move(r)) {
    prometheus::Labels labels{{"name", name}};
    // Seconds from 1 ms to ~17 min, as client-go's workqueue buckets.
    prometheus::Histogram::BucketBoundaries buckets{1e-3, 1e-2, 1e-1, 1, 10, 100, 1000};
    depth = &prometheus::BuildGauge()
                 .Name("workqueue_depth")
                 .Help("Current depth of the work queue.")
                 .Register(*registry)
                 .Add(labels);
    adds = &prometheus::BuildCounter()
                .Name("workqueue_adds_total")
                .Help("Keys added to the work queue.")
                .Register(*registry)
                .Add(labels);
    retries = &prometheus::BuildCounter()
                   .Name("workqueue_retries_total")
                   .Help("Rate-limited re-adds.")
                   .Register(*registry)
                   .Add(labels);
    queueDuration = &prometheus::BuildHistogram()
                         .Name("workqueue_queue_duration_seconds")
                         .Help("Time a key waits in the queue before a worker takes it.")
                         .Register(*registry)
                         .Add(labels, buckets);
    workDuration = &prometheus::BuildHistogram()
                        .Name("workqueue_work_duration_seconds")
                        .Help("Time a worker spends on a key.")
                        .Register(*registry)
                        .Add(labels, buckets);
  }
};

WorkQueue::WorkQueue(WorkQueueOptions opts)
    : clock_(opts.clock ? *opts.clock : SystemClock::instance()),
      limiter_(opts.rateLimiter ? opts.rateLimiter : defaultControllerRateLimiter(clock_)),
      clockPoll_(opts.clockPoll),
      metrics_(std::make_unique<Metrics>(opts.registry ? opts.registry : metricsRegistry(), opts.name)) {}

WorkQueue::~WorkQueue() { shutdown(); }

void WorkQueue::addLocked(const std::string& key) {
  if (shuttingDown_ || dirty_.count(key)) return;
  metrics_->adds->Increment();
  dirty_.insert(key);
  if (processing_.count(key)) return;  // done() queues it again
  queue_.push_back(key);
  queuedSince_.emplace(key, clock_.steadyNow());
  metrics_->depth->Set(static_cast<double>(queue_.size()));
  cv_.notify_one();
}

void WorkQueue::promoteDueLocked() {
  auto now = clock_.steadyNow();
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    std::string key = delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    delayedAt_.erase(key);
    addLocked(key);
  }
}

void WorkQueue::add(const std::string& key) {
  std::lock_guard lock(mu_);
  addLocked(key);
}

void WorkQueue::addAfter(const std::string& key, nanoseconds delay) {
  std::lock_guard lock(mu_);
  if (shuttingDown_) return;
  if (delay <= nanoseconds::zero()) {
    addLocked(key);
    return;
  }
  auto at = clock_.steadyNow() + std::chrono::duration_cast<Clock::steady_point::duration>(delay);
  if (auto it = delayedAt_.find(key); it != delayedAt_.end()) {
    if (it->second <= at) return;
    auto range = delayed_.equal_range(it->second);
    for (auto d = range.first; d != range.second; ++d) {
      if (d->second == key) {
        delayed_.erase(d);
        break;
      }
    }
  }
  delayed_.emplace(at, key);
  delayedAt_[key] = at;
  // A waiting worker may need to wake earlier than it planned.
  cv_.notify_all();
}

void WorkQueue::addRateLimited(const std::string& key) {
  metrics_->retries->Increment();
  addAfter(key, limiter_->when(key));
}

void WorkQueue::forget(const std::string& key) { limiter_->forget(key); }

int WorkQueue::numRequeues(const std::string& key) const { return limiter_->numRequeues(key); }

std::string WorkQueue::popLocked() {
  std::string key = std::move(queue_.front());
  queue_.pop_front();
  auto now = clock_.steadyNow();
  if (auto it = queuedSince_.find(key); it != queuedSince_.end()) {
    metrics_->queueDuration->Observe(std::chrono::duration<double>(now - it->second).count());
    queuedSince_.erase(it);
  }
  processing_.insert(key);
  processingSince_[key] = now;
  dirty_.erase(key);
  metrics_->depth->Set(static_cast<double>(queue_.size()));
  return key;
}

std::optional<std::string> WorkQueue::get() {
  std::unique_lock lock(mu_);
  while (true) {
    if (shuttingDown_) return std::nullopt;
    promoteDueLocked();
    if (!queue_.empty()) return popLocked();
    auto wait = std::chrono::duration_cast<nanoseconds>(clockPoll_);
    if (!delayed_.empty()) {
      wait = std::min(wait, std::max(nanoseconds(0), std::chrono::duration_cast<nanoseconds>(delayed_.begin()->first -
                                                                                             clock_.steadyNow())));
      cv_.wait_for(lock, wait);
    } else {
      // Nothing is delayed: only add() or shutdown() can wake us.
      cv_.wait(lock);
    }
  }
}

std::optional<std::string> WorkQueue::tryGet() {
  std::lock_guard lock(mu_);
  if (shuttingDown_) return std::nullopt;
  promoteDueLocked();
  if (queue_.empty()) return std::nullopt;
  return popLocked();
}

void WorkQueue::done(const std::string& key) {
  std::lock_guard lock(mu_);
  processing_.erase(key);
  if (auto it = processingSince_.find(key); it != processingSince_.end()) {
    metrics_->workDuration->Observe(std::chrono::duration<double>(clock_.steadyNow() - it->second).count());
    processingSince_.erase(it);
  }
  if (dirty_.count(key) && !shuttingDown_) {
    queue_.push_back(key);
    queuedSince_.emplace(key, clock_.steadyNow());
    metrics_->depth->Set(static_cast<double>(queue_.size()));
    cv_.notify_one();
  }
}

void WorkQueue::shutdown() {
  std::lock_guard lock(mu_);
  shuttingDown_ = true;
  cv_.notify_all();
}

bool WorkQueue::shuttingDown() const {
  std::lock_guard lock(mu_);
  return shuttingDown_;
}

size_t WorkQueue::len() {
  std::lock_guard lock(mu_);
  promoteDueLocked();
  return queue_.size();
}

size_t WorkQueue::delayedLen() const {
  std::lock_guard lock(mu_);
  return delayed_.size();
}

}  // namespace poolguard::runtime
