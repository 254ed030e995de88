#include "budget/budget.h"

#include <gtest/gtest.h>

#include <limits>

namespace poolguard::budget {
namespace {

using policy::OnExceeded;
using policy::WorkloadKind;

json deployment(const std::string& name, const std::string& extraSpec = "{}") {
  json w = json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"","namespace":"shop"},
                            "spec":{"template":{"spec":{"containers":[{"name":"app"}]}}}})");
  w["metadata"]["name"] = name;
  w["spec"].update(json::parse(extraSpec));
  return w;
}

json hpaObject(const std::string& kind, const std::string& name, int maxReplicas) {
  return json{{"apiVersion", "autoscaling/v2"},
              {"kind", "HorizontalPodAutoscaler"},
              {"metadata", {{"name", name + "-hpa"}, {"namespace", "shop"}}},
              {"spec",
               {{"scaleTargetRef", {{"apiVersion", "apps/v1"}, {"kind", kind}, {"name", name}}},
                {"minReplicas", 1},
                {"maxReplicas", maxReplicas}}}};
}

model::Hpa decoded(const json& object) {
  model::Diagnostics d;
  model::Hpa h = model::decodeHpa(object, d);
  EXPECT_TRUE(d.ok()) << object.dump();
  return h;
}

model::Hpa hpa(const std::string& kind, const std::string& name, int maxReplicas) {
  return decoded(hpaObject(kind, name, maxReplicas));
}

TEST(WorkloadFacts, DefaultsToOneReplicaAndQuarterSurgeRoundedUp) {
  auto f = workloadFacts(deployment("api"), nullptr);
  EXPECT_EQ(f.podsNow, 1);
  EXPECT_EQ(f.podsMax, 1);
  EXPECT_EQ(f.surge, 1) << "25% of 1 rounds up";
  EXPECT_FALSE(f.autoscaled);
  EXPECT_EQ(f.namespace_, "shop");
  EXPECT_EQ(f.name, "api");
}

TEST(WorkloadFacts, HpaMaxReplicasAndPercentSurge) {
  auto h = hpa("Deployment", "api", 10);
  auto f = workloadFacts(deployment("api", R"({"replicas":3,"strategy":{"type":"RollingUpdate",
                                               "rollingUpdate":{"maxSurge":"30%"}}})"),
                         &h);
  EXPECT_EQ(f.podsNow, 3);
  EXPECT_EQ(f.podsMax, 10);
  EXPECT_EQ(f.surge, 3) << "30% of 10";
  EXPECT_TRUE(f.autoscaled);
}

TEST(WorkloadFacts, IntegerSurgeRecreateAndStatefulSet) {
  EXPECT_EQ(
      workloadFacts(deployment("a", R"({"replicas":4,"strategy":{"rollingUpdate":{"maxSurge":2}}})"), nullptr).surge,
      2);
  EXPECT_EQ(
      workloadFacts(deployment("a", R"({"replicas":4,"strategy":{"rollingUpdate":{"maxSurge":"0%"}}})"), nullptr).surge,
      0);
  EXPECT_EQ(workloadFacts(deployment("a", R"({"replicas":4,"strategy":{"type":"Recreate"}})"), nullptr).surge, 0);
  json sts = deployment("db", R"({"replicas":3})");
  sts["kind"] = "StatefulSet";
  auto f = workloadFacts(sts, nullptr);
  EXPECT_EQ(f.kind, WorkloadKind::kStatefulSet);
  EXPECT_EQ(f.surge, 0);
  EXPECT_EQ(f.podsMax, 3);
}

TEST(WorkloadFacts, SurgeNeverAddsMorePodsThanTheReplicas) {
  // The Deployment controller scales the new ReplicaSet up to the replicas and no further: a maxSurge above the
  // replicas adds only as many pods as there are.
  EXPECT_EQ(
      workloadFacts(deployment("a", R"({"replicas":2,"strategy":{"rollingUpdate":{"maxSurge":5}}})"), nullptr).surge,
      2);
  EXPECT_EQ(
      workloadFacts(deployment("a", R"({"replicas":3,"strategy":{"rollingUpdate":{"maxSurge":"200%"}}})"), nullptr)
          .surge,
      3);
  auto f =
      workloadFacts(deployment("a", R"({"replicas":3,"strategy":{"rollingUpdate":{"maxSurge":"200%"}}})"), nullptr);
  EXPECT_EQ(f.surgeAt(10), 10);
  EXPECT_EQ(f.surgeAt(0), 0);
}

TEST(WorkloadFacts, TerminatingPodsDoubleARollingUpdateOnlyWhenCounted) {
  // 4 pods now, HPA max 10, maxSurge 25%: a rollout adds 3 pods; with the old pods still terminating, all 10 old
  // ones may still be there when the last new one is ready: 10 + 3 + 7 = 20, twice pods max.
  auto h = hpa("Deployment", "api", 10);
  auto f = workloadFacts(deployment("api", R"({"replicas":4})"), &h);
  EXPECT_EQ(f.peakPods(), 13) << "not counted: pods max + surge";
  auto counted = underPolicy(f, true);
  EXPECT_EQ(counted.surge, 3);
  EXPECT_EQ(counted.terminating, 7);
  EXPECT_EQ(counted.peakPods(), 20);
  EXPECT_EQ(counted.terminatingAt(4), 3);
  EXPECT_EQ(counted.peakAt(4), 8);
  EXPECT_EQ(underPolicy(f, false).terminating, 0);

  // Recreate waits for the old pods to be gone before it starts new ones; a StatefulSet replaces a pod only after
  // it is gone: neither counts terminating pods.
  auto recreate =
      underPolicy(workloadFacts(deployment("a", R"({"replicas":4,"strategy":{"type":"Recreate"}})"), nullptr), true);
  EXPECT_EQ(recreate.terminating, 0);
  EXPECT_EQ(recreate.peakPods(), 4);
  json sts = deployment("db", R"({"replicas":3})");
  sts["kind"] = "StatefulSet";
  auto set = underPolicy(workloadFacts(sts, nullptr), true);
  EXPECT_EQ(set.terminating, 0);
  EXPECT_EQ(set.peakPods(), 3);
}

TEST(WorkloadFacts, ReplicasAboveHpaMaxCountAsTheyAre) {
  auto h = hpa("Deployment", "api", 2);
  auto f = workloadFacts(deployment("api", R"({"replicas":5})"), &h);
  EXPECT_EQ(f.podsMax, 5);
}

TEST(WorkloadFacts, ZeroReplicasCostsOnlyTheSurgeOfNothing) {
  auto f = workloadFacts(deployment("api", R"({"replicas":0})"), nullptr);
  EXPECT_EQ(f.podsNow, 0);
  EXPECT_EQ(f.podsMax, 0);
  EXPECT_EQ(f.surge, 0);
}

TEST(FindHpa, MatchesKindNameAndNamespace) {
  std::vector<model::Hpa> hpas{hpa("StatefulSet", "api", 4), hpa("Deployment", "other", 5),
                               hpa("Deployment", "api", 6)};
  const model::Hpa* h = findHpa(hpas, WorkloadKind::kDeployment, "shop", "api");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->maxReplicas, 6);
  EXPECT_EQ(findHpa(hpas, WorkloadKind::kDeployment, "other-ns", "api"), nullptr);
  EXPECT_NE(findHpa(hpas, WorkloadKind::kStatefulSet, "shop", "api"), nullptr);
}

TEST(FindHpa, IgnoresATargetOfAnotherApiGroup) {
  json argo = hpaObject("Deployment", "api", 9);
  argo["spec"]["scaleTargetRef"]["apiVersion"] = "argoproj.io/v1alpha1";
  json unset = hpaObject("Deployment", "api", 7);
  unset["spec"]["scaleTargetRef"].erase("apiVersion");
  std::vector<model::Hpa> hpas{decoded(argo), decoded(unset)};
  const model::Hpa* h = findHpa(hpas, WorkloadKind::kDeployment, "shop", "api");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->maxReplicas, 7) << "apiVersion unset counts as apps/v1; another group's kind of the same name does not";
}

WorkloadFacts facts(int podsNow, int podsMax, int surge, const std::string& name = "w") {
  WorkloadFacts f;
  f.namespace_ = "shop";
  f.name = name;
  f.podsNow = podsNow;
  f.podsMax = podsMax;
  f.surge = surge;
  return f;
}

PolicyInput input(const std::string& ns, const std::string& name, int maxSize, std::vector<WorkloadFacts> w,
                  OnExceeded onExceeded = OnExceeded::kWarn, int weight = 1, int processesPerPod = 1) {
  PolicyInput in;
  in.namespace_ = ns;
  in.name = name;
  in.maxSize = maxSize;
  in.onExceeded = onExceeded;
  in.weight = weight;
  in.processesPerPod = processesPerPod;
  in.workloads = std::move(w);
  return in;
}

TEST(ComputeDatabase, SteadyAndWorstCaseWithProcessesPerPod) {
  // 3 pods now, HPA max 10, surge 3; 4 gunicorn workers x maxSize 5 = 20 per pod.
  auto db = computeDatabase("orders", 500, 3, {input("shop", "p", 5, {facts(3, 10, 3)}, OnExceeded::kWarn, 1, 4)});
  EXPECT_EQ(db.available, 497);
  EXPECT_EQ(db.steadyState, 60);
  EXPECT_EQ(db.worstCase, 260);
  EXPECT_TRUE(db.withinBudget());
  ASSERT_EQ(db.policies.size(), 1u);
  EXPECT_EQ(db.policies[0].workloads[0].perPod, 20);
  EXPECT_FALSE(db.policies[0].clamped);
}

TEST(ComputeDatabase, PoliciesAcrossNamespacesShareOneDatabase) {
  auto db = computeDatabase("orders", 100, 3,
                            {input("team-a", "p", 10, {facts(2, 4, 1, "api"), facts(1, 1, 0, "cron")}),
                             input("team-b", "q", 20, {facts(2, 2, 1)})});
  // team-a: (4+1)x10 + 1x10 = 60; team-b: 3x20 = 60
  EXPECT_EQ(db.worstCase, 120);
  EXPECT_EQ(db.steadyState, 30 + 40);
  EXPECT_TRUE(db.overBudget());
  EXPECT_FALSE(db.withinBudget());
  ASSERT_NE(db.find("team-b", "q"), nullptr);
  EXPECT_EQ(db.find("team-b", "q")->worstCase, 60);
  EXPECT_EQ(db.find("team-a", "q"), nullptr);
  EXPECT_EQ(db.policies[0].effectiveMaxSize, 10) << "Warn never clamps";
}

TEST(ComputeDatabase, UnknownMaxConnectionsIsNeitherWithinNorOver) {
  auto db = computeDatabase("orders", std::nullopt, 3, {input("a", "p", 50, {facts(10, 10, 0)}, OnExceeded::kClamp)});
  EXPECT_FALSE(db.available.has_value());
  EXPECT_FALSE(db.withinBudget());
  EXPECT_FALSE(db.overBudget());
  EXPECT_EQ(db.policies[0].effectiveMaxSize, 50) << "nothing to clamp against";
}

TEST(ComputeDatabase, ClampSharesWhatWarnPoliciesLeaveByWeight) {
  // available 97; Warn policy asks 5 pods x 5 = 25, leaving 72.
  // Clamp a (weight 2): 4 pods (3 + surge 1) -> share 48 -> maxSize 12 (asked 30).
  // Clamp b (weight 1): 2 pods -> share 24 -> maxSize 12 (asked 40).
  auto db = computeDatabase(
      "orders", 100, 3,
      {input("ns1", "warn", 5, {facts(4, 4, 1)}), input("ns2", "a", 30, {facts(3, 3, 1)}, OnExceeded::kClamp, 2),
       input("ns3", "b", 40, {facts(2, 2, 0)}, OnExceeded::kClamp, 1)});
  EXPECT_EQ(db.unclampedWorstCase, 25 + 120 + 80);
  EXPECT_EQ(db.find("ns2", "a")->effectiveMaxSize, 12);
  EXPECT_EQ(db.find("ns3", "b")->effectiveMaxSize, 12);
  EXPECT_TRUE(db.find("ns2", "a")->clamped);
  EXPECT_EQ(db.worstCase, 25 + 48 + 24);
  EXPECT_TRUE(db.withinBudget());
}

TEST(ComputeDatabase, ClampGivesUnusedShareToTheOthers) {
  // available 97 for two Clamp policies of equal weight: a asks only 1 x 10 = 10, so b may use 87 -> 87/3 = 29.
  auto db = computeDatabase("orders", 100, 3,
                            {input("x", "a", 10, {facts(1, 1, 0)}, OnExceeded::kClamp),
                             input("x", "b", 50, {facts(2, 2, 1)}, OnExceeded::kClamp)});
  EXPECT_EQ(db.find("x", "a")->effectiveMaxSize, 10);
  EXPECT_FALSE(db.find("x", "a")->clamped);
  EXPECT_EQ(db.find("x", "b")->effectiveMaxSize, 29);
  EXPECT_EQ(db.worstCase, 10 + 87);
  EXPECT_TRUE(db.withinBudget());
}

TEST(ComputeDatabase, ClampNeverGoesBelowOneAndThenStillReportsOverBudget) {
  auto db = computeDatabase(
      "orders", 20, 3,
      {input("x", "warn", 10, {facts(2, 2, 0)}), input("x", "c", 10, {facts(5, 5, 0)}, OnExceeded::kClamp)});
  EXPECT_EQ(db.find("x", "c")->effectiveMaxSize, 1);
  EXPECT_EQ(db.worstCase, 20 + 5);
  EXPECT_TRUE(db.overBudget());
}

TEST(ComputeDatabase, NoClampWhenTheDatabaseFits) {
  auto db = computeDatabase("orders", 100, 3, {input("x", "c", 10, {facts(2, 4, 1)}, OnExceeded::kClamp)});
  EXPECT_EQ(db.find("x", "c")->effectiveMaxSize, 10);
  EXPECT_FALSE(db.find("x", "c")->clamped);
}

TEST(ComputeDatabase, PolicyWithoutWorkloadsCostsNothing) {
  auto db = computeDatabase("orders", 10, 3, {input("x", "idle", 100, {}, OnExceeded::kClamp)});
  EXPECT_EQ(db.worstCase, 0);
  EXPECT_EQ(db.find("x", "idle")->effectiveMaxSize, 100);
  EXPECT_TRUE(db.withinBudget());
}

PolicyInput inAllocation(PolicyInput in, int allocation) {
  in.allocation = allocation;
  return in;
}

TEST(ComputeDatabase, AllocationsClampOnlyTheShareThatIsOver) {
  // available 97: team-a 40, team-b 30, the namespaces in none share 97 - 70 = 27.
  // team-a's Clamp policy asks 10 pods x 10 = 100 > 40: clamped to 4 (40). team-b asks 3 x 10 = 30: fits exactly.
  // The rest ask 2 x 10 = 20 <= 27: fits. Without allocations, 150 > 97 would clamp team-b and the rest too.
  auto db = computeDatabase("orders", 100, 3,
                            {inAllocation(input("a", "p", 10, {facts(8, 8, 2)}, OnExceeded::kClamp), 0),
                             inAllocation(input("b", "p", 10, {facts(3, 3, 0)}, OnExceeded::kClamp), 1),
                             input("c", "p", 10, {facts(2, 2, 0)}, OnExceeded::kClamp)},
                            {{"team-a", 40}, {"team-b", 30}});
  ASSERT_EQ(db.allocations.size(), 2u);
  ASSERT_TRUE(db.unallocated.has_value());
  EXPECT_EQ(db.unallocated->maxConnections, 27);
  EXPECT_EQ(db.find("a", "p")->effectiveMaxSize, 4);
  EXPECT_TRUE(db.find("a", "p")->clamped);
  EXPECT_EQ(db.find("b", "p")->effectiveMaxSize, 10);
  EXPECT_EQ(db.find("c", "p")->effectiveMaxSize, 10);
  EXPECT_EQ(db.allocations[0].worstCase, 40);
  EXPECT_EQ(db.allocations[0].unclampedWorstCase, 100);
  EXPECT_EQ(db.allocations[1].worstCase, 30);
  EXPECT_EQ(db.unallocated->worstCase, 20);
  EXPECT_EQ(db.allocations[0].policies, 1u);
  EXPECT_EQ(db.shareOf(*db.find("a", "p")), &db.allocations[0]);
  EXPECT_EQ(db.shareOf(*db.find("c", "p")), &*db.unallocated);
  EXPECT_EQ(db.worstCase, 90);
  EXPECT_TRUE(db.withinBudget());
}

TEST(ComputeDatabase, AShareOverItsAllocationIsOverBudgetThoughTheDatabaseFits) {
  // A Warn policy of 10 x 10 = 100 in an allocation of 50, on a database with 997 available.
  auto db =
      computeDatabase("orders", 1000, 3, {inAllocation(input("a", "p", 10, {facts(10, 10, 0)}), 0)}, {{"team-a", 50}});
  EXPECT_TRUE(db.allocations[0].over());
  EXPECT_LE(db.worstCase, *db.available);
  EXPECT_TRUE(db.overBudget());
  EXPECT_FALSE(db.withinBudget());
  EXPECT_EQ(db.unallocated->maxConnections, 947);
}

TEST(ComputeDatabase, AllocationsBindWhileMaxConnectionsIsUnknown) {
  // The allocation's share is known even when the database's capacity is not; the rest's share is not.
  auto db = computeDatabase("orders", std::nullopt, 3,
                            {inAllocation(input("a", "p", 10, {facts(10, 10, 0)}, OnExceeded::kClamp), 0),
                             input("c", "p", 10, {facts(10, 10, 0)}, OnExceeded::kClamp)},
                            {{"team-a", 50}});
  EXPECT_EQ(db.find("a", "p")->effectiveMaxSize, 5);
  EXPECT_EQ(db.find("c", "p")->effectiveMaxSize, 10);
  EXPECT_FALSE(db.unallocated->maxConnections.has_value());
  EXPECT_FALSE(db.unallocated->over());
}

TEST(ComputeDatabase, OvercommittedAllocationsLeaveTheRestNothing) {
  auto db = computeDatabase(
      "orders", 100, 0,
      {inAllocation(input("a", "p", 10, {facts(6, 6, 0)}), 0), inAllocation(input("b", "p", 10, {facts(6, 6, 0)}), 1)},
      {{"team-a", 60}, {"team-b", 60}});
  EXPECT_EQ(db.unallocated->maxConnections, 0);
  EXPECT_FALSE(db.anyShareOver()) << "each allocation holds its own";
  EXPECT_TRUE(db.overBudget()) << "but 120 > 100: the allocations promised more than there is";

  // With Clamp, the database as a whole is held to available: 100 shared by weight, 50 each, 8 per pool (48).
  auto clamped = computeDatabase("orders", 100, 0,
                                 {inAllocation(input("a", "p", 10, {facts(6, 6, 0)}, OnExceeded::kClamp), 0),
                                  inAllocation(input("b", "p", 10, {facts(6, 6, 0)}, OnExceeded::kClamp), 1)},
                                 {{"team-a", 60}, {"team-b", 60}});
  EXPECT_EQ(clamped.find("a", "p")->effectiveMaxSize, 8);
  EXPECT_EQ(clamped.find("b", "p")->effectiveMaxSize, 8);
  EXPECT_TRUE(clamped.withinBudget()) << clamped.worstCase;
}

TEST(ComputeDatabase, WithoutAllocationsThereAreNoShares) {
  auto db = computeDatabase("orders", 100, 3, {input("a", "p", 10, {facts(1, 1, 0)})});
  EXPECT_TRUE(db.allocations.empty());
  EXPECT_FALSE(db.unallocated.has_value());
  EXPECT_EQ(db.shareOf(db.policies[0]), nullptr);
  EXPECT_EQ(db.policies[0].allocation, -1);
}

TEST(PolicyInput, ReadsThePolicy) {
  policy::Policy p;
  p.namespace_ = "shop";
  p.name = "orders";
  p.spec.pool.maxSize = 15;
  p.spec.pool.processesPerPod = 3;
  p.spec.budget.onExceeded = OnExceeded::kClamp;
  p.spec.budget.weight = 4;
  auto in = policyInput(p);
  EXPECT_FALSE(in.countTerminating);
  p.spec.budget.terminatingPods = policy::TerminatingPods::kCount;
  in = policyInput(p);
  EXPECT_TRUE(in.countTerminating);
  EXPECT_EQ(in.maxSize, 15);
  EXPECT_EQ(in.processesPerPod, 3);
  EXPECT_EQ(in.weight, 4);
  EXPECT_EQ(in.onExceeded, OnExceeded::kClamp);
  EXPECT_TRUE(in.workloads.empty());
}

TEST(ComputeDatabase, ConnectionsOutsideThePoolCountPerPodAndClampLeavesThemAlone) {
  // 3 pods now, HPA max 10, surge 3: 13 pods at worst; maxSize 5 x 2 processes + 2 outside the pool = 12 per pod.
  PolicyInput p = input("shop", "api", 5, {facts(3, 10, 3)}, OnExceeded::kClamp, 1, 2);
  p.overheadPerPod = 2;
  auto db = computeDatabase("orders", 200, 0, {p});
  ASSERT_EQ(db.policies.size(), 1u);
  const auto& pb = db.policies[0];
  EXPECT_EQ(pb.workloads[0].perPod, 12);
  EXPECT_EQ(pb.steadyState, 3 * 12);
  EXPECT_EQ(pb.worstCase, 13 * 12);
  EXPECT_EQ(db.unclampedWorstCase, 13 * 12);
  EXPECT_EQ(pb.overheadPerPod, 2);

  // 100 available: the 26 connections outside the pools stay, and the pools share the 74 left: 74 / (13 x 2) = 2.
  auto tight = computeDatabase("orders", 100, 0, {p});
  EXPECT_TRUE(tight.policies[0].clamped);
  EXPECT_EQ(tight.policies[0].effectiveMaxSize, 2);
  EXPECT_EQ(tight.policies[0].worstCase, 13 * (2 * 2 + 2));
  EXPECT_LE(tight.worstCase, 100);
  EXPECT_EQ(tight.unclampedWorstCase, 13 * 12);
}

TEST(ComputeDatabase, TerminatingPodsCountInTheWorstCaseAndClampSharesWhatIsLeft) {
  // 3 pods now, HPA max 10, surge 3 (25%); maxSize 5 and 2 outside the pool = 7 per pod. Counted, the old pods
  // still terminating add 7: 20 pods at worst.
  WorkloadFacts w = facts(3, 10, 3);
  PolicyInput p = input("shop", "api", 5, {w}, OnExceeded::kClamp);
  p.overheadPerPod = 2;
  p.countTerminating = true;
  auto db = computeDatabase("orders", 200, 0, {p});
  const auto& pb = db.policies[0];
  EXPECT_TRUE(pb.countTerminating);
  EXPECT_EQ(pb.workloads[0].facts.terminating, 7);
  EXPECT_EQ(pb.workloads[0].worstCase, 20 * 7);
  EXPECT_EQ(pb.worstCase, 20 * 7);
  EXPECT_EQ(pb.terminatingWorstCase, 7 * 7);
  EXPECT_EQ(pb.steadyState, 3 * 7) << "terminating pods only exist during a rollout";
  EXPECT_FALSE(pb.clamped);

  // 100 available: the 40 connections outside the pools at 20 pods stay; the pools share 60: 60 / 20 = 3.
  auto tight = computeDatabase("orders", 100, 0, {p});
  EXPECT_EQ(tight.policies[0].effectiveMaxSize, 3);
  EXPECT_EQ(tight.policies[0].worstCase, 20 * 5);
  EXPECT_EQ(tight.policies[0].terminatingWorstCase, 7 * 5);

  // Not counted: 13 pods, as before.
  p.countTerminating = false;
  auto plain = computeDatabase("orders", 200, 0, {p});
  EXPECT_EQ(plain.policies[0].worstCase, 13 * 7);
  EXPECT_EQ(plain.policies[0].terminatingWorstCase, 0);
}

json ofKind(const std::string& apiVersion, const std::string& kind, const std::string& name,
            const std::string& extra = "{}") {
  json w = deployment(name);
  w["apiVersion"] = apiVersion;
  w["kind"] = kind;
  w.update(json::parse(extra));
  return w;
}

TEST(WorkloadFacts, ADaemonSetRunsAPodPerNodeFromItsStatusOrItsAnnotation) {
  auto live =
      workloadFacts(ofKind("apps/v1", "DaemonSet", "agent", R"({"status":{"desiredNumberScheduled":6}})"), nullptr);
  EXPECT_EQ(live.kind, WorkloadKind::kDaemonSet);
  EXPECT_EQ(live.podsNow, 6);
  EXPECT_EQ(live.podsMax, 6);
  EXPECT_EQ(live.surge, 0) << "a DaemonSet's maxSurge defaults to 0";
  EXPECT_EQ(live.podsSource, "nodes");
  EXPECT_EQ(underPolicy(live, true).terminating, 0)
      << "without surge a node's new pod starts only once its old one is gone";
  EXPECT_EQ(underPolicy(live, true).terminatingAt(6), 0);

  auto annotated =
      workloadFacts(ofKind("apps/v1", "DaemonSet", "agent",
                           R"({"metadata":{"name":"agent","namespace":"shop","annotations":{"poolguard.dev/nodes":"9"}},
                 "spec":{"updateStrategy":{"rollingUpdate":{"maxSurge":"20%"}},
                         "template":{"spec":{"containers":[{"name":"app"}]}}}})"),
                    nullptr);
  EXPECT_EQ(annotated.podsMax, 9);
  EXPECT_EQ(annotated.surge, 2) << "20% of 9 rounded up";
  EXPECT_EQ(annotated.podsSource, "nodes, annotation");
  EXPECT_EQ(underPolicy(annotated, true).terminating, 7) << "with surge, old pods may still terminate on 9 - 2 nodes";

  auto unknown = workloadFacts(ofKind("apps/v1", "DaemonSet", "agent"), nullptr);
  EXPECT_EQ(unknown.podsMax, 1);
  EXPECT_EQ(unknown.podsSource, "1 node assumed");

  auto onDelete = workloadFacts(
      ofKind("apps/v1", "DaemonSet", "agent",
             R"({"spec":{"updateStrategy":{"type":"OnDelete"},"template":{"spec":{"containers":[{"name":"app"}]}}},
                 "status":{"desiredNumberScheduled":4}})"),
      nullptr);
  EXPECT_EQ(onDelete.surge, 0);
  EXPECT_EQ(underPolicy(onDelete, true).terminating, 0) << "OnDelete replaces a pod only once it is gone";
}

TEST(WorkloadFacts, ACronJobCountsItsRunsByConcurrencyPolicy) {
  auto cronJob = [](const std::string& spec, const std::string& more = "{}") {
    json w = ofKind("batch/v1", "CronJob", "report", more);
    w["spec"] = json::parse(spec);
    return workloadFacts(w, nullptr);
  };
  const std::string job =
      R"("jobTemplate":{"spec":{"parallelism":3,"template":{"spec":{"containers":[{"name":"a"}]}}}})";
  auto allow = cronJob("{" + job + "}");
  EXPECT_EQ(allow.podsNow, 0) << "no run active";
  EXPECT_EQ(allow.podsMax, 6) << "Allow: 2 overlapping runs of 3 pods assumed";
  EXPECT_EQ(allow.podsSource, "2 runs assumed");
  EXPECT_EQ(allow.surge, 0);

  auto annotated =
      cronJob("{" + job + "}", R"({"metadata":{"name":"report","annotations":{"poolguard.dev/concurrent-runs":"4"}}})");
  EXPECT_EQ(annotated.podsMax, 12);
  EXPECT_EQ(annotated.podsSource, "4 runs");

  auto forbid = cronJob(R"({"concurrencyPolicy":"Forbid",)" + job + "}");
  EXPECT_EQ(forbid.podsMax, 3);
  EXPECT_EQ(underPolicy(forbid, true).terminating, 0);

  auto replace = cronJob(R"({"concurrencyPolicy":"Replace",)" + job + "}");
  EXPECT_EQ(replace.podsMax, 3);
  EXPECT_EQ(underPolicy(replace, true).terminating, 3) << "the replaced run's pods terminate as the next starts";
  EXPECT_EQ(underPolicy(replace, false).terminating, 0);

  auto running = cronJob(R"({"concurrencyPolicy":"Forbid","suspend":true,)" + job + "}",
                         R"({"status":{"active":[{"name":"report-1"}]}})");
  EXPECT_EQ(running.podsNow, 3);
  EXPECT_EQ(running.podsMax, 3) << "suspended: only the run already active";
  auto suspended = cronJob(R"({"suspend":true,)" + job + "}");
  EXPECT_EQ(suspended.podsMax, 0);
  auto suspendedReplace = cronJob(R"({"suspend":true,"concurrencyPolicy":"Replace",)" + job + "}",
                                  R"({"status":{"active":[{"name":"report-1"}]}})");
  EXPECT_EQ(underPolicy(suspendedReplace, true).terminating, 0) << "a suspended CronJob replaces no run";

  // Counts that do not fit 32 bits are capped, never wrapped.
  auto huge = cronJob(R"({"jobTemplate":{"spec":{"parallelism":65536,"template":{}}}})",
                      R"({"metadata":{"name":"report","annotations":{"poolguard.dev/concurrent-runs":"65536"}}})");
  EXPECT_EQ(huge.podsMax, std::numeric_limits<int32_t>::max());

  auto fewerCompletions = cronJob(
      R"({"concurrencyPolicy":"Forbid","jobTemplate":{"spec":{"parallelism":5,"completions":2,"template":{}}}})");
  EXPECT_EQ(fewerCompletions.podsMax, 2) << "never more pods at once than completions";
}

TEST(WorkloadFacts, ARolloutSurgesByItsStrategy) {
  auto rollout = [](const std::string& strategy) {
    return workloadFacts(ofKind("argoproj.io/v1alpha1", "Rollout", "web",
                                R"({"spec":{"replicas":4,"strategy":)" + strategy +
                                    R"(,"template":{"spec":{"containers":[{"name":"app"}]}}}})"),
                         nullptr);
  };
  auto canary = rollout(R"({"canary":{"steps":[{"setWeight":20}]}})");
  EXPECT_EQ(canary.surge, 1) << "25% of 4, like a Deployment";
  EXPECT_EQ(underPolicy(canary, true).peakPods(), 8);
  auto blueGreen = rollout(R"({"blueGreen":{"activeService":"web"}})");
  EXPECT_EQ(blueGreen.surge, 4) << "promotion runs both versions at full scale";
  EXPECT_EQ(underPolicy(blueGreen, true).peakPods(), 8) << "never more than both versions";
  auto routed = rollout(R"({"canary":{"trafficRouting":{"nginx":{}}}})");
  EXPECT_EQ(routed.surge, 4) << "with traffic routing the stable pods stay while the canary grows";

  // An HPA scales a Rollout when its scaleTargetRef names Argo Rollouts' API group.
  json h = hpaObject("Rollout", "web", 10);
  h["spec"]["scaleTargetRef"]["apiVersion"] = "argoproj.io/v1alpha1";
  auto hpaOfRollout = decoded(h);
  EXPECT_EQ(workloadFacts(ofKind("argoproj.io/v1alpha1", "Rollout", "web", R"({"spec":{"replicas":2}})"), &hpaOfRollout)
                .podsMax,
            10);
  EXPECT_FALSE(hpaOfRollout.targets(WorkloadKind::kDeployment, "shop", "web"));
  h["spec"]["scaleTargetRef"].erase("apiVersion");
  EXPECT_FALSE(decoded(h).targets(WorkloadKind::kRollout, "shop", "web")) << "apps/v1 assumed; Rollout is not";
}

TEST(WorkloadFacts, AJobCountsItsParallelPodsUntilItFinishes) {
  auto job = [](const std::string& spec, const std::string& more = "{}") {
    json w = ofKind("batch/v1", "Job", "migrate", more);
    w["spec"] = json::parse(spec);
    return workloadFacts(w, nullptr);
  };
  auto running = job(R"({"parallelism":4,"completions":10,"template":{}})");
  EXPECT_EQ(running.podsNow, 4);
  EXPECT_EQ(running.podsMax, 4);
  EXPECT_EQ(running.surge, 0);
  EXPECT_EQ(underPolicy(running, true).terminating, 4)
      << "a failed pod's replacement starts while it terminates (podReplacementPolicy TerminatingOrFailed)";
  EXPECT_EQ(underPolicy(running, false).terminating, 0);
  EXPECT_EQ(job(R"({"parallelism":4,"completions":2,"template":{}})").podsMax, 2);
  EXPECT_EQ(job(R"({"template":{}})").podsMax, 1);
  auto waits = job(R"({"parallelism":4,"podReplacementPolicy":"Failed","template":{}})");
  EXPECT_EQ(underPolicy(waits, true).terminating, 0);
  auto done =
      job(R"({"parallelism":4,"template":{}})", R"({"status":{"conditions":[{"type":"Failed","status":"True"}]}})");
  EXPECT_EQ(done.podsMax, 0);
  EXPECT_EQ(underPolicy(done, true).terminating, 0);
}

}  // namespace
}  // namespace poolguard::budget
