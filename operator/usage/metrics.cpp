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
  prometheus::Family<prometheus::Counter>& terminated;
  prometheus::Family<prometheus::Gauge>& up;
  std::mutex mu;
  using Labels = std::map<std::string, std::string>;
  // Per series shared by several policies (an up series, a database's figures): the policies (or budget checks)
  // whose last check reported it. A series goes with the last of them.
  using Users = std::map<Labels, std::set<std::string>>;
  Users upUsers;
  Users databaseConnectionsUsers;
  Users databaseMaxUsers;
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
        terminated(prometheus::BuildCounter()
                       .Name("poolguard_usage_sessions_terminated_total")
                       .Help("Sessions idle in transaction that usage.actions.terminateLeaked ended")
                       .Register(r)),
        up(prometheus::BuildGauge()
               .Name("poolguard_usage_up")
               .Help("1 when the last usage check read the source, 0 when it failed")
               .Register(r)) {}

  // Moves `policyKey` onto exactly the series of `family` in `now`; removes the series no policy reports any more.
  static void use(prometheus::Family<prometheus::Gauge>& family, Users& users, const std::string& policyKey,
                  const std::set<Labels>& now) {
    for (auto it = users.begin(); it != users.end();) {
      if (!now.count(it->first)) it->second.erase(policyKey);
      if (it->second.empty()) {
        family.Remove(&family.Add(it->first));
        it = users.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& labels : now) users[labels].insert(policyKey);
  }
  // Removes a series at once, whoever reported it.
  static void drop(prometheus::Family<prometheus::Gauge>& family, Users& users, const Labels& labels) {
    family.Remove(&family.Add(labels));
    users.erase(labels);
  }
  void forgetShared(const std::string& policyKey) {
    use(up, upUsers, policyKey, {});
    use(databaseConnections, databaseConnectionsUsers, policyKey, {});
    use(databaseMax, databaseMaxUsers, policyKey, {});
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
  const std::string key = policy.namespace_ + "/" + policy.name;
  Impl::use(impl_->up, impl_->upUsers, key, targets);
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
  Impl::Series& previous = impl_->byPolicy[key];
  for (const auto& [labels, gauge] : previous.connections) {
    if (!next.connections.count(labels)) impl_->connections.Remove(gauge);
  }
  for (const auto& [labels, gauge] : previous.oldest) {
    if (!next.oldest.count(labels)) impl_->oldest.Remove(gauge);
  }
  previous = std::move(next);

  // The database's figures: this check reports them, or no longer does (another database, no figure); a series
  // goes when no check reports it any more.
  const Labels database{{"database", policy.spec.database.name}};
  // A check that read the server before and fails now: the last good figures would read as current, so they go
  // until a check reads the server again. A check that never read it (its own credentials refused, say) says
  // nothing about the server and leaves the other checks' figures alone, which would otherwise come and go.
  auto reported = [&](const Impl::Users& users) {
    auto it = users.find(database);
    return it != users.end() && it->second.count(key) > 0;
  };
  if (postgresFailed && reported(impl_->databaseConnectionsUsers))
    Impl::drop(impl_->databaseConnections, impl_->databaseConnectionsUsers, database);
  if (postgresFailed && reported(impl_->databaseMaxUsers))
    Impl::drop(impl_->databaseMax, impl_->databaseMaxUsers, database);
  const bool connections = !postgresFailed && result.databaseConnections;
  const bool max = !postgresFailed && result.usage.serverMaxConnections;
  if (connections) impl_->databaseConnections.Add(database).Set(*result.databaseConnections);
  if (max) impl_->databaseMax.Add(database).Set(*result.usage.serverMaxConnections);
  Impl::use(impl_->databaseConnections, impl_->databaseConnectionsUsers, key,
            connections ? std::set<Labels>{database} : std::set<Labels>{});
  Impl::use(impl_->databaseMax, impl_->databaseMaxUsers, key, max ? std::set<Labels>{database} : std::set<Labels>{});
}

void UsageMetrics::recordError(const std::string& ns, const std::string& policy, const std::string& reason) {
  impl_->errors.Add({{"namespace", ns}, {"policy", policy}, {"reason", reason.empty() ? "Unknown" : reason}})
      .Increment();
}

void UsageMetrics::recordTerminated(const std::string& ns, const std::string& policy, const std::string& workload) {
  impl_->terminated.Add({{"namespace", ns}, {"policy", policy}, {"workload", workload}}).Increment();
}

void UsageMetrics::forget(const std::string& ns, const std::string& policy) {
  std::lock_guard lock(impl_->mu);
  impl_->forgetShared(ns + "/" + policy);
  auto it = impl_->byPolicy.find(ns + "/" + policy);
  if (it == impl_->byPolicy.end()) return;
  for (const auto& [labels, gauge] : it->second.connections) impl_->connections.Remove(gauge);
  for (const auto& [labels, gauge] : it->second.oldest) impl_->oldest.Remove(gauge);
  impl_->byPolicy.erase(it);
}

}  // namespace poolguard::usage
