#pragma once
// What the informer caches hold of each watched kind: typed records (model/records.h) with only the fields
// plan() reads. A FieldFilter picks those fields while a list page or watch event is parsed (nothing else becomes
// a DOM node), and a Decoder turns each object into its record as it arrives; no JSON is kept.
#include <string>
#include <vector>

#include "kube/field_filter.h"
#include "runtime/informer.h"
#include "runtime/store.h"

namespace poolguard::controller {

// Workloads of every kind (policy::kWorkloadKinds): identity, labels, poolguard's annotations, a Job's controller
// reference, what each kind's pod count reads (replicas, update strategy, parallelism, a DaemonSet's nodes, a
// CronJob's runs, whether a Job finished), and each container's name, env (name, value, whether valueFrom) and
// envFrom (with the pod template's poolguard annotations).
kube::FieldFilter workloadFields();
// HPAs: identity, scaleTargetRef and maxReplicas.
kube::FieldFilter hpaFields();
// Namespaces: identity and labels (what a ClusterConnectionBudget's allocations select on).
kube::FieldFilter namespaceFields();
// Policies and poolguard's ConfigMaps: all of it but managedFields.
kube::FieldFilter wholeObjectFields();

// model::Workload records, keeping only poolguard's annotations of the workload and of its pod template.
runtime::Decoder workloadDecoder();
runtime::Decoder hpaDecoder();        // model::Hpa
runtime::Decoder configMapDecoder();  // model::ConfigMap
runtime::Decoder policyDecoder();     // model::PolicyObject, parsed and validated once here
runtime::Decoder budgetDecoder();     // model::BudgetObject, likewise
runtime::Decoder namespaceDecoder();  // kube::Object: the metadata, labels but no annotations

// Whether an update changes what a decision reads (an update of nothing else enqueues nothing).
bool workloadChanged(const kube::Object& oldObj, const kube::Object& newObj);
bool hpaChanged(const kube::Object& oldObj, const kube::Object& newObj);
bool configMapChanged(const kube::Object& oldObj, const kube::Object& newObj);
bool namespaceLabelsChanged(const kube::Object& oldObj, const kube::Object& newObj);
// The spec (a new generation) or the metadata (labels, annotations, finalizers, deletion); not a status write. For
// the poolguard.dev kinds (policies, budgets), whose spec changes move the generation.
bool policyChanged(const kube::Object& oldObj, const kube::Object& newObj);

// Workload records by the ClusterConnectionPoolPolicy their poolguard.dev/cluster-policy annotation names
// (controller::kClusterPolicyIndex).
runtime::IndexFunc clusterPolicyIndex();

// A secondary index of HPA records by their target: values are scaleTargetKey(ns, kind, name).
inline constexpr const char* kScaleTargetIndex = "scaleTargetRef";
runtime::IndexFunc scaleTargetRefIndex();
std::string scaleTargetKey(const std::string& ns, const std::string& kind, const std::string& name);

}  // namespace poolguard::controller
