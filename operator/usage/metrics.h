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
//   poolguard_usage_sessions_terminated_total{namespace,policy,workload}    counter
//       Sessions idle in transaction that usage.actions.terminateLeaked ended (workload: "namespace/name").
//   poolguard_usage_up{source,target}                                       gauge
//       1 when the last check that used the source read it, 0 when it failed (as Prometheus's own `up`).
//       source "postgres", target "host:port/database"; source "prometheus", target the URL without userinfo,
//       query or fragment.
//
// Series of a workload that is no longer governed are removed at the next record() for its policy. A database's
// series and an up series go when no policy or budget check reports them any more (each was forgotten, moved to
// another database or target, or its last check read no such figure). A figure is never left standing from an
// earlier check: while the PostgreSQL source fails, the policy's workload series and its database's connection
// figures are absent, and poolguard_usage_up says why.
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

  // One source a check used, and whether it could be read.
  struct SourceRead {
    std::string source;  // "postgres" or "prometheus"
    std::string target;
    bool up = false;
  };
  void record(const policy::Policy& policy, const std::vector<GovernedWorkload>& workloads,
              const AnalysisResult& result, const std::vector<SourceRead>& sources = {});
  void recordError(const std::string& ns, const std::string& policy, const std::string& reason);
  // A session terminateLeaked ended, of the workload "namespace/name".
  void recordTerminated(const std::string& ns, const std::string& policy, const std::string& workload);
  // Drops the policy's workload series (the policy was deleted or suspended), and the up and database series no
  // other policy (or budget check) reports.
  void forget(const std::string& ns, const std::string& policy);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace poolguard::usage
