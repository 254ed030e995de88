#include "controller/cache_shapes.h"

namespace poolguard::controller {
namespace {

using json = nlohmann::json;
using kube::FieldFilter;

constexpr const char* kOwnAnnotations = "poolguard.dev/";

FieldFilter identity() {
  return FieldFilter::only()
      .keep("name")
      .keep("namespace")
      .keep("uid")
      .keep("resourceVersion")
      .keep("generation")
      .keep("creationTimestamp")
      .keep("deletionTimestamp");
}

json poolguardAnnotations(const json& annotations) {
  json kept = json::object();
  if (!annotations.is_object()) return kept;
  for (const auto& [k, v] : annotations.items()) {
    if (k.rfind(kOwnAnnotations, 0) == 0) kept[k] = v;
  }
  return kept;
}

}  // namespace

FieldFilter workloadFields() {
  FieldFilter container = FieldFilter::only().keep("name").keep("env").keep("envFrom");
  FieldFilter podTemplate =
      FieldFilter::only()
          .keep("metadata", FieldFilter::only().keep("annotations", FieldFilter::only().keepPrefix(kOwnAnnotations)))
          .keep("spec", FieldFilter::only().keep("containers", container));
  return FieldFilter::only()
      .keep("apiVersion")
      .keep("kind")
      .keep("metadata", identity().keep("labels").keep("annotations", FieldFilter::only().keepPrefix(kOwnAnnotations)))
      .keep("spec",
            FieldFilter::only().keep("replicas").keep("strategy").keep("updateStrategy").keep("template", podTemplate));
}

FieldFilter hpaFields() {
  return FieldFilter::only()
      .keep("apiVersion")
      .keep("kind")
      .keep("metadata", identity())
      .keep("spec", FieldFilter::only().keep("scaleTargetRef").keep("minReplicas").keep("maxReplicas"));
}

FieldFilter wholeObjectFields() {
  return FieldFilter::all().keep("metadata", FieldFilter::all().drop("managedFields"));
}

// Keeps only what the reconciler reads of a Deployment or StatefulSet: the informer cache then costs a small
// fraction of the full objects.
json compactWorkload(json obj) {
  json out = {{"apiVersion", obj.value("apiVersion", "")}, {"kind", obj.value("kind", "")}};
  const auto& meta = obj["metadata"];
  json m = json::object();
  for (const char* k :
       {"name", "namespace", "uid", "resourceVersion", "generation", "labels", "annotations", "creationTimestamp"}) {
    if (meta.contains(k)) m[k] = meta[k];
  }
  // Only poolguard's own annotations are read; the rest (often large) stays out of the cache.
  if (m.contains("annotations")) m["annotations"] = poolguardAnnotations(m["annotations"]);
  out["metadata"] = std::move(m);
  const auto& spec = obj.value("spec", json::object());
  json s = json::object();
  for (const char* k : {"replicas", "strategy", "updateStrategy"}) {
    if (spec.contains(k)) s[k] = spec[k];
  }
  if (spec.contains("template")) {
    const auto& tpl = spec["template"];
    json t = json::object();
    if (tpl.contains("metadata") && tpl["metadata"].contains("annotations")) {
      t["metadata"]["annotations"] = poolguardAnnotations(tpl["metadata"]["annotations"]);
    }
    json containers = json::array();
    if (tpl.contains("spec") && tpl["spec"].contains("containers")) {
      for (const auto& c : tpl["spec"]["containers"]) {
        json kept = {{"name", c.value("name", "")}};
        if (c.contains("env")) kept["env"] = c["env"];
        if (c.contains("envFrom")) kept["envFrom"] = c["envFrom"];
        containers.push_back(std::move(kept));
      }
    }
    t["spec"]["containers"] = std::move(containers);
    s["template"] = std::move(t);
  }
  out["spec"] = std::move(s);
  return out;
}

json compactHpa(json obj) {
  json out = {{"apiVersion", obj.value("apiVersion", "")}, {"kind", obj.value("kind", "")}};
  const auto& meta = obj["metadata"];
  for (const char* k : {"name", "namespace", "uid", "resourceVersion"}) {
    if (meta.contains(k)) out["metadata"][k] = meta[k];
  }
  const auto& spec = obj.value("spec", json::object());
  for (const char* k : {"scaleTargetRef", "maxReplicas", "minReplicas"}) {
    if (spec.contains(k)) out["spec"][k] = spec[k];
  }
  return out;
}

}  // namespace poolguard::controller
