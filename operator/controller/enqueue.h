#pragma once
// What a watch event of a workload, an HPA or a ClusterConnectionBudget puts on the policy queue: the policies whose
// plan reads what changed, and no others. The rules are pure functions of records (unit-tested without a cluster);
// EventKeys reads their inputs from the informer caches for runOperator's handlers.
//
// A policy enqueued here may change what the other policies of its database report (the database's totals, a
// share's): its plan tells them (Plan::alsoEnqueue), so an event needs to reach only the policies that read it
// directly.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "controller/plan.h"
#include "controller/reconciler.h"
#include "kube/object.h"
#include "model/records.h"
#include "policy/types.h"

namespace poolguard::controller {

// The labels of a namespace, with kubernetes.io/metadata.name.
using Labels = std::map<std::string, std::string>;

// The policies (keys) whose plan reads this state of a workload, among `policies` (every cached policy):
// - those that select it (policy::selects: spec.selector and spec.kinds, and a cluster policy's namespaceSelector
//   over `namespaceLabels`): the one that governs it, and the losers of its scope, which report it Conflicted. A
//   cluster policy is left out while a policy of the namespace governs the workload (governingPolicy, by
//   policy::outranks): its plan passes over such a workload;
// - those its poolguard.dev/policy and poolguard.dev/cluster-policy annotations name: the policy that wrote it, which
//   gives its fields back when it governs it no more (it may not select it any more);
// - the policies with onExceeded Clamp of the governing policy's database: Clamp sizes their pools from what every
//   governed workload of the database asks, which may change without moving the totals (Plan::alsoEnqueue).
// None for a state no plan counts (a CronJob's run, a finished Job: model::Workload::governable). An update maps
// both states, so a label change that moves a workload from one policy to another reaches both.
std::vector<std::string> policiesReadingWorkload(const model::Workload& workload,
                                                 const std::vector<PolicyView>& policies,
                                                 const Labels& namespaceLabels);

// A cached workload by kind, namespace and name; nullptr when there is none.
using WorkloadLookup =
    std::function<std::shared_ptr<const model::Workload>(policy::WorkloadKind, const std::string&, const std::string&)>;
// The workload an HPA scales (model::Hpa::targets, the rule gather applies); nullptr when it is not cached. An HPA
// is read by the plans that read its target: its old target's and its new target's when spec.scaleTargetRef moves.
std::shared_ptr<const model::Workload> scaleTargetOf(const model::Hpa& hpa, const WorkloadLookup& find);

// The policies (keys) whose plan reads what changed from `before` to `after`, two states of one
// ClusterConnectionBudget (nullptr: absent). A valid budget binds the policies of its database (`policies` may hold
// others; they are ignored), until it is being deleted. Of it plan reads the capacity (maxConnections,
// reservedConnections), the ceilings, whether it has a usage check (of PostgreSQL), and the share each namespace
// counts against: its allocation's name and maxConnections, or for the namespaces in no allocation what the
// allocations leave. So:
// - one that appears, goes, turns valid or invalid, starts being deleted, or whose capacity, ceilings or usage check
//   changed: every policy of the database;
// - one whose allocations alone changed: the policies in a namespace whose share changed (a cluster policy's, any
//   namespace of `namespaces` its namespaceSelector matches);
// - anything else (a status write, its metadata, admission.mode): none.
// `namespaces`: every cached namespace's labels by name; a namespace not there has only its name label.
std::vector<std::string> policiesReadingBudgetChange(const model::BudgetObject* before,
                                                     const model::BudgetObject* after,
                                                     const std::vector<PolicyView>& policies,
                                                     const std::map<std::string, Labels>& namespaces);

// The rules above over the informer caches.
class EventKeys {
 public:
  explicit EventKeys(const Caches& caches) : caches_(caches) {}

  std::vector<std::string> ofWorkload(const kube::Object& workload) const;  // a model::Workload record
  std::vector<std::string> ofHpa(const kube::Object& hpa) const;            // a model::Hpa record
  // model::BudgetObject records; nullptr: absent (an add has no `before`, a delete no `after`).
  std::vector<std::string> ofBudget(const kube::Object* before, const kube::Object* after) const;

 private:
  Labels labelsOf(const std::string& ns) const;
  std::vector<PolicyView> allPolicies() const;  // ConnectionPoolPolicies and ClusterConnectionPoolPolicies
  runtime::Store* workloadStore(policy::WorkloadKind kind) const;

  Caches caches_;
};

}  // namespace poolguard::controller
