// The reconciler over a fake API (tests/unit/runtime/fake_client.h) and caches synced from it after each step, as
// the informers would: the paths only end-to-end tests reached before (suspend, hand-over on delete, a delivery
// switch, delete and re-create, Audit, a no-op, a failed cleanup).
#include "controller/reconciler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "../runtime/fake_client.h"
#include "controller/cache_shapes.h"
#include "controller/usage_monitor.h"
#include "render/workload.h"
#include "runtime/controller.h"
#include "runtime/informer.h"
#include "stores.h"

namespace poolguard::controller {
namespace {

using runtime::testing::FakeClient;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

const kube::Resource kPolicies = kube::resources::connectionPoolPolicies();
const kube::Resource kDeployments = kube::resources::deployments();
const kube::Resource kConfigMaps = kube::resources::configMaps();
const kube::Resource kBudgets = kube::resources::clusterConnectionBudgets();
const kube::Resource kClusterPolicies = kube::resources::clusterConnectionPoolPolicies();
const kube::Resource kJobs = kube::resources::jobs();
const kube::Resource kRollouts = kube::resources::rollouts();
const kube::Resource kCrds = kube::resources::customResourceDefinitions();

// Argo Rollouts' Rollout CRD, reduced to what poolguard reads: containers and their env list-maps keyed by name
// (v1.9 and later), or atomic lists (before).
json rolloutCrd(bool merging) {
  json env = {{"type", "array"}, {"items", {{"type", "object"}}}};
  json containers = {{"type", "array"}, {"items", {{"type", "object"}, {"properties", {{"env", env}}}}}};
  if (merging) {
    containers["x-kubernetes-list-type"] = "map";
    containers["x-kubernetes-list-map-keys"] = {"name"};
    containers["items"]["properties"]["env"]["x-kubernetes-list-type"] = "map";
    containers["items"]["properties"]["env"]["x-kubernetes-list-map-keys"] = {"name"};
  }
  json podSpec = {{"type", "object"}, {"properties", {{"containers", containers}}}};
  json schema = {{"type", "object"},
                 {"properties",
                  {{"spec",
                    {{"type", "object"},
                     {"properties", {{"template", {{"type", "object"}, {"properties", {{"spec", podSpec}}}}}}}}}}}};
  return {{"apiVersion", "apiextensions.k8s.io/v1"},
          {"kind", "CustomResourceDefinition"},
          {"metadata", {{"name", "rollouts.argoproj.io"}}},
          {"spec", {{"versions", json::array({{{"name", "v1alpha1"}, {"schema", {{"openAPIV3Schema", schema}}}}})}}}};
}

json budgetJson(const std::string& database, json spec) {
  return {{"apiVersion", "poolguard.dev/v1alpha1"},
          {"kind", "ClusterConnectionBudget"},
          {"metadata", {{"name", database}, {"uid", "uid-budget-" + database}, {"generation", 1}}},
          {"spec", std::move(spec)}};
}

json policyJson(const std::string& name, json spec, int priority = 0) {
  json base = {{"selector", {{"matchLabels", {{"app", "web"}}}}},
               {"containers", {"app"}},
               {"pool", {{"maxSize", 5}}},
               {"database", {{"name", "orders"}, {"maxConnections", 100}}},
               {"priority", priority}};
  base.merge_patch(spec);
  return {{"apiVersion", "poolguard.dev/v1alpha1"},
          {"kind", "ConnectionPoolPolicy"},
          {"metadata",
           {{"name", name},
            {"namespace", "shop"},
            {"uid", "uid-" + name},
            {"generation", 1},
            {"creationTimestamp", "2026-01-01T00:00:00Z"}}},
          {"spec", base}};
}

json clusterPolicyJson(const std::string& name, const std::string& uid, json spec) {
  json base = {{"namespaceSelector", {{"matchLabels", {{"team", "shop"}}}}},
               {"selector", {{"matchLabels", {{"app", "web"}}}}},
               {"containers", {"app"}},
               {"pool", {{"maxSize", 5}}},
               {"database", {{"name", "orders"}, {"maxConnections", 100}}}};
  base.merge_patch(spec);
  return {
      {"apiVersion", "poolguard.dev/v1alpha1"},
      {"kind", "ClusterConnectionPoolPolicy"},
      {"metadata", {{"name", name}, {"uid", uid}, {"generation", 1}, {"creationTimestamp", "2026-01-01T00:00:00Z"}}},
      {"spec", base}};
}

json deploymentJson(const std::string& name, const std::string& app = "web", const std::string& uid = "") {
  return {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata",
       {{"name", name}, {"namespace", "shop"}, {"uid", uid.empty() ? "uid-" + name : uid}, {"labels", {{"app", app}}}}},
      {"spec",
       {{"replicas", 2},
        {"selector", {{"matchLabels", {{"app", app}}}}},
        {"template",
         {{"metadata", {{"labels", {{"app", app}}}}},
          {"spec",
           {{"containers", json::array({{{"name", "app"},
                                         {"image", "example.invalid/app:1"},
                                         {"env", json::array({{{"name", "KEEP_ME"}, {"value", "mine"}}})}}})}}}}}}}};
}

std::string envOf(const json& workload, const std::string& var) {
  for (const auto& c : workload["spec"]["template"]["spec"]["containers"]) {
    for (const auto& e : c.value("env", json::array())) {
      if (e.value("name", "") == var) return e.value("value", "");
    }
  }
  return "";
}

class ReconcilerTest : public ::testing::Test, protected test_support::Stores {
 protected:
  ReconcilerTest() {
    hpas.addIndex(kScaleTargetIndex, scaleTargetRefIndex());
    deployments.addIndex(kClusterPolicyIndex, clusterPolicyIndex());
    statefulSets.addIndex(kClusterPolicyIndex, clusterPolicyIndex());
    // The namespace ClusterConnectionPoolPolicies select.
    client.put(kube::resources::namespaces(),
               {{"apiVersion", "v1"},
                {"kind", "Namespace"},
                {"metadata", {{"name", "shop"}, {"uid", "uid-ns-shop"}, {"labels", {{"team", "shop"}}}}}});
    sync();
  }

  // What the informers would do after the API changed: each object parsed through its kind's FieldFilter and
  // decoded into its record, once per resourceVersion (an informer decodes only what changed).
  std::vector<runtime::ObjectPtr> records(const kube::Resource& r, const std::vector<json>& objects,
                                          const kube::FieldFilter& fields, const runtime::Decoder& decode) {
    std::vector<runtime::ObjectPtr> out;
    for (const auto& o : objects) {
      const json& m = o["metadata"];
      auto [it, fresh] = decoded_.try_emplace(r.key() + "/" + m.value("namespace", "") + "/" + m.value("name", "") +
                                              "@" + m.value("resourceVersion", ""));
      if (fresh) it->second = decode(fields.parse(o.dump()));
      out.push_back(it->second);
    }
    return out;
  }
  void sync() {
    static const kube::FieldFilter whole = wholeObjectFields(), workload = workloadFields(), hpa = hpaFields(),
                                   ns = namespaceFields();
    static const runtime::Decoder policy = policyDecoder(), workloadRecord = workloadDecoder(),
                                  hpaRecord = hpaDecoder(), configMap = configMapDecoder(), budget = budgetDecoder(),
                                  nsRecord = namespaceDecoder();
    const kube::Resource kStatefulSets = kube::resources::statefulSets();
    const kube::Resource kHpas = kube::resources::horizontalPodAutoscalers();
    const kube::Resource kNamespaces = kube::resources::namespaces();
    policies.replace(records(kPolicies, client.storedOf(kPolicies), whole, policy));
    deployments.replace(records(kDeployments, client.storedOf(kDeployments), workload, workloadRecord));
    statefulSets.replace(records(kStatefulSets, client.storedOf(kStatefulSets), workload, workloadRecord));
    hpas.replace(records(kHpas, client.storedOf(kHpas), hpa, hpaRecord));
    std::vector<json> owned;
    for (auto& cm : client.storedOf(kConfigMaps)) {
      if (cm["metadata"].value("labels", json::object()).value(render::kManagedByLabel, "") == render::kManagedByValue)
        owned.push_back(cm);
    }
    configMaps.replace(records(kConfigMaps, owned, whole, configMap));
    budgets.replace(records(kBudgets, client.storedOf(kBudgets), whole, budget));
    namespaces.replace(records(kNamespaces, client.storedOf(kNamespaces), ns, nsRecord));
    clusterPolicies.replace(records(kClusterPolicies, client.storedOf(kClusterPolicies), whole, policy));
    jobs.replace(records(kJobs, client.storedOf(kJobs), workload, workloadRecord));
    rollouts.replace(records(kRollouts, client.storedOf(kRollouts), workload, workloadRecord));
  }
  void put(const kube::Resource& r, json obj) {
    client.put(r, std::move(obj));
    sync();
  }
  Result<ReconcileOutcome> reconcile(const std::string& name) {
    auto r = reconciler.reconcile("shop/" + name);
    sync();
    return r;
  }
  // Reconciles until a pass writes nothing (at most 5 passes).
  void converge(const std::string& name) {
    for (int i = 0; i < 5; ++i) {
      int before = writes();
      ASSERT_TRUE(reconcile(name).ok());
      if (writes() == before) return;
    }
    FAIL() << "no convergence in 5 passes: " << ::testing::PrintToString(client.calls());
  }
  int writes() const {
    int n = 0;
    for (const char* verb : {"create", "update", "patch", "apply", "remove"}) n += client.count(verb);
    return n;
  }
  json stored(const kube::Resource& r, const std::string& name) {
    return client.stored(r, "shop", name).value_or(json());
  }
  json status(const std::string& policy) { return stored(kPolicies, policy).value("status", json::object()); }
  std::string conditionReason(const std::string& policy, const std::string& type) {
    for (const auto& c : status(policy).value("conditions", json::array())) {
      if (c.value("type", "") == type) return c.value("status", "") + "/" + c.value("reason", "");
    }
    return "";
  }
  std::vector<std::string> callsSince(size_t from) const {
    auto all = client.calls();
    return {all.begin() + static_cast<std::ptrdiff_t>(std::min(from, all.size())), all.end()};
  }

  std::map<std::string, runtime::ObjectPtr> decoded_;  // by kind, namespace, name and resourceVersion
  FakeClient client;
  ManualClock clock;
  Reconciler reconciler{client, caches(), clock, nullptr, nullptr, nullptr};
};

TEST_F(ReconcilerTest, AppliesOnceThenANoOpReconcileWritesNothing) {
  put(kDeployments, deploymentJson("web"));
  put(kPolicies, policyJson("p", json::object()));
  converge("p");
  EXPECT_EQ(envOf(stored(kDeployments, "web"), "POOL_MAX_SIZE"), "5");
  EXPECT_EQ(conditionReason("p", "Applied"), "True/AllApplied");
  EXPECT_EQ(conditionReason("p", "Ready"), "True/Ready");
  const int before = writes();
  ASSERT_TRUE(reconcile("p").ok());
  ASSERT_TRUE(reconcile("p").ok());
  EXPECT_EQ(writes(), before) << ::testing::PrintToString(client.calls());
}

json condition(const json& status, const std::string& type) {
  for (const auto& c : status.value("conditions", json::array())) {
    if (c.value("type", "") == type) return c;
  }
  return json::object();
}

TEST_F(ReconcilerTest, ABudgetsStatusCountsItsPoliciesAndABudgetNoPolicyNamesIsReady) {
  put(kBudgets, budgetJson("billing", {{"maxConnections", 100}, {"reservedConnections", 10}}));
  ASSERT_TRUE(reconciler.reconcileBudget("billing").ok());
  // Enqueued again before the cache shows the write (several policy reconciles do that): nothing to write.
  const int afterFirst = writes();
  ASSERT_TRUE(reconciler.reconcileBudget("billing").ok());
  EXPECT_EQ(writes(), afterFirst) << "the status was written again from a stale cache";
  sync();
  json st = client.stored(kBudgets, "", "billing").value_or(json::object()).value("status", json::object());
  EXPECT_EQ(st.value("available", -1), 90) << st.dump(2);
  EXPECT_EQ(st.value("worstCase", -1), 0);
  EXPECT_EQ(st.value("policies", -1), 0);
  ASSERT_EQ(st["conditions"].size(), 3u) << st.dump(2);
  EXPECT_EQ(condition(st, "Ready").value("status", ""), "True") << "Ready with nothing to count";
  EXPECT_EQ(condition(st, "UsageHealthy").value("reason", ""), "NotConfigured") << st.dump(2);
  EXPECT_EQ(st["topWorkloads"], json::array());

  // The budget of the policies' database: their totals, within its ceiling; unchanged totals write nothing.
  put(kDeployments, deploymentJson("web"));
  put(kPolicies, policyJson("p", {{"pool", {{"maxSize", 50}}}}));
  put(kBudgets, budgetJson("orders", {{"maxConnections", 40}, {"ceilings", {{"maxSize", 6}}}}));
  converge("p");
  EXPECT_EQ(envOf(stored(kDeployments, "web"), "POOL_MAX_SIZE"), "6");
  EXPECT_EQ(conditionReason("p", "WithinBudget"), "True/Capped");
  ASSERT_TRUE(reconciler.reconcileBudget("orders").ok());
  sync();
  st = client.stored(kBudgets, "", "orders").value_or(json::object()).value("status", json::object());
  EXPECT_EQ(st.value("worstCase", -1), (2 + 1) * 6) << st.dump(2);
  EXPECT_EQ(st.value("policies", -1), 1);
  EXPECT_EQ(st.value("available", -1), 37);
  ASSERT_EQ(st["topWorkloads"].size(), 1u) << st.dump(2);
  EXPECT_EQ(
      st["topWorkloads"][0],
      json({{"kind", "Deployment"}, {"namespace", "shop"}, {"name", "web"}, {"policy", "shop/p"}, {"worstCase", 18}}));
  const int before = writes();
  ASSERT_TRUE(reconciler.reconcileBudget("orders").ok());
  EXPECT_EQ(writes(), before) << "the same totals: no status write";
}

TEST_F(ReconcilerTest, AuditReportsDriftAndNeverWritesAWorkload) {
  put(kDeployments, deploymentJson("web"));
  put(kPolicies, policyJson("p", {{"mode", "Audit"}}));
  converge("p");
  for (const auto& call : client.calls()) EXPECT_THAT(call, Not(HasSubstr("deployments"))) << "Audit wrote";
  EXPECT_EQ(envOf(stored(kDeployments, "web"), "POOL_MAX_SIZE"), "");
  EXPECT_EQ(status("p")["workloads"].value("drifted", 0), 1) << status("p").dump(2);
}

TEST_F(ReconcilerTest, ASuspendedPolicyWritesNothing) {
  put(kDeployments, deploymentJson("web"));
  put(kPolicies, policyJson("p", {{"suspend", true}}));
  const size_t from = client.calls().size();
  ASSERT_TRUE(reconcile("p").ok());
  for (const auto& call : callsSince(from)) {
    EXPECT_THAT(call, Not(HasSubstr("deployments"))) << "suspended, yet wrote";
    EXPECT_THAT(call, Not(HasSubstr("configmaps")));
  }
  EXPECT_EQ(envOf(stored(kDeployments, "web"), "POOL_MAX_SIZE"), "");
}

TEST_F(ReconcilerTest, DeletingAPolicyHandsItsWorkloadToTheNextAndReleasesTheRest) {
  put(kDeployments, deploymentJson("web"));
  json other = deploymentJson("api", "web");
  other["metadata"]["labels"]["tier"] = "edge";
  put(kDeployments, other);
  // "first" (priority 10) governs both; "second" selects only the one labelled tier=edge.
  put(kPolicies, policyJson("first", {{"priority", 10}, {"delivery", {{"method", "ConfigMap"}}}}));
  put(kPolicies, policyJson("second", {{"selector", {{"matchLabels", {{"tier", "edge"}}}}}}));
  converge("first");
  converge("second");
  ASSERT_TRUE(client.stored(kConfigMaps, "shop", "web-deploy-poolguard"));
  ASSERT_TRUE(client.stored(kConfigMaps, "shop", "api-deploy-poolguard"));

  json deleting = stored(kPolicies, "first");
  deleting["metadata"]["deletionTimestamp"] = "2026-01-02T00:00:00Z";
  put(kPolicies, deleting);
  const size_t from = client.calls().size();
  auto outcome = reconcile("first");
  ASSERT_TRUE(outcome.ok()) << outcome.error().message();
  auto calls = callsSince(from);
  EXPECT_THAT(calls, Contains("apply deployments.apps/shop/web")) << "web has no other policy: released";
  EXPECT_THAT(calls, Not(Contains("apply deployments.apps/shop/api"))) << "api is handed over, not released";
  EXPECT_THAT(outcome->alsoEnqueue, Contains("shop/second"));
  EXPECT_FALSE(client.stored(kConfigMaps, "shop", "web-deploy-poolguard")) << "the released one's ConfigMap goes";
  EXPECT_TRUE(client.stored(kConfigMaps, "shop", "api-deploy-poolguard")) << "the handed-over one's stays";
  EXPECT_EQ(stored(kPolicies, "first")["metadata"].value("finalizers", json::array()).size(), 0u);
}

// A Job's pod template cannot change: it is compared and reported, and never written, neither while the policy
// governs it nor when the policy goes (even when its manifest carries the policy's annotation, as render prints it).
TEST_F(ReconcilerTest, AJobIsReportedAndNeverWrittenNorReleased) {
  json job = deploymentJson("migrate");
  job["apiVersion"] = "batch/v1";
  job["kind"] = "Job";
  job["spec"].erase("replicas");
  job["spec"]["parallelism"] = 2;
  job["metadata"]["annotations"] = {{"poolguard.dev/policy", "p"}};
  put(kJobs, job);
  put(kPolicies, policyJson("p", {{"kinds", {"Job"}}}));
  ASSERT_TRUE(reconcile("p").ok());
  EXPECT_EQ(client.count("apply"), 1) << "only the policy's status: " << ::testing::PrintToString(client.calls());
  EXPECT_EQ(conditionReason("p", "Applied"), "False/ApplyFailed");
  EXPECT_EQ(status("p")["budget"].value("policyWorstCase", -1), 2 * 5);

  json deleting = stored(kPolicies, "p");
  deleting["metadata"]["deletionTimestamp"] = "2026-01-02T00:00:00Z";
  put(kPolicies, deleting);
  const size_t from = client.calls().size();
  ASSERT_TRUE(reconcile("p").ok());
  for (const auto& call : callsSince(from)) EXPECT_EQ(call.find("jobs.batch"), std::string::npos) << call;
  EXPECT_EQ(stored(kPolicies, "p")["metadata"].value("finalizers", json::array()).size(), 0u);
}

// A Rollout is written only while its CRD merges containers by name, and the CRD is read again right before a write:
// a rollback to an atomic schema while poolguard runs stops the next write at once, and the reconciles after it
// (a minute on) report it; the CRD upgraded again, the Rollout is written.
TEST_F(ReconcilerTest, ARolloutIsWrittenOnlyWhileItsCrdMergesContainersReadAgainBeforeEachWrite) {
  client.put(kCrds, rolloutCrd(true));
  reconciler.watchRolloutCrd(rolloutCrdProblem(client));
  json rollout = deploymentJson("web");
  rollout["apiVersion"] = "argoproj.io/v1alpha1";
  rollout["kind"] = "Rollout";
  put(kRollouts, rollout);
  put(kPolicies, policyJson("p", {{"kinds", {"Rollout"}}}));
  converge("p");
  EXPECT_EQ(envOf(stored(kRollouts, "web"), "POOL_MAX_SIZE"), "5");
  EXPECT_EQ(conditionReason("p", "Applied"), "True/AllApplied");

  // Rolled back to an atomic schema, unseen by the last (throttled) read: the write is stopped by the fresh one, and
  // the reconcile fails (it is retried, and the retry's plan knows).
  client.put(kCrds, rolloutCrd(false));
  put(kPolicies, policyJson("p", {{"kinds", {"Rollout"}}, {"pool", {{"maxSize", 6}}}}));
  size_t from = client.calls().size();
  EXPECT_FALSE(reconcile("p").ok());
  for (const auto& call : callsSince(from)) EXPECT_EQ(call.find("apply rollouts"), std::string::npos) << call;
  EXPECT_EQ(envOf(stored(kRollouts, "web"), "POOL_MAX_SIZE"), "5");
  EXPECT_EQ(conditionReason("p", "Applied"), "False/ApplyFailed");
  EXPECT_NE(status("p")["workloadStatuses"][0].value("message", "").find("atomic list"), std::string::npos)
      << status("p").dump(2);

  // The retry's plan knows, and so does every plan a minute on: nothing written, nothing failing.
  clock.advance(std::chrono::seconds(61));
  from = client.calls().size();
  ASSERT_TRUE(reconcile("p").ok());
  for (const auto& call : callsSince(from)) EXPECT_EQ(call.find("apply rollouts"), std::string::npos) << call;
  EXPECT_EQ(conditionReason("p", "Applied"), "False/ApplyFailed");

  // Upgraded again: the next reconcile a minute on writes the settings.
  client.put(kCrds, rolloutCrd(true));
  clock.advance(std::chrono::seconds(61));
  converge("p");
  EXPECT_EQ(envOf(stored(kRollouts, "web"), "POOL_MAX_SIZE"), "6");
  EXPECT_EQ(conditionReason("p", "Applied"), "True/AllApplied");
}

TEST_F(ReconcilerTest, ABadRequestDuringFinalizeIsRetriedUntilTheFinalizerIsRemoved) {
  put(kDeployments, deploymentJson("web"));
  put(kPolicies, policyJson("p", json::object()));
  converge("p");
  ASSERT_EQ(envOf(stored(kDeployments, "web"), "POOL_MAX_SIZE"), "5");
  json deleting = stored(kPolicies, "p");
  deleting["metadata"]["deletionTimestamp"] = "2026-01-02T00:00:00Z";
  put(kPolicies, deleting);

  // The reconciler as the operator runs it: a controller over its queue, with the fixture's clock.
  runtime::ControllerOptions options;
  options.name = "finalize-bad-request";
  options.workers = 1;
  options.clock = &clock;
  options.clockPoll = std::chrono::milliseconds(1);
  options.rateLimiter =
      std::make_shared<runtime::ItemExponentialRateLimiter>(std::chrono::milliseconds(5), std::chrono::seconds(1));
  runtime::Controller controller(options, [&](const std::string& key) -> Result<runtime::ReconcileResult> {
    auto r = reconciler.reconcile(key);
    sync();
    if (!r.ok()) return r.error();
    return runtime::ReconcileResult{};
  });
  auto finalizers = [&] { return stored(kPolicies, "p")["metadata"].value("finalizers", json::array()); };
  const Error badRequest = Error(ErrorCode::kInvalidArgument, "the server rejected our request").withHttpStatus(400);

  // Releasing the workload gets a 400; then removing the finalizer does.
  const size_t from = client.calls().size();
  client.failNext("apply", badRequest);
  controller.queue().add("shop/p");
  for (const char* failing : {"releasing the workload", "removing the finalizer"}) {
    if (std::string(failing) == "removing the finalizer") client.failNext("patch", badRequest);
    ASSERT_TRUE(controller.processNextWorkItem());
    EXPECT_EQ(finalizers().size(), 1u) << failing;
    // Retried with back-off, not dropped as terminal.
    ASSERT_EQ(controller.queue().delayedLen() + controller.queue().len(), 1u) << failing << ": dropped, not retried";
    clock.advance(std::chrono::seconds(1));
  }
  ASSERT_TRUE(controller.processNextWorkItem());
  EXPECT_EQ(finalizers().size(), 0u) << "the policy would stay Terminating";
  const auto calls = callsSince(from);
  EXPECT_GE(std::count(calls.begin(), calls.end(), "apply deployments.apps/shop/web"), 2)
      << "the release that failed was made again";
  EXPECT_EQ(controller.queue().numRequeues("shop/p"), 0) << "a success resets the back-off";
}

TEST_F(ReconcilerTest, SwitchingDeliveryFromConfigMapToEnvDeletesTheConfigMap) {
  put(kDeployments, deploymentJson("web"));
  put(kPolicies, policyJson("p", {{"delivery", {{"method", "ConfigMap"}}}}));
  converge("p");
  ASSERT_TRUE(client.stored(kConfigMaps, "shop", "web-deploy-poolguard"));
  json env = stored(kPolicies, "p");
  env["spec"]["delivery"]["method"] = "Env";
  env["metadata"]["generation"] = 2;
  put(kPolicies, env);
  converge("p");
  EXPECT_EQ(envOf(stored(kDeployments, "web"), "POOL_MAX_SIZE"), "5");
  EXPECT_FALSE(client.stored(kConfigMaps, "shop", "web-deploy-poolguard"))
      << "the ConfigMap of the old delivery must go";
}

TEST_F(ReconcilerTest, ADeletedAndRecreatedWorkloadIsWrittenAgain) {
  put(kDeployments, deploymentJson("web", "web", "uid-1"));
  put(kPolicies, policyJson("p", json::object()));
  converge("p");
  ASSERT_EQ(envOf(stored(kDeployments, "web"), "POOL_MAX_SIZE"), "5");
  ASSERT_TRUE(client.remove(kDeployments, "shop", "web").ok());
  sync();
  ASSERT_TRUE(reconcile("p").ok());
  put(kDeployments, deploymentJson("web", "web", "uid-2"));  // same name, a new object without the settings
  converge("p");
  EXPECT_EQ(envOf(stored(kDeployments, "web"), "POOL_MAX_SIZE"), "5");
}

TEST_F(ReconcilerTest, AFailedReleaseStillWritesTheComputedStatusAndIsRetried) {
  put(kDeployments, deploymentJson("web"));
  put(kDeployments, deploymentJson("api"));
  put(kPolicies, policyJson("p", json::object()));
  converge("p");
  ASSERT_EQ(status("p")["workloads"].value("matched", 0), 2);
  // api leaves the selector; releasing it fails once.
  json moved = stored(kDeployments, "api");
  moved["metadata"]["labels"]["app"] = "elsewhere";
  put(kDeployments, moved);
  client.failNext("apply", Error(ErrorCode::kUnavailable, "connection reset"));
  auto failed = reconcile("p");
  EXPECT_FALSE(failed.ok()) << "a failed release is retried";
  EXPECT_EQ(status("p")["workloads"].value("matched", 0), 1) << "the status is written all the same";
  ASSERT_TRUE(reconcile("p").ok());
  EXPECT_THAT(client.calls(), Contains("apply deployments.apps/shop/api"));
}

TEST_F(ReconcilerTest, APolicyCreatedAgainUnderItsNameGetsItsOwnStatus) {
  put(kDeployments, deploymentJson("web"));
  put(kPolicies, policyJson("p", json::object()));
  converge("p");
  ASSERT_FALSE(status("p").empty());
  // Deleted and created again before the operator saw the deletion: a new uid, no status yet.
  json again = policyJson("p", json::object());
  again["metadata"]["uid"] = "uid-p-2";
  ASSERT_TRUE(client.remove(kPolicies, "shop", "p").ok());
  put(kPolicies, again);
  ASSERT_TRUE(reconcile("p").ok());
  EXPECT_EQ(status("p").value("observedGeneration", 0), 1)
      << "the status written for the old object must not stand in for the new one's";
}

std::string describe(const Reconciler::StateSizes& s) {
  return "writes " + std::to_string(s.writes) + ", statuses " + std::to_string(s.statuses) + ", budget statuses " +
         std::to_string(s.budgetStatuses) + ", admission " + std::to_string(s.admission) + ", usage " +
         std::to_string(s.usage);
}

TEST_F(ReconcilerTest, ChurnOf5000ObjectsLeavesItsMemoryAtTheStartingSize) {
  using namespace std::chrono_literals;
  // The reconciler as the operator runs it, with a usage monitor. The usage blocks name a Secret that does not
  // exist: each check ends at once and reports that, which are findings all the same.
  usage::Checker checker(clock);
  UsageMonitor monitor(checker, client, clock, [](const std::string&) {});
  Reconciler operated(client, caches(), clock, nullptr, nullptr, &monitor);
  const json usageBlock = {{"interval", "30s"},
                           {"postgres",
                            {{"host", "127.0.0.1"},
                             {"port", 5432},
                             {"database", "postgres"},
                             {"sslMode", "disable"},
                             {"credentialsSecretRef", {{"name", "pg"}}}}}};
  // Waits for the end of the first check of `key` (the object with `uid`), when the monitor would enqueue it.
  auto checked = [&](const std::string& key, const std::string& uid) {
    for (int i = 0; i < 10000 && !monitor.latest(key, uid); ++i) std::this_thread::sleep_for(1ms);
    return monitor.latest(key, uid).has_value();
  };
  // A policy's reconcile, then the one of its database's budget, which every policy reconcile enqueues.
  auto reconcilePolicy = [&](const std::string& key) {
    ASSERT_TRUE(operated.reconcile(key).ok()) << key;
    sync();
    const std::string db = operated.databaseOf(key);
    if (!db.empty()) {
      ASSERT_TRUE(operated.reconcileBudget(db).ok()) << db;
    }
    sync();
  };
  // Marks a policy deleted (a finalizer holds it) and reconciles it, then lets the API server remove it; the delete
  // event reconciles the policy and its database's budget.
  auto deletePolicy = [&](const kube::Resource& kind, const std::string& ns, const std::string& name,
                          const std::string& key, const std::string& db) {
    json deleting = client.stored(kind, ns, name).value();
    deleting["metadata"]["deletionTimestamp"] = "2026-01-02T00:00:00Z";
    put(kind, deleting);
    ASSERT_NO_FATAL_FAILURE(reconcilePolicy(key));
    ASSERT_TRUE(client.remove(kind, ns, name).ok());
    sync();
    ASSERT_TRUE(operated.reconcile(key).ok());
    ASSERT_TRUE(operated.reconcileBudget(db).ok());
    sync();
  };
  const char* const admissionModes[] = {"None", "Warn", "Deny"};
  const auto start = operated.stateSizes();
  Reconciler::StateSizes most;
  for (int i = 0; i < 2500; ++i) {
    const std::string n = std::to_string(i);
    const std::string db = "db-" + n;
    // Each round is one workload and one policy (a namespaced one, or a cluster policy every other round), with a
    // usage block in half of the rounds, and a ClusterConnectionBudget for a round in five (with a usage block in
    // half of them, each admission.mode in turn); the other databases have no budget. The order of the deletions
    // varies.
    const bool cluster = i % 2 == 1;
    const int order = (i / 2) % 3;  // 0: the workload goes first; 1: the policy; 2: both before the finalizer runs
    const bool checks = (i / 2) % 2 == 0;
    json spec = {{"database", {{"name", db}}}};
    if (checks) spec["usage"] = usageBlock;
    client.put(kDeployments, deploymentJson("web-" + n, "web", "uid-web-" + n));
    std::string key, uid;
    if (cluster) {
      key = "cp-" + n;
      uid = "uid-cp-" + n;
      put(kClusterPolicies, clusterPolicyJson(key, uid, spec));
    } else {
      json p = policyJson("p-" + n, spec);
      uid = "uid-p-" + n;
      p["metadata"]["uid"] = uid;
      put(kPolicies, p);
      key = "shop/p-" + n;
    }
    ASSERT_NO_FATAL_FAILURE(reconcilePolicy(key));
    if (checks) {
      // Nothing is decided before the policy's first check ends, and then the monitor enqueues it.
      ASSERT_TRUE(checked(key, uid)) << key;
      ASSERT_NO_FATAL_FAILURE(reconcilePolicy(key));
    }
    ASSERT_EQ(envOf(stored(kDeployments, "web-" + n), "POOL_MAX_SIZE"), "5") << key;
    const bool budget = i % 5 == 0;
    if (budget) {
      json budgetSpec = {{"maxConnections", 100}, {"admission", {{"mode", admissionModes[(i / 5) % 3]}}}};
      if ((i / 5) % 2 == 0) budgetSpec["usage"] = usageBlock;
      put(kBudgets, budgetJson(db, budgetSpec));
      ASSERT_TRUE(operated.reconcileBudget(db).ok());
      sync();
      if (budgetSpec.contains("usage")) {
        ASSERT_TRUE(checked(budgetUsageKey(db), "uid-budget-" + db)) << db;
        ASSERT_TRUE(operated.reconcileBudget(db).ok());
        sync();
      }
    }
    const auto sizes = operated.stateSizes();
    most.writes = std::max(most.writes, sizes.writes);
    most.statuses = std::max(most.statuses, sizes.statuses);
    most.budgetStatuses = std::max(most.budgetStatuses, sizes.budgetStatuses);
    most.admission = std::max(most.admission, sizes.admission);
    most.usage = std::max(most.usage, sizes.usage);

    const kube::Resource& kind = cluster ? kClusterPolicies : kPolicies;
    const std::string policyNs = cluster ? "" : "shop";
    const std::string policyName = cluster ? "cp-" + n : "p-" + n;
    if (order == 0) {
      // The workload goes; the event reconciles its policy, which is deleted later.
      ASSERT_TRUE(client.remove(kDeployments, "shop", "web-" + n).ok());
      sync();
      ASSERT_NO_FATAL_FAILURE(reconcilePolicy(key));
      ASSERT_NO_FATAL_FAILURE(deletePolicy(kind, policyNs, policyName, key, db));
    } else if (order == 1) {
      // The policy goes first and gives the workload its settings back; the workload goes later, in a namespace no
      // policy reconciles any more.
      ASSERT_NO_FATAL_FAILURE(deletePolicy(kind, policyNs, policyName, key, db));
      ASSERT_EQ(operated.stateSizes().writes, start.writes) << key << ": its release forgets the workload";
      ASSERT_TRUE(client.remove(kDeployments, "shop", "web-" + n).ok());
      sync();
    } else {
      // Both go at once (their namespace is deleted, say): the finalizer no longer sees the workload.
      ASSERT_TRUE(client.remove(kDeployments, "shop", "web-" + n).ok());
      sync();
      ASSERT_NO_FATAL_FAILURE(deletePolicy(kind, policyNs, policyName, key, db));
    }
    if (budget) {
      ASSERT_TRUE(client.remove(kBudgets, "", db).ok());
      sync();
      ASSERT_TRUE(operated.reconcileBudget(db).ok());
    }
  }
  EXPECT_GT(most.writes, start.writes) << "the memory never held anything: the test would prove nothing";
  EXPECT_GT(most.statuses, start.statuses);
  EXPECT_GT(most.budgetStatuses, start.budgetStatuses);
  EXPECT_GT(most.admission, start.admission);
  EXPECT_GT(most.usage, start.usage);
  // A target's thread leaves once nothing is checked there.
  for (int i = 0; i < 1000 && monitor.targets() > 0; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(monitor.targets(), 0u);
  EXPECT_EQ(describe(operated.stateSizes()), describe(start));
  EXPECT_EQ(policies.size(), 0u);
  EXPECT_EQ(clusterPolicies.size(), 0u);
  EXPECT_EQ(deployments.size(), 0u);
  EXPECT_EQ(budgets.size(), 0u);
}

TEST_F(ReconcilerTest, AnotherManagerUndoingTheSettingsIsBackedOffNotFought) {
  put(kDeployments, deploymentJson("web"));
  put(kPolicies, policyJson("p", json::object()));
  converge("p");
  auto undo = [&] {  // another manager sets its own value over poolguard's
    json w = stored(kDeployments, "web");
    for (auto& c : w["spec"]["template"]["spec"]["containers"]) {
      for (auto& e : c["env"]) {
        if (e["name"] == "POOL_MAX_SIZE") e["value"] = "77";
      }
    }
    put(kDeployments, w);
  };
  auto workloadApplies = [&] {
    int n = 0;
    for (const auto& c : client.calls()) n += c == "apply deployments.apps/shop/web";
    return n;
  };
  const int before = workloadApplies();
  std::optional<std::chrono::milliseconds> requeue;
  for (int i = 0; i < 10; ++i) {
    undo();
    auto r = reconcile("p");
    ASSERT_TRUE(r.ok()) << r.error().message();
    requeue = r->requeueAfter;
  }
  // Five corrections within the minute are answered; the sixth starts a pause of a minute.
  EXPECT_EQ(workloadApplies() - before, 5);
  EXPECT_EQ(envOf(stored(kDeployments, "web"), "POOL_MAX_SIZE"), "77");
  ASSERT_TRUE(requeue);
  EXPECT_GT(*requeue, std::chrono::seconds(50));
  EXPECT_EQ(conditionReason("p", "Applied").substr(0, 6), "False/");
  EXPECT_THAT(status("p")["workloadStatuses"].dump() + status("p").dump(), HasSubstr("keeps changing"));
  // After the pause the settings are restored.
  clock.advance(std::chrono::seconds(61));
  ASSERT_TRUE(reconcile("p").ok());
  EXPECT_EQ(envOf(stored(kDeployments, "web"), "POOL_MAX_SIZE"), "5");
}

TEST_F(ReconcilerTest, ABudgetInDenyKeepsItsAdmissionObjectsWritesThemOnlyWhenTheyChangeAndNoneRemovesThem) {
  const kube::Resource vap{"admissionregistration.k8s.io", "v1", "validatingadmissionpolicies",
                           "ValidatingAdmissionPolicy", false};
  const kube::Resource binding{"admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings",
                               "ValidatingAdmissionPolicyBinding", false};
  const kube::Resource allotments{"poolguard.dev", "v1alpha1", "connectionallotments", "ConnectionAllotment", false};
  auto object = [&](const kube::Resource& r) { return client.stored(r, "", "poolguard-budget-orders"); };
  put(kDeployments, deploymentJson("web"));
  put(kPolicies, policyJson("p", json::object()));
  put(kBudgets, budgetJson("orders", {{"maxConnections", 43}, {"admission", {{"mode", "Deny"}}}}));
  converge("p");
  ASSERT_TRUE(reconciler.reconcileBudget("orders").ok());
  sync();
  ASSERT_TRUE(object(vap) && object(binding) && object(allotments)) << ::testing::PrintToString(client.calls());
  EXPECT_EQ((*object(binding))["spec"]["validationActions"], json::array({"Deny"}));
  // web: 2 pods + 1 surge at 5 = 15 of 40: the room (25) is all web's, in whole pods with their surge.
  json a = (*object(allotments))["spec"]["allotments"]["deployments_shop_web"];
  EXPECT_EQ(a.value("maxPods", -1), 6) << a.dump() << ": (6 + 2) x 5 = 40";
  json st = client.stored(kBudgets, "", "orders").value_or(json::object())["status"];
  EXPECT_EQ(st["admission"].value("allotments", -1), 1) << st.dump(2);
  EXPECT_EQ(st["admission"].value("mode", ""), "Deny");

  // Nothing changed: nothing written.
  int before = writes();
  ASSERT_TRUE(reconciler.reconcileBudget("orders").ok());
  EXPECT_EQ(writes(), before) << ::testing::PrintToString(callsSince(static_cast<size_t>(before)));

  // The figures change: only the allotments are written again.
  const size_t from = client.calls().size();
  json scaled = stored(kDeployments, "web");
  scaled["spec"]["replicas"] = 3;
  put(kDeployments, scaled);
  converge("p");
  ASSERT_TRUE(reconciler.reconcileBudget("orders").ok());
  std::vector<std::string> admissionWrites;
  for (const auto& c : callsSince(from)) {
    if (c.find("admissionregistration") != std::string::npos || c.find("connectionallotments") != std::string::npos)
      admissionWrites.push_back(c);
  }
  ASSERT_EQ(admissionWrites.size(), 1u) << ::testing::PrintToString(admissionWrites);
  EXPECT_NE(admissionWrites[0].find("connectionallotments"), std::string::npos);

  // None removes all three.
  put(kBudgets, budgetJson("orders", {{"maxConnections", 43}, {"admission", {{"mode", "None"}}}}));
  ASSERT_TRUE(reconciler.reconcileBudget("orders").ok());
  EXPECT_FALSE(object(vap) || object(binding) || object(allotments));
  sync();
  st = client.stored(kBudgets, "", "orders").value_or(json::object())["status"];
  EXPECT_FALSE(st.contains("admission")) << st.dump(2);
  before = writes();
  ASSERT_TRUE(reconciler.reconcileBudget("orders").ok());
  EXPECT_EQ(writes(), before) << "removed once, not at every reconcile";

  // A database with no budget at all that a policy names (every change of the policy reconciles the database's
  // name): the deletes of a start go once.
  put(kPolicies,
      policyJson("q", {{"selector", {{"matchLabels", {{"app", "other"}}}}}, {"database", {{"name", "no-budget"}}}}));
  const size_t remembered = reconciler.stateSizes().admission;
  ASSERT_TRUE(reconciler.reconcileBudget("no-budget").ok());
  before = writes();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(reconciler.reconcileBudget("no-budget").ok());
  EXPECT_EQ(writes(), before) << ::testing::PrintToString(callsSince(static_cast<size_t>(before)));
  EXPECT_EQ(reconciler.stateSizes().admission, remembered + 1);
  // No policy names it any more (its delete event reconciles the name once): the memory goes, and no delete.
  ASSERT_TRUE(client.remove(kPolicies, "shop", "q").ok());
  sync();
  before = writes();
  ASSERT_TRUE(reconciler.reconcileBudget("no-budget").ok());
  EXPECT_EQ(writes(), before) << ::testing::PrintToString(callsSince(static_cast<size_t>(before)));
  EXPECT_EQ(reconciler.stateSizes().admission, remembered);
  // The budget goes: its objects go, once.
  client.clearFailures();
  ASSERT_TRUE(client.remove(kBudgets, "", "orders").ok());
  sync();
  ASSERT_TRUE(reconciler.reconcileBudget("orders").ok());
  before = writes();
  ASSERT_TRUE(reconciler.reconcileBudget("orders").ok());
  EXPECT_EQ(writes(), before) << ::testing::PrintToString(callsSince(static_cast<size_t>(before)));
}

}  // namespace
}  // namespace poolguard::controller
