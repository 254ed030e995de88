// The operator process itself fails: kill -9 at random points while policies over 20 Deployments converge and
// change, leader failover between two replicas (kill -9 and SIGTERM of the leader), and a leader whose path to the
// API server stalls.
#include <gtest/gtest.h>

#include <signal.h>
#include <cstdlib>

#include <atomic>
#include <iostream>
#include <memory>
#include <random>
#include <set>
#include <thread>

#include "reliability_support.h"
#include "support/tcp_proxy.h"

namespace poolguard::testing::reliability {
namespace {

using namespace std::chrono_literals;

// ---- kill -9 ------------------------------------------------------------------------------------------------

constexpr int kWorkloads = 20;
constexpr int kFinalEnvSize = 12;
constexpr int kFinalConfigMapSize = 8;

std::string workloadName(int i) { return (i < 10 ? "d0" : "d") + std::to_string(i); }
// Half the workloads get their settings as env entries, half through an operator-owned ConfigMap, so a kill
// can land between a ConfigMap write and the Deployment write that references it.
std::string groupOf(int i) { return i < kWorkloads / 2 ? "env" : "cm"; }

std::string crashPolicies(const std::string& ns, int envSize, int configMapSize) {
  PolicyOptions env = basicPolicy("env-pool", {{"group", "env"}}, envSize, "db-" + ns);
  PolicyOptions cm = basicPolicy("cm-pool", {{"group", "cm"}}, configMapSize, "db-" + ns);
  cm.delivery = "ConfigMap";
  cm.profile = "SpringHikari";
  return policyYaml(env) + "---\n" + policyYaml(cm);
}

std::string crashWorkloads() {
  std::string yaml;
  for (int i = 0; i < kWorkloads; ++i)
    yaml += (i ? "---\n" : "") + deploymentYaml(workloadName(i), {{"group", groupOf(i)}});
  return yaml;
}

// What a run leaves behind, without what legitimately differs between two namespaces and two histories
// (resourceVersions, generations, timestamps, the namespace and database names).
json snapshot(const std::string& ns) {
  json out = {{"workloads", json::object()}, {"configMaps", json::object()}, {"policies", json::object()}};
  json deployments = getJson(ns, "deployments");
  if (!deployments.is_object()) return json();
  for (const auto& d : deployments["items"]) {
    json w = json::object();
    for (const auto& c : d["spec"]["template"]["spec"]["containers"]) {
      json env = json::object();
      for (const auto& e : c.value("env", json::array()))
        env[e.value("name", "")] = e.contains("value") ? e["value"] : e["valueFrom"];
      w["containers"][c.value("name", "")] = {{"env", env}, {"envFrom", c.value("envFrom", json::array())}};
    }
    w["settingsHash"] = podAnnotation(d, "poolguard.dev/settings-hash");
    w["policy"] = d["metadata"].value("annotations", json::object()).value("poolguard.dev/policy", "");
    out["workloads"][d["metadata"].value("name", "")] = w;
  }
  auto r =
      cluster().kubectl({"-n", ns, "get", "configmaps", "-l", "app.kubernetes.io/managed-by=poolguard", "-o", "json"});
  json cms = json::parse(r.out, nullptr, false);
  if (cms.is_object()) {
    for (const auto& cm : cms["items"])
      out["configMaps"][cm["metadata"].value("name", "")] = cm.value("data", json::object());
  }
  json policies = getJson(ns, "cpol");
  if (!policies.is_object()) return json();
  for (const auto& p : policies["items"]) {
    json status = p.value("status", json::object());
    status.erase("observedGeneration");
    for (auto& c : status["conditions"]) {
      c.erase("lastTransitionTime");
      c.erase("observedGeneration");
    }
    std::string text = status.dump();
    for (const std::string& s : {"db-" + ns, ns}) {
      for (size_t pos = text.find(s); pos != std::string::npos; pos = text.find(s, pos))
        text.replace(pos, s.size(), "<ns>");
    }
    out["policies"][p["metadata"].value("name", "")] = json::parse(text);
  }
  return out;
}

bool converged(const json& snap, int envSize, int configMapSize) {
  if (!snap.is_object() || snap["workloads"].size() != kWorkloads) return false;
  for (const auto& [name, w] : snap["workloads"].items()) {
    if (w["settingsHash"].get<std::string>().empty()) return false;
  }
  for (const auto& [name, p] : snap["policies"].items()) {
    bool ready = false;
    for (const auto& c : p.value("conditions", json::array())) {
      if (c.value("type", "") == "Ready" && c.value("status", "") == "True") ready = true;
    }
    if (!ready) return false;
    int want = name == "env-pool" ? envSize : configMapSize;
    if (p.value("budget", json::object()).value("effectiveMaxSize", -1) != want) return false;
  }
  return snap["policies"].size() == 2;
}

std::vector<json> writesIn(const std::string& ns, size_t since, bool includeStatus) {
  std::vector<json> out;
  for (auto& e : operatorRequests(since, true)) {
    if (e["objectRef"].value("namespace", "") != ns) continue;
    std::string r = auditResource(e);
    if (isWorkloadWrite(e) || (includeStatus && r.rfind("connectionpoolpolicies", 0) == 0)) out.push_back(std::move(e));
  }
  return out;
}

std::string describe(const std::vector<json>& writes) {
  std::string out;
  for (const auto& w : writes) {
    out += "\n  " + w.value("verb", "") + " " + auditResource(w) + " " + w["objectRef"].value("name", "") + " at " +
           w.value("requestReceivedTimestamp", "");
  }
  return out;
}

TEST(OperatorFaults, KillNineDuringReconcileEndsInTheUndisturbedState) {
  installCrds();
  const int kills = envInt("POOLGUARD_KILLS", 50) * soakFactor();
  const unsigned seed =
      static_cast<unsigned>(envInt("POOLGUARD_RELIABILITY_SEED", static_cast<int>(std::random_device{}())));
  std::cout << "[ seed     ] POOLGUARD_RELIABILITY_SEED=" << seed << "\n";
  std::mt19937 rng(seed);

  // The reference: the same objects, one undisturbed operator run.
  const std::string ref = createNamespace("undisturbed");
  ASSERT_EQ(applyYaml(ref, crashWorkloads()), "");
  ASSERT_EQ(applyYaml(ref, crashPolicies(ref, kFinalEnvSize, kFinalConfigMapSize)), "");
  json reference;
  {
    OperatorProcess op;
    op.start();
    ASSERT_TRUE(op.waitReady()) << op.logs();
    ASSERT_TRUE(
        eventually([&] { return converged(reference = snapshot(ref), kFinalEnvSize, kFinalConfigMapSize); }, 120s))
        << reference.dump(2) << tail(op.logs(), 40);
    std::this_thread::sleep_for(2s);
    reference = snapshot(ref);
    op.stop();
  }

  // The storm: the same objects in another namespace; before each start the desired state may change (a policy
  // resized, a setting edited by hand); each life is cut by kill -9 after 50-800 ms. The last fifth of the
  // lives converge towards the final sizes.
  const std::string ns = createNamespace("killed");
  ASSERT_EQ(applyYaml(ns, crashWorkloads()), "");
  const std::vector<int> sizes{5, 7, 9, 11, 14, 16};
  int envSize = sizes[rng() % sizes.size()], cmSize = sizes[rng() % sizes.size()];
  ASSERT_EQ(applyYaml(ns, crashPolicies(ns, envSize, cmSize)), "");

  OperatorProcess op;
  std::uniform_int_distribution<int> delayMs(50, 800);
  int livesThatWrote = 0, changes = 0, drifts = 0;
  std::vector<int> writesPerLife;
  const auto stormStart = std::chrono::steady_clock::now();
  for (int i = 0; i < kills; ++i) {
    bool finalPhase = i >= kills - kills / 5;
    int nextEnv = finalPhase ? kFinalEnvSize : (rng() % 3 == 0 ? sizes[rng() % sizes.size()] : envSize);
    int nextCm = finalPhase ? kFinalConfigMapSize : (rng() % 3 == 0 ? sizes[rng() % sizes.size()] : cmSize);
    if (nextEnv != envSize || nextCm != cmSize) {
      envSize = nextEnv;
      cmSize = nextCm;
      ASSERT_EQ(applyYaml(ns, crashPolicies(ns, envSize, cmSize)), "");
      ++changes;
    }
    if (rng() % 4 == 0) {
      // Someone edits an owned value by hand while the operator is away.
      std::string w = workloadName(static_cast<int>(rng() % (kWorkloads / 2)));
      ASSERT_EQ(
          cluster().kubectl({"-n", ns, "set", "env", "deployment/" + w, "-c", "app", "POOL_MAX_SIZE=99"}).exitCode, 0);
      ++drifts;
    }
    size_t lifeStart = auditLineCount();
    op.start();
    std::this_thread::sleep_for(std::chrono::milliseconds(delayMs(rng)));
    op.stop(SIGKILL);
    int n = static_cast<int>(writesIn(ns, lifeStart, false).size());
    writesPerLife.push_back(n);
    if (n > 0) ++livesThatWrote;
  }
  double stormSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - stormStart).count();
  std::cout << "[ measured ] " << kills << " kills in " << stormSeconds << " s, " << changes << " policy changes, "
            << drifts << " hand edits; lives that wrote before being killed: " << livesThatWrote
            << "; writes per life:";
  for (int n : writesPerLife) std::cout << " " << n;
  std::cout << "\n";
  // The storm must actually interrupt work, or it proves nothing.
  EXPECT_GE(livesThatWrote, kills / 10) << "too few kills landed while the operator was writing";

  // An undisturbed life after the storm converges to exactly the reference, writing each object at most once.
  size_t finalStart = auditLineCount();
  auto t0 = std::chrono::steady_clock::now();
  op.start();
  ASSERT_TRUE(op.waitReady()) << op.logs();
  json last;
  bool same = eventually([&] { return (last = snapshot(ns)) == reference; }, 120s);
  double convergeSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::this_thread::sleep_for(3s);
  last = snapshot(ns);
  ASSERT_EQ(last, reference) << "diff (reference -> after the storm): " << json::diff(reference, last).dump(2)
                             << tail(op.logs(), 40);
  ASSERT_TRUE(same);
  std::map<std::string, int> perObject;
  auto finalWrites = writesIn(ns, finalStart, false);
  for (const auto& w : finalWrites) perObject[auditResource(w) + "/" + w["objectRef"].value("name", "")]++;
  for (const auto& [object, count] : perObject)
    EXPECT_LE(count, 1) << object << " written repeatedly:" << describe(finalWrites);
  std::cout << "[ measured ] converged " << convergeSeconds << " s after the last start with " << finalWrites.size()
            << " workload/ConfigMap writes\n";

  // Once converged, a restart (kill -9 and start) writes no workload, ConfigMap or status at all.
  op.stop(SIGKILL);
  size_t restartStart = auditLineCount();
  op.start();
  ASSERT_TRUE(op.waitReady()) << op.logs();
  std::this_thread::sleep_for(10s);
  auto restartWrites = writesIn(ns, restartStart, true);
  EXPECT_TRUE(restartWrites.empty()) << "writes after restarting a converged operator:" << describe(restartWrites);
  EXPECT_EQ(snapshot(ns), reference);
  op.stop();
}

// ---- leader election -----------------------------------------------------------------------------------------

std::string leaseHolder(const std::string& lease) {
  json l = getJson("default", "lease/" + lease);
  return l.is_object() ? l["spec"].value("holderIdentity", "") : "";
}

struct Acquisition {
  std::string user;
  double at;  // stageTimestamp of the first successful Lease write after another user's
};

TEST(OperatorFaults, LeaderFailoverIsPromptAndWritersNeverOverlap) {
  installCrds();
  const std::string ns = createNamespace("leader");
  const std::string lease = "poolguard-" + ns;
  const std::vector<std::string> users{"poolguard-replica-a", "poolguard-replica-b"};
  for (const auto& u : users) {
    addAdminContext(u);
    if (HasFatalFailure()) return;
  }
  const double leaseDuration = 15, retryPeriod = 2;
  auto args = [&](const std::string& user) {
    return std::vector<std::string>{"--context=" + user,
                                    "--leader-elect",
                                    "--leader-election-namespace=default",
                                    "--leader-election-id=" + lease,
                                    "--lease-duration=15",
                                    "--renew-deadline=10",
                                    "--retry-period=2"};
  };
  for (int i = 0; i < 6; ++i) ASSERT_EQ(applyYaml(ns, deploymentYaml("w" + std::to_string(i), {{"group", "g"}})), "");
  auto policy = [&](int size) { return policyYaml(basicPolicy("p", {{"group", "g"}}, size, "db-" + ns)); };
  ASSERT_EQ(applyYaml(ns, policy(5)), "");

  const size_t auditStart = auditLineCount();
  std::vector<std::unique_ptr<OperatorProcess>> replicas;
  for (const auto& u : users) {
    replicas.push_back(std::make_unique<OperatorProcess>(args(u)));
    replicas.back()->start();
  }
  for (auto& r : replicas) ASSERT_TRUE(r->waitReady()) << r->logs();
  auto leaderIndex = [&]() -> int {
    std::string holder = leaseHolder(lease);
    for (size_t i = 0; i < replicas.size(); ++i) {
      if (replicas[i]->running() && operatorIdentity(*replicas[i]) == holder) return static_cast<int>(i);
    }
    return -1;
  };
  ASSERT_TRUE(eventually([&] { return leaderIndex() >= 0; }, 40s))
      << "no leader: holder '" << leaseHolder(lease) << "'";

  // Work to do throughout: the policy changes every second, so a leader is writing when it dies.
  std::atomic<bool> churning{true};
  std::atomic<int> lastSize{5};
  std::thread churn([&] {
    int size = 5;
    while (churning) {
      size = size >= 15 ? 5 : size + 1;
      if (applyYaml(ns, policy(size)).empty()) lastSize = size;
      std::this_thread::sleep_for(1s);
    }
  });

  struct Round {
    int sig;
    double takeover = -1;  // seconds from the signal to the standby's first Lease write as holder
  };
  std::vector<Round> rounds;
  for (int k = 0; k < soakFactor(); ++k) {
    for (int sig : {SIGKILL, SIGTERM, SIGTERM, SIGKILL, SIGTERM}) rounds.push_back({sig});
  }
  for (auto& round : rounds) {
    int leader = leaderIndex();
    ASSERT_GE(leader, 0);
    int standby = 1 - leader;
    ASSERT_TRUE(replicas[standby]->waitReady()) << replicas[standby]->logs();
    const std::string standbyIdentity = operatorIdentity(*replicas[standby]);
    std::this_thread::sleep_for(3s);
    size_t roundAudit = auditLineCount();
    double signalledAt = wallNow();
    std::thread stopper([&] { replicas[leader]->stop(round.sig); });
    bool took = eventually([&] { return leaseHolder(lease) == standbyIdentity; }, 45s);
    stopper.join();
    ASSERT_TRUE(took) << "the standby never took the Lease; holder '" << leaseHolder(lease) << "'\n"
                      << tail(replicas[standby]->logs(), 30);
    double released = -1;  // the old leader's last Lease write after the signal: its release on SIGTERM
    for (const auto& e : operatorRequests(roundAudit, true)) {
      int code = e.value("responseStatus", json::object()).value("code", 0);
      if (e["objectRef"].value("resource", "") != "leases" || e["objectRef"].value("name", "") != lease || code >= 300)
        continue;
      double at = auditTime(e, "stageTimestamp") - signalledAt;
      if (e["user"].value("username", "") == users[leader] && at >= 0) released = at;
      if (e["user"].value("username", "") == users[standby]) {
        round.takeover = at;
        break;
      }
    }
    std::cout << "[ measured ] " << (round.sig == SIGKILL ? "kill -9" : "SIGTERM")
              << " of the leader: the standby held the Lease after " << round.takeover << " s";
    if (round.sig == SIGTERM) std::cout << " (released after " << released << " s)";
    std::cout << "\n";
    if (round.sig == SIGKILL) {
      // The Lease is free once it has not been renewed for leaseDuration, measured on the standby's clock from
      // when it saw the last renewal (up to one jittered retry period, 2.2 x retryPeriod, after it happened); the
      // standby notices on its next attempt (another jittered retry period at most).
      EXPECT_LE(round.takeover, leaseDuration + 2 * 2.2 * retryPeriod) << "kill -9 failover too slow";
    } else {
      EXPECT_LE(round.takeover, 3.0) << "SIGTERM must hand over within 3 s (the leader releases the Lease)";
    }
    EXPECT_GE(round.takeover, 0) << "no Lease write by the standby found in the audit log";
    replicas[leader] = std::make_unique<OperatorProcess>(args(users[leader]));
    replicas[leader]->start();
    ASSERT_TRUE(replicas[leader]->waitReady()) << replicas[leader]->logs();
  }

  churning = false;
  churn.join();
  const std::string want = std::to_string(lastSize.load());
  EXPECT_TRUE(eventually(
      [&] {
        for (int i = 0; i < 6; ++i) {
          if (envValue(getJson(ns, "deployment/w" + std::to_string(i)), "app", "POOL_MAX_SIZE") != want) return false;
        }
        return conditionIs(ns, "p", "Ready", "True");
      },
      60s))
      << "the last leader did not converge to maxSize " << want;

  // Never two writers: every write to a workload, ConfigMap or policy comes from the user whose acquisition of the
  // Lease is the latest one before it.
  auto entries = operatorRequests(auditStart, false);
  std::vector<Acquisition> acquisitions;
  std::string lastLeaseWriter;
  for (const auto& e : entries) {
    std::string verb = e.value("verb", "");
    if (e["objectRef"].value("resource", "") != "leases" || e["objectRef"].value("name", "") != lease) continue;
    if ((verb != "update" && verb != "create") || e.value("responseStatus", json::object()).value("code", 0) >= 300)
      continue;
    std::string user = e["user"].value("username", "");
    if (user != lastLeaseWriter) acquisitions.push_back({user, auditTime(e, "stageTimestamp")});
    lastLeaseWriter = user;
  }
  std::sort(acquisitions.begin(), acquisitions.end(), [](const auto& a, const auto& b) { return a.at < b.at; });
  ASSERT_GE(acquisitions.size(), rounds.size() + 1) << "fewer Lease acquisitions than failovers";
  int writes = 0;
  std::vector<std::string> overlaps;
  std::map<std::string, int> writesByUser;
  for (const auto& e : entries) {
    std::string verb = e.value("verb", "");
    std::string resource = e["objectRef"].value("resource", "");
    if (verb != "create" && verb != "update" && verb != "patch" && verb != "delete") continue;
    if (resource != "deployments" && resource != "statefulsets" && resource != "configmaps" &&
        resource != "connectionpoolpolicies") {
      continue;
    }
    ++writes;
    std::string user = e["user"].value("username", "");
    writesByUser[user]++;
    double at = auditTime(e, "requestReceivedTimestamp");
    const Acquisition* current = nullptr;
    for (const auto& a : acquisitions) {
      if (a.at <= at) current = &a;
    }
    if (!current || current->user != user) {
      overlaps.push_back(user + " " + verb + " " + auditResource(e) + " " + e["objectRef"].value("name", "") + " at " +
                         e.value("requestReceivedTimestamp", "") + " while the Lease was " +
                         (current ? current->user + "'s" : "not yet held"));
    }
  }
  std::cout << "[ measured ] " << acquisitions.size() << " Lease acquisitions, " << writes << " writes";
  for (const auto& [u, n] : writesByUser) std::cout << ", " << u << ": " << n;
  std::cout << "; writes outside their writer's leadership: " << overlaps.size() << "\n";
  EXPECT_GT(writes, 0);
  EXPECT_TRUE(overlaps.empty()) << ::testing::PrintToString(overlaps);
}

// ---- a leader whose connection stalls ----------------------------------------------------------------------

// The leader reaches the API server through a TCP proxy that stalls: its renewals hang, as do the writes it has in
// flight. It must stop writing before its lease can expire for the standby, and no write it had in flight may land
// once the path comes back (the proxy then delivers what connections still open had sent). The standby takes over
// once the lease has gone unrenewed for its duration.
TEST(OperatorFaults, ALeaderWhosePathStallsStopsWritingBeforeItsLeaseExpires) {
  installCrds();
  const std::string ns = createNamespace("stall");
  const std::string lease = "poolguard-" + ns;
  const std::string stalledUser = "poolguard-stalled", standbyUser = "poolguard-standby";
  for (const auto& u : {stalledUser, standbyUser}) {
    addAdminContext(u);
    if (HasFatalFailure()) return;
  }
  const std::string server = cluster().server;  // https://127.0.0.1:PORT
  const int apiPort = std::stoi(server.substr(server.rfind(':') + 1));
  TcpProxy proxy("127.0.0.1", apiPort);
  ASSERT_TRUE(proxy.start());
  const std::string proxied = "via-proxy-" + std::to_string(proxy.port());
  auto r =
      cluster().kubectl({"config", "set-cluster", proxied, "--server=https://127.0.0.1:" + std::to_string(proxy.port()),
                         "--certificate-authority=" + cluster().dir + "/certs/ca.crt"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  r = cluster().kubectl(
      {"config", "set-context", proxied, "--cluster=" + proxied, "--user=" + stalledUser, "--namespace=default"});
  ASSERT_EQ(r.exitCode, 0) << r.err;

  const double leaseDuration = 8, renewDeadline = 5, retryPeriod = 1;
  auto args = [&](const std::string& context) {
    return std::vector<std::string>{"--context=" + context,
                                    "--leader-elect",
                                    "--leader-election-namespace=default",
                                    "--leader-election-id=" + lease,
                                    "--lease-duration=8",
                                    "--renew-deadline=5",
                                    "--retry-period=1"};
  };
  for (int i = 0; i < 6; ++i) ASSERT_EQ(applyYaml(ns, deploymentYaml("w" + std::to_string(i), {{"group", "g"}})), "");
  auto policy = [&](int size) { return policyYaml(basicPolicy("p", {{"group", "g"}}, size, "db-" + ns)); };
  ASSERT_EQ(applyYaml(ns, policy(5)), "");

  const size_t auditStart = auditLineCount();
  OperatorProcess leader(args(proxied));
  leader.start();
  ASSERT_TRUE(leader.waitReady()) << leader.logs();
  const std::string leaderIdentity = operatorIdentity(leader);
  ASSERT_TRUE(eventually([&] { return leaseHolder(lease) == leaderIdentity; }, 40s)) << tail(leader.logs(), 30);
  OperatorProcess standby(args(standbyUser));
  standby.start();
  ASSERT_TRUE(standby.waitReady()) << standby.logs();
  const std::string standbyIdentity = operatorIdentity(standby);

  // Work to do throughout, so the leader has writes in flight when its path stalls.
  std::atomic<bool> churning{true};
  std::thread churn([&] {
    int size = 5;
    while (churning) {
      size = size >= 15 ? 5 : size + 1;
      applyYaml(ns, policy(size));
      std::this_thread::sleep_for(500ms);
    }
  });
  std::this_thread::sleep_for(4s);
  const double stalledAt = wallNow();
  proxy.stall();
  bool took = eventually([&] { return leaseHolder(lease) == standbyIdentity; }, 60s);
  const double tookAt = wallNow();
  // The path comes back after the standby took over: whatever the old leader still had in flight is delivered now.
  std::this_thread::sleep_for(2s);
  proxy.resume();
  std::this_thread::sleep_for(6s);
  churning = false;
  churn.join();
  ASSERT_TRUE(took) << "the standby never took the Lease; holder '" << leaseHolder(lease) << "'\n"
                    << tail(standby.logs(), 30);
  EXPECT_TRUE(eventually([&] { return !leader.running(); }, 30s)) << "the old leader must exit once it lost the lease\n"
                                                                  << tail(leader.logs(), 30);

  // The audit log, on the API server's clock.
  double lastRenewal = 0, takeover = 0;
  for (const auto& e : operatorRequests(auditStart, true)) {
    if (e["objectRef"].value("resource", "") != "leases" || e["objectRef"].value("name", "") != lease) continue;
    if (e.value("responseStatus", json::object()).value("code", 0) >= 300) continue;
    std::string user = e["user"].value("username", "");
    double at = auditTime(e, "stageTimestamp");
    if (user == stalledUser && at < stalledAt + 1) lastRenewal = std::max(lastRenewal, at);
    if (user == standbyUser && takeover == 0) takeover = at;
  }
  ASSERT_GT(lastRenewal, 0) << "no Lease renewal by the leader before the stall";
  ASSERT_GT(takeover, 0) << "no Lease acquisition by the standby in the audit log";
  const double expiry = lastRenewal + leaseDuration;
  std::vector<std::string> late;
  double lastWrite = 0;
  int writes = 0;
  for (const auto& e : operatorRequests(auditStart, true)) {
    if (e["user"].value("username", "") != stalledUser || e["objectRef"].value("resource", "") == "leases") continue;
    ++writes;
    double at = auditTime(e, "requestReceivedTimestamp");
    lastWrite = std::max(lastWrite, at);
    if (at >= expiry || at >= takeover) {
      late.push_back(e.value("verb", "") + " " + auditResource(e) + " " + e["objectRef"].value("name", "") + " " +
                     std::to_string(at - lastRenewal) + " s after the last renewal");
    }
  }
  std::cout << "[ measured ] stalled leader: last renewal " << lastRenewal - stalledAt
            << " s after the stall, last write " << lastWrite - lastRenewal << " s after it (renew deadline "
            << renewDeadline << " s, lease " << leaseDuration << " s); standby took over " << takeover - lastRenewal
            << " s after the last renewal (" << tookAt - stalledAt << " s after the stall); " << writes
            << " writes by the old leader, " << late.size() << " after its lease expired; proxy dropped "
            << proxy.dropped() << " abandoned connections\n";
  EXPECT_GT(writes, 0) << "the leader wrote nothing before the stall: the test proves nothing";
  EXPECT_TRUE(late.empty()) << ::testing::PrintToString(late);
  // The standby notices the lease unrenewed for its duration on its own clock, which starts when it sees the last
  // renewal (up to one jittered retry period after it), and tries again within another.
  EXPECT_LE(takeover - lastRenewal, leaseDuration + 2 * 1.2 * retryPeriod + 1.0);
  EXPECT_NE(leader.logs().find("stepping down"), std::string::npos) << tail(leader.logs(), 30);
}

}  // namespace
}  // namespace poolguard::testing::reliability
