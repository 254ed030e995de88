#pragma once
// `poolguard plan --live`: the files overlaid on what the cluster runs. The cluster's ConnectionPoolPolicies,
// ClusterConnectionPoolPolicies, ClusterConnectionBudgets, Namespaces, Deployments, StatefulSets, DaemonSets,
// CronJobs, Argo Rollouts' Rollouts (where installed) and HPAs are read
// (list only: read-only), and a document of the files replaces the live object of the same kind, namespace and
// name, so the plan answers "does this change fit next to everything already running on the database?".
#include <string>
#include <vector>

#include "common/result.h"
#include "kube/client.h"
#include "policy/parse.h"

namespace poolguard::offline {

// The source of the documents read from the cluster.
inline constexpr const char* kLiveSource = "cluster";

// The kinds plan reads, as the API serves them.
std::vector<kube::Resource> liveResources();

// Every object of those kinds, as documents whose source is kLiveSource (apiVersion and kind set, managedFields and
// status left out). Fails with the first list that fails, naming the resource and the RBAC it needs.
Result<std::vector<policy::Document>> liveDocuments(kube::Client& client);

struct LiveCluster {
  std::vector<policy::Document> documents;
  std::string defaultNamespace;  // the context's namespace, where kubectl apply puts an object that names none
};

// liveDocuments() through a client of the kubeconfig (kube::loadDefault's search order) and its context.
Result<LiveCluster> readLive(const std::string& kubeconfig, const std::string& context);

// Puts the namespaced objects of `documents` that name no namespace in `ns`, as kubectl apply would.
void placeInNamespace(std::vector<policy::Document>& documents, const std::string& ns);

// The live documents with the files' documents laid over them: a file's object replaces the live one of the same
// kind, namespace ("default" when the file names none) and name; the others are added. Live objects come first.
std::vector<policy::Document> overlay(std::vector<policy::Document> live, std::vector<policy::Document> files);

}  // namespace poolguard::offline
