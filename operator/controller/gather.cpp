// The gather step of a reconcile (see controller/plan.h): a Snapshot of values from the caches and from what this
// process remembers of its own writes.
#include <set>

#include "controller/cache_shapes.h"
#include "controller/objects.h"
#include "controller/reconciler.h"
#include "policy/selection.h"

namespace poolguard::controller {

using policy::WorkloadKind;

Snapshot Reconciler::gather(const std::shared_ptr<const model::PolicyObject>& policyObj, json storedStatus) const {
  Snapshot s;
  s.self = viewOf(policyObj);
  s.policies = allPolicies();
  s.storedStatus = std::move(storedStatus);
  s.steadyNow = clock_.steadyNow();
  s.rolloutsNotWritable = rolloutsProblem(false);
  const policy::Policy& pol = *s.self.parsed;
  // The namespaces whose workloads count: this policy's, each with a policy of the same database, and each a
  // cluster policy of the database may govern (by its namespaceSelector, or because it wrote a workload there that
  // it may have to give back).
  std::set<std::string> namespaces;
  auto addNamespacesOf = [&](const policy::Policy& p) {
    if (!p.clusterScoped()) {
      namespaces.insert(p.namespace_);
      return;
    }
    if (caches_.namespaces && p.spec.namespaceSelector) {
      for (const auto& n : caches_.namespaces->list()) {
        if (poolguard::matches(*p.spec.namespaceSelector, namespaceLabels(n->meta.name)))
          namespaces.insert(n->meta.name);
      }
    }
    for (const auto& [kind, w] : writtenByClusterPolicy(p.name)) namespaces.insert(w->meta.namespace_);
  };
  addNamespacesOf(pol);
  for (const auto& e : s.policies) {
    if (e.parsed && !e.deleting && e.parsed->spec.database.name == pol.spec.database.name) addNamespacesOf(*e.parsed);
  }
  // The index narrows by namespace, kind and name; model::Hpa::targets is the rule `poolguard plan` applies too
  // (an HPA of another API group's kind of the same name does not count).
  auto hpaFor = [&](WorkloadKind kind, const model::Workload& w) -> std::optional<model::Hpa> {
    const auto& [ns, name] = std::pair(w.meta.namespace_, w.meta.name);
    for (const auto& h : caches_.hpas->byIndex(kScaleTargetIndex, scaleTargetKey(ns, policy::toString(kind), name))) {
      const auto& hpa = runtime::recordAs<model::Hpa>(*h);
      if (hpa.targets(kind, ns, name)) return hpa;
    }
    return std::nullopt;
  };
  for (const auto& ns : namespaces) {
    auto& views = s.workloads[ns];
    for (const auto& info : policy::kWorkloadKinds) {
      runtime::Store* store = storeFor(info.kind);
      if (store == nullptr) continue;
      for (auto& o : store->listInNamespace(ns)) {
        auto w = runtime::recordAs<model::Workload>(o);
        if (!w->governable()) continue;  // a CronJob's run (counted with it), a finished Job
        auto hpa = hpaFor(info.kind, *w);
        views.push_back(WorkloadView{info.kind, std::move(w), std::move(hpa)});
      }
    }
  }
  if (caches_.budgets) {
    if (auto b = caches_.budgets->get(pol.spec.database.name)) {
      const auto& budget = runtime::recordAs<model::BudgetObject>(*b);
      if (budget.parsed && budget.meta.deletionTimestamp.empty()) s.clusterBudget = *budget.parsed;
    }
  }
  // Namespace labels decide what cluster policies govern (any database's: they decide whether a workload a
  // policy no longer selects is another's now) and which allocation a namespace counts against.
  if (caches_.namespaces) {
    for (const auto& ns : namespaces) {
      if (auto n = caches_.namespaces->get(ns)) s.namespaceLabels.emplace(ns, n->meta.labels);
    }
  }
  // This policy's namespaces: its ConfigMaps there, and the write memory of the workloads there.
  const std::vector<std::string> own = pol.clusterScoped() ? namespacesOf(s, pol) : std::vector{pol.namespace_};
  std::map<std::string, std::string> uids;  // of those namespaces' workloads, by workload key
  for (const auto& ns : own) {
    for (auto& cm : caches_.configMaps->listInNamespace(ns))
      s.configMaps.emplace(runtime::objectKey(*cm), runtime::recordAs<model::ConfigMap>(cm));
    for (const auto& v : s.workloads[ns]) uids[workloadKey(v.kind, *v.object)] = v.object->meta.uid;
  }
  std::lock_guard l(mu_);
  for (const auto& [workload, rec] : writes_) {
    auto live = uids.find(workload);
    if (live == uids.end() || live->second != rec.uid) continue;  // gone, or another object by that name
    WriteMemory m{rec.resourceVersionBefore, rec.hash, std::nullopt, rec.contestMessage};
    if (rec.contest.backingOff(s.steadyNow)) m.backingOffUntil = rec.contest.until();
    s.writes.emplace(workload, std::move(m));
  }
  return s;
}

void Reconciler::pruneWrites(const std::string& ns) {
  std::map<std::string, std::string> live;  // workload key -> uid
  for (const auto& info : policy::kWorkloadKinds) {
    if (runtime::Store* store = storeFor(info.kind)) {
      for (const auto& w : store->listInNamespace(ns)) live[workloadKey(info.kind, *w)] = w->meta.uid;
    }
  }
  const std::string infix = " " + ns + "/";
  std::lock_guard l(mu_);
  std::erase_if(writes_, [&](const auto& entry) {
    if (entry.first.find(infix) == std::string::npos) return false;
    auto it = live.find(entry.first);
    return it == live.end() || it->second != entry.second.uid;
  });
}

}  // namespace poolguard::controller
