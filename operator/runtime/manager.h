#pragma once
// Wires informers, controllers, leader election and the health and metrics endpoints into one run():
//
//   start /metrics and /healthz,/readyz → start informers (whether leading or not: a new leader starts warm)
//   → wait for caches (readyz turns ready) → [campaign for the Lease] → run controllers
//   → on stop: controllers stop, then the Lease is released, then informers and servers stop.
//
// Contract: run() returns okStatus() after a requested stop; an Error when caches do not sync within
// cacheSyncTimeout, an endpoint cannot bind, or leadership is lost (the caller should exit: reconciling has
// already stopped, and a restart begins with fresh caches). /readyz is ready once every informer has synced,
// leader or not, so a standby replica passes its readiness probe.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "common/result.h"
#include "kube/client.h"
#include "runtime/controller.h"
#include "runtime/health_server.h"
#include "runtime/informer.h"
#include "runtime/leader_election.h"
#include "runtime/metrics.h"

namespace poolguard::runtime {

struct ManagerOptions {
  std::string healthHost = "0.0.0.0";
  int healthPort = 8081;                               // -1: no health server
  std::string metricsBindAddress = "0.0.0.0:8080";     // "": no metrics server
  std::optional<LeaderElectionConfig> leaderElection;  // its callbacks are the Manager's own
  // The client the Lease is renewed with (the Manager's own when null). A client of its own keeps renewals out
  // of the controllers' rate limit and connection pool.
  kube::Client* leaderElectionClient = nullptr;
  std::chrono::milliseconds cacheSyncTimeout{std::chrono::minutes(2)};
  // Runs once, after every informer has synced and before the controllers start.
  std::function<void()> onCachesSynced;
  // /healthz fails (and the kubelet restarts the pod) when a watch has not advanced for its longest watch
  // timeout plus watchStallMargin, or one reconcile has run longer than maxReconcileDuration: a blocked
  // connection or a hung worker that nothing else would end.
  std::chrono::seconds watchStallMargin{std::chrono::minutes(2)};
  std::chrono::seconds maxReconcileDuration{std::chrono::minutes(10)};
};

class Manager {
 public:
  Manager(kube::Client& client, ManagerOptions opts);
  ~Manager();

  // Owned by the Manager; add before run().
  Informer& addInformer(InformerOptions opts);
  Controller& addController(ControllerOptions opts, Reconciler reconciler);
  HealthServer& health() { return health_; }
  int metricsPort() const { return metrics_.port(); }

  Status run(std::stop_token stop);

 private:
  bool cachesSynced() const;
  void runControllers(std::stop_token stop);

  kube::Client& client_;
  ManagerOptions opts_;
  HealthServer health_;
  MetricsServer metrics_;
  std::vector<std::unique_ptr<Informer>> informers_;
  std::vector<std::unique_ptr<Controller>> controllers_;
};

}  // namespace poolguard::runtime
