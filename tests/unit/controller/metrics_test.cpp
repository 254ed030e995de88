#include "controller/metrics.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <string>

namespace poolguard::controller {
namespace {

// The number of series of `family` whose label `label` is `value`.
int seriesWith(prometheus::Registry& registry, const std::string& family, const std::string& label,
               const std::string& value) {
  int n = 0;
  for (const auto& f : registry.Collect()) {
    if (f.name != family) continue;
    for (const auto& m : f.metric) {
      for (const auto& l : m.label) {
        if (l.name == label && l.value == value) ++n;
      }
    }
  }
  return n;
}

TEST(ControllerMetrics, ForgettingADatabaseRemovesOnlyItsSeries) {
  prometheus::Registry registry;
  ControllerMetrics metrics(registry);
  metrics.setDatabase("orders", 40, 90, 97);
  metrics.setDatabase("billing", 10, 20, std::nullopt);
  ASSERT_EQ(seriesWith(registry, "poolguard_database_connections_worst_case", "database", "orders"), 1);
  ASSERT_EQ(seriesWith(registry, "poolguard_database_connections_available", "database", "orders"), 1);

  metrics.forgetDatabase("orders");
  for (const char* family : {"poolguard_database_connections_worst_case", "poolguard_database_connections_steady_state",
                             "poolguard_database_connections_available"}) {
    EXPECT_EQ(seriesWith(registry, family, "database", "orders"), 0) << family;
  }
  EXPECT_EQ(seriesWith(registry, "poolguard_database_connections_worst_case", "database", "billing"), 1);
  EXPECT_EQ(seriesWith(registry, "poolguard_database_connections_steady_state", "database", "billing"), 1);

  metrics.forgetDatabase("never-seen");  // a no-op
  EXPECT_EQ(seriesWith(registry, "poolguard_database_connections_worst_case", "database", "billing"), 1);
}

TEST(ControllerMetrics, ForgettingAPolicyRemovesItsConditionAndWorkloadSeries) {
  prometheus::Registry registry;
  ControllerMetrics metrics(registry);
  metrics.setConditions("shop", "checkout", {Condition{"Ready", "True", "Reconciled", "", 0, ""}});
  metrics.setWorkloads("shop", "checkout", 3, 3, 0, 0);
  metrics.setWorkloads("shop", "search", 1, 1, 0, 0);
  ASSERT_EQ(seriesWith(registry, "poolguard_policy_condition", "policy", "checkout"), 1);
  ASSERT_EQ(seriesWith(registry, "poolguard_policy_workloads", "policy", "checkout"), 4);

  metrics.forgetPolicy("shop", "checkout");
  EXPECT_EQ(seriesWith(registry, "poolguard_policy_condition", "policy", "checkout"), 0);
  EXPECT_EQ(seriesWith(registry, "poolguard_policy_workloads", "policy", "checkout"), 0);
  EXPECT_EQ(seriesWith(registry, "poolguard_policy_workloads", "policy", "search"), 4);
}

}  // namespace
}  // namespace poolguard::controller
