#include "offline/commands.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

namespace poolguard::offline {
namespace {

using json = nlohmann::json;

class OfflineCommands : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("poolguard-offline-" + std::to_string(::getpid()) + "-" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    auto path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }

  std::filesystem::path dir_;
  std::ostringstream out_;
  std::ostringstream err_;
};

std::string policyYaml(const std::string& ns, const std::string& name, const std::string& app, int maxSize,
                       const std::string& extra = "") {
  return "apiVersion: poolguard.dev/v1alpha1\nkind: ConnectionPoolPolicy\nmetadata:\n  name: " + name +
         "\n  namespace: " + ns +
         "\n  creationTimestamp: \"2024-01-01T00:00:00Z\"\nspec:\n  selector:\n    matchLabels:\n      app: " + app +
         "\n  pool:\n    maxSize: " + std::to_string(maxSize) +
         "\n  database:\n    name: orders\n    maxConnections: 100\n" + extra;
}

std::string deploymentYaml(const std::string& ns, const std::string& name, const std::string& app, int replicas) {
  return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + name + "\n  namespace: " + ns +
         "\n  labels:\n    app: " + app + "\nspec:\n  replicas: " + std::to_string(replicas) +
         "\n  selector:\n    matchLabels:\n      app: " + app +
         "\n  template:\n    metadata:\n      labels:\n        app: " + app +
         "\n    spec:\n      containers:\n      - name: app\n        image: app:1\n";
}

TEST_F(OfflineCommands, ValidateAcceptsAValidPolicy) {
  auto f = write("p.yaml", policyYaml("shop", "orders", "orders", 10));
  EXPECT_EQ(runValidate({f}, "text", out_, err_), kExitOk) << out_.str() << err_.str();
  EXPECT_NE(out_.str().find("1 policy checked, 0 invalid"), std::string::npos) << out_.str();
}

TEST_F(OfflineCommands, ValidateReportsEveryErrorWithFileDocumentAndField) {
  auto f = write("p.yaml", policyYaml("shop", "good", "a", 10) + "---\n" +
                               policyYaml("shop", "bad", "b", 0, "  mode: Sometimes\n"));
  EXPECT_EQ(runValidate({f}, "text", out_, err_), kExitFailed);
  std::string text = out_.str();
  EXPECT_NE(text.find(f + ": document 2: ConnectionPoolPolicy shop/bad: spec.pool.maxSize"), std::string::npos) << text;
  EXPECT_NE(text.find("spec.mode"), std::string::npos) << text;
  EXPECT_NE(text.find("2 policies checked, 1 invalid"), std::string::npos) << text;
}

TEST_F(OfflineCommands, ValidateJsonOutput) {
  auto f = write("p.yaml", policyYaml("shop", "bad", "b", 0));
  EXPECT_EQ(runValidate({f}, "json", out_, err_), kExitFailed);
  auto j = json::parse(out_.str());
  EXPECT_EQ(j["invalid"], 1);
  EXPECT_EQ(j["policies"][0]["document"], 1);
  EXPECT_EQ(j["policies"][0]["errors"][0]["field"], "spec.pool.maxSize");
}

// Documents without metadata (or with a metadata of the wrong type) are reported by field, in every command and
// output, never a crash: a cluster-scoped document is kept as written.
TEST_F(OfflineCommands, DocumentsWithoutMetadataAreReportedNotACrash) {
  for (const std::string kind : {"ConnectionPoolPolicy", "ClusterConnectionPoolPolicy", "ClusterConnectionBudget"}) {
    for (const std::string meta : {"", "metadata: 7\n", "metadata: {name: [x]}\n"}) {
      auto f = write("p.yaml", "apiVersion: poolguard.dev/v1alpha1\nkind: " + kind + "\n" + meta +
                                   "spec:\n  selector: {matchLabels: {app: web}}\n  pool: {maxSize: 5}\n"
                                   "  database: {name: orders}\n");
      for (const std::string output : {"text", "json"}) {
        out_.str("");
        err_.str("");
        const int validated = runValidate({f}, output, out_, err_);
        EXPECT_NE(validated, kExitOk) << kind << " " << meta << out_.str() << err_.str();
        EXPECT_NE((out_.str() + err_.str()).find("metadata"), std::string::npos)
            << kind << " " << meta << out_.str() << err_.str();
        if (output == "json") {
          const json j = json::parse(out_.str());
          for (const auto& p : j.value("policies", json::array())) EXPECT_EQ(p.value("name", "?"), "") << j.dump();
        }
        out_.str("");
        err_.str("");
        EXPECT_NE(runRender({f}, output, out_, err_), kExitOk) << kind << " " << meta << out_.str() << err_.str();
        out_.str("");
        err_.str("");
        EXPECT_NE(runPlan({f}, output, out_, err_), kExitOk) << kind << " " << meta << out_.str() << err_.str();
        EXPECT_NE(err_.str().find("metadata"), std::string::npos) << kind << " " << meta << err_.str();
      }
    }
  }
}

TEST_F(OfflineCommands, MissingFileAndBadOutputAreUsageErrors) {
  EXPECT_EQ(runValidate({(dir_ / "nope.yaml").string()}, "text", out_, err_), kExitUsage);
  EXPECT_NE(err_.str().find("nope.yaml"), std::string::npos);
  auto f = write("p.yaml", policyYaml("shop", "orders", "orders", 10));
  EXPECT_EQ(runPlan({f}, "xml", out_, err_), kExitUsage);
  EXPECT_EQ(runRender({}, "text", out_, err_), kExitUsage);
}

TEST_F(OfflineCommands, RenderAppliesThePriorityRule) {
  auto f = write("all.yaml", policyYaml("shop", "low", "orders", 10) + "---\n" +
                                 policyYaml("shop", "high", "orders", 7, "  priority: 5\n") + "---\n" +
                                 deploymentYaml("shop", "orders-api", "orders", 2) + "---\n" +
                                 deploymentYaml("other", "orders-api", "orders", 2));
  EXPECT_EQ(runRender({f}, "json", out_, err_), kExitOk) << err_.str();
  auto list = json::parse(out_.str());
  ASSERT_EQ(list["items"].size(), 1u) << "the Deployment in namespace other has no policy: " << list.dump();
  const auto& body = list["items"][0];
  EXPECT_EQ(body["metadata"]["annotations"]["poolguard.dev/policy"], "high");
  EXPECT_EQ(body["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"], "7");
  EXPECT_NE(err_.str().find("Deployment other/orders-api: no valid policy selects it"), std::string::npos);
}

TEST_F(OfflineCommands, RenderTextIsAYamlStreamWithTheClampApplied) {
  auto f = write("all.yaml", policyYaml("shop", "p", "orders", 50,
                                        "  budget:\n    onExceeded: Clamp\n  delivery:\n    method: ConfigMap\n") +
                                 "---\n" + deploymentYaml("shop", "orders-api", "orders", 3));
  EXPECT_EQ(runRender({f}, "text", out_, err_), kExitOk) << err_.str();
  std::string text = out_.str();
  // 3 pods + 1 surge = 4 pods share 97 connections: 24 each.
  EXPECT_NE(text.find("maxSize clamped from 50 to 24"), std::string::npos) << text;
  EXPECT_NE(text.find("POOL_MAX_SIZE: \"24\""), std::string::npos) << text;
  EXPECT_NE(text.find("kind: ConfigMap"), std::string::npos);
  EXPECT_LT(text.find("kind: ConfigMap"), text.find("kind: Deployment")) << "ConfigMap first, so envFrom resolves";
}

TEST_F(OfflineCommands, PlanExitsOneWhenOverBudget) {
  auto policies =
      write("p.yaml", policyYaml("team-a", "a", "api", 20) + "---\n" + policyYaml("team-b", "b", "web", 20));
  auto workloads =
      write("w.yaml", deploymentYaml("team-a", "api", "api", 2) + "---\n" + deploymentYaml("team-b", "web", "web", 2) +
                          "---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n"
                          "  name: web\n  namespace: team-b\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n"
                          "    kind: Deployment\n    name: web\n  minReplicas: 2\n  maxReplicas: 4\n");
  EXPECT_EQ(runPlan({policies, workloads}, "text", out_, err_), kExitFailed) << err_.str();
  std::string text = out_.str();
  // api: (2 + 1) x 20 = 60; web: (4 + 1) x 20 = 100; 160 > 97.
  EXPECT_NE(text.find("orders    100  3         97         80      160    BudgetExceeded"), std::string::npos) << text;
  EXPECT_NE(text.find("4 (HPA)"), std::string::npos) << text;
  EXPECT_NE(text.find("over budget by 63 connections"), std::string::npos) << text;

  std::ostringstream jout;
  EXPECT_EQ(runPlan({policies, workloads}, "json", jout, err_), kExitFailed);
  auto j = json::parse(jout.str());
  EXPECT_EQ(j["databases"][0]["worstCase"], 160);
  EXPECT_EQ(j["overBudget"], true);
}

TEST_F(OfflineCommands, PlanWithinBudgetExitsZero) {
  auto f =
      write("all.yaml", policyYaml("shop", "p", "orders", 10) + "---\n" + deploymentYaml("shop", "api", "orders", 2));
  EXPECT_EQ(runPlan({f}, "yaml", out_, err_), kExitOk) << err_.str();
  EXPECT_NE(out_.str().find("state: WithinBudget"), std::string::npos) << out_.str();
}

std::string budgetYaml(const std::string& spec) {
  return "apiVersion: poolguard.dev/v1alpha1\nkind: ClusterConnectionBudget\nmetadata:\n  name: orders\nspec:\n" + spec;
}

TEST_F(OfflineCommands, AClusterBudgetSetsTheCapacityAndItsCeilingCapsEveryPool) {
  // The policies declare maxConnections 100; the budget's 60 wins. Its ceiling of 8 caps both pools of 20.
  auto f =
      write("all.yaml", budgetYaml("  maxConnections: 60\n  reservedConnections: 5\n  ceilings:\n"
                                   "    maxSize: 8\n    requireLeakDetection: true\n") +
                            "---\n" + policyYaml("team-a", "a", "api", 20) + "---\n" +
                            policyYaml("team-b", "b", "web", 4) + "---\n" + deploymentYaml("team-a", "api", "api", 2) +
                            "---\n" + deploymentYaml("team-b", "web", "web", 2));
  EXPECT_EQ(runPlan({f}, "text", out_, err_), kExitOk) << err_.str() << out_.str();
  std::string text = out_.str();
  // Steady: 2 x 8 + 2 x 4 = 24. Worst: (2 + 1) x 8 + (2 + 1) x 4 = 36, of 60 - 5 = 55.
  EXPECT_NE(text.find("orders    60   5         55         24      36     WithinBudget"), std::string::npos) << text;
  EXPECT_NE(text.find("ClusterConnectionBudget orders: maxConnections 60, reserved 5, maxSize ceiling 8, leak "
                      "detection required"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("8 (ceiling; asks 20)"), std::string::npos) << text;
  EXPECT_NE(err_.str().find("policy team-a/a declares maxConnections 100; ClusterConnectionBudget orders sets 60, "
                            "which is used"),
            std::string::npos)
      << err_.str();

  // render writes what the budget allows: the ceiling, and leak detection the policy left off.
  std::ostringstream rendered, rerr;
  EXPECT_EQ(runRender({f}, "json", rendered, rerr), kExitOk) << rerr.str();
  auto list = json::parse(rendered.str());
  std::map<std::string, std::string> env;
  for (const auto& item : list["items"]) {
    if (item["metadata"]["name"] != "api") continue;
    for (const auto& e : item["spec"]["template"]["spec"]["containers"][0]["env"]) env[e["name"]] = e["value"];
  }
  EXPECT_EQ(env["POOL_MAX_SIZE"], "8");
  EXPECT_EQ(env["POOL_LEAK_DETECTION_THRESHOLD_MS"], "30000");

  std::ostringstream jout;
  EXPECT_EQ(runPlan({f}, "json", jout, err_), kExitOk);
  auto j = json::parse(jout.str());
  EXPECT_EQ(j["databases"][0]["clusterConnectionBudget"]["maxSizeCeiling"], 8);
  EXPECT_EQ(j["databases"][0]["maxConnections"], 60);
}

std::string namespaceYaml(const std::string& name, const std::string& team) {
  return "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + name + "\n  labels:\n    team: " + team + "\n";
}

TEST_F(OfflineCommands, PlanPrintsEachAllocationAndClampsOnlyWithinTheOneOver) {
  // payments (team=pay, 20): team-a asks (2 + 1) x 10 = 30, Clamp -> 6 per pool (18). team-b (team=retail) is in
  // no allocation: it shares 97 - 20 = 77 and keeps its 10 ((2 + 1) x 10 = 30). team-c has no Namespace object:
  // only its name label, matched by the second allocation.
  const std::string clamp = "  budget:\n    onExceeded: Clamp\n";
  auto f = write(
      "all.yaml",
      budgetYaml("  allocations:\n  - name: payments\n    namespaceSelector:\n      matchLabels:\n        team: pay\n"
                 "    maxConnections: 20\n  - name: by-name\n    namespaceSelector:\n      matchLabels:\n"
                 "        kubernetes.io/metadata.name: team-c\n    maxConnections: 40\n") +
          "---\n" + namespaceYaml("team-a", "pay") + "---\n" + namespaceYaml("team-b", "retail") + "---\n" +
          policyYaml("team-a", "a", "api", 10, clamp) + "---\n" + policyYaml("team-b", "b", "web", 10, clamp) +
          "---\n" + policyYaml("team-c", "c", "web", 10, clamp) + "---\n" + deploymentYaml("team-a", "api", "api", 2) +
          "---\n" + deploymentYaml("team-b", "web", "web", 2) + "---\n" + deploymentYaml("team-c", "web", "web", 2));
  EXPECT_EQ(runPlan({f}, "text", out_, err_), kExitOk) << err_.str() << out_.str();
  std::string text = out_.str();
  EXPECT_NE(text.find("ALLOCATION       SHARE  STEADY  WORST  STATE         NAMESPACES"), std::string::npos) << text;
  EXPECT_NE(text.find("payments         20     12      18     Clamped       team-a"), std::string::npos) << text;
  EXPECT_NE(text.find("by-name          40     20      30     WithinBudget  team-c"), std::string::npos) << text;
  EXPECT_NE(text.find("(no allocation)  37     20      30     WithinBudget  team-b"), std::string::npos) << text;
  EXPECT_NE(text.find("6 (clamped from 10)"), std::string::npos) << text;

  std::ostringstream jout;
  EXPECT_EQ(runPlan({f}, "json", jout, err_), kExitOk);
  auto db = json::parse(jout.str())["databases"][0];
  ASSERT_EQ(db["allocations"].size(), 2u) << db.dump();
  EXPECT_EQ(db["allocations"][0]["name"], "payments");
  EXPECT_EQ(db["allocations"][0]["unclampedWorstCase"], 30);
  EXPECT_EQ(db["allocations"][0]["namespaces"], json::array({"team-a"}));
  EXPECT_EQ(db["unallocated"]["maxConnections"], 37);
  EXPECT_EQ(db["policies"][0]["allocation"], "payments");
  EXPECT_TRUE(db["policies"][1]["allocation"].is_null());

  // Without Clamp, the payments share is over though the database fits: plan fails.
  std::ostringstream over, overErr;
  auto warn =
      write("warn.yaml", budgetYaml("  allocations:\n  - name: payments\n    namespaceSelector:\n"
                                    "      matchLabels:\n        team: pay\n    maxConnections: 20\n") +
                             "---\n" + namespaceYaml("team-a", "pay") + "---\n" + policyYaml("team-a", "a", "api", 10) +
                             "---\n" + deploymentYaml("team-a", "api", "api", 2));
  EXPECT_EQ(runPlan({warn}, "text", over, overErr), kExitFailed) << over.str();
  EXPECT_NE(over.str().find("payments         20     20      30     BudgetExceeded  team-a"), std::string::npos)
      << over.str();
  EXPECT_NE(over.str().find("an allocation's worst case is above its share"), std::string::npos) << over.str();
}

TEST_F(OfflineCommands, AClusterPolicyGovernsTheNamespacesItSelectsThatHaveNoPolicyOfTheirOwn) {
  // baseline (maxSize 6) for namespaces labelled tier=apps: team-a has no policy of its own, team-b has one (10),
  // team-c is not labelled.
  const std::string baseline =
      "apiVersion: poolguard.dev/v1alpha1\nkind: ClusterConnectionPoolPolicy\nmetadata:\n  name: baseline\n"
      "  creationTimestamp: \"2024-01-01T00:00:00Z\"\nspec:\n  namespaceSelector:\n    matchLabels:\n      tier: apps\n"
      "  selector:\n    matchLabels:\n      app: web\n  pool:\n    maxSize: 6\n  database:\n    name: orders\n"
      "    maxConnections: 100\n";
  auto f =
      write("all.yaml",
            baseline +
                "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-b\n  labels:\n"
                "    tier: apps\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n"
                "  labels:\n    tier: apps\n---\n" +
                policyYaml("team-b", "own", "web", 10) + "---\n" + deploymentYaml("team-a", "web", "web", 2) + "---\n" +
                deploymentYaml("team-b", "web", "web", 2) + "---\n" + deploymentYaml("team-c", "web", "web", 2));
  EXPECT_EQ(runValidate({f}, "text", out_, err_), kExitOk) << out_.str() << err_.str();
  EXPECT_NE(out_.str().find("ClusterConnectionPoolPolicy baseline: valid"), std::string::npos) << out_.str();

  std::ostringstream rendered, rerr;
  EXPECT_EQ(runRender({f}, "json", rendered, rerr), kExitOk) << rerr.str();
  std::map<std::string, std::string> sizes, owners;
  const json list = json::parse(rendered.str());
  for (const auto& item : list["items"]) {
    const std::string ns = item["metadata"]["namespace"];
    for (const auto& e : item["spec"]["template"]["spec"]["containers"][0]["env"])
      if (e["name"] == "POOL_MAX_SIZE") sizes[ns] = e["value"];
    for (const auto& [k, v] : item["metadata"]["annotations"].items()) owners[ns] = k + "=" + v.get<std::string>();
  }
  EXPECT_EQ(sizes, (std::map<std::string, std::string>{{"team-a", "6"}, {"team-b", "10"}}));
  EXPECT_EQ(owners["team-a"], "poolguard.dev/cluster-policy=baseline");
  EXPECT_EQ(owners["team-b"], "poolguard.dev/policy=own");
  EXPECT_NE(rerr.str().find("Deployment team-c/web: no valid policy selects it"), std::string::npos) << rerr.str();

  std::ostringstream planned, perr;
  EXPECT_EQ(runPlan({f}, "text", planned, perr), kExitOk) << perr.str();
  // (2 + 1) x 6 + (2 + 1) x 10 = 48.
  EXPECT_NE(planned.str().find("ccpol/baseline  Deployment/team-a/web  2     2         1      6        12      18"),
            std::string::npos)
      << planned.str();
  EXPECT_NE(planned.str().find("orders    100  3         97         32      48     WithinBudget"), std::string::npos)
      << planned.str();
}

TEST_F(OfflineCommands, AnInvalidOrSecondClusterBudgetIsReportedAndNotUsed) {
  auto f = write("b.yaml", budgetYaml("  maxConnections: 10\n  reservedConnections: 10\n  ceilings:\n"
                                      "    maxSize: 0\n") +
                               "---\n" + budgetYaml("  maxConnections: 50\n") + "---\n" +
                               budgetYaml("  maxConnections: 70\n") + "---\n" + policyYaml("shop", "p", "api", 5));
  EXPECT_EQ(runValidate({f}, "text", out_, err_), kExitFailed);
  std::string text = out_.str();
  EXPECT_NE(text.find("document 1: ClusterConnectionBudget orders: spec.ceilings.maxSize: Invalid value: 0"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("document 2: ClusterConnectionBudget orders: valid"), std::string::npos) << text;
  EXPECT_NE(text.find("document 3: ClusterConnectionBudget orders: metadata.name: Duplicate value: \"orders\""),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("1 policy checked, 0 invalid; 3 ClusterConnectionBudgets checked, 2 invalid"), std::string::npos)
      << text;
  // plan uses the valid one (maxConnections 50) and still fails for the invalid ones.
  std::ostringstream jout, jerr;
  EXPECT_EQ(runPlan({f}, "json", jout, jerr), kExitFailed);
  EXPECT_EQ(json::parse(jout.str())["databases"][0]["maxConnections"], 50);
  EXPECT_NE(jerr.str().find("spec.reservedConnections: Invalid value: 10: reservedConnections must be < "
                            "maxConnections"),
            std::string::npos)
      << jerr.str();
}

TEST_F(OfflineCommands, ADirectoryIsReadLikeKubectlDoesAndMinusRRecurses) {
  std::filesystem::create_directories(dir_ / "prod" / "team-b");
  write("prod/b-policy.yml", policyYaml("team-a", "a", "api", 10));
  write("prod/a-deploy.yaml", deploymentYaml("team-a", "api", "api", 2));
  write("prod/c-hpa.json",
        R"({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "api", "namespace": "team-a"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
                     "maxReplicas": 4}})");
  write("prod/README.md", "not a manifest: {{{\n");
  write("prod/team-b/policy.yaml", policyYaml("team-b", "b", "web", 10));
  write("prod/team-b/deploy.yaml", deploymentYaml("team-b", "web", "web", 1));
  const std::string prod = (dir_ / "prod").string();

  Loaded flat = loadDocuments({prod});
  EXPECT_TRUE(flat.errors.empty());
  std::vector<std::string> sources;
  for (const auto& d : flat.documents) sources.push_back(std::filesystem::path(d.source).filename().string());
  EXPECT_EQ(sources, (std::vector<std::string>{"a-deploy.yaml", "b-policy.yml", "c-hpa.json"}))
      << "lexical order, manifests only, no subdirectory without -R";

  Loaded deep = loadDocuments({prod}, /*recursive=*/true);
  EXPECT_TRUE(deep.errors.empty());
  EXPECT_EQ(deep.documents.size(), 5u);
  EXPECT_EQ(std::filesystem::path(deep.documents.back().source).filename(), "policy.yaml");

  // Directory by directory, in the order of their names, as kubectl walks: a/ before a-b/ (a full-path sort would
  // put "a-b/x" first, '-' sorting before '/').
  std::filesystem::create_directories(dir_ / "order" / "a");
  std::filesystem::create_directories(dir_ / "order" / "a-b");
  write("order/a/z.yaml", deploymentYaml("x", "z", "z", 1));
  write("order/a-b/x.yaml", deploymentYaml("x", "x", "x", 1));
  Loaded ordered = loadDocuments({(dir_ / "order").string()}, true);
  ASSERT_EQ(ordered.documents.size(), 2u);
  EXPECT_EQ(std::filesystem::path(ordered.documents[0].source).filename(), "z.yaml");

  // The same numbers as listing the files: the HPA's 4 pods + 1 surge, x 10.
  EXPECT_EQ(runPlanLoaded(flat, "json", out_, err_), kExitOk) << err_.str();
  EXPECT_EQ(json::parse(out_.str())["databases"][0]["worstCase"], 50);

  // An empty directory, and a broken file among good ones: errors name them, the rest is read.
  std::filesystem::create_directories(dir_ / "empty");
  write("prod/d-broken.yaml", "kind: [unclosed\n");
  Loaded broken = loadDocuments({(dir_ / "empty").string(), prod});
  ASSERT_EQ(broken.errors.size(), 2u);
  EXPECT_NE(broken.errors[0].find("empty: no .yaml, .yml or .json file in this directory (-R reads its "
                                  "subdirectories too)"),
            std::string::npos)
      << broken.errors[0];
  EXPECT_NE(broken.errors[1].find("d-broken.yaml"), std::string::npos) << broken.errors[1];
  EXPECT_EQ(broken.documents.size(), 3u);
  std::ostringstream out, err;
  EXPECT_EQ(runValidateLoaded(broken, "text", out, err), kExitUsage) << "input that cannot be read is exit 2";
}

// The cases of the issue "The offline commands never abort, and never guess", and the same class in JSON.
TEST_F(OfflineCommands, ADeploymentNamedOnIsAnErrorAndTheRestIsStillChecked) {
  std::string bad = deploymentYaml("shop", "orders-api", "orders", 2);
  bad.replace(bad.find("name: orders-api"), 16, "name: on");
  auto f = write("all.yaml", bad + "---\n" + policyYaml("shop", "orders", "orders", 10) + "---\n" +
                                 deploymentYaml("shop", "orders-web", "orders", 3));
  for (auto run : {runPlan, runRender, runValidate}) {
    out_.str("");
    err_.str("");
    EXPECT_EQ(run({f}, "text", out_, err_), kExitUsage) << err_.str();
    EXPECT_NE(err_.str().find(f + ": document 1: Deployment shop/<unnamed>: metadata.name: must be a string, not the "
                                  "boolean on; quote it: \"on\""),
              std::string::npos)
        << err_.str();
  }
  out_.str("");
  EXPECT_EQ(runPlan({f}, "json", out_, err_), kExitUsage);
  auto plan = json::parse(out_.str());
  ASSERT_EQ(plan["databases"][0]["policies"][0]["workloads"].size(), 1u) << "the readable Deployment is planned";
  EXPECT_EQ(plan["databases"][0]["policies"][0]["workloads"][0]["name"], "orders-web");
  EXPECT_EQ(plan["inputErrors"][0]["field"], "metadata.name");
  EXPECT_EQ(plan["inputErrors"][0]["document"], 1);
}

TEST_F(OfflineCommands, APolicyWithNumbersForNamesIsAnError) {
  auto f = write("p.yaml",
                 "apiVersion: poolguard.dev/v1alpha1\nkind: ConnectionPoolPolicy\nmetadata: {name: 123, namespace: "
                 "456}\nspec: {pool: {maxSize: 5}, database: {name: orders}}\n---\n" +
                     policyYaml("shop", "orders", "orders", 10));
  for (auto run : {runPlan, runRender, runValidate}) {
    out_.str("");
    err_.str("");
    EXPECT_EQ(run({f}, "text", out_, err_), kExitUsage) << err_.str();
    EXPECT_NE(err_.str().find("document 1: ConnectionPoolPolicy default/<unnamed>: metadata.name: must be a string, "
                              "not the number 123; quote it: \"123\""),
              std::string::npos)
        << err_.str();
    EXPECT_NE(err_.str().find("metadata.namespace: must be a string, not the number 456"), std::string::npos);
  }
  out_.str("");
  EXPECT_EQ(runValidate({f}, "text", out_, err_), kExitUsage);
  EXPECT_NE(out_.str().find("ConnectionPoolPolicy shop/orders: valid"), std::string::npos) << out_.str();
}

TEST_F(OfflineCommands, QuotedReplicasAndBooleanSurgeAreNotPlannedAsOneReplica) {
  std::string bad = deploymentYaml("shop", "orders-api", "orders", 2);
  bad.replace(bad.find("replicas: 2"), 11, "replicas: \"3\"\n  strategy:\n    rollingUpdate:\n      maxSurge: true");
  auto f = write("all.yaml", policyYaml("shop", "orders", "orders", 10) + "---\n" + bad);
  EXPECT_EQ(runPlan({f}, "text", out_, err_), kExitUsage);
  const std::string e = err_.str();
  EXPECT_NE(e.find(f + ": document 2: Deployment shop/orders-api: spec.replicas: must be an integer, not the string "
                       "\"3\"; remove the quotes: 3"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("spec.strategy.rollingUpdate.maxSurge: must be an integer or a percentage such as \"25%\", not "
                   "the boolean true"),
            std::string::npos)
      << e;
  EXPECT_EQ(out_.str().find("orders-api"), std::string::npos) << "not planned with a guessed replica count";
}

TEST_F(OfflineCommands, JsonInputWithWrongTypesInAnHpaIsAnError) {
  auto f = write("hpa.json", R"({"apiVersion":"v1","kind":"List","items":[
      {"apiVersion":"autoscaling/v2","kind":"HorizontalPodAutoscaler","metadata":{"name":"h","namespace":"shop"},
       "spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"orders-api"},"maxReplicas":"9"}}]})");
  auto d = write("d.yaml", policyYaml("shop", "orders", "orders", 10) + "---\n" +
                               deploymentYaml("shop", "orders-api", "orders", 2));
  EXPECT_EQ(runPlan({f, d}, "json", out_, err_), kExitUsage);
  EXPECT_NE(err_.str().find(f + ": document 1: HorizontalPodAutoscaler shop/h: spec.maxReplicas: must be an integer, "
                                "not the string \"9\"; remove the quotes: 9"),
            std::string::npos)
      << err_.str();
  auto plan = json::parse(out_.str());
  EXPECT_EQ(plan["databases"][0]["policies"][0]["workloads"][0]["podsMax"], 2) << "the HPA was left out";
}

TEST_F(OfflineCommands, AnUnreadableFileDoesNotStopTheOthers) {
  auto broken = write("broken.yaml", "a: [\n");
  auto good = write("good.yaml", policyYaml("shop", "orders", "orders", 10));
  EXPECT_EQ(runValidate({broken, (dir_ / "missing.yaml").string(), good}, "text", out_, err_), kExitUsage);
  EXPECT_NE(err_.str().find("error: " + broken + ":"), std::string::npos) << err_.str();
  EXPECT_NE(err_.str().find("missing.yaml: cannot open"), std::string::npos) << err_.str();
  EXPECT_NE(out_.str().find("ConnectionPoolPolicy shop/orders: valid"), std::string::npos) << out_.str();
}

TEST_F(OfflineCommands, ADeploymentWithoutANameIsAnError) {
  std::string bad = deploymentYaml("shop", "x", "orders", 2);
  bad.replace(bad.find("  name: x\n"), 10, "");
  auto f = write("d.yaml", bad);
  EXPECT_EQ(runRender({f}, "text", out_, err_), kExitUsage);
  EXPECT_NE(err_.str().find("document 1: Deployment shop/<unnamed>: metadata.name: required"), std::string::npos)
      << err_.str();
}

TEST_F(OfflineCommands, TheOtherKindsArePlannedByTheirOwnRulesAndSayWhatWasAssumed) {
  // A DaemonSet without nodes (1 assumed), a CronJob with concurrencyPolicy Allow (2 runs assumed), a running Job,
  // and a Rollout whose pods run the template of a Deployment that Argo Rollouts keeps at 0 replicas.
  auto f = write("kinds.yaml",
                 policyYaml("shop", "p", "orders", 5, "  kinds: [Deployment, DaemonSet, Job, CronJob, Rollout]\n") +
                     "---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent, namespace: shop, "
                     "labels: {app: orders}}\nspec:\n  template: {spec: {containers: [{name: app}]}}\n"
                     "---\napiVersion: batch/v1\nkind: CronJob\nmetadata: {name: report, namespace: shop, "
                     "labels: {app: orders}}\nspec:\n  schedule: \"0 * * * *\"\n  jobTemplate: {spec: "
                     "{parallelism: 2, template: {spec: {containers: [{name: app}]}}}}\n"
                     "---\napiVersion: batch/v1\nkind: Job\nmetadata: {name: report, namespace: shop, "
                     "labels: {app: orders}}\nspec:\n  template: {spec: {containers: [{name: app}]}}\n"
                     "---\napiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: web, "
                     "namespace: shop, labels: {app: orders}}\nspec:\n  replicas: 3\n  strategy: "
                     "{blueGreen: {activeService: web}}\n  workloadRef: {apiVersion: apps/v1, kind: "
                     "Deployment, name: web}\n---\n" +
                     deploymentYaml("shop", "web", "orders", 0));
  EXPECT_EQ(runPlan({f}, "json", out_, err_), kExitOk) << err_.str();
  EXPECT_NE(err_.str().find("DaemonSet shop/agent: the nodes that run it are unknown here, 1 assumed"),
            std::string::npos)
      << err_.str();
  EXPECT_NE(err_.str().find("CronJob shop/report: concurrencyPolicy Allow lets runs overlap, 2 assumed"),
            std::string::npos)
      << err_.str();
  EXPECT_NE(err_.str().find("Job shop/report, CronJob shop/report report the same application_name \"shop/report\""),
            std::string::npos)
      << err_.str();
  EXPECT_EQ(err_.str().find("application_name \"shop/web\""), std::string::npos)
      << "a Rollout and the Deployment whose pods it runs share their pods, and the name: " << err_.str();
  const json plan = json::parse(out_.str());
  std::map<std::string, json> byName;
  for (const auto& w : plan["databases"][0]["policies"][0]["workloads"]) byName[w.value("kind", "")] = w;
  EXPECT_EQ(byName["DaemonSet"].value("worstCase", -1), 5);
  EXPECT_EQ(byName["CronJob"].value("podsMax", -1), 4);
  EXPECT_EQ(byName["CronJob"].value("podsSource", ""), "2 runs assumed");
  EXPECT_EQ(byName["Job"].value("worstCase", -1), 5);
  EXPECT_EQ(byName["Rollout"].value("worstCase", -1), (3 + 3) * 5) << "blue-green: both versions at full scale";
  EXPECT_EQ(byName["Deployment"].value("worstCase", -1), 0) << "scaled to 0: its pods are the Rollout's";
  EXPECT_EQ(plan["databases"][0].value("worstCase", -1), 5 + 20 + 5 + 30);

  // render prints the Deployment, the DaemonSet, the CronJob and the Job (whose settings belong in its manifest: its
  // template cannot change once it exists), and notes the Rollout (it has no template of its own).
  out_.str("");
  err_.str("");
  EXPECT_EQ(runRender({f}, "json", out_, err_), kExitOk) << err_.str();
  const std::string rendered = out_.str();
  EXPECT_NE(err_.str().find("note: Rollout shop/web: runs the pod template of Deployment web (spec.workloadRef)"),
            std::string::npos)
      << err_.str();
  EXPECT_NE(rendered.find("\"kind\": \"DaemonSet\""), std::string::npos) << rendered;
  EXPECT_NE(rendered.find("\"kind\": \"CronJob\""), std::string::npos) << rendered;
  EXPECT_NE(rendered.find("\"kind\": \"Deployment\""), std::string::npos) << rendered;
  EXPECT_NE(rendered.find("\"kind\": \"Job\""), std::string::npos) << rendered;
  EXPECT_EQ(rendered.find("\"kind\": \"Rollout\""), std::string::npos) << rendered;
}

}  // namespace
}  // namespace poolguard::offline
