#pragma once
// The decisions of a reconcile as a pure function of values. A reconcile runs in three steps:
// - gather (gather.cpp): a Snapshot of what the caches, the last usage check and this process's memory of its
//   own writes say;
// - plan (here): which policy governs each workload, the database's budget and Clamp, the apply bodies, what to
//   release, the status input and which other policies to tell. It reads no cache, clock, client or global: the
//   same Snapshot always gives the same Plan, and unit tests need no cluster;
// - apply (apply.cpp): the writes, with what only a write can tell (failures, another manager's fight).
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "budget/budget.h"
#include "common/clock.h"
#include "controller/status.h"
#include "model/records.h"
#include "policy/types.h"
#include "runtime/store.h"
#include "usage/analysis.h"

namespace poolguard::controller {

using json = nlohmann::json;

struct PolicyView {
  std::shared_ptr<const model::PolicyObject> object;
  std::shared_ptr<const policy::Policy> parsed;  // object->parsed: null when the spec is invalid
  bool deleting = false;
};
PolicyView viewOf(std::shared_ptr<const model::PolicyObject> object);

struct WorkloadView {
  policy::WorkloadKind kind = policy::WorkloadKind::kDeployment;
  std::shared_ptr<const model::Workload> object;
  std::optional<model::Hpa> hpa;  // the HPA that scales it
};

// What this process remembers of its last apply to a workload.
struct WriteMemory {
  std::string resourceVersionBefore;  // the cached resourceVersion that apply was decided on
  std::string hash;                   // the settings it wrote
  // Another field manager keeps undoing the settings (controller/contest.h): left alone until then.
  std::optional<Clock::steady_point> backingOffUntil;
  std::string contestMessage;
};

struct Snapshot {
  PolicyView self;                   // the policy reconciled: valid, not suspended, not being deleted
  std::vector<PolicyView> policies;  // every policy of the cluster, self included
  // The workloads (every kind watched) of self's namespaces, of every namespace with a policy of self's database, and
  // of the namespaces the cluster policies of the database may govern.
  std::map<std::string, std::vector<WorkloadView>> workloads;
  // poolguard's ConfigMaps of self's namespaces (a cluster policy's: every namespace it may govern), by
  // "namespace/name".
  std::map<std::string, std::shared_ptr<const model::ConfigMap>> configMaps;
  json storedStatus = json::object();               // the status as last written by this process, else as cached
  std::optional<usage::AnalysisResult> usage;       // the last usage check; nullopt without a usage block
  std::optional<int32_t> discoveredMaxConnections;  // read live from self's database server
  // The ClusterConnectionBudget of self's database, when there is one: its capacity and ceilings bind every policy
  // of the database.
  std::optional<policy::ClusterBudget> clusterBudget;
  // The labels of the namespaces in `workloads`, for cluster policies' namespaceSelectors and the budget's
  // allocations. A namespace not here carries only kubernetes.io/metadata.name, as the API server gives every
  // namespace.
  std::map<std::string, std::map<std::string, std::string>> namespaceLabels;
  std::map<std::string, WriteMemory> writes;  // by policy::WorkloadKey::toString()
  Clock::steady_point steadyNow{};
  // Why Rollouts must not be written (Reconciler::rolloutsProblem): they are compared and reported, as in
  // Audit, with state Failed and this message. nullopt: written like the other kinds.
  std::optional<std::string> rolloutsNotWritable;
};

// One workload this policy governs, with what it should carry and whether the apply step writes it.
struct PlannedWorkload {
  size_t statusIndex = 0;  // into Plan::status.workloads
  policy::WorkloadKind kind = policy::WorkloadKind::kDeployment;
  std::string namespace_;
  std::string name;
  std::shared_ptr<const model::Workload> cached;  // the cached workload the decision was made on
  json apply;                                     // the desired server-side apply body of the workload
  std::optional<json> configMap;                  // the desired ConfigMap (ConfigMap delivery)
  std::vector<std::string> missingContainers;     // of spec.containers, not in the workload
  std::string hash;                               // of the settings
  // Enforce, out of sync, no back-off in progress, and not our own apply still on its way to the cache.
  bool writeWorkload = false;
  bool writeConfigMap = false;
  // Our last apply of these settings had landed and was changed since: another manager undid it. The apply step
  // counts it (a fight is backed off) before writing.
  bool correction = false;
  std::string summary;  // what differs, for the log and Audit's message
  bool needsWrite() const { return writeWorkload || writeConfigMap; }
};

struct Plan {
  StatusInput status;  // workload states as if every planned write succeeds; the apply step marks failures
  std::vector<PlannedWorkload> workloads;  // every governed workload that renders, in status order
  // Workloads this policy wrote that no policy governs any more: their fields are given back.
  struct Release {
    policy::WorkloadKind kind;
    std::string namespace_;
    std::string name;
  };
  std::vector<Release> releases;
  // ConfigMaps (namespace, name) of governed workloads whose delivery is now Env; deleted once every apply went
  // through.
  std::vector<std::pair<std::string, std::string>> configMapDeletes;
  std::optional<std::chrono::milliseconds> requeueAfter;  // a fight's back-off ends
  std::vector<std::string> alsoEnqueue;                   // policies of the database, when its totals moved
  budget::DatabaseBudget database;
};

// The key of a workload in Snapshot::writes: "Deployment ns/name" (policy::WorkloadKey::toString).
std::string workloadKey(policy::WorkloadKind kind, const kube::Object& workload);

// The labels of namespace `ns` as the Snapshot knows them (see Snapshot::namespaceLabels).
std::map<std::string, std::string> namespaceLabelsOf(const Snapshot& s, const std::string& ns);

// The policy governing the workload among `candidates` (valid, not being deleted ones count): the winner among the
// ConnectionPoolPolicies of its namespace that select it, else among the ClusterConnectionPoolPolicies whose
// namespaceSelector matches `namespaceLabels` (null: cluster policies are not considered); nullptr if none.
const policy::Policy* governingPolicy(policy::WorkloadKind kind, const kube::Object& workload,
                                      const std::vector<PolicyView>& candidates,
                                      const std::map<std::string, std::string>* namespaceLabels);

// Whether `p` writes its settings to the workloads it governs (Enforce, not suspended): a policy that takes a
// workload over from another writes over the other's settings; one in Audit or suspended does not, and the other's
// settings are released instead.
inline bool writesSettings(const policy::Policy& p) { return p.spec.mode == policy::Mode::kEnforce && !p.spec.suspend; }

// The namespaces `p` may govern workloads in, of those in the Snapshot: its own, or for a cluster policy those
// whose labels its namespaceSelector matches.
std::vector<std::string> namespacesOf(const Snapshot& s, const policy::Policy& p);

// Whether `p` governs the workload: it selects it and wins among the candidates of s.policies.
bool governs(const Snapshot& s, const policy::Policy& p, const WorkloadView& w);

// The workloads self governs in its namespaces, as the usage check reads them (pool size as last rendered).
std::vector<usage::GovernedWorkload> governedWorkloads(const Snapshot& s);

Plan plan(const Snapshot& s);

}  // namespace poolguard::controller
