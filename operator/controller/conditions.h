#pragma once
// Status conditions (metav1.Condition) as values, and the rule that keeps lastTransitionTime honest: it moves
// only when a condition's status changes.
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace poolguard::controller {

namespace condition {
inline constexpr const char* kAccepted = "Accepted";
inline constexpr const char* kApplied = "Applied";
inline constexpr const char* kWithinBudget = "WithinBudget";
inline constexpr const char* kUsageHealthy = "UsageHealthy";
inline constexpr const char* kReady = "Ready";
// kstatus' abnormal-true conditions: present only while True, never both (see progressCondition).
inline constexpr const char* kReconciling = "Reconciling";
inline constexpr const char* kStalled = "Stalled";
}  // namespace condition

struct Condition {
  std::string type;
  std::string status;  // "True", "False", "Unknown"
  std::string reason;
  std::string message;
  int64_t observedGeneration = 0;
  std::string lastTransitionTime;  // RFC 3339

  bool operator==(const Condition&) const = default;
};

Condition makeCondition(std::string type, bool value, std::string reason, std::string message);
Condition unknownCondition(std::string type, std::string reason, std::string message);

// Ready summarises the others: True when Accepted, Applied and WithinBudget are True and UsageHealthy is not False.
Condition summarizeReady(const std::vector<Condition>& conditions);

// What the conditions alone do not tell about a Ready=False object.
struct ProgressFacts {
  // Some workload's failure needs a change to clear (an invalid render, a Job, an atomic Rollout CRD, a write the
  // API server refuses, another manager undoing the settings), not only a retried write.
  bool failuresNeedChange = false;
  // A usage check of the database's server can still tell max_connections: MaxConnectionsUnknown may clear.
  bool maxConnectionsComing = false;
};

// kstatus' convention (the library Flux and kubectl-based tools use): while Ready is False, exactly one of
// Reconciling=True (poolguard is still working on every blocker: a write waiting or retried, max_connections still
// to come from the server) and Stalled=True (a blocker will not clear without a change: an invalid or conflicting
// spec, a budget that does not fit, Audit's drift, a failure that needs a change, the applications' sessions);
// nullopt while Ready is True. Stalled wins when both kinds of blocker are there: the state will not resolve.
std::optional<Condition> progressCondition(const std::vector<Condition>& conditions, const ProgressFacts& facts);

// Fills lastTransitionTime from `previous` when the status did not change, `now` otherwise; stamps
// observedGeneration. The result keeps the order of `desired`.
std::vector<Condition> mergeConditions(const std::vector<Condition>& previous, std::vector<Condition> desired,
                                       int64_t generation, const std::string& now);

// A condition whose status differs from the previous one (or that is new): what gets an Event.
struct Transition {
  Condition condition;
  std::string previousStatus;  // "" when the condition is new
};
std::vector<Transition> transitions(const std::vector<Condition>& previous, const std::vector<Condition>& current);

const Condition* find(const std::vector<Condition>& conditions, const std::string& type);

nlohmann::json toJson(const Condition& c);
std::vector<Condition> conditionsFromJson(const nlohmann::json& status);

}  // namespace poolguard::controller
