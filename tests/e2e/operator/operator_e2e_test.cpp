// The operator binary as its own process against the local control plane with the controller manager:
// settings applied, rolled, corrected, reported, budgeted, cleaned up, and nothing written when idle.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "support/cluster.h"
#include "support/e2e_helpers.h"
#include "support/operator_process.h"

namespace poolguard::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

std::string deploymentYaml(const std::string& name, int replicas, const std::string& extraLabels = "") {
  return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + name + "\n  labels: {app: " + name +
         extraLabels + "}\n" + "spec:\n  replicas: " + std::to_string(replicas) +
         "\n  selector: {matchLabels: {app: " + name + "}}\n" +
         "  template:\n    metadata:\n      labels: {app: " + name + ", tier: db-client" + extraLabels + "}\n" +
         "    spec:\n      containers:\n      - name: app\n        image: example.invalid/app:1\n" +
         "        env:\n        - {name: KEEP_ME, value: mine}\n      - name: sidecar\n        image: "
         "example.invalid/sc:1\n";
}

// Each test budgets its own database, so policies of other tests never share its budget.
std::string g_database = "orders";

std::string testNamespace(const std::string& prefix) {
  std::string ns = createNamespace(prefix);
  g_database = "db-" + ns;
  return ns;
}

std::string policyYaml(const std::string& name, int maxSize, const std::string& extra = "",
                       const std::string& databaseName = "", const std::string& selector = "app: web") {
  const std::string& database = databaseName.empty() ? g_database : databaseName;
  return "apiVersion: poolguard.dev/v1alpha1\nkind: ConnectionPoolPolicy\nmetadata:\n  name: " + name +
         "\nspec:\n  selector:\n    matchLabels: {" + selector +
         "}\n  containers: [app]\n  pool:\n    maxSize: " + std::to_string(maxSize) +
         "\n  database:\n    name: " + database + "\n    maxConnections: 100\n" + extra;
}

class OperatorE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_NO_FATAL_FAILURE(installCrds());
    op_ = new OperatorProcess();
    op_->start();
    ASSERT_TRUE(op_->waitReady()) << op_->logs();
  }
  static void TearDownTestSuite() {
    if (op_) op_->stop();
    delete op_;
    op_ = nullptr;
  }
  void TearDown() override {
    if (HasFailure() && op_) std::cerr << "--- operator log tail:\n" << tail(op_->logs(), 60) << "\n";
  }
  static OperatorProcess* op_;
};
OperatorProcess* OperatorE2E::op_ = nullptr;

TEST_F(OperatorE2E, EnforceAppliesSettingsToDeploymentsAndStatefulSets) {
  std::string ns = testNamespace("enforce");
  applyYaml(ns, deploymentYaml("web", 2));
  applyYaml(ns,
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: web-db, labels: {app: web}}\nspec:\n"
            "  replicas: 1\n  serviceName: web-db\n  selector: {matchLabels: {app: web-db}}\n  template:\n"
            "    metadata: {labels: {app: web-db}}\n    spec:\n      containers:\n      - name: app\n"
            "        image: example.invalid/app:1\n");
  applyYaml(ns, policyYaml("orders-pool", 12, "  profile: Generic\n"));

  ASSERT_TRUE(eventually([&] { return conditionIs(ns, "orders-pool", "Ready", "True"); }, 60s))
      << getJson(ns, "cpol/orders-pool").dump(2);
  json d = getJson(ns, "deployment/web");
  EXPECT_EQ(envValue(d, "app", "POOL_MAX_SIZE"), "12");
  EXPECT_EQ(envValue(d, "app", "KEEP_ME"), "mine");
  EXPECT_EQ(envValue(d, "app", "PGAPPNAME"), ns + "/web");
  EXPECT_EQ(envValue(d, "sidecar", "POOL_MAX_SIZE"), "") << "only the listed containers get settings";
  EXPECT_FALSE(d["spec"]["template"]["metadata"]["annotations"].value("poolguard.dev/settings-hash", "").empty());
  json s = getJson(ns, "statefulset/web-db");
  EXPECT_EQ(envValue(s, "app", "POOL_MAX_SIZE"), "12");

  json p = getJson(ns, "cpol/orders-pool");
  EXPECT_EQ(p["status"]["workloads"].value("matched", -1), 2);
  EXPECT_EQ(p["status"]["workloads"].value("applied", -1), 2);
  // 2 Deployment pods + 25% surge rounded up (1) + 1 StatefulSet pod, 12 connections each.
  EXPECT_EQ(p["status"]["budget"].value("policyWorstCase", -1), (2 + 1 + 1) * 12);
  EXPECT_EQ(condition(p, "Applied").value("reason", ""), "AllApplied");
}

TEST_F(OperatorE2E, ChangeRollsPodsAndNoOpRollsNothing) {
  std::string ns = testNamespace("roll");
  applyYaml(ns, deploymentYaml("web", 1));
  applyYaml(ns, policyYaml("p", 10));
  ASSERT_TRUE(eventually([&] { return conditionIs(ns, "p", "Applied", "True"); }, 60s));
  auto replicaSets = [&] {
    json rs = getJson(ns, "replicasets");
    return rs.is_object() ? rs["items"].size() : 0u;
  };
  ASSERT_TRUE(eventually([&] { return replicaSets() >= 1; }, 30s));
  int64_t generation = getJson(ns, "deployment/web")["metadata"].value("generation", 0);

  // A reconcile that changes nothing (the policy's labels change, its spec does not) rolls nothing.
  size_t before = auditLineCount();
  ASSERT_EQ(cluster().kubectl({"-n", ns, "label", "cpol/p", "touched=yes"}).exitCode, 0);
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(getJson(ns, "deployment/web")["metadata"].value("generation", 0), generation);
  for (const auto& req : operatorRequests(before, true)) {
    EXPECT_NE(req["objectRef"].value("resource", ""), "deployments") << req.dump();
  }

  size_t rsBefore = replicaSets();
  applyYaml(ns, policyYaml("p", 7));
  ASSERT_TRUE(eventually([&] { return envValue(getJson(ns, "deployment/web"), "app", "POOL_MAX_SIZE") == "7"; }, 60s));
  EXPECT_TRUE(eventually([&] { return replicaSets() == rsBefore + 1; }, 60s))
      << "a settings change rolls a new ReplicaSet";
}

TEST_F(OperatorE2E, EnforceCorrectsDriftAndAuditReportsIt) {
  std::string ns = testNamespace("drift");
  applyYaml(ns, deploymentYaml("web", 1));
  applyYaml(ns, policyYaml("p", 9));
  ASSERT_TRUE(eventually([&] { return envValue(getJson(ns, "deployment/web"), "app", "POOL_MAX_SIZE") == "9"; }, 60s));

  // Someone edits the owned value by hand: Enforce puts it back.
  ASSERT_EQ(cluster().kubectl({"-n", ns, "set", "env", "deployment/web", "-c", "app", "POOL_MAX_SIZE=99"}).exitCode, 0);
  EXPECT_TRUE(eventually([&] { return envValue(getJson(ns, "deployment/web"), "app", "POOL_MAX_SIZE") == "9"; }, 60s));

  // In Audit the same edit stays, and the policy reports the drift and what Enforce would change.
  applyYaml(ns, policyYaml("p", 9, "  mode: Audit\n"));
  ASSERT_TRUE(eventually([&] { return conditionIs(ns, "p", "Applied", "True"); }, 60s));
  ASSERT_EQ(cluster().kubectl({"-n", ns, "set", "env", "deployment/web", "-c", "app", "POOL_MAX_SIZE=99"}).exitCode, 0);
  ASSERT_TRUE(eventually([&] { return conditionIs(ns, "p", "Applied", "False", "Drifted"); }, 60s))
      << getJson(ns, "cpol/p").dump(2);
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(envValue(getJson(ns, "deployment/web"), "app", "POOL_MAX_SIZE"), "99");
  json p = getJson(ns, "cpol/p");
  EXPECT_NE(condition(p, "Applied").value("message", "").find("POOL_MAX_SIZE"), std::string::npos)
      << condition(p, "Applied").dump();
  EXPECT_EQ(p["status"]["workloads"].value("drifted", -1), 1);
}

TEST_F(OperatorE2E, HigherPriorityWinsAndTheLoserSaysSo) {
  std::string ns = testNamespace("overlap");
  applyYaml(ns, deploymentYaml("web", 1));
  applyYaml(ns, policyYaml("low", 5));
  applyYaml(ns, policyYaml("high", 15, "  priority: 10\n"));
  ASSERT_TRUE(eventually([&] { return envValue(getJson(ns, "deployment/web"), "app", "POOL_MAX_SIZE") == "15"; }, 60s));
  ASSERT_TRUE(eventually([&] { return conditionIs(ns, "low", "Accepted", "False", "Conflicted"); }, 60s))
      << getJson(ns, "cpol/low").dump(2);
  json low = getJson(ns, "cpol/low");
  EXPECT_NE(condition(low, "Accepted").value("message", "").find("high"), std::string::npos);
  EXPECT_EQ(low["status"]["workloads"].value("conflicted", -1), 1);
  EXPECT_TRUE(eventually([&] { return conditionIs(ns, "high", "Ready", "True"); }, 30s))
      << getJson(ns, "cpol/high").dump(2);
}

TEST_F(OperatorE2E, HpaGrowsTheBudgetAndClampShrinksThePool) {
  std::string ns = testNamespace("budget");
  applyYaml(ns, deploymentYaml("web", 1));
  // maxConnections 100 - 3 reserved = 97 available; 1 pod + 1 surge = 2 x 20 = 40.
  applyYaml(ns, policyYaml("p", 20, "", "budget-" + ns));
  ASSERT_TRUE(eventually([&] { return conditionIs(ns, "p", "WithinBudget", "True", "WithinBudget"); }, 60s));
  EXPECT_EQ(getJson(ns, "cpol/p")["status"]["budget"].value("worstCase", -1), 40);

  applyYaml(ns, hpaYaml("web", 8));
  // 8 pods + 2 surge = 10 x 20 = 200 > 97.
  ASSERT_TRUE(eventually([&] { return conditionIs(ns, "p", "WithinBudget", "False", "BudgetExceeded"); }, 60s))
      << getJson(ns, "cpol/p").dump(2);
  json p = getJson(ns, "cpol/p");
  std::string msg = condition(p, "WithinBudget").value("message", "");
  EXPECT_NE(msg.find("200"), std::string::npos) << msg;
  EXPECT_NE(msg.find("97"), std::string::npos) << msg;

  applyYaml(ns, policyYaml("p", 20, "  budget: {onExceeded: Clamp}\n", "budget-" + ns));
  ASSERT_TRUE(eventually([&] { return conditionIs(ns, "p", "WithinBudget", "True", "Clamped"); }, 60s))
      << getJson(ns, "cpol/p").dump(2);
  // floor(97 / 10 pods) = 9 connections per pod.
  EXPECT_TRUE(eventually([&] { return envValue(getJson(ns, "deployment/web"), "app", "POOL_MAX_SIZE") == "9"; }, 30s));
  EXPECT_EQ(getJson(ns, "cpol/p")["status"]["budget"].value("effectiveMaxSize", -1), 9);
  EXPECT_FALSE(getJson(ns, "cpol/p")["status"]["budget"].contains("terminatingWorstCase"));

  // Counting the old pods still terminating during a rollout: 8 + 2 surge + 6 terminating = 16 pods at worst,
  // floor(97 / 16) = 6 per pod; 6 x 6 of the 96 are the terminating pods'.
  applyYaml(ns, policyYaml("p", 20, "  budget: {onExceeded: Clamp, terminatingPods: Count}\n", "budget-" + ns));
  EXPECT_TRUE(eventually([&] { return envValue(getJson(ns, "deployment/web"), "app", "POOL_MAX_SIZE") == "6"; }, 30s))
      << getJson(ns, "cpol/p").dump(2);
  EXPECT_TRUE(eventually(
      [&] {
        const json b = getJson(ns, "cpol/p")["status"]["budget"];
        return b.value("worstCase", -1) == 96 && b.value("terminatingWorstCase", -1) == 36;
      },
      30s))
      << getJson(ns, "cpol/p").dump(2);
}

TEST_F(OperatorE2E, AClusterBudgetBindsThePoliciesOfItsDatabaseAndReportsItsTotals) {
  std::string ns = testNamespace("ccb");
  const std::string budgetName = g_database;  // a budget is named after its database
  applyYaml(ns, deploymentYaml("web", 2));
  applyYaml(ns, policyYaml("p", 20));
  ASSERT_TRUE(eventually([&] { return envValue(getJson(ns, "deployment/web"), "app", "POOL_MAX_SIZE") == "20"; }, 60s))
      << getJson(ns, "cpol/p").dump(2);

  auto budget = [&](const std::string& spec) {
    auto r = cluster().kubectl(
        {"apply", "-f", "-"}, "apiVersion: poolguard.dev/v1alpha1\nkind: ClusterConnectionBudget\nmetadata:\n  name: " +
                                  budgetName + "\nspec:\n" + spec);
    ASSERT_EQ(r.exitCode, 0) << r.err;
  };
  budget("  maxConnections: 300\n  reservedConnections: 10\n  ceilings: {maxSize: 8}\n");
  // The ceiling renders 8; the budget's capacity replaces the policy's declared 100, and the policy says both.
  ASSERT_TRUE(eventually([&] { return conditionIs(ns, "p", "WithinBudget", "True", "Capped"); }, 60s))
      << getJson(ns, "cpol/p").dump(2);
  EXPECT_TRUE(eventually([&] { return envValue(getJson(ns, "deployment/web"), "app", "POOL_MAX_SIZE") == "8"; }, 30s));
  const std::string message = condition(getJson(ns, "cpol/p"), "WithinBudget").value("message", "");
  EXPECT_NE(
      message.find("database.maxConnections 100 is not used: ClusterConnectionBudget " + budgetName + " sets 300"),
      std::string::npos)
      << message;
  EXPECT_EQ(getJson(ns, "cpol/p")["status"]["budget"].value("available", -1), 290);

  // The budget's own status: the database's totals, (2 pods + 1 surge) x 8.
  auto budgetStatus = [&] {
    auto r = cluster().kubectl({"get", "ccb", budgetName, "-o", "json"});
    json b = r.exitCode == 0 ? json::parse(r.out, nullptr, false) : json();
    return b.is_object() ? b.value("status", json::object()) : json::object();
  };
  ASSERT_TRUE(eventually([&] { return budgetStatus().value("worstCase", -1) == 24; }, 60s)) << budgetStatus().dump(2);
  json st = budgetStatus();
  EXPECT_EQ(st.value("maxConnections", -1), 300);
  EXPECT_EQ(st.value("available", -1), 290);
  EXPECT_EQ(st.value("policies", -1), 1);
  EXPECT_EQ(condition(json{{"status", st}}, "Ready").value("status", ""), "True") << st.dump(2);

  // A budget that cannot hold the worst case says so; its removal gives the policies their own settings back.
  budget("  maxConnections: 20\n  reservedConnections: 0\n  ceilings: {maxSize: 8}\n");
  ASSERT_TRUE(eventually(
      [&] {
        return condition(json{{"status", budgetStatus()}}, "WithinBudget").value("reason", "") == "BudgetExceeded";
      },
      60s))
      << budgetStatus().dump(2);
  EXPECT_TRUE(eventually([&] { return conditionIs(ns, "p", "WithinBudget", "False", "BudgetExceeded"); }, 60s));
  // The transition is an Event on the budget (in the default namespace, as for any cluster-scoped object).
  EXPECT_TRUE(eventually(
      [&] {
        json events = getJson("default", "events");
        if (!events.is_object()) return false;
        for (const auto& e : events["items"]) {
          if (e["involvedObject"].value("kind", "") == "ClusterConnectionBudget" &&
              e["involvedObject"].value("name", "") == budgetName && e.value("reason", "") == "BudgetExceeded")
            return true;
        }
        return false;
      },
      30s))
      << getJson("default", "events").dump(2);
  auto del = cluster().kubectl({"delete", "ccb", budgetName});
  ASSERT_EQ(del.exitCode, 0) << del.err;
  EXPECT_TRUE(eventually([&] { return envValue(getJson(ns, "deployment/web"), "app", "POOL_MAX_SIZE") == "20"; }, 60s));
  EXPECT_TRUE(eventually([&] { return conditionIs(ns, "p", "WithinBudget", "True", "WithinBudget"); }, 60s))
      << getJson(ns, "cpol/p").dump(2);
}

TEST_F(OperatorE2E, AllocationsShareADatabaseByNamespaceLabelsAndRelabellingMovesANamespace) {
  // Three namespaces on one database: a in allocation "pay" (20), b in "retail" (100), c in none (it shares
  // 300 - 120 = 180). Each runs 2 pods (+1 surge) with a Clamp pool of 10: a worst case of 30 each.
  const std::string a = testNamespace("alloc-a");
  const std::string database = g_database;
  const std::string b = createNamespace("alloc-b");
  const std::string c = createNamespace("alloc-c");
  const std::string key = "e2e.poolguard.dev/team-" + a;  // a label only this test uses
  auto label = [&](const std::string& ns, const std::string& team) {
    auto r = cluster().kubectl({"label", "namespace", ns, key + "=" + team, "--overwrite"});
    ASSERT_EQ(r.exitCode, 0) << r.err;
  };
  label(a, "pay");
  label(b, "retail");
  auto r = cluster().kubectl(
      {"apply", "-f", "-"},
      "apiVersion: poolguard.dev/v1alpha1\nkind: ClusterConnectionBudget\nmetadata:\n  name: " + database +
          "\nspec:\n  maxConnections: 300\n  reservedConnections: 0\n  allocations:\n"
          "  - {name: pay, maxConnections: 20, namespaceSelector: {matchLabels: {" +
          key + ": pay}}}\n  - {name: retail, maxConnections: 100, namespaceSelector: {matchLabels: {" + key +
          ": retail}}}\n");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  for (const auto& ns : {a, b, c}) {
    applyYaml(ns, deploymentYaml("web", 2));
    applyYaml(ns, policyYaml("p", 10, "  budget: {onExceeded: Clamp}\n", database));
  }
  auto maxSizeIn = [&](const std::string& ns) {
    return envValue(getJson(ns, "deployment/web"), "app", "POOL_MAX_SIZE");
  };
  // pay holds 20: a's pool is clamped to floor(20 / 3 pods) = 6. b and c fit in their shares and keep 10.
  ASSERT_TRUE(eventually([&] { return maxSizeIn(a) == "6"; }, 60s)) << getJson(a, "cpol/p").dump(2);
  EXPECT_TRUE(eventually([&] { return maxSizeIn(b) == "10" && maxSizeIn(c) == "10"; }, 60s));
  EXPECT_TRUE(eventually([&] { return conditionIs(a, "p", "WithinBudget", "True", "Clamped"); }, 60s))
      << getJson(a, "cpol/p").dump(2);
  EXPECT_EQ(getJson(a, "cpol/p")["status"]["budget"]["allocation"],
            json({{"name", "pay"}, {"maxConnections", 20}, {"worstCase", 18}}));
  EXPECT_TRUE(eventually(
      [&] { return getJson(c, "cpol/p")["status"]["budget"].value("allocation", json()).value("unallocated", false); },
      60s))
      << getJson(c, "cpol/p").dump(2);

  auto budgetStatus = [&] {
    auto got = cluster().kubectl({"get", "ccb", database, "-o", "json"});
    json j = got.exitCode == 0 ? json::parse(got.out, nullptr, false) : json();
    return j.is_object() ? j.value("status", json::object()) : json::object();
  };
  auto shares = [&] {
    std::map<std::string, std::pair<int64_t, int64_t>> out;  // name -> (worst case, namespaces)
    json st = budgetStatus();
    for (const auto& s : st.value("allocations", json::array()))
      out[s.value("name", "")] = {s.value("worstCase", int64_t{-1}), s.value("namespaces", int64_t{-1})};
    json rest = st.value("unallocated", json::object());
    out["(none)"] = {rest.value("worstCase", int64_t{-1}), rest.value("maxConnections", int64_t{-1})};
    return out;
  };
  using Shares = std::map<std::string, std::pair<int64_t, int64_t>>;
  ASSERT_TRUE(eventually(
      [&] {
        return shares() == Shares{{"pay", {18, 1}}, {"retail", {30, 1}}, {"(none)", {30, 180}}};
      },
      60s))
      << budgetStatus().dump(2);

  // Relabelled, b joins pay: the two Clamp pools share its 20 by weight, 10 each, floor(10 / 3) = 3 per pool.
  label(b, "pay");
  EXPECT_TRUE(eventually([&] { return maxSizeIn(a) == "3" && maxSizeIn(b) == "3"; }, 60s))
      << getJson(b, "cpol/p").dump(2);
  EXPECT_TRUE(eventually(
      [&] {
        return shares() == Shares{{"pay", {18, 2}}, {"retail", {0, 0}}, {"(none)", {30, 180}}};
      },
      60s))
      << budgetStatus().dump(2);
  EXPECT_EQ(maxSizeIn(c), "10") << "the namespace in no allocation is not touched";

  // Unlabelled, b shares the rest with c: 60 of 180, and its pool is back to 10.
  auto unlabel = cluster().kubectl({"label", "namespace", b, key + "-"});
  ASSERT_EQ(unlabel.exitCode, 0) << unlabel.err;
  EXPECT_TRUE(eventually([&] { return maxSizeIn(b) == "10" && maxSizeIn(a) == "6"; }, 60s))
      << getJson(b, "cpol/p").dump(2);
  EXPECT_TRUE(eventually(
      [&] {
        return shares()["(none)"] == std::pair<int64_t, int64_t>{60, 180};
      },
      60s))
      << budgetStatus().dump(2);
  cluster().kubectl({"delete", "ccb", database, "--ignore-not-found"});
}

TEST_F(OperatorE2E, AClusterPolicyGovernsNamespacesWithoutTheirOwnAndHandsOverWithOneRollout) {
  const std::string a = testNamespace("ccpol-a");
  const std::string database = g_database;
  const std::string b = createNamespace("ccpol-b");
  const std::string key = "e2e.poolguard.dev/tier-" + a;  // a label only this test uses
  const std::string name = "baseline-" + a;
  for (const auto& ns : {a, b}) {
    auto r = cluster().kubectl({"label", "namespace", ns, key + "=apps"});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    applyYaml(ns, deploymentYaml("web", 1));
  }
  auto r = cluster().kubectl(
      {"apply", "-f", "-"},
      "apiVersion: poolguard.dev/v1alpha1\nkind: ClusterConnectionPoolPolicy\nmetadata:\n  name: " + name +
          "\nspec:\n  namespaceSelector: {matchLabels: {" + key +
          ": apps}}\n  selector: {matchLabels: {app: web}}\n  containers: [app]\n"
          "  pool: {maxSize: 6}\n  database: {name: " +
          database + ", maxConnections: 100}\n");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  auto web = [&](const std::string& ns) { return getJson(ns, "deployment/web"); };
  auto maxSizeIn = [&](const std::string& ns) { return envValue(web(ns), "app", "POOL_MAX_SIZE"); };
  auto owner = [&](const std::string& ns, const std::string& annotation) {
    return web(ns)["metadata"].value("annotations", json::object()).value(annotation, "");
  };
  auto clusterPolicy = [&] {
    auto got = cluster().kubectl({"get", "ccpol", name, "-o", "json"});
    return got.exitCode == 0 ? json::parse(got.out, nullptr, false) : json();
  };
  ASSERT_TRUE(eventually([&] { return maxSizeIn(a) == "6" && maxSizeIn(b) == "6"; }, 60s)) << clusterPolicy().dump(2);
  EXPECT_EQ(owner(a, "poolguard.dev/cluster-policy"), name);
  ASSERT_TRUE(eventually(
      [&] {
        json st = clusterPolicy().value("status", json::object());
        return st.value("workloads", json::object()).value("applied", -1) == 2;
      },
      60s))
      << clusterPolicy().dump(2);
  std::set<std::string> listed;
  json governing = clusterPolicy();
  for (const auto& w : governing["status"]["workloadStatuses"]) listed.insert(w.value("namespace", ""));
  EXPECT_EQ(listed, (std::set<std::string>{a, b})) << "each workload status names its namespace";

  // b's own policy takes its workload over: one write (one new generation, one rollout), owned by the policy.
  const int64_t before = web(b)["metadata"].value("generation", int64_t{0});
  applyYaml(b, policyYaml("own", 10, "", database));
  ASSERT_TRUE(eventually([&] { return maxSizeIn(b) == "10"; }, 60s)) << getJson(b, "cpol/own").dump(2);
  EXPECT_TRUE(eventually([&] { return owner(b, "poolguard.dev/policy") == "own"; }, 30s));
  EXPECT_EQ(owner(b, "poolguard.dev/cluster-policy"), "") << "the cluster policy's mark is gone with its fields";
  std::this_thread::sleep_for(3s);  // anything else that would write has had its turn
  EXPECT_EQ(web(b)["metadata"].value("generation", int64_t{0}), before + 1) << "handed over in one write";
  EXPECT_TRUE(eventually(
      [&] { return clusterPolicy()["status"].value("workloads", json::object()).value("matched", -1) == 1; }, 30s))
      << "b's workload is no longer the cluster policy's: " << clusterPolicy().dump(2);
  EXPECT_EQ(maxSizeIn(a), "6");

  // Deleting b's policy hands the workload back, again in one write.
  auto del = cluster().kubectl({"-n", b, "delete", "cpol", "own"});
  ASSERT_EQ(del.exitCode, 0) << del.err;
  EXPECT_TRUE(eventually([&] { return maxSizeIn(b) == "6" && owner(b, "poolguard.dev/cluster-policy") == name; }, 60s))
      << web(b).dump(2);
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(web(b)["metadata"].value("generation", int64_t{0}), before + 2);

  // a leaves the namespaceSelector: its workload's settings are given back.
  auto unlabel = cluster().kubectl({"label", "namespace", a, key + "-"});
  ASSERT_EQ(unlabel.exitCode, 0) << unlabel.err;
  EXPECT_TRUE(eventually([&] { return maxSizeIn(a).empty() && owner(a, "poolguard.dev/cluster-policy").empty(); }, 60s))
      << web(a).dump(2);
  EXPECT_EQ(envValue(web(a), "app", "KEEP_ME"), "mine") << "only poolguard's fields go";

  // Deleting the cluster policy removes what it wrote.
  auto gone = cluster().kubectl({"delete", "ccpol", name});
  ASSERT_EQ(gone.exitCode, 0) << gone.err;
  EXPECT_TRUE(eventually([&] { return maxSizeIn(b).empty() && owner(b, "poolguard.dev/cluster-policy").empty(); }, 60s))
      << web(b).dump(2);
}

// A ClusterConnectionBudget for database `db` with `spec` (YAML lines indented by two) as its spec.
void applyBudget(const std::string& db, const std::string& spec) {
  auto r = cluster().kubectl({"apply", "-f", "-"},
                             "apiVersion: poolguard.dev/v1alpha1\nkind: ClusterConnectionBudget\n"
                             "metadata:\n  name: " +
                                 db + "\nspec:\n" + spec);
  ASSERT_EQ(r.exitCode, 0) << r.err;
}

// The most replicas the workload of allotment key `key` ("<resource>_<namespace>_<name>") may be raised to, as
// poolguard last wrote it in the database's ConnectionAllotment for the API server; -1 while there is none.
int allottedMaxPods(const std::string& db, const std::string& key) {
  auto r = cluster().kubectl({"get", "connectionallotment", "poolguard-budget-" + db, "-o", "json"});
  json a = r.exitCode == 0 ? json::parse(r.out, nullptr, false) : json();
  if (!a.is_object()) return -1;
  return a["spec"].value("allotments", json::object()).value(key, json::object()).value("maxPods", -1);
}

// `kubectl apply` of an autoscaling/v2 HPA `name` scaling `target` (the flow fields of its scaleTargetRef) between
// min and max on CPU.
CommandResult applyHpa(const std::string& ns, const std::string& name, const std::string& target, int min, int max) {
  return cluster().kubectl({"-n", ns, "apply", "-f", "-"},
                           "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: " + name +
                               "}\nspec:\n  scaleTargetRef: {" + target + "}\n  minReplicas: " + std::to_string(min) +
                               "\n  maxReplicas: " + std::to_string(max) +
                               "\n  metrics:\n  - type: Resource\n    resource: {name: cpu, target: {type: "
                               "Utilization, averageUtilization: 80}}\n");
}

// `kubectl scale` of `what` ("deployment/web"), through its scale subresource.
CommandResult scaleTo(const std::string& ns, const std::string& what, int replicas, bool dryRun = false) {
  std::vector<std::string> args{"-n", ns, "scale", what, "--replicas=" + std::to_string(replicas)};
  if (dryRun) args.push_back("--dry-run=server");
  return cluster().kubectl(args);
}

TEST_F(OperatorE2E, AdmissionRefusesWhatBreaksTheBudgetAlsoWhileTheOperatorIsDown) {
  // One namespace in allocation team-a (60 of 200 connections); two Deployments of 1 replica under a pool of 5.
  const std::string ns = testNamespace("admit");
  const std::string db = g_database;
  const std::string name = "poolguard-budget-" + db;
  applyYaml(ns, deploymentYaml("web", 1, ", pool: admit"));
  applyYaml(ns, deploymentYaml("api", 1, ", pool: admit"));
  applyYaml(ns, policyYaml("p", 5, "", "", "pool: admit"));
  auto budget = [&](const std::string& mode) {
    applyBudget(db,
                "  maxConnections: 203\n  ceilings: {maxSize: 10}\n  allocations:\n"
                "  - name: team-a\n    maxConnections: 60\n    namespaceSelector:\n"
                "      matchLabels: {kubernetes.io/metadata.name: " +
                    ns + "}\n  admission: {mode: " + mode + "}\n");
  };
  budget("Deny");
  // The most replicas each may be raised to, as the operator last wrote it for the API server.
  auto maxPods = [&](const std::string& workload) { return allottedMaxPods(db, "deployments_" + ns + "_" + workload); };
  ASSERT_TRUE(eventually([&] { return maxPods("web") > 1 && maxPods("api") > 1; }, 60s))
      << cluster().kubectl({"get", "ccb", db, "-o", "yaml"}).out << tail(op_->logs(), 30);
  EXPECT_TRUE(eventually(
      [&] {
        auto r = cluster().kubectl({"get", "ccb", db, "-o", "jsonpath={.status.admission.allotments}"});
        return r.out == "2";
      },
      30s));
  auto scale = [&](const std::string& workload, int replicas, bool dryRun = false) {
    return scaleTo(ns, "deployment/" + workload, replicas, dryRun);
  };
  // The API server loads a new policy within a second or so: wait for it with requests that change nothing.
  int web = maxPods("web");
  ASSERT_TRUE(eventually([&] { return scale("web", web + 1, true).exitCode != 0; }, 30s));
  auto refused = scale("web", web + 1);
  EXPECT_NE(refused.err.find("database " + db + ": Deployment " + ns + "/web asks for " + std::to_string(web + 1) +
                             " replicas; its allotment in allocation team-a (60 connections"),
            std::string::npos)
      << refused.err;
  EXPECT_EQ(scale("web", web).exitCode, 0) << "a raise within the allotment passes";
  // The policy's rules name Argo Rollouts' rollouts whether or not the API server serves them (here it does not:
  // only the Rollout tests install the CRD), and the API server takes the policy and enforces the rest of it.
  EXPECT_NE(cluster().kubectl({"get", "crd", "rollouts.argoproj.io"}).exitCode, 0);
  EXPECT_NE(cluster()
                .kubectl({"get", "validatingadmissionpolicy", name, "-o",
                          "jsonpath={.spec.matchConstraints.resourceRules[*].resources}"})
                .out.find("rollouts/scale"),
            std::string::npos);

  // An HPA whose maximum is beyond api's allotment is refused; one within it passes, and the HPA controller's own
  // scaling (to minReplicas here, no metrics needed) is never refused.
  // Once the budget counts web at its new replicas (25% surge), api's allotment is what is left to it.
  const int worst = (web + (web + 3) / 4) * 5 + (1 + 1) * 5;
  ASSERT_TRUE(eventually(
      [&] {
        return cluster().kubectl({"get", "ccb", db, "-o", "jsonpath={.status.worstCase}"}).out == std::to_string(worst);
      },
      30s))
      << cluster().kubectl({"get", "ccb", db, "-o", "yaml"}).out;
  int api = maxPods("api");
  ASSERT_GE(api, 2) << "the test needs room for api to grow";
  auto hpa = [&](int min, int max) {
    return applyHpa(ns, "api", "apiVersion: apps/v1, kind: Deployment, name: api", min, max);
  };
  refused = hpa(1, api + 20);
  EXPECT_NE(refused.exitCode, 0);
  EXPECT_NE(refused.err.find("HorizontalPodAutoscaler " + ns + "/api asks for maxReplicas " + std::to_string(api + 20)),
            std::string::npos)
      << refused.err;
  auto within = hpa(api, api);
  ASSERT_EQ(within.exitCode, 0) << within.err;
  // Raising the maximum of the HPA that now exists is refused the same way.
  refused = cluster().kubectl({"-n", ns, "patch", "hpa/api", "--type=merge", "-p",
                               R"({"spec":{"maxReplicas":)" + std::to_string(api + 20) + "}}"});
  EXPECT_NE(refused.exitCode, 0);
  EXPECT_NE(refused.err.find("asks for maxReplicas " + std::to_string(api + 20)), std::string::npos) << refused.err;
  EXPECT_TRUE(eventually([&] { return getJson(ns, "deployment/api")["spec"].value("replicas", 0) == api; }, 90s))
      << "the HPA controller scaled api within its range: " << getJson(ns, "hpa/api").dump(2);

  // A policy for the database above its ceiling.
  refused = cluster().kubectl({"-n", ns, "apply", "-f", "-"}, policyYaml("greedy", 40, "", "", "pool: none"));
  EXPECT_NE(refused.exitCode, 0);
  EXPECT_NE(refused.err.find("pool.maxSize 40 is above the ceiling of 10 connections per pool"), std::string::npos)
      << refused.err;

  // With the operator stopped, the API server still refuses.
  ASSERT_EQ(op_->stop(SIGTERM, 30s), 0);
  refused = scale("web", web + 30);
  EXPECT_NE(refused.exitCode, 0) << "refused while poolguard is down";
  EXPECT_NE(refused.err.find("allocation team-a"), std::string::npos) << refused.err;
  op_->start();
  ASSERT_TRUE(op_->waitReady()) << op_->logs();

  // Warn lets the change through with the same message as a warning.
  budget("Warn");
  ASSERT_TRUE(eventually(
      [&] {
        auto r = cluster().kubectl(
            {"get", "validatingadmissionpolicybinding", name, "-o", "jsonpath={.spec.validationActions[0]}"});
        return r.out == "Warn";
      },
      60s));
  ASSERT_TRUE(eventually([&] { return scale("web", web + 30, true).exitCode == 0; }, 30s));
  CommandResult warned = scale("web", web + 30);
  EXPECT_EQ(warned.exitCode, 0) << warned.err;
  EXPECT_NE(warned.err.find("Warning"), std::string::npos) << warned.err;
  EXPECT_NE(warned.err.find("asks for " + std::to_string(web + 30) + " replicas"), std::string::npos) << warned.err;
  auto greedy = cluster().kubectl({"-n", ns, "apply", "-f", "-"}, policyYaml("greedy", 40, "", "", "pool: none"));
  EXPECT_EQ(greedy.exitCode, 0) << greedy.err;
  EXPECT_NE(greedy.err.find("pool.maxSize 40 is above the ceiling of 10"), std::string::npos) << greedy.err;
  cluster().kubectl({"-n", ns, "delete", "cpol/greedy", "--wait=false"});

  // None removes what poolguard created, and nothing is refused or warned about any more.
  budget("None");
  EXPECT_TRUE(eventually(
      [&] {
        return cluster().kubectl({"get", "validatingadmissionpolicy", name}).exitCode != 0 &&
               cluster().kubectl({"get", "validatingadmissionpolicybinding", name}).exitCode != 0 &&
               cluster().kubectl({"get", "connectionallotment", name}).exitCode != 0;
      },
      60s))
      << tail(op_->logs(), 30);
  auto free = scale("web", web + 40);
  EXPECT_EQ(free.exitCode, 0) << free.err;
  EXPECT_EQ(free.err.find("Warning"), std::string::npos) << free.err;
  EXPECT_TRUE(cluster().kubectl({"get", "ccb", db, "-o", "jsonpath={.status.admission}"}).out.empty());
  cluster().kubectl({"delete", "ccb", db, "--ignore-not-found"});
}

// A budget that requires leak detection refuses a policy of its database that turns it off, from the API server
// itself: created without it, or changed to 0s; one with a threshold passes.
TEST_F(OperatorE2E, AdmissionRefusesAPolicyWithoutTheLeakDetectionItsBudgetRequires) {
  const std::string ns = testNamespace("admit-leak");
  const std::string db = g_database;
  applyBudget(db, "  maxConnections: 100\n  ceilings: {requireLeakDetection: true}\n  admission: {mode: Deny}\n");
  auto policy = [&](const std::string& threshold, bool dryRun = false) {
    std::string yaml = policyYaml("p", 5, "", "", "app: leaky");
    const std::string maxSize = "    maxSize: 5\n";
    if (!threshold.empty())
      yaml.replace(yaml.find(maxSize), maxSize.size(), maxSize + "    leakDetectionThreshold: " + threshold + "\n");
    std::vector<std::string> args{"-n", ns, "apply", "-f", "-"};
    if (dryRun) args.push_back("--dry-run=server");
    return cluster().kubectl(args, yaml);
  };
  // The API server loads the new policy and its parameters within a second or so.
  ASSERT_TRUE(eventually([&] { return policy("", true).exitCode != 0; }, 60s))
      << cluster().kubectl({"get", "ccb", db, "-o", "yaml"}).out << tail(op_->logs(), 30);
  const std::string message = "database " + db +
                              ": pool.leakDetectionThreshold is 0s (off), and ClusterConnectionBudget " + db +
                              " requires leak detection (spec.ceilings.requireLeakDetection); set it to 30s, say";
  auto refused = policy("");
  EXPECT_NE(refused.exitCode, 0);
  EXPECT_NE(refused.err.find(message), std::string::npos) << refused.err;
  EXPECT_NE(policy("0s").err.find(message), std::string::npos) << "0s is off too";

  auto on = policy("30s");
  ASSERT_EQ(on.exitCode, 0) << on.err;
  refused = policy("0s");
  EXPECT_NE(refused.exitCode, 0) << "turning it off later is refused too";
  EXPECT_NE(refused.err.find(message), std::string::npos) << refused.err;
  EXPECT_EQ(getJson(ns, "cpol/p")["spec"]["pool"].value("leakDetectionThreshold", ""), "30s");
  cluster().kubectl({"delete", "ccb", db, "--ignore-not-found"});
}

TEST_F(OperatorE2E, PlanLiveWeighsAChangeAgainstWhatTheClusterAlreadyRuns) {
  // The change under review: a Deployment of 2 replicas under a pool of 10 on a database of 100 connections (97
  // available): (2 + 1 surge) x 10 = 30 at worst.
  const std::string other = testNamespace("live-other");
  const std::string db = g_database;
  const std::string mine = createNamespace("live-mine");
  auto inNamespace = [](const std::string& ns, std::string yaml) {
    const std::string meta = "\nmetadata:\n";
    return yaml.replace(yaml.find(meta), meta.size(), meta + "  namespace: " + ns + "\n");
  };
  const std::string change = inNamespace(mine, deploymentYaml("checkout", 2)) + "---\n" +
                             inNamespace(mine, policyYaml("pool", 10, "", db, "app: checkout"));
  auto plan = [&](const std::string& files, bool live) {
    std::vector<std::string> argv{poolguardBinary(), "plan", "-f", "-"};
    if (live) {
      argv.push_back("--live");
      argv.push_back("--kubeconfig=" + cluster().kubeconfig);
    }
    return run(argv, files);
  };
  auto alone = plan(change, true);
  EXPECT_EQ(alone.exitCode, 0) << "nothing else runs on the database yet:\n" << alone.out << alone.err;

  // Another team already runs (4 + 1) x 15 = 75 at worst on it: with the change, 105 of 97.
  applyYaml(other, deploymentYaml("ledger", 4));
  applyYaml(other, policyYaml("ledger-pool", 15, "", db, "app: ledger"));
  auto together = plan(change, true);
  EXPECT_EQ(together.exitCode, 1) << together.out << together.err;
  // The table's rows name the other team's workload next to its policy, and the change's own.
  EXPECT_TRUE(std::regex_search(together.out, std::regex(other + "/ledger-pool +Deployment/ledger +4 ")))
      << together.out;
  EXPECT_TRUE(std::regex_search(together.out, std::regex(mine + "/pool +Deployment/checkout +2 "))) << together.out;
  EXPECT_EQ(plan(change, false).exitCode, 0) << "the files alone fit";

  // A file's object replaces the live one of the same kind, namespace and name: the other team's pool at 5 fits.
  auto smaller = plan(change + "---\n" + inNamespace(other, policyYaml("ledger-pool", 5, "", db, "app: ledger")), true);
  EXPECT_EQ(smaller.exitCode, 0) << smaller.out << smaller.err;

  // Read-only: nothing of the change reached the cluster.
  EXPECT_NE(cluster().kubectl({"-n", mine, "get", "deployment/checkout"}).exitCode, 0);
  // Without access to the cluster, it says so and exits 2.
  auto unreachable = run({poolguardBinary(), "plan", "--live", "--kubeconfig=/nonexistent/kubeconfig"}, "");
  EXPECT_EQ(unreachable.exitCode, 2) << unreachable.err;
  EXPECT_NE(unreachable.err.find("--live"), std::string::npos) << unreachable.err;
}

TEST_F(OperatorE2E, DeletingThePolicyRemovesOnlyPoolguardFields) {
  std::string ns = testNamespace("cleanup");
  applyYaml(ns, deploymentYaml("web", 1));
  applyYaml(ns, policyYaml("p", 11, "  delivery: {method: ConfigMap}\n"));
  ASSERT_TRUE(eventually([&] { return conditionIs(ns, "p", "Applied", "True"); }, 60s));
  json cms = getJson(ns, "configmaps");
  bool hasPoolguardConfigMap = false;
  for (const auto& cm : cms["items"]) {
    if (cm["metadata"].value("labels", json::object()).value("app.kubernetes.io/managed-by", "") == "poolguard")
      hasPoolguardConfigMap = true;
  }
  ASSERT_TRUE(hasPoolguardConfigMap) << cms.dump(2);
  const std::string databaseSeries = "poolguard_database_connections_worst_case{database=\"" + g_database + "\"}";
  EXPECT_TRUE(eventually([&] { return op_->metrics().find(databaseSeries) != std::string::npos; }, 10s))
      << databaseSeries;

  ASSERT_EQ(cluster().kubectl({"-n", ns, "delete", "cpol/p", "--wait=true", "--timeout=60s"}).exitCode, 0);
  EXPECT_EQ(op_->metrics().find(databaseSeries), std::string::npos) << "the last policy of the database is gone";
  json d = getJson(ns, "deployment/web");
  for (const auto& c : d["spec"]["template"]["spec"]["containers"]) {
    EXPECT_FALSE(c.contains("envFrom")) << c.dump();
  }
  EXPECT_EQ(envValue(d, "app", "KEEP_ME"), "mine") << "another manager's env stays";
  EXPECT_EQ(d["spec"]["template"]["metadata"].value("annotations", json::object()).count("poolguard.dev/settings-hash"),
            0u);
  cms = getJson(ns, "configmaps");
  for (const auto& cm : cms["items"]) {
    EXPECT_NE(cm["metadata"].value("labels", json::object()).value("app.kubernetes.io/managed-by", ""), "poolguard")
        << cm.dump();
  }
}

TEST_F(OperatorE2E, DeletingAPolicyHandsOneWorkloadOverAndStillRemovesTheOthersConfigMap) {
  std::string ns = testNamespace("handover");
  applyYaml(ns, deploymentYaml("web", 1, ", team: t"));
  applyYaml(ns, deploymentYaml("api", 1, ", team: t"));
  applyYaml(ns, policyYaml("broad", 11, "  priority: 10\n  delivery: {method: ConfigMap}\n", "", "team: t"));
  applyYaml(ns, policyYaml("narrow", 7, "  delivery: {method: ConfigMap}\n", "", "app: web"));
  auto configMapData = [&](const std::string& name) { return getJson(ns, "configmap/" + name); };
  ASSERT_TRUE(eventually(
      [&] {
        return configMapValue(ns, "web-deploy-poolguard", "POOL_MAX_SIZE") == "11" &&
               configMapValue(ns, "api-deploy-poolguard", "POOL_MAX_SIZE") == "11";
      },
      60s))
      << getJson(ns, "configmaps").dump(2);

  // A ConfigMap of broad's whose workload no longer carries broad's annotation (a workload recreated from Git, say).
  applyYaml(ns,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gone-deploy-poolguard\n  labels: "
            "{app.kubernetes.io/managed-by: poolguard, poolguard.dev/policy: broad}\ndata: {POOL_MAX_SIZE: \"11\"}\n");

  ASSERT_EQ(cluster().kubectl({"-n", ns, "delete", "cpol/broad", "--wait=true", "--timeout=60s"}).exitCode, 0);
  EXPECT_TRUE(configMapData("gone-deploy-poolguard").is_null())
      << "a ConfigMap of the deleted policy stayed because another workload was handed over";
  // web goes to narrow, which rewrites its ConfigMap; api has no policy left: its ConfigMap goes.
  EXPECT_TRUE(eventually([&] { return configMapValue(ns, "web-deploy-poolguard", "POOL_MAX_SIZE") == "7"; }, 60s))
      << configMapData("web-deploy-poolguard").dump(2);
  EXPECT_TRUE(eventually([&] { return configMapData("api-deploy-poolguard").is_null(); }, 30s))
      << "api's ConfigMap outlived the policy that wrote it: " << configMapData("api-deploy-poolguard").dump(2);
  json api = getJson(ns, "deployment/api");
  for (const auto& c : api["spec"]["template"]["spec"]["containers"]) EXPECT_FALSE(c.contains("envFrom")) << c.dump();
}

TEST_F(OperatorE2E, DaemonSetsAndCronJobsAreGovernedCountedAndCleanedUp) {
  std::string ns = testNamespace("kinds");
  // Three nodes for the DaemonSet controller to count (no kubelet or scheduler runs anything on them).
  std::vector<std::string> nodes;
  for (int i = 0; i < 3; ++i) {
    nodes.push_back(ns + "-node-" + std::to_string(i));
    applyYaml("", "apiVersion: v1\nkind: Node\nmetadata: {name: " + nodes.back() + "}\n");
  }
  const std::string podSpec =
      "      containers:\n      - name: app\n        image: example.invalid/app:1\n"
      "        env:\n        - {name: KEEP_ME, value: mine}\n";
  // The API server taints a new node not-ready until a kubelet reports: the DaemonSet tolerates it, so the
  // DaemonSet controller counts every node.
  applyYaml(ns,
            "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent, labels: {group: kinds}}\nspec:\n"
            "  selector: {matchLabels: {app: agent}}\n  template:\n    metadata: {labels: {app: agent}}\n"
            "    spec:\n      tolerations: [{key: node.kubernetes.io/not-ready, operator: Exists}]\n" +
                podSpec);
  applyYaml(ns,
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: report, labels: {group: kinds}}\nspec:\n"
            "  schedule: \"0 0 1 1 *\"\n  concurrencyPolicy: Forbid\n  jobTemplate:\n    spec:\n"
            "      parallelism: 2\n      template:\n        spec:\n          restartPolicy: Never\n" +
                std::regex_replace(podSpec, std::regex("^      ", std::regex::multiline), "          "));
  // A Job of 2 parallel pods (they stay Pending: no scheduler runs here, so it never finishes).
  applyYaml(ns,
            "apiVersion: batch/v1\nkind: Job\nmetadata: {name: migrate, labels: {group: kinds}}\nspec:\n"
            "  parallelism: 2\n  completions: 4\n  template:\n    spec:\n      restartPolicy: Never\n" +
                podSpec);
  applyYaml(ns, policyYaml("p", 5, "  kinds: [DaemonSet, Job, CronJob]\n", "", "group: kinds"));

  auto cronJobEnv = [&](const std::string& var) {
    json cj = getJson(ns, "cronjob/report");
    if (!cj.is_object()) return std::string();
    json asWorkload = {{"spec", {{"template", cj["spec"]["jobTemplate"]["spec"]["template"]}}}};
    return envValue(asWorkload, "app", var);
  };
  EXPECT_TRUE(eventually(
      [&] {
        return envValue(getJson(ns, "daemonset/agent"), "app", "POOL_MAX_SIZE") == "5" &&
               cronJobEnv("POOL_MAX_SIZE") == "5";
      },
      60s))
      << getJson(ns, "daemonset/agent").dump(2) << getJson(ns, "cronjob/report").dump(2);
  // The DaemonSet runs a pod on each of the 3 nodes (maxSurge 0), the Job 2 pods, the CronJob one run of 2 pods
  // (Forbid): (3 + 2 + 2) x 5 = 35. A Job's pod template cannot change: it is checked and reported, never written.
  EXPECT_TRUE(eventually(
      [&] {
        json p = getJson(ns, "cpol/p");  // not const: operator[] of a missing key inserts null
        return p["status"]["budget"].value("policyWorstCase", -1) == 35 &&
               p["status"]["workloads"].value("applied", -1) == 2 && p["status"]["workloads"].value("matched", -1) == 3;
      },
      60s))
      << getJson(ns, "cpol/p").dump(2) << getJson(ns, "daemonset/agent")["status"].dump();
  EXPECT_TRUE(conditionIs(ns, "p", "Applied", "False", "ApplyFailed")) << getJson(ns, "cpol/p").dump(2);
  bool jobReported = false;
  const json statuses = getJson(ns, "cpol/p")["status"]["workloadStatuses"];
  for (const auto& w : statuses) {
    if (w.value("kind", "") != "Job") continue;
    jobReported = w.value("state", "") == "Failed" &&
                  w.value("message", "").find("cannot change once the Job exists") != std::string::npos;
  }
  EXPECT_TRUE(jobReported) << getJson(ns, "cpol/p")["status"].dump(2);
  EXPECT_EQ(envValue(getJson(ns, "job/migrate"), "app", "POOL_MAX_SIZE"), "");

  // Deleting the policy takes poolguard's settings back out of both, and leaves the others' env.
  ASSERT_EQ(cluster().kubectl({"-n", ns, "delete", "cpol/p", "--wait=true", "--timeout=60s"}).exitCode, 0);
  EXPECT_EQ(envValue(getJson(ns, "daemonset/agent"), "app", "POOL_MAX_SIZE"), "");
  EXPECT_EQ(cronJobEnv("POOL_MAX_SIZE"), "");
  EXPECT_EQ(envValue(getJson(ns, "daemonset/agent"), "app", "KEEP_ME"), "mine");
  EXPECT_EQ(cronJobEnv("KEEP_ME"), "mine");
  for (const auto& n : nodes) cluster().kubectl({"delete", "node", n, "--ignore-not-found"});
}

// Argo Rollouts is optional: without its CRD poolguard says so once and runs as before. With a CRD whose schema
// merges containers by name (v1.9 and later) a Rollout is written like a Deployment; with an older one (atomic
// lists, where an apply would replace the containers) it is counted and reported, never written.
TEST_F(OperatorE2E, RolloutsAreCountedAndWrittenOnlyWhereTheirCrdMergesContainers) {
  const std::string logs = op_->logs();
  size_t said = 0;
  for (size_t at = logs.find("Rollouts are not watched"); at != std::string::npos;
       at = logs.find("Rollouts are not watched", at + 1))
    ++said;
  EXPECT_EQ(said, 1u) << logs;

  auto installCrd = [&](const std::string& file) {
    auto r = cluster().kubectl({"apply", "-f", sourceDir() + "/tests/testdata/argo-rollouts/" + file});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    ASSERT_EQ(cluster().waitEstablished("crd/rollouts.argoproj.io").exitCode, 0);
  };
  auto restart = [&] {
    op_->stop();
    op_->start();
    ASSERT_TRUE(op_->waitReady()) << op_->logs();
  };
  ASSERT_NO_FATAL_FAILURE(installCrd("rollout-crd-atomic.yaml"));
  ASSERT_NO_FATAL_FAILURE(restart());
  std::string ns = testNamespace("rollout");
  const std::string rolloutYaml =
      "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: web, labels: {app: web}}\nspec:\n"
      "  replicas: 2\n  selector: {matchLabels: {app: web}}\n  strategy: {blueGreen: {activeService: web}}\n"
      "  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - name: app\n"
      "        image: example.invalid/app:1\n        env:\n        - {name: KEEP_ME, value: mine}\n"
      "      - name: sidecar\n        image: example.invalid/sc:1\n";
  applyYaml(ns, rolloutYaml);
  applyYaml(ns, policyYaml("p", 5, "  kinds: [Rollout]\n"));
  // Blue-green runs both versions at full scale during promotion: (2 + 2) x 5.
  ASSERT_TRUE(eventually(
      [&] {
        json p = getJson(ns, "cpol/p");  // not const: operator[] of a missing key inserts null
        return p["status"]["budget"].value("policyWorstCase", -1) == 20 &&
               conditionIs(ns, "p", "Applied", "False", "ApplyFailed");
      },
      60s))
      << getJson(ns, "cpol/p").dump(2) << tail(op_->logs(), 20);
  const json failed = getJson(ns, "cpol/p")["status"]["workloadStatuses"][0];
  EXPECT_EQ(failed.value("state", ""), "Failed");
  EXPECT_NE(failed.value("message", "").find("atomic list"), std::string::npos) << failed.dump();
  json rollout = getJson(ns, "rollout/web");
  EXPECT_EQ(envValue(rollout, "app", "POOL_MAX_SIZE"), "") << "never written with an atomic containers list";
  EXPECT_EQ(rollout["spec"]["template"]["spec"]["containers"].size(), 2u);
  EXPECT_NE(op_->logs().find("Rollouts are counted and checked, not written"), std::string::npos);

  // The CRD of Argo Rollouts v1.9: the settings merge into the container, and its image and the sidecar stay. (The
  // Rollout is created again under it: one created under the atomic schema keeps another manager's ownership of
  // the whole list; docs/workloads.md says what to do after such an upgrade.)
  ASSERT_EQ(cluster().kubectl({"-n", ns, "delete", "rollout/web", "--wait=true"}).exitCode, 0);
  ASSERT_NO_FATAL_FAILURE(installCrd("rollout-crd-merging.yaml"));
  ASSERT_NO_FATAL_FAILURE(restart());
  applyYaml(ns, rolloutYaml);
  EXPECT_TRUE(eventually([&] { return envValue(getJson(ns, "rollout/web"), "app", "POOL_MAX_SIZE") == "5"; }, 60s))
      << getJson(ns, "cpol/p").dump(2) << tail(op_->logs(), 20);
  rollout = getJson(ns, "rollout/web");
  ASSERT_EQ(rollout["spec"]["template"]["spec"]["containers"].size(), 2u) << rollout.dump(2);
  EXPECT_EQ(rollout["spec"]["template"]["spec"]["containers"][0].value("image", ""), "example.invalid/app:1");
  EXPECT_EQ(envValue(rollout, "app", "KEEP_ME"), "mine");
  EXPECT_TRUE(eventually([&] { return conditionIs(ns, "p", "Ready", "True"); }, 30s)) << getJson(ns, "cpol/p").dump(2);

  // Deleting the policy takes its fields back out, and nothing else.
  ASSERT_EQ(cluster().kubectl({"-n", ns, "delete", "cpol/p", "--wait=true", "--timeout=60s"}).exitCode, 0);
  rollout = getJson(ns, "rollout/web");
  EXPECT_EQ(envValue(rollout, "app", "POOL_MAX_SIZE"), "");
  EXPECT_EQ(envValue(rollout, "app", "KEEP_ME"), "mine");
  EXPECT_EQ(rollout["spec"]["template"]["spec"]["containers"][0].value("image", ""), "example.invalid/app:1");

  cluster().kubectl({"delete", "crd", "rollouts.argoproj.io", "--wait=true"});
  ASSERT_NO_FATAL_FAILURE(restart());
}

// Argo Rollouts' Rollouts are checked at admission as Deployments are: with the CRD installed (the policy's rules
// name rollouts from the start, and the API server accepts them without it), a raise of a governed Rollout's
// replicas through its scale subresource or its object, and an HPA of it whose maximum is beyond its allotment,
// are refused. A blue-green Rollout's allotment pays two pods for each replica.
TEST_F(OperatorE2E, AdmissionChecksRolloutsTheirScaleAndTheirHpas) {
  auto restart = [&] {
    op_->stop();
    op_->start();
    ASSERT_TRUE(op_->waitReady()) << op_->logs();
  };
  auto r = cluster().kubectl({"apply", "-f", sourceDir() + "/tests/testdata/argo-rollouts/rollout-crd-merging.yaml"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  ASSERT_EQ(cluster().waitEstablished("crd/rollouts.argoproj.io").exitCode, 0);
  ASSERT_NO_FATAL_FAILURE(restart());

  // A blue-green Rollout of 2 replicas under a pool of 5: (2 + 2) x 5 = 20 of the 60 available, so 40 of room, and
  // each replica more costs 10: at most 6 replicas.
  const std::string ns = testNamespace("admit-rollout");
  const std::string db = g_database;
  applyYaml(ns,
            "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: web, labels: {app: web}}\nspec:\n"
            "  replicas: 2\n  selector: {matchLabels: {app: web}}\n  strategy: {blueGreen: {activeService: web}}\n"
            "  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - name: app\n"
            "        image: example.invalid/app:1\n");
  applyYaml(ns, policyYaml("p", 5, "  kinds: [Rollout]\n"));
  applyBudget(db, "  maxConnections: 63\n  reservedConnections: 3\n  admission: {mode: Deny}\n");
  const std::string key = "rollouts_" + ns + "_web";
  ASSERT_TRUE(eventually([&] { return allottedMaxPods(db, key) == 6; }, 60s))
      << allottedMaxPods(db, key) << cluster().kubectl({"get", "ccb", db, "-o", "yaml"}).out << tail(op_->logs(), 30);

  // kubectl scale goes through rollouts/scale.
  ASSERT_TRUE(eventually([&] { return scaleTo(ns, "rollout/web", 7, true).exitCode != 0; }, 30s));
  const std::string message = "database " + db + ": Rollout " + ns +
                              "/web asks for 7 replicas; its allotment in the database (60 connections, 20 taken at "
                              "worst) allows at most 6 replicas at 5 connections per pod";
  auto refused = scaleTo(ns, "rollout/web", 7);
  EXPECT_NE(refused.exitCode, 0);
  EXPECT_NE(refused.err.find(message), std::string::npos) << refused.err;
  // The same through an explicit patch of the scale subresource, and of the Rollout's own spec.replicas.
  refused = cluster().kubectl(
      {"-n", ns, "patch", "rollout/web", "--subresource=scale", "--type=merge", "-p", R"({"spec":{"replicas":7}})"});
  EXPECT_NE(refused.err.find(message), std::string::npos) << refused.err;
  refused = cluster().kubectl({"-n", ns, "patch", "rollout/web", "--type=merge", "-p", R"({"spec":{"replicas":7}})"});
  EXPECT_NE(refused.err.find(message), std::string::npos) << refused.err;
  EXPECT_EQ(getJson(ns, "rollout/web")["spec"].value("replicas", 0), 2);

  // A raise within the allotment passes: (4 + 4) x 5 = 40 then, 20 of room, still at most 6 replicas.
  auto within = scaleTo(ns, "rollout/web", 4);
  ASSERT_EQ(within.exitCode, 0) << within.err;
  EXPECT_EQ(getJson(ns, "rollout/web")["spec"].value("replicas", 0), 4);

  // An HPA of the Rollout is checked against the same allotment: beyond it refused, within it passes, and raising
  // its maximum later is refused.
  const std::string target = "apiVersion: argoproj.io/v1alpha1, kind: Rollout, name: web";
  refused = applyHpa(ns, "web", target, 4, 10);
  EXPECT_NE(refused.exitCode, 0);
  EXPECT_NE(refused.err.find("database " + db + ": HorizontalPodAutoscaler " + ns +
                             "/web asks for maxReplicas 10; the allotment of Rollout web in the database"),
            std::string::npos)
      << refused.err;
  within = applyHpa(ns, "web", target, 4, 6);
  ASSERT_EQ(within.exitCode, 0) << within.err;
  refused = cluster().kubectl({"-n", ns, "patch", "hpa/web", "--type=merge", "-p", R"({"spec":{"maxReplicas":11}})"});
  EXPECT_NE(refused.exitCode, 0);
  EXPECT_NE(refused.err.find("asks for maxReplicas 11; the allotment of Rollout web"), std::string::npos)
      << refused.err;

  cluster().kubectl({"delete", "ccb", db, "--ignore-not-found"});
  cluster().kubectl({"delete", "crd", "rollouts.argoproj.io", "--wait=true"});
  ASSERT_NO_FATAL_FAILURE(restart());
}

// Flux waits with kstatus (sigs.k8s.io/cli-utils): a policy poolguard has not observed is InProgress (the CRD
// defaults status.observedGeneration to -1), one that fits is Current, one that needs a change is Failed (Stalled)
// at once instead of a wait that times out, and a fix makes it Current again.
TEST_F(OperatorE2E, FluxWaitSeesNotObservedCurrentAndStalled) {
  std::string ns = testNamespace("kstatus");
  applyYaml(ns, deploymentYaml("web", 2));
  ASSERT_EQ(op_->stop(SIGTERM, 30s), 0);
  applyYaml(ns, policyYaml("p", 10));
  EXPECT_EQ(kstatusOf(ns, "cpol/p"),
            "InProgress: ConnectionPoolPolicy generation is 1, but latest observed generation is -1");
  op_->start();
  ASSERT_TRUE(op_->waitReady()) << op_->logs();
  EXPECT_TRUE(eventually([&] { return kstatusOf(ns, "cpol/p") == "Current: Resource is Ready"; }, 60s))
      << kstatusOf(ns, "cpol/p") << "\n"
      << getJson(ns, "cpol/p").dump(2);

  // (2 pods + 1 surge) x 40 = 120 connections against 100 - 3 reserved: over budget until the policy changes.
  applyYaml(ns, policyYaml("p", 40));
  EXPECT_TRUE(eventually(
      [&] {
        return kstatusOf(ns, "cpol/p")
            .starts_with(
                "Failed: WithinBudget is False and needs a "
                "change to clear: over budget");
      },
      60s))
      << kstatusOf(ns, "cpol/p") << "\n"
      << getJson(ns, "cpol/p").dump(2);
  EXPECT_TRUE(conditionIs(ns, "p", "Stalled", "True", "BudgetExceeded")) << getJson(ns, "cpol/p").dump(2);
  EXPECT_FALSE(conditionIs(ns, "p", "Reconciling", "True")) << "never both";

  applyYaml(ns, policyYaml("p", 10));
  EXPECT_TRUE(eventually([&] { return kstatusOf(ns, "cpol/p") == "Current: Resource is Ready"; }, 60s))
      << kstatusOf(ns, "cpol/p");
  EXPECT_TRUE(condition(getJson(ns, "cpol/p"), "Stalled").empty()) << "Stalled is removed once it is not True";
}

TEST_F(OperatorE2E, SwitchingDeliveryToEnvRemovesTheConfigMapAndItsReference) {
  std::string ns = testNamespace("switch");
  applyYaml(ns, deploymentYaml("web", 1));
  applyYaml(ns, policyYaml("p", 7, "  delivery: {method: ConfigMap}\n"));
  ASSERT_TRUE(eventually([&] { return getJson(ns, "configmap/web-deploy-poolguard").is_object(); }, 60s))
      << getJson(ns, "cpol/p").dump(2);
  applyYaml(ns, policyYaml("p", 7, "  delivery: {method: Env}\n"));
  ASSERT_TRUE(eventually(
      [&] {
        return envValue(getJson(ns, "deployment/web"), "app", "POOL_MAX_SIZE") == "7" &&
               getJson(ns, "configmap/web-deploy-poolguard").is_null();
      },
      60s))
      << getJson(ns, "deployment/web").dump(2);
  json web = getJson(ns, "deployment/web");
  for (const auto& c : web["spec"]["template"]["spec"]["containers"]) {
    EXPECT_TRUE(c.value("envFrom", json::array()).empty()) << "a reference to the deleted ConfigMap: " << c.dump();
  }
  EXPECT_EQ(envValue(web, "app", "KEEP_ME"), "mine");
}

TEST_F(OperatorE2E, PolicyThatCannotWorkDoesNotDisturbOthers) {
  std::string ns = testNamespace("broken");
  applyYaml(ns, deploymentYaml("web", 1));
  applyYaml(ns, deploymentYaml("api", 1));
  applyYaml(ns,
            policyYaml("broken", 5,
                       "  usage:\n    interval: 5s\n    postgres:\n      host: 127.0.0.1\n      database: postgres\n"
                       "      sslMode: disable\n      credentialsSecretRef: {name: does-not-exist}\n"));
  applyYaml(ns, policyYaml("fine", 6, "", "other", "app: api"));
  ASSERT_TRUE(eventually([&] { return conditionIs(ns, "broken", "UsageHealthy", "Unknown", "UsageUnavailable"); }, 60s))
      << getJson(ns, "cpol/broken").dump(2);
  json broken = getJson(ns, "cpol/broken");
  EXPECT_NE(condition(broken, "UsageHealthy").value("message", "").find("does-not-exist"), std::string::npos);
  EXPECT_TRUE(eventually([&] { return conditionIs(ns, "fine", "Ready", "True"); }, 60s));
  // Usage failures never stop settings from being applied.
  EXPECT_EQ(envValue(getJson(ns, "deployment/web"), "app", "POOL_MAX_SIZE"), "5");
}

TEST_F(OperatorE2E, KilledMidwayConvergesWithoutDuplicateWrites) {
  std::string ns = testNamespace("crash");
  for (int i = 0; i < 6; ++i) applyYaml(ns, deploymentYaml("web" + std::to_string(i), 1, ", group: crash"));
  op_->stop(SIGKILL);
  applyYaml(ns, policyYaml("p", 5, "", "", "group: crash"));
  // Start, let it get part of the way, kill it, start again.
  op_->start();
  std::this_thread::sleep_for(1500ms);
  op_->stop(SIGKILL);
  size_t before = auditLineCount();
  op_->start();
  ASSERT_TRUE(op_->waitReady());
  ASSERT_TRUE(eventually([&] { return conditionIs(ns, "p", "Ready", "True"); }, 90s)) << getJson(ns, "cpol/p").dump(2);
  EXPECT_EQ(getJson(ns, "cpol/p")["status"]["workloads"].value("applied", -1), 6);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(envValue(getJson(ns, "deployment/web" + std::to_string(i)), "app", "POOL_MAX_SIZE"), "5");
  }
  // After the restart, each workload is written at most once: the ones done before the kill not at all.
  std::map<std::string, int> writes;
  for (const auto& req : operatorRequests(before, true)) {
    if (req["objectRef"].value("resource", "") == "deployments") writes[req["objectRef"].value("name", "")]++;
  }
  for (const auto& [name, count] : writes) EXPECT_LE(count, 1) << name;
}

TEST_F(OperatorE2E, AnIdleMinuteWritesNothing) {
  std::string ns = testNamespace("idle");
  applyYaml(ns, deploymentYaml("web", 1));
  applyYaml(ns, policyYaml("p", 8));
  ASSERT_TRUE(eventually([&] { return conditionIs(ns, "p", "Ready", "True"); }, 60s));
  std::this_thread::sleep_for(5s);  // let in-flight reconciles of other tests' namespaces settle
  size_t before = auditLineCount();
  std::this_thread::sleep_for(60s);
  std::vector<std::string> writes;
  for (const auto& req : operatorRequests(before, true)) {
    std::string resource = req["objectRef"].value("resource", "");
    if (resource == "leases" || resource == "events") continue;
    writes.push_back(req.value("verb", "") + " " + resource + " " + req["objectRef"].value("namespace", "") + "/" +
                     req["objectRef"].value("name", ""));
  }
  EXPECT_TRUE(writes.empty()) << "writes in an idle minute: " << ::testing::PrintToString(writes);
}

}  // namespace
}  // namespace poolguard::testing
