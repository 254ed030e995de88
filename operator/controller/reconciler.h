#pragma once
// The policy reconciler: level-based, keyed "namespace/name" of a ConnectionPoolPolicy. It gathers a Snapshot from
// the informer caches (never an event payload) and the usage monitor's latest findings, lets plan() decide
// (controller/plan.h), then writes: workloads and ConfigMaps by server-side apply under field manager "poolguard",
// the status by apply on the status subresource, each only when the live object differs from the desired one.
// Running it twice changes nothing the second time.
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/result.h"
#include "controller/conditions.h"
#include "controller/contest.h"
#include "controller/metrics.h"
#include "controller/plan.h"
#include "kube/client.h"
#include "policy/selection.h"
#include "policy/types.h"
#include "runtime/store.h"
#include "usage/analysis.h"

namespace poolguard::runtime {
class EventRecorder;
}

namespace poolguard::controller {

class UsageMonitor;
using json = nlohmann::json;
using policy::outranks;
using policy::selects;
using policy::winner;
using policy::WorkloadKey;

inline constexpr const char* kFieldManager = "poolguard";
inline constexpr const char* kFinalizer = "poolguard.dev/cleanup";
// On a workload's own metadata (never its pod template): which policy last wrote it, so a restart or a policy
// that stopped selecting it still finds what to clean up.
inline constexpr const char* kPolicyAnnotation = "poolguard.dev/policy";

// The informer caches, each holding its kind's records (controller/cache_shapes.h).
struct Caches {
  runtime::Store* policies = nullptr;      // model::PolicyObject
  runtime::Store* deployments = nullptr;   // model::Workload
  runtime::Store* statefulSets = nullptr;  // model::Workload
  runtime::Store* hpas = nullptr;          // model::Hpa, indexed by kScaleTargetIndex
  runtime::Store* configMaps = nullptr;  // model::ConfigMap, only those labelled app.kubernetes.io/managed-by=poolguard
  runtime::Store* budgets = nullptr;     // model::BudgetObject; null when ClusterConnectionBudgets are not watched
  runtime::Store* namespaces = nullptr;  // kube::Object with labels; watched with the budgets, else null
  // model::PolicyObject of ClusterConnectionPoolPolicies; null when they are not watched. Their keys are their
  // names (no namespace): the policy queue tells the two kinds apart by the "/".
  runtime::Store* clusterPolicies = nullptr;
  runtime::Store* daemonSets = nullptr;  // model::Workload
  runtime::Store* cronJobs = nullptr;    // model::Workload
  runtime::Store* rollouts = nullptr;    // model::Workload; null when Argo Rollouts' CRD is absent
  runtime::Store* jobs = nullptr;        // model::Workload
};

// The usage monitor's key for a ClusterConnectionBudget's central check ("ClusterConnectionBudget:<name>"): no
// policy key has a ':'. The monitor reports findings under it, and they go to the budget's queue.
inline constexpr const char* kBudgetUsagePrefix = "ClusterConnectionBudget:";
inline std::string budgetUsageKey(const std::string& name) { return kBudgetUsagePrefix + name; }

// A secondary index of the workloads (every kind) by the ClusterConnectionPoolPolicy that last wrote them (the
// poolguard.dev/cluster-policy annotation), so a cluster policy finds its workloads in any namespace.
inline constexpr const char* kClusterPolicyIndex = "clusterPolicy";

struct ReconcileOutcome {
  std::optional<std::chrono::milliseconds> requeueAfter;
  std::vector<std::string> alsoEnqueue;  // other policies whose status depends on this one (shared budget)
};

// Why a server-side apply of poolguard's entries must not be sent to Argo Rollouts' Rollouts: their CRD cannot be
// read, or declares the containers (or their env) an atomic list that an apply would replace whole
// (render::containersMergeProblem); nullopt when they merge by name.
std::optional<std::string> rolloutCrdProblem(kube::Client& client);

class Reconciler {
 public:
  Reconciler(kube::Client& client, Caches caches, const Clock& clock, runtime::EventRecorder* events,
             ControllerMetrics* metrics, UsageMonitor* usage);
  ~Reconciler();

  Result<ReconcileOutcome> reconcile(const std::string& key);

  // The policies (keys) a workload or HPA event in `ns` may concern: every policy of the namespace.
  std::vector<std::string> policiesInNamespace(const std::string& ns) const;
  // The ClusterConnectionPoolPolicies (keys: their names) whose namespaceSelector matches namespace `ns`.
  std::vector<std::string> clusterPoliciesFor(const std::string& ns) const;
  std::vector<std::string> allClusterPolicies() const;
  // What a ClusterConnectionPoolPolicy's change (or deletion) may change the decisions of.
  std::vector<std::string> affectedByClusterPolicy(const kube::Object& clusterPolicy) const;
  // The policies (keys) naming `database`: those a ClusterConnectionBudget change concerns.
  std::vector<std::string> policiesOfDatabase(const std::string& database) const;
  // The same, only those without a usage block of their own (they report the budget's central check).
  std::vector<std::string> policiesWithoutUsageOf(const std::string& database) const;
  // The database a cached policy names ("" when it is not cached or invalid).
  std::string databaseOf(const std::string& policyKey) const;
  // The policies of every database whose ClusterConnectionBudget has allocations: a namespace's labels decide
  // which allocation its policies count against.
  std::vector<std::string> policiesUnderAllocations() const;
  std::vector<std::string> budgetsWithAllocations() const;

  // Writes a ClusterConnectionBudget's status (keyed by its name, the database's): the database's totals as
  // plan() computes them for any of its policies, WithinBudget and Ready.
  Result<ReconcileOutcome> reconcileBudget(const std::string& name);

  // How many entries the reconciler's memory holds (each goes with its object): for tests and diagnostics.
  struct StateSizes {
    size_t writes = 0;          // workloads written, with their fight records
    size_t statuses = 0;        // policy statuses last written
    size_t budgetStatuses = 0;  // ClusterConnectionBudget statuses last written
    size_t admission = 0;       // databases whose admission objects were last written, or removed
    size_t usage = 0;           // the usage monitor's entries for policies and databases
    bool operator==(const StateSizes&) const = default;
  };
  StateSizes stateSizes() const;

  // The namespace poolguard runs in: where a ClusterConnectionPoolPolicy's usage Secrets are read.
  void setOperatorNamespace(std::string ns) { operatorNamespace_ = std::move(ns); }
  // Rollouts are watched, and `firstProblem` is what rolloutCrdProblem said at start. From now on the CRD is read
  // again a minute after the last read and before any Rollout is written, so an upgrade or a rollback of Argo
  // Rollouts' CRDs while poolguard runs takes effect without a restart.
  void watchRolloutCrd(std::optional<std::string> firstProblem);
  // Why Rollouts must not be written now; nullopt when they may (or are not watched). `fresh`: read the CRD first.
  std::optional<std::string> rolloutsProblem(bool fresh) const;

 private:
  // Every policy of the cluster, ConnectionPoolPolicies and ClusterConnectionPoolPolicies.
  std::vector<PolicyView> allPolicies() const;
  // The labels of a namespace as the cache holds them (with kubernetes.io/metadata.name); only the name label when
  // namespaces are not watched.
  std::map<std::string, std::string> namespaceLabels(const std::string& ns) const;
  // The workloads (kind, record) a cluster policy's annotation names, in any namespace.
  std::vector<std::pair<policy::WorkloadKind, runtime::ObjectPtr>> writtenByClusterPolicy(
      const std::string& name) const;
  runtime::Store* storeFor(policy::WorkloadKind kind) const;
  // The Snapshot plan() decides on, for a valid policy that is not suspended (gather.cpp).
  Snapshot gather(const std::shared_ptr<const model::PolicyObject>& policyObj, json storedStatus) const;
  // The central usage check of a budget, as the usage monitor takes it: a policy named budgetUsageKey(), with the
  // budget's usage block, over every governed workload of the database.
  policy::Policy usagePolicyOf(const policy::ClusterBudget& budget, const budget::DatabaseBudget& db) const;
  std::vector<usage::GovernedWorkload> governedWorkloadsOf(const budget::DatabaseBudget& db) const;
  // The application_names those workloads report; and those of every workload any policy selects.
  std::set<std::string> applicationNamesOf(const budget::DatabaseBudget& db) const;
  std::set<std::string> knownApplicationNames() const;
  // For a policy without a usage block: the last check of its database's ClusterConnectionBudget, analyzed over
  // `workloads` (the policy's own); nullopt when the budget has no usage block or no check has ended yet.
  std::optional<usage::AnalysisResult> centralUsage(const policy::Policy& pol,
                                                    std::vector<usage::GovernedWorkload> workloads) const;
  // The database's max_connections can come only from its budget's check (a usage.postgres block, nothing
  // declared), and that check has not ended yet.
  bool onlyTheBudgetReadsMaxConnections(const policy::Policy& pol, const Snapshot& s) const;
  // Makes the writes the plan asks for and marks failed ones in its status (apply.cpp); returns how many failed.
  int applyPlan(const std::string& key, const model::PolicyObject& policyObj, Plan& plan, ReconcileOutcome& outcome);

  Status ensureFinalizer(const model::PolicyObject& obj);
  Status removeFinalizer(const model::PolicyObject& obj);
  Result<ReconcileOutcome> finalize(const model::PolicyObject& obj);
  // Releases the workload's settings (and its ConfigMap), and forgets its write record: poolguard owns nothing
  // there any more.
  Status cleanupWorkload(policy::WorkloadKind kind, const std::string& ns, const std::string& name,
                         const std::string& policyName);
  Status writeStatus(const std::string& key, const model::PolicyObject& obj, const json& status);
  json statusBaseline(const std::string& key, const model::PolicyObject& obj) const;
  // Forgets the write records of workloads of `ns` that are gone, or were re-created (another uid).
  void pruneWrites(const std::string& ns);
  // The same in every namespace: for what a ClusterConnectionPoolPolicy wrote, and when a policy is gone.
  void pruneWritesEverywhere();

  void recordWrite(policy::WorkloadKind kind, const model::Workload& w, const std::string& hash);
  // Counts a correction of our settings on this workload by another field manager (controller/contest.h). When it
  // starts a back-off: what to report, and until when poolguard leaves the workload alone.
  struct Contested {
    std::string message;
    Clock::steady_point until;
  };
  std::optional<Contested> onCorrection(policy::WorkloadKind kind, const model::Workload& w,
                                        const model::PolicyObject& policyObj);

  kube::Client& client_;
  Caches caches_;
  const Clock& clock_;
  runtime::EventRecorder* events_;
  ControllerMetrics* metrics_;
  UsageMonitor* usage_;
  std::string operatorNamespace_ = "default";
  // The last read of the Rollout CRD (read again from const paths: gather), guarded by rolloutMu_.
  mutable std::mutex rolloutMu_;
  bool rolloutCrdWatched_ = false;
  mutable std::optional<std::string> rolloutProblem_;
  mutable Clock::steady_point rolloutCheckedAt_{};

  // Everything remembered per object carries the object's uid: a policy or workload deleted and created again
  // under the same name is a new object, and starts with no memory.
  mutable std::mutex mu_;
  // The status this process last wrote per policy. The informer cache lags behind our own writes; comparing
  // with what we wrote keeps the reconcile that our write triggers from writing again or repeating Events.
  struct StatusRecord {
    std::string uid;
    json status;
  };
  std::map<std::string, StatusRecord> lastWrittenStatus_;
  // The same for ClusterConnectionBudgets, by name: several policy reconciles enqueue a budget before the cache
  // shows its last status write.
  std::map<std::string, StatusRecord> lastWrittenBudgetStatus_;
  // Per workload ("Deployment ns/name"): our last apply, and the corrections counted to detect a write war.
  struct WriteRecord {
    std::string uid;
    std::string resourceVersionBefore;  // the cached resourceVersion our last apply was decided on
    std::string hash;                   // the settings it wrote
    ContestTracker contest;
    std::string contestMessage;
  };
  std::map<std::string, WriteRecord> writes_;

  // Keeps a ClusterConnectionBudget's admission objects as its admission.mode asks (admission.cpp): b null when
  // the budget is gone, db null when its figures are unknown. Returns status.admission (null when there is none).
  Result<json> keepAdmission(const std::string& name, const model::BudgetObject* b, const budget::DatabaseBudget* db);
  // Per budget (by the database's name): the admission objects this process last applied (their bodies), or that
  // it removed them; without a budget, only while a policy names the database.
  struct AdmissionRecord {
    std::string uid;  // the budget's
    std::string params, policy, binding;
    bool removed = false;
  };
  std::map<std::string, AdmissionRecord> admissionWritten_;
};

// The reference Events and the usage monitor take to a policy.
json policyReference(const model::PolicyObject& policy);

}  // namespace poolguard::controller
