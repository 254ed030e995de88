#pragma once
// Typed records of the Kubernetes objects poolguard decides on: only the fields a decision reads, decoded from
// a JSON value with every read value type-checked. The offline commands report what the checks find (a
// manifest in a repository can hold anything); the operator decodes objects the API server has already
// validated, where the checks find nothing and the records carry the same values.
//
// A null value counts as absent, as the API server's decoder treats it. A value of the wrong type is an error
// naming the field path and what was expected ("metadata.name: must be a string; quote it: \"on\""), and the
// record keeps the API server's default for that field.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/parse.h"
#include "policy/types.h"

namespace poolguard::model {

using json = nlohmann::json;

// Collects the errors of one object's decoding. `spellings` (from policy::Document) gives the text of plain YAML
// scalars as written, so a boolean or number where a string belongs can be shown quoted.
class Diagnostics {
 public:
  explicit Diagnostics(const std::map<std::string, std::string>* spellings = nullptr) : spellings_(spellings) {}

  void add(std::string field, std::string message) { errors_.push_back({std::move(field), std::move(message)}); }
  const std::string* spelling(const std::string& pointer) const;
  const std::vector<policy::FieldError>& errors() const { return errors_; }
  bool ok() const { return errors_.empty(); }

 private:
  const std::map<std::string, std::string>* spellings_;
  std::vector<policy::FieldError> errors_;
};

// An intstr.IntOrString as the rollout fields take it: 3 or "25%".
struct IntOrPercent {
  int32_t value = 0;
  bool percent = false;
  bool operator==(const IntOrPercent&) const = default;
};

struct ObjectMeta {
  std::string name;
  std::string namespace_;  // empty when the object does not say
  std::string uid;
  std::string resourceVersion;
  std::string creationTimestamp;
  int64_t generation = 0;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
};

// A Deployment or StatefulSet (apps/v1).
struct Workload {
  policy::WorkloadKind kind = policy::WorkloadKind::kDeployment;
  ObjectMeta meta;
  std::optional<int32_t> replicas;       // spec.replicas; absent means 1, the API server's default
  std::string strategyType;              // Deployment spec.strategy.type: RollingUpdate (default) or Recreate
  std::optional<IntOrPercent> maxSurge;  // Deployment spec.strategy.rollingUpdate.maxSurge; absent means 25%
  std::vector<std::string> containers;   // spec.template.spec.containers[].name, in order
};

// An autoscaling/v2 HorizontalPodAutoscaler.
struct Hpa {
  ObjectMeta meta;
  std::string targetApiVersion;  // spec.scaleTargetRef
  std::string targetKind;
  std::string targetName;
  std::optional<int32_t> maxReplicas;

  // Whether spec.scaleTargetRef names this workload: same namespace, kind and name, apiVersion apps/v1 or unset.
  // The one rule the operator and the offline commands share.
  bool targets(policy::WorkloadKind kind, const std::string& ns, const std::string& name) const;
};

// The kind of an apps/v1 Deployment or StatefulSet; nullopt for anything else (including a kind that is not a
// string: checkDocument reports that).
std::optional<policy::WorkloadKind> workloadKindOf(const json& obj);
bool isHpa(const json& obj);     // autoscaling/v2 HorizontalPodAutoscaler
bool isPolicy(const json& obj);  // poolguard.dev ConnectionPoolPolicy

// What every Kubernetes object must be, whatever its kind: apiVersion and kind strings, metadata a mapping whose
// name, generateName, namespace, uid, resourceVersion and creationTimestamp are strings, generation an integer,
// and labels and annotations mappings of strings. Returns the metadata as read.
ObjectMeta decodeMeta(const json& obj, Diagnostics& diagnostics);

// decodeMeta, then the fields the budget and the renderer read. Errors name the field and what it must be, the
// same way the API server would refuse the object (including a negative replicas and a maxSurge that is neither
// an integer nor a percentage).
Workload decodeWorkload(const json& obj, Diagnostics& diagnostics);
Hpa decodeHpa(const json& obj, Diagnostics& diagnostics);

}  // namespace poolguard::model
