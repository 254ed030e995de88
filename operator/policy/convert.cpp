// Between the API's JSON form and the model. fromJson relies on validate() having accepted the object, so the
// conversion itself only reads well-typed, defaulted values.
#include <algorithm>

#include "policy/parse.h"

namespace poolguard::policy {
namespace {

template <typename Enum, size_t N>
Enum enumFrom(const std::string& s, const std::pair<const char*, Enum> (&table)[N]) {
  for (const auto& [name, value] : table) {
    if (s == name) return value;
  }
  return table[0].second;
}

constexpr std::pair<const char*, Mode> kModes[] = {{"Enforce", Mode::kEnforce}, {"Audit", Mode::kAudit}};
constexpr std::pair<const char*, Profile> kProfiles[] = {
    {"Generic", Profile::kGeneric},       {"SpringHikari", Profile::kSpringHikari},
    {"GoSQL", Profile::kGoSQL},           {"Pgxpool", Profile::kPgxpool},
    {"SQLAlchemy", Profile::kSQLAlchemy}, {"NodePostgres", Profile::kNodePostgres},
    {"PgBouncer", Profile::kPgBouncer}};
constexpr std::pair<const char*, DeliveryMethod> kMethods[] = {{"Env", DeliveryMethod::kEnv},
                                                               {"ConfigMap", DeliveryMethod::kConfigMap}};
constexpr std::pair<const char*, AdmissionMode> kAdmissionModes[] = {
    {"None", AdmissionMode::kNone}, {"Warn", AdmissionMode::kWarn}, {"Deny", AdmissionMode::kDeny}};
constexpr std::pair<const char*, OnExceeded> kOnExceeded[] = {{"Warn", OnExceeded::kWarn},
                                                              {"Clamp", OnExceeded::kClamp}};
constexpr std::pair<const char*, TerminatingPods> kTerminatingPods[] = {{"Ignore", TerminatingPods::kIgnore},
                                                                        {"Count", TerminatingPods::kCount}};
constexpr std::pair<const char*, SslMode> kSslModes[] = {{"verify-full", SslMode::kVerifyFull},
                                                         {"disable", SslMode::kDisable},
                                                         {"require", SslMode::kRequire},
                                                         {"verify-ca", SslMode::kVerifyCa}};

Millis millis(const json& obj, const char* key) {
  auto d = parseDuration(obj.at(key).get<std::string>());
  return d ? *d : Millis{0};
}

std::string str(const json& obj, const char* key, const std::string& fallback = "") {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : fallback;
}

LabelSelector selectorFrom(const json& j) {
  LabelSelector sel;
  if (auto it = j.find("matchLabels"); it != j.end()) {
    for (auto kv = it->begin(); kv != it->end(); ++kv) {
      if (kv->is_string()) sel.matchLabels[kv.key()] = kv->get<std::string>();
    }
  }
  if (auto it = j.find("matchExpressions"); it != j.end()) {
    for (const auto& e : *it) {
      LabelSelectorRequirement req{str(e, "key"), str(e, "operator"), {}};
      if (auto v = e.find("values"); v != e.end() && v->is_array()) {
        for (const auto& value : *v) req.values.push_back(value.get<std::string>());
      }
      sel.matchExpressions.push_back(std::move(req));
    }
  }
  return sel;
}

json selectorTo(const LabelSelector& sel) {
  json j = json::object();
  if (!sel.matchLabels.empty()) j["matchLabels"] = sel.matchLabels;
  if (!sel.matchExpressions.empty()) {
    json exprs = json::array();
    for (const auto& req : sel.matchExpressions) {
      json e = {{"key", req.key}, {"operator", req.op}};
      if (!req.values.empty()) e["values"] = req.values;
      exprs.push_back(std::move(e));
    }
    j["matchExpressions"] = std::move(exprs);
  }
  return j;
}

Usage usageFrom(const json& usage);

Spec specFrom(const json& s) {
  Spec spec;
  if (auto ns = s.find("namespaceSelector"); ns != s.end() && ns->is_object())
    spec.namespaceSelector = selectorFrom(*ns);
  spec.selector = selectorFrom(s.at("selector"));
  spec.kinds.clear();
  for (const auto& k : s.at("kinds"))
    spec.kinds.push_back(workloadKindNamed(k.get<std::string>()).value_or(WorkloadKind::kDeployment));
  if (auto it = s.find("containers"); it != s.end()) spec.containers = it->get<std::vector<std::string>>();
  spec.mode = enumFrom(s.at("mode").get<std::string>(), kModes);
  spec.priority = s.at("priority").get<int32_t>();
  spec.suspend = s.at("suspend").get<bool>();

  const json& pool = s.at("pool");
  spec.pool.maxSize = pool.at("maxSize").get<int32_t>();
  spec.pool.minIdle = pool.at("minIdle").get<int32_t>();
  spec.pool.acquireTimeout = millis(pool, "acquireTimeout");
  spec.pool.idleTimeout = millis(pool, "idleTimeout");
  spec.pool.maxLifetime = millis(pool, "maxLifetime");
  spec.pool.leakDetectionThreshold = millis(pool, "leakDetectionThreshold");
  spec.pool.processesPerPod = pool.at("processesPerPod").get<int32_t>();
  spec.pool.overheadPerPod = pool.at("overheadPerPod").get<int32_t>();
  if (pool.contains("idleInTransactionTimeout"))
    spec.pool.idleInTransactionTimeout = millis(pool, "idleInTransactionTimeout");

  spec.profile = enumFrom(s.at("profile").get<std::string>(), kProfiles);

  const json& delivery = s.at("delivery");
  spec.delivery.method = enumFrom(delivery.at("method").get<std::string>(), kMethods);
  if (auto it = delivery.find("envNames"); it != delivery.end()) {
    for (auto kv = it->begin(); kv != it->end(); ++kv) spec.delivery.envNames[kv.key()] = kv->get<std::string>();
  }
  spec.delivery.applicationName = delivery.at("applicationName").get<std::string>();

  spec.rollout.restartOnChange = s.at("rollout").at("restartOnChange").get<bool>();

  const json& db = s.at("database");
  spec.database.name = db.at("name").get<std::string>();
  if (auto it = db.find("maxConnections"); it != db.end()) spec.database.maxConnections = it->get<int32_t>();
  spec.database.reservedConnections = db.at("reservedConnections").get<int32_t>();

  const json& budget = s.at("budget");
  spec.budget.onExceeded = enumFrom(budget.at("onExceeded").get<std::string>(), kOnExceeded);
  spec.budget.weight = budget.at("weight").get<int32_t>();
  spec.budget.terminatingPods = enumFrom(budget.at("terminatingPods").get<std::string>(), kTerminatingPods);

  spec.usage = usageFrom(s.at("usage"));
  return spec;
}

Usage usageFrom(const json& usage) {
  Usage out;
  out.interval = millis(usage, "interval");
  if (auto it = usage.find("postgres"); it != usage.end()) {
    PostgresSource pg;
    pg.host = it->at("host").get<std::string>();
    pg.port = it->at("port").get<int32_t>();
    pg.database = it->at("database").get<std::string>();
    pg.sslMode = enumFrom(it->at("sslMode").get<std::string>(), kSslModes);
    const json& cred = it->at("credentialsSecretRef");
    pg.credentialsSecretRef = {cred.at("name").get<std::string>(), cred.at("usernameKey").get<std::string>(),
                               cred.at("passwordKey").get<std::string>()};
    if (auto ca = it->find("caSecretRef"); ca != it->end()) {
      pg.caSecretRef = SecretKeyRef{ca->at("name").get<std::string>(), ca->at("key").get<std::string>()};
    }
    out.postgres = std::move(pg);
  }
  if (auto it = usage.find("prometheus"); it != usage.end()) {
    out.prometheus =
        PrometheusSource{it->at("url").get<std::string>(), str(*it, "connectionsQuery"), str(*it, "pendingQuery")};
  }
  const json& thresholds = usage.at("thresholds");
  out.thresholds.saturationPercent = thresholds.at("saturationPercent").get<int32_t>();
  out.thresholds.idleInTransaction = millis(thresholds, "idleInTransaction");
  if (auto a = usage.find("actions"); a != usage.end()) {
    if (auto t = a->find("terminateLeaked"); t != a->end()) {
      TerminateLeaked tl;
      tl.enabled = t->at("enabled").get<bool>();
      if (t->contains("olderThan")) tl.olderThan = millis(*t, "olderThan");
      tl.maxPerCheck = t->at("maxPerCheck").get<int32_t>();
      out.actions.terminateLeaked = tl;
    }
  }
  return out;
}

// The API server's answer to an invalid object: `KIND "NAME" is invalid: FIELD: MESSAGE`, the causes in brackets
// when there are several, each cause also structured.
Error invalidObject(const std::string& kind, const std::string& name, const std::vector<FieldError>& problems) {
  std::string message = kind + " \"" + name + "\" is invalid: ";
  std::vector<ErrorCause> causes;
  if (problems.size() > 1) message += "[";
  for (size_t i = 0; i < problems.size(); ++i) {
    message += (i == 0 ? "" : problems.size() > 1 ? ", " : "; ") + toString(problems[i]);
    causes.push_back({problems[i].field, "FieldValueInvalid", problems[i].message});
  }
  if (problems.size() > 1) message += "]";
  return Error(ErrorCode::kInvalid, message).withReason("Invalid").withCauses(std::move(causes));
}

}  // namespace

Result<Policy> fromJson(const json& obj, std::vector<FieldError>* errors) {
  auto problems = validate(obj);
  if (errors != nullptr) *errors = problems;
  std::string name = obj.is_object() ? str(obj.value("metadata", json::object()), "name") : "";
  const std::string kind = obj.is_object() && obj.value("kind", json()) == Policy::kClusterPolicyKind
                               ? Policy::kClusterPolicyKind
                               : "ConnectionPoolPolicy";
  if (!problems.empty()) return invalidObject(kind, name, problems);
  try {
    json defaulted = applyDefaults(obj);
    Policy p;
    p.apiVersion = defaulted.at("apiVersion").get<std::string>();
    p.kind = defaulted.at("kind").get<std::string>();
    const json& meta = defaulted.at("metadata");
    p.name = str(meta, "name");
    p.namespace_ = str(meta, "namespace");
    p.uid = str(meta, "uid");
    if (auto g = meta.find("generation"); g != meta.end() && g->is_number_integer()) p.generation = g->get<int64_t>();
    p.creationTimestamp = str(meta, "creationTimestamp");
    p.spec = specFrom(defaulted.at("spec"));
    return p;
  } catch (const json::exception& e) {
    // validate() accepted the object, so this is a gap between the schema and the model, not bad input.
    return Error(ErrorCode::kInternal, kind + " \"" + name + "\": cannot convert: " + e.what());
  }
}

Result<ClusterBudget> budgetFromJson(const json& obj, std::vector<FieldError>* errors) {
  auto problems = validateBudget(obj);
  if (errors != nullptr) *errors = problems;
  std::string name = obj.is_object() ? str(obj.value("metadata", json::object()), "name") : "";
  if (!problems.empty()) return invalidObject("ClusterConnectionBudget", name, problems);
  try {
    json defaulted = applyBudgetDefaults(obj);
    ClusterBudget b;
    const json& meta = defaulted.at("metadata");
    b.database = str(meta, "name");
    b.uid = str(meta, "uid");
    if (auto g = meta.find("generation"); g != meta.end() && g->is_number_integer()) b.generation = g->get<int64_t>();
    const json spec = defaulted.value("spec", json::object());
    if (auto m = spec.find("maxConnections"); m != spec.end() && m->is_number_integer())
      b.maxConnections = m->get<int32_t>();
    if (auto r = spec.find("reservedConnections"); r != spec.end() && r->is_number_integer())
      b.reservedConnections = r->get<int32_t>();
    if (auto a = spec.find("allocations"); a != spec.end() && a->is_array()) {
      for (const auto& item : *a) {
        BudgetAllocation alloc;
        alloc.name = str(item, "name");
        alloc.namespaceSelector = selectorFrom(item.at("namespaceSelector"));
        alloc.maxConnections = item.at("maxConnections").get<int32_t>();
        b.allocations.push_back(std::move(alloc));
      }
    }
    b.admissionMode = enumFrom(spec.value("admission", json::object()).value("mode", "None"), kAdmissionModes);
    if (auto u = spec.find("usage"); u != spec.end() && u->is_object()) {
      Usage usage = usageFrom(*u);
      if (usage.postgres || usage.prometheus) b.usage = std::move(usage);
    }
    const json ceilings = spec.value("ceilings", json::object());
    if (auto m = ceilings.find("maxSize"); m != ceilings.end() && m->is_number_integer())
      b.ceilings.maxSize = m->get<int32_t>();
    b.ceilings.requireLeakDetection = ceilings.value("requireLeakDetection", false);
    return b;
  } catch (const json::exception& e) {
    return Error(ErrorCode::kInternal, "ClusterConnectionBudget \"" + name + "\": cannot convert: " + e.what());
  }
}

json toJson(const Policy& p) {
  json meta = json::object();
  if (!p.name.empty()) meta["name"] = p.name;
  if (!p.namespace_.empty()) meta["namespace"] = p.namespace_;
  if (!p.uid.empty()) meta["uid"] = p.uid;
  if (p.generation != 0) meta["generation"] = p.generation;
  if (!p.creationTimestamp.empty()) meta["creationTimestamp"] = p.creationTimestamp;

  const Spec& s = p.spec;
  json spec;
  if (s.namespaceSelector) spec["namespaceSelector"] = selectorTo(*s.namespaceSelector);
  spec["selector"] = selectorTo(s.selector);
  json kinds = json::array();
  for (auto k : s.kinds) kinds.push_back(toString(k));
  spec["kinds"] = kinds;
  if (!s.containers.empty()) spec["containers"] = s.containers;
  spec["mode"] = toString(s.mode);
  spec["priority"] = s.priority;
  spec["suspend"] = s.suspend;
  spec["pool"] = {
      {"maxSize", s.pool.maxSize},
      {"minIdle", s.pool.minIdle},
      {"acquireTimeout", formatDuration(s.pool.acquireTimeout)},
      {"idleTimeout", formatDuration(s.pool.idleTimeout)},
      {"maxLifetime", formatDuration(s.pool.maxLifetime)},
      {"leakDetectionThreshold", formatDuration(s.pool.leakDetectionThreshold)},
      {"processesPerPod", s.pool.processesPerPod},
      {"overheadPerPod", s.pool.overheadPerPod},
  };
  if (s.pool.idleInTransactionTimeout)
    spec["pool"]["idleInTransactionTimeout"] = formatDuration(*s.pool.idleInTransactionTimeout);
  spec["profile"] = toString(s.profile);
  json delivery = {{"method", toString(s.delivery.method)}, {"applicationName", s.delivery.applicationName}};
  if (!s.delivery.envNames.empty()) delivery["envNames"] = s.delivery.envNames;
  spec["delivery"] = delivery;
  spec["rollout"] = {{"restartOnChange", s.rollout.restartOnChange}};
  json db = {{"name", s.database.name}, {"reservedConnections", s.database.reservedConnections}};
  if (s.database.maxConnections) db["maxConnections"] = *s.database.maxConnections;
  spec["database"] = db;
  spec["budget"] = {{"onExceeded", toString(s.budget.onExceeded)},
                    {"weight", s.budget.weight},
                    {"terminatingPods", toString(s.budget.terminatingPods)}};
  json usage = {{"interval", formatDuration(s.usage.interval)},
                {"thresholds",
                 {{"saturationPercent", s.usage.thresholds.saturationPercent},
                  {"idleInTransaction", formatDuration(s.usage.thresholds.idleInTransaction)}}}};
  if (s.usage.postgres) {
    const auto& pg = *s.usage.postgres;
    json j = {{"host", pg.host},
              {"port", pg.port},
              {"database", pg.database},
              {"sslMode", toString(pg.sslMode)},
              {"credentialsSecretRef",
               {{"name", pg.credentialsSecretRef.name},
                {"usernameKey", pg.credentialsSecretRef.usernameKey},
                {"passwordKey", pg.credentialsSecretRef.passwordKey}}}};
    if (pg.caSecretRef) j["caSecretRef"] = {{"name", pg.caSecretRef->name}, {"key", pg.caSecretRef->key}};
    usage["postgres"] = j;
  }
  if (s.usage.prometheus) {
    json j = {{"url", s.usage.prometheus->url}};
    if (!s.usage.prometheus->connectionsQuery.empty()) j["connectionsQuery"] = s.usage.prometheus->connectionsQuery;
    if (!s.usage.prometheus->pendingQuery.empty()) j["pendingQuery"] = s.usage.prometheus->pendingQuery;
    usage["prometheus"] = j;
  }
  if (const auto& tl = s.usage.actions.terminateLeaked) {
    json t = {{"enabled", tl->enabled}, {"maxPerCheck", tl->maxPerCheck}};
    if (tl->olderThan) t["olderThan"] = formatDuration(*tl->olderThan);
    usage["actions"] = {{"terminateLeaked", t}};
  }
  spec["usage"] = usage;
  return json{{"apiVersion", p.apiVersion}, {"kind", p.kind}, {"metadata", meta}, {"spec", spec}};
}

}  // namespace poolguard::policy
