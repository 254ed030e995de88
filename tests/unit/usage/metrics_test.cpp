// The usage metrics a policy's (or a budget's) checks leave behind: a database's figures stay only while a check
// still reports them.
#include "usage/metrics.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <map>
#include <string>

namespace poolguard::usage {
namespace {

// The series of `family` by their labels written out ("database=orders"), with their values.
std::map<std::string, double> seriesOf(prometheus::Registry& registry, const std::string& family) {
  std::map<std::string, double> out;
  for (const auto& f : registry.Collect()) {
    if (f.name != family) continue;
    for (const auto& m : f.metric) {
      std::string labels;
      for (const auto& l : m.label) labels += (labels.empty() ? "" : ",") + l.name + "=" + l.value;
      out[labels] = m.gauge.value;
    }
  }
  return out;
}

policy::Policy checkOf(const std::string& ns, const std::string& name, const std::string& database,
                       const std::string& kind = "ConnectionPoolPolicy") {
  policy::Policy p;
  p.kind = kind;
  p.namespace_ = ns;
  p.name = name;
  p.spec.database.name = database;
  return p;
}

// What a check that read the server finds.
AnalysisResult serverRead(int32_t connections, int32_t maxConnections) {
  AnalysisResult r;
  r.databaseConnections = connections;
  r.usage.serverMaxConnections = maxConnections;
  return r;
}

using Series = std::map<std::string, double>;

TEST(UsageMetrics, ADatabasesFiguresGoWithTheLastCheckThatReportsThem) {
  prometheus::Registry registry;
  UsageMetrics metrics(registry);
  auto connections = [&] { return seriesOf(registry, "poolguard_database_connections"); };
  auto max = [&] { return seriesOf(registry, "poolguard_database_max_connections"); };

  // Two policies of one database; the first is deleted, the second still reports it.
  metrics.record(checkOf("shop", "a", "orders"), {}, serverRead(7, 100));
  metrics.record(checkOf("shop", "b", "orders"), {}, serverRead(8, 100));
  metrics.forget("shop", "a");
  EXPECT_EQ(connections(), (Series{{"database=orders", 8}}));
  EXPECT_EQ(max(), (Series{{"database=orders", 100}}));
  // The last policy of the database goes: so do its figures.
  metrics.forget("shop", "b");
  EXPECT_EQ(connections(), Series{}) << "a deleted policy's database figures stayed";
  EXPECT_EQ(max(), Series{});

  // A policy renames its database.name: the old database's figures go at its next check.
  metrics.record(checkOf("shop", "a", "orders"), {}, serverRead(7, 100));
  metrics.record(checkOf("shop", "a", "orders-v2"), {}, serverRead(3, 50));
  EXPECT_EQ(connections(), (Series{{"database=orders-v2", 3}}));
  EXPECT_EQ(max(), (Series{{"database=orders-v2", 50}}));
  // Its usage block is dropped: the monitor forgets it.
  metrics.forget("shop", "a");
  EXPECT_EQ(connections(), Series{});
  EXPECT_EQ(max(), Series{});

  // A check that reads no server figure (Prometheus only) does not keep another check's figures standing.
  metrics.record(checkOf("shop", "a", "orders"), {}, serverRead(7, 100));
  metrics.record(checkOf("shop", "a", "orders"), {}, AnalysisResult{});
  EXPECT_EQ(connections(), Series{});
  EXPECT_EQ(max(), Series{});

  // A ClusterConnectionBudget's central check reports its database as a policy does.
  metrics.record(checkOf("shop", "a", "orders"), {}, serverRead(7, 100));
  metrics.record(checkOf("", "ClusterConnectionBudget:orders", "orders", "ClusterConnectionBudget"), {},
                 serverRead(9, 100));
  metrics.forget("shop", "a");
  EXPECT_EQ(connections(), (Series{{"database=orders", 9}})) << "the budget's check still reports it";
  metrics.forget("", "ClusterConnectionBudget:orders");
  EXPECT_EQ(connections(), Series{});
  EXPECT_EQ(max(), Series{});
}

TEST(UsageMetrics, AFailedReadRemovesTheFiguresUntilACheckReadsTheServerAgain) {
  prometheus::Registry registry;
  UsageMetrics metrics(registry);
  auto connections = [&] { return seriesOf(registry, "poolguard_database_connections"); };
  metrics.record(checkOf("shop", "a", "orders"), {}, serverRead(7, 100), {{"postgres", "db:5432/orders", true}});
  metrics.record(checkOf("shop", "b", "orders"), {}, serverRead(7, 100), {{"postgres", "db:5432/orders", true}});
  metrics.record(checkOf("shop", "a", "orders"), {}, AnalysisResult{}, {{"postgres", "db:5432/orders", false}});
  EXPECT_EQ(connections(), Series{}) << "the last good figure would read as current";
  metrics.record(checkOf("shop", "b", "orders"), {}, serverRead(6, 100), {{"postgres", "db:5432/orders", true}});
  EXPECT_EQ(connections(), (Series{{"database=orders", 6}}));
  metrics.forget("shop", "b");
  EXPECT_EQ(connections(), Series{}) << "a, whose read failed, does not keep b's figure";
  EXPECT_EQ(seriesOf(registry, "poolguard_usage_up").size(), 1u) << "a still checks that target";
  metrics.forget("shop", "a");
  EXPECT_EQ(seriesOf(registry, "poolguard_usage_up"), Series{});

  // A check that never read the server (its own credentials refused) leaves the figures of the checks that do.
  metrics.record(checkOf("shop", "b", "orders"), {}, serverRead(5, 100), {{"postgres", "db:5432/orders", true}});
  metrics.record(checkOf("shop", "c", "orders"), {}, AnalysisResult{}, {{"postgres", "db:5432/orders", false}});
  EXPECT_EQ(connections(), (Series{{"database=orders", 5}})) << "c never reported the figure";
  EXPECT_EQ(seriesOf(registry, "poolguard_database_max_connections"), (Series{{"database=orders", 100}}));
}

}  // namespace
}  // namespace poolguard::usage
