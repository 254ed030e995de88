#include "offline/workspace.h"

#include <algorithm>
#include <map>

namespace poolguard::offline {
namespace {

std::string nsOf(const json& obj) {
  std::string ns;
  if (obj.contains("metadata") && obj["metadata"].is_object()) ns = obj["metadata"].value("namespace", "");
  return ns.empty() ? "default" : ns;
}

std::string nameOf(const json& obj) {
  if (obj.contains("metadata") && obj["metadata"].is_object()) return obj["metadata"].value("name", "");
  return "";
}

std::map<std::string, std::string> labelsOf(const json& obj) {
  std::map<std::string, std::string> labels;
  if (obj.contains("metadata") && obj["metadata"].is_object() && obj["metadata"].contains("labels") &&
      obj["metadata"]["labels"].is_object()) {
    for (auto it = obj["metadata"]["labels"].begin(); it != obj["metadata"]["labels"].end(); ++it) {
      if (it.value().is_string()) labels[it.key()] = it.value().get<std::string>();
    }
  }
  return labels;
}

std::string apiGroup(const json& obj) {
  std::string apiVersion = obj.value("apiVersion", "");
  auto slash = apiVersion.find('/');
  return slash == std::string::npos ? "" : apiVersion.substr(0, slash);
}

}  // namespace

Result<std::vector<policy::Document>> loadDocuments(const std::vector<std::string>& files) {
  std::vector<policy::Document> all;
  for (const auto& f : files) {
    auto docs = policy::readDocuments(f);
    if (!docs) return docs.error();
    for (auto& d : *docs) all.push_back(std::move(d));
  }
  return all;
}

bool isPolicy(const json& obj) {
  return obj.is_object() && obj.value("kind", "") == "ConnectionPoolPolicy" && apiGroup(obj) == "poolguard.dev";
}

bool isWorkload(const json& obj) {
  if (!obj.is_object() || obj.value("apiVersion", "") != "apps/v1") return false;
  std::string kind = obj.value("kind", "");
  return kind == "Deployment" || kind == "StatefulSet";
}

bool isHpa(const json& obj) {
  return obj.is_object() && obj.value("kind", "") == "HorizontalPodAutoscaler" &&
         obj.value("apiVersion", "") == "autoscaling/v2";
}

bool outranks(const policy::Policy& a, const policy::Policy& b) {
  if (a.spec.priority != b.spec.priority) return a.spec.priority > b.spec.priority;
  // RFC 3339 UTC timestamps compare as strings; a policy without one (not yet created) is the newest.
  if (a.creationTimestamp != b.creationTimestamp) {
    if (a.creationTimestamp.empty()) return false;
    if (b.creationTimestamp.empty()) return true;
    return a.creationTimestamp < b.creationTimestamp;
  }
  if (a.namespace_ != b.namespace_) return a.namespace_ < b.namespace_;
  return a.name < b.name;
}

Workspace buildWorkspace(const std::vector<policy::Document>& documents) {
  Workspace ws;
  for (const auto& d : documents) {
    if (isPolicy(d.object)) {
      PolicyEntry e{d.source, d.index + 1, d.object, std::nullopt, {}};
      json obj = d.object;
      if (!obj.contains("metadata") || !obj["metadata"].is_object()) obj["metadata"] = json::object();
      if (obj["metadata"].value("namespace", "").empty()) obj["metadata"]["namespace"] = "default";
      auto parsed = policy::fromJson(obj, &e.errors);
      if (parsed) e.parsed = *parsed;
      ws.policies.push_back(std::move(e));
    } else if (isWorkload(d.object)) {
      WorkloadEntry w;
      w.source = d.source;
      w.document = d.index + 1;
      w.object = d.object;
      w.kind = d.object.value("kind", "") == "StatefulSet" ? policy::WorkloadKind::kStatefulSet
                                                           : policy::WorkloadKind::kDeployment;
      w.namespace_ = nsOf(d.object);
      w.name = nameOf(d.object);
      if (!w.object.contains("metadata") || !w.object["metadata"].is_object()) w.object["metadata"] = json::object();
      w.object["metadata"]["namespace"] = w.namespace_;
      ws.workloads.push_back(std::move(w));
    } else if (isHpa(d.object)) {
      json h = d.object;
      if (h.contains("metadata") && h["metadata"].is_object()) h["metadata"]["namespace"] = nsOf(d.object);
      ws.hpas.push_back(std::move(h));
    }
  }

  for (auto& w : ws.workloads) {
    auto labels = labelsOf(w.object);
    std::vector<int> selecting;
    for (int i = 0; i < static_cast<int>(ws.policies.size()); ++i) {
      const auto& p = ws.policies[static_cast<size_t>(i)].parsed;
      if (!p || p->namespace_ != w.namespace_) continue;
      if (std::find(p->spec.kinds.begin(), p->spec.kinds.end(), w.kind) == p->spec.kinds.end()) continue;
      if (!p->spec.selector.matches(labels)) continue;
      selecting.push_back(i);
    }
    for (int i : selecting) {
      if (w.governedBy < 0 || outranks(*ws.policies[static_cast<size_t>(i)].parsed,
                                       *ws.policies[static_cast<size_t>(w.governedBy)].parsed)) {
        w.governedBy = i;
      }
    }
    for (int i : selecting) {
      if (i != w.governedBy) w.outranked.push_back(i);
    }
  }

  // One budget per database.name across namespaces.
  std::map<std::string, std::vector<int>> byDatabase;
  for (int i = 0; i < static_cast<int>(ws.policies.size()); ++i) {
    const auto& p = ws.policies[static_cast<size_t>(i)].parsed;
    if (p) byDatabase[p->spec.database.name].push_back(i);
  }
  for (const auto& [database, members] : byDatabase) {
    std::optional<int32_t> maxConnections;
    int32_t reserved = 0;
    std::vector<budget::PolicyInput> inputs;
    for (int i : members) {
      const auto& p = *ws.policies[static_cast<size_t>(i)].parsed;
      if (p.spec.database.maxConnections) {
        if (maxConnections && *maxConnections != *p.spec.database.maxConnections) {
          ws.warnings.push_back("database " + database + ": policies declare different maxConnections (" +
                                std::to_string(*maxConnections) + " and " +
                                std::to_string(*p.spec.database.maxConnections) + " in " + p.namespace_ + "/" + p.name +
                                "); the smallest is used");
        }
        maxConnections = std::min(maxConnections.value_or(INT32_MAX), *p.spec.database.maxConnections);
      }
      // The most conservative reservation wins: it is the one some team relies on.
      reserved = std::max(reserved, p.spec.database.reservedConnections);
      budget::PolicyInput in = budget::policyInput(p);
      for (const auto& w : ws.workloads) {
        if (w.governedBy != i) continue;
        in.workloads.push_back(budget::workloadFacts(w.object, budget::findHpa(ws.hpas, w.kind, w.namespace_, w.name)));
      }
      inputs.push_back(std::move(in));
    }
    ws.databases.push_back(budget::computeDatabase(database, maxConnections, reserved, inputs));
  }
  return ws;
}

int32_t effectiveMaxSize(const Workspace& ws, const policy::Policy& p) {
  for (const auto& db : ws.databases) {
    if (db.database != p.spec.database.name) continue;
    if (const auto* pb = db.find(p.namespace_, p.name)) return pb->effectiveMaxSize;
  }
  return p.spec.pool.maxSize;
}

}  // namespace poolguard::offline
