#include "runtime/controller.h"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <exception>
#include <thread>
#include <vector>

namespace poolguard::runtime {

struct Controller::Metrics {
  std::shared_ptr<prometheus::Registry> registry;
  prometheus::Family<prometheus::Counter>* total;
  prometheus::Histogram* duration;
  std::string name;

  Metrics(std::shared_ptr<prometheus::Registry> r, std::string controller)
      : registry(std::move(r)), name(std::move(controller)) {
    total = &prometheus::BuildCounter()
                 .Name("controller_runtime_reconcile_total")
                 .Help("Reconciliations by outcome.")
                 .Register(*registry);
    duration = &prometheus::BuildHistogram()
                    .Name("controller_runtime_reconcile_time_seconds")
                    .Help("Time spent in the reconciler.")
                    .Register(*registry)
                    .Add({{"controller", name}}, prometheus::Histogram::BucketBoundaries{
                                                     0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60});
  }
  void count(const char* result) { total->Add({{"controller", name}, {"result", result}}).Increment(); }
};

namespace {
WorkQueueOptions queueOptions(const ControllerOptions& o) {
  WorkQueueOptions q;
  q.name = o.name;
  q.clock = o.clock;
  q.rateLimiter = o.rateLimiter;
  q.registry = o.registry;
  q.clockPoll = o.clockPoll;
  return q;
}
}  // namespace

Controller::Controller(ControllerOptions opts, Reconciler reconciler)
    : opts_(std::move(opts)),
      reconciler_(std::move(reconciler)),
      queue_(queueOptions(opts_)),
      metrics_(std::make_unique<Metrics>(opts_.registry ? opts_.registry : metricsRegistry(), opts_.name)) {}

Controller::~Controller() { queue_.shutdown(); }

std::optional<std::pair<std::string, std::chrono::steady_clock::time_point>> Controller::longestInFlight() const {
  std::lock_guard lock(inFlightMu_);
  std::optional<std::pair<std::string, std::chrono::steady_clock::time_point>> oldest;
  for (const auto& [key, since] : inFlight_) {
    if (!oldest || since < oldest->second) oldest.emplace(key, since);
  }
  return oldest;
}

bool Controller::processNextWorkItem() {
  auto key = queue_.get();
  if (!key) return false;
  auto started = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(inFlightMu_);
    inFlight_[*key] = started;  // the queue never hands one key to two workers
  }
  std::optional<Result<ReconcileResult>> outcome;
  try {
    outcome.emplace(reconciler_(*key));
  } catch (const std::exception& e) {
    outcome.emplace(Error(ErrorCode::kInternal, std::string("reconciler threw: ") + e.what()));
  } catch (...) {
    outcome.emplace(Error(ErrorCode::kInternal, "reconciler threw a non-standard exception"));
  }
  bool drained = false;
  {
    std::lock_guard lock(inFlightMu_);
    inFlight_.erase(*key);
    drained = inFlight_.empty();
  }
  metrics_->duration->Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  const auto& r = *outcome;
  if (!r.ok()) {
    if (r.error().terminal()) {
      spdlog::error("{}: reconcile {} failed permanently: {}", opts_.name, *key, r.error().message());
      queue_.forget(*key);
      metrics_->count("terminal_error");
    } else {
      spdlog::warn("{}: reconcile {} failed ({}), retrying: {}", opts_.name, *key, toString(r.error().code()),
                   r.error().message());
      queue_.addRateLimited(*key);
      metrics_->count("error");
    }
  } else if (r->requeueAfter.count() > 0) {
    queue_.forget(*key);
    queue_.addAfter(*key, r->requeueAfter);
    metrics_->count("requeue_after");
  } else if (r->requeue) {
    queue_.addRateLimited(*key);
    metrics_->count("requeue");
  } else {
    queue_.forget(*key);
    metrics_->count("success");
  }
  queue_.done(*key);
  if (drained && opts_.onDrained && queue_.len() == 0) opts_.onDrained();
  return true;
}

void Controller::run(std::stop_token stop) {
  std::stop_callback onStop(stop, [this] { queue_.shutdown(); });
  std::vector<std::thread> workers;
  for (int i = 0; i < std::max(1, opts_.workers); ++i) {
    workers.emplace_back([this] {
      while (processNextWorkItem()) {
      }
    });
  }
  for (auto& w : workers) w.join();
  queue_.shutdown();
}

}  // namespace poolguard::runtime
