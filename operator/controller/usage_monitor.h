#pragma once
// Live usage checks, off the reconcile path. A reconcile tells the monitor what its policy needs checked (want)
// and reads the latest findings (latest); it never waits on PostgreSQL or Prometheus. The monitor runs one
// thread per check target (PostgreSQL server, database and user; else the Prometheus URL), which checks the
// policies of that target when their usage.interval is due, one after the other, through the usage::Checker
// (credentials read and their grant checked per policy). When a policy's findings change (condition or figures;
// not the check time alone), the monitor calls onChange with the policy's key, and the reconcile that follows
// writes them. A server that hangs holds only its own target's thread. The threads run until stop(), also after
// the leader's lease may be lost: with a write fence (kube/fence.h), checks end sessions only while it is open.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "kube/client.h"
#include "kube/fence.h"
#include "policy/types.h"
#include "usage/analysis.h"
#include "usage/checker.h"

namespace poolguard::runtime {
class EventRecorder;
}

namespace poolguard::controller {

class UsageMonitor {
 public:
  using OnChange = std::function<void(const std::string& policyKey)>;
  // client: reads the Secrets the policies name; events: where a refused Secret or URL is reported (optional);
  // fence: the leader's write fence, with leader election (usage.actions.terminateLeaked ends sessions only while
  // it is open); null without.
  UsageMonitor(usage::Checker& checker, kube::Client& client, const Clock& clock, OnChange onChange,
               runtime::EventRecorder* events = nullptr, std::shared_ptr<const kube::WriteFence> fence = nullptr);
  ~UsageMonitor();
  UsageMonitor(const UsageMonitor&) = delete;
  UsageMonitor& operator=(const UsageMonitor&) = delete;

  // What the policy (its object: apiVersion, kind, metadata) needs checked now. The first want, and a want that
  // moves the policy to another target, schedules a check at once.
  // A ClusterConnectionPoolPolicy's Secrets are read from `secretNamespace` (the operator's); "" is the policy's
  // own namespace.
  void want(const nlohmann::json& policyObject, const policy::Policy& policy,
            std::vector<usage::GovernedWorkload> workloads, const std::string& secretNamespace = "");
  // No more checks for the policy (deleted, suspended, invalid, or no usage block); its findings go.
  void forget(const std::string& ns, const std::string& name);
  // The latest findings for the policy object with this uid; nullopt before its first check ends.
  std::optional<usage::AnalysisResult> latest(const std::string& policyKey, const std::string& uid) const;
  // What the latest check of a ClusterConnectionBudget read (its sources), for the object with this uid; null
  // before its first check ends, and for a policy's check.
  std::shared_ptr<const usage::AnalysisInput> latestInput(const std::string& policyKey, const std::string& uid) const;
  // max_connections as last read from the server of a database, by database name.
  std::optional<int32_t> serverMaxConnections(const std::string& database) const;

  // Stops every thread (a check in progress ends first). Idempotent.
  void stop();
  size_t targets() const;   // threads running
  size_t policies() const;  // entries held for policies and databases (for tests of pruning)

 private:
  struct Wanted {
    std::string uid;
    nlohmann::json object;  // for Events
    policy::Policy policy;
    std::vector<usage::GovernedWorkload> workloads;
    std::string secretNamespace;  // where its Secrets are read
    std::string target;
    Clock::steady_point due{};
  };
  struct Found {
    std::string uid;
    usage::AnalysisResult result;
    std::shared_ptr<const usage::AnalysisInput> input;
  };
  struct Target {
    std::thread thread;
    bool done = false;                                         // its thread has returned
    std::vector<std::pair<std::string, std::string>> forgets;  // (namespace, name) to release in the thread
  };
  // Policies whose usage.postgres names the same server, database and Secret share a target; the Secret is part
  // of it so that each Secret's own grant decides its own checks.
  static std::string targetOf(const policy::Policy& p, const std::string& secretNamespace);
  void run(const std::string& target, Target* self);
  void checkOne(const std::string& key, Wanted wanted);
  void collectFinishedLocked(std::vector<std::thread>& finished);

  usage::Checker& checker_;
  kube::Client& client_;
  const Clock& clock_;
  OnChange onChange_;
  runtime::EventRecorder* events_;
  std::shared_ptr<const kube::WriteFence> fence_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  std::map<std::string, Wanted> wanted_;  // policy key ->
  std::map<std::string, Found> found_;    // policy key ->
  std::map<std::string, int32_t> serverMaxConnections_;
  std::map<std::string, std::unique_ptr<Target>> targets_;
  std::vector<std::unique_ptr<Target>> retiring_;  // threads on their way out, joined once done
};

}  // namespace poolguard::controller
