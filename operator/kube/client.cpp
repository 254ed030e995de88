#include "kube/client.h"

#include <random>

namespace poolguard::kube {

namespace resources {
Resource deployments() { return {"apps", "v1", "deployments", "Deployment", true}; }
Resource statefulSets() { return {"apps", "v1", "statefulsets", "StatefulSet", true}; }
Resource daemonSets() { return {"apps", "v1", "daemonsets", "DaemonSet", true}; }
Resource jobs() { return {"batch", "v1", "jobs", "Job", true}; }
Resource cronJobs() { return {"batch", "v1", "cronjobs", "CronJob", true}; }
Resource rollouts() { return {"argoproj.io", "v1alpha1", "rollouts", "Rollout", true}; }
Resource horizontalPodAutoscalers() {
  return {"autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", true};
}
Resource configMaps() { return {"", "v1", "configmaps", "ConfigMap", true}; }
Resource secrets() { return {"", "v1", "secrets", "Secret", true}; }
Resource events() { return {"", "v1", "events", "Event", true}; }
Resource leases() { return {"coordination.k8s.io", "v1", "leases", "Lease", true}; }
Resource namespaces() { return {"", "v1", "namespaces", "Namespace", false}; }
Resource connectionPoolPolicies() {
  return {"poolguard.dev", "v1alpha1", "connectionpoolpolicies", "ConnectionPoolPolicy", true};
}
Resource clusterConnectionBudgets() {
  return {"poolguard.dev", "v1alpha1", "clusterconnectionbudgets", "ClusterConnectionBudget", false};
}
Resource clusterConnectionPoolPolicies() {
  return {"poolguard.dev", "v1alpha1", "clusterconnectionpoolpolicies", "ClusterConnectionPoolPolicy", false};
}
Resource connectionAllotments() {
  return {"poolguard.dev", "v1alpha1", "connectionallotments", "ConnectionAllotment", false};
}
Resource customResourceDefinitions() {
  return {"apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", false};
}
Resource validatingAdmissionPolicies() {
  return {"admissionregistration.k8s.io", "v1", "validatingadmissionpolicies", "ValidatingAdmissionPolicy", false};
}
Resource validatingAdmissionPolicyBindings() {
  return {"admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings", "ValidatingAdmissionPolicyBinding",
          false};
}
}  // namespace resources

Result<ListAllResult> listAll(Client& client, const Resource& r, const std::string& ns, ListOptions opts) {
  ListAllResult out;
  opts.continueToken.clear();
  // A safety net against a server that keeps returning a continue token: no real list has this many pages.
  constexpr int kMaxPages = 100000;
  for (int page = 0; page < kMaxPages; ++page) {
    auto list = client.list(r, ns, opts);
    if (!list.ok()) return list.error();
    const json& body = *list;
    if (auto items = body.find("items"); items != body.end() && items->is_array()) {
      for (const auto& item : *items) out.items.push_back(item);
    }
    const json meta = body.value("metadata", json::object());
    out.resourceVersion = meta.value("resourceVersion", "");
    std::string next = meta.value("continue", "");
    if (next.empty()) return out;
    opts.continueToken = std::move(next);
    // Continuation pages are served at the first page's snapshot; a resourceVersion may not accompany them.
    opts.resourceVersion.clear();
    opts.resourceVersionMatch.clear();
  }
  return Error(ErrorCode::kInternal, "list " + r.key() + ": more than 100000 pages");
}

std::chrono::seconds jitteredWatchTimeout(std::chrono::seconds min) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<int64_t> dist(min.count(), 2 * min.count() - 1);
  return std::chrono::seconds(min.count() > 0 ? dist(rng) : 0);
}

}  // namespace poolguard::kube
