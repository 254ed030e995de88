#include "controller/reconciler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>

#include "budget/budget.h"
#include "controller/objects.h"
#include "controller/plan.h"
#include "controller/status.h"
#include "controller/usage_monitor.h"
#include "policy/parse.h"
#include "render/workload.h"
#include "runtime/event_recorder.h"

namespace poolguard::controller {
namespace {

using policy::WorkloadKind;

bool hasFinalizer(const kube::Object& obj) {
  const auto& f = obj.meta.finalizers;
  return std::find(f.begin(), f.end(), kFinalizer) != f.end();
}

std::shared_ptr<const model::PolicyObject> policyRecord(const runtime::ObjectPtr& p) {
  return runtime::recordAs<model::PolicyObject>(p);
}

}  // namespace

json policyReference(const model::PolicyObject& policy) {
  return model::referenceTo(policy, "poolguard.dev/v1alpha1", resourceOfPolicy(policy).kind);
}

Reconciler::Reconciler(kube::Client& client, Caches caches, const Clock& clock, runtime::EventRecorder* events,
                       ControllerMetrics* metrics, UsageMonitor* usage)
    : client_(client), caches_(caches), clock_(clock), events_(events), metrics_(metrics), usage_(usage) {}

Reconciler::~Reconciler() = default;

std::optional<std::string> rolloutCrdProblem(kube::Client& client) {
  auto crd = client.get(kube::resources::customResourceDefinitions(), "", "rollouts.argoproj.io");
  if (!crd.ok()) {
    return "the Rollout CRD could not be read to check that a server-side apply merges its containers by name (" +
           crd.error().message() + "; deploy/rbac grants get on customresourcedefinitions rollouts.argoproj.io)";
  }
  return render::containersMergeProblem(*crd, kube::resources::rollouts().version);
}

void Reconciler::watchRolloutCrd(std::optional<std::string> firstProblem) {
  std::lock_guard l(rolloutMu_);
  rolloutCrdWatched_ = true;
  rolloutProblem_ = std::move(firstProblem);
  rolloutCheckedAt_ = clock_.steadyNow();
}

std::optional<std::string> Reconciler::rolloutsProblem(bool fresh) const {
  std::lock_guard l(rolloutMu_);
  if (!rolloutCrdWatched_) return std::nullopt;
  const auto now = clock_.steadyNow();
  if (fresh || now - rolloutCheckedAt_ >= std::chrono::minutes(1)) {
    auto problem = rolloutCrdProblem(client_);
    if (problem != rolloutProblem_) {
      if (problem)
        spdlog::warn("Rollouts are counted and checked, not written: {}", *problem);
      else
        spdlog::info("Rollouts are written again: their CRD merges containers by name");
    }
    rolloutProblem_ = std::move(problem);
    rolloutCheckedAt_ = now;
  }
  return rolloutProblem_;
}

runtime::Store* Reconciler::storeFor(WorkloadKind kind) const {
  switch (kind) {
    case WorkloadKind::kStatefulSet:
      return caches_.statefulSets;
    case WorkloadKind::kDaemonSet:
      return caches_.daemonSets;
    case WorkloadKind::kJob:
      return caches_.jobs;
    case WorkloadKind::kCronJob:
      return caches_.cronJobs;
    case WorkloadKind::kRollout:
      return caches_.rollouts;
    case WorkloadKind::kDeployment:
      break;
  }
  return caches_.deployments;
}

std::vector<std::string> Reconciler::policiesInNamespace(const std::string& ns) const {
  std::vector<std::string> keys;
  for (const auto& p : caches_.policies->listInNamespace(ns)) keys.push_back(runtime::objectKey(*p));
  return keys;
}

std::vector<PolicyView> Reconciler::allPolicies() const {
  std::vector<PolicyView> out;
  for (const auto& obj : caches_.policies->list()) out.push_back(viewOf(policyRecord(obj)));
  if (caches_.clusterPolicies) {
    for (const auto& obj : caches_.clusterPolicies->list()) out.push_back(viewOf(policyRecord(obj)));
  }
  return out;
}

std::map<std::string, std::string> Reconciler::namespaceLabels(const std::string& ns) const {
  std::map<std::string, std::string> labels;
  if (caches_.namespaces) {
    if (auto n = caches_.namespaces->get(ns)) labels = n->meta.labels;
  }
  labels.emplace(model::kNamespaceNameLabel, ns);
  return labels;
}

std::vector<std::pair<WorkloadKind, runtime::ObjectPtr>> Reconciler::writtenByClusterPolicy(
    const std::string& name) const {
  std::vector<std::pair<WorkloadKind, runtime::ObjectPtr>> out;
  for (const auto& info : policy::kWorkloadKinds) {
    if (runtime::Store* store = storeFor(info.kind)) {
      for (auto& w : store->byIndex(kClusterPolicyIndex, name)) out.emplace_back(info.kind, std::move(w));
    }
  }
  return out;
}

std::vector<std::string> Reconciler::clusterPoliciesFor(const std::string& ns) const {
  std::vector<std::string> keys;
  if (!caches_.clusterPolicies) return keys;
  const auto labels = namespaceLabels(ns);
  for (const auto& o : caches_.clusterPolicies->list()) {
    const auto& p = runtime::recordAs<model::PolicyObject>(*o);
    if (p.parsed && p.parsed->spec.namespaceSelector && poolguard::matches(*p.parsed->spec.namespaceSelector, labels))
      keys.push_back(p.meta.name);
  }
  return keys;
}

std::vector<std::string> Reconciler::affectedByClusterPolicy(const kube::Object& obj) const {
  // Every cluster policy (one may win or lose workloads to it), and the policies of each namespace it may govern
  // or has written to (a namespaced policy that stopped selecting a workload holds it back while this one
  // governs it).
  std::vector<std::string> keys = allClusterPolicies();
  keys.push_back(obj.meta.name);
  std::set<std::string> namespaces;
  const auto& p = runtime::recordAs<model::PolicyObject>(obj);
  if (p.parsed && p.parsed->spec.namespaceSelector && caches_.namespaces) {
    for (const auto& n : caches_.namespaces->list()) {
      if (poolguard::matches(*p.parsed->spec.namespaceSelector, namespaceLabels(n->meta.name)))
        namespaces.insert(n->meta.name);
    }
  }
  for (const auto& [kind, w] : writtenByClusterPolicy(obj.meta.name)) namespaces.insert(w->meta.namespace_);
  for (const auto& ns : namespaces) {
    auto more = policiesInNamespace(ns);
    keys.insert(keys.end(), more.begin(), more.end());
  }
  return keys;
}

bool Reconciler::onlyTheBudgetReadsMaxConnections(const policy::Policy& pol, const Snapshot& s) const {
  if (!caches_.budgets || !usage_) return false;
  auto cached = caches_.budgets->get(pol.spec.database.name);
  if (!cached) return false;
  const auto& b = runtime::recordAs<model::BudgetObject>(*cached);
  if (!b.parsed || b.parsed->maxConnections || !b.parsed->usage || !b.parsed->usage->postgres) return false;
  if (usage_->serverMaxConnections(pol.spec.database.name) || usage_->latest(budgetUsageKey(b.meta.name), b.meta.uid))
    return false;
  for (const auto& v : s.policies) {
    if (v.parsed && v.parsed->spec.database.name == pol.spec.database.name && v.parsed->spec.database.maxConnections)
      return false;  // declared: the budget is known without the server
  }
  return true;
}

std::optional<usage::AnalysisResult> Reconciler::centralUsage(const policy::Policy& pol,
                                                              std::vector<usage::GovernedWorkload> workloads) const {
  if (!caches_.budgets || !usage_) return std::nullopt;
  auto cached = caches_.budgets->get(pol.spec.database.name);
  if (!cached) return std::nullopt;
  const auto& b = runtime::recordAs<model::BudgetObject>(*cached);
  if (!b.parsed || !b.parsed->usage) return std::nullopt;
  auto input = usage_->latestInput(budgetUsageKey(b.meta.name), b.meta.uid);
  if (!input) return std::nullopt;
  usage::AnalysisInput in = *input;
  in.workloads = std::move(workloads);
  in.declaredMaxConnections = pol.spec.database.maxConnections;
  in.declaredReservedConnections = pol.spec.database.reservedConnections;
  usage::AnalysisResult r = usage::analyze(in);
  r.condition.message = "from the check of ClusterConnectionBudget " + b.meta.name + ": " + r.condition.message;
  // The budget's check ends sessions with the operator's credentials: say here, to the policy's author, which of
  // its workloads' sessions it leaves alone and why (usage::ownsApplicationName).
  if (b.parsed->usage->postgres && b.parsed->usage->terminateOlderThan() && writesSettings(pol)) {
    std::vector<const usage::GovernedWorkload*> foreign;
    for (const auto& w : in.workloads) {
      if (!w.applicationName.empty() && !usage::ownsApplicationName(w)) foreign.push_back(&w);
    }
    if (!foreign.empty())
      r.condition.message += "; " + usage::foreignApplicationNamesMessage(foreign, pol.clusterScoped());
  }
  return r;
}

std::vector<std::string> Reconciler::allClusterPolicies() const {
  std::vector<std::string> keys;
  if (caches_.clusterPolicies) {
    for (const auto& o : caches_.clusterPolicies->list()) keys.push_back(o->meta.name);
  }
  return keys;
}

Status Reconciler::ensureFinalizer(const model::PolicyObject& obj) {
  if (hasFinalizer(obj)) return okStatus();
  const auto& meta = obj.meta;
  json patch = json::array();
  patch.push_back({{"op", "test"}, {"path", "/metadata/resourceVersion"}, {"value", meta.resourceVersion}});
  if (!meta.finalizers.empty()) {
    patch.push_back({{"op", "add"}, {"path", "/metadata/finalizers/-"}, {"value", kFinalizer}});
  } else {
    patch.push_back({{"op", "add"}, {"path", "/metadata/finalizers"}, {"value", json::array({kFinalizer})}});
  }
  auto r = client_.patch(resourceOfPolicy(obj), meta.namespace_, meta.name, kube::PatchType::kJson, patch);
  if (!r.ok()) return r.error();
  return okStatus();
}

Status Reconciler::removeFinalizer(const model::PolicyObject& obj) {
  const auto& meta = obj.meta;
  int index = -1;
  for (size_t i = 0; i < meta.finalizers.size(); ++i) {
    if (meta.finalizers[i] == kFinalizer) index = static_cast<int>(i);
  }
  if (index < 0) return okStatus();
  json patch = json::array({{{"op", "test"}, {"path", "/metadata/resourceVersion"}, {"value", meta.resourceVersion}},
                            {{"op", "remove"}, {"path", "/metadata/finalizers/" + std::to_string(index)}}});
  auto r = client_.patch(resourceOfPolicy(obj), meta.namespace_, meta.name, kube::PatchType::kJson, patch);
  if (!r.ok() && r.error().code() != ErrorCode::kNotFound) return r.error();
  return okStatus();
}

Result<ReconcileOutcome> Reconciler::finalize(const model::PolicyObject& obj) {
  const std::string ns = obj.meta.namespace_;
  const std::string name = obj.meta.name;
  if (!hasFinalizer(obj)) return ReconcileOutcome{};
  const auto candidates = allPolicies();
  const char* owner = obj.cluster ? render::kClusterPolicyAnnotation : kPolicyAnnotation;
  ReconcileOutcome outcome;
  std::set<std::string> handedOverConfigMaps;  // "namespace/name"
  std::vector<std::pair<WorkloadKind, runtime::ObjectPtr>> written;
  if (obj.cluster) {
    written = writtenByClusterPolicy(name);
  } else {
    for (const auto& info : policy::kWorkloadKinds) {
      if (runtime::Store* store = storeFor(info.kind)) {
        for (auto& w : store->listInNamespace(ns)) written.emplace_back(info.kind, std::move(w));
      }
    }
  }
  for (const auto& [kind, w] : written) {
    if (annotationOf(*w, owner) != name) continue;
    const std::string& workloadNs = w->meta.namespace_;
    // Another policy taking the workload over writes its own settings over ours: no cleanup, or we would
    // remove what it is about to own under the same field manager.
    const auto labels = namespaceLabels(workloadNs);
    if (const policy::Policy* next = governingPolicy(kind, *w, candidates, &labels); next && writesSettings(*next)) {
      outcome.alsoEnqueue.push_back(runtime::objectKey(next->namespace_, next->name));
      handedOverConfigMaps.insert(runtime::objectKey(workloadNs, render::configMapName(kind, w->meta.name)));
      continue;
    }
    auto st = cleanupWorkload(kind, workloadNs, w->meta.name, name);
    if (!st.ok()) return st.error();
  }
  const char* ownerLabel = obj.cluster ? render::kClusterPolicyLabel : render::kPolicyLabel;
  for (const auto& cm : obj.cluster ? caches_.configMaps->list() : caches_.configMaps->listInNamespace(ns)) {
    if (labelOf(*cm, ownerLabel) != name) continue;
    // The ConfigMap of a workload another policy takes over is relabelled and rewritten by that policy; every
    // other ConfigMap of this policy goes.
    if (handedOverConfigMaps.count(runtime::objectKey(*cm))) continue;
    // The ConfigMap of a kind not watched now (Rollouts whose CRD was not served at start) stays: its workload,
    // unseen, may still reference it, and its pods would not start without it.
    const bool unwatched =
        std::any_of(std::begin(policy::kWorkloadKinds), std::end(policy::kWorkloadKinds),
                    [&](const policy::WorkloadKindInfo& info) {
                      return storeFor(info.kind) == nullptr && cm->meta.name.ends_with(info.configMapSuffix);
                    });
    if (unwatched) {
      spdlog::warn("policy {}: ConfigMap {}/{} left in place: its workload's kind is not watched now", name,
                   cm->meta.namespace_, cm->meta.name);
      continue;
    }
    auto del = client_.remove(kube::resources::configMaps(), cm->meta.namespace_, cm->meta.name);
    if (!del.ok() && del.error().code() != ErrorCode::kNotFound) return del.error();
  }
  if (usage_) usage_->forget(ns, name);
  if (metrics_) {
    metrics_->forgetPolicy(ns, name);
    // The database's totals go with the last policy that names it.
    if (const auto& mine = obj.parsed) {
      bool named = false;
      for (const auto& e : allPolicies()) {
        if (e.parsed && !e.deleting && e.parsed->spec.database.name == mine->spec.database.name) named = true;
      }
      if (!named) metrics_->forgetDatabase(mine->spec.database.name);
    }
  }
  auto st = removeFinalizer(obj);
  if (!st.ok()) return st.error();
  spdlog::info("{} {} deleted: its settings were removed", resourceOfPolicy(obj).kind, runtime::objectKey(obj));
  return outcome;
}

json Reconciler::statusBaseline(const std::string& key, const model::PolicyObject& obj) const {
  const json& cached = obj.status;
  std::lock_guard l(mu_);
  auto it = lastWrittenStatus_.find(key);
  if (it == lastWrittenStatus_.end() || it->second.uid != obj.meta.uid) return cached;
  // A newer generation in the cache than in our last write means the spec moved on: trust the cache.
  if (cached.value("observedGeneration", int64_t{0}) > it->second.status.value("observedGeneration", int64_t{0}))
    return cached;
  return it->second.status;
}

Reconciler::StateSizes Reconciler::stateSizes() const {
  StateSizes sizes;
  {
    std::lock_guard l(mu_);
    sizes.writes = writes_.size();
    sizes.statuses = lastWrittenStatus_.size();
    sizes.budgetStatuses = lastWrittenBudgetStatus_.size();
    sizes.admission = admissionWritten_.size();
  }
  if (usage_) sizes.usage = usage_->policies();
  return sizes;
}

void Reconciler::pruneWritesEverywhere() {
  std::vector<std::pair<std::string, std::string>> records;  // workload key, uid
  {
    std::lock_guard l(mu_);
    for (const auto& [key, rec] : writes_) records.emplace_back(key, rec.uid);
  }
  std::map<std::string, std::string> gone;  // workload key -> the uid of its record
  for (const auto& [key, uid] : records) {
    // "Deployment ns/name" (WorkloadKey::toString).
    const size_t space = key.find(' ');
    const size_t slash = key.find('/', space);
    const auto kind = policy::workloadKindNamed(key.substr(0, space));
    runtime::Store* store = kind ? storeFor(*kind) : nullptr;
    auto live = store ? store->get(key.substr(space + 1, slash - space - 1), key.substr(slash + 1)) : nullptr;
    if (!live || live->meta.uid != uid) gone.emplace(key, uid);
  }
  std::lock_guard l(mu_);
  std::erase_if(writes_, [&](const auto& entry) {
    // Unless written again meanwhile, for the object that now has the name.
    auto it = gone.find(entry.first);
    return it != gone.end() && it->second == entry.second.uid;
  });
}

Result<ReconcileOutcome> Reconciler::reconcile(const std::string& key) {
  // A ClusterConnectionPoolPolicy's key is its name alone.
  const bool clusterKey = key.find('/') == std::string::npos;
  runtime::ObjectPtr cachedObj;
  if (!clusterKey) {
    cachedObj = caches_.policies->get(key);
  } else if (caches_.clusterPolicies) {
    cachedObj = caches_.clusterPolicies->get(key);
  }
  if (!cachedObj) {
    auto [ns, name] = runtime::splitKey(key);
    if (usage_) usage_->forget(ns, name);
    if (metrics_) metrics_->forgetPolicy(ns, name);
    {
      std::lock_guard l(mu_);
      lastWrittenStatus_.erase(key);
    }
    // The workloads it wrote that went meanwhile (unseen by its finalize), wherever they were.
    pruneWritesEverywhere();
    return ReconcileOutcome{};
  }
  const auto obj = policyRecord(cachedObj);
  const model::PolicyObject& policyObj = *obj;
  if (!policyObj.meta.deletionTimestamp.empty()) return finalize(policyObj);

  auto fin = ensureFinalizer(policyObj);
  if (!fin.ok()) return fin.error();

  const std::string ns = policyObj.meta.namespace_;
  const std::string name = policyObj.meta.name;
  const json storedStatus = statusBaseline(key, policyObj);
  const auto previous = conditionsFromJson(storedStatus);
  const std::string now = formatRfc3339(clock_.now());

  if (!policyObj.parsed) {
    StatusInput in;
    in.generation = policyObj.meta.generation;
    in.invalidMessage = policyObj.invalidMessage;
    json status = buildStatus(in, previous, now);
    auto conditions = conditionsFromJson(status);
    if (status != storedStatus) {
      auto st = writeStatus(key, policyObj, status);
      if (!st.ok()) return st.error();
      if (events_) recordTransitions(*events_, policyReference(policyObj), previous, conditions);
    }
    if (metrics_) metrics_->setConditions(ns, name, conditions);
    if (usage_) usage_->forget(ns, name);  // no checks while invalid: release its connections
    return ReconcileOutcome{};             // a spec change brings it back
  }
  const policy::Policy& pol = *policyObj.parsed;
  if (pol.spec.suspend) {
    if (usage_) usage_->forget(ns, name);
    return ReconcileOutcome{};
  }

  // Gather.
  // A cluster policy's workloads may have gone with a namespace it no longer covers: every namespace is pruned.
  if (pol.clusterScoped()) {
    pruneWritesEverywhere();
  } else {
    pruneWrites(ns);
  }
  Snapshot snapshot = gather(obj, storedStatus);
  const std::string& uid = policyObj.meta.uid;

  // Live usage: the monitor checks off this path (controller/usage_monitor.h) and enqueues the policy when its
  // findings change; a check reads the server's max_connections, which the budget needs when no policy declares it.
  bool firstCheckPending = false;
  if (usage_ && (pol.spec.usage.postgres || pol.spec.usage.prometheus)) {
    // A cluster policy's Secrets are in the operator's namespace: app namespaces never hold them.
    usage_->want(policyReference(policyObj), pol, governedWorkloads(snapshot),
                 pol.clusterScoped() ? operatorNamespace_ : "");
    snapshot.usage = usage_->latest(key, uid);
    firstCheckPending = !snapshot.usage;
  } else if (usage_) {
    usage_->forget(ns, name);  // its usage block was removed: release the connections only it used
    // Without a usage block of its own: the findings of its database's ClusterConnectionBudget check, over its
    // own workloads.
    snapshot.usage = centralUsage(pol, governedWorkloads(snapshot));
    // As for a policy's own first check (below): when only the budget's check can tell max_connections, nothing
    // is decided before it ends (the budget's findings enqueue this policy), so a restart does not write
    // unclamped settings only to clamp them moments later.
    if (!snapshot.usage && onlyTheBudgetReadsMaxConnections(pol, snapshot)) return ReconcileOutcome{};
  }
  if (firstCheckPending) {
    // Nothing is decided before the policy's first usage check ends (bounded by the sources' timeouts; the
    // monitor enqueues the policy then): the check reads the server's max_connections, and a budget without it
    // would write unclamped settings (rolling the pods) only to clamp them again moments later, and report usage
    // and max_connections as unknown in between. This happens once per policy and process.
    return ReconcileOutcome{};
  }
  if (usage_) snapshot.discoveredMaxConnections = usage_->serverMaxConnections(pol.spec.database.name);

  // Plan.
  Plan plan = controller::plan(snapshot);

  // Apply.
  ReconcileOutcome outcome;
  outcome.requeueAfter = plan.requeueAfter;
  outcome.alsoEnqueue = plan.alsoEnqueue;
  const int writeFailures = applyPlan(key, policyObj, plan, outcome);

  json status = buildStatus(plan.status, previous, now);
  auto conditions = conditionsFromJson(status);
  if (status != storedStatus) {
    auto st = writeStatus(key, policyObj, status);
    if (!st.ok()) return st.error();
    if (events_) recordTransitions(*events_, policyReference(policyObj), previous, conditions);
  }
  if (metrics_) {
    const auto& db = plan.database;
    metrics_->setConditions(ns, name, conditions);
    const auto& counts = status["workloads"];
    metrics_->setWorkloads(ns, name, counts.value("matched", 0), counts.value("applied", 0), counts.value("drifted", 0),
                           counts.value("conflicted", 0));
    metrics_->setDatabase(db.database, db.steadyState, db.worstCase,
                          db.available ? std::optional<int64_t>(*db.available) : std::nullopt);
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
