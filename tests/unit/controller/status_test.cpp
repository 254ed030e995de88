#include "controller/status.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace poolguard::controller
