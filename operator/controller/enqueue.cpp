#include "controller/enqueue.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <tuple>

#include "controller/objects.h"
#include "policy/selection.h"
#include "render/workload.h"

namespace poolguard::controller {
namespace {

void sortUnique(std::vector<std::string>& keys) {
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
}

// A budget's parsed spec; nullptr while it is absent or invalid (it binds no policy).
const policy::ClusterBudget* validSpec(const model::BudgetObject* b) { return b && b->parsed ? &*b->parsed : nullptr; }
// gather leaves out a budget being deleted (the usage check of one is still read, until it goes).
bool deleting(const model::BudgetObject* b) { return b && !b->meta.deletionTimestamp.empty(); }

// What plan and the policies' status read of a budget besides its allocations (terminateLeaked: the central
// check's note on names a namespace does not own, in each policy's UsageHealthy).
auto boundsOf(const policy::ClusterBudget& b) {
  return std::tuple(b.maxConnections, b.reservedConnections, b.ceilings.maxSize, b.ceilings.requireLeakDetection,
                    b.usage.has_value(), b.usage && b.usage->postgres.has_value(),
                    b.usage && b.usage->terminateOlderThan().has_value());
}

// The share a namespace with these labels counts against: whether the budget has allocations, the allocation's name
// and maxConnections; for the namespaces in none, name "" and the sum of the allocations (what they leave of the
// database moves with it).
std::tuple<bool, std::string, int64_t> shareOf(const policy::ClusterBudget& b, const Labels& labels) {
  if (b.allocations.empty()) return {false, "", 0};
  if (const int i = policy::allocationOf(b, labels); i >= 0) {
    const auto& a = b.allocations[static_cast<size_t>(i)];
    return {true, a.name, a.maxConnections};
  }
  int64_t allocated = 0;
  for (const auto& a : b.allocations) allocated += a.maxConnections;
  return {true, "", allocated};
}

Labels withNameLabel(Labels labels, const std::string& ns) {
  labels.emplace(model::kNamespaceNameLabel, ns);
  return labels;
}

}  // namespace

std::vector<std::string> policiesReadingWorkload(const model::Workload& w, const std::vector<PolicyView>& policies,
                                                 const Labels& namespaceLabels) {
  std::vector<std::string> keys;
  if (!w.governable()) return keys;
  const std::string& ns = w.meta.namespace_;
  const policy::Policy* governor = governingPolicy(w.kind, w, policies, &namespaceLabels);
  const bool namespaceGoverns = governor != nullptr && !governor->clusterScoped();
  const std::string writer = annotationOf(w, render::kPolicyAnnotation);
  const std::string clusterWriter = annotationOf(w, render::kClusterPolicyAnnotation);
  for (const auto& v : policies) {
    const model::PolicyObject& p = *v.object;
    const bool clamps = governor != nullptr && v.parsed && !v.deleting &&
                        v.parsed->spec.budget.onExceeded == policy::OnExceeded::kClamp &&
                        v.parsed->spec.database.name == governor->spec.database.name;
    if (!clamps && !p.cluster && p.meta.namespace_ != ns) continue;
    const bool wrote = (p.cluster ? clusterWriter : writer) == p.meta.name;
    const bool selects = v.parsed && policy::selects(*v.parsed, w.kind, ns, w.meta.labels, &namespaceLabels) &&
                         !(p.cluster && namespaceGoverns);
    if (clamps || wrote || selects) keys.push_back(runtime::objectKey(p));
  }
  sortUnique(keys);
  return keys;
}

std::shared_ptr<const model::Workload> scaleTargetOf(const model::Hpa& hpa, const WorkloadLookup& find) {
  const auto kind = policy::workloadKindNamed(hpa.targetKind);
  if (!kind || !hpa.targets(*kind, hpa.meta.namespace_, hpa.targetName)) return nullptr;
  return find(*kind, hpa.meta.namespace_, hpa.targetName);
}

std::vector<std::string> policiesReadingBudgetChange(const model::BudgetObject* before,
                                                     const model::BudgetObject* after,
                                                     const std::vector<PolicyView>& policies,
                                                     const std::map<std::string, Labels>& namespaces) {
  std::vector<std::string> keys;
  const policy::ClusterBudget* was = validSpec(before);
  const policy::ClusterBudget* now = validSpec(after);
  if (!was && !now) return keys;
  const std::string& database = (before ? before : after)->meta.name;
  const bool every = !was || !now || deleting(before) != deleting(after) || boundsOf(*was) != boundsOf(*now);
  auto labelsOf = [&](const std::string& ns) {
    auto it = namespaces.find(ns);
    return withNameLabel(it == namespaces.end() ? Labels{} : it->second, ns);
  };
  auto shareChanged = [&](const std::string& ns) {
    const Labels labels = labelsOf(ns);
    return shareOf(*was, labels) != shareOf(*now, labels);
  };
  for (const auto& v : policies) {
    if (!v.parsed || v.parsed->spec.database.name != database) continue;
    const policy::Policy& p = *v.parsed;
    bool reads = every;
    if (!reads && !p.clusterScoped()) reads = shareChanged(p.namespace_);
    if (!reads && p.clusterScoped() && p.spec.namespaceSelector) {
      reads = std::any_of(namespaces.begin(), namespaces.end(), [&](const auto& n) {
        return poolguard::matches(*p.spec.namespaceSelector, labelsOf(n.first)) && shareChanged(n.first);
      });
    }
    if (reads) keys.push_back(runtime::objectKey(*v.object));
  }
  sortUnique(keys);
  return keys;
}

Labels EventKeys::labelsOf(const std::string& ns) const {
  auto n = caches_.namespaces ? caches_.namespaces->get(ns) : nullptr;
  return withNameLabel(n ? n->meta.labels : Labels{}, ns);
}

std::vector<PolicyView> EventKeys::allPolicies() const {
  std::vector<PolicyView> out;
  auto add = [&out](const std::vector<runtime::ObjectPtr>& records) {
    for (const auto& p : records) out.push_back(viewOf(runtime::recordAs<model::PolicyObject>(p)));
  };
  add(caches_.policies->list());
  if (caches_.clusterPolicies) add(caches_.clusterPolicies->list());
  return out;
}

runtime::Store* EventKeys::workloadStore(policy::WorkloadKind kind) const {
  switch (kind) {
    case policy::WorkloadKind::kDeployment:
      return caches_.deployments;
    case policy::WorkloadKind::kStatefulSet:
      return caches_.statefulSets;
    case policy::WorkloadKind::kRollout:
      return caches_.rollouts;
    default:
      return nullptr;  // no scale subresource: no HPA targets it (model::Hpa::targets)
  }
}

std::vector<std::string> EventKeys::ofWorkload(const kube::Object& obj) const {
  const auto& w = runtime::recordAs<model::Workload>(obj);
  return policiesReadingWorkload(w, allPolicies(), labelsOf(w.meta.namespace_));
}

std::vector<std::string> EventKeys::ofHpa(const kube::Object& obj) const {
  auto target = scaleTargetOf(runtime::recordAs<model::Hpa>(obj),
                              [this](policy::WorkloadKind kind, const std::string& ns, const std::string& name) {
                                runtime::Store* store = workloadStore(kind);
                                auto w = store ? store->get(ns, name) : nullptr;
                                return w ? runtime::recordAs<model::Workload>(w) : nullptr;
                              });
  return target ? ofWorkload(*target) : std::vector<std::string>{};
}

std::vector<std::string> EventKeys::ofBudget(const kube::Object* before, const kube::Object* after) const {
  std::map<std::string, Labels> namespaces;
  if (caches_.namespaces) {
    for (const auto& n : caches_.namespaces->list()) namespaces.emplace(n->meta.name, n->meta.labels);
  }
  auto budget = [](const kube::Object* o) { return o ? &runtime::recordAs<model::BudgetObject>(*o) : nullptr; };
  return policiesReadingBudgetChange(budget(before), budget(after), allPolicies(), namespaces);
}

}  // namespace poolguard::controller
