#pragma once
// Refusal at admission (docs/admission.md). A ClusterConnectionBudget with admission.mode Warn or Deny gets a
// ValidatingAdmissionPolicy, its binding and its parameters (a ConnectionAllotment, cluster scoped): the API server
// evaluates the policy's CEL itself, so refusals hold while poolguard is down. The parameters are a custom resource,
// not a ConfigMap: only cluster admins may write it, and the API server's parameter cache for built-in kinds does
// not recover once no binding uses the kind (kubernetes/kubernetes#133827). Pure: the budget and its computed totals
// in, the allotments and the three objects out.
//
// Allotments: the room a share of the database has left (its limit minus its worst case) is split once among the
// workloads that count against it, in whole pods, in proportion to their worst case. Each workload may grow only
// into its own part, so two changes admitted at the same moment can never take the same room. poolguard splits the
// room again whenever the budget's totals change.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "budget/budget.h"
#include "policy/types.h"

namespace poolguard::budget {

using json = nlohmann::json;

struct Allotment {
  policy::WorkloadKind kind = policy::WorkloadKind::kDeployment;
  std::string namespace_;
  std::string name;
  bool autoscaled = false;  // an HPA scales it: its maxReplicas is checked, not its replicas
  int32_t podsMax = 0;      // pods at most today (HPA maxReplicas, else replicas)
  int32_t maxPods = 0;      // the most its replicas (HPA maxReplicas when autoscaled) may be raised to
  int64_t perPod = 0;       // connections one pod holds at worst
  int64_t allotted = 0;     // connections of the share's room this workload's growth to maxPods takes
  std::string share;        // "allocation <name>", "the namespaces in no allocation" or "the database"
  int64_t shareLimit = 0;   // the share's connections
  int64_t shareWorstCase = 0;
};

// The allotment of every Deployment, StatefulSet and Argo Rollout the budget counts (the kinds whose replicas the
// admission policy checks; the other kinds' worst case counts, but takes no room); empty when the database's
// capacity is unknown (nothing can be split then, and no replica change is refused).
std::vector<Allotment> allotments(const DatabaseBudget& db);

// The objects poolguard keeps for one ClusterConnectionBudget, all named admissionObjectName(database).
struct AdmissionObjects {
  std::string name;
  json policy;          // admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy
  json binding;         // admissionregistration.k8s.io/v1 ValidatingAdmissionPolicyBinding
  json params;          // poolguard.dev/v1alpha1 ConnectionAllotment (cluster scoped): the ceilings and allotments
  size_t allotted = 0;  // workloads with an allotment in params
};

// "poolguard-budget-<database>", shortened with a hash when that would exceed 253 characters.
std::string admissionObjectName(const std::string& database);

// The key of a workload's allotment: "<resource>_<namespace>_<name>" (no name or namespace holds '_').
std::string allotmentKey(policy::WorkloadKind kind, const std::string& ns, const std::string& name);

// The objects for `budget` (mode Warn or Deny) with `uid` as their owner. `db` is the database's computed budget;
// null while it is unknown (then only the ceilings are enforced).
AdmissionObjects admissionObjects(const policy::ClusterBudget& budget, const std::string& uid,
                                  const DatabaseBudget* db);

}  // namespace poolguard::budget
