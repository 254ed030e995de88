#include "policy/selection.h"

#include <gtest/gtest.h>

namespace poolguard::policy {
namespace {

policy::Policy make(const std::string& name, int priority, const std::string& created) {
  policy::Policy p;
  p.name = name;
  p.namespace_ = "shop";
  p.spec.priority = priority;
  p.creationTimestamp = created;
  p.spec.selector.matchLabels = {{"app", "web"}};
  return p;
}

TEST(Selection, SelectsByNamespaceKindAndLabels) {
  auto p = make("a", 0, "2026-01-01T00:00:00Z");
  EXPECT_TRUE(selects(p, policy::WorkloadKind::kDeployment, "shop", {{"app", "web"}, {"x", "y"}}));
  EXPECT_FALSE(selects(p, policy::WorkloadKind::kDeployment, "other", {{"app", "web"}}));
  EXPECT_FALSE(selects(p, policy::WorkloadKind::kDeployment, "shop", {{"app", "api"}}));
  p.spec.kinds = {policy::WorkloadKind::kStatefulSet};
  EXPECT_FALSE(selects(p, policy::WorkloadKind::kDeployment, "shop", {{"app", "web"}}));
  EXPECT_TRUE(selects(p, policy::WorkloadKind::kStatefulSet, "shop", {{"app", "web"}}));
}

TEST(Selection, HighestPriorityThenOldestThenName) {
  auto low = make("low", 0, "2025-01-01T00:00:00Z");
  auto high = make("high", 5, "2026-01-01T00:00:00Z");
  auto highOlder = make("zeta", 5, "2025-06-01T00:00:00Z");
  auto highSameTimeA = make("alpha", 5, "2025-06-01T00:00:00Z");
  EXPECT_TRUE(outranks(high, low));
  EXPECT_TRUE(outranks(highOlder, high));
  EXPECT_TRUE(outranks(highSameTimeA, highOlder));
  std::vector<const policy::Policy*> all{&low, &high, &highOlder, &highSameTimeA};
  EXPECT_EQ(winner(all), 3);
  EXPECT_EQ(winner({}), -1);
}

TEST(Selection, UnpersistedTimestampLosesTies) {
  auto persisted = make("b", 1, "2026-01-01T00:00:00Z");
  auto fresh = make("a", 1, "");
  EXPECT_TRUE(outranks(persisted, fresh));
  EXPECT_FALSE(outranks(fresh, persisted));
}

}  // namespace
}  // namespace poolguard::policy
