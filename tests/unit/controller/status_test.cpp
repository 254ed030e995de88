#include "controller/status.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "../runtime/fake_client.h"
#include "runtime/event_recorder.h"

namespace poolguard::controller {
namespace {

StatusInput baseInput() {
  StatusInput in;
  in.generation = 3;
  in.policyName = "orders";
  in.budget.database = "orders";
  in.budget.maxConnections = 100;
  in.budget.reservedConnections = 3;
  in.budget.available = 97;
  in.budget.steadyState = 20;
  in.budget.worstCase = 40;
  in.budget.unclampedWorstCase = 40;
  in.budget.policyWorstCase = 40;
  in.budget.policyUnclampedWorstCase = 40;
  in.budget.effectiveMaxSize = 20;
  WorkloadStatus w;
  w.name = "web";
  w.state = WorkloadState::kApplied;
  in.workloads.push_back(w);
  return in;
}

const Condition& get(const std::vector<Condition>& cs, const std::string& type) {
  const Condition* c = find(cs, type);
  EXPECT_NE(c, nullptr) << type;
  static Condition none;
  return c ? *c : none;
}

TEST(Status, AllGoodIsReady) {
  auto cs = computeConditions(baseInput());
  EXPECT_EQ(get(cs, "Accepted").status, "True");
  EXPECT_EQ(get(cs, "Applied").reason, "AllApplied");
  EXPECT_EQ(get(cs, "WithinBudget").reason, "WithinBudget");
  EXPECT_EQ(get(cs, "UsageHealthy").reason, "NotConfigured");
  EXPECT_EQ(get(cs, "Ready").status, "True");
}

TEST(Status, InvalidSpecRejectsAndComputesNothingElse) {
  auto in = baseInput();
  in.invalidMessage = "spec.pool.minIdle: must be <= maxSize";
  auto status = buildStatus(in, {}, "2026-01-01T00:00:00Z");
  auto cs = conditionsFromJson(status);
  EXPECT_EQ(get(cs, "Accepted").reason, "InvalidSpec");
  EXPECT_EQ(get(cs, "Accepted").message, "spec.pool.minIdle: must be <= maxSize");
  EXPECT_EQ(get(cs, "Ready").status, "False");
  EXPECT_FALSE(status.contains("budget"));
}

TEST(Status, OverBudgetNamesTheNumbersAndTheFix) {
  auto in = baseInput();
  in.budget.worstCase = in.budget.unclampedWorstCase = in.budget.policyWorstCase = 200;
  auto cs = computeConditions(in);
  const auto& b = get(cs, "WithinBudget");
  EXPECT_EQ(b.status, "False");
  EXPECT_EQ(b.reason, "BudgetExceeded");
  EXPECT_NE(b.message.find("200"), std::string::npos) << b.message;
  EXPECT_NE(b.message.find("97"), std::string::npos) << b.message;
  EXPECT_NE(b.message.find("Clamp"), std::string::npos) << b.message;
  EXPECT_EQ(get(cs, "Ready").status, "False");
}

TEST(Status, ClampThatFitsIsWithinBudget) {
  auto in = baseInput();
  in.onExceeded = policy::OnExceeded::kClamp;
  in.budget.unclampedWorstCase = 200;
  in.budget.worstCase = 90;
  in.budget.clamped = true;
  in.budget.effectiveMaxSize = 9;
  in.budget.policyWorstCase = 45;
  in.budget.policyUnclampedWorstCase = 100;
  auto conditions = computeConditions(in);
  const auto& b = get(conditions, "WithinBudget");
  EXPECT_EQ(b.status, "True");
  EXPECT_EQ(b.reason, "Clamped");
  EXPECT_NE(b.message.find("clamped to 9"), std::string::npos) << b.message;
  // The figures after Clamp first, then what was asked.
  EXPECT_NE(b.message.find("worst case 90 connections after Clamp (200 as the policies ask) for database orders "
                           "(this policy 45 after Clamp, 100 as it asks) against 97 available"),
            std::string::npos)
      << b.message;
}

TEST(Status, UnknownMaxConnections) {
  auto in = baseInput();
  in.budget.maxConnections.reset();
  in.budget.available.reset();
  auto cs = computeConditions(in);
  EXPECT_EQ(get(cs, "WithinBudget").status, "Unknown");
  EXPECT_EQ(get(cs, "WithinBudget").reason, "MaxConnectionsUnknown");
}

TEST(Status, AcceptedNamesWhereTheIdleInTransactionTimeoutWillNotReach) {
  auto in = baseInput();
  EXPECT_EQ(get(computeConditions(in), "Accepted").message, "the spec is valid");

  in.idleInTransactionOptions = "-c idle_in_transaction_session_timeout=45000";
  in.idleInTransactionLibraryCaveat =
      "asyncpg reads no PGOPTIONS (pass idle_in_transaction_session_timeout in connect_args' server_settings)";
  auto accepted = get(computeConditions(in), "Accepted");
  EXPECT_EQ(accepted.status, "True");
  EXPECT_EQ(accepted.reason, "Accepted");
  EXPECT_EQ(accepted.message,
            "the spec is valid, but pool.idleInTransactionTimeout will not reach every session: asyncpg reads no "
            "PGOPTIONS (pass idle_in_transaction_session_timeout in connect_args' server_settings) "
            "(docs/profiles.md#idle-in-transaction)");

  in.idleInTransactionLibraryCaveat.reset();
  in.ownServerOptions = {"Deployment web container app (PGOPTIONS)"};
  EXPECT_EQ(get(computeConditions(in), "Accepted").message,
            "the spec is valid, but pool.idleInTransactionTimeout will not reach every session: Deployment web "
            "container app (PGOPTIONS) sets its own value, which poolguard leaves alone (add -c "
            "idle_in_transaction_session_timeout=45000 to it) (docs/profiles.md#idle-in-transaction)");

  // Many containers: three are named, and how many more.
  for (const char* w : {"a", "b", "c", "d"})
    in.ownServerOptions.push_back(std::string("Deployment ") + w + " container app (PGOPTIONS)");
  const std::string many = get(computeConditions(in), "Accepted").message;
  EXPECT_NE(many.find("Deployment web container app (PGOPTIONS), Deployment a container app (PGOPTIONS), Deployment "
                      "b container app (PGOPTIONS) and 2 more set their own value"),
            std::string::npos)
      << many;
}

TEST(Status, ConflictsAndDrift) {
  auto in = baseInput();
  in.workloads[0].state = WorkloadState::kConflicted;
  in.workloads[0].message = "governed by policy high";
  auto cs = computeConditions(in);
  EXPECT_EQ(get(cs, "Accepted").reason, "Conflicted");
  EXPECT_NE(get(cs, "Accepted").message.find("governed by policy high"), std::string::npos);

  WorkloadStatus other;
  other.name = "api";
  other.state = WorkloadState::kApplied;
  in.workloads.push_back(other);
  cs = computeConditions(in);
  EXPECT_EQ(get(cs, "Accepted").status, "True");
  EXPECT_EQ(get(cs, "Applied").reason, "PartiallyConflicted");

  in.mode = policy::Mode::kAudit;
  in.workloads[1].state = WorkloadState::kDrifted;
  in.workloads[1].message = "container app env POOL_MAX_SIZE: live 99, desired 9";
  cs = computeConditions(in);
  EXPECT_EQ(get(cs, "Applied").reason, "Drifted");
  EXPECT_NE(get(cs, "Applied").message.find("POOL_MAX_SIZE"), std::string::npos);
}

TEST(Status, NoMatchesIsApplied) {
  auto in = baseInput();
  in.workloads.clear();
  EXPECT_EQ(get(computeConditions(in), "Applied").reason, "NoMatchingWorkloads");
}

TEST(Status, SameInputSameStatus) {
  auto in = baseInput();
  auto first = buildStatus(in, {}, "2026-01-01T00:00:00Z");
  auto second = buildStatus(in, conditionsFromJson(first), "2026-03-03T00:00:00Z");
  EXPECT_EQ(first, second) << "an unchanged reconcile must produce an identical status (no write)";
  EXPECT_EQ(first["budget"]["summary"], "40/97");
  EXPECT_EQ(first["workloads"]["matched"], 1);
}

TEST(Status, WorkloadStatusesAreCapped) {
  auto in = baseInput();
  for (int i = 0; i < 150; ++i) {
    WorkloadStatus w;
    w.name = "w" + std::to_string(i);
    w.state = WorkloadState::kApplied;
    in.workloads.push_back(w);
  }
  auto status = buildStatus(in, {}, "2026-01-01T00:00:00Z");
  EXPECT_EQ(status["workloadStatuses"].size(), kMaxWorkloadStatuses);
  EXPECT_EQ(status["workloads"]["matched"], 151);
}

TEST(Status, UsageFindingsDriveUsageHealthy) {
  auto in = baseInput();
  usage::AnalysisResult r;
  r.condition.status = usage::ConditionStatus::kFalse;
  r.condition.reason = "LeakSuspected";
  r.condition.message = "shop/web holds 4 sessions idle in transaction, the oldest for 2m";
  r.usage.source = "postgres";
  r.usage.connections = 12;
  in.usage = r;
  auto status = buildStatus(in, {}, "2026-01-01T00:00:00Z");
  auto cs = conditionsFromJson(status);
  EXPECT_EQ(get(cs, "UsageHealthy").status, "False");
  EXPECT_EQ(get(cs, "UsageHealthy").reason, "LeakSuspected");
  EXPECT_EQ(get(cs, "Ready").status, "False");
  EXPECT_EQ(status["usage"]["connections"], 12);
}

// kstatus (what Flux's wait and kubectl-based tools read): Stalled for what needs a change, Reconciling for what
// poolguard is still working on; neither while Ready.
std::string progressOf(const std::vector<Condition>& cs) {
  const Condition* reconciling = find(cs, "Reconciling");
  const Condition* stalled = find(cs, "Stalled");
  if (reconciling && stalled) return "both";
  if (reconciling) return "Reconciling " + reconciling->reason;
  if (stalled) return "Stalled " + stalled->reason;
  return "none";
}

TEST(Status, StalledForWhatNeedsAChangeReconcilingForWhatIsUnderWay) {
  EXPECT_EQ(progressOf(computeConditions(baseInput())), "none");

  auto invalid = baseInput();
  invalid.invalidMessage = "spec.pool.minIdle: must be <= maxSize";
  EXPECT_EQ(progressOf(computeConditions(invalid)), "Stalled InvalidSpec");

  auto conflicted = baseInput();
  conflicted.workloads[0].state = WorkloadState::kConflicted;
  EXPECT_EQ(progressOf(computeConditions(conflicted)), "Stalled Conflicted");

  auto over = baseInput();
  over.budget.worstCase = over.budget.unclampedWorstCase = 200;
  auto cs = computeConditions(over);
  EXPECT_EQ(progressOf(cs), "Stalled BudgetExceeded");
  EXPECT_NE(find(cs, "Stalled")->message.find("WithinBudget is False and needs a change to clear: over budget"),
            std::string::npos)
      << find(cs, "Stalled")->message;

  auto pending = baseInput();
  pending.workloads[0].state = WorkloadState::kPending;
  EXPECT_EQ(progressOf(computeConditions(pending)), "Reconciling Pending");

  // A write that failed is retried; one the API server refuses, or a Job, is not going to change by itself.
  auto failed = baseInput();
  failed.workloads[0].state = WorkloadState::kFailed;
  EXPECT_EQ(progressOf(computeConditions(failed)), "Reconciling ApplyFailed");
  failed.workloads.push_back(failed.workloads[0]);
  failed.workloads[1].needsChange = true;
  EXPECT_EQ(progressOf(computeConditions(failed)), "Stalled ApplyFailed");

  // A retried failure next to a workload a higher policy governs: Applied names the failure, but the conflict
  // will not resolve by itself.
  auto mixed = baseInput();
  mixed.workloads[0].state = WorkloadState::kFailed;
  mixed.workloads.push_back(mixed.workloads[0]);
  mixed.workloads[1].state = WorkloadState::kConflicted;
  EXPECT_EQ(progressOf(computeConditions(mixed)), "Stalled ApplyFailed");

  // However long the blocker's message, the condition's stays within bounds.
  auto leakingEverywhere = baseInput();
  leakingEverywhere.usage = usage::AnalysisResult{};
  leakingEverywhere.usage->condition = {usage::ConditionStatus::kFalse, usage::reasons::kLeakSuspected,
                                        std::string(40000, 'x')};
  auto long_ = computeConditions(leakingEverywhere);
  ASSERT_NE(find(long_, "Stalled"), nullptr);
  EXPECT_LE(find(long_, "Stalled")->message.size(), 4096u);

  // Pending next to a budget that does not fit: the state will not resolve.
  pending.budget.worstCase = pending.budget.unclampedWorstCase = 200;
  EXPECT_EQ(progressOf(computeConditions(pending)), "Stalled BudgetExceeded");

  // max_connections: from a server a usage check still reads, or from nowhere.
  auto unknown = baseInput();
  unknown.budget.maxConnections.reset();
  unknown.budget.available.reset();
  EXPECT_EQ(progressOf(computeConditions(unknown)), "Stalled MaxConnectionsUnknown");
  unknown.maxConnectionsComing = true;
  EXPECT_EQ(progressOf(computeConditions(unknown)), "Reconciling MaxConnectionsUnknown");

  // Audit writes nothing: its drift stays until someone changes the workload or the mode.
  auto audit = baseInput();
  audit.mode = policy::Mode::kAudit;
  audit.workloads[0].state = WorkloadState::kDrifted;
  EXPECT_EQ(progressOf(computeConditions(audit)), "Stalled Drifted");

  // The applications' sessions: a finding holds Ready back until the application changes; no finding yet does not.
  auto leaking = baseInput();
  leaking.usage = usage::AnalysisResult{};
  leaking.usage->condition = {usage::ConditionStatus::kFalse, usage::reasons::kLeakSuspected, "web leaks"};
  EXPECT_EQ(progressOf(computeConditions(leaking)), "Stalled LeakSuspected");
  leaking.usage->condition = {usage::ConditionStatus::kUnknown, usage::reasons::kUsageUnavailable, "refused"};
  EXPECT_EQ(progressOf(computeConditions(leaking)), "none");
}

// Whatever the inputs: Ready=False comes with exactly one of Reconciling and Stalled, Ready=True with neither.
TEST(Status, ReadyFalseAlwaysSaysWhetherItIsStuck) {
  const WorkloadState states[] = {WorkloadState::kApplied, WorkloadState::kPending, WorkloadState::kDrifted,
                                  WorkloadState::kConflicted, WorkloadState::kFailed};
  const usage::ConditionStatus usageStatuses[] = {usage::ConditionStatus::kTrue, usage::ConditionStatus::kFalse,
                                                  usage::ConditionStatus::kUnknown};
  int checked = 0;
  for (int bits = 0; bits < (1 << 7); ++bits) {
    for (auto a : states) {
      for (auto b : states) {
        for (int u = -1; u < 3; ++u) {
          auto in = baseInput();
          in.mode = (bits & 1) ? policy::Mode::kAudit : policy::Mode::kEnforce;
          if (bits & 2) in.invalidMessage = "spec.pool.maxSize: must be at least 1";
          if (bits & 4) in.budget.worstCase = in.budget.unclampedWorstCase = 500;
          if (bits & 8) {
            in.budget.maxConnections.reset();
            in.budget.available.reset();
          }
          in.maxConnectionsComing = bits & 16;
          in.workloads[0].state = a;
          in.workloads[0].needsChange = bits & 32;
          if (!(bits & 64)) {
            in.workloads.push_back(in.workloads[0]);
            in.workloads[1].state = b;
          }
          if (u >= 0) {
            in.usage = usage::AnalysisResult{};
            in.usage->condition = {usageStatuses[u], "SomeReason", "message"};
          }
          auto cs = computeConditions(in);
          const std::string progress = progressOf(cs);
          if (get(cs, "Ready").status == "True") {
            EXPECT_EQ(progress, "none") << bits << " " << toString(a) << " " << toString(b) << " " << u;
          } else {
            EXPECT_TRUE(progress.starts_with("Reconciling") || progress.starts_with("Stalled"))
                << progress << " " << bits << " " << toString(a) << " " << toString(b) << " " << u;
          }
          ++checked;
        }
      }
    }
  }
  EXPECT_EQ(checked, 128 * 5 * 5 * 4);
}

// Stalled is a Warning Event when it appears; Reconciling, which comes and goes with every write, is none.
TEST(Status, StalledIsAWarningAndReconcilingIsNoEvent) {
  using namespace std::chrono_literals;
  runtime::testing::FakeClient client;
  runtime::EventRecorder events(client);
  const nlohmann::json policy = {{"apiVersion", "poolguard.dev/v1alpha1"},
                                 {"kind", "ConnectionPoolPolicy"},
                                 {"metadata", {{"namespace", "shop"}, {"name", "orders"}, {"uid", "u1"}}}};
  auto pending = baseInput();
  pending.workloads[0].state = WorkloadState::kPending;
  auto over = baseInput();
  over.budget.worstCase = over.budget.unclampedWorstCase = 200;
  const auto ready = computeConditions(baseInput());
  const auto reconciling = computeConditions(pending);
  const auto stalled = computeConditions(over);
  recordTransitions(events, policy, ready, reconciling);
  recordTransitions(events, policy, reconciling, ready);
  recordTransitions(events, policy, ready, stalled);
  ASSERT_TRUE(events.flush(5s));
  std::vector<std::string> seen;
  for (const auto& e : client.storedOf({"", "v1", "events", "Event", true}))
    seen.push_back(e.value("type", "") + " " + e.value("reason", "") + " " + e.value("message", "").substr(0, 12));
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"Normal AllApplied Applied is T", "Normal Ready Ready is Tru",
                                            "Warning BudgetExceeded Stalled is T",
                                            "Warning BudgetExceeded WithinBudget", "Warning NotReady Ready is Fal",
                                            "Warning NotReady Ready is Fal", "Warning Pending Applied is F"}))
      << "no Reconciling Event";
}

}  // namespace
}  // namespace poolguard::controller
