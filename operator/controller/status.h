#pragma once
// The policy's status as a pure function of what the reconcile found: conditions (with honest
// lastTransitionTime), workload counts and states, the budget and the last usage check.
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "budget/budget.h"
#include "controller/conditions.h"
#include "policy/types.h"
#include "usage/analysis.h"

namespace poolguard::runtime {
class EventRecorder;
}

namespace poolguard::controller {

enum class WorkloadState { kApplied, kPending, kDrifted, kConflicted, kFailed };
const char* toString(WorkloadState s);

struct WorkloadStatus {
  policy::WorkloadKind kind = policy::WorkloadKind::kDeployment;
  std::string namespace_;  // a ClusterConnectionPoolPolicy's workloads carry it; "" for a ConnectionPoolPolicy's
  std::string name;
  int32_t replicas = 0;
  int32_t maxReplicas = 0;
  int32_t maxSize = 0;
  std::string settingsHash;
  WorkloadState state = WorkloadState::kPending;
  std::optional<int32_t> connections;
  std::optional<int64_t> worstCase;  // as the budget counts it; nullopt when the workload is not counted
  std::string message;
  // A Failed workload whose failure will not clear without a change (see ProgressFacts), not a retried write.
  bool needsChange = false;
};

// The budget figures the status reports (see docs/api.md "Budget arithmetic").
struct BudgetFigures {
  std::string database;
  std::optional<int32_t> maxConnections;  // declared, else read from the server; nullopt when unknown
  int32_t reservedConnections = 0;
  std::optional<int64_t> available;  // maxConnections - reserved
  int64_t steadyState = 0;           // whole database
  int64_t worstCase = 0;             // whole database, with the clamp applied
  int64_t unclampedWorstCase = 0;    // whole database, as the policies ask
  int64_t policySteadyState = 0;
  int64_t policyWorstCase = 0;             // with the clamp applied
  int64_t policyUnclampedWorstCase = 0;    // as the policy asks
  int64_t policyOverheadWorstCase = 0;     // of policyWorstCase, the connections outside the pools (overheadPerPod)
  int64_t policyTerminatingWorstCase = 0;  // of policyWorstCase, the connections of old pods still terminating
  int32_t effectiveMaxSize = 0;
  bool clamped = false;  // this policy's maxSize was reduced to fit
  // The ClusterConnectionBudget's ceiling lowered this policy's maxSize (to effectiveMaxSize, unless clamped lower).
  std::optional<int32_t> ceiling;
  std::string budgetSource;  // "ClusterConnectionBudget <database>" when one applies, else ""
  // The budget's allocation this policy's namespace counts against (name "" for the namespaces in none); nullopt
  // when the database has no allocations.
  std::optional<budget::AllocationBudget> allocation;
  // A ClusterConnectionPoolPolicy's: the shares its namespaces count against (each once), when the database has
  // allocations. Not in the status object; the WithinBudget condition names the ones that are over.
  std::vector<budget::AllocationBudget> shares;
  // What the ClusterConnectionBudget changed of this policy's own settings, for the WithinBudget message.
  std::vector<std::string> notes;
};

struct StatusInput {
  int64_t generation = 0;
  std::optional<std::string> invalidMessage;  // set: Accepted=False InvalidSpec, nothing else is computed
  std::string policyName;
  policy::Mode mode = policy::Mode::kEnforce;
  policy::OnExceeded onExceeded = policy::OnExceeded::kWarn;
  std::vector<WorkloadStatus> workloads;
  BudgetFigures budget;
  std::optional<usage::AnalysisResult> usage;  // nullopt: usage not configured
  // A usage check of the database's server (this policy's, another policy's of the database, or its budget's)
  // can still tell max_connections.
  bool maxConnectionsComing = false;
  // Where pool.idleInTransactionTimeout (set) will not reach every session; Accepted's message names it. What the
  // profile's libraries do not read (render::idleInTransactionCaveat), and the governed containers that keep a
  // server-options variable of their own ("Deployment api container app (PGOPTIONS)"), which should carry
  // idleInTransactionOptions ("-c idle_in_transaction_session_timeout=45000").
  std::optional<std::string> idleInTransactionLibraryCaveat;
  std::vector<std::string> ownServerOptions;
  std::string idleInTransactionOptions;
};

inline constexpr size_t kMaxWorkloadStatuses = 100;

// The conditions for `in`, without timestamps.
std::vector<Condition> computeConditions(const StatusInput& in);
// The full status object; conditions merged with `previous` so lastTransitionTime moves only on a change.
nlohmann::json buildStatus(const StatusInput& in, const std::vector<Condition>& previous, const std::string& now);

// One Event per condition transition: Warning when the new status is False or Stalled becomes True, Normal
// otherwise; none for Reconciling, which comes and goes with every write.
void recordTransitions(runtime::EventRecorder& events, const nlohmann::json& policyObject,
                       const std::vector<Condition>& previous, const std::vector<Condition>& current);

// usage.actions.terminateLeaked in status.usage: leakedSessions (found past olderThan at the last check, ended or
// not) and sessionsEnded (ended for the object by this process since it started), when there is either.
void addTerminations(nlohmann::json& usage, const usage::AnalysisResult& result);

}  // namespace poolguard::controller
