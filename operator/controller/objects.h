#pragma once
// Small helpers over the cached records (model/records.h) and the resources they come from.
#include <map>
#include <string>

#include "kube/client.h"
#include "kube/object.h"
#include "model/records.h"
#include "policy/types.h"

namespace poolguard::controller {

// The REST resource of a workload kind, from policy::kWorkloadKinds.
inline const kube::Resource& resourceOf(policy::WorkloadKind kind) {
  static const std::map<policy::WorkloadKind, kube::Resource> resources = [] {
    std::map<policy::WorkloadKind, kube::Resource> out;
    for (const auto& info : policy::kWorkloadKinds) {
      const std::string apiVersion = info.apiVersion;
      const size_t slash = apiVersion.find('/');
      out.emplace(info.kind, kube::Resource{apiVersion.substr(0, slash), apiVersion.substr(slash + 1), info.resource,
                                            info.name, true});
    }
    return out;
  }();
  return resources.at(kind);
}

// The resource of a policy record: ConnectionPoolPolicies, or the cluster-scoped ClusterConnectionPoolPolicies.
inline kube::Resource resourceOfPolicy(const model::PolicyObject& p) {
  return p.cluster ? kube::resources::clusterConnectionPoolPolicies() : kube::resources::connectionPoolPolicies();
}

// A label or annotation of a cached record; "" when absent.
inline std::string labelOf(const kube::Object& obj, const std::string& key) {
  auto it = obj.meta.labels.find(key);
  return it == obj.meta.labels.end() ? "" : it->second;
}
inline std::string annotationOf(const kube::Object& obj, const std::string& key) {
  auto it = obj.meta.annotations.find(key);
  return it == obj.meta.annotations.end() ? "" : it->second;
}

}  // namespace poolguard::controller
