#pragma once
// The reconciler's Prometheus metrics (documented in docs/metrics.md):
//   poolguard_reconcile_total{result}                       counter: success | error | requeue
//   poolguard_reconcile_duration_seconds                    histogram
//   poolguard_workload_writes_total{kind,operation,result}  counter: apply | cleanup | configmap ; ok | error
//   poolguard_policy_condition{namespace,policy,condition,status,reason}  gauge: 1 for the current state
//   poolguard_policy_workloads{namespace,policy,state}      gauge: matched | applied | drifted | conflicted
//   poolguard_database_connections_worst_case{database}     gauge
//   poolguard_database_connections_steady_state{database}   gauge
//   poolguard_database_connections_available{database}      gauge (max_connections - reserved; absent when unknown)
//   poolguard_api_requests_total{verb,resource,code}        counter: requests to the Kubernetes API (code 0: no
//   response) poolguard_api_request_duration_seconds{verb}            histogram
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "controller/conditions.h"
#include "kube/request_observer.h"

namespace poolguard::controller {

class ControllerMetrics {
 public:
  explicit ControllerMetrics(prometheus::Registry& registry);

  void reconciled(const std::string& result, double seconds);
  void workloadWrite(const std::string& kind, const std::string& operation, bool ok);
  // Replaces the policy's condition series with the given ones (old reasons are removed).
  void setConditions(const std::string& ns, const std::string& policy, const std::vector<Condition>& conditions);
  void setWorkloads(const std::string& ns, const std::string& policy, int matched, int applied, int drifted,
                    int conflicted);
  void setDatabase(const std::string& database, int64_t steadyState, int64_t worstCase,
                   std::optional<int64_t> available);
  void forgetPolicy(const std::string& ns, const std::string& policy);
  // Removes the database's series, once no policy names it any more.
  void forgetDatabase(const std::string& database);

 private:
  std::mutex mu_;
  prometheus::Family<prometheus::Counter>& reconcileTotal_;
  prometheus::Family<prometheus::Histogram>& reconcileDuration_;
  prometheus::Histogram* reconcileDurationAll_;
  prometheus::Family<prometheus::Counter>& writes_;
  prometheus::Family<prometheus::Gauge>& condition_;
  prometheus::Family<prometheus::Gauge>& workloads_;
  prometheus::Family<prometheus::Gauge>& dbWorst_;
  prometheus::Family<prometheus::Gauge>& dbSteady_;
  prometheus::Family<prometheus::Gauge>& dbAvailable_;
  std::map<std::string, std::vector<prometheus::Gauge*>> conditionSeries_;  // key ns/policy
  std::map<std::string, std::vector<prometheus::Gauge*>> workloadSeries_;
};

// Exports the Kubernetes client's requests as metrics.
class ApiRequestMetrics final : public kube::RequestObserver {
 public:
  explicit ApiRequestMetrics(prometheus::Registry& registry);
  void observe(std::string_view verb, std::string_view resource, int code, double seconds) override;

 private:
  std::mutex mu_;
  prometheus::Family<prometheus::Counter>& total_;
  prometheus::Family<prometheus::Histogram>& duration_;
};

}  // namespace poolguard::controller
