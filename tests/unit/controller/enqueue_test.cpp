// What a workload, HPA or ClusterConnectionBudget event puts on the policy queue: the policies whose plan reads what
// changed. Over informer caches filled with records as the decoders make them, and the handlers the operator
// registers (runtime::enqueueKeys with the change filters), so an update maps both of its states.
#include "controller/enqueue.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "controller/cache_shapes.h"
#include "runtime/informer.h"
#include "runtime/workqueue.h"
#include "stores.h"

namespace poolguard::controller {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

json policyJson(const std::string& ns, const std::string& name, json spec) {
  json base = {{"pool", {{"maxSize", 5}}}, {"database", {{"name", "orders"}, {"maxConnections", 100}}}};
  if (!spec.contains("selector")) base["selector"] = {{"matchLabels", {{"app", "web"}}}};
  base.merge_patch(spec);
  json meta = {{"name", name},
               {"uid", "uid-" + name},
               {"generation", 1},
               {"resourceVersion", "1"},
               {"creationTimestamp", "2026-01-01T00:00:00Z"}};
  if (!ns.empty()) meta["namespace"] = ns;
  return {{"apiVersion", "poolguard.dev/v1alpha1"},
          {"kind", ns.empty() ? "ClusterConnectionPoolPolicy" : "ConnectionPoolPolicy"},
          {"metadata", meta},
          {"spec", base}};
}

json workloadJson(const std::string& kind, const std::string& ns, const std::string& name, json labels,
                  json annotations = json::object()) {
  const std::string apiVersion = kind == "Rollout" ? "argoproj.io/v1alpha1" : "apps/v1";
  return {{"apiVersion", apiVersion},
          {"kind", kind},
          {"metadata",
           {{"name", name},
            {"namespace", ns},
            {"uid", "uid-" + name},
            {"resourceVersion", "1"},
            {"labels", std::move(labels)},
            {"annotations", std::move(annotations)}}},
          {"spec",
           {{"replicas", 2},
            {"template", {{"spec", {{"containers", json::array({{{"name", "app"}, {"image", "x"}}})}}}}}}}};
}

json hpaJson(const std::string& ns, const std::string& name, const std::string& target, int maxReplicas = 10,
             const std::string& targetApiVersion = "apps/v1") {
  return {{"apiVersion", "autoscaling/v2"},
          {"kind", "HorizontalPodAutoscaler"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"uid", "uid-hpa-" + name}, {"resourceVersion", "1"}}},
          {"spec",
           {{"scaleTargetRef", {{"apiVersion", targetApiVersion}, {"kind", "Deployment"}, {"name", target}}},
            {"maxReplicas", maxReplicas}}}};
}

json budgetJson(json spec, int generation = 1) {
  return {
      {"apiVersion", "poolguard.dev/v1alpha1"},
      {"kind", "ClusterConnectionBudget"},
      {"metadata", {{"name", "orders"}, {"uid", "uid-budget"}, {"generation", generation}, {"resourceVersion", "1"}}},
      {"spec", std::move(spec)}};
}

json namespaceJson(const std::string& name, json labels) {
  return {{"apiVersion", "v1"},
          {"kind", "Namespace"},
          {"metadata", {{"name", name}, {"uid", "uid-ns-" + name}, {"labels", std::move(labels)}}}};
}

json allocation(const std::string& name, const std::string& team, int maxConnections) {
  return {
      {"name", name}, {"namespaceSelector", {{"matchLabels", {{"team", team}}}}}, {"maxConnections", maxConnections}};
}

class Enqueue : public ::testing::Test {
 protected:
  Enqueue() : keys_(stores_.caches()) {}

  void addPolicy(const std::string& ns, const std::string& name, json spec = json::object()) {
    auto p = policyDecoder()(policyJson(ns, name, std::move(spec)));
    ASSERT_TRUE(runtime::recordAs<model::PolicyObject>(*p).parsed)
        << runtime::recordAs<model::PolicyObject>(*p).invalidMessage;
    (ns.empty() ? stores_.clusterPolicies : stores_.policies).apply(p);
  }
  void addNamespace(const std::string& name, json labels) {
    stores_.namespaces.apply(namespaceDecoder()(namespaceJson(name, std::move(labels))));
  }
  static runtime::ObjectPtr workload(const std::string& ns, const std::string& name, json labels,
                                     json annotations = json::object(), const std::string& kind = "Deployment") {
    return workloadDecoder()(workloadJson(kind, ns, name, std::move(labels), std::move(annotations)));
  }
  static runtime::ObjectPtr budget(json spec, int generation = 1) {
    return budgetDecoder()(budgetJson(std::move(spec), generation));
  }

  // What the operator's handlers enqueue for an update from `before` to `after`.
  std::vector<std::string> workloadUpdate(const runtime::ObjectPtr& before, const runtime::ObjectPtr& after) {
    return drain(runtime::enqueueKeys(
                     queue_, [this](const kube::Object& w) { return keys_.ofWorkload(w); }, workloadChanged),
                 before, after);
  }
  std::vector<std::string> hpaUpdate(const runtime::ObjectPtr& before, const runtime::ObjectPtr& after) {
    return drain(runtime::enqueueKeys(
                     queue_, [this](const kube::Object& h) { return keys_.ofHpa(h); }, hpaChanged),
                 before, after);
  }
  std::vector<std::string> drain(const runtime::EventHandlers& h, const runtime::ObjectPtr& before,
                                 const runtime::ObjectPtr& after) {
    h.onUpdate(before, after);
    std::vector<std::string> out;
    while (auto k = queue_.tryGet()) {
      out.push_back(*k);
      queue_.done(*k);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  test_support::Stores stores_;
  EventKeys keys_;
  runtime::WorkQueue queue_;
};

TEST_F(Enqueue, AWorkloadReachesThePoliciesThatSelectItNotTheOthersOfItsNamespace) {
  addPolicy("shop", "group-a", {{"selector", {{"matchLabels", {{"group", "a"}}}}}});
  addPolicy("shop", "group-b", {{"selector", {{"matchLabels", {{"group", "b"}}}}}});
  addPolicy("shop", "jobs-a", {{"selector", {{"matchLabels", {{"group", "a"}}}}}, {"kinds", {"Job"}}});
  addPolicy("other", "group-a", {{"selector", {{"matchLabels", {{"group", "a"}}}}}});

  EXPECT_THAT(keys_.ofWorkload(*workload("shop", "w1", {{"group", "a"}})), ElementsAre("shop/group-a"))
      << "not group-b (another selector), not jobs-a (spec.kinds), not other/group-a (another namespace)";
  EXPECT_THAT(keys_.ofWorkload(*workload("shop", "w2", {{"group", "c"}})), IsEmpty());
  EXPECT_THAT(keys_.ofWorkload(*workload("shop", "ds", {{"group", "a"}}, json::object(), "DaemonSet")), IsEmpty())
      << "DaemonSet is not in the default spec.kinds";
}

TEST_F(Enqueue, AReplicasChangeReachesTheGoverningPolicyAndAStatusOnlyUpdateNothing) {
  addPolicy("shop", "group-a", {{"selector", {{"matchLabels", {{"group", "a"}}}}}});
  addPolicy("shop", "group-b", {{"selector", {{"matchLabels", {{"group", "b"}}}}}});
  json before = workloadJson("Deployment", "shop", "w1", {{"group", "a"}});
  json scaled = before;
  scaled["spec"]["replicas"] = 5;
  scaled["metadata"]["resourceVersion"] = "2";
  json statusOnly = before;
  statusOnly["metadata"]["resourceVersion"] = "3";
  statusOnly["status"] = {{"readyReplicas", 2}};
  EXPECT_THAT(workloadUpdate(workloadDecoder()(json(before)), workloadDecoder()(json(scaled))),
              ElementsAre("shop/group-a"));
  EXPECT_THAT(workloadUpdate(workloadDecoder()(json(before)), workloadDecoder()(json(statusOnly))), IsEmpty());
}

TEST_F(Enqueue, ALabelChangeThatMovesAWorkloadReachesThePolicyItLeavesAndTheOneItJoins) {
  addPolicy("shop", "group-a", {{"selector", {{"matchLabels", {{"group", "a"}}}}}});
  addPolicy("shop", "group-b", {{"selector", {{"matchLabels", {{"group", "b"}}}}}});
  addPolicy("shop", "group-c", {{"selector", {{"matchLabels", {{"group", "c"}}}}}});
  EXPECT_THAT(workloadUpdate(workload("shop", "w1", {{"group", "a"}}), workload("shop", "w1", {{"group", "b"}})),
              ElementsAre("shop/group-a", "shop/group-b"));
}

TEST_F(Enqueue, ThePolicyAnAnnotationNamesAsTheWriterReadsTheWorkloadEvenWhenItNoLongerSelectsIt) {
  addPolicy("shop", "old", {{"selector", {{"matchLabels", {{"group", "gone"}}}}}});
  addPolicy("shop", "new", {{"selector", {{"matchLabels", {{"group", "a"}}}}}});
  addPolicy("", "baseline", {{"namespaceSelector", {{"matchLabels", {{"tier", "none"}}}}}});
  addPolicy("elsewhere", "old");
  EXPECT_THAT(keys_.ofWorkload(*workload("shop", "w1", {{"group", "a"}}, {{"poolguard.dev/policy", "old"}})),
              ElementsAre("shop/new", "shop/old"))
      << "the writer gives its fields back; not elsewhere/old, a policy of another namespace";
  EXPECT_THAT(
      keys_.ofWorkload(*workload("shop", "w2", {{"group", "x"}}, {{"poolguard.dev/cluster-policy", "baseline"}})),
      ElementsAre("baseline"));
  EXPECT_THAT(keys_.ofWorkload(*workload("shop", "w3", {{"group", "x"}}, {{"poolguard.dev/policy", "deleted"}})),
              IsEmpty())
      << "a policy the cache does not hold has no plan";
}

TEST_F(Enqueue, LosersOfTheSameScopeReadTheWorkloadAClusterPolicyANamespacePolicyOutranksDoesNot) {
  addNamespace("shop", {{"tier", "apps"}});
  addPolicy("shop", "high", {{"priority", 10}});
  addPolicy("shop", "low");
  addPolicy("", "baseline", {{"namespaceSelector", {{"matchLabels", {{"tier", "apps"}}}}}});
  addPolicy("", "fallback", {{"namespaceSelector", {{"matchLabels", {{"tier", "apps"}}}}}, {"priority", -1}});
  EXPECT_THAT(keys_.ofWorkload(*workload("shop", "web", {{"app", "web"}})), ElementsAre("shop/high", "shop/low"))
      << "low reports it Conflicted; the cluster policies pass over a workload a policy of its namespace governs";
  EXPECT_THAT(keys_.ofWorkload(*workload("shop", "api", {{"app", "api"}})), IsEmpty());

  // Without policies of the namespace, the cluster policies decide between them: both read it.
  stores_.policies.remove("shop/high");
  stores_.policies.remove("shop/low");
  EXPECT_THAT(keys_.ofWorkload(*workload("shop", "web", {{"app", "web"}})), ElementsAre("baseline", "fallback"));
}

TEST_F(Enqueue, AWorkloadReachesTheClampPoliciesOfItsGovernorsDatabaseWhoseRoomItSharesWherever) {
  addPolicy("shop", "group-a",
            {{"selector", {{"matchLabels", {{"group", "a"}}}}}, {"budget", {{"onExceeded", "Clamp"}}}});
  addPolicy("shop", "group-b", {{"selector", {{"matchLabels", {{"group", "b"}}}}}});
  addPolicy("team-x", "pool", {{"budget", {{"onExceeded", "Clamp"}}}});
  addPolicy("team-y", "pool");
  addPolicy("team-z", "billing", {{"database", {{"name", "billing"}}}, {"budget", {{"onExceeded", "Clamp"}}}});
  EXPECT_THAT(keys_.ofWorkload(*workload("shop", "w1", {{"group", "b"}})),
              ElementsAre("shop/group-a", "shop/group-b", "team-x/pool"))
      << "Clamp sizes group-a's and team-x/pool's pools from what w1 asks; team-y/pool (Warn) and team-z/billing "
         "(another database) learn of moved totals from group-b's reconcile";
  EXPECT_THAT(keys_.ofWorkload(*workload("shop", "w2", {{"group", "c"}})), IsEmpty()) << "governed by none";
}

TEST_F(Enqueue, AClusterPolicyReadsTheWorkloadsOfTheNamespacesItsNamespaceSelectorMatches) {
  addNamespace("prod", {{"env", "prod"}});
  addNamespace("dev", {{"env", "dev"}});
  addPolicy("", "prod-pools", {{"namespaceSelector", {{"matchLabels", {{"env", "prod"}}}}}});
  EXPECT_THAT(keys_.ofWorkload(*workload("prod", "web", {{"app", "web"}})), ElementsAre("prod-pools"));
  EXPECT_THAT(keys_.ofWorkload(*workload("dev", "web", {{"app", "web"}})), IsEmpty());
  EXPECT_THAT(keys_.ofWorkload(*workload("unknown", "web", {{"app", "web"}})), IsEmpty())
      << "a namespace the cache does not hold matches no namespaceSelector on labels it lacks";
}

TEST_F(Enqueue, AnHpaReachesThePoliciesOfItsTargetBothOldAndNewWhenTheTargetChanges) {
  addPolicy("shop", "group-a", {{"selector", {{"matchLabels", {{"group", "a"}}}}}});
  addPolicy("shop", "group-b", {{"selector", {{"matchLabels", {{"group", "b"}}}}}});
  addPolicy("shop", "group-c", {{"selector", {{"matchLabels", {{"group", "c"}}}}}});
  stores_.deployments.apply(workload("shop", "w1", {{"group", "a"}}));
  stores_.deployments.apply(workload("shop", "w2", {{"group", "b"}}));
  stores_.deployments.apply(workload("shop", "w3", {{"group", "c"}}));

  EXPECT_THAT(keys_.ofHpa(*hpaDecoder()(hpaJson("shop", "h", "w1"))), ElementsAre("shop/group-a"));
  EXPECT_THAT(hpaUpdate(hpaDecoder()(hpaJson("shop", "h", "w1")), hpaDecoder()(hpaJson("shop", "h", "w2"))),
              ElementsAre("shop/group-a", "shop/group-b"));
  EXPECT_THAT(hpaUpdate(hpaDecoder()(hpaJson("shop", "h", "w1", 10)), hpaDecoder()(hpaJson("shop", "h", "w1", 20))),
              ElementsAre("shop/group-a"))
      << "a maxReplicas change";
  json status = hpaJson("shop", "h", "w1");
  status["status"] = {{"currentReplicas", 3}};
  status["metadata"]["resourceVersion"] = "2";
  EXPECT_THAT(hpaUpdate(hpaDecoder()(hpaJson("shop", "h", "w1")), hpaDecoder()(std::move(status))), IsEmpty());
  EXPECT_THAT(keys_.ofHpa(*hpaDecoder()(hpaJson("shop", "h", "missing"))), IsEmpty());
  EXPECT_THAT(keys_.ofHpa(*hpaDecoder()(hpaJson("shop", "h", "w1", 10, "example.com/v1"))), IsEmpty())
      << "another API group's kind of that name is not the Deployment";
}

TEST_F(Enqueue, ABudgetStatusWriteReachesNoPolicyASpecChangeEveryPolicyOfItsDatabase) {
  addPolicy("team-a", "pool");
  addPolicy("team-b", "pool");
  addPolicy("team-b", "billing", {{"database", {{"name", "billing"}}}});
  addPolicy("", "baseline", {{"namespaceSelector", {{"matchLabels", {{"tier", "apps"}}}}}});
  auto before = budget({{"maxConnections", 100}});
  json statusJson = budgetJson({{"maxConnections", 100}});
  statusJson["metadata"]["resourceVersion"] = "2";
  statusJson["status"] = {{"conditions", json::array({{{"type", "Ready"}, {"status", "True"}}})}};
  EXPECT_THAT(keys_.ofBudget(before.get(), budgetDecoder()(std::move(statusJson)).get()), IsEmpty());
  json labelled = budgetJson({{"maxConnections", 100}});
  labelled["metadata"]["labels"] = {{"team", "dba"}};
  EXPECT_THAT(keys_.ofBudget(before.get(), budgetDecoder()(std::move(labelled)).get()), IsEmpty());
  EXPECT_THAT(
      keys_.ofBudget(before.get(), budget({{"maxConnections", 100}, {"admission", {{"mode", "Warn"}}}}, 2).get()),
      IsEmpty())
      << "admission.mode is the budget controller's, not a policy's";

  const auto all = UnorderedElementsAre("team-a/pool", "team-b/pool", "baseline");
  EXPECT_THAT(keys_.ofBudget(before.get(), budget({{"maxConnections", 80}}, 2).get()), all);
  EXPECT_THAT(keys_.ofBudget(before.get(), budget({{"maxConnections", 100}, {"ceilings", {{"maxSize", 3}}}}, 2).get()),
              all);
  EXPECT_THAT(keys_.ofBudget(nullptr, before.get()), all) << "added";
  EXPECT_THAT(keys_.ofBudget(before.get(), nullptr), all) << "deleted";
  json deleting = budgetJson({{"maxConnections", 100}});
  deleting["metadata"]["deletionTimestamp"] = "2026-01-02T00:00:00Z";
  auto deletingRecord = budgetDecoder()(std::move(deleting));
  EXPECT_THAT(keys_.ofBudget(before.get(), deletingRecord.get()), all) << "a budget being deleted binds no policy";
  EXPECT_THAT(keys_.ofBudget(deletingRecord.get(), deletingRecord.get()), IsEmpty());
  EXPECT_THAT(keys_.ofBudget(deletingRecord.get(), nullptr), all) << "its usage check is read until it goes";
  // Its usage check's terminateLeaked: each policy's UsageHealthy notes the names the check will not end.
  json usage = {{"interval", "30s"},
                {"thresholds", {{"idleInTransaction", "60s"}}},
                {"postgres",
                 {{"host", "pg.example"},
                  {"database", "orders"},
                  {"sslMode", "verify-full"},
                  {"credentialsSecretRef", {{"name", "pg"}}}}}};
  auto checked = budget({{"maxConnections", 100}, {"usage", usage}});
  usage["actions"] = {{"terminateLeaked", {{"enabled", true}}}};
  EXPECT_THAT(keys_.ofBudget(checked.get(), budget({{"maxConnections", 100}, {"usage", usage}}, 2).get()), all)
      << "turning terminateLeaked on";
  auto invalid = budget({{"maxConnections", 0}});
  EXPECT_THAT(keys_.ofBudget(nullptr, invalid.get()), IsEmpty()) << "an invalid budget binds no policy";
  EXPECT_THAT(keys_.ofBudget(invalid.get(), before.get()), all);
}

TEST_F(Enqueue, ABudgetAllocationChangeReachesThePoliciesOfTheNamespacesWhoseShareChanged) {
  addNamespace("team-a", {{"team", "a"}});
  addNamespace("team-b", {{"team", "b"}});
  addNamespace("team-c", {{"team", "c"}});
  addNamespace("team-d", {{"team", "d"}});
  for (const char* ns : {"team-a", "team-b", "team-c"}) addPolicy(ns, "pool");
  addPolicy("", "only-d", {{"namespaceSelector", {{"matchLabels", {{"team", "d"}}}}}});
  addPolicy("", "a-and-b",
            {{"namespaceSelector",
              {{"matchExpressions", json::array({{{"key", "team"}, {"operator", "In"}, {"values", {"a", "b"}}}})}}}});
  auto spec = [](int a, const std::string& bTeam, int b) {
    return json{{"maxConnections", 200},
                {"allocations", {allocation("share-a", "a", a), allocation("share-b", bTeam, b)}}};
  };
  auto before = budget(spec(40, "b", 40));

  // share-a grows: team-a's share, and what the allocations leave to team-c and team-d (in none).
  EXPECT_THAT(keys_.ofBudget(before.get(), budget(spec(50, "b", 40), 2).get()),
              UnorderedElementsAre("team-a/pool", "team-c/pool", "only-d", "a-and-b"));
  // share-b selects team-c instead of team-b, the sum as it was: the two namespaces that changed share.
  EXPECT_THAT(keys_.ofBudget(before.get(), budget(spec(40, "c", 40), 2).get()),
              UnorderedElementsAre("team-b/pool", "team-c/pool", "a-and-b"));
  // Allocations appear: every namespace now counts against a share.
  EXPECT_THAT(keys_.ofBudget(budget({{"maxConnections", 200}}).get(), before.get()),
              UnorderedElementsAre("team-a/pool", "team-b/pool", "team-c/pool", "only-d", "a-and-b"));
  // The capacity changes with them: every policy.
  auto bigger = spec(50, "b", 40);
  bigger["maxConnections"] = 300;
  EXPECT_THAT(keys_.ofBudget(before.get(), budget(bigger, 2).get()),
              UnorderedElementsAre("team-a/pool", "team-b/pool", "team-c/pool", "only-d", "a-and-b"));
}

// The pure rule, without caches: what the operator's handlers compute from them.
TEST(EnqueueRules, AFinishedJobOrACronJobRunIsReadByNoPlan) {
  auto p = policyDecoder()(policyJson("shop", "jobs", {{"kinds", {"Job"}}}));
  std::vector<PolicyView> policies{viewOf(runtime::recordAs<model::PolicyObject>(p))};
  json job = workloadJson("Job", "shop", "run", {{"app", "web"}});
  job["apiVersion"] = "batch/v1";
  job["spec"] = {{"template", {{"spec", {{"containers", json::array({{{"name", "app"}}})}}}}}};
  const Labels labels{{"kubernetes.io/metadata.name", "shop"}};
  auto running = workloadDecoder()(json(job));
  EXPECT_THAT(policiesReadingWorkload(runtime::recordAs<model::Workload>(*running), policies, labels),
              ElementsAre("shop/jobs"));
  job["status"] = {{"conditions", json::array({{{"type", "Complete"}, {"status", "True"}}})}};
  auto finished = workloadDecoder()(std::move(job));
  EXPECT_THAT(policiesReadingWorkload(runtime::recordAs<model::Workload>(*finished), policies, labels), IsEmpty());
}

}  // namespace
}  // namespace poolguard::controller
