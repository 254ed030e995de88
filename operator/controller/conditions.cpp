#include "controller/conditions.h"

namespace poolguard::controller {

Condition makeCondition(std::string type, bool value, std::string reason, std::string message) {
  return Condition{std::move(type), value ? "True" : "False", std::move(reason), std::move(message), 0, ""};
}

Condition unknownCondition(std::string type, std::string reason, std::string message) {
  return Condition{std::move(type), "Unknown", std::move(reason), std::move(message), 0, ""};
}

const Condition* find(const std::vector<Condition>& conditions, const std::string& type) {
  for (const auto& c : conditions) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

Condition summarizeReady(const std::vector<Condition>& conditions) {
  std::vector<std::string> blocking;
  for (const char* type : {condition::kAccepted, condition::kApplied, condition::kWithinBudget}) {
    const Condition* c = find(conditions, type);
    if (!c || c->status != "True") blocking.push_back(std::string(type) + (c ? " (" + c->reason + ")" : ""));
  }
  const Condition* usage = find(conditions, condition::kUsageHealthy);
  if (usage && usage->status == "False")
    blocking.push_back(std::string(condition::kUsageHealthy) + " (" + usage->reason + ")");
  if (blocking.empty())
    return makeCondition(condition::kReady, true, "Ready", "the policy is applied, within budget and healthy");
  std::string msg = "not ready: ";
  for (size_t i = 0; i < blocking.size(); ++i) msg += (i ? ", " : "") + blocking[i];
  return makeCondition(condition::kReady, false, "NotReady", msg);
}

namespace {

// Whether a condition holds Ready back, and if so whether it needs a change to clear (nullopt: not a blocker).
std::optional<bool> blockerNeedsChange(const Condition& c, const ProgressFacts& facts) {
  if (c.type == condition::kReady || c.type == condition::kReconciling || c.type == condition::kStalled)
    return std::nullopt;
  if (c.status == "True") return std::nullopt;
  if (c.type == condition::kUsageHealthy) {  // Unknown never holds Ready back; a finding is the application's
    if (c.status == "False") return true;
    return std::nullopt;
  }
  if (c.type == condition::kApplied && c.status == "False") {
    if (c.reason == "Pending") return false;
    if (c.reason == "ApplyFailed") return facts.failuresNeedChange;
    return true;  // Drifted (Audit writes nothing), PartiallyConflicted
  }
  if (c.type == condition::kWithinBudget && c.reason == "MaxConnectionsUnknown") return !facts.maxConnectionsComing;
  if (c.status == "False" || c.reason == "InvalidSpec") return true;  // InvalidSpec, Conflicted, BudgetExceeded
  return false;
}

}  // namespace

std::optional<Condition> progressCondition(const std::vector<Condition>& conditions, const ProgressFacts& facts) {
  const Condition* ready = find(conditions, condition::kReady);
  if (!ready || ready->status == "True") return std::nullopt;
  // The blocker's message after a prefix, kept well within what a condition's message may hold.
  constexpr size_t kMaxMessage = 4096;
  auto progress = [&](const char* type, const Condition& c, const char* how) {
    std::string message = c.type + " is " + c.status + how + c.message;
    if (message.size() > kMaxMessage) message = message.substr(0, kMaxMessage - 3) + "...";
    return makeCondition(type, true, c.reason, std::move(message));
  };
  const Condition* waiting = nullptr;
  for (const auto& c : conditions) {
    auto needsChange = blockerNeedsChange(c, facts);
    if (!needsChange) continue;
    if (*needsChange) return progress(condition::kStalled, c, " and needs a change to clear: ");
    if (!waiting) waiting = &c;
  }
  if (waiting) return progress(condition::kReconciling, *waiting, " while poolguard works on it: ");
  // Ready is False for a reason no other condition carries: poolguard has not finished with it.
  return makeCondition(condition::kReconciling, true, ready->reason, ready->message.substr(0, kMaxMessage));
}

std::vector<Condition> mergeConditions(const std::vector<Condition>& previous, std::vector<Condition> desired,
                                       int64_t generation, const std::string& now) {
  for (auto& c : desired) {
    c.observedGeneration = generation;
    const Condition* old = find(previous, c.type);
    c.lastTransitionTime =
        (old && old->status == c.status && !old->lastTransitionTime.empty()) ? old->lastTransitionTime : now;
  }
  return desired;
}

std::vector<Transition> transitions(const std::vector<Condition>& previous, const std::vector<Condition>& current) {
  std::vector<Transition> out;
  for (const auto& c : current) {
    const Condition* old = find(previous, c.type);
    if (!old || old->status != c.status) out.push_back({c, old ? old->status : ""});
  }
  return out;
}

nlohmann::json toJson(const Condition& c) {
  return {{"type", c.type},
          {"status", c.status},
          {"reason", c.reason},
          {"message", c.message},
          {"observedGeneration", c.observedGeneration},
          {"lastTransitionTime", c.lastTransitionTime}};
}

std::vector<Condition> conditionsFromJson(const nlohmann::json& status) {
  std::vector<Condition> out;
  if (!status.is_object() || !status.contains("conditions") || !status["conditions"].is_array()) return out;
  for (const auto& j : status["conditions"]) {
    if (!j.is_object()) continue;
    Condition c;
    c.type = j.value("type", "");
    c.status = j.value("status", "");
    c.reason = j.value("reason", "");
    c.message = j.value("message", "");
    c.observedGeneration = j.value("observedGeneration", int64_t{0});
    c.lastTransitionTime = j.value("lastTransitionTime", "");
    if (!c.type.empty()) out.push_back(std::move(c));
  }
  return out;
}

}  // namespace poolguard::controller
