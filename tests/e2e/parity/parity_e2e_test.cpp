// The offline commands and the operator decide with one engine (controller/plan.h): for each manifest set of
// tests/testdata/parity (profiles, ConfigMap delivery, HPAs and rollout strategies, Clamp across namespaces,
// conflicts and Audit, a ClusterConnectionBudget with ceilings, one with allocations, and a
// ClusterConnectionPoolPolicy), apply it to the local
// cluster, let the operator converge, and compare every field poolguard owns on the workloads and ConfigMaps with
// `poolguard render`, and every policy's status.budget with `poolguard plan`.
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

// Everything a rendered workload body sets must be on the live workload, with the same value.
void compareWorkload(const json& desired, const json& live, const std::string& what, std::vector<std::string>& diffs) {
  const json annotations = desired["metadata"].value("annotations", json::object());
  for (const auto& [k, v] : annotations.items()) {
    if (live["metadata"].value("annotations", json::object()).value(k, json()) != v)
      diffs.push_back(what + ": annotation " + k + " is not " + v.dump());
  }
  const auto& tpl = desired["spec"]["template"];
  const json podAnnotations = tpl.value("metadata", json::object()).value("annotations", json::object());
  for (const auto& [k, v] : podAnnotations.items()) {
    if (live["spec"]["template"]["metadata"].value("annotations", json::object()).value(k, json()) != v)
      diffs.push_back(what + ": pod template annotation " + k + " is not " + v.dump());
  }
  for (const auto& c : tpl["spec"]["containers"]) {
    const json* liveContainer = findByName(live["spec"]["template"]["spec"]["containers"], c.value("name", ""));
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
    json live = getJson(ns, (kind == "Deployment" ? "deployment/" : "statefulset/") + name);
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
    // A cluster policy has an entry per namespace it governs workloads in; its status sums them.
    std::map<std::string, std::pair<int64_t, int64_t>> clusterTotals;  // name -> (worst case, smallest maxSize)
    for (const auto& p : db["policies"]) {
      if (p.value("kind", "") != "ClusterConnectionPoolPolicy") continue;
      auto [it, fresh] = clusterTotals.try_emplace(p.value("name", ""), 0, INT64_MAX);
      it->second.first += p["worstCase"].get<int64_t>();
      it->second.second = std::min(it->second.second, p["effectiveMaxSize"].get<int64_t>());
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
      auto expect = [&](const char* field, const json& want) {
        if (budget.value(field, json()) != want)
          diffs.push_back(what + "." + field + " is " + budget.value(field, json()).dump() + ", plan says " +
                          want.dump());
      };
      expect("database", db["database"]);
      expect("maxConnections", db.value("maxConnections", json()));
      expect("reservedConnections", db["reservedConnections"]);
      expect("available", db.value("available", json()));
      expect("steadyState", db["steadyState"]);
      expect("worstCase", db["worstCase"]);
      if (clusterPolicy) {
        expect("policyWorstCase", clusterTotals[name].first);
        expect("effectiveMaxSize", clusterTotals[name].second);
        continue;
      }
      expect("policyWorstCase", p["worstCase"]);
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

class ParityE2E : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() { ASSERT_NO_FATAL_FAILURE(op_.start()); }
  static void TearDownTestSuite() { op_.stop(); }
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

  auto applied = cluster().kubectl({"apply", "-f", file});
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
                                           "allocations", "cluster"));

}  // namespace
}  // namespace poolguard::testing
