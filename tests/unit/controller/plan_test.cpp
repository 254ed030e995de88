// plan() as a function of values: a Snapshot in, the decisions out, without a cache, a client or a clock.
#include "controller/plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "controller/reconciler.h"
#include "policy/parse.h"

namespace poolguard::controller {
namespace {

using policy::WorkloadKind;

PolicyView policyView(const std::string& ns, const std::string& name, json spec) {
  json base = {{"selector", {{"matchLabels", {{"app", "web"}}}}},
               {"containers", {"app"}},
               {"pool", {{"maxSize", 10}}},
               {"database", {{"name", "orders"}, {"maxConnections", 100}}}};
  base.merge_patch(spec);
  json obj = {{"apiVersion", "poolguard.dev/v1alpha1"},
              {"kind", "ConnectionPoolPolicy"},
              {"metadata",
               {{"name", name},
                {"namespace", ns},
                {"generation", 3},
                {"resourceVersion", "1"},
                {"creationTimestamp", "2026-01-01T00:00:00Z"}}},
              {"spec", base}};
  auto record = std::make_shared<const model::PolicyObject>(model::decodePolicy(obj));
  EXPECT_TRUE(record->parsed) << record->invalidMessage;
  return viewOf(record);
}

WorkloadView deployment(const std::string& ns, const std::string& name, int replicas, json extraMeta = json::object()) {
  json obj = {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", {{"name", name}, {"namespace", ns}, {"resourceVersion", "10"}, {"labels", {{"app", "web"}}}}},
      {"spec",
       {{"replicas", replicas},
        {"template", {{"spec", {{"containers", json::array({{{"name", "app"}, {"image", "x"}}})}}}}}}}};
  obj["metadata"].merge_patch(extraMeta);
  model::Diagnostics d;
  auto record = std::make_shared<const model::Workload>(model::decodeWorkload(obj, d));
  EXPECT_TRUE(d.ok());
  return WorkloadView{WorkloadKind::kDeployment, record, std::nullopt};
}

std::string envIn(const json& apply, const std::string& var) {
  for (const auto& c : apply["spec"]["template"]["spec"]["containers"]) {
    for (const auto& e : c.value("env", json::array())) {
      if (e.value("name", "") == var) return e.value("value", "");
    }
  }
  return "";
}

Snapshot snapshotOf(const PolicyView& self, std::vector<PolicyView> policies, std::vector<WorkloadView> workloads) {
  Snapshot s;
  s.self = self;
  s.policies = std::move(policies);
  for (auto& w : workloads) s.workloads[w.object->meta.namespace_].push_back(std::move(w));
  return s;
}

TEST(Plan, PoliciesOfOneDatabaseInTwoNamespacesShareTheBudgetAndClampBoth) {
  auto a = policyView("team-a", "pool", {{"budget", {{"onExceeded", "Clamp"}}}});
  auto b = policyView("team-b", "pool", {{"budget", {{"onExceeded", "Clamp"}}}});
  // Each asks (6 pods + 2 surge) x 10 = 80 connections of one database with 100: together over budget.
  auto s = snapshotOf(a, {a, b}, {deployment("team-a", "web", 6), deployment("team-b", "web", 6)});
  Plan p = plan(s);
  EXPECT_EQ(p.database.unclampedWorstCase, 2 * (6 + 2) * 10) << "maxSurge 25% of 6 rounds up to 2";
  EXPECT_LE(p.database.worstCase, 100);
  ASSERT_EQ(p.workloads.size(), 1u) << "only this policy's namespace is written";
  EXPECT_TRUE(p.workloads[0].writeWorkload);
  const int clamped = p.status.budget.effectiveMaxSize;
  EXPECT_LT(clamped, 10);
  EXPECT_TRUE(p.status.budget.clamped);
  EXPECT_EQ(envIn(p.workloads[0].apply, "POOL_MAX_SIZE"), std::to_string(clamped));
  // The other namespace's reconcile sees the same budget.
  auto fromB = snapshotOf(b, {a, b}, {deployment("team-a", "web", 6), deployment("team-b", "web", 6)});
  EXPECT_EQ(plan(fromB).status.budget.effectiveMaxSize, clamped);
  EXPECT_EQ(plan(fromB).database.worstCase, p.database.worstCase);
}

TEST(Plan, AcceptedSaysWhereTheIdleInTransactionTimeoutWillNotReach) {
  const json timeout = {{"pool", {{"maxSize", 10}, {"idleInTransactionTimeout", "45s"}}}};
  auto accepted = [](const Plan& p) {
    for (const auto& c : computeConditions(p.status)) {
      if (c.type == "Accepted") return c.status + " " + c.message;
    }
    return std::string();
  };
  // Generic: every library it names reads PGOPTIONS.
  auto generic = policyView("shop", "pool", timeout);
  EXPECT_EQ(accepted(plan(snapshotOf(generic, {generic}, {deployment("shop", "web", 1)}))), "True the spec is valid");

  // SQLAlchemy: asyncpg reads nothing of it.
  json alchemy = timeout;
  alchemy["profile"] = "SQLAlchemy";
  auto sqlalchemy = policyView("shop", "pool", alchemy);
  EXPECT_THAT(accepted(plan(snapshotOf(sqlalchemy, {sqlalchemy}, {deployment("shop", "web", 1)}))),
              ::testing::HasSubstr("True the spec is valid, but pool.idleInTransactionTimeout will not reach every "
                                   "session: asyncpg reads no PGOPTIONS"));

  // A container that sets PGOPTIONS itself keeps it, and its sessions get no timeout unless its value has one.
  auto withOwnOptions = [](const std::string& name, const std::string& value) {
    json container = {{"name", "app"}, {"env", json::array({{{"name", "PGOPTIONS"}, {"value", value}}})}};
    json obj = {{"apiVersion", "apps/v1"},
                {"kind", "Deployment"},
                {"metadata", {{"name", name}, {"namespace", "shop"}, {"labels", {{"app", "web"}}}}}};
    obj["spec"]["replicas"] = 1;
    obj["spec"]["template"]["spec"]["containers"] = json::array({container});
    model::Diagnostics d;
    auto record = std::make_shared<const model::Workload>(model::decodeWorkload(obj, d));
    return WorkloadView{WorkloadKind::kDeployment, record, std::nullopt};
  };
  const std::string own = accepted(
      plan(snapshotOf(generic, {generic},
                      {withOwnOptions("web", "-c search_path=shop"),
                       withOwnOptions("api", "-c search_path=shop -c idle_in_transaction_session_timeout=9000")})));
  EXPECT_EQ(own,
            "True the spec is valid, but pool.idleInTransactionTimeout will not reach every session: Deployment web "
            "container app (PGOPTIONS) sets its own value, which poolguard leaves alone (add -c "
            "idle_in_transaction_session_timeout=45000 to it) (docs/profiles.md#idle-in-transaction)")
      << "api's own value carries a timeout of its own";
}

TEST(Plan, TheSameSnapshotGivesTheSamePlan) {
  auto a = policyView("shop", "pool", json::object());
  auto s = snapshotOf(a, {a}, {deployment("shop", "web", 2), deployment("shop", "api", 3)});
  Plan first = plan(s), second = plan(s);
  ASSERT_EQ(first.workloads.size(), 2u);
  ASSERT_EQ(first.workloads.size(), second.workloads.size());
  for (size_t i = 0; i < first.workloads.size(); ++i) {
    EXPECT_EQ(first.workloads[i].apply, second.workloads[i].apply);
    EXPECT_EQ(first.workloads[i].hash, second.workloads[i].hash);
  }
  EXPECT_EQ(buildStatus(first.status, {}, "t"), buildStatus(second.status, {}, "t"));
}

TEST(Plan, AnHpaCountsWithItsMaximum) {
  auto a = policyView("shop", "pool", json::object());
  auto w = deployment("shop", "web", 2);
  model::Diagnostics d;
  w.hpa = model::decodeHpa({{"metadata", {{"name", "web"}, {"namespace", "shop"}}},
                            {"spec",
                             {{"scaleTargetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "web"}}},
                              {"maxReplicas", 8}}}},
                           d);
  Plan p = plan(snapshotOf(a, {a}, {w}));
  EXPECT_EQ(p.database.worstCase, (8 + 2) * 10);
  EXPECT_EQ(p.status.workloads.at(0).maxReplicas, 8);
}

TEST(Plan, AHigherPriorityPolicyTakesTheWorkloadAndTheLoserSaysSo) {
  auto low = policyView("shop", "low", json::object());
  auto high = policyView("shop", "high", {{"priority", 5}});
  Plan p = plan(snapshotOf(low, {low, high}, {deployment("shop", "web", 1)}));
  EXPECT_TRUE(p.workloads.empty());
  ASSERT_EQ(p.status.workloads.size(), 1u);
  EXPECT_EQ(p.status.workloads[0].state, WorkloadState::kConflicted);
  EXPECT_THAT(p.status.workloads[0].message, ::testing::HasSubstr("governed by policy high"));
}

TEST(Plan, WriteMemoryDecidesBetweenWaitingForTheCacheACorrectionAndABackOff) {
  auto a = policyView("shop", "pool", json::object());
  auto s = snapshotOf(a, {a}, {deployment("shop", "web", 1)});
  const std::string hash = plan(s).workloads.at(0).hash;

  // Our apply of these settings was decided on resourceVersion 10, still the cached one: the cache is behind.
  s.writes["Deployment shop/web"] = WriteMemory{"10", hash, std::nullopt, ""};
  Plan behind = plan(s);
  EXPECT_FALSE(behind.workloads.at(0).needsWrite());
  EXPECT_EQ(behind.status.workloads.at(0).state, WorkloadState::kApplied);

  // It landed (the cache moved past it) and the settings are gone again: a correction of another manager.
  s.writes["Deployment shop/web"] = WriteMemory{"9", hash, std::nullopt, ""};
  Plan corrected = plan(s);
  EXPECT_TRUE(corrected.workloads.at(0).writeWorkload);
  EXPECT_TRUE(corrected.workloads.at(0).correction);

  // A back-off in progress: no write, the message, and a requeue when it ends.
  s.steadyNow = Clock::steady_point{} + std::chrono::seconds(100);
  s.writes["Deployment shop/web"] =
      WriteMemory{"9", hash, Clock::steady_point{} + std::chrono::seconds(160), "field manager \"rogue\" keeps ..."};
  Plan waiting = plan(s);
  EXPECT_FALSE(waiting.workloads.at(0).needsWrite());
  EXPECT_EQ(waiting.status.workloads.at(0).state, WorkloadState::kFailed);
  EXPECT_THAT(waiting.status.workloads.at(0).message, ::testing::HasSubstr("rogue"));
  EXPECT_EQ(waiting.requeueAfter, std::chrono::milliseconds(60000));
}

TEST(Plan, AWorkloadThatLeftTheSelectorIsReleasedInEnforceOnly) {
  auto a = policyView("shop", "pool", json::object());
  auto left =
      deployment("shop", "old", 1, {{"labels", {{"app", "other"}}}, {"annotations", {{kPolicyAnnotation, "pool"}}}});
  EXPECT_EQ(plan(snapshotOf(a, {a}, {left})).releases.size(), 1u);
  auto audit = policyView("shop", "pool", {{"mode", "Audit"}});
  EXPECT_TRUE(plan(snapshotOf(audit, {audit}, {left})).releases.empty());
  // Another policy selects it now: it writes its own settings, nothing is released.
  auto other = policyView("shop", "other", {{"selector", {{"matchLabels", {{"app", "other"}}}}}});
  EXPECT_TRUE(plan(snapshotOf(a, {a, other}, {left})).releases.empty());
}

TEST(Plan, TellsThePoliciesOfTheDatabaseWhenItsTotalsMoved) {
  auto a = policyView("team-a", "pool", json::object());
  auto b = policyView("team-b", "pool", json::object());
  auto unrelated = policyView("team-c", "pool", {{"database", {{"name", "billing"}}}});
  auto s = snapshotOf(a, {a, b, unrelated}, {deployment("team-a", "web", 2)});
  Plan moved = plan(s);
  EXPECT_THAT(moved.alsoEnqueue, ::testing::ElementsAre("team-b/pool"));
  s.storedStatus = {{"budget", {{"worstCase", moved.database.worstCase}, {"steadyState", moved.database.steadyState}}}};
  EXPECT_TRUE(plan(s).alsoEnqueue.empty()) << "same totals: nobody to tell";
  // Replicas change within the HPA's range: the worst case stays, the steady state the others report moves.
  auto scaled = deployment("team-a", "web", 3);
  scaled.hpa = model::Hpa{};
  scaled.hpa->meta.namespace_ = "team-a";
  scaled.hpa->targetKind = "Deployment";
  scaled.hpa->targetName = "web";
  scaled.hpa->maxReplicas = 6;
  s.workloads["team-a"] = {scaled};
  Plan three = plan(s);
  s.storedStatus = {{"budget", {{"worstCase", three.database.worstCase}, {"steadyState", three.database.steadyState}}}};
  scaled.object = deployment("team-a", "web", 4).object;
  s.workloads["team-a"] = {scaled};
  Plan four = plan(s);
  ASSERT_EQ(four.database.worstCase, three.database.worstCase);
  ASSERT_NE(four.database.steadyState, three.database.steadyState);
  EXPECT_THAT(four.alsoEnqueue, ::testing::ElementsAre("team-b/pool"));
}

policy::ClusterBudget clusterBudget(std::optional<int32_t> maxConnections, std::optional<int32_t> ceiling,
                                    bool requireLeakDetection = false) {
  policy::ClusterBudget b;
  b.database = "orders";
  b.maxConnections = maxConnections;
  b.reservedConnections = 10;
  b.ceilings.maxSize = ceiling;
  b.ceilings.requireLeakDetection = requireLeakDetection;
  return b;
}

TEST(Plan, AClusterBudgetsCapacityWinsAndThePolicyIsToldWhenItDisagrees) {
  auto a = policyView("shop", "pool", json::object());  // declares maxConnections 100, reserved 3
  auto s = snapshotOf(a, {a}, {deployment("shop", "web", 2)});
  s.clusterBudget = clusterBudget(200, std::nullopt);
  Plan p = plan(s);
  EXPECT_EQ(p.database.maxConnections, 200);
  EXPECT_EQ(p.database.reservedConnections, 10);
  EXPECT_EQ(p.database.available, 190);
  auto conditions = computeConditions(p.status);
  auto within = std::find_if(conditions.begin(), conditions.end(),
                             [](const Condition& c) { return c.type == condition::kWithinBudget; });
  ASSERT_NE(within, conditions.end());
  EXPECT_EQ(within->reason, "WithinBudget");
  EXPECT_THAT(within->message, ::testing::HasSubstr("from ClusterConnectionBudget orders"));
  EXPECT_THAT(within->message, ::testing::HasSubstr("this policy's database.maxConnections 100 is not used: "
                                                    "ClusterConnectionBudget orders sets 200"));
  // A budget without maxConnections leaves the policies' declaration in force, with the budget's reserve; without
  // a reserve of its own, the policies' (3 here) applies.
  s.clusterBudget = clusterBudget(std::nullopt, std::nullopt);
  EXPECT_EQ(plan(s).database.maxConnections, 100);
  EXPECT_EQ(plan(s).database.available, 90);
  s.clusterBudget->reservedConnections.reset();
  EXPECT_EQ(plan(s).database.available, 97);
}

TEST(Plan, ACeilingCapsEveryPoolOfTheDatabaseAndSaysCapped) {
  auto big = policyView("team-a", "pool", {{"pool", {{"maxSize", 50}}}});
  auto small = policyView("team-b", "pool", {{"pool", {{"maxSize", 4}}}});
  auto s = snapshotOf(big, {big, small}, {deployment("team-a", "web", 2), deployment("team-b", "web", 2)});
  s.clusterBudget = clusterBudget(1000, 8, /*requireLeakDetection=*/true);
  Plan p = plan(s);
  EXPECT_EQ(p.status.budget.effectiveMaxSize, 8);
  EXPECT_EQ(p.database.worstCase, (2 + 1) * 8 + (2 + 1) * 4) << "the ceiling binds the other namespace's pool too";
  ASSERT_EQ(p.workloads.size(), 1u);
  EXPECT_EQ(envIn(p.workloads[0].apply, "POOL_MAX_SIZE"), "8");
  EXPECT_EQ(envIn(p.workloads[0].apply, "POOL_LEAK_DETECTION_THRESHOLD_MS"), "30000") << "leak detection required";
  auto conditions = computeConditions(p.status);
  auto within = std::find_if(conditions.begin(), conditions.end(),
                             [](const Condition& c) { return c.type == condition::kWithinBudget; });
  ASSERT_NE(within, conditions.end());
  EXPECT_EQ(within->reason, "Capped");
  EXPECT_THAT(within->message, ::testing::HasSubstr("8 is rendered"));
  EXPECT_THAT(within->message, ::testing::HasSubstr("requires leak detection"));
  // The small pool is under the ceiling: not capped.
  s.self = small;
  Plan q = plan(s);
  EXPECT_EQ(q.status.budget.effectiveMaxSize, 4);
  EXPECT_FALSE(q.status.budget.ceiling);
}

policy::BudgetAllocation allocation(const std::string& name, const std::string& team, int32_t maxConnections) {
  policy::BudgetAllocation a;
  a.name = name;
  a.namespaceSelector.matchLabels = {{"team", team}};
  a.maxConnections = maxConnections;
  return a;
}

// A copy: callers pass the conditions as a temporary.
Condition withinBudgetOf(const std::vector<Condition>& conditions) {
  auto it = std::find_if(conditions.begin(), conditions.end(),
                         [](const Condition& c) { return c.type == condition::kWithinBudget; });
  EXPECT_NE(it, conditions.end());
  return it == conditions.end() ? Condition{} : *it;
}

TEST(Plan, ANamespaceCountsAgainstTheFirstAllocationThatMatchesItsLabels) {
  auto a = policyView("shop", "pool", {{"budget", {{"onExceeded", "Clamp"}}}});
  auto b = policyView("billing", "pool", {{"budget", {{"onExceeded", "Clamp"}}}});
  auto c = policyView("misc", "pool", {{"budget", {{"onExceeded", "Clamp"}}}});
  // Each: (6 + 2 surge) x 10 = 80.
  auto s = snapshotOf(a, {a, b, c},
                      {deployment("shop", "web", 6), deployment("billing", "web", 6), deployment("misc", "web", 6)});
  s.clusterBudget = clusterBudget(1000, std::nullopt);
  s.clusterBudget->allocations = {allocation("payments", "pay", 40), allocation("retail", "retail", 500)};
  // billing matches both allocations: the first (payments) counts it. misc matches none.
  s.namespaceLabels = {{"shop", {{"team", "retail"}}}, {"billing", {{"team", "pay"}}}};
  s.clusterBudget->allocations[1].namespaceSelector.matchLabels.clear();
  s.clusterBudget->allocations[1].namespaceSelector.matchExpressions = {
      {"kubernetes.io/metadata.name", "In", {"shop", "billing"}}};
  Plan p = plan(s);
  ASSERT_EQ(p.database.allocations.size(), 2u);
  EXPECT_EQ(p.database.allocations[0].worstCase, 40) << "billing, clamped to its 40";
  EXPECT_EQ(p.database.allocations[1].worstCase, 80) << "shop, by the name label every namespace carries";
  EXPECT_EQ(p.database.unallocated->worstCase, 80) << "misc";
  EXPECT_EQ(p.database.unallocated->maxConnections, 990 - 540);
  EXPECT_EQ(p.status.budget.effectiveMaxSize, 10) << "shop's share fits: not clamped";
  ASSERT_TRUE(p.status.budget.allocation.has_value());
  EXPECT_EQ(p.status.budget.allocation->name, "retail");
  EXPECT_EQ(withinBudgetOf(computeConditions(p.status)).reason, "WithinBudget");

  s.self = b;
  Plan q = plan(s);
  EXPECT_EQ(q.status.budget.effectiveMaxSize, 5) << "40 / (6 + 2)";
  EXPECT_TRUE(q.status.budget.clamped);
  const Condition clamped = withinBudgetOf(computeConditions(q.status));
  EXPECT_EQ(clamped.reason, "Clamped");
  EXPECT_THAT(clamped.message, ::testing::HasSubstr("allocation payments (this namespace's share): worst case 40 "
                                                    "against 40"));

  // Relabelled, billing moves to retail (no longer the first match) and is no longer clamped.
  s.namespaceLabels["billing"] = {{"team", "retail"}};
  Plan moved = plan(s);
  EXPECT_EQ(moved.status.budget.effectiveMaxSize, 10);
  EXPECT_EQ(moved.status.budget.allocation->name, "retail");
  EXPECT_EQ(moved.database.allocations[1].worstCase, 160);
  EXPECT_FALSE(moved.alsoEnqueue.empty()) << "the shares moved: the other policies are told";
}

TEST(Plan, APolicyWhoseAllocationIsOverIsOverBudgetThoughTheDatabaseFits) {
  auto a = policyView("shop", "pool", json::object());  // Warn: (6 + 2) x 10 = 80
  auto s = snapshotOf(a, {a}, {deployment("shop", "web", 6)});
  s.clusterBudget = clusterBudget(1000, std::nullopt);
  s.clusterBudget->allocations = {allocation("retail", "retail", 50)};
  s.namespaceLabels = {{"shop", {{"team", "retail"}}}};
  Plan p = plan(s);
  const Condition over = withinBudgetOf(computeConditions(p.status));
  EXPECT_EQ(over.status, "False");
  EXPECT_EQ(over.reason, "BudgetExceeded");
  EXPECT_THAT(over.message,
              ::testing::HasSubstr("allocation retail (this namespace's share): worst case 80 against 50"));
  EXPECT_THAT(over.message, ::testing::HasSubstr("ask for a larger allocation"));
  json status = buildStatus(p.status, {}, "2026-01-01T00:00:00Z");
  EXPECT_EQ(status["budget"]["allocation"], json({{"name", "retail"}, {"maxConnections", 50}, {"worstCase", 80}}));
}

PolicyView clusterPolicyView(const std::string& name, json namespaceSelector, json spec = json::object()) {
  json base = {{"namespaceSelector", std::move(namespaceSelector)},
               {"selector", {{"matchLabels", {{"app", "web"}}}}},
               {"containers", {"app"}},
               {"pool", {{"maxSize", 10}}},
               {"database", {{"name", "orders"}, {"maxConnections", 100}}}};
  base.merge_patch(spec);
  json obj = {
      {"apiVersion", "poolguard.dev/v1alpha1"},
      {"kind", "ClusterConnectionPoolPolicy"},
      {"metadata",
       {{"name", name}, {"generation", 1}, {"resourceVersion", "1"}, {"creationTimestamp", "2026-01-01T00:00:00Z"}}},
      {"spec", base}};
  auto record = std::make_shared<const model::PolicyObject>(model::decodePolicy(obj));
  EXPECT_TRUE(record->parsed) << record->invalidMessage;
  EXPECT_TRUE(record->cluster);
  return viewOf(record);
}

TEST(Plan, AClusterPolicyGovernsTheMatchingNamespacesThatHaveNoPolicyOfTheirOwn) {
  auto baseline = clusterPolicyView("baseline", {{"matchLabels", {{"tier", "apps"}}}});
  auto own = policyView("team-b", "pool", {{"pool", {{"maxSize", 4}}}});
  auto s = snapshotOf(baseline, {baseline, own},
                      {deployment("team-a", "web", 2), deployment("team-b", "web", 2), deployment("other", "web", 2)});
  s.namespaceLabels = {{"team-a", {{"tier", "apps"}}}, {"team-b", {{"tier", "apps"}}}};
  Plan p = plan(s);
  // team-a: governed; team-b: its own policy's, left alone (no conflict); other: not selected by namespace.
  ASSERT_EQ(p.workloads.size(), 1u);
  EXPECT_EQ(p.workloads[0].namespace_, "team-a");
  EXPECT_TRUE(p.workloads[0].writeWorkload);
  EXPECT_EQ(p.workloads[0].apply["metadata"]["annotations"]["poolguard.dev/cluster-policy"], "baseline");
  EXPECT_FALSE(p.workloads[0].apply["metadata"]["annotations"].contains("poolguard.dev/policy"));
  ASSERT_EQ(p.status.workloads.size(), 1u);
  EXPECT_EQ(p.status.workloads[0].namespace_, "team-a");
  json status = buildStatus(p.status, {}, "2026-01-01T00:00:00Z");
  EXPECT_EQ(status["workloadStatuses"][0]["namespace"], "team-a");
  // The budget counts both: the cluster policy's pool in team-a, the namespace's own in team-b.
  EXPECT_EQ(p.database.worstCase, (2 + 1) * 10 + (2 + 1) * 4);
  ASSERT_NE(p.database.find("team-a", "baseline", /*cluster=*/true), nullptr);
  EXPECT_EQ(p.database.find("team-a", "baseline"), nullptr) << "not a ConnectionPoolPolicy of team-a";

  // The namespace's own policy sees the same budget, and governs its workload.
  s.self = own;
  Plan q = plan(s);
  EXPECT_EQ(q.database.worstCase, p.database.worstCase);
  ASSERT_EQ(q.workloads.size(), 1u);
  EXPECT_EQ(envIn(q.workloads[0].apply, "POOL_MAX_SIZE"), "4");
}

TEST(Plan, AmongClusterPoliciesPriorityDecidesAndTheLoserSaysSo) {
  auto low = clusterPolicyView("low", json::object());
  auto high = clusterPolicyView("high", json::object(), {{"priority", 5}});
  auto s = snapshotOf(low, {low, high}, {deployment("team-a", "web", 1)});
  Plan p = plan(s);
  ASSERT_EQ(p.status.workloads.size(), 1u);
  EXPECT_EQ(p.status.workloads[0].state, WorkloadState::kConflicted);
  EXPECT_THAT(p.status.workloads[0].message, ::testing::HasSubstr("governed by ClusterConnectionPoolPolicy high"));
  EXPECT_TRUE(p.workloads.empty());
}

TEST(Plan, AClusterPolicysPoolsAreClampedPerAllocationOfTheirNamespace) {
  auto baseline = clusterPolicyView("baseline", json::object(), {{"budget", {{"onExceeded", "Clamp"}}}});
  // (6 + 2 surge) x 10 = 80 in each namespace.
  auto s = snapshotOf(baseline, {baseline}, {deployment("team-a", "web", 6), deployment("team-b", "web", 6)});
  s.clusterBudget = clusterBudget(1000, std::nullopt);
  s.clusterBudget->allocations = {allocation("small", "small", 40)};
  s.namespaceLabels = {{"team-a", {{"team", "small"}}}};
  Plan p = plan(s);
  ASSERT_EQ(p.workloads.size(), 2u);
  std::map<std::string, std::string> sizes;
  for (const auto& w : p.workloads) sizes[w.namespace_] = envIn(w.apply, "POOL_MAX_SIZE");
  EXPECT_EQ(sizes["team-a"], "5") << "40 / 8 pods in the small allocation";
  EXPECT_EQ(sizes["team-b"], "10") << "the rest fits";
  EXPECT_EQ(p.status.budget.effectiveMaxSize, 5) << "the status reports the smallest pool";
  EXPECT_EQ(p.status.budget.policyWorstCase, 40 + 80);
  EXPECT_FALSE(p.status.budget.allocation) << "a cluster policy's namespaces may be in several shares";
}

TEST(Plan, AClusterPolicyReleasesAWorkloadWhoseNamespaceLeftItsSelectorButNotOneHandedOver) {
  auto baseline = clusterPolicyView("baseline", {{"matchLabels", {{"tier", "apps"}}}});
  json mine = {{"annotations", {{"poolguard.dev/cluster-policy", "baseline"}}}};
  auto s = snapshotOf(baseline, {baseline}, {deployment("left", "web", 1, mine), deployment("taken", "web", 1, mine)});
  s.namespaceLabels = {{"taken", {{"tier", "apps"}}}};  // "left" lost its label
  auto own = policyView("taken", "pool", json::object());
  s.policies.push_back(own);
  Plan p = plan(s);
  ASSERT_EQ(p.releases.size(), 1u);
  EXPECT_EQ(p.releases[0].namespace_, "left");
  EXPECT_TRUE(p.workloads.empty()) << "taken is its own policy's now: that policy writes over ours";
}

TEST(Plan, AWorkloadWhoseNewGovernorIsInAuditIsReleasedNotLeftBehind) {
  // P wrote web, then stopped selecting it; an Audit cluster policy selects it now but writes nothing.
  auto p = policyView("shop", "pool", {{"selector", {{"matchLabels", {{"app", "other"}}}}}});
  auto audit = clusterPolicyView("baseline", json::object(), {{"mode", "Audit"}});
  json written = {{"annotations", {{"poolguard.dev/policy", "pool"}}}};
  auto s = snapshotOf(p, {p, audit}, {deployment("shop", "web", 1, written)});
  Plan plan1 = plan(s);
  ASSERT_EQ(plan1.releases.size(), 1u) << "an Audit successor writes nothing: P gives its fields back";
  // In Enforce the cluster policy writes over P's settings in one apply: nothing to release.
  s.policies[1] = clusterPolicyView("baseline", json::object());
  EXPECT_TRUE(plan(s).releases.empty());
}

TEST(Plan, AClusterPolicyOverAShareOfOneOfItsNamespacesIsOverBudget) {
  auto baseline = clusterPolicyView("baseline", json::object());  // Warn: (6 + 2) x 10 = 80 per namespace
  auto s = snapshotOf(baseline, {baseline}, {deployment("team-a", "web", 6), deployment("team-b", "web", 6)});
  s.clusterBudget = clusterBudget(1000, std::nullopt);
  s.clusterBudget->allocations = {allocation("small", "small", 40)};
  s.namespaceLabels = {{"team-a", {{"team", "small"}}}};
  Plan p = plan(s);
  const Condition c = withinBudgetOf(computeConditions(p.status));
  EXPECT_EQ(c.reason, "BudgetExceeded");
  EXPECT_THAT(c.message, ::testing::HasSubstr("allocation small: worst case 80 against 40"));
}

TEST(Plan, AClusterPolicyWithAnInvalidSpecNeverBreaksTheNamespacedOnes) {
  auto own = policyView("shop", "pool", json::object());
  // As the cache holds one the operator cannot parse (say, stored under an older, looser schema).
  auto broken = std::make_shared<model::PolicyObject>();
  broken->cluster = true;
  broken->meta.name = "broken";
  broken->invalidMessage = "ClusterConnectionPoolPolicy \"broken\" is invalid: spec.pool.maxSize: Required value";
  auto s = snapshotOf(own, {own, viewOf(broken)}, {deployment("shop", "web", 2)});
  Plan p = plan(s);
  ASSERT_EQ(p.workloads.size(), 1u);
  EXPECT_TRUE(p.workloads[0].writeWorkload);
  EXPECT_EQ(p.status.workloads[0].state, WorkloadState::kApplied);
  EXPECT_EQ(p.database.policies.size(), 1u) << "an invalid policy counts nothing";
}

}  // namespace
}  // namespace poolguard::controller
