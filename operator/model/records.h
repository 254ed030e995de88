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
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kube/object.h"
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

using ObjectMeta = kube::ObjectMeta;

// A reference to a ConfigMap or Secret in an envFrom source.
struct EnvFromRef {
  std::string name;
  std::optional<bool> optional;
  bool operator==(const EnvFromRef&) const = default;
};

// A container's envFrom entry (core/v1 EnvFromSource), all of it: server-side apply treats envFrom as one atomic
// list, so poolguard's body repeats the live entries it does not own.
struct EnvFromSource {
  std::string prefix;
  std::optional<EnvFromRef> configMapRef;
  std::optional<EnvFromRef> secretRef;
  bool operator==(const EnvFromSource&) const = default;
};

// A container's env entry: its name, and its value, or that it takes it from a source (valueFrom).
struct EnvVar {
  std::string name;
  std::string value;
  bool valueFrom = false;
  bool operator==(const EnvVar&) const = default;
};

struct Container {
  std::string name;
  std::vector<EnvVar> env;
  std::vector<EnvFromSource> envFrom;
  bool operator==(const Container&) const = default;
};

// A workload of one of the kinds policy::kWorkloadKinds lists: Deployment, StatefulSet, DaemonSet (apps/v1),
// CronJob (batch/v1) or Rollout (argoproj.io/v1alpha1).
struct Workload : kube::Object {
  policy::WorkloadKind kind = policy::WorkloadKind::kDeployment;
  std::optional<int32_t> replicas;  // spec.replicas (Deployment, StatefulSet, Rollout); absent means 1
  // Deployment spec.strategy.type: RollingUpdate (default) or Recreate; DaemonSet spec.updateStrategy.type:
  // RollingUpdate (default) or OnDelete; Rollout: "Canary" (default), "CanaryTrafficRouting" (a canary with
  // spec.strategy.canary.trafficRouting: the stable pods stay while the canary grows) or "BlueGreen".
  std::string strategyType;
  // The rolling update's maxSurge (Deployment spec.strategy.rollingUpdate, DaemonSet
  // spec.updateStrategy.rollingUpdate, Rollout spec.strategy.canary); absent means the kind's default (25%;
  // DaemonSet 0).
  std::optional<IntOrPercent> maxSurge;
  // DaemonSet: status.desiredNumberScheduled, the nodes that should run its pod; nullopt until reported.
  std::optional<int32_t> desiredNumberScheduled;
  // CronJob: spec.concurrencyPolicy (Allow, the default; Forbid; Replace), spec.suspend, the run's
  // spec.jobTemplate.spec.parallelism and completions, and how many runs are active (status.active).
  std::string concurrencyPolicy;
  bool suspended = false;
  std::optional<int32_t> parallelism;  // also a Job's spec.parallelism, and completions its spec.completions
  std::optional<int32_t> completions;
  int32_t activeRuns = 0;
  // Job: whether a CronJob created it (metadata.ownerReferences: a controller reference of kind CronJob; the Job is
  // one of its runs, counted with the CronJob), whether it has finished (a Complete or Failed condition True), and
  // whether a failed pod's replacement waits until it is gone (spec.podReplacementPolicy Failed, the default with
  // a spec.podFailurePolicy) rather than starting while it terminates (TerminatingOrFailed, the default).
  bool cronJobRun = false;
  bool finished = false;
  bool replacesOnlyFailedPods = false;
  // Rollout: spec.workloadRef's kind and name, when it runs another workload's pod template instead of its own.
  std::string workloadRefKind;
  std::string workloadRefName;
  // The pod template's (spec.template, or a CronJob's spec.jobTemplate.spec.template):
  std::map<std::string, std::string> templateAnnotations;  // metadata.annotations
  std::vector<Container> containers;                       // spec.containers, in order

  const Container* container(const std::string& name) const;
  // Whether a policy can govern it: every workload but a CronJob's run and a finished Job.
  bool governable() const { return !cronJobRun && !finished; }
  // Whether what a decision reads differs: everything but resourceVersion and generation (a change of the image,
  // say, moves both and matters to no decision).
  bool sameDecisionFields(const Workload& other) const;
};

// An autoscaling/v2 HorizontalPodAutoscaler.
struct Hpa : kube::Object {
  std::string targetApiVersion;  // spec.scaleTargetRef
  std::string targetKind;
  std::string targetName;
  std::optional<int32_t> maxReplicas;

  // Whether spec.scaleTargetRef names this workload: same namespace, kind and name, apiVersion apps/v1 or unset.
  // The one rule the operator and the offline commands share.
  bool targets(policy::WorkloadKind kind, const std::string& ns, const std::string& name) const;
};

// A core/v1 ConfigMap: its data.
struct ConfigMap : kube::Object {
  std::map<std::string, std::string> data;
};

// A ConnectionPoolPolicy as the operator caches it: parsed and validated once, when it arrives, and the status
// poolguard last wrote (its own output, read back after a restart so an unchanged status is not written again).
struct PolicyObject : kube::Object {
  bool cluster = false;                          // a ClusterConnectionPoolPolicy
  std::shared_ptr<const policy::Policy> parsed;  // null when the spec is invalid
  std::string invalidMessage;                    // why, when it is
  json status = json::object();
};

// A ClusterConnectionBudget as the operator caches it: parsed and validated once, when it arrives.
struct BudgetObject : kube::Object {
  std::optional<policy::ClusterBudget> parsed;  // nullopt when the spec is invalid
  std::string invalidMessage;
  json status = json::object();
};
BudgetObject decodeBudget(const json& obj);

// The kind of a workload poolguard governs (policy::kWorkloadKinds: its kind and apiVersion); nullopt for anything
// else (including a kind that is not a string: checkDocument reports that).
std::optional<policy::WorkloadKind> workloadKindOf(const json& obj);
bool isHpa(const json& obj);            // autoscaling/v2 HorizontalPodAutoscaler
bool isPolicy(const json& obj);         // poolguard.dev ConnectionPoolPolicy
bool isClusterPolicy(const json& obj);  // poolguard.dev ClusterConnectionPoolPolicy
bool isClusterBudget(const json& obj);  // poolguard.dev ClusterConnectionBudget

// What every Kubernetes object must be, whatever its kind: apiVersion and kind strings, metadata a mapping whose
// name, generateName, namespace, uid, resourceVersion and creationTimestamp are strings, generation an integer,
// and labels and annotations mappings of strings. Returns the metadata as read.
ObjectMeta decodeMeta(const json& obj, Diagnostics& diagnostics);

// decodeMeta, then the fields the budget and the renderer read. Errors name the field and what it must be, the
// same way the API server would refuse the object (including a negative replicas and a maxSurge that is neither
// an integer nor a percentage).
Workload decodeWorkload(const json& obj, Diagnostics& diagnostics);
Hpa decodeHpa(const json& obj, Diagnostics& diagnostics);
ConfigMap decodeConfigMap(const json& obj, Diagnostics& diagnostics);
// policy::fromJson's parse and validation, with the metadata.
PolicyObject decodePolicy(const json& obj);

// The label the API server gives every namespace, with the namespace's name as its value.
inline constexpr const char* kNamespaceNameLabel = "kubernetes.io/metadata.name";

// A minimal object reference to `o` (apiVersion, kind, metadata name, namespace, uid, resourceVersion), as the
// Event recorder takes one.
json referenceTo(const kube::Object& o, const std::string& apiVersion, const std::string& kind);

}  // namespace poolguard::model
