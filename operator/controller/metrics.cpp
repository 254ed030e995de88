#include "controller/metrics.h"

namespace poolguard::controller {

ControllerMetrics::ControllerMetrics(prometheus::Registry& registry)
    : reconcileTotal_(prometheus::BuildCounter()
                          .Name("poolguard_reconcile_total")
                          .Help("Policy reconciles by result (success, error, requeue)")
                          .Register(registry)),
      reconcileDuration_(prometheus::BuildHistogram()
                             .Name("poolguard_reconcile_duration_seconds")
                             .Help("Time spent in one policy reconcile")
                             .Register(registry)),
      reconcileDurationAll_(&reconcileDuration_.Add(
          {}, prometheus::Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10})),
      writes_(prometheus::BuildCounter()
                  .Name("poolguard_workload_writes_total")
                  .Help("Writes to workloads and ConfigMaps by kind, operation (apply, cleanup) and result")
                  .Register(registry)),
      condition_(prometheus::BuildGauge()
                     .Name("poolguard_policy_condition")
                     .Help("1 for each policy condition's current status and reason")
                     .Register(registry)),
      workloads_(prometheus::BuildGauge()
                     .Name("poolguard_policy_workloads")
                     .Help("Workloads of a policy by state (matched, applied, drifted, conflicted)")
                     .Register(registry)),
      dbWorst_(prometheus::BuildGauge()
                   .Name("poolguard_database_connections_worst_case")
                   .Help("Connections the database's workloads may open at HPA maximum plus rollout surge")
                   .Register(registry)),
      dbSteady_(prometheus::BuildGauge()
                    .Name("poolguard_database_connections_steady_state")
                    .Help("Connections the database's workloads may open at their current replicas")
                    .Register(registry)),
      dbAvailable_(prometheus::BuildGauge()
                       .Name("poolguard_database_connections_available")
                       .Help("max_connections minus reserved connections")
                       .Register(registry)) {}

void ControllerMetrics::reconciled(const std::string& result, double seconds) {
  std::lock_guard l(mu_);
  reconcileTotal_.Add({{"result", result}}).Increment();
  reconcileDurationAll_->Observe(seconds);
}

void ControllerMetrics::workloadWrite(const std::string& kind, const std::string& operation, bool ok) {
  std::lock_guard l(mu_);
  writes_.Add({{"kind", kind}, {"operation", operation}, {"result", ok ? "ok" : "error"}}).Increment();
}

void ControllerMetrics::setConditions(const std::string& ns, const std::string& policy,
                                      const std::vector<Condition>& conditions) {
  std::lock_guard l(mu_);
  auto& series = conditionSeries_[ns + "/" + policy];
  for (auto* g : series) condition_.Remove(g);
  series.clear();
  for (const auto& c : conditions) {
    auto& g = condition_.Add(
        {{"namespace", ns}, {"policy", policy}, {"condition", c.type}, {"status", c.status}, {"reason", c.reason}});
    g.Set(1);
    series.push_back(&g);
  }
}

void ControllerMetrics::setWorkloads(const std::string& ns, const std::string& policy, int matched, int applied,
                                     int drifted, int conflicted) {
  std::lock_guard l(mu_);
  auto& series = workloadSeries_[ns + "/" + policy];
  series.clear();
  for (auto [state, value] :
       {std::pair{"matched", matched}, {"applied", applied}, {"drifted", drifted}, {"conflicted", conflicted}}) {
    auto& g = workloads_.Add({{"namespace", ns}, {"policy", policy}, {"state", state}});
    g.Set(value);
    series.push_back(&g);
  }
}

void ControllerMetrics::setDatabase(const std::string& database, int64_t steadyState, int64_t worstCase,
                                    std::optional<int64_t> available) {
  std::lock_guard l(mu_);
  dbSteady_.Add({{"database", database}}).Set(static_cast<double>(steadyState));
  dbWorst_.Add({{"database", database}}).Set(static_cast<double>(worstCase));
  auto& avail = dbAvailable_.Add({{"database", database}});
  if (available) {
    avail.Set(static_cast<double>(*available));
  } else {
    dbAvailable_.Remove(&avail);
  }
}

void ControllerMetrics::forgetPolicy(const std::string& ns, const std::string& policy) {
  std::lock_guard l(mu_);
  std::string key = ns + "/" + policy;
  for (auto* g : conditionSeries_[key]) condition_.Remove(g);
  for (auto* g : workloadSeries_[key]) workloads_.Remove(g);
  conditionSeries_.erase(key);
  workloadSeries_.erase(key);
}

void ControllerMetrics::forgetDatabase(const std::string& database) {
  std::lock_guard l(mu_);
  for (auto* family : {&dbSteady_, &dbWorst_, &dbAvailable_}) {
    if (family->Has({{"database", database}})) family->Remove(&family->Add({{"database", database}}));
  }
}

ApiRequestMetrics::ApiRequestMetrics(prometheus::Registry& registry)
    : total_(prometheus::BuildCounter()
                 .Name("poolguard_api_requests_total")
                 .Help("Requests to the Kubernetes API by verb, resource and HTTP status (0: no response)")
                 .Register(registry)),
      duration_(prometheus::BuildHistogram()
                    .Name("poolguard_api_request_duration_seconds")
                    .Help("Kubernetes API request latency until the response headers, by verb")
                    .Register(registry)) {}

void ApiRequestMetrics::observe(std::string_view verb, std::string_view resource, int code, double seconds) {
  std::lock_guard l(mu_);
  total_.Add({{"verb", std::string(verb)}, {"resource", std::string(resource)}, {"code", std::to_string(code)}})
      .Increment();
  duration_
      .Add({{"verb", std::string(verb)}},
           prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})
      .Observe(seconds);
}

}  // namespace poolguard::controller
