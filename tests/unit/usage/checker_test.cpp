#include "usage/checker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "fake_client.h"
#include "fake_postgres.h"
#include "kube/fence.h"
#include "usage/grant.h"
#include "usage/metrics.h"

namespace poolguard::usage {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

// The value of the series of `family` whose labels include all of `labels`; nullopt when absent.
std::optional<double> metricValue(prometheus::Registry& registry, const std::string& family,
                                  const std::map<std::string, std::string>& labels) {
  for (const auto& f : registry.Collect()) {
    if (f.name != family) continue;
    for (const auto& m : f.metric) {
      size_t matched = 0;
      for (const auto& l : m.label) {
        auto it = labels.find(l.name);
        if (it != labels.end() && it->second == l.value) ++matched;
      }
      if (matched != labels.size()) continue;
      return f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
    }
  }
  return std::nullopt;
}

policy::Policy makePolicy() {
  policy::Policy p;
  p.name = "orders";
  p.namespace_ = "ns1";
  p.spec.database.name = "orders-db";
  p.spec.pool.maxSize = 10;
  p.spec.usage.interval = 30s;
  return p;
}

GovernedWorkload workload(const std::string& name) {
  GovernedWorkload w;
  w.namespace_ = "ns1";
  w.name = name;
  w.applicationName = "ns1/" + name;
  w.podsNow = 2;
  w.maxSize = 10;
  return w;
}

TEST(Checker, NothingConfiguredIsNotConfigured) {
  ManualClock clock;
  Checker checker(clock);
  testing::FakeSecretsClient client;
  auto report = checker.check(makePolicy(), {workload("app")}, client);
  EXPECT_EQ(report.result.condition.reason, "NotConfigured");
  EXPECT_TRUE(report.errors.empty());
  EXPECT_TRUE(client.calls.empty());
}

TEST(Checker, SchedulesByTheInjectedClock) {
  ManualClock clock;
  Checker checker(clock);
  testing::FakeSecretsClient client;
  auto policy = makePolicy();
  EXPECT_EQ(checker.nextCheckDue(policy, clock.steadyNow()), clock.steadyNow());
  EXPECT_EQ(checker.requeueAfter(policy), 0ms);

  auto report = checker.check(policy, {}, client);
  EXPECT_EQ(report.nextCheckDue, clock.steadyNow() + 30s);
  EXPECT_EQ(checker.nextCheckDue(policy, clock.steadyNow()), clock.steadyNow() + 30s);
  EXPECT_EQ(checker.requeueAfter(policy), 30s);
  clock.advance(20s);
  EXPECT_EQ(checker.requeueAfter(policy), 10s);
  clock.advance(15s);
  EXPECT_EQ(checker.requeueAfter(policy), 0ms);

  policy.spec.usage.interval = 2min;  // an edited interval applies from the last check
  EXPECT_EQ(checker.requeueAfter(policy), 85s);

  checker.forget("ns1", "orders");
  EXPECT_EQ(checker.requeueAfter(policy), 0ms);
}

TEST(Checker, MissingSecretIsUsageUnavailableAndCountedAsAnError) {
  ManualClock clock;
  prometheus::Registry registry;
  Checker checker(clock, &registry);
  testing::FakeSecretsClient client;
  auto policy = makePolicy();
  policy.spec.usage.postgres = policy::PostgresSource{};
  policy.spec.usage.postgres->host = "db.example";
  policy.spec.usage.postgres->database = "orders";
  policy.spec.usage.postgres->credentialsSecretRef.name = "pg-monitor";

  auto report = checker.check(policy, {workload("app")}, client);
  EXPECT_EQ(report.result.condition.status, ConditionStatus::kUnknown);
  EXPECT_EQ(report.result.condition.reason, "UsageUnavailable");
  EXPECT_THAT(report.result.condition.message, HasSubstr("secret ns1/pg-monitor"));
  ASSERT_EQ(report.errors.size(), 1u);
  EXPECT_EQ(report.errors[0].reason(), postgres_reasons::kCredentials);
  EXPECT_EQ(client.calls, std::vector<std::string>{"get secrets ns1/pg-monitor"});
  EXPECT_EQ(metricValue(registry, "poolguard_usage_check_errors_total",
                        {{"namespace", "ns1"}, {"policy", "orders"}, {"reason", "CredentialsUnavailable"}}),
            1.0);

  (void)checker.check(policy, {workload("app")}, client);
  EXPECT_EQ(metricValue(registry, "poolguard_usage_check_errors_total", {{"reason", "CredentialsUnavailable"}}), 2.0);
}

TEST(UsageMetrics, RecordsWorkloadAndDatabaseSeriesAndDropsStaleOnes) {
  prometheus::Registry registry;
  UsageMetrics metrics(registry);
  auto policy = makePolicy();
  ManualClock clock;

  ServerSnapshot snap;
  snap.maxConnections = 100;
  snap.byApplication["ns1/app"].countByState = {{"active", 2}, {"idle in transaction", 1}};
  snap.byApplication["ns1/app"].idleInTransactionSince = {clock.now() - 42s};
  snap.byApplication["ns1/web"].countByState = {{"idle", 4}};
  AnalysisInput in;
  in.workloads = {workload("app"), workload("web")};
  in.postgres = SourceOutcome<ServerSnapshot>::of(snap);
  in.now = clock.now();
  metrics.record(policy, in.workloads, analyze(in));

  EXPECT_EQ(metricValue(registry, "poolguard_usage_connections",
                        {{"namespace", "ns1"}, {"policy", "orders"}, {"workload", "app"}, {"state", "active"}}),
            2.0);
  EXPECT_EQ(metricValue(registry, "poolguard_usage_connections", {{"workload", "web"}, {"state", "idle"}}), 4.0);
  EXPECT_EQ(metricValue(registry, "poolguard_usage_idle_in_transaction_oldest_seconds", {{"workload", "app"}}), 42.0);
  EXPECT_EQ(metricValue(registry, "poolguard_database_connections", {{"database", "orders-db"}}), 7.0);
  EXPECT_EQ(metricValue(registry, "poolguard_database_max_connections", {{"database", "orders-db"}}), 100.0);

  // The leak ended and web is no longer governed.
  snap.byApplication["ns1/app"].countByState = {{"active", 1}};
  snap.byApplication["ns1/app"].idleInTransactionSince.clear();
  in.workloads = {workload("app")};
  in.postgres = SourceOutcome<ServerSnapshot>::of(snap);
  metrics.record(policy, in.workloads, analyze(in));
  EXPECT_EQ(metricValue(registry, "poolguard_usage_connections", {{"workload", "app"}, {"state", "active"}}), 1.0);
  EXPECT_FALSE(
      metricValue(registry, "poolguard_usage_connections", {{"workload", "app"}, {"state", "idle in transaction"}}));
  EXPECT_FALSE(metricValue(registry, "poolguard_usage_connections", {{"workload", "web"}}));
  EXPECT_FALSE(metricValue(registry, "poolguard_usage_idle_in_transaction_oldest_seconds", {{"workload", "app"}}));

  metrics.forget("ns1", "orders");
  EXPECT_FALSE(metricValue(registry, "poolguard_usage_connections", {{"workload", "app"}}));
}

TEST(UsageMetrics, AFailingSourceIsDownAndLeavesNoStaleFigures) {
  prometheus::Registry registry;
  UsageMetrics metrics(registry);
  auto policy = makePolicy();
  ManualClock clock;
  ServerSnapshot snap;
  snap.maxConnections = 100;
  snap.byApplication["ns1/app"].countByState = {{"active", 3}};
  AnalysisInput in;
  in.workloads = {workload("app")};
  in.postgres = SourceOutcome<ServerSnapshot>::of(snap);
  in.now = clock.now();
  const std::map<std::string, std::string> pg{{"source", "postgres"}, {"target", "db:5432/orders"}};
  metrics.record(policy, in.workloads, analyze(in), {{"postgres", "db:5432/orders", true}});
  EXPECT_EQ(metricValue(registry, "poolguard_usage_up", pg), 1.0);
  EXPECT_EQ(metricValue(registry, "poolguard_database_connections", {{"database", "orders-db"}}), 3.0);

  // The server goes away: the last good figures must not read as current.
  in.postgres = SourceOutcome<ServerSnapshot>::of(Error(ErrorCode::kUnavailable, "connection refused"));
  metrics.record(policy, in.workloads, analyze(in), {{"postgres", "db:5432/orders", false}});
  EXPECT_EQ(metricValue(registry, "poolguard_usage_up", pg), 0.0);
  EXPECT_FALSE(metricValue(registry, "poolguard_database_connections", {{"database", "orders-db"}}));
  EXPECT_FALSE(metricValue(registry, "poolguard_database_max_connections", {{"database", "orders-db"}}));
  EXPECT_FALSE(metricValue(registry, "poolguard_usage_connections", {{"workload", "app"}}));

  // Back again; then the policy goes, and with it the up series no other policy uses.
  in.postgres = SourceOutcome<ServerSnapshot>::of(snap);
  metrics.record(policy, in.workloads, analyze(in), {{"postgres", "db:5432/orders", true}});
  EXPECT_EQ(metricValue(registry, "poolguard_usage_up", pg), 1.0);
  EXPECT_EQ(metricValue(registry, "poolguard_database_connections", {{"database", "orders-db"}}), 3.0);
  auto other = makePolicy();
  other.name = "billing";
  metrics.record(other, in.workloads, analyze(in), {{"postgres", "db:5432/orders", true}});
  metrics.forget("ns1", "orders");
  EXPECT_EQ(metricValue(registry, "poolguard_usage_up", pg), 1.0) << "billing still checks that target";
  metrics.record(other, in.workloads, analyze(in), {{"postgres", "db2:5432/orders", true}});
  EXPECT_FALSE(metricValue(registry, "poolguard_usage_up", pg)) << "no policy checks db:5432 any more";
  metrics.forget("ns1", "billing");
  EXPECT_FALSE(metricValue(registry, "poolguard_usage_up", {{"source", "postgres"}}));
}

TEST(Checker, ASourceItCannotReadIsDown) {
  prometheus::Registry registry;
  ManualClock clock;
  Checker checker(clock, &registry);
  auto policy = makePolicy();
  policy.spec.usage.postgres = policy::PostgresSource{};
  policy.spec.usage.postgres->host = "db.example";
  policy.spec.usage.postgres->port = 5433;
  policy.spec.usage.postgres->database = "orders";
  checker.check(policy, {workload("app")}, std::nullopt);
  EXPECT_EQ(metricValue(registry, "poolguard_usage_up", {{"source", "postgres"}, {"target", "db.example:5433/orders"}}),
            0.0)
      << "no credentials: the source could not be read";
}

TEST(Checker, PrometheusClientsGoWithTheLastPolicyThatUsesThem) {
  ManualClock clock;
  CheckerOptions options;
  options.prometheusTimeout = 500ms;
  options.prometheusAllowedUrlPrefixes = {"http://127.0.0.1:1"};
  Checker checker(clock, nullptr, options);
  auto withUrl = [](const std::string& name, const std::string& url) {
    auto p = makePolicy();
    p.name = name;
    p.spec.usage.prometheus = policy::PrometheusSource{url, "sum(up)", "sum(up)"};
    return p;
  };
  // Nothing listens on port 1: the checks fail, but each still used a client for its URL.
  checker.check(withUrl("a", "http://127.0.0.1:1/a"), {workload("app")}, std::nullopt);
  checker.check(withUrl("b", "http://127.0.0.1:1/b"), {workload("app")}, std::nullopt);
  checker.check(withUrl("c", "http://127.0.0.1:1/b"), {workload("app")}, std::nullopt);
  EXPECT_EQ(checker.openPrometheusClients(), 2u);
  checker.forget("ns1", "a");
  EXPECT_EQ(checker.openPrometheusClients(), 1u);
  checker.forget("ns1", "b");
  EXPECT_EQ(checker.openPrometheusClients(), 1u) << "c still uses /b";
  checker.check(withUrl("c", "http://127.0.0.1:1/c"), {workload("app")}, std::nullopt);
  EXPECT_EQ(checker.openPrometheusClients(), 1u) << "c moved to /c: /b is closed";
  checker.forget("ns1", "c");
  EXPECT_EQ(checker.openPrometheusClients(), 0u);
}

TEST(Checker, OnlyAConnectionPoolPolicyIsHeldToTheAllowedPrometheusPrefixes) {
  ManualClock clock;
  CheckerOptions options;
  options.prometheusTimeout = 500ms;
  Checker checker(clock, nullptr, options);  // no prefix is allowed
  auto withKind = [](const std::string& kind, const std::string& ns, const std::string& name) {
    auto p = makePolicy();
    p.kind = kind;
    p.namespace_ = ns;
    p.name = name;
    p.spec.usage.prometheus = policy::PrometheusSource{"http://127.0.0.1:1/prom", "sum(up)", "sum(up)"};
    return p;
  };
  auto refused = checker.check(withKind("ConnectionPoolPolicy", "ns1", "orders"), {workload("app")}, std::nullopt);
  ASSERT_EQ(refused.errors.size(), 1u);
  EXPECT_EQ(refused.errors[0].reason(), grant_reasons::kPrometheusUrlNotAllowed);
  EXPECT_THAT(refused.errors[0].message(),
              HasSubstr("not allowed: a ConnectionPoolPolicy may query only the Prometheus endpoints the cluster "
                        "admin allows"));
  EXPECT_EQ(checker.openPrometheusClients(), 0u) << "nothing was asked";

  // The cluster-scoped kinds are a cluster admin's own: their endpoint is asked (nothing listens on port 1).
  for (const auto& [kind, name] : {std::pair{"ClusterConnectionPoolPolicy", "baseline"},
                                   std::pair{"ClusterConnectionBudget", "ClusterConnectionBudget:orders-db"}}) {
    auto report = checker.check(withKind(kind, "", name), {workload("app")}, std::nullopt);
    ASSERT_EQ(report.errors.size(), 1u) << kind;
    EXPECT_NE(report.errors[0].reason(), grant_reasons::kPrometheusUrlNotAllowed)
        << kind << ": " << report.errors[0].message();
  }
  EXPECT_EQ(checker.openPrometheusClients(), 1u) << "the cluster-scoped kinds' checks used a client";
}

// A policy whose usage.postgres is `fake`, with terminateLeaked on (olderThan: the 60s threshold), in Enforce.
policy::Policy terminatingPolicy(const testing::FakePostgres& fake) {
  auto p = makePolicy();
  policy::PostgresSource pg;
  pg.host = "127.0.0.1";
  pg.port = fake.port();
  pg.database = "orders";
  pg.sslMode = policy::SslMode::kDisable;
  pg.credentialsSecretRef.name = "pg-monitor";
  p.spec.usage.postgres = pg;
  p.spec.usage.actions.terminateLeaked = policy::TerminateLeaked{true, std::nullopt, 5};
  return p;
}

std::optional<Result<PostgresCredentials>> monitorCredentials() {
  PostgresCredentials credentials;
  credentials.username = "monitor";
  credentials.password = "pw";
  return Result<PostgresCredentials>(credentials);
}

// Two sessions of ns1/leaky idle in transaction for two minutes, past the 60s threshold.
void leakTwoSessions(testing::FakePostgres& fake) {
  fake.setActivity({{"ns1/leaky", "idle in transaction", 2, "120,130"}});
  fake.setIdleSessions({{101, "app", "ns1/leaky", 130}, {102, "app", "ns1/leaky", 120}});
}

bool anyStatementContains(const testing::FakePostgres& fake, const std::string& text) {
  for (const auto& s : fake.statements()) {
    if (s.find(text) != std::string::npos) return true;
  }
  return false;
}

TEST(CheckerTerminateLeaked, EndsNoSessionWhileTheLeadersWriteFenceIsClosed) {
  testing::FakePostgres fake;
  ASSERT_NE(fake.port(), 0);
  leakTwoSessions(fake);
  ManualClock clock;
  Checker checker(clock);
  kube::WriteFence fence(clock);  // closed: this replica is not (or may no longer be) the leader
  CheckContext context{"", [&fence] { return fence.openWindow().has_value(); }};
  const auto policy = terminatingPolicy(fake);

  auto closed = checker.check(policy, {workload("leaky")}, monitorCredentials(), context);
  EXPECT_EQ(closed.result.condition.reason, "LeakSuspected") << "the leak is still named";
  EXPECT_TRUE(fake.terminated().empty());
  EXPECT_FALSE(anyStatementContains(fake, "pg_terminate_backend")) << "not even listed for ending";
  EXPECT_TRUE(closed.result.leakedSessions.empty());
  EXPECT_EQ(closed.result.sessionsEnded, 0);
  EXPECT_THAT(closed.result.condition.message, Not(HasSubstr("ended")));

  // The window passes while the replica still thinks it leads: closed again.
  fence.openUntil(clock.steadyNow() + 10s);
  clock.advance(10s);
  (void)checker.check(policy, {workload("leaky")}, monitorCredentials(), context);
  EXPECT_TRUE(fake.terminated().empty());

  // The leader (fence open) ends them.
  fence.openUntil(clock.steadyNow() + 10s);
  auto open = checker.check(policy, {workload("leaky")}, monitorCredentials(), context);
  EXPECT_EQ(fake.terminated(), (std::vector<int>{101, 102}));
  ASSERT_EQ(open.result.leakedSessions.size(), 2u);
  EXPECT_TRUE(open.result.leakedSessions[0].ended);
  EXPECT_THAT(open.result.condition.message, HasSubstr("poolguard ended 2 sessions"));
}

TEST(CheckerTerminateLeaked, StopsEndingTheMomentTheFenceCloses) {
  testing::FakePostgres fake;
  ASSERT_NE(fake.port(), 0);
  leakTwoSessions(fake);
  ManualClock clock;
  Checker checker(clock);
  int asked = 0;
  // Open for the check's first question and its first session, closed from then on.
  CheckContext context{"", [&asked] { return ++asked <= 2; }};
  auto report = checker.check(terminatingPolicy(fake), {workload("leaky")}, monitorCredentials(), context);
  EXPECT_EQ(fake.terminated(), std::vector<int>{101});
  ASSERT_EQ(report.result.leakedSessions.size(), 1u) << "the session not ended is not reported as ended";
  EXPECT_EQ(report.result.leakedSessions[0].pid, 101);
  EXPECT_THAT(report.result.condition.message, HasSubstr("poolguard ended 1 session"));
  EXPECT_THAT(report.result.condition.message, HasSubstr("this replica may no longer be the leader"));
}

// A workload that reports `applicationName`, with a leaked session of that name on the fake.
GovernedWorkload reporting(const std::string& ns, const std::string& name, const std::string& applicationName) {
  GovernedWorkload w = workload(name);
  w.namespace_ = ns;
  w.applicationName = applicationName;
  return w;
}

TEST(CheckerTerminateLeaked, OthersCredentialsEndOnlyNamesTheWorkloadsNamespaceOwns) {
  testing::FakePostgres fake;
  ASSERT_NE(fake.port(), 0);
  fake.setActivity({{"ns1/leaky", "idle in transaction", 1, "120"}, {"payments/api", "idle in transaction", 1, "120"}});
  fake.setIdleSessions({{101, "app", "ns1/leaky", 120}, {201, "pay", "payments/api", 120}});
  ManualClock clock;
  Checker checker(clock);
  // ns1's policy renders delivery.applicationName "payments/api" (a constant) for its workload web.
  const std::vector<GovernedWorkload> workloads{reporting("ns1", "leaky", "ns1/leaky"),
                                                reporting("ns1", "web", "payments/api")};

  // A ClusterConnectionBudget's check: the operator's credentials, a cluster admin's role.
  auto budget = terminatingPolicy(fake);
  budget.kind = "ClusterConnectionBudget";
  budget.namespace_ = "";
  budget.name = "ClusterConnectionBudget:orders-db";
  auto central = checker.check(budget, workloads, monitorCredentials(), CheckContext{"poolguard-system", nullptr});
  EXPECT_EQ(fake.terminated(), std::vector<int>{101}) << "never the other team's session";
  ASSERT_FALSE(fake.listedNames().empty());
  EXPECT_THAT(fake.listedNames().back(), Not(HasSubstr("payments/api"))) << "not even listed";
  ASSERT_EQ(central.result.leakedSessions.size(), 1u);
  EXPECT_EQ(central.result.leakedSessions[0].workload, "leaky");
  const std::string& message = central.result.condition.message;
  EXPECT_THAT(message, HasSubstr("poolguard ends no leaked session of workload ns1/web (application_name "
                                 "\"payments/api\", not \"ns1/...\")"));
  EXPECT_THAT(message, HasSubstr("include {namespace} in delivery.applicationName"));
  EXPECT_THAT(message, HasSubstr("or give the policy usage.postgres with a Secret of its own namespace"));

  // A ClusterConnectionPoolPolicy's Secrets are the operator's too; its only fix is the template.
  auto cluster = terminatingPolicy(fake);
  cluster.kind = policy::Policy::kClusterPolicyKind;
  cluster.namespace_ = "";
  cluster.name = "baseline";
  auto clusterReport = checker.check(cluster, workloads, monitorCredentials(), CheckContext{"poolguard-system", {}});
  EXPECT_EQ(fake.terminated(), (std::vector<int>{101, 101}));
  EXPECT_THAT(clusterReport.result.condition.message, HasSubstr("include {namespace} in delivery.applicationName"));
  EXPECT_THAT(clusterReport.result.condition.message, Not(HasSubstr("Secret of its own namespace")));

  // A namespaced policy reading a Secret of another namespace is held to the same rule.
  (void)checker.check(terminatingPolicy(fake), workloads, monitorCredentials(), CheckContext{"ops", {}});
  EXPECT_EQ(fake.terminated(), (std::vector<int>{101, 101, 101}));

  // With the credentials of its own namespace the author acts with what they were given: both are ended.
  auto own = checker.check(terminatingPolicy(fake), workloads, monitorCredentials());
  EXPECT_EQ(fake.terminated(), (std::vector<int>{101, 101, 101, 101, 201}));
  EXPECT_THAT(own.result.condition.message, Not(HasSubstr("delivery.applicationName")));
}

TEST(CheckerTerminateLeaked, ANamespaceOwnsTheNamesThatBeginWithItAndASlash) {
  EXPECT_TRUE(ownsApplicationName(reporting("ns1", "web", "ns1/web")));
  EXPECT_TRUE(ownsApplicationName(reporting("ns1", "web", "ns1/anything")));
  EXPECT_FALSE(ownsApplicationName(reporting("ns1", "web", "payments/api")));
  EXPECT_FALSE(ownsApplicationName(reporting("ns1", "web", "ns10/web"))) << "another namespace with the same start";
  EXPECT_FALSE(ownsApplicationName(reporting("ns1", "web", "ns1-web")));
  EXPECT_FALSE(ownsApplicationName(reporting("ns1", "web", "web")));
  EXPECT_FALSE(ownsApplicationName(reporting("", "web", "/web")));
}

TEST(UsageTargets, NameTheServerAndNeverACredential) {
  policy::PostgresSource pg;
  pg.host = "db.example";
  pg.port = 5433;
  pg.database = "orders";
  EXPECT_EQ(postgresTarget(pg), "db.example:5433/orders");
  EXPECT_EQ(prometheusTarget("http://user:secret@prom.example:9090/api?token=x#f"), "http://prom.example:9090/api");
  EXPECT_EQ(prometheusTarget("https://prom:9090"), "https://prom:9090");
  EXPECT_EQ(prometheusTarget("http://prom:9090/a@b"), "http://prom:9090/a@b") << "an @ in the path is not userinfo";
}

}  // namespace
}  // namespace poolguard::usage
