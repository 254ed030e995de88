#include "offline/live.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "kube/config.h"
#include "kube/rest_client.h"

namespace poolguard::offline {

using json = nlohmann::json;

std::vector<kube::Resource> liveResources() {
  namespace r = kube::resources;
  return {r::namespaces(),
          r::clusterConnectionBudgets(),
          r::clusterConnectionPoolPolicies(),
          r::connectionPoolPolicies(),
          r::deployments(),
          r::statefulSets(),
          r::daemonSets(),
          r::jobs(),
          r::cronJobs(),
          r::rollouts(),
          r::horizontalPodAutoscalers()};
}

Result<std::vector<policy::Document>> liveDocuments(kube::Client& client) {
  std::vector<policy::Document> out;
  for (const auto& resource : liveResources()) {
    kube::ListOptions opts;
    opts.limit = 500;
    auto listed = kube::listAll(client, resource, "", opts);
    // Argo Rollouts is optional: a cluster without its CRD has no Rollouts.
    if (!listed.ok() && listed.error().code() == ErrorCode::kNotFound && resource.group == "argoproj.io") continue;
    if (!listed.ok()) {
      return Error(listed.error().code(), "cannot list " + resource.key() +
                                              " in the cluster: " + listed.error().message() +
                                              " (plan --live needs get and list on it: docs/gitops.md, "
                                              "\"Plan against the live cluster\")");
    }
    int index = 0;
    for (auto& item : listed->items) {
      item["apiVersion"] = resource.apiVersion();
      item["kind"] = resource.kind;
      if (item.contains("metadata")) item["metadata"].erase("managedFields");
      // The status counts only where it says how many pods run: a DaemonSet's nodes, a CronJob's active runs,
      // whether a Job finished.
      json status = json::object();
      if (auto s = item.find("status"); s != item.end() && s->is_object()) {
        for (const char* key : {"desiredNumberScheduled", "active", "conditions"}) {
          if (auto v = s->find(key); v != s->end()) status[key] = *v;
        }
      }
      item.erase("status");
      if (!status.empty()) item["status"] = std::move(status);
      out.push_back(policy::Document{kLiveSource, index++, std::move(item), {}});
    }
  }
  return out;
}

Result<LiveCluster> readLive(const std::string& kubeconfig, const std::string& context) {
  auto config = kube::loadDefault(kubeconfig, context);
  if (!config.ok()) return Error(config.error().code(), "--live: " + config.error().message());
  kube::RestClientOptions opts;
  opts.userAgent = "poolguard-plan";
  auto client = kube::makeRestClient(*config, opts);
  if (!client.ok()) return Error(client.error().code(), "--live: " + client.error().message());
  auto documents = liveDocuments(**client);
  if (!documents.ok()) return documents.error();
  return LiveCluster{std::move(*documents), config->defaultNamespace.empty() ? "default" : config->defaultNamespace};
}

namespace {

// The cluster-scoped kinds among those plan reads, as their resources say.
bool clusterScoped(const std::string& kind) {
  static const std::vector<kube::Resource> resources = liveResources();
  return std::any_of(resources.begin(), resources.end(),
                     [&](const kube::Resource& r) { return r.kind == kind && !r.namespaced; });
}

}  // namespace

void placeInNamespace(std::vector<policy::Document>& documents, const std::string& ns) {
  for (auto& d : documents) {
    if (!d.object.is_object() || !d.object.contains("metadata") || !d.object["metadata"].is_object()) continue;
    const auto kind = d.object.find("kind");
    if (kind == d.object.end() || !kind->is_string() || clusterScoped(kind->get<std::string>())) continue;
    json& meta = d.object["metadata"];
    if (!meta.contains("namespace")) meta["namespace"] = ns;
  }
}

namespace {

// Kind (with its API group), namespace and name; "" for a document without a string where one is expected.
std::tuple<std::string, std::string, std::string> identity(const json& object, bool fromCluster) {
  auto text = [](const json& o, const char* key) {
    auto it = o.find(key);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  std::string apiVersion = text(object, "apiVersion");
  std::string group = apiVersion.substr(0, apiVersion.find('/') == std::string::npos ? 0 : apiVersion.find('/'));
  static const json none = json::object();
  const auto m = object.find("metadata");
  const json& meta = m != object.end() && m->is_object() ? *m : none;
  std::string kind = text(object, "kind");
  std::string ns = text(meta, "namespace");
  if (clusterScoped(kind))
    ns.clear();
  else if (ns.empty() && !fromCluster)
    ns = "default";
  return {group + "/" + kind, ns, text(meta, "name")};
}

}  // namespace

std::vector<policy::Document> overlay(std::vector<policy::Document> live, std::vector<policy::Document> files) {
  std::map<std::tuple<std::string, std::string, std::string>, size_t> fromFiles;
  for (size_t i = 0; i < files.size(); ++i) {
    if (files[i].object.is_object()) fromFiles.emplace(identity(files[i].object, false), i);
  }
  std::vector<policy::Document> out;
  out.reserve(live.size() + files.size());
  for (auto& d : live) {
    auto replaced = fromFiles.find(identity(d.object, true));
    if (replaced == fromFiles.end()) {
      out.push_back(std::move(d));
      continue;
    }
    // A manifest has no status: the file's object keeps the live one's (a DaemonSet's nodes, a CronJob's runs).
    json& replacement = files[replaced->second].object;
    if (d.object.contains("status") && !replacement.contains("status")) replacement["status"] = d.object["status"];
  }
  for (auto& d : files) out.push_back(std::move(d));
  return out;
}

}  // namespace poolguard::offline
