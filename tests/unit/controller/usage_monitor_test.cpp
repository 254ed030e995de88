// Usage checks off the reconcile path: a PostgreSQL server or a Prometheus that never answers holds no reconcile,
// and a policy is enqueued when its findings change, not at every check.
#include "controller/usage_monitor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "../../support/silent_server.h"
#include "../runtime/fake_client.h"
#include "../usage/fake_postgres.h"
#include "controller/cache_shapes.h"
#include "controller/reconciler.h"
#include "kube/fence.h"
#include "policy/parse.h"
#include "usage/grant.h"

namespace poolguard::controller {
namespace {

using namespace std::chrono_literals;
using runtime::testing::FakeClient;

json policyJson(json usage) {
  return {{"apiVersion", "poolguard.dev/v1alpha1"},
          {"kind", "ConnectionPoolPolicy"},
          {"metadata",
           {{"name", "p"},
            {"namespace", "shop"},
            {"uid", "uid-p"},
            {"generation", 1},
            {"creationTimestamp", "2026-01-01T00:00:00Z"}}},
          {"spec",
           {{"selector", {{"matchLabels", {{"app", "web"}}}}},
            {"pool", {{"maxSize", 5}}},
            {"database", {{"name", "orders"}, {"maxConnections", 100}}},
            {"usage", usage}}}};
}

std::string usageCondition(const kube::Object& cached) {
  const json& status = runtime::recordAs<model::PolicyObject>(cached).status;
  for (const auto& c : status.value("conditions", json::array())) {
    if (c.value("type", "") == "UsageHealthy") return c.value("status", "") + "/" + c.value("message", "");
  }
  return "";
}

// A Secret that allows the monitoring credentials to go to 127.0.0.1:port.
void putMonitorSecret(FakeClient& client, int port) {
  client.put(kube::resources::secrets(),
             {{"metadata",
               {{"name", "pg"},
                {"namespace", "shop"},
                {"annotations", {{usage::kAllowedServersAnnotation, "127.0.0.1:" + std::to_string(port)}}}}},
              {"data", {{"username", "bW9uaXRvcg=="}, {"password", "cHc="}}}});
}

json silentUsage(int port) {
  return {{"interval", "5s"},
          {"postgres",
           {{"host", "127.0.0.1"},
            {"port", port},
            {"database", "postgres"},
            {"sslMode", "disable"},
            {"credentialsSecretRef", {{"name", "pg"}}}}}};
}

// What an informer makes of the objects: each decoded into its record.
std::vector<runtime::ObjectPtr> decodeAll(const std::vector<json>& objects, const runtime::Decoder& decode) {
  std::vector<runtime::ObjectPtr> out;
  for (auto o : objects) out.push_back(decode(std::move(o)));
  return out;
}

// A policy whose usage block reads `silent` (which accepts and never answers): its reconciles return at once and
// wait for the first check, which ends on the source's own timeout and enqueues the policy; the next reconcile
// reports it with a UsageHealthy message containing `reported`.
void expectNoReconcileWaitsFor(const poolguard::testing::SilentServer& silent, const json& usageBlock,
                               const usage::CheckerOptions& options, const std::string& reported) {
  FakeClient client;
  putMonitorSecret(client, silent.port());
  client.put(kube::resources::connectionPoolPolicies(), policyJson(usageBlock));
  runtime::Store policies, deployments, statefulSets, hpas, configMaps;
  hpas.addIndex(kScaleTargetIndex, scaleTargetRefIndex());
  client.put(kube::resources::deployments(),
             {{"apiVersion", "apps/v1"},
              {"kind", "Deployment"},
              {"metadata", {{"name", "web"}, {"namespace", "shop"}, {"uid", "uid-web"}, {"labels", {{"app", "web"}}}}},
              {"spec", {{"replicas", 1}, {"template", {{"spec", {{"containers", {{{"name", "app"}}}}}}}}}}});
  auto sync = [&] {
    policies.replace(decodeAll(client.storedOf(kube::resources::connectionPoolPolicies()), policyDecoder()));
    deployments.replace(decodeAll(client.storedOf(kube::resources::deployments()), workloadDecoder()));
  };
  sync();
  usage::Checker checker(SystemClock::instance(), nullptr, options);
  std::atomic<int> changes{0};
  UsageMonitor monitor(checker, client, SystemClock::instance(), [&](const std::string& key) {
    EXPECT_EQ(key, "shop/p");
    ++changes;
  });
  Reconciler reconciler(client, Caches{&policies, &deployments, &statefulSets, &hpas, &configMaps},
                        SystemClock::instance(), nullptr, nullptr, &monitor);

  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(reconciler.reconcile("shop/p").ok());
  sync();
  ASSERT_TRUE(reconciler.reconcile("shop/p").ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s) << "the reconcile waited for the server";
  EXPECT_EQ(usageCondition(*policies.get("shop/p")), "") << "the status waits for the first check";
  EXPECT_EQ(client.count("apply"), 0) << "nothing is decided before the first check ends";

  // The check ends on its own (the source's timeout) and asks for a reconcile, which reports it.
  for (int i = 0; i < 200 && changes == 0; ++i) std::this_thread::sleep_for(50ms);
  ASSERT_EQ(changes.load(), 1);
  sync();
  start = std::chrono::steady_clock::now();
  ASSERT_TRUE(reconciler.reconcile("shop/p").ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s) << "the reconcile waited for the next check";
  sync();
  EXPECT_THAT(usageCondition(*policies.get("shop/p")), ::testing::HasSubstr(reported));
  EXPECT_GE(client.count("apply"), 1) << "once it ended, the settings are applied";
  monitor.stop();
}

TEST(UsageMonitor, AServerThatNeverAnswersHoldsNoReconcile) {
  poolguard::testing::SilentServer silent;
  usage::CheckerOptions options;
  options.postgres.connectTimeout = 2s;
  expectNoReconcileWaitsFor(silent, silentUsage(silent.port()), options, "Unknown/postgres 127.0.0.1:");
}

TEST(UsageMonitor, APrometheusThatNeverAnswersHoldsNoReconcile) {
  poolguard::testing::SilentServer silent;
  const std::string url = "http://127.0.0.1:" + std::to_string(silent.port());
  usage::CheckerOptions options;
  options.prometheusTimeout = 2s;
  options.prometheusAllowedUrlPrefixes = {url};
  expectNoReconcileWaitsFor(silent,
                            {{"interval", "5s"}, {"prometheus", {{"url", url}, {"connectionsQuery", "sum(up)"}}}},
                            options, "Unknown/prometheus");
}

TEST(UsageMonitor, ABudgetWhoseCapacityOnlyTheServerKnowsWaitsForTheFirstCheck) {
  poolguard::testing::SilentServer silent;
  FakeClient client;
  putMonitorSecret(client, silent.port());
  json policy = policyJson(silentUsage(silent.port()));
  policy["spec"]["database"].erase("maxConnections");  // only the server can tell
  client.put(kube::resources::connectionPoolPolicies(), policy);
  client.put(kube::resources::clusterConnectionBudgets(),
             {{"apiVersion", "poolguard.dev/v1alpha1"},
              {"kind", "ClusterConnectionBudget"},
              {"metadata", {{"name", "orders"}, {"uid", "uid-b"}, {"generation", 1}}},
              {"spec", {{"ceilings", {{"maxSize", 4}}}}}});
  runtime::Store policies, deployments, statefulSets, hpas, configMaps, budgets;
  hpas.addIndex(kScaleTargetIndex, scaleTargetRefIndex());
  auto sync = [&] {
    policies.replace(decodeAll(client.storedOf(kube::resources::connectionPoolPolicies()), policyDecoder()));
    budgets.replace(decodeAll(client.storedOf(kube::resources::clusterConnectionBudgets()), budgetDecoder()));
  };
  sync();
  usage::CheckerOptions options;
  options.postgres.connectTimeout = 2s;
  usage::Checker checker(SystemClock::instance(), nullptr, options);
  std::atomic<int> changes{0};
  UsageMonitor monitor(checker, client, SystemClock::instance(), [&](const std::string&) { ++changes; });
  Reconciler reconciler(client, Caches{&policies, &deployments, &statefulSets, &hpas, &configMaps, &budgets},
                        SystemClock::instance(), nullptr, nullptr, &monitor);
  ASSERT_TRUE(reconciler.reconcile("shop/p").ok());
  sync();
  ASSERT_TRUE(reconciler.reconcileBudget("orders").ok());
  EXPECT_EQ(client.count("apply"), 0) << "no MaxConnectionsUnknown status while the first check runs";

  for (int i = 0; i < 200 && changes == 0; ++i) std::this_thread::sleep_for(50ms);
  ASSERT_EQ(changes.load(), 1);
  ASSERT_TRUE(reconciler.reconcile("shop/p").ok());
  sync();
  ASSERT_TRUE(reconciler.reconcileBudget("orders").ok());
  // The check ended without the server's value (it never answered): the budget says it is unknown.
  auto stored = client.stored(kube::resources::clusterConnectionBudgets(), "", "orders");
  ASSERT_TRUE(stored);
  json conditions = stored->value("status", json::object()).value("conditions", json::array());
  ASSERT_FALSE(conditions.empty()) << stored->dump(2);
  EXPECT_EQ(conditions[0].value("reason", ""), "MaxConnectionsUnknown") << stored->dump(2);
  monitor.stop();
}

TEST(UsageMonitor, APolicyIsEnqueuedWhenItsFindingsChangeNotAtEveryCheck) {
  FakeClient client;
  ManualClock clock;
  usage::Checker checker(clock);  // no Prometheus prefix is allowed: every check fails the same way, at once
  std::atomic<int> changes{0};
  UsageMonitor monitor(checker, client, clock, [&](const std::string&) { ++changes; });
  json obj = policyJson(
      {{"interval", "5s"}, {"prometheus", {{"url", "http://prometheus:9090"}, {"connectionsQuery", "sum(up)"}}}});
  auto parsed = policy::fromJson(obj);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  monitor.want(obj, *parsed, {});
  for (int i = 0; i < 100 && changes == 0; ++i) std::this_thread::sleep_for(20ms);
  ASSERT_EQ(changes.load(), 1);
  auto found = monitor.latest("shop/p", "uid-p");
  ASSERT_TRUE(found);
  EXPECT_THAT(found->condition.message, ::testing::HasSubstr("not allowed"));
  EXPECT_FALSE(monitor.latest("shop/p", "another-uid")) << "findings belong to one object";
  const auto firstDue = checker.nextCheckDue(*parsed, clock.steadyNow());
  for (int i = 0; i < 3; ++i) {
    clock.advance(5s);  // another check, with the same outcome
    std::this_thread::sleep_for(400ms);
  }
  EXPECT_GE(checker.nextCheckDue(*parsed, clock.steadyNow()), firstDue + 15s) << "the policy was checked again";
  EXPECT_EQ(changes.load(), 1) << "the same findings must not enqueue the policy again";
  EXPECT_EQ(monitor.targets(), 1u);
  monitor.forget("shop", "p");
  for (int i = 0; i < 50 && monitor.targets() > 0; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(monitor.targets(), 0u) << "a target no policy checks has no thread";
  EXPECT_EQ(monitor.policies(), 0u);
}

TEST(UsageMonitor, EndsNoSessionWhileTheLeadersWriteFenceIsClosed) {
  usage::testing::FakePostgres fake;
  ASSERT_NE(fake.port(), 0);
  fake.setActivity({{"shop/web", "idle in transaction", 1, "120"}});
  fake.setIdleSessions({{101, "app", "shop/web", 120}});
  FakeClient client;
  putMonitorSecret(client, fake.port());
  ManualClock clock;
  usage::Checker checker(clock);
  auto fence = std::make_shared<kube::WriteFence>(clock);  // closed: the lease may have been lost
  std::atomic<int> changes{0};
  UsageMonitor monitor(
      checker, client, clock, [&](const std::string&) { ++changes; }, nullptr, fence);
  json usageBlock = silentUsage(fake.port());
  usageBlock["actions"] = {{"terminateLeaked", {{"enabled", true}}}};
  json obj = policyJson(usageBlock);
  auto parsed = policy::fromJson(obj);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  usage::GovernedWorkload web;
  web.namespace_ = "shop";
  web.name = "web";
  web.applicationName = "shop/web";
  monitor.want(obj, *parsed, {web});
  for (int i = 0; i < 100 && changes == 0; ++i) std::this_thread::sleep_for(20ms);
  ASSERT_EQ(changes.load(), 1);
  auto found = monitor.latest("shop/p", "uid-p");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->condition.reason, "LeakSuspected") << found->condition.message;
  EXPECT_TRUE(found->leakedSessions.empty());
  EXPECT_TRUE(fake.terminated().empty()) << "a replica that may not be the leader ends nothing";

  // Leading again: the next check ends the session.
  fence->openUntil(clock.steadyNow() + 1h);
  clock.advance(5s);
  for (int i = 0; i < 100 && fake.terminated().empty(); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(fake.terminated(), std::vector<int>{101});
  monitor.stop();
}

TEST(UsageMonitor, ABudgetsCheckEndsNoSessionOfANameThePolicysNamespaceDoesNotOwn) {
  // shop's policy has no usage block and renders another team's application_name; the budget's check has the
  // operator's credentials (a cluster admin's role, which may end sessions).
  usage::testing::FakePostgres fake;
  ASSERT_NE(fake.port(), 0);
  fake.setActivity({{"payments/api", "idle in transaction", 1, "120"}});
  fake.setIdleSessions({{201, "pay", "payments/api", 120}});
  FakeClient client;
  putMonitorSecret(client, fake.port());  // in "shop", the operator's namespace here
  json policy = policyJson(json::object());
  policy["spec"].erase("usage");
  policy["spec"]["delivery"] = {{"applicationName", "payments/api"}};
  client.put(kube::resources::connectionPoolPolicies(), policy);
  json budgetUsage = silentUsage(fake.port());
  budgetUsage["thresholds"] = {{"idleInTransaction", "60s"}};
  budgetUsage["actions"] = {{"terminateLeaked", {{"enabled", true}}}};
  client.put(kube::resources::clusterConnectionBudgets(),
             {{"apiVersion", "poolguard.dev/v1alpha1"},
              {"kind", "ClusterConnectionBudget"},
              {"metadata", {{"name", "orders"}, {"uid", "uid-b"}, {"generation", 1}}},
              {"spec", {{"usage", budgetUsage}}}});
  client.put(kube::resources::deployments(),
             {{"apiVersion", "apps/v1"},
              {"kind", "Deployment"},
              {"metadata", {{"name", "web"}, {"namespace", "shop"}, {"uid", "uid-web"}, {"labels", {{"app", "web"}}}}},
              {"spec", {{"replicas", 1}, {"template", {{"spec", {{"containers", {{{"name", "app"}}}}}}}}}}});
  runtime::Store policies, deployments, statefulSets, hpas, configMaps, budgets;
  hpas.addIndex(kScaleTargetIndex, scaleTargetRefIndex());
  auto sync = [&] {
    policies.replace(decodeAll(client.storedOf(kube::resources::connectionPoolPolicies()), policyDecoder()));
    deployments.replace(decodeAll(client.storedOf(kube::resources::deployments()), workloadDecoder()));
    budgets.replace(decodeAll(client.storedOf(kube::resources::clusterConnectionBudgets()), budgetDecoder()));
  };
  sync();
  usage::Checker checker(SystemClock::instance());
  std::atomic<int> changes{0};
  UsageMonitor monitor(checker, client, SystemClock::instance(), [&](const std::string&) { ++changes; });
  Reconciler reconciler(client, Caches{&policies, &deployments, &statefulSets, &hpas, &configMaps, &budgets},
                        SystemClock::instance(), nullptr, nullptr, &monitor);
  reconciler.setOperatorNamespace("shop");
  ASSERT_TRUE(reconciler.reconcile("shop/p").ok());
  sync();
  ASSERT_TRUE(reconciler.reconcileBudget("orders").ok());
  for (int i = 0; i < 200 && changes == 0; ++i) std::this_thread::sleep_for(20ms);
  ASSERT_GE(changes.load(), 1);
  EXPECT_TRUE(fake.terminated().empty()) << "the other team's session is left alone";
  auto central = monitor.latest(budgetUsageKey("orders"), "uid-b");
  ASSERT_TRUE(central);
  EXPECT_EQ(central->condition.reason, "LeakSuspected") << "the leak is named";
  EXPECT_THAT(central->condition.message,
              ::testing::HasSubstr("poolguard ends no leaked session of workload shop/web"));

  // The policy's author reads why in the policy's own status, with the fix.
  sync();
  ASSERT_TRUE(reconciler.reconcile("shop/p").ok());
  sync();
  const std::string usage = usageCondition(*policies.get("shop/p"));
  EXPECT_THAT(usage, ::testing::HasSubstr("False/from the check of ClusterConnectionBudget orders"));
  EXPECT_THAT(usage, ::testing::HasSubstr("poolguard ends no leaked session of workload shop/web (application_name "
                                          "\"payments/api\", not \"shop/...\")"));
  EXPECT_THAT(usage, ::testing::HasSubstr("include {namespace} in delivery.applicationName"));
  monitor.stop();
}

}  // namespace
}  // namespace poolguard::controller
