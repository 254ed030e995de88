#pragma once
// The objects Enforce writes for one workload, as server-side-apply bodies that carry exactly the fields
// poolguard owns (field manager "poolguard"), and the comparison Audit and the no-op check use. Pure.
//
// Workload body: apiVersion, kind, metadata{name, namespace, annotations[poolguard.dev/policy, or
// poolguard.dev/cluster-policy for a ClusterConnectionPoolPolicy]},
// spec.template.metadata.annotations[poolguard.dev/settings-hash] (when rollout.restartOnChange), and
// spec.template.spec.containers[] = {name, env[]} (Env) or {name, envFrom[]} (ConfigMap) for the selected
// containers only, never initContainers. A CronJob's pod template is spec.jobTemplate.spec.template. The API server
// merges the body into the live object and validates the result, so required fields such as spec.selector need not be
// repeated; applied to a workload that no longer exists the body fails validation instead of creating a half-specified
// one.
//
// envFrom is an atomic list for server-side apply: whoever applies it owns all of it. The body therefore repeats
// the container's live envFrom entries and appends poolguard's ConfigMap reference last (so its keys win over
// other envFrom sources; explicit env entries still win over all of envFrom, which compare() reports).
//
// A server-options variable (PGOPTIONS, SpringHikari's options property; settings.h isServerOptions) that a
// container sets itself with an env entry poolguard did not render is the container's: that container's env carries
// no entry of poolguard's for it, and neither comparison reports it. Every other rendered entry is poolguard's.
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "model/records.h"
#include "policy/types.h"
#include "render/settings.h"

namespace poolguard::render {

using json = nlohmann::json;

inline constexpr const char* kSettingsHashAnnotation = "poolguard.dev/settings-hash";
inline constexpr const char* kPolicyAnnotation = "poolguard.dev/policy";
inline constexpr const char* kPolicyLabel = "poolguard.dev/policy";
// A ClusterConnectionPoolPolicy marks what it writes with these instead.
inline constexpr const char* kClusterPolicyAnnotation = "poolguard.dev/cluster-policy";
inline constexpr const char* kClusterPolicyLabel = "poolguard.dev/cluster-policy";
// The annotation (and ConfigMap label) key that names `p` on what it writes.
inline const char* ownerKey(const policy::Policy& p) {
  return p.clusterScoped() ? kClusterPolicyAnnotation : kPolicyAnnotation;
}
inline constexpr const char* kManagedByLabel = "app.kubernetes.io/managed-by";
inline constexpr const char* kManagedByValue = "poolguard";
inline constexpr const char* kPgBouncerIniKey = "pgbouncer.ini";

struct WorkloadIdentity {
  policy::WorkloadKind kind = policy::WorkloadKind::kDeployment;
  std::string namespace_;
  std::string name;
  std::string uid;
};

// Why a server-side apply of poolguard's partial containers list would not merge into a custom resource whose CRD
// is `crd` (served at `version`): its schema must declare spec.template.spec.containers and their env list-maps
// keyed by name, as the built-in kinds do; an atomic list would be replaced whole. nullopt when they merge.
// (Argo Rollouts' Rollout CRD does from v1.9; before, both lists are atomic.)
std::optional<std::string> containersMergeProblem(const json& crd, const std::string& version);

// The pod template of an apply body (or a workload object) of this kind: spec.template, or a CronJob's
// spec.jobTemplate.spec.template; an empty object when it has none.
const json& podTemplateOf(const json& body, policy::WorkloadKind kind);

// Kind, namespace, name and uid of a workload object of a kind policy::kWorkloadKinds lists. Errors name the
// missing field.
Result<WorkloadIdentity> identityOf(const json& workload);
// The same of a decoded workload (namespace "default" when it has none).
Result<WorkloadIdentity> identityOf(const model::Workload& workload);

// The operator-owned ConfigMap's name: "<workload>-deploy-poolguard" or "<workload>-sts-poolguard", so a
// Deployment and a StatefulSet of one name never share one. Names beyond 253 characters are shortened with a hash.
std::string configMapName(policy::WorkloadKind kind, const std::string& workloadName);

struct DesiredWorkload {
  WorkloadIdentity workload;
  RenderedSettings settings;
  std::vector<std::string> containers;         // selected, in the workload's order
  std::vector<std::string> missingContainers;  // named in spec.containers but absent from the workload
  // Selected containers that keep a server-options variable of their own without idle_in_transaction_session_timeout
  // in it (or from valueFrom): pool.idleInTransactionTimeout does not reach their sessions.
  struct OwnServerOptions {
    std::string container;
    std::string variable;
  };
  std::vector<OwnServerOptions> ownServerOptions;
  json apply;                     // server-side-apply body for the workload
  std::optional<json> configMap;  // server-side-apply body for the ConfigMap (ConfigMap delivery)
};

// Renders what Enforce writes for `workload` (a live workload of any kind policy::kWorkloadKinds lists) under `p`.
// Fails (kInvalidArgument) when the workload has no name or none of spec.containers exists in it.
Result<DesiredWorkload> renderWorkload(const policy::Policy& p, const model::Workload& workload,
                                       const RenderOptions& options = {});
// The same from a workload object: also fails when its kind is none of policy::kWorkloadKinds.
Result<DesiredWorkload> renderWorkload(const policy::Policy& p, const json& workload,
                                       const RenderOptions& options = {});

struct Comparison {
  // One line per difference, e.g. "container app env POOL_MAX_SIZE: live 50, desired 20".
  std::vector<std::string> differences;
  bool inSync() const { return differences.empty(); }
};

// Whether the live workload (and its live ConfigMap, for ConfigMap delivery; null when absent) already carries
// the desired settings. inSync() means a reconcile needs no write; otherwise the lines say what Enforce changes:
// the workload's differences first (compareWorkload), then the ConfigMap's (compareConfigMap).
Comparison compare(const model::Workload& liveWorkload, const model::ConfigMap* liveConfigMap,
                   const DesiredWorkload& desired);
Comparison compareWorkload(const model::Workload& liveWorkload, const DesiredWorkload& desired);
// Empty without ConfigMap delivery.
Comparison compareConfigMap(const model::ConfigMap* liveConfigMap, const DesiredWorkload& desired);
// compare() of objects: decodes them first.
Comparison compare(const json& liveWorkload, const std::optional<json>& liveConfigMap, const DesiredWorkload& desired);

}  // namespace poolguard::render
