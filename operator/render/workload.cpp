#include "render/workload.h"

#include <algorithm>

#include "common/json_pointer.h"

namespace poolguard::render {
namespace {

constexpr size_t kMaxNameLength = 253;
constexpr size_t kMaxLabelValueLength = 63;

std::string stringAt(const json& obj, const json::json_pointer& ptr) {
  if (!obj.contains(ptr)) return "";
  const auto& v = obj.at(ptr);
  return v.is_string() ? v.get<std::string>() : "";
}

// A string member of an object; "" when absent or of another type (json::value would throw on the latter).
std::string stringField(const json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

const json* containersOf(const json& workload) {
  static const json::json_pointer ptr("/spec/template/spec/containers");
  if (!workload.contains(ptr) || !workload.at(ptr).is_array()) return nullptr;
  return &workload.at(ptr);
}

const json* findContainer(const json& workload, const std::string& name) {
  const json* containers = containersOf(workload);
  if (containers == nullptr) return nullptr;
  for (const auto& c : *containers) {
    if (c.is_object() && stringField(c, "name") == name) return &c;
  }
  return nullptr;
}

json configMapRef(const std::string& name) { return json{{"configMapRef", {{"name", name}}}}; }

bool isOurConfigMapRef(const json& source, const std::string& name) {
  return source.is_object() && source.contains("configMapRef") && stringField(source["configMapRef"], "name") == name;
}

}  // namespace

Result<WorkloadIdentity> identityOf(const json& workload) {
  if (!workload.is_object()) return Error(ErrorCode::kInvalidArgument, "workload: expected an object");
  WorkloadIdentity id;
  std::string kind = stringField(workload, "kind");
  if (kind == "Deployment")
    id.kind = policy::WorkloadKind::kDeployment;
  else if (kind == "StatefulSet")
    id.kind = policy::WorkloadKind::kStatefulSet;
  else
    return Error(ErrorCode::kInvalidArgument, "kind: expected Deployment or StatefulSet, got \"" + kind + "\"");
  id.name = stringAt(workload, json::json_pointer("/metadata/name"));
  if (id.name.empty()) return Error(ErrorCode::kInvalidArgument, kind + ": metadata.name is required");
  id.namespace_ = stringAt(workload, json::json_pointer("/metadata/namespace"));
  if (id.namespace_.empty()) id.namespace_ = "default";
  id.uid = stringAt(workload, json::json_pointer("/metadata/uid"));
  return id;
}

std::string configMapName(policy::WorkloadKind kind, const std::string& workloadName) {
  std::string suffix = kind == policy::WorkloadKind::kDeployment ? "-deploy-poolguard" : "-sts-poolguard";
  if (workloadName.size() + suffix.size() <= kMaxNameLength) return workloadName + suffix;
  // Keep the result unique per workload: the hash covers the full name that the truncation drops.
  std::string digest = settingsHash({{"", workloadName, ""}}, "").substr(0, 8);
  size_t keep = kMaxNameLength - suffix.size() - digest.size() - 1;
  std::string head = workloadName.substr(0, keep);
  while (!head.empty() && (head.back() == '-' || head.back() == '.')) head.pop_back();
  return head + "-" + digest + suffix;
}

Result<DesiredWorkload> renderWorkload(const policy::Policy& p, const json& workload, const RenderOptions& options) {
  auto id = identityOf(workload);
  if (!id) return id.error();

  DesiredWorkload out;
  out.workload = *id;
  out.settings = renderSettings(p, id->namespace_, id->name, options);

  const json* live = containersOf(workload);
  std::vector<std::string> liveNames;
  if (live != nullptr) {
    for (const auto& c : *live) {
      if (c.is_object() && c.contains("name") && c["name"].is_string())
        liveNames.push_back(c["name"].get<std::string>());
    }
  }
  if (p.spec.containers.empty()) {
    out.containers = liveNames;
  } else {
    for (const auto& name : liveNames) {
      if (std::find(p.spec.containers.begin(), p.spec.containers.end(), name) != p.spec.containers.end()) {
        out.containers.push_back(name);
      }
    }
    for (const auto& name : p.spec.containers) {
      if (std::find(liveNames.begin(), liveNames.end(), name) == liveNames.end()) out.missingContainers.push_back(name);
    }
  }
  std::string kindName = policy::toString(id->kind);
  if (out.containers.empty()) {
    std::string listed;
    for (const auto& n : p.spec.containers) listed += (listed.empty() ? "" : ", ") + n;
    return Error(ErrorCode::kInvalidArgument,
                 kindName + " " + id->namespace_ + "/" + id->name +
                     ": none of the containers named in spec.containers (" + listed +
                     ") exists in spec.template.spec.containers; list the application container's name, or "
                     "leave spec.containers empty to select all containers");
  }

  bool viaConfigMap = p.spec.delivery.method == policy::DeliveryMethod::kConfigMap;
  std::string cmName = configMapName(id->kind, id->name);

  json containers = json::array();
  for (const auto& name : out.containers) {
    json c{{"name", name}};
    if (viaConfigMap) {
      json envFrom = json::array();
      if (const json* lc = findContainer(workload, name);
          lc != nullptr && lc->contains("envFrom") && (*lc)["envFrom"].is_array()) {
        for (const auto& source : (*lc)["envFrom"]) {
          if (!isOurConfigMapRef(source, cmName)) envFrom.push_back(source);
        }
      }
      envFrom.push_back(configMapRef(cmName));
      c["envFrom"] = envFrom;
    } else {
      json env = json::array();
      for (const auto& e : out.settings.env) env.push_back({{"name", e.name}, {"value", e.value}});
      c["env"] = env;
    }
    containers.push_back(c);
  }

  json body{{"apiVersion", "apps/v1"},
            {"kind", kindName},
            {"metadata",
             {{"name", id->name}, {"namespace", id->namespace_}, {"annotations", {{kPolicyAnnotation, p.name}}}}}};
  json tmpl = json::object();
  if (p.spec.rollout.restartOnChange)
    tmpl["metadata"] = {{"annotations", {{kSettingsHashAnnotation, out.settings.hash}}}};
  tmpl["spec"] = {{"containers", containers}};
  body["spec"] = {{"template", tmpl}};
  out.apply = body;

  if (viaConfigMap) {
    json data = json::object();
    for (const auto& e : out.settings.env) data[e.name] = e.value;
    if (!out.settings.pgbouncerIni.empty()) data[kPgBouncerIniKey] = out.settings.pgbouncerIni;
    json labels{{kManagedByLabel, kManagedByValue}};
    // A label value holds at most 63 characters; the annotation always carries the full policy name.
    if (p.name.size() <= kMaxLabelValueLength) labels[kPolicyLabel] = p.name;
    json metadata{{"name", cmName},
                  {"namespace", id->namespace_},
                  {"labels", labels},
                  {"annotations", {{kPolicyAnnotation, p.name}}}};
    // The workload owns its ConfigMap so garbage collection removes it with the workload. Not a controller
    // reference (poolguard, not the workload's controller, manages it) and not blocking deletion (that would
    // need update rights on the workload's finalizers).
    if (!id->uid.empty()) {
      metadata["ownerReferences"] = json::array({{{"apiVersion", "apps/v1"},
                                                  {"kind", kindName},
                                                  {"name", id->name},
                                                  {"uid", id->uid},
                                                  {"controller", false},
                                                  {"blockOwnerDeletion", false}}});
    }
    out.configMap = json{{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", metadata}, {"data", data}};
  }
  return out;
}

Comparison compare(const json& liveWorkload, const std::optional<json>& liveConfigMap, const DesiredWorkload& desired) {
  Comparison out;
  auto& diff = out.differences;
  auto quoted = [](const std::string& s) { return s.empty() ? std::string("\"\"") : s; };

  const json& body = desired.apply;
  std::string wantPolicy = body["metadata"]["annotations"].value(kPolicyAnnotation, "");
  std::string livePolicy =
      stringAt(liveWorkload, json::json_pointer("/metadata/annotations/" + jsonPointerToken(kPolicyAnnotation)));
  if (livePolicy != wantPolicy) {
    diff.push_back(std::string("annotation ") + kPolicyAnnotation + ": " +
                   (livePolicy.empty() ? "missing" : "live " + livePolicy) + ", desired " + wantPolicy);
  }

  static const json::json_pointer hashPtr("/spec/template/metadata/annotations/poolguard.dev~1settings-hash");
  if (body.contains(hashPtr)) {
    std::string want = body.at(hashPtr).get<std::string>();
    std::string have = stringAt(liveWorkload, hashPtr);
    if (have != want) {
      diff.push_back(std::string("pod template annotation ") + kSettingsHashAnnotation + ": " +
                     (have.empty() ? "missing" : "live " + have) + ", desired " + want);
    }
  }

  for (const auto& wantContainer : body["spec"]["template"]["spec"]["containers"]) {
    std::string name = wantContainer["name"].get<std::string>();
    const json* live = findContainer(liveWorkload, name);
    if (live == nullptr) {
      diff.push_back("container " + name + ": missing from the live workload");
      continue;
    }
    const json liveEnv = live->contains("env") && (*live)["env"].is_array() ? (*live)["env"] : json::array();
    auto liveEntry = [&](const std::string& envName) -> const json* {
      for (const auto& e : liveEnv) {
        if (e.is_object() && stringField(e, "name") == envName) return &e;
      }
      return nullptr;
    };
    if (wantContainer.contains("env")) {
      for (const auto& want : wantContainer["env"]) {
        std::string envName = want["name"].get<std::string>();
        std::string value = want["value"].get<std::string>();
        const json* have = liveEntry(envName);
        std::string prefix = "container " + name + " env " + envName + ": ";
        if (have == nullptr) {
          diff.push_back(prefix + "missing, desired " + quoted(value));
        } else if (have->contains("valueFrom")) {
          diff.push_back(prefix + "live valueFrom, desired " + quoted(value));
        } else if (stringField(*have, "value") != value) {
          diff.push_back(prefix + "live " + quoted(stringField(*have, "value")) + ", desired " + quoted(value));
        }
      }
    }
    if (wantContainer.contains("envFrom")) {
      std::string cmName = configMapName(desired.workload.kind, desired.workload.name);
      const json liveFrom =
          live->contains("envFrom") && (*live)["envFrom"].is_array() ? (*live)["envFrom"] : json::array();
      bool referenced =
          std::any_of(liveFrom.begin(), liveFrom.end(), [&](const json& s) { return isOurConfigMapRef(s, cmName); });
      if (!referenced) diff.push_back("container " + name + " envFrom: missing configMapRef " + cmName);
      // An explicit env entry beats envFrom, so the ConfigMap's value would not reach the process.
      for (const auto& e : desired.settings.env) {
        const json* have = liveEntry(e.name);
        if (have == nullptr) continue;
        if (have->contains("valueFrom") || stringField(*have, "value") != e.value) {
          diff.push_back(
              "container " + name + " env " + e.name + ": live " +
              (have->contains("valueFrom") ? std::string("valueFrom") : quoted(stringField(*have, "value"))) +
              " overrides ConfigMap " + cmName + " value " + quoted(e.value) +
              "; remove the env entry from the manifest");
        }
      }
    }
  }

  if (desired.configMap) {
    const std::string& cmName = (*desired.configMap)["metadata"]["name"].get_ref<const std::string&>();
    if (!liveConfigMap) {
      diff.push_back("ConfigMap " + cmName + ": missing");
    } else {
      const json& wantData = (*desired.configMap)["data"];
      const json liveData = liveConfigMap->contains("data") && (*liveConfigMap)["data"].is_object()
                                ? (*liveConfigMap)["data"]
                                : json::object();
      for (auto it = wantData.begin(); it != wantData.end(); ++it) {
        std::string want = it.value().get<std::string>();
        if (!liveData.contains(it.key())) {
          diff.push_back("ConfigMap " + cmName + " data " + it.key() + ": missing, desired " + quoted(want));
        } else if (!liveData[it.key()].is_string() || liveData[it.key()].get<std::string>() != want) {
          std::string have =
              liveData[it.key()].is_string() ? liveData[it.key()].get<std::string>() : liveData[it.key()].dump();
          if (it.key() == kPgBouncerIniKey) {
            diff.push_back("ConfigMap " + cmName + " data " + it.key() + ": differs");
          } else {
            diff.push_back("ConfigMap " + cmName + " data " + it.key() + ": live " + quoted(have) + ", desired " +
                           quoted(want));
          }
        }
      }
      const json& wantLabels = (*desired.configMap)["metadata"]["labels"];
      for (auto it = wantLabels.begin(); it != wantLabels.end(); ++it) {
        std::string have =
            stringAt(*liveConfigMap, json::json_pointer("/metadata/labels/" + jsonPointerToken(it.key())));
        if (have != it.value().get<std::string>()) {
          diff.push_back("ConfigMap " + cmName + " label " + it.key() + ": " +
                         (have.empty() ? "missing" : "live " + have) + ", desired " + it.value().get<std::string>());
        }
      }
    }
  }
  return out;
}

}  // namespace poolguard::render
