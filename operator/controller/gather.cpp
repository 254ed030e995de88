// The gather step of a reconcile (see controller/plan.h): a Snapshot of values from the caches and from what this
// process remembers of its own writes.
#include <set>

#include "controller/objects.h"
#include "controller/reconciler.h"

namespace poolguard::controller {

using policy::WorkloadKind;

Snapshot Reconciler::gather(const runtime::ObjectPtr& policyObj, json storedStatus) const {
  Snapshot s;
  s.self = entryFor(policyObj);
  s.policies = allPolicies();
  s.storedStatus = std::move(storedStatus);
  s.steadyNow = clock_.steadyNow();
  const policy::Policy& pol = *s.self.parsed;
  // The namespaces whose workloads count: this one, and each with a policy of the same database.
  std::set<std::string> namespaces{pol.namespace_};
  for (const auto& e : s.policies) {
    if (e.parsed && !e.deleting && e.parsed->spec.database.name == pol.spec.database.name)
      namespaces.insert(e.parsed->namespace_);
  }
  // The index narrows by namespace, kind and name; model::Hpa::targets is the rule `poolguard plan` applies too
  // (an HPA of another API group's kind of the same name does not count).
  auto hpaFor = [&](WorkloadKind kind, const json& w) -> std::optional<model::Hpa> {
    for (const auto& h : caches_.hpas->byIndex(
             runtime::kScaleTargetIndex, runtime::scaleTargetKey(namespaceOf(w), policy::toString(kind), nameOf(w)))) {
      model::Diagnostics ignored;
      model::Hpa decoded = model::decodeHpa(*h, ignored);
      if (decoded.targets(kind, namespaceOf(w), nameOf(w))) return decoded;
    }
    return std::nullopt;
  };
  for (const auto& ns : namespaces) {
    auto& views = s.workloads[ns];
    for (WorkloadKind kind : {WorkloadKind::kDeployment, WorkloadKind::kStatefulSet}) {
      for (auto& w : storeFor(kind)->listInNamespace(ns)) views.push_back(WorkloadView{kind, w, hpaFor(kind, *w)});
    }
  }
  for (auto& cm : caches_.configMaps->listInNamespace(pol.namespace_)) s.configMaps.emplace(nameOf(*cm), cm);
  std::map<std::string, std::string> uids;  // of this namespace's workloads, by workload key
  for (const auto& v : s.workloads[pol.namespace_])
    uids[workloadKey(v.kind, *v.object)] = (*v.object)["metadata"].value("uid", "");
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
  for (WorkloadKind kind : {WorkloadKind::kDeployment, WorkloadKind::kStatefulSet}) {
    for (const auto& w : storeFor(kind)->listInNamespace(ns))
      live[workloadKey(kind, *w)] = (*w)["metadata"].value("uid", "");
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
