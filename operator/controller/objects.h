#pragma once
// Reading the few fields of cached objects the controller needs, tolerating what is absent.
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "kube/client.h"
#include "policy/types.h"

namespace poolguard::controller {

inline const kube::Resource& resourceOf(policy::WorkloadKind kind) {
  static const kube::Resource deployments = kube::resources::deployments();
  static const kube::Resource statefulSets = kube::resources::statefulSets();
  return kind == policy::WorkloadKind::kDeployment ? deployments : statefulSets;
}

inline std::map<std::string, std::string> labelsOf(const nlohmann::json& obj) {
  std::map<std::string, std::string> out;
  const auto& meta = obj.value("metadata", nlohmann::json::object());
  if (meta.contains("labels") && meta["labels"].is_object()) {
    for (const auto& [k, v] : meta["labels"].items()) {
      if (v.is_string()) out[k] = v.get<std::string>();
    }
  }
  return out;
}

inline std::string annotationOf(const nlohmann::json& obj, const std::string& key) {
  const auto& meta = obj.value("metadata", nlohmann::json::object());
  if (!meta.contains("annotations") || !meta["annotations"].is_object()) return "";
  return meta["annotations"].value(key, "");
}

inline std::string nameOf(const nlohmann::json& obj) { return obj["metadata"].value("name", ""); }
inline std::string namespaceOf(const nlohmann::json& obj) { return obj["metadata"].value("namespace", ""); }

}  // namespace poolguard::controller
