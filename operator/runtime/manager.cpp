#include "runtime/manager.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <thread>

namespace poolguard::runtime {

Manager::Manager(kube::Client& client, ManagerOptions opts) : client_(client), opts_(std::move(opts)) {}

Manager::~Manager() {
  for (auto& i : informers_) i->stop();
}

Informer& Manager::addInformer(InformerOptions opts) {
  informers_.push_back(std::make_unique<Informer>(client_, std::move(opts)));
  return *informers_.back();
}

Controller& Manager::addController(ControllerOptions opts, Reconciler reconciler) {
  controllers_.push_back(std::make_unique<Controller>(std::move(opts), std::move(reconciler)));
  return *controllers_.back();
}

bool Manager::cachesSynced() const {
  for (const auto& i : informers_) {
    if (!i->hasSynced()) return false;
  }
  return true;
}

void Manager::runControllers(std::stop_token stop) {
  std::vector<std::jthread> threads;
  for (auto& c : controllers_) {
    threads.emplace_back([&c, stop] { c->run(stop); });
  }
}  // jthread joins: returns once every controller has stopped.

Status Manager::run(std::stop_token stop) {
  if (!opts_.metricsBindAddress.empty()) {
    if (auto s = metrics_.start(opts_.metricsBindAddress); !s.ok()) return s;
  }
  health_.addReadinessCheck("informers-synced", [this] { return cachesSynced(); });
  health_.addLivenessCheck("watches-progressing", [this] {
    const auto now = std::chrono::steady_clock::now();
    for (const auto& i : informers_) {
      if (auto stuck = i->stalled(now, opts_.watchStallMargin)) {
        spdlog::error("liveness: {}", *stuck);
        return false;
      }
    }
    return true;
  });
  health_.addLivenessCheck("workers-progressing", [this] {
    const auto now = std::chrono::steady_clock::now();
    for (const auto& c : controllers_) {
      auto oldest = c->longestInFlight();
      if (oldest && now - oldest->second > opts_.maxReconcileDuration) {
        spdlog::error("liveness: reconcile of {} has run for {} s", oldest->first,
                      std::chrono::duration_cast<std::chrono::seconds>(now - oldest->second).count());
        return false;
      }
    }
    return true;
  });
  if (opts_.healthPort >= 0) {
    if (auto s = health_.start(opts_.healthHost, opts_.healthPort); !s.ok()) return s;
  }
  std::stop_source informerStop;
  for (auto& i : informers_) i->start(informerStop.get_token());
  auto finish = [&](Status s) {
    informerStop.request_stop();
    for (auto& i : informers_) i->stop();
    health_.stop();
    metrics_.stop();
    return s;
  };

  for (auto& i : informers_) {
    if (!i->waitForSync(stop, opts_.cacheSyncTimeout)) {
      if (stop.stop_requested()) return finish(okStatus());
      return finish(Error(ErrorCode::kTimeout, "cache for " + i->resource().key() + " did not sync within " +
                                                   std::to_string(opts_.cacheSyncTimeout.count()) + " ms"));
    }
  }
  spdlog::info("caches synced");
  if (opts_.onCachesSynced) opts_.onCachesSynced();

  if (!opts_.leaderElection) {
    runControllers(stop);
    return finish(okStatus());
  }

  LeaderElectionConfig le = *opts_.leaderElection;
  std::atomic<bool> led{false};
  le.onStartedLeading = [this, &led](std::stop_token leading) {
    led = true;
    runControllers(leading);
  };
  le.onStoppedLeading = [] { spdlog::info("stopped leading"); };
  LeaderElector elector(opts_.leaderElectionClient ? *opts_.leaderElectionClient : client_, std::move(le));
  elector.run(stop);
  if (!stop.stop_requested() && led.load()) {
    return finish(Error(ErrorCode::kUnavailable, "leadership lost"));
  }
  return finish(okStatus());
}

}  // namespace poolguard::runtime
