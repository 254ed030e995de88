#include "render/workload.h"

#include <algorithm>
#include <initializer_list>
#include <string_view>

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

json configMapRef(const std::string& name) { return json{{"configMapRef", {{"name", name}}}}; }

bool isOurConfigMapRef(const model::EnvFromSource& source, const std::string& name) {
  return source.configMapRef && source.configMapRef->name == name;
}

json refJson(const model::EnvFromRef& ref) {
  json out = json::object();
  if (!ref.name.empty()) out["name"] = ref.name;
  if (ref.optional) out["optional"] = *ref.optional;
  return out;
}

// An envFrom entry as the API server returns it, so an apply that repeats it changes nothing.
json toJson(const model::EnvFromSource& source) {
  json out = json::object();
  if (!source.prefix.empty()) out["prefix"] = source.prefix;
  if (source.configMapRef) out["configMapRef"] = refJson(*source.configMapRef);
  if (source.secretRef) out["secretRef"] = refJson(*source.secretRef);
  return out;
}

const model::EnvVar* envEntry(const model::Container& c, const std::string& name) {
  for (const auto& e : c.env) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

// A server-options variable the container sets itself: an env entry of that name that poolguard did not render
// (from another source, or with other options in it). The container keeps its own (settings.h, isServerOptions).
bool keepsItsOwn(const model::Container* live, const EnvSetting& e) {
  if (live == nullptr || !isServerOptions(e)) return false;
  const model::EnvVar* have = envEntry(*live, e.name);
  return have != nullptr && (have->valueFrom || !isIdleInTransactionOptions(have->value));
}

std::string mapValue(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? "" : it->second;
}

}  // namespace

std::optional<std::string> containersMergeProblem(const json& crd, const std::string& version) {
  const std::string name = stringAt(crd, json::json_pointer("/metadata/name"));
  const json* schema = nullptr;
  if (crd.contains("spec") && crd["spec"].is_object() && crd["spec"].contains("versions") &&
      crd["spec"]["versions"].is_array()) {
    for (const auto& v : crd["spec"]["versions"]) {
      static const json::json_pointer at("/schema/openAPIV3Schema");
      if (v.is_object() && stringField(v, "name") == version && v.contains(at)) schema = &v.at(at);
    }
  }
  if (schema == nullptr) return "CustomResourceDefinition " + name + " has no schema for version " + version;
  // A list-map keyed by name at the end of `path` (properties of objects, items of arrays).
  auto listMapByName = [](const json* node, std::initializer_list<const char*> path) -> bool {
    for (const char* step : path) {
      if (node == nullptr || !node->is_object()) return false;
      const json* next = nullptr;
      if (std::string_view(step) == "[]") {
        if (auto it = node->find("items"); it != node->end()) next = &*it;
      } else if (auto props = node->find("properties"); props != node->end() && props->is_object()) {
        if (auto it = props->find(step); it != props->end()) next = &*it;
      }
      node = next;
    }
    if (node == nullptr || !node->is_object() || stringField(*node, "x-kubernetes-list-type") != "map") return false;
    auto keys = node->find("x-kubernetes-list-map-keys");
    return keys != node->end() && *keys == json::array({"name"});
  };
  const bool containers = listMapByName(schema, {"spec", "template", "spec", "containers"});
  const bool env = listMapByName(schema, {"spec", "template", "spec", "containers", "[]", "env"});
  if (containers && env) return std::nullopt;
  return "CustomResourceDefinition " + name + " declares " +
         std::string(containers ? "spec.template.spec.containers[].env" : "spec.template.spec.containers") +
         " an atomic list (not a list-map keyed by name), so a server-side apply of poolguard's entries would "
         "replace the whole list";
}

const json& podTemplateOf(const json& body, policy::WorkloadKind kind) {
  static const json none = json::object();
  static const json::json_pointer plain("/spec/template");
  static const json::json_pointer job("/spec/jobTemplate/spec/template");
  const json::json_pointer& at = policy::infoOf(kind).jobTemplate ? job : plain;
  return body.contains(at) ? body.at(at) : none;
}

Result<WorkloadIdentity> identityOf(const json& workload) {
  if (!workload.is_object()) return Error(ErrorCode::kInvalidArgument, "workload: expected an object");
  WorkloadIdentity id;
  std::string kind = stringField(workload, "kind");
  if (auto k = policy::workloadKindNamed(kind))
    id.kind = *k;
  else
    return Error(ErrorCode::kInvalidArgument,
                 "kind: expected Deployment, StatefulSet, DaemonSet, CronJob or Rollout, got \"" + kind + "\"");
  id.name = stringAt(workload, json::json_pointer("/metadata/name"));
  if (id.name.empty()) return Error(ErrorCode::kInvalidArgument, kind + ": metadata.name is required");
  id.namespace_ = stringAt(workload, json::json_pointer("/metadata/namespace"));
  if (id.namespace_.empty()) id.namespace_ = "default";
  id.uid = stringAt(workload, json::json_pointer("/metadata/uid"));
  return id;
}

Result<WorkloadIdentity> identityOf(const model::Workload& workload) {
  WorkloadIdentity id{workload.kind, workload.meta.namespace_, workload.meta.name, workload.meta.uid};
  if (id.name.empty())
    return Error(ErrorCode::kInvalidArgument, std::string(policy::toString(id.kind)) + ": metadata.name is required");
  if (id.namespace_.empty()) id.namespace_ = "default";
  return id;
}

std::string configMapName(policy::WorkloadKind kind, const std::string& workloadName) {
  const std::string suffix = policy::infoOf(kind).configMapSuffix;
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
  model::Diagnostics ignored;
  json typed = workload;
  // identityOf reads the kind alone; the decoder also wants the kind's apiVersion.
  typed["apiVersion"] = policy::infoOf(id->kind).apiVersion;
  model::Workload decoded = model::decodeWorkload(typed, ignored);
  return renderWorkload(p, decoded, options);
}

Result<DesiredWorkload> renderWorkload(const policy::Policy& p, const model::Workload& workload,
                                       const RenderOptions& options) {
  auto id = identityOf(workload);
  if (!id) return id.error();

  DesiredWorkload out;
  out.workload = *id;
  out.settings = renderSettings(p, id->namespace_, id->name, options);

  std::vector<std::string> liveNames;
  for (const auto& c : workload.containers) {
    if (!c.name.empty()) liveNames.push_back(c.name);
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
  if (liveNames.empty()) {
    std::string message = kindName + " " + id->namespace_ + "/" + id->name + ": its pod template has no containers";
    if (id->kind == policy::WorkloadKind::kRollout)
      message +=
          " (a Rollout with spec.workloadRef runs the pod template of the Deployment it names: let the "
          "policy select that Deployment)";
    return Error(ErrorCode::kInvalidArgument, message);
  }
  if (out.containers.empty()) {
    std::string listed;
    for (const auto& n : p.spec.containers) listed += (listed.empty() ? "" : ", ") + n;
    return Error(ErrorCode::kInvalidArgument,
                 kindName + " " + id->namespace_ + "/" + id->name +
                     ": none of the containers named in spec.containers (" + listed + ") exists in " +
                     (policy::infoOf(id->kind).jobTemplate ? "spec.jobTemplate.spec.template" : "spec.template") +
                     ".spec.containers; list the application container's name, or "
                     "leave spec.containers empty to select all containers");
  }

  bool viaConfigMap = p.spec.delivery.method == policy::DeliveryMethod::kConfigMap;
  std::string cmName = configMapName(id->kind, id->name);

  json containers = json::array();
  for (const auto& name : out.containers) {
    const model::Container* lc = workload.container(name);
    for (const auto& e : out.settings.env) {
      if (!keepsItsOwn(lc, e)) continue;
      const model::EnvVar* have = envEntry(*lc, e.name);
      if (have->valueFrom || have->value.find("idle_in_transaction_session_timeout") == std::string::npos)
        out.ownServerOptions.push_back({name, e.name});
    }
    json c{{"name", name}};
    if (viaConfigMap) {
      json envFrom = json::array();
      if (lc != nullptr) {
        for (const auto& source : lc->envFrom) {
          if (!isOurConfigMapRef(source, cmName)) envFrom.push_back(toJson(source));
        }
      }
      envFrom.push_back(configMapRef(cmName));
      c["envFrom"] = envFrom;
    } else {
      json env = json::array();
      for (const auto& e : out.settings.env) {
        if (!keepsItsOwn(lc, e)) env.push_back({{"name", e.name}, {"value", e.value}});
      }
      c["env"] = env;
    }
    containers.push_back(c);
  }

  const policy::WorkloadKindInfo& info = policy::infoOf(id->kind);
  json body{
      {"apiVersion", info.apiVersion},
      {"kind", kindName},
      {"metadata", {{"name", id->name}, {"namespace", id->namespace_}, {"annotations", {{ownerKey(p), p.name}}}}}};
  json tmpl = json::object();
  if (p.spec.rollout.restartOnChange)
    tmpl["metadata"] = {{"annotations", {{kSettingsHashAnnotation, out.settings.hash}}}};
  tmpl["spec"] = {{"containers", containers}};
  // A CronJob's pods come from its job template: a change reaches the next run, never one already running.
  if (info.jobTemplate)
    body["spec"] = {{"jobTemplate", {{"spec", {{"template", tmpl}}}}}};
  else
    body["spec"] = {{"template", tmpl}};
  out.apply = body;

  if (viaConfigMap) {
    json data = json::object();
    for (const auto& e : out.settings.env) data[e.name] = e.value;
    if (!out.settings.pgbouncerIni.empty()) data[kPgBouncerIniKey] = out.settings.pgbouncerIni;
    json labels{{kManagedByLabel, kManagedByValue}};
    // A label value holds at most 63 characters; the annotation always carries the full policy name.
    if (p.name.size() <= kMaxLabelValueLength) labels[ownerKey(p)] = p.name;
    json metadata{
        {"name", cmName}, {"namespace", id->namespace_}, {"labels", labels}, {"annotations", {{ownerKey(p), p.name}}}};
    // The workload owns its ConfigMap so garbage collection removes it with the workload. Not a controller
    // reference (poolguard, not the workload's controller, manages it) and not blocking deletion (that would
    // need update rights on the workload's finalizers).
    if (!id->uid.empty()) {
      metadata["ownerReferences"] = json::array({{{"apiVersion", info.apiVersion},
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

namespace {
std::string orQuotes(const std::string& s) { return s.empty() ? std::string("\"\"") : s; }
}  // namespace

Comparison compareWorkload(const model::Workload& live, const DesiredWorkload& desired) {
  Comparison out;
  auto& diff = out.differences;

  const json& body = desired.apply;
  // The owner annotation of the governing policy's scope, and none of the other (a workload handed over between a
  // cluster policy and its namespace's own is rewritten, which drops the other).
  for (const char* key : {kPolicyAnnotation, kClusterPolicyAnnotation}) {
    std::string want = body["metadata"]["annotations"].value(key, "");
    std::string have = mapValue(live.meta.annotations, key);
    if (have == want) continue;
    diff.push_back(std::string("annotation ") + key + ": " + (have.empty() ? "missing" : "live " + have) +
                   ", desired " + (want.empty() ? "none" : want));
  }

  const json& tmpl = podTemplateOf(body, desired.workload.kind);
  static const json::json_pointer hashPtr("/metadata/annotations/poolguard.dev~1settings-hash");
  if (tmpl.contains(hashPtr)) {
    std::string want = tmpl.at(hashPtr).get<std::string>();
    std::string have = mapValue(live.templateAnnotations, kSettingsHashAnnotation);
    if (have != want) {
      diff.push_back(std::string("pod template annotation ") + kSettingsHashAnnotation + ": " +
                     (have.empty() ? "missing" : "live " + have) + ", desired " + want);
    }
  }

  for (const auto& wantContainer : tmpl["spec"]["containers"]) {
    std::string name = wantContainer["name"].get<std::string>();
    const model::Container* lc = live.container(name);
    if (lc == nullptr) {
      diff.push_back("container " + name + ": missing from the live workload");
      continue;
    }
    if (wantContainer.contains("env")) {
      for (const auto& want : wantContainer["env"]) {
        std::string envName = want["name"].get<std::string>();
        std::string value = want["value"].get<std::string>();
        const model::EnvVar* have = envEntry(*lc, envName);
        std::string prefix = "container " + name + " env " + envName + ": ";
        if (have == nullptr) {
          diff.push_back(prefix + "missing, desired " + orQuotes(value));
        } else if (have->valueFrom) {
          diff.push_back(prefix + "live valueFrom, desired " + orQuotes(value));
        } else if (have->value != value) {
          diff.push_back(prefix + "live " + orQuotes(have->value) + ", desired " + orQuotes(value));
        }
      }
    }
    if (wantContainer.contains("envFrom")) {
      std::string cmName = configMapName(desired.workload.kind, desired.workload.name);
      bool referenced = std::any_of(lc->envFrom.begin(), lc->envFrom.end(),
                                    [&](const model::EnvFromSource& s) { return isOurConfigMapRef(s, cmName); });
      if (!referenced) diff.push_back("container " + name + " envFrom: missing configMapRef " + cmName);
      // An explicit env entry beats envFrom, so the ConfigMap's value would not reach the process.
      for (const auto& e : desired.settings.env) {
        const model::EnvVar* have = envEntry(*lc, e.name);
        if (have == nullptr || keepsItsOwn(lc, e)) continue;
        if (have->valueFrom || have->value != e.value) {
          diff.push_back("container " + name + " env " + e.name + ": live " +
                         (have->valueFrom ? std::string("valueFrom") : orQuotes(have->value)) +
                         " overrides ConfigMap " + cmName + " value " + orQuotes(e.value) +
                         "; remove the env entry from the manifest");
        }
      }
    }
  }
  return out;
}

Comparison compareConfigMap(const model::ConfigMap* live, const DesiredWorkload& desired) {
  Comparison out;
  if (!desired.configMap) return out;
  auto& diff = out.differences;
  const std::string& cmName = (*desired.configMap)["metadata"]["name"].get_ref<const std::string&>();
  if (live == nullptr) {
    diff.push_back("ConfigMap " + cmName + ": missing");
    return out;
  }
  const json& wantData = (*desired.configMap)["data"];
  for (auto it = wantData.begin(); it != wantData.end(); ++it) {
    std::string want = it.value().get<std::string>();
    auto have = live->data.find(it.key());
    if (have == live->data.end()) {
      diff.push_back("ConfigMap " + cmName + " data " + it.key() + ": missing, desired " + orQuotes(want));
    } else if (have->second != want) {
      if (it.key() == kPgBouncerIniKey) {
        diff.push_back("ConfigMap " + cmName + " data " + it.key() + ": differs");
      } else {
        diff.push_back("ConfigMap " + cmName + " data " + it.key() + ": live " + orQuotes(have->second) + ", desired " +
                       orQuotes(want));
      }
    }
  }
  const json& wantLabels = (*desired.configMap)["metadata"]["labels"];
  for (auto it = wantLabels.begin(); it != wantLabels.end(); ++it) {
    std::string have = mapValue(live->meta.labels, it.key());
    if (have != it.value().get<std::string>()) {
      diff.push_back("ConfigMap " + cmName + " label " + it.key() + ": " + (have.empty() ? "missing" : "live " + have) +
                     ", desired " + it.value().get<std::string>());
    }
  }
  // The other scope's owner label goes when a policy of the other scope takes the workload over.
  for (const char* key : {kPolicyLabel, kClusterPolicyLabel}) {
    std::string have = mapValue(live->meta.labels, key);
    if (!have.empty() && !wantLabels.contains(key))
      diff.push_back("ConfigMap " + cmName + " label " + key + ": live " + have + ", desired none");
  }
  return out;
}

Comparison compare(const model::Workload& liveWorkload, const model::ConfigMap* liveConfigMap,
                   const DesiredWorkload& desired) {
  Comparison out = compareWorkload(liveWorkload, desired);
  for (auto& d : compareConfigMap(liveConfigMap, desired).differences) out.differences.push_back(std::move(d));
  return out;
}

Comparison compare(const json& liveWorkload, const std::optional<json>& liveConfigMap, const DesiredWorkload& desired) {
  model::Diagnostics ignored;
  const model::Workload w = model::decodeWorkload(liveWorkload, ignored);
  std::optional<model::ConfigMap> cm;
  if (liveConfigMap) cm = model::decodeConfigMap(*liveConfigMap, ignored);
  return compare(w, cm ? &*cm : nullptr, desired);
}

}  // namespace poolguard::render
