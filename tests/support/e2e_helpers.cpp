#include "support/e2e_helpers.h"

#include <gtest/gtest.h>

#include "support/cluster.h"

namespace poolguard::testing {

using json = nlohmann::json;

void installCrds() {
  auto r = cluster().kubectl({"apply", "-f", sourceDir() + "/crds/"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  for (const char* crd : {"crd/connectionpoolpolicies.poolguard.dev", "crd/clusterconnectionbudgets.poolguard.dev",
                          "crd/clusterconnectionpoolpolicies.poolguard.dev"}) {
    r = cluster().waitEstablished(crd);
    ASSERT_EQ(r.exitCode, 0) << r.err;
  }
}

json getJson(const std::string& ns, const std::string& what) {
  auto r = cluster().kubectl({"-n", ns, "get", what, "-o", "json"});
  if (r.exitCode != 0) return json();
  return json::parse(r.out, nullptr, false);
}

void applyYaml(const std::string& ns, const std::string& yaml) {
  auto r = cluster().kubectl({"-n", ns, "apply", "-f", "-"}, yaml);
  ASSERT_EQ(r.exitCode, 0) << r.err << "\n" << yaml;
}

json condition(const json& policy, const std::string& type) {
  if (!policy.is_object() || !policy.contains("status") || !policy["status"].contains("conditions"))
    return json::object();
  for (const auto& c : policy["status"]["conditions"]) {
    if (c.is_object() && c.value("type", "") == type) return c;
  }
  return json::object();
}

bool conditionIs(const std::string& ns, const std::string& policy, const std::string& type, const std::string& status,
                 const std::string& reason) {
  json p = getJson(ns, "cpol/" + policy);
  json c = condition(p, type);
  return !c.empty() && c.value("status", "") == status && (reason.empty() || c.value("reason", "") == reason) &&
         p["status"].value("observedGeneration", 0) == p["metadata"].value("generation", -1);
}

std::string envValue(const json& workload, const std::string& container, const std::string& var) {
  // Through a pointer, never a const operator[]: a Rollout with a workloadRef or a CronJob has no spec.template.
  static const json::json_pointer kContainers("/spec/template/spec/containers");
  if (!workload.is_object() || !workload.contains(kContainers) || !workload.at(kContainers).is_array()) return "";
  for (const auto& c : workload.at(kContainers)) {
    if (!c.is_object() || c.value("name", "") != container) continue;
    auto env = c.find("env");
    if (env == c.end() || !env->is_array()) continue;
    for (const auto& e : *env) {
      if (e.is_object() && e.value("name", "") == var) return e.value("value", "");
    }
  }
  return "";
}

std::string configMapValue(const std::string& ns, const std::string& name, const std::string& key) {
  const json cm = getJson(ns, "configmap/" + name);
  if (!cm.is_object() || !cm.contains("data") || !cm["data"].is_object()) return "";
  return cm["data"].value(key, "");
}

std::string kstatusOf(const std::string& ns, const std::string& what) {
  auto object = cluster().kubectl({"-n", ns, "get", what, "-o", "json"});
  if (object.exitCode != 0) return "error: kubectl: " + object.err;
  auto computed = run({kstatusBinary()}, object.out);
  if (computed.exitCode != 0) return "error: kstatus: " + computed.err;
  const json results = json::parse(computed.out, nullptr, false);
  if (!results.is_array() || results.size() != 1 || !results.at(0).is_object())
    return "error: kstatus printed " + computed.out;
  return results.at(0).value("status", "") + ": " + results.at(0).value("message", "");
}

std::string hpaYaml(const std::string& target, int maxReplicas) {
  return "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: " + target +
         "}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: " + target +
         "}\n  minReplicas: 1\n  maxReplicas: " + std::to_string(maxReplicas) +
         "\n  metrics:\n  - type: Resource\n    resource: {name: cpu, target: {type: Utilization, "
         "averageUtilization: 80}}\n";
}

std::string tail(const std::string& s, int lines) {
  size_t pos = s.size();
  for (int i = 0; i < lines && pos > 0; ++i) pos = s.rfind('\n', pos - 1);
  return pos == std::string::npos ? s : s.substr(pos);
}

}  // namespace poolguard::testing
