#include "controller/status.h"

#include "runtime/event_recorder.h"

namespace poolguard::controller {

using nlohmann::json;

const char* toString(WorkloadState s) {
  switch (s) {
    case WorkloadState::kApplied:
      return "Applied";
    case WorkloadState::kPending:
      return "Pending";
    case WorkloadState::kDrifted:
      return "Drifted";
    case WorkloadState::kConflicted:
      return "Conflicted";
    case WorkloadState::kFailed:
      return "Failed";
  }
  return "Pending";
}

namespace {

struct Counts {
  int matched = 0, applied = 0, drifted = 0, conflicted = 0, failed = 0, pending = 0;
};

Counts count(const std::vector<WorkloadStatus>& workloads) {
  Counts c;
  for (const auto& w : workloads) {
    ++c.matched;
    switch (w.state) {
      case WorkloadState::kApplied:
        ++c.applied;
        break;
      case WorkloadState::kDrifted:
        ++c.drifted;
        break;
      case WorkloadState::kConflicted:
        ++c.conflicted;
        break;
      case WorkloadState::kFailed:
        ++c.failed;
        break;
      case WorkloadState::kPending:
        ++c.pending;
        break;
    }
  }
  return c;
}

// "Deployment web: <message>; StatefulSet db: <message>" for the first few workloads in `state`.
std::string listWorkloads(const std::vector<WorkloadStatus>& workloads, WorkloadState state, size_t limit = 5) {
  std::string out;
  size_t shown = 0, total = 0;
  for (const auto& w : workloads) {
    if (w.state != state) continue;
    ++total;
    if (shown == limit) continue;
    if (!out.empty()) out += "; ";
    out += std::string(policy::toString(w.kind)) + " " + (w.namespace_.empty() ? "" : w.namespace_ + "/") + w.name +
           (w.message.empty() ? "" : ": " + w.message);
    ++shown;
  }
  if (total > shown) out += "; and " + std::to_string(total - shown) + " more";
  return out;
}

std::string conflictWinners(const std::vector<WorkloadStatus>& workloads) {
  return listWorkloads(workloads, WorkloadState::kConflicted);
}

Condition usageCondition(const StatusInput& in) {
  if (!in.usage) {
    return unknownCondition(condition::kUsageHealthy, "NotConfigured",
                            "no usage source: set spec.usage.postgres or spec.usage.prometheus to check live usage");
  }
  const auto& c = in.usage->condition;
  std::string status = usage::toString(c.status);
  return Condition{condition::kUsageHealthy, status, c.reason, c.message, 0, ""};
}

Condition budgetCondition(const StatusInput& in) {
  const auto& b = in.budget;
  if (!b.available) {
    return unknownCondition(
        condition::kWithinBudget, "MaxConnectionsUnknown",
        "database " + b.database +
            ": max_connections is unknown; set spec.database.maxConnections or spec.usage.postgres");
  }
  // After Clamp, and what the policies ask for when Clamp changed it.
  std::string figures = "worst case " + std::to_string(b.worstCase) + " connections";
  if (b.unclampedWorstCase != b.worstCase)
    figures += " after Clamp (" + std::to_string(b.unclampedWorstCase) + " as the policies ask)";
  figures += " for database " + b.database + " (this policy " + std::to_string(b.policyWorstCase);
  if (b.policyUnclampedWorstCase != b.policyWorstCase)
    figures += " after Clamp, " + std::to_string(b.policyUnclampedWorstCase) + " as it asks";
  figures += ") against " + std::to_string(*b.available) + " available (max_connections " +
             std::to_string(b.maxConnections.value_or(0)) + " - " + std::to_string(b.reservedConnections) +
             " reserved)";
  if (!b.budgetSource.empty()) figures += " from " + b.budgetSource;
  // A declared max_connections that the server contradicts is reported where the budget is: it is the input.
  if (in.usage && in.usage->maxConnectionsMismatch) figures += "; " + *in.usage->maxConnectionsMismatch;
  for (const auto& note : b.notes) figures += "; " + note;
  // With allocations, this policy's share binds it: the database may fit while its allocation is over.
  bool shareOver = false;
  if (const auto& a = b.allocation) {
    figures += "; " + a->label() + " (this namespace's share): worst case " + std::to_string(a->worstCase) +
               " against " + (a->maxConnections ? std::to_string(*a->maxConnections) : std::string("an unknown share"));
    shareOver = a->over();
  }
  for (const auto& a : b.shares) {  // a cluster policy's: every share that is over
    if (!a.over()) continue;
    shareOver = true;
    figures += "; " + a.label() + ": worst case " + std::to_string(a.worstCase) + " against " +
               std::to_string(*a.maxConnections);
  }
  if (shareOver) {
    std::string fix = in.onExceeded == policy::OnExceeded::kClamp
                          ? "; Clamp cannot fit it (the share's policies that Warn, or pools already at 1 "
                            "connection per process, hold more): lower HPA maxReplicas or ask for a larger allocation"
                          : "; lower pool.maxSize or HPA maxReplicas, ask for a larger allocation, or set "
                            "budget.onExceeded: Clamp";
    return makeCondition(condition::kWithinBudget, false, "BudgetExceeded", "over budget: " + figures + fix);
  }
  if (b.clamped && b.worstCase <= *b.available) {
    return makeCondition(condition::kWithinBudget, true, "Clamped",
                         figures + "; maxSize clamped to " + std::to_string(b.effectiveMaxSize) + " so it fits");
  }
  if (b.ceiling && b.worstCase <= *b.available) {
    return makeCondition(condition::kWithinBudget, true, "Capped",
                         figures + "; pool.maxSize is above the ceiling of " + b.budgetSource + ": " +
                             std::to_string(*b.ceiling) + " is rendered");
  }
  if (b.worstCase > *b.available) {
    std::string fix = in.onExceeded == policy::OnExceeded::kClamp
                          ? "; Clamp cannot fit it (the database's policies that Warn, or pools already at 1 "
                            "connection per process, hold more): lower HPA maxReplicas or raise max_connections"
                          : "; lower pool.maxSize or HPA maxReplicas, raise max_connections, or set "
                            "budget.onExceeded: Clamp";
    return makeCondition(condition::kWithinBudget, false, "BudgetExceeded", "over budget: " + figures + fix);
  }
  return makeCondition(condition::kWithinBudget, true, "WithinBudget", figures);
}

// "the spec is valid", and where pool.idleInTransactionTimeout will not reach every session, what to do there.
std::string acceptedMessage(const StatusInput& in) {
  std::vector<std::string> caveats;
  if (in.idleInTransactionLibraryCaveat) caveats.push_back(*in.idleInTransactionLibraryCaveat);
  if (const auto& own = in.ownServerOptions; !own.empty()) {
    constexpr size_t kNamed = 3;
    std::string named;
    for (size_t i = 0; i < own.size() && i < kNamed; ++i) named += (i ? ", " : "") + own[i];
    if (own.size() > kNamed) named += " and " + std::to_string(own.size() - kNamed) + " more";
    caveats.push_back(named + (own.size() == 1 ? " sets its own value" : " set their own value") +
                      ", which poolguard " + "leaves alone (add " + in.idleInTransactionOptions + " to it)");
  }
  if (caveats.empty()) return "the spec is valid";
  std::string message = "the spec is valid, but pool.idleInTransactionTimeout will not reach every session: ";
  for (size_t i = 0; i < caveats.size(); ++i) message += (i ? "; " : "") + caveats[i];
  return message + " (docs/profiles.md#idle-in-transaction)";
}

}  // namespace

std::vector<Condition> computeConditions(const StatusInput& in) {
  std::vector<Condition> out;
  if (in.invalidMessage) {
    out.push_back(makeCondition(condition::kAccepted, false, "InvalidSpec", *in.invalidMessage));
    out.push_back(unknownCondition(condition::kApplied, "InvalidSpec", "nothing is applied while the spec is invalid"));
    out.push_back(unknownCondition(condition::kWithinBudget, "InvalidSpec", "not computed while the spec is invalid"));
    out.push_back(unknownCondition(condition::kUsageHealthy, "InvalidSpec", "not checked while the spec is invalid"));
    out.push_back(summarizeReady(out));
    if (auto progress = progressCondition(out, {})) out.push_back(std::move(*progress));
    return out;
  }
  Counts c = count(in.workloads);
  if (c.matched > 0 && c.conflicted == c.matched) {
    out.push_back(makeCondition(condition::kAccepted, false, "Conflicted",
                                "every matched workload belongs to a higher policy: " + conflictWinners(in.workloads)));
  } else {
    out.push_back(makeCondition(condition::kAccepted, true, "Accepted", acceptedMessage(in)));
  }

  bool audit = in.mode == policy::Mode::kAudit;
  if (c.matched == 0) {
    out.push_back(makeCondition(condition::kApplied, true, "NoMatchingWorkloads",
                                "no workload of spec.kinds in the namespace matches spec.selector"));
  } else if (c.failed > 0) {
    out.push_back(makeCondition(condition::kApplied, false, "ApplyFailed",
                                std::to_string(c.failed) + " of " + std::to_string(c.matched) +
                                    " workloads failed: " + listWorkloads(in.workloads, WorkloadState::kFailed)));
  } else if (c.drifted > 0) {
    out.push_back(makeCondition(condition::kApplied, false, "Drifted",
                                std::to_string(c.drifted) + " of " + std::to_string(c.matched) +
                                    " workloads differ from the policy" +
                                    (audit ? " (Audit: Enforce would change " : " (") +
                                    listWorkloads(in.workloads, WorkloadState::kDrifted) + ")"));
  } else if (c.pending > 0) {
    out.push_back(makeCondition(condition::kApplied, false, "Pending",
                                std::to_string(c.pending) + " workloads wait to be written"));
  } else if (c.conflicted > 0) {
    out.push_back(makeCondition(condition::kApplied, false, "PartiallyConflicted",
                                std::to_string(c.conflicted) + " of " + std::to_string(c.matched) +
                                    " workloads belong to a higher policy: " + conflictWinners(in.workloads)));
  } else {
    out.push_back(
        makeCondition(condition::kApplied, true, "AllApplied",
                      audit ? "Audit: all " + std::to_string(c.matched) + " workloads already carry the settings"
                            : "settings applied to all " + std::to_string(c.matched) + " workloads"));
  }
  out.push_back(budgetCondition(in));
  out.push_back(usageCondition(in));
  out.push_back(summarizeReady(out));
  ProgressFacts facts;
  facts.maxConnectionsComing = in.maxConnectionsComing;
  // Applied names one reason: a retried failure next to conflicted or (Audit) drifted workloads still will not
  // resolve by itself.
  facts.failuresNeedChange = c.conflicted > 0 || c.drifted > 0;
  for (const auto& w : in.workloads) facts.failuresNeedChange |= w.state == WorkloadState::kFailed && w.needsChange;
  if (auto progress = progressCondition(out, facts)) out.push_back(std::move(*progress));
  return out;
}

json buildStatus(const StatusInput& in, const std::vector<Condition>& previous, const std::string& now) {
  auto conditions = mergeConditions(previous, computeConditions(in), in.generation, now);
  json status = json::object();
  status["observedGeneration"] = in.generation;
  status["conditions"] = json::array();
  for (const auto& c : conditions) status["conditions"].push_back(toJson(c));
  if (in.invalidMessage) return status;

  Counts c = count(in.workloads);
  status["workloads"] = {
      {"matched", c.matched}, {"applied", c.applied}, {"drifted", c.drifted}, {"conflicted", c.conflicted}};
  const auto& b = in.budget;
  json budget = {{"database", b.database},
                 {"reservedConnections", b.reservedConnections},
                 {"steadyState", b.steadyState},
                 {"worstCase", b.worstCase},
                 {"policyWorstCase", b.policyWorstCase},
                 {"effectiveMaxSize", b.effectiveMaxSize}};
  if (b.maxConnections) budget["maxConnections"] = *b.maxConnections;
  if (b.available) budget["available"] = *b.available;
  if (b.policyOverheadWorstCase > 0) budget["overheadWorstCase"] = b.policyOverheadWorstCase;
  if (b.policyTerminatingWorstCase > 0) budget["terminatingWorstCase"] = b.policyTerminatingWorstCase;
  budget["summary"] = std::to_string(b.worstCase) + "/" + (b.available ? std::to_string(*b.available) : "?");
  if (const auto& a = b.allocation) {
    json share{{"worstCase", a->worstCase}};
    if (a->name.empty())
      share["unallocated"] = true;
    else
      share["name"] = a->name;
    if (a->maxConnections) share["maxConnections"] = *a->maxConnections;
    budget["allocation"] = share;
  }
  status["budget"] = budget;

  if (in.usage) {
    const auto& u = in.usage->usage;
    json usage = json::object();
    if (!u.source.empty()) usage["source"] = u.source;
    if (u.lastCheckTime) usage["lastCheckTime"] = formatRfc3339(*u.lastCheckTime);
    if (u.connections) usage["connections"] = *u.connections;
    if (u.active) usage["active"] = *u.active;
    if (u.idle) usage["idle"] = *u.idle;
    if (u.idleInTransaction) usage["idleInTransaction"] = *u.idleInTransaction;
    if (u.oldestIdleInTransactionSeconds) usage["oldestIdleInTransactionSeconds"] = *u.oldestIdleInTransactionSeconds;
    if (u.serverMaxConnections) usage["serverMaxConnections"] = *u.serverMaxConnections;
    addTerminations(usage, *in.usage);
    if (!usage.empty()) status["usage"] = usage;
  }

  json list = json::array();
  for (const auto& w : in.workloads) {
    if (list.size() == kMaxWorkloadStatuses) break;
    json j = {{"kind", policy::toString(w.kind)}, {"name", w.name},       {"replicas", w.replicas},
              {"maxReplicas", w.maxReplicas},     {"maxSize", w.maxSize}, {"state", toString(w.state)}};
    if (!w.namespace_.empty()) j["namespace"] = w.namespace_;
    if (!w.settingsHash.empty()) j["settingsHash"] = w.settingsHash;
    std::optional<int32_t> connections = w.connections;
    if (!connections && in.usage) {
      for (const auto& wu : in.usage->workloads) {
        if (wu.name == w.name && (w.namespace_.empty() || wu.namespace_ == w.namespace_)) connections = wu.connections;
      }
    }
    if (connections) j["connections"] = *connections;
    if (w.worstCase) j["worstCase"] = *w.worstCase;
    if (!w.message.empty()) j["message"] = w.message.size() > 1024 ? w.message.substr(0, 1021) + "..." : w.message;
    list.push_back(std::move(j));
  }
  status["workloadStatuses"] = list;
  return status;
}

void recordTransitions(runtime::EventRecorder& events, const json& policyObject, const std::vector<Condition>& previous,
                       const std::vector<Condition>& current) {
  for (const auto& t : transitions(previous, current)) {
    if (t.condition.type == condition::kReconciling) continue;
    bool warning = t.condition.status == "False" || t.condition.type == condition::kStalled;
    events.record(policyObject, warning ? runtime::EventType::kWarning : runtime::EventType::kNormal,
                  t.condition.reason, t.condition.type + " is " + t.condition.status + ": " + t.condition.message);
  }
}

void addTerminations(json& usage, const usage::AnalysisResult& result) {
  if (!result.leakedSessions.empty()) usage["leakedSessions"] = result.leakedSessions.size();
  if (result.sessionsEnded > 0) usage["sessionsEnded"] = result.sessionsEnded;
}

}  // namespace poolguard::controller
