#pragma once
// Live usage metrics, registered on the operator's prometheus-cpp Registry:
//
//   poolguard_usage_connections{namespace,policy,workload,state}            gauge
//       Sessions of a governed workload, by pg_stat_activity state ("active", "idle", "idle in transaction",
//       ...). With only Prometheus as the source the pool's own count is reported with state="unknown".
//   poolguard_usage_idle_in_transaction_oldest_seconds{namespace,policy,workload}   gauge
//       Age of the workload's oldest session idle in transaction; absent when it has none.
//   poolguard_database_connections{database}                                gauge
//       Client connections on the server behind database.name (every application, not only governed ones).
//   poolguard_database_max_connections{database}                            gauge
//       The server's max_connections.
//   poolguard_usage_check_errors_total{namespace,policy,reason}             counter
//       Failed reads; reason is the failing source's Error::reason() (PostgresAuthFailed, PrometheusUnreachable...).
//
// Series of a workload that is no longer governed are removed at the next record() for its policy.
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "policy/types.h"
#include "usage/analysis.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace poolguard::usage {

class UsageMetrics {
 public:
  explicit UsageMetrics(prometheus::Registry& registry);
  ~UsageMetrics();
  UsageMetrics(const UsageMetrics&) = delete;
  UsageMetrics& operator=(const UsageMetrics&) = delete;

  void record(const policy::Policy& policy, const std::vector<GovernedWorkload>& workloads,
              const AnalysisResult& result);
  void recordError(const std::string& ns, const std::string& policy, const std::string& reason);
  // Drops the policy's workload series (the policy was deleted or suspended).
  void forget(const std::string& ns, const std::string& policy);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace poolguard::usage
