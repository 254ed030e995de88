#include "model/records.h"

#include <charconv>
#include <limits>

#include "common/json_pointer.h"

namespace poolguard::model {
namespace {

// A value inside the object being decoded, with its field path as the API server prints it
// ("spec.template.spec.containers[0].name") and its JSON pointer (for the spellings).
struct At {
  const json* value = nullptr;  // nullptr: absent
  std::string path;
  std::string pointer;

  bool present() const { return value != nullptr && !value->is_null(); }

  At field(const std::string& key) const {
    At out{nullptr, path.empty() ? key : path + "." + key, pointer + "/" + jsonPointerToken(key)};
    if (value != nullptr && value->is_object()) {
      auto it = value->find(key);
      if (it != value->end()) out.value = &*it;
    }
    return out;
  }

  At item(size_t index) const {
    return At{&(*value)[index], path + "[" + std::to_string(index) + "]", pointer + "/" + std::to_string(index)};
  }
};

std::string describe(const json& v, const std::string* spelling) {
  std::string shown = spelling != nullptr ? *spelling : v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (shown.size() > 40) shown = shown.substr(0, 37) + "...";
  switch (v.type()) {
    case json::value_t::object:
      return "a mapping";
    case json::value_t::array:
      return "a list";
    case json::value_t::string:
      return "the string " + shown;
    case json::value_t::boolean:
      return "the boolean " + shown;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "the number " + shown;
    default:
      return shown;
  }
}

void typeError(const At& at, Diagnostics& d, const std::string& expected) {
  const std::string* spelling = d.spelling(at.pointer);
  if (expected == "a string" && at.value->is_primitive()) {
    // A plain YAML scalar read as a boolean or number: quoting it keeps the text as written.
    std::string text = spelling != nullptr ? *spelling : at.value->dump();
    d.add(at.path, "must be a string, not " + describe(*at.value, spelling) + "; quote it: \"" + text + "\"");
    return;
  }
  std::string message = "must be " + expected + ", not " + describe(*at.value, spelling);
  if (expected.starts_with("an integer") && at.value->is_string()) {
    const std::string& s = at.value->get_ref<const std::string&>();
    int64_t n = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec == std::errc() && end == s.data() + s.size() && !s.empty()) message += "; remove the quotes: " + s;
  }
  d.add(at.path, message);
}

std::optional<std::string> readString(const At& at, Diagnostics& d) {
  if (!at.present()) return std::nullopt;
  if (!at.value->is_string()) {
    typeError(at, d, "a string");
    return std::nullopt;
  }
  return at.value->get<std::string>();
}

std::optional<int64_t> readInteger(const At& at, Diagnostics& d, int64_t min, int64_t max,
                                   const std::string& expected) {
  if (!at.present()) return std::nullopt;
  if (!at.value->is_number_integer()) {
    typeError(at, d, expected);
    return std::nullopt;
  }
  if (at.value->is_number_unsigned() && at.value->get<uint64_t>() > static_cast<uint64_t>(max)) {
    d.add(at.path, "must be at most " + std::to_string(max) + ", not " + at.value->dump());
    return std::nullopt;
  }
  int64_t n = at.value->get<int64_t>();
  if (n < min) {
    d.add(at.path, "must be greater than or equal to " + std::to_string(min) + ", not " + std::to_string(n));
    return std::nullopt;
  }
  if (n > max) {
    d.add(at.path, "must be at most " + std::to_string(max) + ", not " + std::to_string(n));
    return std::nullopt;
  }
  return n;
}

std::optional<int32_t> readInt32(const At& at, Diagnostics& d, int32_t min) {
  auto n = readInteger(at, d, min, std::numeric_limits<int32_t>::max(), "an integer");
  if (!n) return std::nullopt;
  return static_cast<int32_t>(*n);
}

// A boolean; nullopt when absent, and an error when of another type.
std::optional<bool> readBool(const At& at, Diagnostics& d) {
  if (!at.present()) return std::nullopt;
  if (at.value->is_boolean()) return at.value->get<bool>();
  typeError(at, d, "a boolean");
  return std::nullopt;
}

// True when the value is a mapping (or absent); an error otherwise.
bool expectObject(const At& at, Diagnostics& d) {
  if (!at.present()) return true;
  if (at.value->is_object()) return true;
  typeError(at, d, "a mapping");
  return false;
}

// The list's items, each checked to be a mapping; an error when the value is not a list.
std::vector<At> objectItems(const At& at, Diagnostics& d) {
  std::vector<At> out;
  if (!at.present()) return out;
  if (!at.value->is_array()) {
    typeError(at, d, "a list");
    return out;
  }
  for (size_t i = 0; i < at.value->size(); ++i) {
    At item = at.item(i);
    if (item.value->is_object())
      out.push_back(item);
    else
      typeError(item, d, "a mapping");
  }
  return out;
}

std::map<std::string, std::string> readStringMap(const At& at, Diagnostics& d) {
  std::map<std::string, std::string> out;
  if (!at.present() || !expectObject(at, d)) return out;
  for (auto it = at.value->begin(); it != at.value->end(); ++it) {
    if (it.value().is_string()) {
      out.emplace_hint(out.end(), it.key(), it.value().get_ref<const std::string&>());
    } else if (it.value().is_null()) {
      out.emplace(it.key(), "");  // as the API server's decoder reads a null map value
    } else {
      typeError(at.field(it.key()), d, "a string");  // the entry's path is made only for its error
    }
  }
  return out;
}

std::optional<IntOrPercent> readIntOrPercent(const At& at, Diagnostics& d) {
  if (!at.present()) return std::nullopt;
  const std::string expected = "an integer or a percentage such as \"25%\"";
  if (at.value->is_number_integer()) {
    auto n = readInteger(at, d, 0, std::numeric_limits<int32_t>::max(), expected);
    if (!n) return std::nullopt;
    return IntOrPercent{static_cast<int32_t>(*n), false};
  }
  if (!at.value->is_string()) {
    typeError(at, d, expected);
    return std::nullopt;
  }
  const std::string& s = at.value->get_ref<const std::string&>();
  int32_t n = 0;
  if (s.size() >= 2 && s.back() == '%') {
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size() - 1, n);
    if (ec == std::errc() && end == s.data() + s.size() - 1 && n >= 0) return IntOrPercent{n, true};
  }
  std::string message = "must be " + expected + ", not the string \"" + s + "\"";
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec == std::errc() && end == s.data() + s.size() && !s.empty()) {
    message += "; write " + s + " without quotes for a number of pods, or \"" + s + "%\" for a percentage";
  }
  d.add(at.path, message);
  return std::nullopt;
}

std::string apiVersionOf(const json& obj) {
  auto it = obj.find("apiVersion");
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string kindOf(const json& obj) {
  auto it = obj.find("kind");
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

At root(const json& obj) { return At{&obj, "", ""}; }

}  // namespace

const std::string* Diagnostics::spelling(const std::string& pointer) const {
  if (spellings_ == nullptr) return nullptr;
  auto it = spellings_->find(pointer);
  return it == spellings_->end() ? nullptr : &it->second;
}

bool Hpa::targets(policy::WorkloadKind kind, const std::string& ns, const std::string& name) const {
  if (meta.namespace_ != ns) return false;
  // Only the kinds with a scale subresource an HPA may target: Deployments, StatefulSets and Rollouts.
  if (kind != policy::WorkloadKind::kDeployment && kind != policy::WorkloadKind::kStatefulSet &&
      kind != policy::WorkloadKind::kRollout)
    return false;
  const std::string apiVersion = policy::infoOf(kind).apiVersion;
  // apps/v1 kinds may leave the apiVersion out (as the HPA controller reads it); another group's must name it.
  if (targetApiVersion.empty() ? apiVersion != "apps/v1" : targetApiVersion != apiVersion) return false;
  return targetKind == policy::toString(kind) && targetName == name;
}

std::optional<policy::WorkloadKind> workloadKindOf(const json& obj) {
  if (!obj.is_object()) return std::nullopt;
  auto kind = policy::workloadKindNamed(kindOf(obj));
  if (!kind || apiVersionOf(obj) != policy::infoOf(*kind).apiVersion) return std::nullopt;
  return kind;
}

bool isHpa(const json& obj) {
  return obj.is_object() && kindOf(obj) == "HorizontalPodAutoscaler" && apiVersionOf(obj) == "autoscaling/v2";
}

bool isClusterBudget(const json& obj) {
  return obj.is_object() && kindOf(obj) == "ClusterConnectionBudget" && apiVersionOf(obj).starts_with("poolguard.dev/");
}

bool isPolicy(const json& obj) {
  return obj.is_object() && kindOf(obj) == "ConnectionPoolPolicy" && apiVersionOf(obj).starts_with("poolguard.dev/");
}

bool isClusterPolicy(const json& obj) {
  return obj.is_object() && kindOf(obj) == policy::Policy::kClusterPolicyKind &&
         apiVersionOf(obj).starts_with("poolguard.dev/");
}

ObjectMeta decodeMeta(const json& obj, Diagnostics& d) {
  ObjectMeta m;
  At top = root(obj);
  for (const char* key : {"apiVersion", "kind"}) {
    At at = top.field(key);
    if (at.present() && !at.value->is_string()) typeError(at, d, "a string");
  }
  At meta = top.field("metadata");
  if (!expectObject(meta, d)) return m;
  m.name = readString(meta.field("name"), d).value_or("");
  readString(meta.field("generateName"), d);
  m.namespace_ = readString(meta.field("namespace"), d).value_or("");
  m.uid = readString(meta.field("uid"), d).value_or("");
  m.resourceVersion = readString(meta.field("resourceVersion"), d).value_or("");
  m.creationTimestamp = readString(meta.field("creationTimestamp"), d).value_or("");
  m.deletionTimestamp = readString(meta.field("deletionTimestamp"), d).value_or("");
  if (At f = meta.field("finalizers"); f.present()) {
    if (!f.value->is_array()) {
      typeError(f, d, "a list");
    } else {
      for (size_t i = 0; i < f.value->size(); ++i) {
        if (auto name = readString(f.item(i), d)) m.finalizers.push_back(*name);
      }
    }
  }
  m.generation =
      readInteger(meta.field("generation"), d, 0, std::numeric_limits<int64_t>::max(), "an integer").value_or(0);
  m.labels = readStringMap(meta.field("labels"), d);
  m.annotations = readStringMap(meta.field("annotations"), d);
  return m;
}

Workload decodeWorkload(const json& obj, Diagnostics& d) {
  Workload w;
  w.kind = workloadKindOf(obj).value_or(policy::WorkloadKind::kDeployment);
  w.meta = decodeMeta(obj, d);
  At spec = root(obj).field("spec");
  if (!expectObject(spec, d)) return w;
  using policy::WorkloadKind;
  if (w.kind == WorkloadKind::kDeployment || w.kind == WorkloadKind::kStatefulSet || w.kind == WorkloadKind::kRollout)
    w.replicas = readInt32(spec.field("replicas"), d, 0);
  if (w.kind == WorkloadKind::kDeployment || w.kind == WorkloadKind::kDaemonSet) {
    At strategy = spec.field(w.kind == WorkloadKind::kDeployment ? "strategy" : "updateStrategy");
    if (expectObject(strategy, d)) {
      w.strategyType = readString(strategy.field("type"), d).value_or("");
      At rolling = strategy.field("rollingUpdate");
      if (expectObject(rolling, d)) w.maxSurge = readIntOrPercent(rolling.field("maxSurge"), d);
    }
  }
  if (w.kind == WorkloadKind::kRollout) {
    if (At ref = spec.field("workloadRef"); ref.present() && expectObject(ref, d)) {
      w.workloadRefKind = readString(ref.field("kind"), d).value_or("");
      w.workloadRefName = readString(ref.field("name"), d).value_or("");
    }
    At strategy = spec.field("strategy");
    if (expectObject(strategy, d)) {
      At canary = strategy.field("canary");
      if (strategy.field("blueGreen").present()) {
        w.strategyType = "BlueGreen";
      } else if (expectObject(canary, d)) {
        w.strategyType = canary.field("trafficRouting").present() ? "CanaryTrafficRouting" : "Canary";
        w.maxSurge = readIntOrPercent(canary.field("maxSurge"), d);
      }
    }
  }
  if (w.kind == WorkloadKind::kDaemonSet) {
    At status = root(obj).field("status");
    if (expectObject(status, d)) w.desiredNumberScheduled = readInt32(status.field("desiredNumberScheduled"), d, 0);
  }
  if (w.kind == WorkloadKind::kJob) {
    w.parallelism = readInt32(spec.field("parallelism"), d, 0);
    w.completions = readInt32(spec.field("completions"), d, 0);
    const std::string replacement = readString(spec.field("podReplacementPolicy"), d).value_or("");
    w.replacesOnlyFailedPods =
        replacement == "Failed" || (replacement.empty() && spec.field("podFailurePolicy").present());
    for (const At& ref : objectItems(root(obj).field("metadata").field("ownerReferences"), d)) {
      if (readString(ref.field("kind"), d).value_or("") == "CronJob" && readBool(ref.field("controller"), d) == true)
        w.cronJobRun = true;
    }
    At status = root(obj).field("status");
    if (expectObject(status, d)) {
      for (const At& c : objectItems(status.field("conditions"), d)) {
        const std::string type = readString(c.field("type"), d).value_or("");
        if ((type == "Complete" || type == "Failed") && readString(c.field("status"), d).value_or("") == "True")
          w.finished = true;
      }
    }
  }
  At tmpl = spec.field("template");
  if (w.kind == WorkloadKind::kCronJob) {
    w.concurrencyPolicy = readString(spec.field("concurrencyPolicy"), d).value_or("");
    w.suspended = readBool(spec.field("suspend"), d).value_or(false);
    At status = root(obj).field("status");
    if (expectObject(status, d)) w.activeRuns = static_cast<int32_t>(objectItems(status.field("active"), d).size());
    At job = spec.field("jobTemplate");
    if (!expectObject(job, d)) return w;
    At jobSpec = job.field("spec");
    if (!expectObject(jobSpec, d)) return w;
    w.parallelism = readInt32(jobSpec.field("parallelism"), d, 0);
    w.completions = readInt32(jobSpec.field("completions"), d, 0);
    tmpl = jobSpec.field("template");
  }
  if (!expectObject(tmpl, d)) return w;
  At tmplMeta = tmpl.field("metadata");
  if (expectObject(tmplMeta, d)) w.templateAnnotations = readStringMap(tmplMeta.field("annotations"), d);
  At podSpec = tmpl.field("spec");
  if (!expectObject(podSpec, d)) return w;
  // The renderer reads each container's name, env (name, value) and envFrom (all of it: see EnvFromSource).
  auto readRef = [&](const At& at) -> std::optional<EnvFromRef> {
    if (!at.present() || !expectObject(at, d)) return std::nullopt;
    EnvFromRef ref;
    ref.name = readString(at.field("name"), d).value_or("");
    ref.optional = readBool(at.field("optional"), d);
    return ref;
  };
  for (const At& c : objectItems(podSpec.field("containers"), d)) {
    Container container;
    container.name = readString(c.field("name"), d).value_or("");
    for (const At& e : objectItems(c.field("env"), d)) {
      EnvVar var;
      var.name = readString(e.field("name"), d).value_or("");
      var.value = readString(e.field("value"), d).value_or("");
      var.valueFrom = e.field("valueFrom").present();
      container.env.push_back(std::move(var));
    }
    for (const At& source : objectItems(c.field("envFrom"), d)) {
      EnvFromSource from;
      from.prefix = readString(source.field("prefix"), d).value_or("");
      from.configMapRef = readRef(source.field("configMapRef"));
      from.secretRef = readRef(source.field("secretRef"));
      container.envFrom.push_back(std::move(from));
    }
    w.containers.push_back(std::move(container));
  }
  return w;
}

const Container* Workload::container(const std::string& name) const {
  for (const auto& c : containers) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

bool Workload::sameDecisionFields(const Workload& o) const {
  auto sameMeta = [](const ObjectMeta& a, const ObjectMeta& b) {
    return a.name == b.name && a.namespace_ == b.namespace_ && a.uid == b.uid &&
           a.creationTimestamp == b.creationTimestamp && a.deletionTimestamp == b.deletionTimestamp &&
           a.labels == b.labels && a.annotations == b.annotations;
  };
  return kind == o.kind && sameMeta(meta, o.meta) && replicas == o.replicas && strategyType == o.strategyType &&
         maxSurge == o.maxSurge && desiredNumberScheduled == o.desiredNumberScheduled &&
         concurrencyPolicy == o.concurrencyPolicy && suspended == o.suspended && parallelism == o.parallelism &&
         completions == o.completions && activeRuns == o.activeRuns && cronJobRun == o.cronJobRun &&
         finished == o.finished && replacesOnlyFailedPods == o.replacesOnlyFailedPods &&
         workloadRefKind == o.workloadRefKind && workloadRefName == o.workloadRefName &&
         templateAnnotations == o.templateAnnotations && containers == o.containers;
}

Hpa decodeHpa(const json& obj, Diagnostics& d) {
  Hpa h;
  h.meta = decodeMeta(obj, d);
  At spec = root(obj).field("spec");
  if (!expectObject(spec, d)) return h;
  At ref = spec.field("scaleTargetRef");
  if (expectObject(ref, d)) {
    h.targetApiVersion = readString(ref.field("apiVersion"), d).value_or("");
    h.targetKind = readString(ref.field("kind"), d).value_or("");
    h.targetName = readString(ref.field("name"), d).value_or("");
  }
  readInt32(spec.field("minReplicas"), d, 0);
  h.maxReplicas = readInt32(spec.field("maxReplicas"), d, 1);
  return h;
}

ConfigMap decodeConfigMap(const json& obj, Diagnostics& d) {
  ConfigMap c;
  c.meta = decodeMeta(obj, d);
  c.data = readStringMap(root(obj).field("data"), d);
  return c;
}

PolicyObject decodePolicy(const json& obj) {
  PolicyObject p;
  Diagnostics ignored;  // the API server validated the object; policy::fromJson reports what the spec breaks
  p.meta = decodeMeta(obj, ignored);
  p.cluster = isClusterPolicy(obj);
  auto parsed = policy::fromJson(obj);
  if (parsed.ok()) {
    p.parsed = std::make_shared<const policy::Policy>(std::move(parsed).value());
  } else {
    p.invalidMessage = parsed.error().message();
  }
  if (auto it = obj.find("status"); it != obj.end() && it->is_object()) p.status = *it;
  return p;
}

BudgetObject decodeBudget(const json& obj) {
  BudgetObject b;
  Diagnostics ignored;
  b.meta = decodeMeta(obj, ignored);
  auto parsed = policy::budgetFromJson(obj);
  if (parsed.ok()) {
    b.parsed = std::move(parsed).value();
  } else {
    b.invalidMessage = parsed.error().message();
  }
  if (auto it = obj.find("status"); it != obj.end() && it->is_object()) b.status = *it;
  return b;
}

json referenceTo(const kube::Object& o, const std::string& apiVersion, const std::string& kind) {
  json meta = {{"name", o.meta.name}};
  if (!o.meta.namespace_.empty()) meta["namespace"] = o.meta.namespace_;
  if (!o.meta.uid.empty()) meta["uid"] = o.meta.uid;
  if (!o.meta.resourceVersion.empty()) meta["resourceVersion"] = o.meta.resourceVersion;
  return {{"apiVersion", apiVersion}, {"kind", kind}, {"metadata", std::move(meta)}};
}

}  // namespace poolguard::model
