// The offline commands and the operator decide with one engine (controller/plan.h): for each manifest set of
// tests/testdata/parity (profiles, ConfigMap delivery, HPAs and rollout strategies, Clamp across namespaces,
// conflicts and Audit, a ClusterConnectionBudget with ceilings, one with allocations, a
// ClusterConnectionPoolPolicy, and the kinds a policy opts into: DaemonSets on nodes of their own, CronJobs by
// concurrencyPolicy, and Argo Rollouts' Rollouts), apply it to the local cluster, let the operator converge, and
// compare every field poolguard owns on the workloads and ConfigMaps with `poolguard render`, and every policy's
// status.budget with `poolguard plan`.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "support/cluster.h"
#include "support/e2e_helpers.h"
#include "support/operator_process.h"

namespace poolguard::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

std::string setFile(const std::string& set) { return sourceDir() + "/tests/testdata/parity/" + set + ".yaml"; }

json offline(const std::string& command, const std::string& file, int& exitCode) {
  auto r = run({poolguardBinary(), command, "-f", file, "-o", "json"});
  exitCode = r.exitCode;
  json out = json::parse(r.out, nullptr, false);
  if (out.is_discarded()) ADD_FAILURE() << command << " printed no JSON: " << r.out << r.err;
  return out;
}

const json* findByName(const json& list, const std::string& name) {
  for (const auto& item : list) {
    if (item.value("name", "") == name) return &item;
  }
  return nullptr;
}

// The resource kubectl reads a workload kind of poolguard's as ("" for a kind it does not govern).
std::string resourceOf(const std::string& kind) {
  static const std::map<std::string, std::string> resources{{"Deployment", "deployment"},
                                                            {"StatefulSet", "statefulset"},
                                                            {"DaemonSet", "daemonset"},
                                                            {"CronJob", "cronjob"},
                                                            {"Rollout", "rollouts.argoproj.io"}};
  auto it = resources.find(kind);
  return it == resources.end() ? "" : it->second;
}

// The pod template of a workload: a CronJob's is in its job template.
json podTemplate(const json& workload) {
  const json spec = workload.value("spec", json::object());
  if (workload.value("kind", "") == "CronJob")
    return spec.value("jobTemplate", json::object()).value("spec", json::object()).value("template", json::object());
  return spec.value("template", json::object());
}

// Everything a rendered workload body sets must be on the live workload, with the same value.
void compareWorkload(const json& desired, const json& live, const std::string& what, std::vector<std::string>& diffs) {
  const json annotations = desired["metadata"].value("annotations", json::object());
  for (const auto& [k, v] : annotations.items()) {
    if (live["metadata"].value("annotations", json::object()).value(k, json()) != v)
      diffs.push_back(what + ": annotation " + k + " is not " + v.dump());
  }
  const json tpl = podTemplate(desired), liveTpl = podTemplate(live);
  if (tpl.empty()) diffs.push_back(what + ": rendered without a pod template");
  const json podAnnotations = tpl.value("metadata", json::object()).value("annotations", json::object());
  for (const auto& [k, v] : podAnnotations.items()) {
    if (liveTpl.value("metadata", json::object()).value("annotations", json::object()).value(k, json()) != v)
      diffs.push_back(what + ": pod template annotation " + k + " is not " + v.dump());
  }
  const json liveContainers = liveTpl.value("spec", json::object()).value("containers", json::array());
  for (const auto& c : tpl.value("spec", json::object()).value("containers", json::array())) {
    const json* liveContainer = findByName(liveContainers, c.value("name", ""));
    if (!liveContainer) {
      diffs.push_back(what + ": no container " + c.value("name", ""));
      continue;
    }
    const json env = c.value("env", json::array()), liveEnvs = liveContainer->value("env", json::array());
    for (const auto& e : env) {
      const json* liveEnv = findByName(liveEnvs, e.value("name", ""));
      if (!liveEnv || *liveEnv != e)
        diffs.push_back(what + ": env " + e.dump() + " is " + (liveEnv ? liveEnv->dump() : "absent"));
    }
    const json envFrom = c.value("envFrom", json::array()),
               liveEnvFrom = liveContainer->value("envFrom", json::array());
    for (const auto& ef : envFrom) {
      bool found = false;
      for (const auto& l : liveEnvFrom) found = found || l == ef;
      if (!found) diffs.push_back(what + ": envFrom " + ef.dump() + " is absent");
    }
  }
}

std::vector<std::string> differences(const json& rendered, const json& planned) {
  std::vector<std::string> diffs;
  for (const auto& item : rendered["items"]) {
    const std::string kind = item.value("kind", ""), ns = item["metadata"].value("namespace", "");
    const std::string name = item["metadata"].value("name", "");
    const std::string what = kind + " " + ns + "/" + name;
    if (kind == "ConfigMap") {
      json live = getJson(ns, "configmap/" + name);
      if (!live.is_object()) {
        diffs.push_back(what + ": absent");
      } else if (live.value("data", json::object()) != item.value("data", json::object())) {
        diffs.push_back(what + ": data " + live.value("data", json::object()).dump() + ", rendered " +
                        item.value("data", json::object()).dump());
      }
      continue;
    }
    const json& annotations = item["metadata"]["annotations"];
    const bool byClusterPolicy = annotations.contains("poolguard.dev/cluster-policy");
    const std::string policyName =
        annotations.value(byClusterPolicy ? "poolguard.dev/cluster-policy" : "poolguard.dev/policy", "");
    json policy = getJson(ns, (byClusterPolicy ? "ccpol/" : "cpol/") + policyName);
    if (resourceOf(kind).empty()) {
      diffs.push_back(what + ": rendered, but not a workload kind the parity test reads");
      continue;
    }
    json live = getJson(ns, resourceOf(kind) + "/" + name);
    if (!live.is_object() || !policy.is_object()) {
      diffs.push_back(what + ": cannot read it or its policy " + policyName);
      continue;
    }
    if (policy["spec"].value("mode", "Enforce") == "Audit") {
      // Rendered to show what Enforce would write; the operator writes nothing in Audit.
      if (live["metadata"].value("annotations", json::object()).contains("poolguard.dev/policy"))
        diffs.push_back(what + ": written under an Audit policy");
      continue;
    }
    compareWorkload(item, live, what, diffs);
  }
  for (const auto& db : planned["databases"]) {
    // Of a policy's worst case, the connections of old pods still terminating (terminatingPods: Count): the
    // terminating pods plan counts for each workload, at the policy's connections per pod.
    auto terminatingOf = [](const json& p) {
      int64_t sum = 0;
      for (const auto& w : p["workloads"]) sum += w["terminating"].get<int64_t>() * w["perPod"].get<int64_t>();
      return sum;
    };
    // A cluster policy has an entry per namespace it governs workloads in; its status sums them.
    struct ClusterTotal {
      int64_t worstCase = 0, terminating = 0, effectiveMaxSize = INT64_MAX;
    };
    std::map<std::string, ClusterTotal> clusterTotals;
    for (const auto& p : db["policies"]) {
      if (p.value("kind", "") != "ClusterConnectionPoolPolicy") continue;
      ClusterTotal& total = clusterTotals[p.value("name", "")];
      total.worstCase += p["worstCase"].get<int64_t>();
      total.terminating += terminatingOf(p);
      total.effectiveMaxSize = std::min(total.effectiveMaxSize, p["effectiveMaxSize"].get<int64_t>());
    }
    for (const auto& p : db["policies"]) {
      const bool clusterPolicy = p.value("kind", "") == "ClusterConnectionPoolPolicy";
      const std::string ns = p.value("namespace", ""), name = p.value("name", "");
      json live = getJson(clusterPolicy ? "default" : ns, (clusterPolicy ? "ccpol/" : "cpol/") + name);
      const json status = live.is_object() ? live.value("status", json::object()) : json::object();
      const json budget = status.value("budget", json::object());
      const std::string what =
          (clusterPolicy ? "ClusterConnectionPoolPolicy " : "policy " + ns + "/") + name + " status.budget";
      if (!live.is_object() || status.value("observedGeneration", -1) != live["metadata"].value("generation", 0)) {
        diffs.push_back("policy " + ns + "/" + name + ": status not yet for its generation");
        continue;
      }
      auto expect = [&](const char* field, const json& want, const json& absentMeans = json()) {
        if (budget.value(field, absentMeans) != want)
          diffs.push_back(what + "." + field + " is " + budget.value(field, absentMeans).dump() + ", plan says " +
                          want.dump());
      };
      expect("database", db["database"]);
      expect("maxConnections", db.value("maxConnections", json()));
      expect("reservedConnections", db["reservedConnections"]);
      expect("available", db.value("available", json()));
      expect("steadyState", db["steadyState"]);
      expect("worstCase", db["worstCase"]);
      // status.budget.terminatingWorstCase is left out when 0.
      if (clusterPolicy) {
        expect("policyWorstCase", clusterTotals[name].worstCase);
        expect("terminatingWorstCase", clusterTotals[name].terminating, 0);
        expect("effectiveMaxSize", clusterTotals[name].effectiveMaxSize);
        continue;
      }
      expect("policyWorstCase", p["worstCase"]);
      expect("terminatingWorstCase", terminatingOf(p), 0);
      expect("effectiveMaxSize", p["effectiveMaxSize"]);
      if (db.contains("allocations")) {
        // The share the policy counts against: its allocation, or the namespaces in none.
        const json share =
            p["allocation"].is_string() ? *findByName(db["allocations"], p["allocation"]) : db["unallocated"];
        json want{{"worstCase", share["worstCase"]}};
        if (p["allocation"].is_string())
          want["name"] = p["allocation"];
        else
          want["unallocated"] = true;
        if (share.contains("maxConnections")) want["maxConnections"] = share["maxConnections"];
        expect("allocation", want);
      }
    }
  }
  return diffs;
}

const std::string kRolloutCrd = "crd/rollouts.argoproj.io";

class ParityE2E : public ::testing::TestWithParam<std::string> {
 protected:
  // The operator watches Rollouts only when their CRD is served when it starts, and writes them only when the CRD
  // merges containers by name: the stand-in for Argo Rollouts v1.9's CRD goes in first.
  static void SetUpTestSuite() {
    auto r = cluster().kubectl({"apply", "-f", sourceDir() + "/tests/testdata/argo-rollouts/rollout-crd-merging.yaml"});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    r = cluster().waitEstablished(kRolloutCrd);
    ASSERT_EQ(r.exitCode, 0) << r.err;
    ASSERT_NO_FATAL_FAILURE(op_.start());
  }
  // The CRD is cluster-scoped: it goes, so that a cluster shared with other test binaries has no Rollouts after.
  static void TearDownTestSuite() {
    op_.stop();
    cluster().kubectl({"delete", kRolloutCrd, "--ignore-not-found", "--wait=true", "--timeout=60s"});
  }
  void TearDown() override { op_.printLogTailIfFailed(); }
  static SuiteOperator op_;
};
SuiteOperator ParityE2E::op_;

TEST_P(ParityE2E, RenderAndPlanSayWhatTheOperatorWritesAndReports) {
  const std::string file = setFile(GetParam());
  std::ifstream in(file);
  ASSERT_TRUE(in) << file;
  std::stringstream text;
  text << in.rdbuf();
  std::set<std::string> namespaces;
  const std::string manifests = text.str();
  std::regex nsLine(R"(\n  namespace: ([a-z0-9-]+))");
  for (auto it = std::sregex_iterator(manifests.begin(), manifests.end(), nsLine); it != std::sregex_iterator(); ++it)
    namespaces.insert((*it)[1]);
  ASSERT_FALSE(namespaces.empty());
  for (const auto& ns : namespaces) {
    auto r = cluster().kubectl({"create", "namespace", ns});
    ASSERT_TRUE(r.exitCode == 0 || r.err.find("AlreadyExists") != std::string::npos) << r.err;
  }

  int renderExit = -1, planExit = -1;
  json rendered = offline("render", file, renderExit);
  json planned = offline("plan", file, planExit);
  ASSERT_EQ(renderExit, 0) << rendered.dump(2);
  ASSERT_EQ(planExit, 0) << planned.dump(2);
  ASSERT_FALSE(rendered["items"].empty());
  ASSERT_FALSE(planned["databases"].empty());

  auto applied = cluster().kubectl({"apply", "-f", file, "-o", "name"});
  // Nodes a set brings (for its DaemonSets) are cluster-scoped: they go when the set is done, whatever the outcome.
  std::vector<std::string> nodes;
  std::istringstream appliedNames(applied.out);
  for (std::string line; std::getline(appliedNames, line);) {
    if (line.starts_with("node/")) nodes.push_back(line);
  }
  struct DeleteNodes {
    const std::vector<std::string>& nodes;
    ~DeleteNodes() {
      for (const auto& n : nodes) cluster().kubectl({"delete", n, "--ignore-not-found", "--wait=false"});
    }
  } deleteNodes{nodes};
  ASSERT_EQ(applied.exitCode, 0) << applied.err;
  std::vector<std::string> diffs;
  bool same = eventually(
      [&] {
        diffs = differences(rendered, planned);
        return diffs.empty();
      },
      90s);
  EXPECT_TRUE(same) << GetParam() << ": the operator and the offline commands disagree:\n"
                    << ::testing::PrintToString(diffs);
  std::cout << "[ measured ] " << GetParam() << ": " << rendered["items"].size() << " rendered objects, "
            << planned["databases"][0]["policies"].size() << " policies compared\n";
}

INSTANTIATE_TEST_SUITE_P(ManifestSets, ParityE2E,
                         ::testing::Values("profiles", "configmap", "hpa", "clamp", "conflicts", "budget",
                                           "allocations", "cluster", "daemonset", "cronjob", "rollout"));

}  // namespace
}  // namespace poolguard::testing
