#include "usage/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace poolguard::usage {

struct UsageMetrics::Impl {
  prometheus::Family<prometheus::Gauge>& connections;
  prometheus::Family<prometheus::Gauge>& oldest;
  prometheus::Family<prometheus::Gauge>& databaseConnections;
  prometheus::Family<prometheus::Gauge>& databaseMax;
  prometheus::Family<prometheus::Counter>& errors;
  prometheus::Family<prometheus::Gauge>& up;
  std::mutex mu;
  // Per up series: the policies whose last check used that target.
  std::map<std::map<std::string, std::string>, std::set<std::string>> upUsers;
  // Per policy ("namespace/name"): the series it set last time, so the ones that disappear are removed.
  struct Series {
    std::map<std::map<std::string, std::string>, prometheus::Gauge*> connections;
    std::map<std::map<std::string, std::string>, prometheus::Gauge*> oldest;
  };
  std::map<std::string, Series> byPolicy;

  explicit Impl(prometheus::Registry& r)
      : connections(prometheus::BuildGauge()
                        .Name("poolguard_usage_connections")
                        .Help("Sessions of a governed workload by pg_stat_activity state")
                        .Register(r)),
        oldest(prometheus::BuildGauge()
                   .Name("poolguard_usage_idle_in_transaction_oldest_seconds")
                   .Help("Age of a governed workload's oldest session idle in transaction")
                   .Register(r)),
        databaseConnections(prometheus::BuildGauge()
                                .Name("poolguard_database_connections")
                                .Help("Client connections on the database server")
                                .Register(r)),
        databaseMax(prometheus::BuildGauge()
                        .Name("poolguard_database_max_connections")
                        .Help("The database server's max_connections")
                        .Register(r)),
        errors(prometheus::BuildCounter()
                   .Name("poolguard_usage_check_errors_total")
                   .Help("Live usage checks that failed to read a source")
                   .Register(r)),
        up(prometheus::BuildGauge()
               .Name("poolguard_usage_up")
               .Help("1 when the last usage check read the source, 0 when it failed")
               .Register(r)) {}

  // Moves `policyKey` onto exactly the up series in `now`; removes the series no policy uses any more.
  void useTargets(const std::string& policyKey, const std::set<std::map<std::string, std::string>>& now) {
    for (auto it = upUsers.begin(); it != upUsers.end();) {
      if (!now.count(it->first)) it->second.erase(policyKey);
      if (it->second.empty()) {
        up.Remove(&up.Add(it->first));
        it = upUsers.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& labels : now) upUsers[labels].insert(policyKey);
  }
};

UsageMetrics::UsageMetrics(prometheus::Registry& registry) : impl_(std::make_unique<Impl>(registry)) {}
UsageMetrics::~UsageMetrics() = default;

void UsageMetrics::record(const policy::Policy& policy, const std::vector<GovernedWorkload>& workloads,
                          const AnalysisResult& result, const std::vector<SourceRead>& sources) {
  using Labels = std::map<std::string, std::string>;
  std::lock_guard lock(impl_->mu);
  std::set<Labels> targets;
  bool postgresFailed = false;
  for (const auto& s : sources) {
    Labels labels{{"source", s.source}, {"target", s.target}};
    impl_->up.Add(labels).Set(s.up ? 1 : 0);
    targets.insert(labels);
    postgresFailed = postgresFailed || (s.source == "postgres" && !s.up);
  }
  impl_->useTargets(policy.namespace_ + "/" + policy.name, targets);
  Impl::Series next;
  // A ClusterConnectionBudget's central check covers the policies' workloads: their series are the policies' own
  // (or absent), never a second copy that a sum would count twice.
  const size_t perWorkload = policy.kind == "ClusterConnectionBudget" ? 0 : result.workloads.size();
  for (size_t i = 0; i < perWorkload && i < workloads.size(); ++i) {
    const WorkloadUsage& u = result.workloads[i];
    // The workload's own namespace: a cluster policy's workloads of one name in two namespaces are two series.
    const Labels base{{"namespace", u.namespace_}, {"policy", policy.name}, {"workload", u.name}};
    auto setConnections = [&](const std::string& state, double value) {
      Labels labels = base;
      labels["state"] = state;
      prometheus::Gauge& g = impl_->connections.Add(labels);
      g.Set(value);
      next.connections[labels] = &g;
    };
    if (!u.byState.empty()) {
      for (const auto& [state, count] : u.byState) setConnections(state, count);
    } else if (u.connections && workloads[i].applicationName.empty()) {
      setConnections("unknown", *u.connections);
    }
    if (u.oldestIdleInTransactionSeconds) {
      prometheus::Gauge& g = impl_->oldest.Add(base);
      g.Set(static_cast<double>(*u.oldestIdleInTransactionSeconds));
      next.oldest[base] = &g;
    }
  }
  Impl::Series& previous = impl_->byPolicy[policy.namespace_ + "/" + policy.name];
  for (const auto& [labels, gauge] : previous.connections) {
    if (!next.connections.count(labels)) impl_->connections.Remove(gauge);
  }
  for (const auto& [labels, gauge] : previous.oldest) {
    if (!next.oldest.count(labels)) impl_->oldest.Remove(gauge);
  }
  previous = std::move(next);

  const Labels database{{"database", policy.spec.database.name}};
  if (postgresFailed) {
    // The last good figures would read as current: remove them until a check reads the server again.
    impl_->databaseConnections.Remove(&impl_->databaseConnections.Add(database));
    impl_->databaseMax.Remove(&impl_->databaseMax.Add(database));
    return;
  }
  if (result.databaseConnections) impl_->databaseConnections.Add(database).Set(*result.databaseConnections);
  if (result.usage.serverMaxConnections) impl_->databaseMax.Add(database).Set(*result.usage.serverMaxConnections);
}

void UsageMetrics::recordError(const std::string& ns, const std::string& policy, const std::string& reason) {
  impl_->errors.Add({{"namespace", ns}, {"policy", policy}, {"reason", reason.empty() ? "Unknown" : reason}})
      .Increment();
}

void UsageMetrics::forget(const std::string& ns, const std::string& policy) {
  std::lock_guard lock(impl_->mu);
  impl_->useTargets(ns + "/" + policy, {});
  auto it = impl_->byPolicy.find(ns + "/" + policy);
  if (it == impl_->byPolicy.end()) return;
  for (const auto& [labels, gauge] : it->second.connections) impl_->connections.Remove(gauge);
  for (const auto& [labels, gauge] : it->second.oldest) impl_->oldest.Remove(gauge);
  impl_->byPolicy.erase(it);
}

}  // namespace poolguard::usage
