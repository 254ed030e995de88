#pragma once
// The ConnectionPoolPolicy (poolguard.dev/v1alpha1) model: spec as written in ../../docs/api.md, with defaults
// applied by policy::applyDefaults. Durations are held in milliseconds.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/label_selector.h"

namespace poolguard::policy {

using Millis = std::chrono::milliseconds;

enum class WorkloadKind { kDeployment, kStatefulSet, kDaemonSet, kJob, kCronJob, kRollout };

// What poolguard knows of each workload kind it governs (docs/api.md "spec.kinds").
struct WorkloadKindInfo {
  WorkloadKind kind;
  const char* name;             // "Deployment"
  const char* apiVersion;       // "apps/v1"
  const char* resource;         // plural: "deployments"
  const char* configMapSuffix;  // of the operator-owned ConfigMap: "-deploy-poolguard"
  bool jobTemplate;             // the pod template is spec.jobTemplate.spec.template (CronJob), else spec.template
  bool optional;                // its CRD may be absent from a cluster (Argo Rollouts)
};
inline constexpr WorkloadKindInfo kWorkloadKinds[] = {
    {WorkloadKind::kDeployment, "Deployment", "apps/v1", "deployments", "-deploy-poolguard", false, false},
    {WorkloadKind::kStatefulSet, "StatefulSet", "apps/v1", "statefulsets", "-sts-poolguard", false, false},
    {WorkloadKind::kDaemonSet, "DaemonSet", "apps/v1", "daemonsets", "-ds-poolguard", false, false},
    {WorkloadKind::kJob, "Job", "batch/v1", "jobs", "-job-poolguard", false, false},
    {WorkloadKind::kCronJob, "CronJob", "batch/v1", "cronjobs", "-cronjob-poolguard", true, false},
    {WorkloadKind::kRollout, "Rollout", "argoproj.io/v1alpha1", "rollouts", "-rollout-poolguard", false, true},
};
const WorkloadKindInfo& infoOf(WorkloadKind kind);
// The kind of this name ("Deployment"); nullopt for any other.
std::optional<WorkloadKind> workloadKindNamed(const std::string& name);
enum class Mode { kEnforce, kAudit };
enum class Profile { kSpringHikari, kGoSQL, kPgxpool, kSQLAlchemy, kNodePostgres, kPgBouncer, kGeneric };
enum class DeliveryMethod { kEnv, kConfigMap };
enum class OnExceeded { kWarn, kClamp };
enum class SslMode { kDisable, kRequire, kVerifyCa, kVerifyFull };

// spec.selector, with the API server's matching (common/label_selector.h).
using LabelSelectorRequirement = poolguard::LabelSelectorRequirement;
using LabelSelector = poolguard::LabelSelector;

struct PoolSettings {
  int32_t maxSize = 0;
  int32_t minIdle = 0;
  Millis acquireTimeout{30'000};
  Millis idleTimeout{600'000};
  Millis maxLifetime{1'800'000};
  Millis leakDetectionThreshold{0};
  int32_t processesPerPod = 1;
  // Connections each pod opens outside its pools (migrations, LISTEN, health checks): counted by the budget.
  int32_t overheadPerPod = 0;
  // PostgreSQL's idle_in_transaction_session_timeout for every session the pool opens; nullopt: not rendered.
  std::optional<Millis> idleInTransactionTimeout;
};

struct Delivery {
  DeliveryMethod method = DeliveryMethod::kEnv;
  std::map<std::string, std::string> envNames;  // setting key -> env name override
  std::string applicationName = "{namespace}/{name}";
};

struct Rollout {
  bool restartOnChange = true;
};

struct Database {
  std::string name;
  std::optional<int32_t> maxConnections;
  int32_t reservedConnections = 3;
};

// Whether a rolling update's worst case counts the old revision's pods while they terminate (docs/budget.md).
enum class TerminatingPods { kIgnore, kCount };

struct Budget {
  OnExceeded onExceeded = OnExceeded::kWarn;
  int32_t weight = 1;
  TerminatingPods terminatingPods = TerminatingPods::kIgnore;
};

struct SecretKeyRef {
  std::string name;
  std::string key;
};

struct CredentialsRef {
  std::string name;
  std::string usernameKey = "username";
  std::string passwordKey = "password";
};

struct PostgresSource {
  std::string host;
  int32_t port = 5432;
  std::string database;
  SslMode sslMode = SslMode::kVerifyFull;
  CredentialsRef credentialsSecretRef;
  std::optional<SecretKeyRef> caSecretRef;  // key defaults to ca.crt
};

struct PrometheusSource {
  std::string url;
  std::string connectionsQuery;  // "" = the profile's default
  std::string pendingQuery;      // "" = the profile's default
};

struct Thresholds {
  int32_t saturationPercent = 90;
  Millis idleInTransaction{60'000};
};

// usage.actions.terminateLeaked: end (pg_terminate_backend) the sessions of governed workloads idle in transaction
// longer than olderThan, at most maxPerCheck per check; in Audit, report what would be ended.
struct TerminateLeaked {
  bool enabled = false;
  std::optional<Millis> olderThan;  // nullopt: thresholds.idleInTransaction
  int32_t maxPerCheck = 5;
};

struct UsageActions {
  std::optional<TerminateLeaked> terminateLeaked;
};

struct Usage {
  Millis interval{30'000};
  std::optional<PostgresSource> postgres;
  std::optional<PrometheusSource> prometheus;
  Thresholds thresholds;
  UsageActions actions;
  // The age past which terminateLeaked ends a session; nullopt when it is not enabled.
  std::optional<Millis> terminateOlderThan() const {
    if (!actions.terminateLeaked || !actions.terminateLeaked->enabled) return std::nullopt;
    return actions.terminateLeaked->olderThan.value_or(thresholds.idleInTransaction);
  }
};

// A ClusterConnectionBudget (cluster-scoped, one per database, named after it): the capacity and the ceilings
// every policy naming the database is held to. See docs/api.md "ClusterConnectionBudget".
struct BudgetCeilings {
  std::optional<int32_t> maxSize;     // no pool of the database renders more
  bool requireLeakDetection = false;  // a pool with leakDetectionThreshold 0 renders kRequiredLeakDetection
};
inline constexpr std::chrono::milliseconds kRequiredLeakDetection{30000};

// A share of the database for the workloads of the namespaces its selector matches (the first allocation that
// matches a namespace counts it). Namespaces matching none share what the allocations leave of available.
struct BudgetAllocation {
  std::string name;
  LabelSelector namespaceSelector;
  int32_t maxConnections = 0;
};

// What the API server does with a change that breaks the budget: refuse it (Deny), let it through with a warning
// (Warn), or nothing (None). See budget/admission.h.
enum class AdmissionMode { kNone, kWarn, kDeny };

struct ClusterBudget {
  std::string database;  // metadata.name
  std::string uid;
  int64_t generation = 0;
  std::optional<int32_t> maxConnections;       // wins over every policy's database.maxConnections
  std::optional<int32_t> reservedConnections;  // wins over the policies' when set
  std::vector<BudgetAllocation> allocations;   // in spec order: the first match wins
  BudgetCeilings ceilings;
  AdmissionMode admissionMode = AdmissionMode::kNone;
  // One check of the whole server (Secrets in the operator's namespace); nullopt without a usage source.
  std::optional<Usage> usage;
};

// The allocation of `budget` that counts a namespace with these labels: the first whose namespaceSelector
// matches; -1 when none does.
int allocationOf(const ClusterBudget& budget, const std::map<std::string, std::string>& namespaceLabels);

struct Spec {
  // A ClusterConnectionPoolPolicy's: the namespaces whose workloads it may govern (required there; nullopt for a
  // ConnectionPoolPolicy).
  std::optional<LabelSelector> namespaceSelector;
  LabelSelector selector;
  std::vector<WorkloadKind> kinds{WorkloadKind::kDeployment, WorkloadKind::kStatefulSet};
  std::vector<std::string> containers;  // empty: all containers
  Mode mode = Mode::kEnforce;
  int32_t priority = 0;
  bool suspend = false;
  PoolSettings pool;
  Profile profile = Profile::kGeneric;
  Delivery delivery;
  Rollout rollout;
  Database database;
  Budget budget;
  Usage usage;
};

struct Policy {
  std::string apiVersion = "poolguard.dev/v1alpha1";
  std::string kind = "ConnectionPoolPolicy";
  std::string name;
  std::string namespace_;
  std::string uid;
  int64_t generation = 0;
  std::string creationTimestamp;  // RFC 3339, used for the priority tie-break (oldest wins)
  Spec spec;

  // A ClusterConnectionPoolPolicy (cluster scoped, namespace_ empty): it governs the selected workloads of the
  // namespaces its namespaceSelector matches that no ConnectionPoolPolicy governs.
  bool clusterScoped() const { return kind == kClusterPolicyKind; }
  static constexpr const char* kClusterPolicyKind = "ClusterConnectionPoolPolicy";
};

// "ConnectionPoolPolicy shop/orders" or "ClusterConnectionPoolPolicy baseline", for messages.
std::string describe(const Policy& p);
// The same object: same kind, namespace and name.
bool sameObject(const Policy& a, const Policy& b);

const char* toString(WorkloadKind k);
const char* toString(TerminatingPods t);
const char* toString(Mode m);
const char* toString(Profile p);
const char* toString(DeliveryMethod d);
const char* toString(OnExceeded o);
const char* toString(SslMode s);
const char* toString(AdmissionMode m);

}  // namespace poolguard::policy
