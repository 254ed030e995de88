#include "budget/admission.h"

#include <gtest/gtest.h>

#include <map>

namespace poolguard::budget {
namespace {

using policy::WorkloadKind;

WorkloadFacts facts(const std::string& ns, const std::string& name, int32_t replicas,
                    std::optional<int32_t> hpaMax = std::nullopt, WorkloadKind kind = WorkloadKind::kDeployment,
                    Surge surge = kDefaultMaxSurge) {
  WorkloadShape s;
  s.kind = kind;
  s.namespace_ = ns;
  s.name = name;
  s.replicas = replicas;
  s.hpaMaxReplicas = hpaMax;
  s.maxSurge = surge;
  return factsFor(s);
}

PolicyInput policyOf(const std::string& ns, const std::string& name, int32_t maxSize,
                     std::vector<WorkloadFacts> workloads, int allocation = -1) {
  PolicyInput p;
  p.namespace_ = ns;
  p.name = name;
  p.maxSize = maxSize;
  p.allocation = allocation;
  p.workloads = std::move(workloads);
  return p;
}

std::map<std::string, Allotment> byName(const std::vector<Allotment>& all) {
  std::map<std::string, Allotment> m;
  for (const auto& a : all) m[a.namespace_ + "/" + a.name] = a;
  return m;
}

// What a workload's worst case is at `pods` pods at most, as budget.cpp counts it.
int64_t worst(const Allotment& a, const WorkloadFacts& f, int32_t pods) { return (pods + f.surgeAt(pods)) * a.perPod; }

TEST(Allotments, SplitTheRoomSoThatEveryRaiseAtOnceStillFits) {
  // No surge, to keep the figures plain: 2 pods x 10 and 1 pod x 10, 100 available: 70 of room.
  Surge none{0, false};
  auto big = facts("a", "big", 2, std::nullopt, WorkloadKind::kDeployment, none);
  auto small = facts("b", "small", 1, std::nullopt, WorkloadKind::kDeployment, none);
  auto db = computeDatabase("orders", 103, 3, {policyOf("a", "p", 10, {big}), policyOf("b", "q", 10, {small})});
  ASSERT_EQ(db.worstCase, 30);
  auto all = byName(allotments(db));
  ASSERT_EQ(all.size(), 2u);
  const auto& a = all["a/big"];
  const auto& b = all["b/small"];
  EXPECT_EQ(a.share, "the database");
  EXPECT_EQ(a.shareLimit, 100);
  EXPECT_EQ(a.shareWorstCase, 30);
  EXPECT_EQ(a.perPod, 10);
  // 70 of room, in proportion 2:1 then pod by pod: 5 more pods for the larger, 2 for the smaller.
  EXPECT_EQ(a.maxPods, 2 + 5);
  EXPECT_EQ(b.maxPods, 1 + 2);
  EXPECT_LE(a.allotted + b.allotted, 70) << "both raised at once still fit";
  EXPECT_EQ(db.worstCase + a.allotted + b.allotted, 100) << "whole pods: nothing left that one more pod could use";
}

TEST(Allotments, ASurgeThatGrowsWithThePodsIsCountedInEachStep) {
  // 25% surge: 4 pods cost (4 + 1) x 5 = 25; one more pod costs (5 + 2) x 5 = 35.
  auto w = facts("a", "api", 4);
  auto db = computeDatabase("orders", 38, 3, {policyOf("a", "p", 5, {w})});
  ASSERT_EQ(db.worstCase, 25);
  auto all = allotments(db);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].maxPods, 5) << "35 fits in 35";
  EXPECT_EQ(worst(all[0], w, all[0].maxPods), 35);
  auto tighter = allotments(computeDatabase("orders", 37, 3, {policyOf("a", "p", 5, {w})}));
  EXPECT_EQ(tighter[0].maxPods, 4) << "34 available: the fifth pod and its surge do not fit";
}

TEST(Allotments, APolicyThatCountsTerminatingPodsPaysTwoPodsForEachPodItAdds) {
  // 4 pods, maxSize 5, terminating pods counted: a rollout's peak is 8 pods, 40 connections; each pod more costs
  // 2 pods' worth (10). 60 available: 20 of room, 2 pods more.
  auto w = facts("a", "api", 4);
  PolicyInput p = policyOf("a", "p", 5, {w});
  p.countTerminating = true;
  auto db = computeDatabase("orders", 63, 3, {p});
  ASSERT_EQ(db.worstCase, 40);
  auto all = allotments(db);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].maxPods, 6);
  EXPECT_EQ(all[0].allotted, 20);
}

TEST(Allotments, OnlyTheKindsWhoseReplicasAreCheckedTakeRoom) {
  // A DaemonSet of 4 nodes, a Job of 2 pods, a Deployment and a Rollout of 1 pod each, no surge, maxSize 10: 80 of
  // 100. A DaemonSet's pods follow the nodes and a Job's its parallelism, so the admission policy never checks
  // them: the 20 of room are the Deployment's and the Rollout's, 10 each.
  Surge none{0, false};
  auto daemons = facts("a", "agent", 4, std::nullopt, WorkloadKind::kDaemonSet, none);
  auto job = facts("a", "migrate", 2, std::nullopt, WorkloadKind::kJob, none);
  auto web = facts("a", "web", 1, std::nullopt, WorkloadKind::kDeployment, none);
  auto canary = facts("a", "canary", 1, std::nullopt, WorkloadKind::kRollout, none);
  auto db = computeDatabase("orders", 103, 3, {policyOf("a", "p", 10, {daemons, job, web, canary})});
  ASSERT_EQ(db.worstCase, 80);
  auto all = byName(allotments(db));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all["a/web"].kind, WorkloadKind::kDeployment);
  EXPECT_EQ(all["a/web"].maxPods, 2);
  EXPECT_EQ(all["a/canary"].kind, WorkloadKind::kRollout);
  EXPECT_EQ(all["a/canary"].maxPods, 2);
}

// A Rollout as the cache holds it, with `strategy` as its spec.strategy.
json rollout(const std::string& name, int replicas, const json& strategy) {
  return {{"apiVersion", "argoproj.io/v1alpha1"},
          {"kind", "Rollout"},
          {"metadata", {{"name", name}, {"namespace", "a"}}},
          {"spec", {{"replicas", replicas}, {"strategy", strategy}}}};
}

TEST(Allotments, ABlueGreenRolloutPaysTwoPodsForEachReplicaItAdds) {
  // 2 replicas, maxSize 5: a promotion runs both versions at full scale, (2 + 2) x 5 = 20 at worst. 60 available:
  // 40 of room, and each replica more costs 2 pods' worth (10): 4 more.
  auto blueGreen = workloadFacts(rollout("bg", 2, {{"blueGreen", {{"activeService", "bg"}}}}), nullptr);
  auto db = computeDatabase("orders", 63, 3, {policyOf("a", "p", 5, {blueGreen})});
  ASSERT_EQ(db.worstCase, 20);
  auto all = allotments(db);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].kind, WorkloadKind::kRollout);
  EXPECT_EQ(all[0].maxPods, 6);
  EXPECT_EQ(all[0].allotted, 40);
  EXPECT_EQ(all[0].perPod, 5);

  // A canary with traffic routing runs a full second set too.
  auto routed =
      workloadFacts(rollout("routed", 2, {{"canary", {{"trafficRouting", {{"nginx", json::object()}}}}}}), nullptr);
  EXPECT_EQ(allotments(computeDatabase("orders", 63, 3, {policyOf("a", "p", 5, {routed})}))[0].maxPods, 6);

  // A plain canary surges like a Deployment (25% by default): 9 pods and 3 of surge are 60.
  auto canary = workloadFacts(rollout("canary", 2, {{"canary", json::object()}}), nullptr);
  auto plain = allotments(computeDatabase("orders", 63, 3, {policyOf("a", "p", 5, {canary})}));
  EXPECT_EQ(plain[0].maxPods, 9);
  EXPECT_EQ(plain[0].allotted, 60 - 15);

  // Autoscaled (an HPA of maximum 4 targets it): counted at (4 + 4) x 5 = 40, so 20 of room, 2 replicas more for
  // the HPA's maximum.
  model::Hpa hpa;
  hpa.meta.namespace_ = "a";
  hpa.targetApiVersion = "argoproj.io/v1alpha1";
  hpa.targetKind = "Rollout";
  hpa.targetName = "bg";
  hpa.maxReplicas = 4;
  auto scaled = workloadFacts(rollout("bg", 2, {{"blueGreen", {{"activeService", "bg"}}}}), &hpa);
  auto hpaAll = allotments(computeDatabase("orders", 63, 3, {policyOf("a", "p", 5, {scaled})}));
  ASSERT_EQ(hpaAll.size(), 1u);
  EXPECT_TRUE(hpaAll[0].autoscaled);
  EXPECT_EQ(hpaAll[0].podsMax, 4);
  EXPECT_EQ(hpaAll[0].maxPods, 6);
}

TEST(Allotments, AShareThatIsOverHasNoRoomAndAnHpaIsCountedAtItsMaximum) {
  auto scaled = facts("a", "api", 2, 6);
  auto db = computeDatabase("orders", 50, 3, {policyOf("a", "p", 10, {scaled})});
  ASSERT_GT(db.worstCase, *db.available);
  auto all = allotments(db);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_TRUE(all[0].autoscaled);
  EXPECT_EQ(all[0].podsMax, 6);
  EXPECT_EQ(all[0].maxPods, 6) << "no room: the maximum may stay, not grow";
  EXPECT_EQ(all[0].allotted, 0);
}

TEST(Allotments, EachAllocationSplitsItsOwnRoomAndTheDatabaseBindsThemAll) {
  Surge none{0, false};
  auto a = facts("team-a", "api", 1, std::nullopt, WorkloadKind::kDeployment, none);
  auto b = facts("team-b", "web", 1, std::nullopt, WorkloadKind::kStatefulSet, none);
  auto c = facts("misc", "job", 1, std::nullopt, WorkloadKind::kDeployment, none);
  std::vector<PolicyInput> in{policyOf("team-a", "p", 10, {a}, 0), policyOf("team-b", "q", 10, {b}, 1),
                              policyOf("misc", "r", 10, {c})};
  // 100 available; team-a 40, team-b 30, the rest 30.
  auto db = computeDatabase("orders", 103, 3, in, {{"team-a", 40}, {"team-b", 30}});
  auto all = byName(allotments(db));
  EXPECT_EQ(all["team-a/api"].share, "allocation team-a");
  EXPECT_EQ(all["team-a/api"].maxPods, 4);
  EXPECT_EQ(all["team-b/web"].share, "allocation team-b");
  EXPECT_EQ(all["team-b/web"].maxPods, 3);
  EXPECT_EQ(all["misc/job"].share, "the namespaces in no allocation");
  EXPECT_EQ(all["misc/job"].maxPods, 3);

  // Allocations promising 150 of 100: the shares' rooms shrink so that all of them together still fit.
  auto over = computeDatabase("orders", 103, 3, in, {{"team-a", 80}, {"team-b", 70}});
  int64_t allotted = 0;
  for (const auto& x : allotments(over)) allotted += x.allotted;
  EXPECT_LE(over.worstCase + allotted, *over.available);
}

TEST(Allotments, NoneWhileTheCapacityIsUnknown) {
  auto db = computeDatabase("orders", std::nullopt, 3, {policyOf("a", "p", 10, {facts("a", "api", 1)})});
  EXPECT_TRUE(allotments(db).empty());
}

TEST(AdmissionObjects, NamesKeysAndTheModeOfTheBinding) {
  EXPECT_EQ(admissionObjectName("orders"), "poolguard-budget-orders");
  std::string longName(250, 'x');
  std::string shortened = admissionObjectName(longName);
  EXPECT_LE(shortened.size(), 253u);
  EXPECT_NE(shortened, admissionObjectName(std::string(249, 'x') + "y")) << "unique per database";
  EXPECT_EQ(allotmentKey(WorkloadKind::kStatefulSet, "shop", "db.v2"), "statefulsets_shop_db.v2");

  policy::ClusterBudget b;
  b.database = "orders";
  b.ceilings.maxSize = 20;
  b.ceilings.requireLeakDetection = true;
  b.admissionMode = policy::AdmissionMode::kWarn;
  Surge none{0, false};
  auto db = computeDatabase(
      "orders", 103, 3,
      {policyOf("shop", "p", 10, {facts("shop", "api", 2, std::nullopt, WorkloadKind::kDeployment, none)})});
  auto o = admissionObjects(b, "uid-1", &db);
  EXPECT_EQ(o.name, "poolguard-budget-orders");
  EXPECT_EQ(o.allotted, 1u);
  EXPECT_EQ(o.params["kind"], "ConnectionAllotment");
  EXPECT_EQ(o.params["metadata"]["ownerReferences"][0]["uid"], "uid-1");
  EXPECT_EQ(o.policy["metadata"]["ownerReferences"][0]["kind"], "ClusterConnectionBudget");
  EXPECT_EQ(o.params["spec"]["database"], "orders");
  EXPECT_EQ(o.params["spec"]["maxSize"], 20);
  EXPECT_EQ(o.params["spec"]["requireLeakDetection"], true);
  EXPECT_EQ(o.params["spec"]["allotments"]["deployments_shop_api"], json({{"maxPods", 10},
                                                                          {"autoscaled", false},
                                                                          {"share", "the database"},
                                                                          {"shareConnections", 100},
                                                                          {"shareWorstCase", 20},
                                                                          {"perPod", 10}}));
  EXPECT_EQ(o.binding["spec"]["validationActions"], json::array({"Warn"}));
  EXPECT_EQ(o.binding["spec"]["paramRef"], json({{"name", o.name}, {"parameterNotFoundAction", "Allow"}}));
  EXPECT_EQ(o.policy["spec"]["paramKind"]["kind"], "ConnectionAllotment");
  EXPECT_EQ(o.policy["spec"]["failurePolicy"], "Ignore");
  EXPECT_EQ(o.policy["spec"]["validations"].size(), 4u);

  b.admissionMode = policy::AdmissionMode::kDeny;
  b.ceilings = {};
  auto unknown = admissionObjects(b, "uid-1", nullptr);
  EXPECT_EQ(unknown.binding["spec"]["validationActions"], json::array({"Deny"}));
  EXPECT_EQ(unknown.params["spec"], json({{"database", "orders"}, {"allotments", json::object()}}))
      << "no ceiling, no allotments while unknown";
}

TEST(AdmissionObjects, RolloutsTheirScaleAndTheHpasThatTargetThemAreMatched) {
  policy::ClusterBudget b;
  b.database = "orders";
  b.admissionMode = policy::AdmissionMode::kDeny;
  auto bg = workloadFacts(rollout("bg", 2, {{"blueGreen", {{"activeService", "bg"}}}}), nullptr);
  auto db = computeDatabase("orders", 63, 3, {policyOf("a", "p", 5, {bg})});
  auto o = admissionObjects(b, "uid-1", &db);
  EXPECT_EQ(allotmentKey(WorkloadKind::kRollout, "a", "bg"), "rollouts_a_bg");
  ASSERT_TRUE(o.params["spec"]["allotments"].contains("rollouts_a_bg")) << o.params.dump(2);
  EXPECT_EQ(o.params["spec"]["allotments"]["rollouts_a_bg"]["maxPods"], 6);

  // The resource rules: Rollouts and their scale subresource (kubectl scale) on update, as Deployments'.
  const json rules = o.policy["spec"]["matchConstraints"]["resourceRules"];
  json rolloutRule;
  for (const auto& r : rules) {
    if (r["apiGroups"] == json::array({"argoproj.io"})) rolloutRule = r;
  }
  ASSERT_TRUE(rolloutRule.is_object()) << rules.dump(2);
  EXPECT_EQ(rolloutRule["resources"], json::array({"rollouts", "rollouts/scale"}));
  EXPECT_EQ(rolloutRule["operations"], json::array({"UPDATE"}));

  // The expressions: a Rollout is a workload whose replicas are checked, an HPA whose scaleTargetRef is an
  // argoproj.io Rollout is checked against its allotment, and the refusal names the kind.
  std::map<std::string, std::string> vars;
  for (const auto& v : o.policy["spec"]["variables"]) vars[v["name"]] = v["expression"];
  EXPECT_NE(vars["isWorkload"].find("request.resource.group == 'argoproj.io' && request.resource.resource == "
                                    "'rollouts'"),
            std::string::npos)
      << vars["isWorkload"];
  EXPECT_NE(vars["targetResource"].find("startsWith('argoproj.io/') && object.spec.scaleTargetRef.kind == "
                                        "'Rollout' ? 'rollouts'"),
            std::string::npos)
      << vars["targetResource"];
  EXPECT_NE(o.policy["spec"]["validations"][2]["messageExpression"].get<std::string>().find(
                "request.resource.resource == 'rollouts' ? 'Rollout '"),
            std::string::npos);
}

}  // namespace
}  // namespace poolguard::budget
