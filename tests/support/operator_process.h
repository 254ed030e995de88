#pragma once
// Runs `poolguard run` as its own process against the local cluster, and reads what it did from the API
// server's audit log.
#include <signal.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace poolguard::testing {

class OperatorProcess {
 public:
  explicit OperatorProcess(std::vector<std::string> extraArgs = {});
  ~OperatorProcess();
  OperatorProcess(const OperatorProcess&) = delete;
  OperatorProcess& operator=(const OperatorProcess&) = delete;

  void start();
  // Blocks until /readyz answers 200 (caches synced); false on timeout or exit.
  bool waitReady(int seconds = 60);
  void stop(int sig = SIGTERM);  // sends sig and waits for the exit
  bool running() const;
  std::string logs() const;
  int metricsPort() const { return metricsPort_; }
  // The body of /metrics ("" when unreachable).
  std::string metrics() const;

 private:
  std::vector<std::string> extraArgs_;
  pid_t pid_ = -1;
  int metricsPort_ = 0;
  int healthPort_ = 0;
  std::string logPath_;
};

// Audit-log entries for requests the operator made (user agent "poolguard/..."), optionally only writes
// (create, update, patch, delete), newer than `sinceLine` (an index returned by auditLineCount()).
std::vector<nlohmann::json> operatorRequests(size_t sinceLine, bool writesOnly);
size_t auditLineCount();

int freePort();

}  // namespace poolguard::testing
