#include "controller/reconciler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>

#include "budget/budget.h"
#include "controller/status.h"
#include "policy/parse.h"
#include "render/workload.h"
#include "runtime/event_recorder.h"
#include "usage/checker.h"
#include "usage/grant.h"

namespace poolguard::controller {
namespace {

using policy::WorkloadKind;

const kube::Resource& resourceOf(WorkloadKind kind) {
  static const kube::Resource deployments = kube::resources::deployments();
  static const kube::Resource statefulSets = kube::resources::statefulSets();
  return kind == WorkloadKind::kDeployment ? deployments : statefulSets;
}

std::map<std::string, std::string> labelsOf(const json& obj) {
  std::map<std::string, std::string> out;
  const auto& meta = obj.value("metadata", json::object());
  if (meta.contains("labels") && meta["labels"].is_object()) {
    for (const auto& [k, v] : meta["labels"].items()) {
      if (v.is_string()) out[k] = v.get<std::string>();
    }
  }
  return out;
}

std::string annotationOf(const json& obj, const std::string& key) {
  const auto& meta = obj.value("metadata", json::object());
  if (!meta.contains("annotations") || !meta["annotations"].is_object()) return "";
  return meta["annotations"].value(key, "");
}

std::string nameOf(const json& obj) { return obj["metadata"].value("name", ""); }
std::string namespaceOf(const json& obj) { return obj["metadata"].value("namespace", ""); }

std::string summarizeDifferences(const std::vector<std::string>& differences) {
  std::string out;
  for (size_t i = 0; i < differences.size() && i < 8; ++i) out += (i ? "; " : "") + differences[i];
  if (differences.size() > 8) out += "; and " + std::to_string(differences.size() - 8) + " more";
  return out;
}

bool hasFinalizer(const json& obj) {
  const auto& meta = obj["metadata"];
  if (!meta.contains("finalizers")) return false;
  for (const auto& f : meta["finalizers"]) {
    if (f.is_string() && f.get<std::string>() == kFinalizer) return true;
  }
  return false;
}

}  // namespace

Reconciler::Reconciler(kube::Client& client, Caches caches, const Clock& clock, runtime::EventRecorder* events,
                       ControllerMetrics* metrics, usage::Checker* usage)
    : client_(client), caches_(caches), clock_(clock), events_(events), metrics_(metrics), usage_(usage) {}

Reconciler::~Reconciler() = default;

runtime::Store* Reconciler::storeFor(WorkloadKind kind) const {
  return kind == WorkloadKind::kDeployment ? caches_.deployments : caches_.statefulSets;
}

std::vector<std::string> Reconciler::policiesInNamespace(const std::string& ns) const {
  std::vector<std::string> keys;
  for (const auto& p : caches_.policies->listInNamespace(ns)) keys.push_back(runtime::objectKey(*p));
  return keys;
}

Reconciler::ParsedPolicy Reconciler::parse(const json& obj) const {
  const std::string key = runtime::objectKey(obj);
  const std::string rv = obj["metadata"].value("resourceVersion", "");
  {
    std::lock_guard l(parsedMu_);
    auto it = parsed_.find(key);
    if (it != parsed_.end() && !rv.empty() && it->second.resourceVersion == rv) return it->second;
  }
  ParsedPolicy p{rv, nullptr, ""};
  auto r = policy::fromJson(obj);
  if (r.ok()) {
    p.policy = std::make_shared<const policy::Policy>(std::move(r).value());
  } else {
    p.error = r.error().message();
  }
  std::lock_guard l(parsedMu_);
  parsed_[key] = p;
  return p;
}

Reconciler::PolicyEntry Reconciler::entryFor(const runtime::ObjectPtr& obj) const {
  return PolicyEntry{obj, parse(*obj).policy, (*obj)["metadata"].contains("deletionTimestamp")};
}

std::vector<Reconciler::PolicyEntry> Reconciler::candidatePolicies(const std::string& ns) const {
  std::vector<PolicyEntry> out;
  for (const auto& obj : caches_.policies->listInNamespace(ns)) out.push_back(entryFor(obj));
  return out;
}

std::vector<Reconciler::PolicyEntry> Reconciler::allPolicies() const {
  std::vector<PolicyEntry> out;
  std::set<std::string> live;
  for (const auto& obj : caches_.policies->list()) {
    out.push_back(entryFor(obj));
    live.insert(runtime::objectKey(*obj));
  }
  std::lock_guard l(parsedMu_);  // forget the parses of deleted policies
  std::erase_if(parsed_, [&](const auto& kv) { return !live.count(kv.first); });
  return out;
}

// The name of the policy that governs the workload among `candidates` (valid, not being deleted); "" if none.
std::string Reconciler::governingPolicy(WorkloadKind kind, const json& workload,
                                        const std::vector<PolicyEntry>& candidates) const {
  std::vector<const policy::Policy*> selecting;
  auto labels = labelsOf(workload);
  std::string ns = namespaceOf(workload);
  for (const auto& c : candidates) {
    if (c.deleting || !c.parsed) continue;
    if (selects(*c.parsed, kind, ns, labels)) selecting.push_back(&*c.parsed);
  }
  int w = winner(selecting);
  return w < 0 ? "" : selecting[static_cast<size_t>(w)]->name;
}

std::optional<int32_t> Reconciler::discoveredMaxConnections(const std::string& database) const {
  std::lock_guard l(mu_);
  auto it = serverMaxConnections_.find(database);
  if (it == serverMaxConnections_.end()) return std::nullopt;
  return it->second;
}

Status Reconciler::ensureFinalizer(const json& obj) {
  if (hasFinalizer(obj)) return okStatus();
  const auto& meta = obj["metadata"];
  json patch = json::array();
  patch.push_back(
      {{"op", "test"}, {"path", "/metadata/resourceVersion"}, {"value", meta.value("resourceVersion", "")}});
  if (meta.contains("finalizers")) {
    patch.push_back({{"op", "add"}, {"path", "/metadata/finalizers/-"}, {"value", kFinalizer}});
  } else {
    patch.push_back({{"op", "add"}, {"path", "/metadata/finalizers"}, {"value", json::array({kFinalizer})}});
  }
  auto r = client_.patch(kube::resources::connectionPoolPolicies(), namespaceOf(obj), nameOf(obj),
                         kube::PatchType::kJson, patch);
  if (!r.ok()) return r.error();
  return okStatus();
}

Status Reconciler::removeFinalizer(const json& obj) {
  const auto& meta = obj["metadata"];
  if (!meta.contains("finalizers")) return okStatus();
  int index = -1;
  for (size_t i = 0; i < meta["finalizers"].size(); ++i) {
    if (meta["finalizers"][i] == kFinalizer) index = static_cast<int>(i);
  }
  if (index < 0) return okStatus();
  json patch = json::array(
      {{{"op", "test"}, {"path", "/metadata/resourceVersion"}, {"value", meta.value("resourceVersion", "")}},
       {{"op", "remove"}, {"path", "/metadata/finalizers/" + std::to_string(index)}}});
  auto r = client_.patch(kube::resources::connectionPoolPolicies(), namespaceOf(obj), nameOf(obj),
                         kube::PatchType::kJson, patch);
  if (!r.ok() && r.error().code() != ErrorCode::kNotFound) return r.error();
  return okStatus();
}

Status Reconciler::cleanupWorkload(WorkloadKind kind, const std::string& ns, const std::string& name,
                                   const std::string& policyName) {
  // An apply that names only the object releases every field the manager owned; fields no other manager owns
  // are removed, so other managers' values stay.
  json body = {{"apiVersion", resourceOf(kind).apiVersion()},
               {"kind", resourceOf(kind).kind},
               {"metadata", {{"name", name}, {"namespace", ns}}}};
  kube::WriteOptions opts{kFieldManager, true, false, "", true};
  auto r = client_.apply(resourceOf(kind), ns, name, body, opts);
  bool ok = r.ok() || r.error().code() == ErrorCode::kNotFound;
  if (metrics_) metrics_->workloadWrite(policy::toString(kind), "cleanup", ok);
  if (!ok) return r.error();
  spdlog::info("removed poolguard settings from {} {}/{} (policy {})", policy::toString(kind), ns, name, policyName);
  for (const auto& cm : caches_.configMaps->listInNamespace(ns)) {
    const auto labels = labelsOf(*cm);
    if (nameOf(*cm) == render::configMapName(kind, name)) {
      auto del = client_.remove(kube::resources::configMaps(), ns, nameOf(*cm));
      if (!del.ok() && del.error().code() != ErrorCode::kNotFound) return del.error();
    }
  }
  return okStatus();
}

Result<ReconcileOutcome> Reconciler::finalize(const json& obj) {
  std::string ns = namespaceOf(obj);
  std::string name = nameOf(obj);
  if (!hasFinalizer(obj)) return ReconcileOutcome{};
  auto candidates = candidatePolicies(ns);
  ReconcileOutcome outcome;
  std::set<std::string> handedOverConfigMaps;
  for (WorkloadKind kind : {WorkloadKind::kDeployment, WorkloadKind::kStatefulSet}) {
    for (const auto& w : storeFor(kind)->listInNamespace(ns)) {
      if (annotationOf(*w, kPolicyAnnotation) != name) continue;
      // Another policy taking the workload over writes its own settings over ours: no cleanup, or we would
      // remove what it is about to own under the same field manager.
      std::string next = governingPolicy(kind, *w, candidates);
      if (!next.empty()) {
        outcome.alsoEnqueue.push_back(runtime::objectKey(ns, next));
        handedOverConfigMaps.insert(render::configMapName(kind, nameOf(*w)));
        continue;
      }
      auto st = cleanupWorkload(kind, ns, nameOf(*w), name);
      if (!st.ok()) return st.error();
    }
  }
  for (const auto& cm : caches_.configMaps->listInNamespace(ns)) {
    auto labels = labelsOf(*cm);
    if (labels[render::kPolicyLabel] != name) continue;
    // The ConfigMap of a workload another policy takes over is relabelled and rewritten by that policy; every
    // other ConfigMap of this policy goes.
    if (handedOverConfigMaps.count(nameOf(*cm))) continue;
    auto del = client_.remove(kube::resources::configMaps(), ns, nameOf(*cm));
    if (!del.ok() && del.error().code() != ErrorCode::kNotFound) return del.error();
  }
  if (usage_) usage_->forget(ns, name);
  if (metrics_) {
    metrics_->forgetPolicy(ns, name);
    // The database's totals go with the last policy that names it.
    if (auto mine = parse(obj).policy) {
      bool named = false;
      for (const auto& e : allPolicies()) {
        if (e.parsed && !e.deleting && e.parsed->spec.database.name == mine->spec.database.name) named = true;
      }
      if (!named) metrics_->forgetDatabase(mine->spec.database.name);
    }
  }
  auto st = removeFinalizer(obj);
  if (!st.ok()) return st.error();
  spdlog::info("policy {}/{} deleted: its settings were removed", ns, name);
  return outcome;
}

Status Reconciler::writeStatus(const std::string& key, const json& obj, const json& status) {
  json body = {{"apiVersion", "poolguard.dev/v1alpha1"},
               {"kind", "ConnectionPoolPolicy"},
               {"metadata", {{"name", nameOf(obj)}, {"namespace", namespaceOf(obj)}}},
               {"status", status}};
  kube::WriteOptions opts{kFieldManager, true, false, "status", true};
  auto r = client_.apply(kube::resources::connectionPoolPolicies(), namespaceOf(obj), nameOf(obj), body, opts);
  if (!r.ok()) return r.error();
  std::lock_guard l(mu_);
  lastWrittenStatus_[key] = status;
  return okStatus();
}

json Reconciler::statusBaseline(const std::string& key, const json& cached) const {
  std::lock_guard l(mu_);
  auto it = lastWrittenStatus_.find(key);
  if (it == lastWrittenStatus_.end()) return cached;
  // A newer generation in the cache than in our last write means the spec moved on: trust the cache.
  if (cached.value("observedGeneration", int64_t{0}) > it->second.value("observedGeneration", int64_t{0}))
    return cached;
  return it->second;
}

std::string Reconciler::workloadKey(WorkloadKind kind, const json& w) {
  return std::string(policy::toString(kind)) + " " + namespaceOf(w) + "/" + nameOf(w);
}

void Reconciler::recordWrite(WorkloadKind kind, const json& w, const std::string& hash) {
  std::lock_guard l(mu_);
  auto& rec = writes_[workloadKey(kind, w)];
  rec.resourceVersionBefore = w["metadata"].value("resourceVersion", "");
  rec.hash = hash;
}

bool Reconciler::writtenAndCacheBehind(WorkloadKind kind, const json& w, const std::string& hash) const {
  std::lock_guard l(mu_);
  auto it = writes_.find(workloadKey(kind, w));
  return it != writes_.end() && it->second.hash == hash &&
         it->second.resourceVersionBefore == w["metadata"].value("resourceVersion", "");
}

std::optional<Reconciler::Contested> Reconciler::contestedBy(WorkloadKind kind, const json& w, const std::string& hash,
                                                             bool inSync, const json& policyObj) {
  if (inSync) return std::nullopt;
  const auto now = clock_.steadyNow();
  const std::string key = workloadKey(kind, w);
  std::unique_lock l(mu_);
  auto it = writes_.find(key);
  if (it == writes_.end()) return std::nullopt;
  auto& rec = it->second;
  if (rec.contest.backingOff(now)) return Contested{rec.contestMessage, rec.contest.until()};
  // Our settings landed (the cache moved past our write) and were changed again: a correction.
  if (rec.hash != hash || rec.resourceVersionBefore == w["metadata"].value("resourceVersion", "")) return std::nullopt;
  const auto backoff = rec.contest.onCorrection(now);
  if (!backoff) return std::nullopt;
  const int contests = rec.contest.contests();
  const auto until = rec.contest.until();
  l.unlock();
  // Name the other manager: the informer cache drops managedFields, so read the object once.
  std::string other = "another field manager";
  auto live = client_.get(resourceOf(kind), namespaceOf(w), nameOf(w));
  if (live.ok()) {
    std::string latest;
    for (const auto& mf : (*live)["metadata"].value("managedFields", json::array())) {
      std::string manager = mf.value("manager", "");
      if (manager.empty() || manager == kFieldManager) continue;
      // Only managers that own container fields of the pod template can be the ones changing the settings
      // (the controller manager, say, owns status and a revision annotation and is not a suspect).
      static const json::json_pointer containers("/fieldsV1/f:spec/f:template/f:spec/f:containers");
      if (!mf.is_object() || !mf.contains(containers)) continue;
      std::string time = mf.value("time", "");
      if (time >= latest) {
        latest = time;
        other = "field manager \"" + manager + "\"";
      }
    }
  }
  const ContestOptions limits;
  std::string message =
      other + " keeps changing the pool settings poolguard owns on " + key + " (" +
      std::to_string(limits.maxCorrections + 1) + " corrections within " + policy::formatDuration(limits.window) +
      "); poolguard stops correcting it for " + policy::formatDuration(*backoff) +
      (contests > 1 ? " (contest " + std::to_string(contests) + " in a row; the pause doubles up to " +
                          policy::formatDuration(limits.maxBackoff) + ")"
                    : "") +
      ": stop the other manager from setting these fields, or exclude the workload from the policy";
  spdlog::warn("{}: {}", key, message);
  if (events_) {
    json ref = {
        {"apiVersion", resourceOf(kind).apiVersion()},
        {"kind", resourceOf(kind).kind},
        {"metadata", {{"name", nameOf(w)}, {"namespace", namespaceOf(w)}, {"uid", w["metadata"].value("uid", "")}}}};
    events_->record(ref, runtime::EventType::kWarning, "FieldManagerConflict", message);
    // The policy's owner sees it too: `kubectl describe cpol` lists the Events of the policy, not of its workloads.
    events_->record(policyObj, runtime::EventType::kWarning, "FieldManagerConflict", message);
  }
  l.lock();
  rec.contestMessage = message;
  return Contested{message, until};
}

Result<ReconcileOutcome> Reconciler::reconcile(const std::string& key) {
  auto obj = caches_.policies->get(key);
  if (!obj) {
    auto [ns, name] = runtime::splitKey(key);
    if (usage_) usage_->forget(ns, name);
    if (metrics_) metrics_->forgetPolicy(ns, name);
    std::lock_guard l(mu_);
    lastWrittenStatus_.erase(key);
    lastUsage_.erase(key);
    return ReconcileOutcome{};
  }
  const json& policyObj = *obj;
  if (policyObj["metadata"].contains("deletionTimestamp")) return finalize(policyObj);

  auto fin = ensureFinalizer(policyObj);
  if (!fin.ok()) return fin.error();

  const std::string ns = namespaceOf(policyObj);
  const std::string name = nameOf(policyObj);
  const int64_t generation = policyObj["metadata"].value("generation", int64_t{0});
  const json storedStatus = statusBaseline(key, policyObj.value("status", json::object()));
  const auto previous = conditionsFromJson(storedStatus);
  const std::string now = formatRfc3339(clock_.now());

  const ParsedPolicy parsed = parse(policyObj);
  StatusInput in;
  in.generation = generation;
  if (!parsed.policy) {
    in.invalidMessage = parsed.error;
    json status = buildStatus(in, previous, now);
    auto conditions = conditionsFromJson(status);
    if (status != storedStatus) {
      auto st = writeStatus(key, policyObj, status);
      if (!st.ok()) return st.error();
      if (events_) recordTransitions(*events_, policyObj, previous, conditions);
    }
    if (metrics_) metrics_->setConditions(ns, name, conditions);
    if (usage_) usage_->forget(ns, name);  // no checks while invalid: release its connections
    return ReconcileOutcome{};             // a spec change brings it back
  }
  const policy::Policy& pol = *parsed.policy;
  if (pol.spec.suspend) {
    if (usage_) usage_->forget(ns, name);
    return ReconcileOutcome{};
  }

  ReconcileOutcome outcome;
  // Gather: every policy of the cluster (budget is per database across namespaces), this namespace's workloads.
  auto everyPolicy = allPolicies();
  std::map<std::string, std::vector<PolicyEntry>> policiesByNamespace;
  for (const auto& e : everyPolicy) policiesByNamespace[namespaceOf(*e.object)].push_back(e);
  const std::vector<PolicyEntry>& nsPolicies = policiesByNamespace[ns];
  // The index narrows by namespace, kind and name; model::Hpa::targets is the rule `poolguard plan` applies too
  // (an HPA of another API group's kind of the same name does not count). The record it returns is what the
  // budget reads, so each HPA is decoded once per lookup.
  auto hpaFor = [&](WorkloadKind kind, const json& w) -> std::optional<model::Hpa> {
    for (const auto& h : caches_.hpas->byIndex(
             runtime::kScaleTargetIndex, runtime::scaleTargetKey(namespaceOf(w), policy::toString(kind), nameOf(w)))) {
      model::Diagnostics ignored;
      model::Hpa decoded = model::decodeHpa(*h, ignored);
      if (decoded.targets(kind, namespaceOf(w), nameOf(w))) return decoded;
    }
    return std::nullopt;
  };

  // Live usage first, when due (otherwise the last report stands): a check reads the server's max_connections,
  // which the budget below needs when the spec does not declare it. The pools' size is the one last rendered
  // (status.budget.effectiveMaxSize), else the spec's.
  const int32_t lastRenderedMaxSize =
      storedStatus.value("budget", json::object()).value("effectiveMaxSize", pol.spec.pool.maxSize);
  std::vector<usage::GovernedWorkload> governed;
  for (WorkloadKind kind : pol.spec.kinds) {
    for (const auto& w : storeFor(kind)->listInNamespace(ns)) {
      if (!selects(pol, kind, ns, labelsOf(*w)) || governingPolicy(kind, *w, nsPolicies) != name) continue;
      auto hpa = hpaFor(kind, *w);
      auto facts = budget::workloadFacts(*w, hpa ? &*hpa : nullptr);
      governed.push_back(usage::GovernedWorkload{
          ns, nameOf(*w), render::expandApplicationName(pol.spec.delivery.applicationName, ns, nameOf(*w)),
          facts.podsNow, facts.podsMax, facts.surge, std::nullopt, lastRenderedMaxSize, pol.spec.pool.processesPerPod});
    }
  }
  spdlog::debug("reconcile {}: {} governed workloads, usage postgres={} prometheus={}", key, governed.size(),
                pol.spec.usage.postgres.has_value(), pol.spec.usage.prometheus.has_value());
  if (usage_ && (pol.spec.usage.postgres || pol.spec.usage.prometheus)) {
    const auto steadyNow = clock_.steadyNow();
    if (usage_->nextCheckDue(pol, steadyNow) <= steadyNow) {
      auto report = usage_->check(pol, governed, client_);
      spdlog::debug("usage check {}: {} {}", key, report.result.condition.reason, report.result.condition.message);
      // A Secret or URL poolguard may not use is the policy owner's to fix (an upgrade from before the grants
      // meets it first): an Event as well as the condition. The recorder folds repeats into one Event's count.
      for (const auto& e : report.errors) {
        if (events_ && (e.reason() == usage::grant_reasons::kCredentialsNotGranted ||
                        e.reason() == usage::grant_reasons::kPrometheusUrlNotAllowed)) {
          events_->record(policyObj, runtime::EventType::kWarning, e.reason(), e.message());
        }
      }
      std::lock_guard l(mu_);
      lastUsage_[key] = report.result;
      if (report.result.usage.serverMaxConnections) {
        serverMaxConnections_[pol.spec.database.name] = *report.result.usage.serverMaxConnections;
      }
    }
    auto next = usage_->requeueAfter(pol);
    outcome.requeueAfter = outcome.requeueAfter ? std::min(*outcome.requeueAfter, next) : next;
    std::lock_guard l(mu_);
    auto it = lastUsage_.find(key);
    if (it != lastUsage_.end()) in.usage = it->second;
  } else if (usage_) {
    usage_->forget(ns, name);  // its usage block was removed: release the connections only it used
    std::lock_guard l(mu_);
    lastUsage_.erase(key);
  }

  // Budget: the facts of every governed workload of every valid policy naming this database.
  std::vector<budget::PolicyInput> budgetInputs;
  for (const auto& e : everyPolicy) {
    if (!e.parsed || e.deleting || e.parsed->spec.database.name != pol.spec.database.name) continue;
    const auto& p = *e.parsed;
    budget::PolicyInput bi = budget::policyInput(p);
    const std::vector<PolicyEntry>& peers = policiesByNamespace[p.namespace_];
    for (WorkloadKind kind : p.spec.kinds) {
      for (const auto& w : storeFor(kind)->listInNamespace(p.namespace_)) {
        if (!selects(p, kind, p.namespace_, labelsOf(*w))) continue;
        if (governingPolicy(kind, *w, peers) != p.name) continue;
        auto hpa = hpaFor(kind, *w);
        bi.workloads.push_back(budget::workloadFacts(*w, hpa ? &*hpa : nullptr));
      }
    }
    budgetInputs.push_back(std::move(bi));
  }
  // Every policy of a database must see the same budget, whichever reconciles: the smallest declared
  // max_connections and the largest reserve win (as in `poolguard plan`); the server's value when none declares.
  std::optional<int32_t> maxConnections;
  int32_t reserved = pol.spec.database.reservedConnections;
  for (const auto& e : everyPolicy) {
    if (!e.parsed || e.deleting || e.parsed->spec.database.name != pol.spec.database.name) continue;
    const auto& d = e.parsed->spec.database;
    if (d.maxConnections && (!maxConnections || *d.maxConnections < *maxConnections)) maxConnections = d.maxConnections;
    reserved = std::max(reserved, d.reservedConnections);
  }
  if (!maxConnections) maxConnections = discoveredMaxConnections(pol.spec.database.name);
  budget::DatabaseBudget db = budget::computeDatabase(pol.spec.database.name, maxConnections, reserved, budgetInputs);
  const budget::PolicyBudget* mine = db.find(ns, name);
  int32_t effectiveMaxSize = mine ? mine->effectiveMaxSize : pol.spec.pool.maxSize;

  // Decide and write, workload by workload.
  in.policyName = name;
  in.mode = pol.spec.mode;
  in.onExceeded = pol.spec.budget.onExceeded;
  in.budget.database = db.database;
  in.budget.maxConnections = db.maxConnections;
  in.budget.reservedConnections = db.reservedConnections;
  in.budget.available = db.available;
  in.budget.steadyState = db.steadyState;
  in.budget.worstCase = db.worstCase;
  in.budget.unclampedWorstCase = db.unclampedWorstCase;
  in.budget.effectiveMaxSize = effectiveMaxSize;
  if (mine) {
    in.budget.policySteadyState = mine->steadyState;
    in.budget.policyWorstCase = mine->worstCase;
    in.budget.clamped = mine->clamped;
  }
  std::set<std::pair<WorkloadKind, std::string>> governedNames;
  std::set<std::string> wantedConfigMaps;  // the ConfigMaps the governed workloads' settings are delivered by
  int writeFailures = 0;
  render::RenderOptions ropts;
  ropts.effectiveMaxSize = effectiveMaxSize;

  for (WorkloadKind kind : pol.spec.kinds) {
    for (const auto& w : storeFor(kind)->listInNamespace(ns)) {
      if (!selects(pol, kind, ns, labelsOf(*w))) continue;
      WorkloadStatus ws;
      ws.kind = kind;
      ws.name = nameOf(*w);
      auto hpa = hpaFor(kind, *w);
      auto facts = budget::workloadFacts(*w, hpa ? &*hpa : nullptr);
      ws.replicas = facts.podsNow;
      ws.maxReplicas = facts.podsMax;
      ws.maxSize = effectiveMaxSize;
      std::string winnerName = governingPolicy(kind, *w, nsPolicies);
      if (winnerName != name) {
        ws.state = WorkloadState::kConflicted;
        ws.message = "governed by policy " + winnerName + " (higher priority, or older at equal priority)";
        in.workloads.push_back(std::move(ws));
        continue;
      }
      governedNames.insert({kind, ws.name});
      auto desired = render::renderWorkload(pol, *w, ropts);
      if (!desired.ok()) {
        ws.state = WorkloadState::kFailed;
        ws.message = desired.error().message();
        in.workloads.push_back(std::move(ws));
        continue;
      }
      ws.settingsHash = desired->settings.hash;
      if (desired->configMap) wantedConfigMaps.insert((*desired->configMap)["metadata"].value("name", ""));
      // The workload and its ConfigMap are compared apart, so only the one that differs is written: comparing
      // against the desired ConfigMap leaves the workload's own differences.
      std::optional<json> liveConfigMap;
      if (desired->configMap) {
        if (auto cm = caches_.configMaps->get(ns, (*desired->configMap)["metadata"].value("name", "")))
          liveConfigMap = *cm;
      }
      auto diff = render::compare(*w, liveConfigMap, *desired);
      auto workloadDiff = render::compare(*w, desired->configMap, *desired);
      bool workloadInSync = workloadDiff.inSync();
      bool configMapInSync = diff.differences.size() == workloadDiff.differences.size();
      std::string summary = summarizeDifferences(diff.differences);
      if (workloadInSync && configMapInSync) {
        ws.state = WorkloadState::kApplied;
      } else if (pol.spec.mode == policy::Mode::kAudit) {
        ws.state = WorkloadState::kDrifted;
        ws.message = summary;
      } else if (auto contested = contestedBy(kind, *w, desired->settings.hash, workloadInSync, policyObj); contested) {
        // Another manager keeps undoing our settings: stop answering every change (no write war), say so.
        ws.state = WorkloadState::kFailed;
        ws.message = contested->message;
        auto retry =
            std::max(std::chrono::milliseconds(1000),
                     std::chrono::duration_cast<std::chrono::milliseconds>(contested->until - clock_.steadyNow()));
        outcome.requeueAfter = outcome.requeueAfter ? std::min(*outcome.requeueAfter, retry) : retry;
      } else if (writtenAndCacheBehind(kind, *w, desired->settings.hash) && configMapInSync) {
        ws.state = WorkloadState::kApplied;  // our last apply has not reached the cache yet
      } else {
        Status written = okStatus();
        if (!configMapInSync) {
          const json& cm = *desired->configMap;
          auto r = client_.apply(kube::resources::configMaps(), ns, cm["metadata"].value("name", ""), cm,
                                 {kFieldManager, true, false, "", true});
          if (metrics_) metrics_->workloadWrite("ConfigMap", "apply", r.ok());
          if (!r.ok()) written = r.error();
        }
        if (written.ok() && !workloadInSync) {
          auto r = client_.apply(resourceOf(kind), ns, ws.name, desired->apply, {kFieldManager, true, false, "", true});
          if (metrics_) metrics_->workloadWrite(policy::toString(kind), "apply", r.ok());
          if (!r.ok()) written = r.error();
          if (r.ok()) recordWrite(kind, *w, desired->settings.hash);
        }
        if (written.ok()) {
          ws.state = WorkloadState::kApplied;
          spdlog::info("applied pool settings to {} {}/{} (policy {}): {}", policy::toString(kind), ns, ws.name, name,
                       summary);
        } else {
          ++writeFailures;
          ws.state = WorkloadState::kFailed;
          ws.message = "apply failed: " + written.error().message();
          spdlog::warn("applying pool settings to {} {}/{} failed: {}", policy::toString(kind), ns, ws.name,
                       written.error().message());
        }
      }
      in.workloads.push_back(std::move(ws));
    }
  }

  // A governed workload now given its settings by Env keeps no ConfigMap of this policy (a delivery switch). Only
  // once the workload's apply went through: until then the pods still read the ConfigMap.
  if (pol.spec.mode == policy::Mode::kEnforce && writeFailures == 0) {
    for (const auto& [kind, workloadName] : governedNames) {
      const std::string cmName = render::configMapName(kind, workloadName);
      if (wantedConfigMaps.count(cmName)) continue;
      auto cm = caches_.configMaps->get(ns, cmName);
      if (!cm || labelsOf(*cm)[render::kPolicyLabel] != name) continue;
      auto del = client_.remove(kube::resources::configMaps(), ns, cmName);
      if (metrics_) metrics_->workloadWrite("ConfigMap", "delete", del.ok());
      if (!del.ok() && del.error().code() != ErrorCode::kNotFound) {
        spdlog::warn("{}: deleting ConfigMap {}/{} after a delivery change failed: {}", key, ns, cmName,
                     del.error().message());
        ++writeFailures;
      } else {
        spdlog::info("deleted ConfigMap {}/{}: {} {} now gets its settings from env (policy {})", ns, cmName,
                     policy::toString(kind), workloadName, name);
      }
    }
  }

  // Workloads this policy wrote that it no longer governs (they left the selector): give back its fields,
  // unless another policy now governs them and will write its own.
  for (WorkloadKind kind : {WorkloadKind::kDeployment, WorkloadKind::kStatefulSet}) {
    for (const auto& w : storeFor(kind)->listInNamespace(ns)) {
      if (annotationOf(*w, kPolicyAnnotation) != name || governedNames.count({kind, nameOf(*w)})) continue;
      if (!governingPolicy(kind, *w, nsPolicies).empty()) continue;
      if (pol.spec.mode == policy::Mode::kAudit) continue;
      // A failed cleanup is retried with the queue's back-off, but the status computed above is still written.
      auto st = cleanupWorkload(kind, ns, nameOf(*w), name);
      if (!st.ok()) {
        spdlog::warn("{}: releasing {} {}/{} failed: {}", key, policy::toString(kind), ns, nameOf(*w),
                     st.error().message());
        ++writeFailures;
      }
    }
  }

  json status = buildStatus(in, previous, now);
  auto conditions = conditionsFromJson(status);
  if (status != storedStatus) {
    auto st = writeStatus(key, policyObj, status);
    if (!st.ok()) return st.error();
    if (events_) recordTransitions(*events_, policyObj, previous, conditions);
  }
  if (metrics_) {
    metrics_->setConditions(ns, name, conditions);
    const auto& counts = status["workloads"];
    metrics_->setWorkloads(ns, name, counts.value("matched", 0), counts.value("applied", 0), counts.value("drifted", 0),
                           counts.value("conflicted", 0));
    metrics_->setDatabase(db.database, db.steadyState, db.worstCase,
                          db.available ? std::optional<int64_t>(*db.available) : std::nullopt);
  }

  // Policies sharing the database report its totals: tell them when the totals moved.
  int64_t storedWorst = storedStatus.value("budget", json::object()).value("worstCase", int64_t{-1});
  if (storedWorst != db.worstCase) {
    for (const auto& e : everyPolicy) {
      if (!e.parsed || e.parsed->spec.database.name != pol.spec.database.name) continue;
      std::string k = runtime::objectKey(*e.object);
      if (k != key) outcome.alsoEnqueue.push_back(k);
    }
  }
  // A failed write is retried with the queue's backoff; the status already says what failed.
  // (A workload that cannot be rendered, say none of spec.containers exists in it, waits for a change instead.)
  if (writeFailures > 0) {
    return Error(ErrorCode::kUnavailable,
                 std::to_string(writeFailures) + " workload(s) of " + key + " could not be written");
  }
  return outcome;
}

}  // namespace poolguard::controller
