#pragma once
// One live usage check of one policy: fetch credentials, read the configured sources, analyze, record metrics.
// The usage monitor (controller/usage_monitor.h) calls check() on its own threads every usage.interval; the
// reconciler writes the findings into the policy's status. Suspended policies are not checked (their status is
// kept).
//
// check() blocks on the network (PostgreSQL and Prometheus, each bounded by a few seconds): call it from a
// worker thread of your own, never from a cpprestsdk/pplx pool thread.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "kube/client.h"
#include "policy/types.h"
#include "usage/analysis.h"
#include "usage/postgres_source.h"
#include "usage/prometheus_source.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace poolguard::usage {

class UsageMetrics;

struct UsageReport {
  AnalysisResult result;
  // What the analysis read (sources, thresholds, time): a ClusterConnectionBudget's check shares it with the
  // policies of its database, each analyzed over its own workloads.
  std::shared_ptr<const AnalysisInput> input;
  // What failed, one entry per failing source; result.condition already carries the messages.
  std::vector<Error> errors;
  Clock::steady_point nextCheckDue{};
};

struct CheckerOptions {
  PostgresReaderOptions postgres;
  std::chrono::milliseconds prometheusTimeout{5000};
  // The URL prefixes a ConnectionPoolPolicy's usage.prometheus.url must lie under (usage/grant.h); empty: none is
  // allowed. A ClusterConnectionPoolPolicy's and a ClusterConnectionBudget's (a cluster admin's) need none.
  std::vector<std::string> prometheusAllowedUrlPrefixes;
};

// What a check may do beyond reading, and with whose credentials.
struct CheckContext {
  // Where the policy's Secrets are read: "" is the policy's own namespace (a ClusterConnectionPoolPolicy's and a
  // ClusterConnectionBudget's are the operator's).
  std::string secretNamespace;
  // Whether this replica may end sessions now (usage.actions.terminateLeaked), asked before each session it ends.
  // With leader election only while the write fence is open (kube/fence.h): a replica that may have lost the lease
  // ends none, and reports none as ended; the next leader's check ends them. Empty: always.
  std::function<bool()> mayEndSessions;
};

// usage.actions.terminateLeaked with credentials the policy's author did not supply (a ClusterConnectionBudget's
// check, or a Secret outside the policy's namespace such as a ClusterConnectionPoolPolicy's) ends only sessions
// whose application_name the workload's namespace owns: it begins with "<namespace>/". Else a namespaced author
// could name another team's application in delivery.applicationName and have it ended with a cluster admin's role.
bool ownsApplicationName(const GovernedWorkload& workload);
// Why the sessions of these workloads (whose names ownsApplicationName refuses) are not ended, and the fix:
// include {namespace} in delivery.applicationName, or (a namespaced policy) use its own usage.postgres.
std::string foreignApplicationNamesMessage(const std::vector<const GovernedWorkload*>& workloads, bool clusterPolicy);

// How a PostgreSQL source is named in poolguard_usage_up{target}: "host:port/database" (prometheusTarget, in
// prometheus_source.h, names a Prometheus one).
std::string postgresTarget(const policy::PostgresSource& source);

class Checker {
 public:
  // registry: where the usage metrics are registered; nullptr records none.
  explicit Checker(const Clock& clock, prometheus::Registry* registry = nullptr, const CheckerOptions& options = {});
  ~Checker();
  Checker(const Checker&) = delete;
  Checker& operator=(const Checker&) = delete;

  // Reads the credentials Secret through the client (GET by name) in context.secretNamespace, then checks.
  UsageReport check(const policy::Policy& policy, const std::vector<GovernedWorkload>& workloads, kube::Client& client,
                    const CheckContext& context = {});
  // With credentials already at hand (or the error that kept them away), read from context.secretNamespace;
  // ignored without usage.postgres.
  UsageReport check(const policy::Policy& policy, const std::vector<GovernedWorkload>& workloads,
                    const std::optional<Result<PostgresCredentials>>& credentials, const CheckContext& context = {});

  // When the policy's next check is due: now if it was never checked, else its last check plus usage.interval.
  Clock::steady_point nextCheckDue(const policy::Policy& policy, Clock::steady_point now) const;
  // How long the reconciler may wait before the next check (zero when due).
  std::chrono::milliseconds requeueAfter(const policy::Policy& policy) const;
  // Forgets the policy's schedule and metric series (deleted, suspended, or its usage block removed), and closes
  // the connections no other policy needs.
  void forget(const std::string& ns, const std::string& name);

  size_t openPostgresConnections() const { return postgres_.openConnections(); }
  size_t openPrometheusClients() const { return prometheus_.openClients(); }

 private:
  const Clock& clock_;
  PostgresReader postgres_;
  PrometheusClient prometheus_;
  std::vector<std::string> prometheusAllowedUrlPrefixes_;
  std::unique_ptr<UsageMetrics> metrics_;
  mutable std::mutex mu_;
  struct PolicyState {
    Clock::steady_point lastCheck{};
    std::string lastReason;
    std::string postgresKey;    // PostgresReader::connectionKey of its last check; "" when none
    std::string prometheusUrl;  // base URL of its last check; "" when none
    int64_t sessionsEnded = 0;  // by terminateLeaked, since this process started
  };
  std::map<std::string, PolicyState> policies_;
  // What the policies' last checks used; taken with mu_ held. releaseUnused closes the rest, without mu_.
  struct TargetsInUse {
    std::set<std::string> postgresKeys;
    std::set<std::string> prometheusUrls;
  };
  TargetsInUse targetsInUseLocked() const;
  // usage.actions.terminateLeaked: ends (in Audit, lists) the leaked sessions of the governed workloads and says so
  // in the result's condition message.
  void terminateLeaked(const policy::Policy& policy, const std::vector<GovernedWorkload>& workloads,
                       const PostgresCredentials& credentials, const CheckContext& context, AnalysisResult& result);
  void releaseUnused(const TargetsInUse& inUse);
};

}  // namespace poolguard::usage
