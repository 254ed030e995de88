#include "offline/yaml_emit.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

namespace poolguard::offline {
namespace {

using json = nlohmann::json;

// Reads YAML back the way kubectl would type plain scalars, to check what survives the round trip.
json fromYaml(const YAML::Node& n) {
  if (n.IsMap()) {
    json o = json::object();
    for (const auto& kv : n) o[kv.first.as<std::string>()] = fromYaml(kv.second);
    return o;
  }
  if (n.IsSequence()) {
    json a = json::array();
    for (const auto& item : n) a.push_back(fromYaml(item));
    return a;
  }
  if (n.Tag() == "!") return n.as<std::string>();  // quoted: always a string
  std::string s = n.as<std::string>();
  if (s == "true" || s == "false") return s == "true";
  try {
    size_t used = 0;
    long long v = std::stoll(s, &used);
    if (used == s.size()) return v;
  } catch (...) {
  }
  return s;
}

TEST(YamlEmit, RoundTripsKubernetesObjects) {
  json v = json::parse(R"({
    "apiVersion": "v1", "kind": "ConfigMap",
    "metadata": {"name": "a-deploy-poolguard", "labels": {"app.kubernetes.io/managed-by": "poolguard"}},
    "data": {"POOL_MAX_SIZE": "20", "FLAG": "true", "T": "1h30m", "EMPTY": "", "Q": "it's: \"x\"",
             "pgbouncer.ini": "[pgbouncer]\ndefault_pool_size = 20\n", "NO_NL": "a\nb"},
    "spec": {"containers": [{"name": "app", "env": [{"name": "N", "value": "0"}], "envFrom": []}], "replicas": 3,
             "nested": [[1, 2], {}], "flag": false}
  })");
  std::string yaml = toYaml(v);
  EXPECT_EQ(fromYaml(YAML::Load(yaml)), v) << yaml;
  EXPECT_NE(yaml.find("POOL_MAX_SIZE: \"20\""), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("pgbouncer.ini: |\n    [pgbouncer]\n"), std::string::npos) << yaml;
  // Keys come sorted, as kubectl prints them; "N" is quoted because YAML 1.1 reads a plain n as false.
  EXPECT_NE(
      yaml.find("  containers:\n  - env:\n    - name: \"N\"\n      value: \"0\"\n    envFrom: []\n    name: app\n"),
      std::string::npos)
      << yaml;
}

}  // namespace
}  // namespace poolguard::offline
