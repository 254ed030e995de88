#pragma once
// Connection budget arithmetic (docs/api.md "Budget arithmetic", docs/budget.md for Clamp). Pure: workload and
// policy facts in, figures out. Per workload: pods now, pods max (HPA), surge; per pod = maxSize x processesPerPod
// + overheadPerPod;
// steadyState = pods now x per pod; worstCase = (pods max + surge) x per pod. Summed per database.name across
// namespaces and compared with available = maxConnections - reservedConnections.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/records.h"
#include "policy/types.h"

namespace poolguard::budget {

using json = nlohmann::json;

// A Deployment's RollingUpdate maxSurge.
using Surge = model::IntOrPercent;
inline constexpr Surge kDefaultMaxSurge{25, true};
inline constexpr Surge kDaemonSetDefaultMaxSurge{0, false};
// A DaemonSet's pods when neither its status nor this annotation says how many nodes run it (offline: `plan
// --nodes`); a CronJob's overlapping runs under concurrencyPolicy Allow.
inline constexpr const char* kNodesAnnotation = "poolguard.dev/nodes";
inline constexpr const char* kConcurrentRunsAnnotation = "poolguard.dev/concurrent-runs";
inline constexpr int32_t kDefaultConcurrentRuns = 2;

// What the arithmetic needs to know about a workload's scaling, as read from its object and HPA.
struct WorkloadShape {
  policy::WorkloadKind kind = policy::WorkloadKind::kDeployment;
  std::string namespace_;
  std::string name;
  int32_t replicas = 1;                   // pods now: spec.replicas, 1 when absent (docs/budget.md per kind)
  std::optional<int32_t> hpaMaxReplicas;  // an autoscaling/v2 HPA's maxReplicas targeting this workload
  std::optional<int32_t> podsMax;         // a kind whose maximum is not its replicas (a CronJob's overlapping runs)
  bool recreate = false;                  // no rollout surge: Deployment Recreate, DaemonSet OnDelete, CronJob
  bool fullSurge = false;                 // a rollout runs a full second set of pods (blue-green, traffic-routed)
  Surge maxSurge = kDefaultMaxSurge;      // RollingUpdate maxSurge
  int32_t terminatingPerRun = 0;          // CronJob Replace, Job: the pods replaced while they terminate
  bool overlapsOnlyWhenSurging = false;   // DaemonSet: a node runs old and new pods together only with maxSurge
  // Where pods max comes from when not from spec.replicas, as plan shows it: a DaemonSet's "nodes" (its status),
  // "nodes, annotation" or "1 node assumed"; a CronJob's "1 run", "3 runs" (annotation) or "2 runs assumed".
  std::string podsSource;
};

struct WorkloadFacts {
  policy::WorkloadKind kind = policy::WorkloadKind::kDeployment;
  std::string namespace_;
  std::string name;
  int32_t podsNow = 1;
  int32_t podsMax = 1;  // HPA maxReplicas, never below podsNow (a workload above its HPA's max has those pods now)
  int32_t surge = 0;    // extra pods a rollout adds at pods max; 0 for Recreate and StatefulSets
  // Pods of the old revision still terminating (and holding their connections) at a rollout's peak, when the
  // policy counts them (budget.terminatingPods: Count): computeDatabase sets it, to terminatingAt(podsMax).
  int32_t terminating = 0;
  bool countsTerminating = false;
  bool autoscaled = false;
  // The rule surge follows: none for Recreate and StatefulSets, else the RollingUpdate maxSurge (all the pods
  // when fullSurge).
  bool surges = true;
  bool fullSurge = false;
  Surge maxSurge = kDefaultMaxSurge;
  int32_t terminatingPerRun = 0;         // as in WorkloadShape
  bool overlapsOnlyWhenSurging = false;  // as in WorkloadShape
  std::string podsSource;                // as in WorkloadShape
  // Extra pods a rollout adds at `pods` pods: maxSurge (an integer, or a percentage rounded up), never more than
  // `pods` (the Deployment controller never scales the new ReplicaSet past the replicas).
  int32_t surgeAt(int32_t pods) const;
  // Old pods still terminating at a rollout's peak at `pods` pods: a RollingUpdate may have replaced them all
  // before the first is gone, so the peak is twice `pods` (docs/budget.md); 0 for Recreate, StatefulSets and
  // when not counted.
  int32_t terminatingAt(int32_t pods) const;
  // Pods at a rollout's peak at `pods` pods: pods + surge + terminating.
  int64_t peakAt(int32_t pods) const { return int64_t{pods} + surgeAt(pods) + terminatingAt(pods); }
  // The worst case's pods: pods max + surge + terminating.
  int64_t peakPods() const { return int64_t{podsMax} + surge + terminating; }
};

WorkloadFacts factsFor(const WorkloadShape& shape);

// The shape of a workload record and, when one targets it, its HPA (nullptr: none), per its kind's rule
// (docs/budget.md "Per kind"). Absent fields take the API server's defaults; a workload without a namespace is
// in "default".
WorkloadShape shapeOf(const model::Workload& workload, const model::Hpa* hpa);
inline WorkloadFacts workloadFacts(const model::Workload& workload, const model::Hpa* hpa) {
  return factsFor(shapeOf(workload, hpa));
}
// The same from the workload object as the cache holds it: decodes it with model::decodeWorkload. Fields of the
// wrong type (which the API server never serves) take the defaults.
WorkloadFacts workloadFacts(const json& workload, const model::Hpa* hpa);

// The HPA among `hpas` that targets the workload (model::Hpa::targets); nullptr when none. Several: the first, as
// the HPA controller itself refuses to share targets.
const model::Hpa* findHpa(const std::vector<model::Hpa>& hpas, policy::WorkloadKind kind, const std::string& ns,
                          const std::string& name);

// A ClusterConnectionBudget allocation: a share of the database for the namespaces its selector matches.
struct AllocationInput {
  std::string name;
  int32_t maxConnections = 0;
};

struct PolicyInput {
  std::string namespace_;
  std::string name;
  int allocation = -1;  // the allocation its namespace counts against; -1: none (the namespaces in no allocation)
  // A ClusterConnectionPoolPolicy's workloads in one namespace (namespace_; "" when it governs none).
  bool cluster = false;
  policy::OnExceeded onExceeded = policy::OnExceeded::kWarn;
  int32_t weight = 1;
  int32_t maxSize = 1;
  int32_t processesPerPod = 1;
  int32_t overheadPerPod = 0;            // connections each pod opens outside its pools (Clamp cannot shrink them)
  bool countTerminating = false;         // budget.terminatingPods: Count
  std::vector<WorkloadFacts> workloads;  // the workloads this policy governs
};

PolicyInput policyInput(const policy::Policy& p);

struct WorkloadBudget {
  WorkloadFacts facts;
  int64_t perPod = 0;  // at the effective maxSize: maxSize x processesPerPod + overheadPerPod
  int64_t steadyState = 0;
  int64_t worstCase = 0;
};

// The workload's facts under a policy that counts terminating pods or not (sets terminating and
// countsTerminating).
WorkloadFacts underPolicy(WorkloadFacts facts, bool countTerminating);

struct PolicyBudget {
  std::string namespace_;
  std::string name;
  policy::OnExceeded onExceeded = policy::OnExceeded::kWarn;
  int32_t weight = 1;
  int32_t maxSize = 0;            // as the policy asks
  int32_t effectiveMaxSize = 0;   // after Clamp; == maxSize unless clamped
  int32_t processesPerPod = 1;    // as in PolicyInput
  int32_t overheadPerPod = 0;     // as in PolicyInput
  bool countTerminating = false;  // as in PolicyInput
  bool clamped = false;
  int64_t steadyState = 0;  // at effectiveMaxSize
  int64_t worstCase = 0;    // at effectiveMaxSize
  int64_t unclampedWorstCase = 0;
  int64_t overheadWorstCase = 0;     // of worstCase, the connections outside the pools (overheadPerPod)
  int64_t terminatingWorstCase = 0;  // of worstCase, the connections of old pods still terminating
  int allocation = -1;               // as in PolicyInput
  bool cluster = false;              // as in PolicyInput
  std::vector<WorkloadBudget> workloads;
};

// One share of a database with allocations: an allocation, or the namespaces no allocation matches.
struct AllocationBudget {
  std::string name;                       // "" for the namespaces in no allocation
  std::optional<int64_t> maxConnections;  // the share; for the others, unknown while available is
  int64_t steadyState = 0;
  int64_t worstCase = 0;  // after Clamp
  int64_t unclampedWorstCase = 0;
  size_t policies = 0;
  bool over() const { return maxConnections && worstCase > *maxConnections; }
  // "allocation <name>", or "the namespaces in no allocation", for messages.
  std::string label() const { return name.empty() ? "the namespaces in no allocation" : "allocation " + name; }
};

struct DatabaseBudget {
  std::string database;
  std::optional<int32_t> maxConnections;
  int32_t reservedConnections = 0;
  std::optional<int64_t> available;  // maxConnections - reservedConnections; nullopt when maxConnections is unknown
  int64_t steadyState = 0;
  int64_t worstCase = 0;               // after Clamp
  int64_t unclampedWorstCase = 0;      // as the policies ask
  std::vector<PolicyBudget> policies;  // in input order
  // With allocations: each allocation (in input order) and the namespaces in none; empty and nullopt without.
  std::vector<AllocationBudget> allocations;
  std::optional<AllocationBudget> unallocated;

  // True when available is known, worstCase fits and no share is over; false when unknown.
  bool withinBudget() const { return available && worstCase <= *available && !anyShareOver(); }
  bool overBudget() const { return (available && worstCase > *available) || anyShareOver(); }
  bool anyShareOver() const;
  // A ConnectionPoolPolicy's entry (cluster false), or a ClusterConnectionPoolPolicy's in one namespace.
  const PolicyBudget* find(const std::string& ns, const std::string& name, bool cluster = false) const;
  // The share a policy counts against; nullptr when the database has no allocations.
  const AllocationBudget* shareOf(const PolicyBudget& p) const;
};

// Sums the policies naming one database and applies Clamp (docs/budget.md). Policies with no workloads count 0.
// With allocations, each policy counts against its own (PolicyInput::allocation) or, with none, against what the
// allocations leave of available, and Clamp shrinks pools only within the share that is over.
DatabaseBudget computeDatabase(const std::string& database, std::optional<int32_t> maxConnections,
                               int32_t reservedConnections, const std::vector<PolicyInput>& policies,
                               const std::vector<AllocationInput>& allocations = {});

}  // namespace poolguard::budget
