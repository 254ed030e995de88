#pragma once
// The offline twin of the CRD's OpenAPI schema (crds/poolguard.dev_connectionpoolpolicies.yaml): the same
// properties, defaults, bounds and rules, so validate() reports what admission reports. CEL rules are mirrored
// as C++ predicates carrying the CRD rule's exact message; tests/unit/policy checks the two never drift.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace poolguard::policy::schema {

using json = nlohmann::json;

enum class Type { kObject, kArray, kString, kInteger, kBoolean, kStringMap };

const char* toString(Type t);  // the OpenAPI type name: "object", "array", "string", "integer", "boolean"

struct Rule {
  std::string message;    // identical to the CRD rule's message
  std::string fieldPath;  // the CRD rule's fieldPath (".minIdle"), "" for the node itself
  // Evaluated on the defaulted value, only when the object has no type errors (as the API server does).
  std::function<bool(const json& self)> holds;
};

struct Node {
  Node();  // out of line: clang needs Node complete before vector<pair<string, Node>> instantiates
  Type type = Type::kObject;
  std::vector<std::pair<std::string, Node>> properties;  // kObject, in documentation order
  std::vector<std::string> required;
  std::shared_ptr<Node> items;  // kArray items, kStringMap values
  std::optional<json> defaultValue;
  std::vector<std::string> enumValues;
  std::optional<int64_t> minimum;
  std::optional<int64_t> maximum;
  std::optional<int64_t> minLength;
  std::optional<int64_t> maxLength;
  std::optional<int64_t> minItems;
  std::optional<int64_t> maxItems;
  std::optional<int64_t> maxProperties;
  std::string pattern;                               // OpenAPI pattern, as written in the CRD
  bool (*patternCheck)(std::string_view) = nullptr;  // the same language, checked without a regex engine
  bool setList = false;                              // x-kubernetes-list-type: set
  std::string mapListKey;  // x-kubernetes-list-type: map, with this one x-kubernetes-list-map-keys entry
  std::vector<Rule> rules;
  std::string hint;  // how to fix a missing or out-of-range value; appended to schema-level messages

  const Node* property(const std::string& name) const;
};

// ConnectionPoolPolicy.spec as the CRD declares it.
const Node& spec();
// ClusterConnectionPoolPolicy.spec as its CRD (crds/poolguard.dev_clusterconnectionpoolpolicies.yaml) declares it:
// spec() plus a required namespaceSelector.
const Node& clusterPolicySpec();
// ClusterConnectionBudget.spec as its CRD (crds/poolguard.dev_clusterconnectionbudgets.yaml) declares it.
const Node& budgetSpec();

// The duration syntax the CRD's CEL rules accept (Go's time.ParseDuration without a sign), as an RE2 pattern.
extern const char* const kDurationPattern;

}  // namespace poolguard::policy::schema
