#pragma once
// The shared test environment: one local control plane (etcd, kube-apiserver, kube-controller-manager) and
// PostgreSQL per test binary, started by scripts/local-cluster, or the one named by POOLGUARD_TEST_CLUSTER
// (a DIR previously given to `scripts/local-cluster start DIR`, left running after the tests).
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace poolguard::testing {

struct CommandResult {
  int exitCode = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs argv (no shell), with optional standard input; captures both streams.
CommandResult run(const std::vector<std::string>& argv, const std::string& input = "",
                  const std::map<std::string, std::string>& env = {});

struct LocalCluster {
  std::string dir;
  std::string kubeconfig;
  std::string server;  // https://127.0.0.1:PORT
  std::string pgHost;
  int pgPort = 0;
  std::string pgUser;  // a superuser
  std::string pgDatabase;
  std::string prometheusUrl;  // empty unless started with Prometheus

  // kubectl --kubeconfig=<admin> args...
  CommandResult kubectl(const std::vector<std::string>& args, const std::string& input = "") const;
  // kubectl wait --for=condition=Established on a CRD. Retries while the CRD has no status.conditions yet, which
  // kubectl wait reports as an error instead of waiting ("accessor error: <nil> is of the type <nil>").
  CommandResult waitEstablished(const std::string& crd) const;
  // psql -X -A -t -v ON_ERROR_STOP=1 -c sql against the cluster's PostgreSQL as the superuser.
  CommandResult psql(const std::string& sql, const std::string& database = "") const;
};

struct ClusterOptions {
  bool prometheus = false;
};

// Call from main() (or a static initializer) before RUN_ALL_TESTS: registers a GoogleTest Environment that
// starts the cluster in SetUp and stops it in TearDown (unless it came from POOLGUARD_TEST_CLUSTER).
void useLocalCluster(ClusterOptions opts = {});
// The running cluster; valid inside tests after useLocalCluster().
const LocalCluster& cluster();

// Source tree root (POOLGUARD_SOURCE_DIR, set by CTest), the operator binary (POOLGUARD_BINARY) and the kstatus
// command of tests/kstatus (POOLGUARD_KSTATUS).
std::string sourceDir();
std::string poolguardBinary();
std::string kstatusBinary();

// A fresh namespace name unique within this process ("t-<prefix>-<n>"), created in the cluster.
std::string createNamespace(const std::string& prefix);

// Polls cond every 100 ms until it returns true or the timeout elapses; returns the last result. A JSON type
// error inside cond (an object not there yet, or a field still null) counts as false.
bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout);

}  // namespace poolguard::testing
