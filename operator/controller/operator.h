#pragma once
// `poolguard run`: wires the Kubernetes client, informers, work queue, leader election, endpoints and the
// policy reconciler, and runs until SIGTERM or SIGINT.
#include <string>
#include <vector>

namespace poolguard::controller {

struct RunOptions {
  std::string kubeconfig;
  std::string context;
  std::vector<std::string> namespaces;  // empty: all namespaces
  bool leaderElect = false;
  std::string leaderElectionNamespace;
  std::string leaderElectionId = "poolguard-leader";
  int leaseDurationSeconds = 15;
  int renewDeadlineSeconds = 10;
  int retryPeriodSeconds = 2;
  std::string metricsBindAddress = ":8080";
  std::string healthBindAddress = ":8081";
  int workers = 4;
  std::string logFormat = "json";
  std::string logLevel = "info";
  double qps = 20;
  int burst = 30;
  int shutdownTimeoutSeconds = 10;
  // URL prefixes a namespaced policy's usage.prometheus.url must lie under; empty: no Prometheus endpoint.
  std::vector<std::string> prometheusAllowedUrlPrefixes;
};

// Returns the process exit code: 0 after a graceful shutdown, 1 on a fatal start-up error, 2 on a malformed flag
// value (a bind address, a Prometheus URL prefix), reported on standard error before anything starts.
int runOperator(const RunOptions& options);

}  // namespace poolguard::controller
