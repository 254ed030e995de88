#pragma once
// Fault injection for the reliability tests: the control plane's components stopped and relaunched with their
// own command lines, etcd compacted, the operator paused, killed or run under its own client identity, and the
// API server's audit log read back as the record of what the operator did.
#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/cluster.h"
#include "support/e2e_helpers.h"
#include "support/operator_process.h"

namespace poolguard::testing::reliability {

using json = nlohmann::json;

// ---- modes -------------------------------------------------------------------------------------------------
// 1 in CI; POOLGUARD_SOAK=1 multiplies iterations and durations by POOLGUARD_SOAK_FACTOR (default 10).
int soakFactor();
// An integer from the environment, or `fallback` when unset or not a number.
int envInt(const char* name, int fallback);

// ---- objects -----------------------------------------------------------------------------------------------
// installCrds, getJson, envValue, condition, conditionIs and tail come from support/e2e_helpers.h.
// kubectl apply -f - in `ns`; returns kubectl's stderr on failure, "" on success.
std::string applyYaml(const std::string& ns, const std::string& yaml);

// A Deployment with containers `app` (env KEEP_ME=mine) and `sidecar`; `labels` go on the object and the pods.
std::string deploymentYaml(const std::string& name, const std::map<std::string, std::string>& labels, int replicas = 1);

struct PolicyOptions {
  std::string name;
  std::map<std::string, std::string> selector;
  int maxSize = 10;
  std::string database;
  int maxConnections = 1000;
  std::string delivery = "Env";  // Env or ConfigMap
  std::string profile = "Generic";
  std::string applicationName = "{name}";  // namespace-independent, so runs in two namespaces compare equal
  std::string extraSpec;                   // YAML lines indented by two spaces, appended to spec
};
PolicyOptions basicPolicy(const std::string& name, const std::map<std::string, std::string>& selector, int maxSize,
                          const std::string& database);
std::string policyYaml(const PolicyOptions& o);

std::string podAnnotation(const json& workload, const std::string& key);

// ---- processes ---------------------------------------------------------------------------------------------
// The pid of a running OperatorProcess (found by its metrics port in /proc); -1 when not found.
pid_t operatorPid(const OperatorProcess& op);
// Lease identity of a running OperatorProcess: "<hostname>_<pid>".
std::string operatorIdentity(const OperatorProcess& op);

// A component started by scripts/local-cluster (DIR/pids/<name>): kube-apiserver, postgres, etcd, ...
pid_t componentPid(const std::string& name);
std::vector<std::string> processCmdline(pid_t pid);
// Sends `sig` to the component's process group and waits for it to exit (SIGKILL after `timeout`).
bool stopComponent(const std::string& name, int sig, std::chrono::seconds timeout);
// Starts argv in a session of its own, detached from this process (so it is nobody's zombie), appending to
// DIR/logs/<name>.log, and records its pid in DIR/pids/<name>. Returns the pid.
pid_t launchComponent(const std::string& name, const std::vector<std::string>& argv);
bool waitApiServerReady(std::chrono::seconds timeout);
bool waitPostgresReady(std::chrono::seconds timeout);

// The API server really stopped (SIGTERM to its process group, its command line read from /proc first) and
// relaunched with that command line; startApiServer waits for /readyz with the admin certificate.
struct ApiServerRestart {
  std::vector<std::string> argv;
  bool stopped = false;
};
ApiServerRestart stopApiServer();
bool startApiServer(const ApiServerRestart& r, std::chrono::seconds readyTimeout);

// etcd through its HTTP gateway (DIR/env ETCD_ENDPOINT).
int64_t etcdRevision();
bool etcdCompact(int64_t revision);
// Writes a key outside the API server's prefix: moves the store's revision even while the API server is down.
bool etcdPut(const std::string& key, const std::string& value);

// A client certificate for `user` (group system:masters) signed by the cluster CA, and a context of that name in
// the cluster's kubeconfig: `--context=<user>` makes an operator replica a distinct user in the audit log.
void addAdminContext(const std::string& user);

// ---- audit log ---------------------------------------------------------------------------------------------
// Seconds since the epoch of an audit timestamp field ("2006-01-02T15:04:05.000000Z").
double auditTime(const json& entry, const char* field = "requestReceivedTimestamp");
std::string auditResource(const json& entry);  // "deployments", "connectionpoolpolicies/status", ...
bool isWorkloadWrite(const json& entry);       // deployments, statefulsets, configmaps: create/update/patch/delete
// Every audit entry (any client) at ResponseComplete after `sinceLine`.
std::vector<json> auditEntries(size_t sinceLine);
// The operator's requests after `sinceLine`, one entry per request (auditID), including watches that are still
// open (their ResponseStarted entry): operatorRequests() sees a watch only once it has ended.
std::vector<json> operatorRequestsAnyStage(size_t sinceLine);
// The resourceVersion query parameter of a request ("" when absent).
std::string requestResourceVersion(const json& entry);
double wallNow();  // seconds since the epoch

// ---- text --------------------------------------------------------------------------------------------------
int countOccurrences(const std::string& haystack, const std::string& needle);

}  // namespace poolguard::testing::reliability
