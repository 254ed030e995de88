// The API server fails under a running operator: stopped for 90 s and restarted with the same command line, and
// a watch that fell behind a compacted etcd (410 Gone).
#include <gtest/gtest.h>

#include <signal.h>
#include <cstdlib>

#include <iostream>
#include <set>
#include <thread>

#include "reliability_support.h"

namespace poolguard::testing::reliability {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string policy(const std::string& ns, int size) {
  return policyYaml(basicPolicy("p", {{"group", "g"}}, size, "db-" + ns));
}

bool allHave(const std::string& ns, const std::vector<std::string>& names, const std::string& value) {
  for (const auto& n : names) {
    if (envValue(getJson(ns, "deployment/" + n), "app", "POOL_MAX_SIZE") != value) return false;
  }
  return true;
}

// The informers' re-synchronisation after the API server came back, from the audit log: LISTs per resource and
// whether every WATCH resumed from a resourceVersion.
struct Resync {
  std::map<std::string, int> lists;
  std::map<std::string, int> watches;
  std::vector<std::string> watchesWithoutResourceVersion;
  std::string summary() const {
    std::string out = "LIST:";
    for (const auto& [r, n] : lists) out += " " + r + "=" + std::to_string(n);
    out += "; WATCH:";
    for (const auto& [r, n] : watches) out += " " + r + "=" + std::to_string(n);
    return out;
  }
};

Resync resyncSince(size_t auditLine) {
  Resync r;
  for (const auto& e : operatorRequestsAnyStage(auditLine)) {
    std::string verb = e.value("verb", "");
    std::string resource = auditResource(e);
    if (verb == "list") r.lists[resource]++;
    if (verb == "watch") {
      r.watches[resource]++;
      std::string rv = requestResourceVersion(e);
      if (rv.empty() || rv == "0") r.watchesWithoutResourceVersion.push_back(e.value("requestURI", ""));
    }
  }
  return r;
}

TEST(ApiServerFaults, OutageThenResumeFromResourceVersionsAndCatchUpWithin10s) {
  installCrds();
  const int outageSeconds = envInt("POOLGUARD_APISERVER_OUTAGE_SECONDS", 90);
  const std::string ns = createNamespace("outage");
  std::vector<std::string> names{"w0", "w1", "w2"};
  for (const auto& n : names) ASSERT_EQ(applyYaml(ns, deploymentYaml(n, {{"group", "g"}})), "");
  ASSERT_EQ(applyYaml(ns, policy(ns, 6)), "");
  OperatorProcess op;
  op.start();
  ASSERT_TRUE(op.waitReady()) << op.logs();
  ASSERT_TRUE(eventually([&] { return allHave(ns, names, "6") && conditionIs(ns, "p", "Ready", "True"); }, 60s));
  const pid_t pid = operatorPid(op);
  ASSERT_GT(pid, 0);

  auto down = stopApiServer();
  ASSERT_TRUE(down.stopped) << "could not stop kube-apiserver";
  auto downAt = Clock::now();
  bool aliveThroughout = true;
  while (secondsSince(downAt) < outageSeconds) {
    aliveThroughout = aliveThroughout && op.running();
    std::this_thread::sleep_for(1s);
  }
  EXPECT_TRUE(aliveThroughout) << "the operator exited while the API server was down:\n" << tail(op.logs(), 40);
  const size_t auditBefore = auditLineCount();
  ASSERT_TRUE(startApiServer(down, 180s)) << "kube-apiserver did not come back";
  const auto readyAt = Clock::now();

  // A change made right after the API server is ready again: the policy resized and a new workload.
  ASSERT_EQ(applyYaml(ns, policy(ns, 9)), "");
  ASSERT_EQ(applyYaml(ns, deploymentYaml("w3", {{"group", "g"}})), "");
  names.push_back("w3");
  bool caughtUp = eventually([&] { return allHave(ns, names, "9"); }, 120s);
  double catchUp = secondsSince(readyAt);
  std::cout << "[ measured ] API server down " << outageSeconds << " s; operator alive: " << aliveThroughout
            << "; change after /readyz applied after " << catchUp << " s\n";
  ASSERT_TRUE(caughtUp) << tail(op.logs(), 60);
  EXPECT_LE(catchUp, 10.0) << "a change made right after the API server is ready must be applied within 10 s\n"
                           << tail(op.logs(), 60);
  EXPECT_TRUE(eventually([&] { return conditionIs(ns, "p", "Ready", "True"); }, 30s));

  // Let any relist or watch retry that is coming happen, then count.
  std::this_thread::sleep_for(15s);
  Resync resync = resyncSince(auditBefore);
  std::map<std::string, int> writesPerWorkload;
  for (const auto& e : operatorRequests(auditBefore, true)) {
    if (isWorkloadWrite(e) && e["objectRef"].value("namespace", "") == ns)
      writesPerWorkload[e["objectRef"].value("name", "")]++;
  }
  std::cout << "[ measured ] after the restart: " << resync.summary() << "; writes per workload (one needed each):";
  for (const auto& [name, n] : writesPerWorkload) std::cout << " " << name << "=" << n;
  std::cout << "\n";
  for (const auto& [resource, n] : resync.lists) {
    EXPECT_LE(n, 1) << "relisted " << resource << " " << n << " times: " << resync.summary();
  }
  EXPECT_FALSE(resync.watches.empty()) << "no watch resumed";
  EXPECT_TRUE(resync.watchesWithoutResourceVersion.empty())
      << ::testing::PrintToString(resync.watchesWithoutResourceVersion);
  EXPECT_TRUE(op.running());
  EXPECT_EQ(operatorPid(op), pid) << "the operator restarted";
}

TEST(ApiServerFaults, WatchExpiredByCompactionRelistsWithoutMissingAChange) {
  installCrds();
  const std::string ns = createNamespace("expired");
  for (const char* n : {"w0", "w1", "w2", "w3", "w4", "w5"})
    ASSERT_EQ(applyYaml(ns, deploymentYaml(n, {{"group", "g"}})), "");
  ASSERT_EQ(applyYaml(ns, deploymentYaml("x0", {{"group", "other"}})), "");
  ASSERT_EQ(applyYaml(ns, policy(ns, 6)), "");
  OperatorProcess op;
  op.start();
  ASSERT_TRUE(op.waitReady()) << op.logs();
  ASSERT_TRUE(eventually([&] { return allHave(ns, {"w0", "w1", "w2", "w3", "w4", "w5"}, "6"); }, 60s));
  ASSERT_TRUE(eventually([&] { return conditionIs(ns, "p", "Ready", "True"); }, 30s));
  const pid_t pid = operatorPid(op);
  ASSERT_GT(pid, 0);
  const std::string w2uid = getJson(ns, "deployment/w2")["metadata"].value("uid", "");

  // The operator falls behind. Paused, its watches are cut by an API server restart. A server shutting down sends
  // its watchers a bookmark at its newest revision, so a client that reads it can resume against the next server
  // from there; a write straight to etcd while no API server runs moves the store past that bookmark, and the
  // restarted server's watch cache begins after every resourceVersion the operator holds.
  ASSERT_EQ(kill(pid, SIGSTOP), 0);
  auto down = stopApiServer();
  ASSERT_TRUE(down.stopped);
  ASSERT_TRUE(etcdPut("/poolguard-reliability/revision-bump", ns));
  ASSERT_TRUE(startApiServer(down, 180s));
  // Everything it watches changes while it is away.
  ASSERT_EQ(applyYaml(ns, policy(ns, 13)), "");
  ASSERT_EQ(cluster().kubectl({"-n", ns, "delete", "deployment", "w1", "--wait=false"}).exitCode, 0);
  ASSERT_EQ(cluster().kubectl({"-n", ns, "delete", "deployment", "w2", "--wait=true"}).exitCode, 0);
  ASSERT_EQ(applyYaml(ns, deploymentYaml("w2", {{"group", "g"}})), "");  // recreated: a new uid, no settings
  ASSERT_EQ(applyYaml(ns, deploymentYaml("w6", {{"group", "g"}})), "");  // created
  ASSERT_EQ(cluster().kubectl({"-n", ns, "label", "--overwrite", "deployment/w3", "group=left"}).exitCode, 0);
  ASSERT_EQ(cluster().kubectl({"-n", ns, "set", "env", "deployment/w0", "-c", "app", "POOL_MAX_SIZE=99"}).exitCode, 0);
  ASSERT_EQ(applyYaml(ns, deploymentYaml("x1", {{"group", "other"}})), "");
  ASSERT_NE(getJson(ns, "deployment/w2")["metadata"].value("uid", ""), w2uid);
  // Compact etcd at the current revision: the history the operator would resume from exists nowhere, neither in
  // the watch cache (it starts later) nor in storage.
  const int64_t revision = etcdRevision();
  ASSERT_GT(revision, 0);
  ASSERT_TRUE(etcdCompact(revision)) << "etcd compaction at " << revision << " failed";
  const size_t auditBefore = auditLineCount();
  const size_t logBefore = op.logs().size();
  ASSERT_EQ(kill(pid, SIGCONT), 0);
  const auto resumedAt = Clock::now();

  // Ground truth: what the policy demands of what exists now.
  const std::vector<std::string> governed{"w0", "w2", "w4", "w5", "w6"};
  auto groundTruth = [&](std::string* why) {
    auto no = [why](std::string reason) {
      *why = std::move(reason);
      return false;
    };
    if (!allHave(ns, governed, "13")) return no("a governed workload lacks maxSize 13");
    if (getJson(ns, "deployment/w1").is_object()) return no("w1 still exists");
    json w3 = getJson(ns, "deployment/w3");
    if (!envValue(w3, "app", "POOL_MAX_SIZE").empty() || !podAnnotation(w3, "poolguard.dev/settings-hash").empty()) {
      return no("w3 left the selector but kept poolguard's fields");
    }
    if (envValue(w3, "app", "KEEP_ME") != "mine") return no("w3 lost another manager's env");
    for (const char* x : {"x0", "x1"}) {
      if (!envValue(getJson(ns, std::string("deployment/") + x), "app", "POOL_MAX_SIZE").empty()) {
        return no(std::string(x) + " is not selected but got settings");
      }
    }
    json p = getJson(ns, "cpol/p");
    if (!conditionIs(ns, "p", "Ready", "True")) return no("policy not Ready");
    std::set<std::string> reported;
    for (const auto& w : p["status"].value("workloadStatuses", json::array())) reported.insert(w.value("name", ""));
    if (reported != std::set<std::string>(governed.begin(), governed.end())) {
      return no("status lists " + ::testing::PrintToString(reported));
    }
    if (p["status"]["workloads"].value("applied", -1) != 5) return no("status applied != 5");
    return true;
  };
  std::string why;
  bool recovered = eventually([&] { return groundTruth(&why); }, 60s);
  double recoverSeconds = secondsSince(resumedAt);
  std::string log = op.logs().substr(logBefore);
  int relists = countOccurrences(log, "relisting");
  Resync resync = resyncSince(auditBefore);
  std::cout << "[ measured ] compacted at revision " << revision << "; after SIGCONT: " << relists
            << " watch expiries (410) logged, ground truth after " << recoverSeconds << " s; " << resync.summary()
            << "\n";
  EXPECT_TRUE(recovered) << why << "\n" << tail(op.logs(), 60);
  EXPECT_GT(relists, 0) << "the operator never saw a 410, so this run did not exercise the relist:\n" << tail(log, 40);
  for (const auto& [resource, n] : resync.lists) EXPECT_LE(n, 1) << resource << ": " << resync.summary();
  // The changes reached the operator through a relist, not through a resumed watch.
  EXPECT_EQ(resync.lists["deployments"], 1) << resync.summary();
  EXPECT_EQ(resync.lists["connectionpoolpolicies"], 1) << resync.summary();
  EXPECT_TRUE(resync.watchesWithoutResourceVersion.empty())
      << ::testing::PrintToString(resync.watchesWithoutResourceVersion);
  EXPECT_TRUE(op.running());
}

}  // namespace
}  // namespace poolguard::testing::reliability
