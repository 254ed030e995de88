#pragma once
// Small helpers over the cached records (model/records.h) and the resources they come from.
#include <string>

#include "kube/client.h"
#include "kube/object.h"
#include "model/records.h"
#include "policy/types.h"

namespace poolguard::controller {

inline const kube::Resource& resourceOf(policy::WorkloadKind kind) {
  static const kube::Resource deployments = kube::resources::deployments();
  static const kube::Resource statefulSets = kube::resources::statefulSets();
  static const kube::Resource daemonSets = kube::resources::daemonSets();
  static const kube::Resource jobs = kube::resources::jobs();
  static const kube::Resource cronJobs = kube::resources::cronJobs();
  static const kube::Resource rollouts = kube::resources::rollouts();
  switch (kind) {
    case policy::WorkloadKind::kStatefulSet:
      return statefulSets;
    case policy::WorkloadKind::kDaemonSet:
      return daemonSets;
    case policy::WorkloadKind::kJob:
      return jobs;
    case policy::WorkloadKind::kCronJob:
      return cronJobs;
    case policy::WorkloadKind::kRollout:
      return rollouts;
    case policy::WorkloadKind::kDeployment:
      break;
  }
  return deployments;
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
