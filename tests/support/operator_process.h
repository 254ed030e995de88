#pragma once
// Runs `poolguard run` as its own process against the local cluster, and reads what it did from the API
// server's audit log.
#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace poolguard::testing {

class OperatorProcess {
 public:
  // `kubeconfig` is passed as --kubeconfig ("" for the cluster's admin kubeconfig); the flag may be given only
  // once, so extraArgs must not repeat it.
  explicit OperatorProcess(std::vector<std::string> extraArgs = {}, std::string kubeconfig = "");
  ~OperatorProcess();
  OperatorProcess(const OperatorProcess&) = delete;
  OperatorProcess& operator=(const OperatorProcess&) = delete;

  void start();
  // An environment variable the process starts with (say POD_NAMESPACE, the namespace it runs in).
  void setEnv(std::string name, std::string value) { env_.emplace_back(std::move(name), std::move(value)); }
  // Blocks until /readyz answers 200 (caches synced); false on timeout or exit.
  bool waitReady(int seconds = 60);
  // Sends sig and waits for the exit (SIGKILL after `grace`); returns the exit status, or -1 when a signal ended
  // the process or it had already been reaped.
  int stop(int sig = SIGTERM, std::chrono::milliseconds grace = std::chrono::seconds(15));
  bool running() const;
  std::string logs() const;
  int metricsPort() const { return metricsPort_; }
  // The body of /metrics ("" when unreachable).
  std::string metrics() const;

 private:
  std::vector<std::string> extraArgs_;
  std::vector<std::pair<std::string, std::string>> env_;
  std::string kubeconfig_;
  pid_t pid_ = -1;
  int metricsPort_ = 0;
  int healthPort_ = 0;
  std::string logPath_;
};

// One operator process shared by the tests of a suite: started (after the CRDs are installed) in SetUpTestSuite,
// stopped in TearDownTestSuite; a failing test gets the tail of its log.
class SuiteOperator {
 public:
  // gtest ASSERTs inside: call it with ASSERT_NO_FATAL_FAILURE.
  void start(std::vector<std::string> extraArgs = {}, std::vector<std::pair<std::string, std::string>> env = {});
  void stop();
  void printLogTailIfFailed() const;
  OperatorProcess* get() const { return op_.get(); }

 private:
  std::unique_ptr<OperatorProcess> op_;
};

// Every audit-log entry (any client, any stage) newer than `sinceLine` (an index returned by auditLineCount()).
std::vector<nlohmann::json> auditEvents(size_t sinceLine);
// Audit-log entries for requests the operator made (user agent "poolguard/..."), optionally only writes
// (create, update, patch, delete), newer than `sinceLine` (an index returned by auditLineCount()).
std::vector<nlohmann::json> operatorRequests(size_t sinceLine, bool writesOnly);
size_t auditLineCount();

int freePort();

}  // namespace poolguard::testing
