// The CRD (crds/) and its offline twin (operator/policy/schema.cpp) describe the same schema: properties,
// required fields, defaults, enums, bounds, patterns, list types and CEL rule messages. A change to one
// without the other fails here.
#include <regex>
#include <set>

#include <gtest/gtest.h>

#include "policy/parse.h"
#include "policy/schema.h"
#include "source_dir.h"

namespace poolguard::policy {
namespace {

json loadCrd(const std::string& file = "poolguard.dev_connectionpoolpolicies.yaml") {
  auto docs = readDocuments(testing::sourceDir() + "/crds/" + file);
  EXPECT_TRUE(docs.ok()) << (docs.ok() ? "" : docs.error().message());
  if (!docs.ok() || docs->size() != 1) return json::object();
  return docs->front().object;
}

const json& version(const json& crd) { return crd["spec"]["versions"][0]; }

template <typename T>
void expectOptional(const json& crd, const char* key, const std::optional<T>& mine, const std::string& path) {
  if (mine) {
    ASSERT_TRUE(crd.contains(key)) << path << ": CRD lacks " << key;
    EXPECT_EQ(crd[key].get<int64_t>(), *mine) << path << "." << key;
  } else {
    EXPECT_FALSE(crd.contains(key)) << path << ": CRD has " << key << " the offline schema lacks";
  }
}

std::set<std::pair<std::string, std::string>> crdRules(const json& crd) {
  std::set<std::pair<std::string, std::string>> out;
  if (auto it = crd.find("x-kubernetes-validations"); it != crd.end()) {
    for (const auto& r : *it) out.emplace(r.value("message", ""), r.value("fieldPath", ""));
  }
  return out;
}

void compare(const json& crd, const schema::Node& mine, const std::string& path) {
  SCOPED_TRACE(path);
  EXPECT_EQ(crd.value("type", ""), schema::toString(mine.type));
  if (mine.defaultValue) {
    ASSERT_TRUE(crd.contains("default")) << path;
    EXPECT_EQ(crd["default"], *mine.defaultValue);
  } else {
    EXPECT_FALSE(crd.contains("default"));
  }
  std::vector<std::string> enums = crd.value("enum", std::vector<std::string>{});
  EXPECT_EQ(enums, mine.enumValues);
  expectOptional(crd, "minimum", mine.minimum, path);
  expectOptional(crd, "maximum", mine.maximum, path);
  expectOptional(crd, "minLength", mine.minLength, path);
  expectOptional(crd, "maxLength", mine.maxLength, path);
  expectOptional(crd, "minItems", mine.minItems, path);
  expectOptional(crd, "maxItems", mine.maxItems, path);
  expectOptional(crd, "maxProperties", mine.maxProperties, path);
  EXPECT_EQ(crd.value("pattern", ""), mine.pattern);
  EXPECT_EQ(crd.value("x-kubernetes-list-type", "") == "set", mine.setList);
  EXPECT_EQ(crd.value("x-kubernetes-list-type", "") == "map", !mine.mapListKey.empty());
  if (!mine.mapListKey.empty()) {
    EXPECT_EQ(crd.value("x-kubernetes-list-map-keys", json::array()), json::array({mine.mapListKey}));
  }
  std::set<std::pair<std::string, std::string>> myRules;
  for (const auto& r : mine.rules) myRules.emplace(r.message, r.fieldPath);
  EXPECT_EQ(crdRules(crd), myRules);
  std::vector<std::string> required = crd.value("required", std::vector<std::string>{});
  EXPECT_EQ(std::set<std::string>(required.begin(), required.end()),
            std::set<std::string>(mine.required.begin(), mine.required.end()));

  switch (mine.type) {
    case schema::Type::kObject: {
      std::set<std::string> crdProps;
      json props = crd.value("properties", json::object());
      for (auto it = props.begin(); it != props.end(); ++it) crdProps.insert(it.key());
      std::set<std::string> myProps;
      for (const auto& [name, node] : mine.properties) {
        myProps.insert(name);
        if (crd.contains("properties") && crd["properties"].contains(name)) {
          compare(crd["properties"][name], node, path + "." + name);
        }
      }
      EXPECT_EQ(crdProps, myProps);
      break;
    }
    case schema::Type::kStringMap:
      ASSERT_TRUE(crd.contains("additionalProperties"));
      compare(crd["additionalProperties"], *mine.items, path + "[*]");
      break;
    case schema::Type::kArray:
      ASSERT_TRUE(crd.contains("items"));
      compare(crd["items"], *mine.items, path + "[*]");
      break;
    default:
      break;
  }
}

TEST(CrdDrift, SpecSchemaMatchesTheOfflineSchema) {
  json crd = loadCrd();
  const json& spec = version(crd)["schema"]["openAPIV3Schema"]["properties"]["spec"];
  compare(spec, schema::spec(), "spec");
}

void requireDescriptions(const json& node, const std::string& path, int& checked) {
  if (auto props = node.find("properties"); props != node.end()) {
    for (auto it = props->begin(); it != props->end(); ++it) {
      std::string child = path + "." + it.key();
      // The API server forbids anything but type under metadata; kubectl explain documents ObjectMeta itself.
      if (child != ".metadata") {
        EXPECT_FALSE(it->value("description", "").empty()) << child << " has no description (kubectl explain)";
        ++checked;
      }
      requireDescriptions(*it, child, checked);
    }
  }
  if (auto items = node.find("items"); items != node.end()) requireDescriptions(*items, path + "[*]", checked);
}

TEST(CrdDrift, EveryFieldIsDescribed) {
  json crd = loadCrd();
  int checked = 0;
  requireDescriptions(version(crd)["schema"]["openAPIV3Schema"], "", checked);
  EXPECT_GT(checked, 100);
}

TEST(CrdDrift, TheClusterPolicySpecIsAPolicySpecWithANamespaceSelector) {
  json crd = loadCrd("poolguard.dev_clusterconnectionpoolpolicies.yaml");
  EXPECT_EQ(crd["metadata"]["name"], "clusterconnectionpoolpolicies.poolguard.dev");
  EXPECT_EQ(crd["spec"]["scope"], "Cluster");
  EXPECT_EQ(crd["spec"]["names"]["kind"], "ClusterConnectionPoolPolicy");
  EXPECT_EQ(crd["spec"]["names"]["shortNames"], json::array({"ccpol"}));
  const json& spec = version(crd)["schema"]["openAPIV3Schema"]["properties"]["spec"];
  compare(spec, schema::clusterPolicySpec(), "spec");
  // The same printer columns as a ConnectionPoolPolicy's, and each workload status names its namespace.
  EXPECT_EQ(version(crd)["additionalPrinterColumns"], version(loadCrd())["additionalPrinterColumns"]);
  EXPECT_TRUE(version(crd)["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["workloadStatuses"]
                          ["items"]["properties"]
                              .contains("namespace"));
  int checked = 0;
  requireDescriptions(version(crd)["schema"]["openAPIV3Schema"], "", checked);
}

TEST(CrdDrift, NamesAndColumnsPerContract) {
  json crd = loadCrd();
  EXPECT_EQ(crd["metadata"]["name"], "connectionpoolpolicies.poolguard.dev");
  EXPECT_EQ(crd["spec"]["group"], "poolguard.dev");
  EXPECT_EQ(crd["spec"]["scope"], "Namespaced");
  const json& names = crd["spec"]["names"];
  EXPECT_EQ(names["kind"], "ConnectionPoolPolicy");
  EXPECT_EQ(names["plural"], "connectionpoolpolicies");
  EXPECT_EQ(names["shortNames"], json::array({"cpol", "poolpolicy"}));
  EXPECT_EQ(names["categories"], json::array({"poolguard"}));
  const json& v = version(crd);
  EXPECT_EQ(v["name"], "v1alpha1");
  EXPECT_TRUE(v["subresources"].contains("status"));
  std::vector<std::string> columns;
  for (const auto& c : v["additionalPrinterColumns"]) columns.push_back(c["name"]);
  EXPECT_EQ(columns, (std::vector<std::string>{"Mode", "Database", "Matched", "Applied", "Budget", "Ready", "Age"}));
  const json& status = v["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
  EXPECT_EQ(status["workloadStatuses"]["maxItems"], 100);
  EXPECT_EQ(status["conditions"]["x-kubernetes-list-type"], "map");
  EXPECT_TRUE(status["budget"]["properties"].contains("summary"));
}

TEST(CrdDrift, TheBudgetSpecMatchesItsOfflineSchemaAndTheContract) {
  json crd = loadCrd("poolguard.dev_clusterconnectionbudgets.yaml");
  EXPECT_EQ(crd["metadata"]["name"], "clusterconnectionbudgets.poolguard.dev");
  EXPECT_EQ(crd["spec"]["scope"], "Cluster");
  const json& names = crd["spec"]["names"];
  EXPECT_EQ(names["kind"], "ClusterConnectionBudget");
  EXPECT_EQ(names["shortNames"], json::array({"ccb"}));
  const json& v = version(crd);
  EXPECT_TRUE(v["subresources"].contains("status"));
  compare(v["schema"]["openAPIV3Schema"]["properties"]["spec"], schema::budgetSpec(), "spec");
  int checked = 0;
  requireDescriptions(v["schema"]["openAPIV3Schema"], "", checked);
  EXPECT_GT(checked, 15);
  std::vector<std::string> columns;
  for (const auto& c : v["additionalPrinterColumns"]) columns.push_back(c["name"]);
  EXPECT_EQ(columns, (std::vector<std::string>{"Max", "Available", "Worst", "Live", "Ready", "Age"}));
}

// The hand-written pattern checks accept exactly what the CRD's patterns accept, on probes chosen at the edges.
TEST(CrdDrift, PatternChecksAgreeWithThePatterns) {
  const std::vector<std::string> probes{"",        "a",         "A",        "0",        "-a",      "a-",
                                        "a-b",     "a_b",       "a.b",      "a..b",     ".a",      "a.",
                                        "web app", "app/x",     "x.io/app", "X.io/app", "x.io/",   "/app",
                                        "a/b/c",   "Abc_1.2-z", "a\nb",     "é",        "x.io/_a", "1-2.3"};
  std::function<void(const schema::Node&, const std::string&)> walk = [&](const schema::Node& n,
                                                                          const std::string& path) {
    if (!n.pattern.empty()) {
      ASSERT_NE(n.patternCheck, nullptr) << path;
      std::regex re(n.pattern);
      for (const auto& p : probes) {
        EXPECT_EQ(std::regex_match(p, re), n.patternCheck(p)) << path << " on \"" << p << "\"";
      }
    }
    for (const auto& [name, child] : n.properties) walk(child, path + "." + name);
    if (n.items) walk(*n.items, path + "[*]");
  };
  walk(schema::spec(), "spec");
}

}  // namespace
}  // namespace poolguard::policy
