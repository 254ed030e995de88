#pragma once
// Live usage analysis: pure. Takes what the sources observed (a PostgreSQL snapshot, Prometheus values per
// workload, or the errors they returned) and the governed workloads, and decides the UsageHealthy condition,
// the status.usage block and the per-workload connection counts. No I/O, no clock reads: `now` is an input,
// so thresholds are tested by moving a ManualClock.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "policy/types.h"

namespace poolguard::usage {

// The application_name of poolguard's own sessions.
inline constexpr const char* kOwnApplicationName = "poolguard";

// pg_stat_activity.state values poolguard looks at.
inline constexpr const char* kStateActive = "active";
inline constexpr const char* kStateIdle = "idle";
inline constexpr const char* kStateIdleInTransaction = "idle in transaction";
inline constexpr const char* kStateIdleInTransactionAborted = "idle in transaction (aborted)";

// A workload a policy governs, as the reconciler sees it when the check runs.
struct GovernedWorkload {
  std::string namespace_;
  std::string name;
  // The application_name its pool reports (delivery.applicationName rendered); "" when disabled, and then the
  // workload cannot be attributed from pg_stat_activity, only from Prometheus.
  std::string applicationName;
  int32_t podsNow = 1;  // spec.replicas
  int32_t podsMax = 1;  // HPA maxReplicas, else podsNow
  // Extra pods a rollout may run beside podsNow: maxSurge resolved (0 for Recreate and StatefulSets), plus the
  // old pods still terminating when the policy counts them (budget.terminatingPods: Count).
  int32_t surge = 0;
  // Pods that exist right now (status.replicas), when known. During a rollout old and new ReplicaSets overlap.
  std::optional<int32_t> podsObserved;
  int32_t maxSize = 0;  // the maxSize rendered into this workload (after any clamp)
  int32_t processesPerPod = 1;
  int32_t overheadPerPod = 0;  // connections each pod opens outside its pools (pool.overheadPerPod)
  // usage.actions.terminateLeaked may end its sessions: false for the workloads of a policy in Audit, when the check
  // is a ClusterConnectionBudget's.
  bool mayEndSessions = true;
};

// Sessions of one application_name on the server.
struct ApplicationActivity {
  std::map<std::string, int32_t> countByState;  // pg_stat_activity.state -> sessions
  // When each idle-in-transaction session (aborted included) entered that state, in the operator's clock
  // (server age subtracted from the operator's time at the read). Kept per session, not as a pre-computed
  // count, so the threshold is applied at analysis time against the injected clock.
  std::vector<Clock::time_point> idleInTransactionSince;

  int32_t total() const;
  int32_t inState(const std::string& state) const;
  int32_t idleInTransaction() const;  // both idle-in-transaction states
};

// Client backends of one application_name, role and client address (pg_stat_activity's application_name,
// usename, client_addr; "local" for a Unix socket).
struct ClientSessions {
  std::string applicationName;
  std::string user;
  std::string clientAddress;
  int32_t connections = 0;
  bool operator==(const ClientSessions&) const = default;
};

struct ServerSnapshot {
  Clock::time_point readAt{};
  int32_t maxConnections = 0;
  // superuser_reserved_connections plus reserved_connections (PostgreSQL 16+; 0 before).
  int32_t reservedConnections = 0;
  // Client backends on the whole server by application_name (poolguard's own session excluded).
  std::map<std::string, ApplicationActivity> byApplication;
  // The same sessions by application_name, role and client address, in no particular order.
  std::vector<ClientSessions> clients;

  int32_t totalConnections() const;
};

// Values read from Prometheus for one workload. nullopt: the query returned no samples (no data, not zero).
struct WorkloadMetrics {
  std::optional<double> connections;
  std::optional<double> pending;
};

// One source's outcome: not configured, a value, or the error that stopped it.
template <typename T>
struct SourceOutcome {
  bool configured = false;
  std::optional<Result<T>> result;  // set when configured

  static SourceOutcome notConfigured() { return {}; }
  static SourceOutcome of(Result<T> r) { return SourceOutcome{true, std::move(r)}; }
  bool ok() const { return configured && result && result->ok(); }
};

// Prometheus values keyed by "namespace/name" of the workload.
using PrometheusValues = std::map<std::string, WorkloadMetrics>;

struct AnalysisInput {
  policy::Thresholds thresholds;
  std::vector<GovernedWorkload> workloads;
  SourceOutcome<ServerSnapshot> postgres;
  SourceOutcome<PrometheusValues> prometheus;
  std::optional<int32_t> declaredMaxConnections;  // spec.database.maxConnections
  int32_t declaredReservedConnections = 3;        // spec.database.reservedConnections
  Clock::time_point now{};
};

enum class ConditionStatus { kTrue, kFalse, kUnknown };
const char* toString(ConditionStatus s);

namespace reasons {
inline constexpr const char* kHealthy = "Healthy";
inline constexpr const char* kLeakSuspected = "LeakSuspected";
inline constexpr const char* kSaturated = "Saturated";
inline constexpr const char* kExceedsPolicy = "ExceedsPolicy";
inline constexpr const char* kPoolExhausted = "PoolExhausted";
inline constexpr const char* kNotConfigured = "NotConfigured";
inline constexpr const char* kUsageUnavailable = "UsageUnavailable";
}  // namespace reasons

struct UsageCondition {
  ConditionStatus status = ConditionStatus::kUnknown;
  std::string reason;
  std::string message;
};

// status.usage. Counts are over the policy's governed workloads (attributed by application_name);
// serverMaxConnections is the server's max_connections. Fields a source could not provide stay empty.
struct UsageStatus {
  std::string source;  // "postgres", "prometheus", "postgres+prometheus", "" when nothing was read
  std::optional<Clock::time_point> lastCheckTime;
  std::optional<int32_t> connections;
  std::optional<int32_t> active;
  std::optional<int32_t> idle;
  std::optional<int32_t> idleInTransaction;
  std::optional<int64_t> oldestIdleInTransactionSeconds;
  std::optional<int32_t> serverMaxConnections;
};

struct WorkloadUsage {
  std::string namespace_;
  std::string name;
  std::optional<int32_t> connections;      // from pg_stat_activity when attributable, else Prometheus
  std::map<std::string, int32_t> byState;  // empty without PostgreSQL
  int32_t idleInTransactionOverThreshold = 0;
  std::optional<int64_t> oldestIdleInTransactionSeconds;
  std::optional<double> pending;
  int64_t allowedConnections = 0;  // (pods incl. surge) x maxSize x processesPerPod
};

// A finding, in precedence order (lower enumerator wins the condition's reason).
enum class Finding { kLeakSuspected, kPoolExhausted, kExceedsPolicy, kSaturated };
const char* reasonOf(Finding f);

// A session idle in transaction that usage.actions.terminateLeaked found, with the governed workload it belongs to.
struct LeakedSession {
  std::string namespace_;  // the workload's
  std::string workload;
  std::string user;
  int32_t pid = 0;
  int64_t idleSeconds = 0;  // grows at every check: not part of what makes two findings the same
  bool ended = false;       // false: Audit (would end it), or the server refused
};

struct AnalysisResult {
  UsageCondition condition;
  UsageStatus usage;
  std::vector<WorkloadUsage> workloads;  // same order as the input
  std::vector<Finding> findings;         // sorted by precedence
  // Whole-server figures for the database metrics, when PostgreSQL was read.
  std::optional<int32_t> databaseConnections;
  // Set when spec.database.maxConnections disagrees with the server's max_connections.
  std::optional<std::string> maxConnectionsMismatch;
  // Sessions on the server that none of the input's workloads accounts for (ungovernedSessions), when
  // PostgreSQL was read.
  std::vector<ClientSessions> ungoverned;
  // usage.actions.terminateLeaked at this check: the sessions it ended (in Audit: would end), and those ended for
  // the policy by this process since it started.
  std::vector<LeakedSession> leakedSessions;
  int64_t sessionsEnded = 0;
  // PostgreSQL was configured and its read failed in a way the next check cannot cure by itself: the Secret is
  // missing or does not grant the server, the credentials were refused, the request is invalid. The server's
  // max_connections will not come from this check until someone changes something.
  bool postgresNeedsChange = false;
};

AnalysisResult analyze(const AnalysisInput& in);

// The sessions on the server that no governed workload accounts for (their application_name is none of the
// workloads'), grouped by application_name, role and client address, largest first (then by name), at most
// `limit` groups.
std::vector<ClientSessions> ungovernedSessions(const ServerSnapshot& snapshot,
                                               const std::vector<GovernedWorkload>& workloads, size_t limit = 20);
// The same against a set of application_names that policies account for (poolguard's own, "poolguard", is never
// listed). With limit 0, every group.
std::vector<ClientSessions> ungovernedSessions(const ServerSnapshot& snapshot, const std::set<std::string>& governed,
                                               size_t limit = 20);
// The sessions of these application_names on the server, each name counted once.
int32_t sessionsOf(const ServerSnapshot& snapshot, const std::set<std::string>& applicationNames);

// The most connections a workload may hold without exceeding its policy. Uses current pods, widened by the
// rollout surge and by pods observed to exist (old ReplicaSets still draining), never by HPA headroom.
int64_t allowedConnections(const GovernedWorkload& w);

// "90s", "2m5s", "1h0m3s": compact durations for messages.
std::string formatDuration(std::chrono::seconds s);

}  // namespace poolguard::usage
