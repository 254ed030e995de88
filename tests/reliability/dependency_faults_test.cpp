// What the operator depends on or shares misbehaves: PostgreSQL goes down, comes back and has its monitoring
// password rotated; another field manager keeps overwriting a value the operator owns.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdlib>

#include <atomic>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "reliability_support.h"

namespace poolguard::testing::reliability {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// ---- PostgreSQL ----------------------------------------------------------------------------------------------

const char* kRole = "poolguard_watch";

// The cluster's PostgreSQL trusts every local connection; the monitoring role must present its password, or a
// rotation could not fail anything.
void requirePasswordFor(const std::string& role) {
  const std::string path = cluster().dir + "/pg/data/pg_hba.conf";
  std::ifstream in(path);
  std::stringstream old;
  old << in.rdbuf();
  in.close();
  std::string line = "host all " + role + " 127.0.0.1/32 scram-sha-256\n";
  if (old.str().find(line) == std::string::npos) std::ofstream(path, std::ios::trunc) << line << old.str();
  auto r = cluster().psql("select pg_reload_conf()");
  ASSERT_EQ(r.exitCode, 0) << r.err;
}

void setSecret(const std::string& ns, const std::string& password) {
  auto manifest = cluster().kubectl({"-n", ns, "create", "secret", "generic", "pg-watch",
                                     "--from-literal=username=" + std::string(kRole),
                                     "--from-literal=password=" + password, "--dry-run=client", "-o", "yaml"});
  ASSERT_EQ(manifest.exitCode, 0) << manifest.err;
  ASSERT_EQ(applyYaml(ns, manifest.out), "");
  // The Secret allows the test's PostgreSQL (the policy connects to 127.0.0.1).
  auto granted = cluster().kubectl({"-n", ns, "annotate", "--overwrite", "secret", "pg-watch",
                                    "poolguard.dev/allowed-servers=127.0.0.1:" + std::to_string(cluster().pgPort)});
  ASSERT_EQ(granted.exitCode, 0) << granted.err;
}

std::string pgBin() {
  for (const char* d : {"/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"}) {
    if (std::ifstream(std::string(d) + "/pg_ctl").good()) return d;
  }
  return "/usr/lib/postgresql/15/bin";
}

// pg_ctl stop -m fast, as the user that runs the server (root may not run pg_ctl).
bool stopPostgres() {
  std::vector<std::string> argv;
  if (geteuid() == 0) argv = {"runuser", "-u", "postgres", "--"};
  for (const auto& a : {pgBin() + "/pg_ctl", std::string("-D"), cluster().dir + "/pg/data", std::string("stop"),
                        std::string("-m"), std::string("fast"), std::string("-w")}) {
    argv.push_back(a);
  }
  auto r = run(argv);
  if (r.exitCode != 0) std::cerr << "pg_ctl stop: " << r.out << r.err << "\n";
  return r.exitCode == 0;
}

std::string usageState(const std::string& ns) {
  json c = condition(getJson(ns, "cpol/p"), "UsageHealthy");
  return c.value("status", "?") + "/" + c.value("reason", "?") + ": " + c.value("message", "");
}

TEST(DependencyFaults, PostgresOutageAndPasswordRotationRecoverWithoutARestart) {
  installCrds();
  const std::string ns = createNamespace("postgres");
  const int outageSeconds = envInt("POOLGUARD_POSTGRES_OUTAGE_SECONDS", 15);
  auto r = cluster().psql(std::string("drop role if exists ") + kRole + "; create role " + kRole +
                          " login password 'first-secret' in role pg_monitor");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  requirePasswordFor(kRole);
  if (HasFatalFailure()) return;
  // The role really needs its password now.
  auto wrong = run({"psql", "-X", "-A", "-t", "-q", "-h", cluster().pgHost, "-p", std::to_string(cluster().pgPort),
                    "-U", kRole, "-d", "postgres", "-c", "select 1"},
                   "", {{"PGPASSWORD", "not-it"}});
  ASSERT_NE(wrong.exitCode, 0) << "pg_hba.conf still trusts " << kRole;
  setSecret(ns, "first-secret");
  if (HasFatalFailure()) return;
  ASSERT_EQ(applyYaml(ns, deploymentYaml("web", {{"group", "g"}})), "");
  PolicyOptions p = basicPolicy("p", {{"group", "g"}}, 5, "db-" + ns);
  p.maxConnections = 100;
  p.extraSpec = "  usage:\n    interval: 5s\n    postgres:\n      host: 127.0.0.1\n      port: " +
                std::to_string(cluster().pgPort) +
                "\n      database: postgres\n      sslMode: disable\n      credentialsSecretRef: {name: pg-watch}\n";
  ASSERT_EQ(applyYaml(ns, policyYaml(p)), "");
  OperatorProcess op;
  op.start();
  ASSERT_TRUE(op.waitReady()) << op.logs();
  const pid_t pid = operatorPid(op);
  auto healthy = [&] { return conditionIs(ns, "p", "UsageHealthy", "True", "Healthy"); };
  auto unavailable = [&] { return conditionIs(ns, "p", "UsageHealthy", "Unknown", "UsageUnavailable"); };
  ASSERT_TRUE(eventually(healthy, 60s)) << usageState(ns) << tail(op.logs(), 30);

  std::string password = "first-secret";
  for (int cycle = 0; cycle < soakFactor(); ++cycle) {
    // Outage: the server stopped the way an operator of PostgreSQL would, then started with its own command line.
    auto argv = processCmdline(componentPid("postgres"));
    ASSERT_FALSE(argv.empty()) << "no running postgres recorded in " << cluster().dir << "/pids";
    ASSERT_TRUE(stopPostgres());
    auto stoppedAt = Clock::now();
    bool wentUnknown = eventually(unavailable, 60s);
    double toUnknown = secondsSince(stoppedAt);
    EXPECT_TRUE(wentUnknown) << "PostgreSQL down: " << usageState(ns);
    EXPECT_TRUE(conditionIs(ns, "p", "Applied", "True")) << "a usage failure must not touch settings";
    while (secondsSince(stoppedAt) < outageSeconds) std::this_thread::sleep_for(500ms);
    ASSERT_GT(launchComponent("postgres", argv), 0);
    ASSERT_TRUE(waitPostgresReady(60s)) << "PostgreSQL did not come back";
    auto upAt = Clock::now();
    bool backHealthy = eventually(healthy, 60s);
    double toHealthy = secondsSince(upAt);
    EXPECT_TRUE(backHealthy) << "PostgreSQL back: " << usageState(ns) << tail(op.logs(), 30);

    // Rotation. ALTER ROLE leaves open sessions logged in: the checker's reused connection keeps working until the
    // sessions are ended (as a rotation that revokes the old credential does). Then the stale Secret fails the
    // login until the Secret carries the new password.
    std::string next = "rotated-" + std::to_string(cycle);
    r = cluster().psql("alter role " + std::string(kRole) + " password '" + next + "'");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    std::this_thread::sleep_for(12s);
    std::string duringOpenSession = usageState(ns);
    r = cluster().psql("select count(pg_terminate_backend(pid)) from pg_stat_activity where usename = '" +
                       std::string(kRole) + "'");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    auto revokedAt = Clock::now();
    bool rotationUnknown = eventually(unavailable, 60s);
    double toRotationUnknown = secondsSince(revokedAt);
    EXPECT_TRUE(rotationUnknown) << "old password revoked, Secret stale: " << usageState(ns);
    std::string staleState = usageState(ns);
    EXPECT_NE(staleState.find("authentication"), std::string::npos) << staleState;
    setSecret(ns, next);
    if (HasFatalFailure()) return;
    password = next;
    auto updatedAt = Clock::now();
    bool rotatedHealthy = eventually(healthy, 60s);
    double toRotatedHealthy = secondsSince(updatedAt);
    EXPECT_TRUE(rotatedHealthy) << "Secret updated: " << usageState(ns) << tail(op.logs(), 30);

    std::cout << "[ measured ] cycle " << cycle << ": PostgreSQL stopped -> Unknown after " << toUnknown
              << " s; restarted -> Healthy after " << toHealthy << " s; password altered, session open: '"
              << duringOpenSession << "'; sessions ended -> Unknown after " << toRotationUnknown << " s ('"
              << staleState << "'); Secret updated -> Healthy after " << toRotatedHealthy << " s\n";
  }
  EXPECT_TRUE(op.running());
  EXPECT_EQ(operatorPid(op), pid) << "the operator was restarted";
}

// ---- field-manager fight -------------------------------------------------------------------------------------

// One server-side apply by another field manager, forcing POOL_MAX_SIZE to its own value (what
// `kubectl apply --server-side --force-conflicts --field-manager=rogue` sends; curl costs a fraction of kubectl's
// start-up, so the loop keeps its 200 ms pace on a loaded machine).
int rogueApply(const std::string& ns, const std::string& value) {
  const std::string certs = cluster().dir + "/certs/";
  json body = {{"apiVersion", "apps/v1"},
               {"kind", "Deployment"},
               {"metadata", {{"name", "web"}, {"namespace", ns}}},
               {"spec",
                {{"template",
                  {{"spec",
                    {{"containers",
                      json::array({{{"name", "app"},
                                    {"env", json::array({{{"name", "POOL_MAX_SIZE"}, {"value", value}}})}}})}}}}}}}};
  auto r = run({"curl",
                "-s",
                "-m",
                "5",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--cacert",
                certs + "ca.crt",
                "--cert",
                certs + "admin.crt",
                "--key",
                certs + "admin.key",
                "-X",
                "PATCH",
                "-H",
                "Content-Type: application/apply-patch+yaml",
                "--data-binary",
                "@-",
                cluster().server + "/apis/apps/v1/namespaces/" + ns + "/deployments/web?fieldManager=rogue&force=true"},
               body.dump());
  return r.exitCode == 0 ? std::atoi(r.out.c_str()) : 0;
}

TEST(DependencyFaults, FieldManagerFightIsBackedOffAndReported) {
  installCrds();
  const std::string ns = createNamespace("fight");
  // 180 s covers two contests (a 60 s pause, then 120 s); POOLGUARD_FIGHT_SECONDS=600 runs ten minutes.
  const int fightSeconds = envInt("POOLGUARD_FIGHT_SECONDS", 180) * soakFactor();
  ASSERT_EQ(applyYaml(ns, deploymentYaml("web", {{"group", "g"}})), "");
  ASSERT_EQ(applyYaml(ns, policyYaml(basicPolicy("p", {{"group", "g"}}, 10, "db-" + ns))), "");
  OperatorProcess op;
  op.start();
  ASSERT_TRUE(op.waitReady()) << op.logs();
  ASSERT_TRUE(eventually([&] { return envValue(getJson(ns, "deployment/web"), "app", "POOL_MAX_SIZE") == "10"; }, 60s));
  ASSERT_TRUE(eventually([&] { return conditionIs(ns, "p", "Ready", "True"); }, 30s));

  const size_t auditStart = auditLineCount();
  const double fightStart = wallNow();
  std::atomic<bool> fighting{true};
  std::atomic<int> rogueOk{0}, rogueFailed{0};
  std::thread rogue([&] {
    while (fighting) {
      auto next = Clock::now() + 200ms;
      (rogueApply(ns, "77") == 200 ? rogueOk : rogueFailed)++;
      std::this_thread::sleep_until(next);
    }
  });
  // While the fight goes on, the policy must say so.
  json contestedCondition;
  auto fightStartedAt = Clock::now();
  while (secondsSince(fightStartedAt) < fightSeconds) {
    json c = condition(getJson(ns, "cpol/p"), "Applied");
    if (contestedCondition.is_null() && c.value("status", "") == "False" &&
        c.value("message", "").find("rogue") != std::string::npos) {
      contestedCondition = c;
    }
    std::this_thread::sleep_for(1s);
  }
  fighting = false;
  rogue.join();
  const double fightEnd = wallNow();

  // Writes to web in the window, from the audit log.
  int rogueWrites = 0, operatorWrites = 0, firstHalf = 0, secondHalf = 0;
  std::vector<double> operatorTimes;
  for (const auto& e : auditEntries(auditStart)) {
    if (e["objectRef"].value("resource", "") != "deployments" || e["objectRef"].value("name", "") != "web" ||
        e["objectRef"].value("namespace", "") != ns || e.value("verb", "") != "patch") {
      continue;
    }
    double at = auditTime(e);
    if (at > fightEnd) continue;
    if (e.value("userAgent", "").rfind("curl/", 0) == 0) ++rogueWrites;
    if (e.value("userAgent", "").rfind("poolguard/", 0) == 0) {
      ++operatorWrites;
      operatorTimes.push_back(at - fightStart);
      (at - fightStart < (fightEnd - fightStart) / 2 ? firstHalf : secondHalf)++;
    }
  }
  std::cout << "[ measured ] " << fightSeconds << " s fight: other manager " << rogueWrites << " writes ("
            << rogueFailed << " failed), operator " << operatorWrites << " writes (" << firstHalf
            << " in the first half, " << secondHalf << " in the second); operator writes per 10 s:";
  std::vector<int> perTenSeconds(static_cast<size_t>((fightEnd - fightStart) / 10) + 1, 0);
  for (double t : operatorTimes)
    perTenSeconds[std::min(perTenSeconds.size() - 1, static_cast<size_t>(std::max(0.0, t) / 10))]++;
  for (int n : perTenSeconds) std::cout << " " << n;
  std::cout << "\n";
  ASSERT_GT(rogueWrites, fightSeconds) << "the other manager did not keep up its pace";

  // No hot loop: never more corrections than the other manager made, plus a few.
  EXPECT_LE(operatorWrites, rogueWrites + 3);
  // Bounded by the back-off series (controller/contest.h: more than 5 corrections within 60 s start a pause of
  // 60 s, doubling per contest up to 30 min): each contest that can start within the fight costs at most the 6
  // corrections that made it, plus the one write that ended the pause before it; one more contest for timing.
  int contestsInFight = 0;
  for (double start = 0, pause = 60; start < fightEnd - fightStart; start += pause, pause = std::min(pause * 2, 1800.0))
    ++contestsInFight;
  EXPECT_LE(operatorWrites, (contestsInFight + 1) * 7)
      << contestsInFight << " contests fit in the fight: the back-off does not grow";
  // The pauses grow: once a second contest started, some silence outlasts the first 60 s pause by far.
  double longestSilence = 0;
  for (size_t i = 0; i < operatorTimes.size(); ++i) {
    double next = i + 1 < operatorTimes.size() ? operatorTimes[i + 1] : fightEnd - fightStart;
    longestSilence = std::max(longestSilence, next - operatorTimes[i]);
  }
  std::cout << "[ measured ] longest silence of the operator during the fight: " << longestSilence << " s\n";
  if (fightSeconds >= 180) {
    EXPECT_GT(longestSilence, 90) << "the pause did not double after the first contest";
  }
  // Backoff: the corrections thin out as the fight goes on.
  EXPECT_LE(secondHalf, std::max(2, firstHalf / 2)) << "no backoff: the operator corrects at a steady pace";
  // And it says so: an Event naming the other manager, and the Applied condition.
  json events = getJson(ns, "events");
  json conflictEvent;
  for (const auto& ev : events.value("items", json::array())) {
    if (ev.value("reason", "") == "FieldManagerConflict" &&
        ev.value("message", "").find("rogue") != std::string::npos) {
      conflictEvent = ev;
    }
  }
  EXPECT_FALSE(conflictEvent.is_null()) << "no FieldManagerConflict Event naming the manager 'rogue'; Events: " << [&] {
    std::string reasons;
    for (const auto& ev : events.value("items", json::array())) {
      reasons += " " + ev.value("reason", "");
    }
    return reasons;
  }();
  EXPECT_FALSE(contestedCondition.is_null())
      << "Applied never went False naming the manager 'rogue' during the fight; last: "
      << condition(getJson(ns, "cpol/p"), "Applied").dump();
  if (!contestedCondition.is_null()) {
    std::string reason = contestedCondition.value("reason", "");
    EXPECT_TRUE(reason == "Contested" || reason == "ApplyFailed") << contestedCondition.dump();
  }

  // The Event reached the policy too, where `kubectl describe cpol` shows it.
  bool onPolicy = false;
  for (const auto& ev : events.value("items", json::array())) {
    onPolicy = onPolicy || (ev.value("reason", "") == "FieldManagerConflict" &&
                            ev["involvedObject"].value("kind", "") == "ConnectionPoolPolicy");
  }
  EXPECT_TRUE(onPolicy) << "no FieldManagerConflict Event on the policy";

  // Once the other manager stops, the operator's value is restored when the pause in progress ends (at most the
  // last pause of the series) and the condition clears.
  double lastPause = 60;
  for (int i = 1; i < contestsInFight; ++i) lastPause = std::min(lastPause * 2, 1800.0);
  auto endedAt = Clock::now();
  bool restored = eventually(
      [&] {
        return envValue(getJson(ns, "deployment/web"), "app", "POOL_MAX_SIZE") == "10" &&
               conditionIs(ns, "p", "Applied", "True");
      },
      std::chrono::seconds(static_cast<int>(lastPause) + 60));
  std::cout << "[ measured ] after the fight: restored "
            << (restored ? "after " + std::to_string(secondsSince(endedAt)) + " s" : "never") << "\n";
  EXPECT_TRUE(restored) << tail(op.logs(), 30);
  EXPECT_TRUE(op.running());
}

}  // namespace
}  // namespace poolguard::testing::reliability
