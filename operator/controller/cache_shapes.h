#pragma once
// What the informer caches keep of each watched kind: only the fields plan() reads. The FieldFilters select them
// while a list page or watch event is parsed (nothing else becomes a DOM node); the compact functions then run as
// the Store's transform and keep, of the annotations, only poolguard's own.
#include <nlohmann/json.hpp>

#include "kube/field_filter.h"

namespace poolguard::controller {

// Deployments and StatefulSets: identity, labels, poolguard's annotations, replicas, update strategy, and each
// container's name, env and envFrom (with the pod template's poolguard annotations).
kube::FieldFilter workloadFields();
// HPAs: identity, scaleTargetRef, minReplicas and maxReplicas.
kube::FieldFilter hpaFields();
// Policies and poolguard's ConfigMaps: all of it but managedFields.
kube::FieldFilter wholeObjectFields();

nlohmann::json compactWorkload(nlohmann::json obj);
nlohmann::json compactHpa(nlohmann::json obj);

}  // namespace poolguard::controller
