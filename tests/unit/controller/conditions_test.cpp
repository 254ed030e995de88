#include "controller/conditions.h"

#include <gtest/gtest.h>

namespace poolguard::controller {
namespace {

TEST(MergeConditions, KeepsTransitionTimeWhileStatusHolds) {
  std::vector<Condition> previous{{"Applied", "True", "AllApplied", "old message", 1, "2026-01-01T00:00:00Z"}};
  auto merged = mergeConditions(previous, {makeCondition("Applied", true, "AllApplied", "new message")}, 2,
                                "2026-02-02T00:00:00Z");
  ASSERT_EQ(merged.size(), 1u);
  EXPECT_EQ(merged[0].lastTransitionTime, "2026-01-01T00:00:00Z");
  EXPECT_EQ(merged[0].observedGeneration, 2);
  EXPECT_EQ(merged[0].message, "new message");
}

TEST(MergeConditions, MovesTransitionTimeOnStatusChange) {
  std::vector<Condition> previous{{"Applied", "True", "AllApplied", "", 1, "2026-01-01T00:00:00Z"}};
  auto merged =
      mergeConditions(previous, {makeCondition("Applied", false, "ApplyFailed", "boom")}, 1, "2026-02-02T00:00:00Z");
  EXPECT_EQ(merged[0].lastTransitionTime, "2026-02-02T00:00:00Z");
}

TEST(MergeConditions, NewConditionGetsNow) {
  auto merged = mergeConditions({}, {unknownCondition("UsageHealthy", "NotConfigured", "")}, 3, "2026-02-02T00:00:00Z");
  EXPECT_EQ(merged[0].lastTransitionTime, "2026-02-02T00:00:00Z");
  EXPECT_EQ(merged[0].status, "Unknown");
}

TEST(Transitions, OnlyStatusChangesAndNewConditions) {
  std::vector<Condition> previous{{"Applied", "True", "AllApplied", "", 1, "t"},
                                  {"WithinBudget", "True", "WithinBudget", "", 1, "t"}};
  std::vector<Condition> current{{"Applied", "True", "AllApplied", "other message", 2, "t"},
                                 {"WithinBudget", "False", "BudgetExceeded", "", 2, "t2"},
                                 {"Ready", "False", "NotReady", "", 2, "t2"}};
  auto t = transitions(previous, current);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].condition.type, "WithinBudget");
  EXPECT_EQ(t[0].previousStatus, "True");
  EXPECT_EQ(t[1].condition.type, "Ready");
  EXPECT_EQ(t[1].previousStatus, "");
}

TEST(SummarizeReady, TrueOnlyWhenTheOthersAllow) {
  std::vector<Condition> good{
      makeCondition("Accepted", true, "Accepted", ""), makeCondition("Applied", true, "AllApplied", ""),
      makeCondition("WithinBudget", true, "Clamped", ""), unknownCondition("UsageHealthy", "NotConfigured", "")};
  EXPECT_EQ(summarizeReady(good).status, "True");
  auto leak = good;
  leak[3] = makeCondition("UsageHealthy", false, "LeakSuspected", "");
  auto r = summarizeReady(leak);
  EXPECT_EQ(r.status, "False");
  EXPECT_NE(r.message.find("LeakSuspected"), std::string::npos);
  auto unknownBudget = good;
  unknownBudget[2] = unknownCondition("WithinBudget", "MaxConnectionsUnknown", "");
  EXPECT_EQ(summarizeReady(unknownBudget).status, "False");
}

TEST(ConditionsJson, RoundTrip) {
  Condition c{"Ready", "True", "Ready", "fine", 4, "2026-01-01T00:00:00Z"};
  nlohmann::json status = {{"conditions", {toJson(c)}}};
  auto back = conditionsFromJson(status);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0], c);
  EXPECT_TRUE(conditionsFromJson(nlohmann::json::object()).empty());
  EXPECT_TRUE(conditionsFromJson({{"conditions", "garbage"}}).empty());
}

}  // namespace
}  // namespace poolguard::controller
