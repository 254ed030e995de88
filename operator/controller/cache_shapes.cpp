#include "controller/cache_shapes.h"

#include "model/records.h"
#include "render/workload.h"

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

// kubectl apply's copy of the whole object: large, and read by no decision.
constexpr const char* kLastApplied = "kubectl.kubernetes.io/last-applied-configuration";

void keepOwnAnnotations(std::map<std::string, std::string>& annotations) {
  std::erase_if(annotations, [](const auto& kv) { return kv.first.rfind(kOwnAnnotations, 0) != 0; });
}

}  // namespace

FieldFilter workloadFields() {
  FieldFilter env = FieldFilter::only().keep("name").keep("value").keep("valueFrom", FieldFilter::only());
  FieldFilter container = FieldFilter::only().keep("name").keep("env", env).keep("envFrom");
  FieldFilter podTemplate =
      FieldFilter::only()
          .keep("metadata", FieldFilter::only().keep("annotations", FieldFilter::only().keepPrefix(kOwnAnnotations)))
          .keep("spec", FieldFilter::only().keep("containers", container));
  // A Deployment's strategy; a Rollout's is read only for its kind (blueGreen, canary with or without
  // trafficRouting) and the canary's maxSurge: its steps and analysis are skipped.
  FieldFilter strategy =
      FieldFilter::only()
          .keep("type")
          .keep("rollingUpdate")
          .keep("blueGreen", FieldFilter::only())
          .keep("canary", FieldFilter::only().keep("maxSurge").keep("trafficRouting", FieldFilter::only()));
  FieldFilter jobTemplate = FieldFilter::only().keep(
      "spec", FieldFilter::only().keep("parallelism").keep("completions").keep("template", podTemplate));
  return FieldFilter::only()
      .keep("apiVersion")
      .keep("kind")
      .keep("metadata", identity()
                            .keep("labels")
                            .keep("annotations", FieldFilter::only().keepPrefix(kOwnAnnotations))
                            // A Job's controller: a CronJob's runs are counted with the CronJob.
                            .keep("ownerReferences", FieldFilter::only().keep("kind").keep("controller")))
      .keep("spec", FieldFilter::only()
                        .keep("replicas")
                        .keep("parallelism")
                        .keep("completions")
                        .keep("podReplacementPolicy")
                        .keep("podFailurePolicy", FieldFilter::only())
                        .keep("strategy", strategy)
                        .keep("updateStrategy")
                        .keep("template", podTemplate)
                        .keep("concurrencyPolicy")
                        .keep("suspend")
                        .keep("jobTemplate", jobTemplate)
                        .keep("workloadRef", FieldFilter::only().keep("kind").keep("name")))
      // A DaemonSet's nodes, a CronJob's runs (status.active: references to its Jobs), whether a Job finished.
      .keep("status", FieldFilter::only()
                          .keep("desiredNumberScheduled")
                          .keep("active", FieldFilter::only().keep("name"))
                          .keep("conditions", FieldFilter::only().keep("type").keep("status")));
}

FieldFilter hpaFields() {
  return FieldFilter::only()
      .keep("apiVersion")
      .keep("kind")
      .keep("metadata", identity())
      .keep("spec", FieldFilter::only().keep("scaleTargetRef").keep("maxReplicas"));
}

FieldFilter namespaceFields() {
  return FieldFilter::only().keep("apiVersion").keep("kind").keep("metadata", identity().keep("labels"));
}

FieldFilter wholeObjectFields() {
  return FieldFilter::all().keep("metadata", FieldFilter::all().drop("managedFields"));
}

runtime::Decoder workloadDecoder() {
  return [](json&& obj) -> runtime::ObjectPtr {
    model::Diagnostics ignored;  // the API server validated the object
    auto w = std::make_shared<model::Workload>(model::decodeWorkload(obj, ignored));
    // Only poolguard's own annotations are read; the FieldFilter keeps no others, this keeps it so for any input.
    keepOwnAnnotations(w->meta.annotations);
    keepOwnAnnotations(w->templateAnnotations);
    return w;
  };
}

runtime::Decoder hpaDecoder() {
  return [](json&& obj) -> runtime::ObjectPtr {
    model::Diagnostics ignored;
    auto h = std::make_shared<model::Hpa>(model::decodeHpa(obj, ignored));
    h->meta.annotations.clear();
    return h;
  };
}

runtime::Decoder configMapDecoder() {
  return [](json&& obj) -> runtime::ObjectPtr {
    model::Diagnostics ignored;
    auto c = std::make_shared<model::ConfigMap>(model::decodeConfigMap(obj, ignored));
    c->meta.annotations.erase(kLastApplied);
    return c;
  };
}

runtime::Decoder policyDecoder() {
  return [](json&& obj) -> runtime::ObjectPtr {
    auto p = std::make_shared<model::PolicyObject>(model::decodePolicy(obj));
    p->meta.annotations.erase(kLastApplied);
    return p;
  };
}

runtime::Decoder budgetDecoder() {
  return [](json&& obj) -> runtime::ObjectPtr {
    auto b = std::make_shared<model::BudgetObject>(model::decodeBudget(obj));
    b->meta.annotations.erase(kLastApplied);
    return b;
  };
}

runtime::Decoder namespaceDecoder() {
  return [](json&& obj) -> runtime::ObjectPtr {
    auto n = std::make_shared<kube::Object>();
    n->meta = runtime::metaOf(obj);
    n->meta.annotations.clear();
    return n;
  };
}

bool namespaceLabelsChanged(const kube::Object& a, const kube::Object& b) {
  return a.meta.uid != b.meta.uid || a.meta.labels != b.meta.labels;
}

bool workloadChanged(const kube::Object& a, const kube::Object& b) {
  return !runtime::recordAs<model::Workload>(a).sameDecisionFields(runtime::recordAs<model::Workload>(b));
}

bool hpaChanged(const kube::Object& a, const kube::Object& b) {
  const auto& x = runtime::recordAs<model::Hpa>(a);
  const auto& y = runtime::recordAs<model::Hpa>(b);
  return x.meta.uid != y.meta.uid || x.targetApiVersion != y.targetApiVersion || x.targetKind != y.targetKind ||
         x.targetName != y.targetName || x.maxReplicas != y.maxReplicas;
}

bool configMapChanged(const kube::Object& a, const kube::Object& b) {
  const auto& x = runtime::recordAs<model::ConfigMap>(a);
  const auto& y = runtime::recordAs<model::ConfigMap>(b);
  return x.meta.uid != y.meta.uid || x.meta.labels != y.meta.labels || x.meta.annotations != y.meta.annotations ||
         x.data != y.data;
}

bool policyChanged(const kube::Object& a, const kube::Object& b) {
  const auto& x = a.meta;
  const auto& y = b.meta;
  return x.uid != y.uid || x.generation != y.generation || x.labels != y.labels || x.annotations != y.annotations ||
         x.finalizers != y.finalizers || x.deletionTimestamp != y.deletionTimestamp;
}

runtime::IndexFunc clusterPolicyIndex() {
  return [](const kube::Object& o) -> std::vector<std::string> {
    auto it = o.meta.annotations.find(render::kClusterPolicyAnnotation);
    if (it == o.meta.annotations.end() || it->second.empty()) return {};
    return {it->second};
  };
}

std::string scaleTargetKey(const std::string& ns, const std::string& kind, const std::string& name) {
  return ns + "/" + kind + "/" + name;
}

runtime::IndexFunc scaleTargetRefIndex() {
  return [](const kube::Object& o) -> std::vector<std::string> {
    const auto& h = runtime::recordAs<model::Hpa>(o);
    if (h.targetKind.empty() || h.targetName.empty()) return {};
    return {scaleTargetKey(h.meta.namespace_, h.targetKind, h.targetName)};
  };
}

}  // namespace poolguard::controller
