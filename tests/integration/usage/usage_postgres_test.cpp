// Live usage against a real PostgreSQL (TLS from a test CA, max_connections 20) and a real Prometheus, both
// started by this binary. Credentials are passed directly; the Secret path is in usage_secret_test.cpp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>

#include "local_servers.h"
#include "usage/checker.h"
#include "usage/postgres_source.h"
#include "usage/prometheus_source.h"

namespace poolguard::usage {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

testing::PostgresServer* server = nullptr;

class PostgresEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    server = &pg_;
    pg_.start(20);
  }
  void TearDown() override { pg_.stop(); }

 private:
  testing::PostgresServer pg_;
};

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return cond();
}

// Sessions a test opens and closes, so the next test starts from an idle server.
class Sessions {
 public:
  ~Sessions() { closeAll(); }
  PGconn* open(const std::string& app) {
    PGconn* c = server->connect(app);
    if (c) conns_.push_back(c);
    return c;
  }
  void closeAll() {
    for (auto* c : conns_) PQfinish(c);
    conns_.clear();
  }

 private:
  std::vector<PGconn*> conns_;
};

bool run(PGconn* c, const char* sql) {
  PGresult* r = PQexec(c, sql);
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
  PQclear(r);
  return ok;
}

policy::Policy makePolicy(const std::string& host = "localhost") {
  policy::Policy p;
  p.name = "orders";
  p.namespace_ = "ns1";
  p.spec.database.name = "orders-db";
  p.spec.pool.maxSize = 5;
  policy::PostgresSource pg;
  pg.host = host;
  pg.port = server->port();
  pg.database = "postgres";
  pg.credentialsSecretRef.name = "pg-monitor";
  pg.caSecretRef = policy::SecretKeyRef{"pg-ca", "ca.crt"};
  p.spec.usage.postgres = pg;
  p.spec.usage.thresholds.idleInTransaction = 2s;
  return p;
}

PostgresCredentials monitorCredentials() {
  return {testing::PostgresServer::kMonitorUser, testing::PostgresServer::kMonitorPassword, server->caPem()};
}

GovernedWorkload workload(const std::string& name, int32_t pods, int32_t maxSize) {
  GovernedWorkload w;
  w.namespace_ = "ns1";
  w.name = name;
  w.applicationName = "ns1/" + name;
  w.podsNow = pods;
  w.podsMax = pods;
  w.maxSize = maxSize;
  return w;
}

class UsagePostgres : public ::testing::Test {
 protected:
  UsageReport check(const policy::Policy& p, const std::vector<GovernedWorkload>& workloads,
                    const PostgresCredentials& creds) {
    return checker.check(p, workloads, std::optional<Result<PostgresCredentials>>(creds));
  }
  UsageReport check(const std::vector<GovernedWorkload>& workloads) {
    return check(makePolicy(), workloads, monitorCredentials());
  }
  Checker checker{SystemClock::instance()};
  Sessions sessions;
};

TEST_F(UsagePostgres, VerifyFullWithTheTestCaSucceedsByNameAndByAddress) {
  // The CA goes to a private temporary file only while libpq connects.
  char tmpl[] = "/tmp/poolguard-usage-tmp-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const char* previousTmp = std::getenv("TMPDIR");
  std::string savedTmp = previousTmp ? previousTmp : "";
  ::setenv("TMPDIR", tmpl, 1);
  for (const char* host : {"localhost", "127.0.0.1"}) {
    auto report = check(makePolicy(host), {workload("app", 1, 5)}, monitorCredentials());
    EXPECT_EQ(report.result.condition.reason, "Healthy") << host << ": " << report.result.condition.message;
    EXPECT_EQ(report.result.usage.source, "postgres");
    EXPECT_EQ(report.result.usage.serverMaxConnections, 20);
    EXPECT_EQ(report.result.usage.connections, 0);
    EXPECT_TRUE(report.errors.empty());
  }
  if (previousTmp)
    ::setenv("TMPDIR", savedTmp.c_str(), 1);
  else
    ::unsetenv("TMPDIR");
  EXPECT_EQ(::rmdir(tmpl), 0) << "CA files left behind in " << tmpl;
}

TEST_F(UsagePostgres, ACertificateFromAnotherCaIsRefused) {
  auto creds = monitorCredentials();
  creds.caPem = server->wrongCaPem();
  auto report = check(makePolicy(), {workload("app", 1, 5)}, creds);
  EXPECT_EQ(report.result.condition.status, ConditionStatus::kUnknown);
  EXPECT_EQ(report.result.condition.reason, "UsageUnavailable");
  EXPECT_THAT(report.result.condition.message,
              HasSubstr("postgres localhost:" + std::to_string(server->port()) + ": TLS verification failed"));
  EXPECT_THAT(report.result.condition.message, HasSubstr("certificate verify failed"));
  ASSERT_EQ(report.errors.size(), 1u);
  EXPECT_EQ(report.errors[0].reason(), postgres_reasons::kTls);
}

TEST_F(UsagePostgres, VerificationIsOnWithoutACaSecret) {
  auto creds = monitorCredentials();
  creds.caPem.reset();  // the system bundle does not know the test CA
  auto report = check(makePolicy(), {}, creds);
  EXPECT_EQ(report.result.condition.reason, "UsageUnavailable");
  ASSERT_EQ(report.errors.size(), 1u);
  EXPECT_EQ(report.errors[0].reason(), postgres_reasons::kTls) << report.errors[0].message();
}

TEST_F(UsagePostgres, WrongPasswordIsUnknownWithAClearReasonAndNoSecretValue) {
  auto creds = monitorCredentials();
  creds.password = "not-the-password-31337";
  creds.usernameFrom = "the value of key \"username\" of Secret ns1/pg-monitor";
  auto report = check(makePolicy(), {workload("app", 1, 5)}, creds);
  EXPECT_EQ(report.result.condition.status, ConditionStatus::kUnknown);
  EXPECT_EQ(report.result.condition.reason, "UsageUnavailable");
  // PostgreSQL quotes the user name back; the status names where it came from instead.
  EXPECT_EQ(
      report.result.condition.message,
      "postgres localhost:" + std::to_string(server->port()) +
          ": password authentication failed for user \"<the value of key \"username\" of Secret ns1/pg-monitor>\"");
  EXPECT_THAT(report.result.condition.message, Not(HasSubstr("user \"monitor\"")));
  EXPECT_THAT(report.result.condition.message, Not(HasSubstr("31337")));
  ASSERT_EQ(report.errors.size(), 1u);
  EXPECT_EQ(report.errors[0].reason(), postgres_reasons::kAuthFailed);
}

TEST_F(UsagePostgres, APasswordSentAsTheUserNameNeverShows) {
  // usernameKey naming the password's key; PostgreSQL quotes a user name back, cut to 63 bytes when longer.
  for (const std::string& password :
       {std::string(testing::PostgresServer::kMonitorPassword), "long-secret-" + std::string(68, 'q')}) {
    PostgresCredentials creds{password, password, server->caPem()};
    creds.usernameFrom = creds.passwordFrom = "the value of key \"password\" of Secret ns1/pg-monitor";
    auto report = check(makePolicy(), {}, creds);
    ASSERT_EQ(report.errors.size(), 1u);
    EXPECT_EQ(report.errors[0].reason(), postgres_reasons::kAuthFailed) << report.errors[0].message();
    for (const std::string& message : {report.result.condition.message, report.errors[0].message()}) {
      EXPECT_THAT(message, Not(HasSubstr(password.substr(0, 12))));
      EXPECT_THAT(message, HasSubstr("for user \"<the value of key \"password\" of Secret ns1/pg-monitor>\""));
    }
  }
}

TEST_F(UsagePostgres, UnreachableServer) {
  auto p = makePolicy("127.0.0.1");
  p.spec.usage.postgres->port = testing::freePort();
  auto report = check(p, {}, monitorCredentials());
  EXPECT_EQ(report.result.condition.reason, "UsageUnavailable");
  EXPECT_THAT(report.result.condition.message, HasSubstr("unreachable: Connection refused"));
  ASSERT_EQ(report.errors.size(), 1u);
  EXPECT_EQ(report.errors[0].reason(), postgres_reasons::kUnreachable);
}

TEST_F(UsagePostgres, SslModeDisableConnectsInPlainText) {
  auto p = makePolicy("127.0.0.1");
  p.spec.usage.postgres->sslMode = policy::SslMode::kDisable;
  auto creds = monitorCredentials();
  creds.caPem.reset();
  auto report = check(p, {}, creds);
  EXPECT_EQ(report.result.condition.reason, "Healthy") << report.result.condition.message;
}

TEST_F(UsagePostgres, LeakIsDetectedAfterTheThresholdAndClearsOnCommitAndClose) {
  PGconn* leaky = sessions.open("ns1/app");
  ASSERT_NE(leaky, nullptr);
  ASSERT_TRUE(run(leaky, "BEGIN"));
  ASSERT_TRUE(run(leaky, "SELECT 1"));
  sessions.open("ns1/app");  // an idle neighbour, not a leak

  auto report = check({workload("app", 1, 5)});
  EXPECT_EQ(report.result.condition.reason, "Healthy") << report.result.condition.message;
  EXPECT_EQ(report.result.usage.idleInTransaction, 1);
  EXPECT_EQ(report.result.usage.idle, 1);
  EXPECT_EQ(report.result.usage.connections, 2);

  ASSERT_TRUE(
      eventually([&] { return check({workload("app", 1, 5)}).result.condition.reason == "LeakSuspected"; }, 10s));
  report = check({workload("app", 1, 5)});
  EXPECT_EQ(report.result.condition.status, ConditionStatus::kFalse);
  EXPECT_THAT(report.result.condition.message, HasSubstr("ns1/app: 1 session idle in transaction longer than 2s"));
  EXPECT_GE(report.result.usage.oldestIdleInTransactionSeconds.value_or(0), 2);
  // Another workload's view of the same server is unaffected: attribution is by application_name.
  EXPECT_EQ(check({workload("web", 1, 5)}).result.condition.reason, "Healthy");

  ASSERT_TRUE(run(leaky, "COMMIT"));
  report = check({workload("app", 1, 5)});
  EXPECT_EQ(report.result.condition.reason, "Healthy") << report.result.condition.message;
  EXPECT_EQ(report.result.usage.idleInTransaction, 0);

  ASSERT_TRUE(run(leaky, "BEGIN"));
  ASSERT_TRUE(run(leaky, "SELECT 1"));
  ASSERT_TRUE(
      eventually([&] { return check({workload("app", 1, 5)}).result.condition.reason == "LeakSuspected"; }, 10s));
  sessions.closeAll();
  ASSERT_TRUE(eventually([&] { return check({workload("app", 1, 5)}).result.condition.reason == "Healthy"; }, 5s));
}

// A session of role `role` (not a superuser) over the Unix socket, with this application_name.
PGconn* connectAs(const std::string& role, const std::string& app) {
  const std::string port = std::to_string(server->port());
  const char* keys[] = {"host", "port", "user", "dbname", "application_name", nullptr};
  const char* values[] = {server->dir().c_str(), port.c_str(), role.c_str(), "postgres", app.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keys, values, 0);
  if (PQstatus(c) != CONNECTION_OK) {
    PQfinish(c);
    return nullptr;
  }
  return c;
}

// pids of the client sessions of an application_name, as pg_stat_activity lists them.
int countSessions(const std::string& app) {
  return std::stoi(server->exec("SELECT count(*) FROM pg_stat_activity WHERE application_name = '" + app + "'"));
}

TEST_F(UsagePostgres, TerminateLeakedEndsOnlyTheLeakedSessionsOfGovernedWorkloads) {
  server->exec(
      "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app') THEN CREATE ROLE app LOGIN; END IF; "
      "END $$");
  server->exec(std::string("GRANT pg_signal_backend TO ") + testing::PostgresServer::kMonitorUser);
  std::vector<PGconn*> conns;
  auto open = [&](const std::string& role, const std::string& app, bool inTransaction) {
    PGconn* c = role == "postgres" ? server->connect(app) : connectAs(role, app);
    ASSERT_NE(c, nullptr) << role << " " << app;
    conns.push_back(c);
    if (inTransaction) {
      ASSERT_TRUE(run(c, "BEGIN"));
      ASSERT_TRUE(run(c, "SELECT 1"));
    }
  };
  for (int i = 0; i < 10; ++i) open("app", "ns1/leaky", true);  // the leak
  open("app", "ns1/healthy", false);                            // a healthy workload: idle, no transaction
  open("app", "someone-else", true);                            // not governed: another application_name
  open("postgres", "ns1/leaky", true);                          // a superuser's session is never ended
  struct Close {
    std::vector<PGconn*>& conns;
    ~Close() {
      for (auto* c : conns) PQfinish(c);
    }
  } close{conns};

  policy::Policy p = makePolicy();
  p.spec.usage.thresholds.idleInTransaction = 1s;
  p.spec.usage.actions.terminateLeaked = policy::TerminateLeaked{true, std::nullopt, 5};
  const std::vector<GovernedWorkload> governed{workload("leaky", 2, 5), workload("healthy", 1, 5)};
  std::this_thread::sleep_for(1500ms);

  // Audit lists what it would end and ends nothing.
  p.spec.mode = policy::Mode::kAudit;
  auto audit = check(p, governed, monitorCredentials());
  EXPECT_EQ(audit.result.leakedSessions.size(), 5u);
  EXPECT_EQ(audit.result.sessionsEnded, 0);
  EXPECT_THAT(audit.result.condition.message, HasSubstr("in Enforce, poolguard would end 5 sessions"));
  EXPECT_EQ(countSessions("ns1/leaky"), 11);

  // Enforce: at most 5 per check, so two checks end the 10, oldest first.
  p.spec.mode = policy::Mode::kEnforce;
  auto first = check(p, governed, monitorCredentials());
  ASSERT_EQ(first.result.leakedSessions.size(), 5u) << first.result.condition.message;
  for (const auto& l : first.result.leakedSessions) {
    EXPECT_TRUE(l.ended);
    EXPECT_EQ(l.workload, "leaky");
    EXPECT_EQ(l.user, "app");
    EXPECT_GE(l.idleSeconds, 1);
  }
  EXPECT_THAT(first.result.condition.message,
              HasSubstr("poolguard ended 5 sessions idle in transaction longer than 1s"));
  // The ended backends exit within moments (a check interval is 5 s at least).
  ASSERT_TRUE(eventually([] { return countSessions("ns1/leaky") == 6; }, 5s)) << countSessions("ns1/leaky");
  auto second = check(p, governed, monitorCredentials());
  EXPECT_EQ(second.result.leakedSessions.size(), 5u) << second.result.condition.message;
  EXPECT_EQ(second.result.sessionsEnded, 10);
  ASSERT_TRUE(eventually([] { return countSessions("ns1/leaky") == 1; }, 5s))
      << "the superuser's session is the one left: " << countSessions("ns1/leaky");
  EXPECT_EQ(countSessions("ns1/healthy"), 1);
  EXPECT_EQ(countSessions("someone-else"), 1);
  EXPECT_GE(countSessions("poolguard"), 1) << "poolguard's own session";
  auto third = check(p, governed, monitorCredentials());
  EXPECT_TRUE(third.result.leakedSessions.empty()) << "only the superuser's session is left, never ended";

  // A budget's check (the operator's credentials) ends no session whose name the workload's namespace does not own:
  // ns1's workload web reports another team's application_name.
  open("app", "payments/api", true);
  std::this_thread::sleep_for(1500ms);
  policy::Policy budget = p;
  budget.kind = "ClusterConnectionBudget";
  budget.namespace_ = "";
  budget.name = "ClusterConnectionBudget:orders-db";
  GovernedWorkload web = workload("web", 1, 5);
  web.applicationName = "payments/api";
  auto central = checker.check(budget, {web}, std::optional<Result<PostgresCredentials>>(monitorCredentials()),
                               CheckContext{"poolguard-system", {}});
  EXPECT_TRUE(central.result.leakedSessions.empty()) << central.result.condition.message;
  EXPECT_THAT(central.result.condition.message, HasSubstr("poolguard ends no leaked session of workload ns1/web"));
  EXPECT_EQ(countSessions("payments/api"), 1) << "the other team's session is left alone";

  // Without pg_signal_backend the server refuses, and the condition says what to grant.
  server->exec(std::string("REVOKE pg_signal_backend FROM ") + testing::PostgresServer::kMonitorUser);
  open("app", "ns1/leaky", true);
  std::this_thread::sleep_for(1500ms);
  auto refused = check(p, governed, monitorCredentials());
  EXPECT_THAT(refused.result.condition.message, HasSubstr("lacks pg_signal_backend; GRANT pg_signal_backend TO"));
  EXPECT_EQ(countSessions("ns1/leaky"), 2);
}

TEST_F(UsagePostgres, OverAllocationExceedsPolicy) {
  for (int i = 0; i < 3; ++i) ASSERT_NE(sessions.open("ns1/api"), nullptr);
  auto report = check({workload("api", 1, 2), workload("app", 1, 5)});
  EXPECT_EQ(report.result.condition.status, ConditionStatus::kFalse);
  EXPECT_EQ(report.result.condition.reason, "ExceedsPolicy");
  EXPECT_THAT(report.result.condition.message, HasSubstr("ns1/api holds 3 connections"));
  ASSERT_EQ(report.result.workloads.size(), 2u);
  EXPECT_EQ(report.result.workloads[0].connections, 3);
  EXPECT_EQ(report.result.workloads[1].connections, 0);

  EXPECT_EQ(check({workload("api", 2, 2)}).result.condition.reason, "Healthy");  // a second pod makes room
}

TEST_F(UsagePostgres, SaturationOfASmallServer) {
  // 20 max_connections, 3 reserved: 17 usable, 90% of it is 15.3.
  for (int i = 0; i < 15; ++i) ASSERT_NE(sessions.open("batch-loader"), nullptr);
  auto report = check({workload("app", 1, 5)});
  EXPECT_EQ(report.result.condition.reason, "Healthy") << report.result.condition.message;
  EXPECT_EQ(report.result.databaseConnections, 15);

  ASSERT_NE(sessions.open("batch-loader"), nullptr);
  report = check({workload("app", 1, 5)});
  EXPECT_EQ(report.result.condition.reason, "Saturated") << report.result.condition.message;
  EXPECT_THAT(report.result.condition.message, HasSubstr("database at 16 of 17 usable connections"));

  sessions.closeAll();
  ASSERT_TRUE(eventually([&] { return check({workload("app", 1, 5)}).result.condition.reason == "Healthy"; }, 5s));
}

TEST_F(UsagePostgres, DeclaredMaxConnectionsIsComparedWithTheServer) {
  auto p = makePolicy();
  p.spec.database.maxConnections = 100;
  auto report = check(p, {}, monitorCredentials());
  ASSERT_TRUE(report.result.maxConnectionsMismatch);
  EXPECT_THAT(*report.result.maxConnectionsMismatch, HasSubstr("max_connections=20"));
}

TEST(PostgresReaderLive, ReusesOneConnectionReconnectsAfterLossAndLeavesItselfOut) {
  PostgresReader reader(SystemClock::instance());
  auto p = makePolicy();
  auto first = reader.read(*p.spec.usage.postgres, monitorCredentials());
  ASSERT_TRUE(first.ok()) << first.error().message();
  EXPECT_EQ(first->byApplication.count("poolguard"), 0u);
  auto second = reader.read(*p.spec.usage.postgres, monitorCredentials());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(reader.connectsMade(), 1u);
  EXPECT_EQ(reader.openConnections(), 1u);
  EXPECT_EQ(server->exec("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'poolguard'"), "1");

  server->exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'poolguard'");
  auto third = reader.read(*p.spec.usage.postgres, monitorCredentials());
  ASSERT_TRUE(third.ok()) << third.error().message();
  EXPECT_EQ(reader.connectsMade(), 2u);

  // A changed password is not masked by the open connection.
  auto creds = monitorCredentials();
  creds.password = "rotated-wrong";
  auto fourth = reader.read(*p.spec.usage.postgres, creds);
  ASSERT_FALSE(fourth.ok());
  EXPECT_EQ(fourth.error().reason(), postgres_reasons::kAuthFailed);
  EXPECT_EQ(reader.openConnections(), 0u);
}

TEST(PostgresReaderLive, SessionsAreGroupedByApplicationRoleAndClientAddress) {
  // Two superuser sessions over the Unix socket from "rogue-batch", one from "shop/web".
  std::vector<PGconn*> held{server->connect("rogue-batch"), server->connect("rogue-batch"),
                            server->connect("shop/web")};
  for (PGconn* c : held) ASSERT_EQ(PQstatus(c), CONNECTION_OK);
  PostgresReader reader(SystemClock::instance());
  auto p = makePolicy();
  auto snap = reader.read(*p.spec.usage.postgres, monitorCredentials());
  ASSERT_TRUE(snap.ok()) << snap.error().message();
  const std::string superuser = server->exec(
      "SELECT usename FROM pg_stat_activity WHERE application_name = "
      "'rogue-batch' LIMIT 1");
  const ClientSessions rogue{"rogue-batch", superuser, "local", 2};
  EXPECT_NE(std::find(snap->clients.begin(), snap->clients.end(), rogue), snap->clients.end())
      << "sessions over the Unix socket have no client address: local";
  // Governed by a workload whose pool reports shop/web: that one is not listed as ungoverned.
  GovernedWorkload web;
  web.namespace_ = "shop";
  web.name = "web";
  web.applicationName = "shop/web";
  auto ungoverned = ungovernedSessions(*snap, std::vector<GovernedWorkload>{web});
  ASSERT_FALSE(ungoverned.empty());
  EXPECT_EQ(ungoverned.front(), rogue) << "largest first";
  for (const auto& u : ungoverned) EXPECT_NE(u.applicationName, "shop/web");
  for (PGconn* c : held) PQfinish(c);
}

// poolguard's own sessions follow the policies: one per (server, database, user) in use, none once no policy
// checks a target (the defect was 4 sessions left open, 3 of them to databases no policy named).
TEST(CheckerLive, SessionsCloseWhenNoPolicyNeedsTheirTargetThroughChurnOf50Policies) {
  for (int i = 1; i <= 4; ++i) server->exec("CREATE DATABASE churn" + std::to_string(i));
  const std::string ownSessions = "SELECT count(*) FROM pg_stat_activity WHERE usename = '" +
                                  std::string(testing::PostgresServer::kMonitorUser) +
                                  "' AND application_name = 'poolguard' AND backend_type = 'client backend'";
  auto sessionsTo = [&](const std::string& database) {
    return server->exec(ownSessions + " AND datname = '" + database + "'");
  };
  Checker checker{SystemClock::instance()};
  auto policyFor = [](int i, const std::string& database) {
    auto p = makePolicy();
    p.name = "p" + std::to_string(i);
    p.spec.usage.postgres->database = database;
    return p;
  };
  auto creds = std::optional<Result<PostgresCredentials>>(monitorCredentials());
  // 50 policies over 4 databases.
  for (int i = 0; i < 50; ++i) {
    auto report = checker.check(policyFor(i, "churn" + std::to_string(i % 4 + 1)), {}, creds);
    ASSERT_EQ(report.result.condition.reason, reasons::kHealthy) << report.result.condition.message;
  }
  EXPECT_EQ(checker.openPostgresConnections(), 4u);
  EXPECT_TRUE(eventually([&] { return server->exec(ownSessions) == "4"; }, 5s)) << server->exec(ownSessions);

  // Every policy of churn1 and churn2 goes; churn3's move to churn4.
  for (int i = 0; i < 50; ++i) {
    if (i % 4 < 2) checker.forget("ns1", "p" + std::to_string(i));
    if (i % 4 == 2) checker.check(policyFor(i, "churn4"), {}, creds);
  }
  EXPECT_EQ(checker.openPostgresConnections(), 1u);
  EXPECT_TRUE(eventually([&] { return server->exec(ownSessions) == "1"; }, 5s)) << server->exec(ownSessions);
  EXPECT_EQ(sessionsTo("churn4"), "1");

  // The last policies go: no session is left.
  for (int i = 0; i < 50; ++i) checker.forget("ns1", "p" + std::to_string(i));
  EXPECT_EQ(checker.openPostgresConnections(), 0u);
  EXPECT_TRUE(eventually([&] { return server->exec(ownSessions) == "0"; }, 5s)) << server->exec(ownSessions);
  for (int i = 1; i <= 4; ++i) server->exec("DROP DATABASE churn" + std::to_string(i));
}

// --- Prometheus ------------------------------------------------------------------------------------------

const char* kPodLabel = "checkout-6f7c9d5b8-x2x4z";

std::string hikariMetrics(int connections, int pending) {
  return "# TYPE hikaricp_connections gauge\nhikaricp_connections{pool=\"HikariPool-1\"} " +
         std::to_string(connections) +
         "\n# TYPE hikaricp_connections_pending gauge\nhikaricp_connections_pending{pool=\"HikariPool-1\"} " +
         std::to_string(pending) + "\n";
}

class UsagePrometheus : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    target = new testing::MetricsTarget();
    target->set(hikariMetrics(7, 0));
    target->start();
    prometheus = new testing::PrometheusServer();
    prometheus->start({{"127.0.0.1:" + std::to_string(target->port()), {{"namespace", "ns1"}, {"pod", kPodLabel}}}});
  }
  static void TearDownTestSuite() {
    delete prometheus;
    delete target;
  }
  policy::Policy hikariPolicy() const {
    policy::Policy p;
    p.name = "checkout";
    p.namespace_ = "ns1";
    p.spec.profile = policy::Profile::kSpringHikari;
    p.spec.usage.prometheus = policy::PrometheusSource{prometheus->url(), "", ""};
    return p;
  }
  std::string reasonFor(const policy::Policy& p, const std::vector<GovernedWorkload>& w) {
    last = checker.check(p, w, std::nullopt);
    return last.result.condition.reason;
  }

  static CheckerOptions allowingThePrometheus() {
    CheckerOptions o;
    o.prometheusAllowedUrlPrefixes = {prometheus->url()};
    return o;
  }

  static testing::MetricsTarget* target;
  static testing::PrometheusServer* prometheus;
  Checker checker{SystemClock::instance(), nullptr, allowingThePrometheus()};
  UsageReport last;
};
testing::MetricsTarget* UsagePrometheus::target = nullptr;
testing::PrometheusServer* UsagePrometheus::prometheus = nullptr;

TEST_F(UsagePrometheus, HikariDefaultsReadConnectionsAndPending) {
  const std::vector<GovernedWorkload> checkout{workload("checkout", 1, 10)};
  target->set(hikariMetrics(7, 0));
  // A check is two queries; Prometheus's first scrape can land between them, so one check may see the pending
  // series without the connections series. Wait for a check that saw both.
  ASSERT_TRUE(eventually(
      [&] { return reasonFor(hikariPolicy(), checkout) == "Healthy" && last.result.usage.connections.has_value(); },
      30s))
      << last.result.condition.message;
  EXPECT_EQ(last.result.usage.source, "prometheus");
  EXPECT_EQ(last.result.usage.connections, 7);
  EXPECT_EQ(last.result.workloads[0].pending, 0.0);

  target->set(hikariMetrics(10, 3));
  ASSERT_TRUE(eventually([&] { return reasonFor(hikariPolicy(), checkout) == "PoolExhausted"; }, 15s))
      << last.result.condition.message;
  EXPECT_THAT(last.result.condition.message, HasSubstr("ns1/checkout: 3 requests waiting for a pool connection"));

  target->set(hikariMetrics(14, 0));
  ASSERT_TRUE(eventually([&] { return reasonFor(hikariPolicy(), checkout) == "ExceedsPolicy"; }, 15s))
      << last.result.condition.message;
  EXPECT_THAT(last.result.condition.message, HasSubstr("ns1/checkout holds 14 connections"));
  target->set(hikariMetrics(7, 0));
}

TEST_F(UsagePrometheus, AWorkloadWithoutSeriesIsNoDataNotZero) {
  EXPECT_EQ(reasonFor(hikariPolicy(), {workload("inventory", 1, 10)}), "UsageUnavailable");
  EXPECT_THAT(last.result.condition.message, HasSubstr("no samples"));
  EXPECT_TRUE(last.errors.empty());
}

TEST_F(UsagePrometheus, AnInvalidQueryIsUsageUnavailableWithPrometheusMessage) {
  auto p = hikariPolicy();
  p.spec.usage.prometheus->connectionsQuery = "sum(hikaricp_connections{namespace=\"$namespace\"";
  EXPECT_EQ(reasonFor(p, {workload("checkout", 1, 10)}), "UsageUnavailable");
  EXPECT_THAT(last.result.condition.message, HasSubstr("bad_data"));
  ASSERT_EQ(last.errors.size(), 1u);
  EXPECT_EQ(last.errors[0].reason(), prometheus_reasons::kQueryFailed);
}

TEST_F(UsagePrometheus, EscapedValuesStayValidPromql) {
  PrometheusClient client;
  auto q = renderQuery(defaultQueries(policy::Profile::kSpringHikari).connections, "ns1", "we\"ird\\name");
  auto r = client.query(prometheus->url(), q);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_FALSE(*r);
}

TEST_F(UsagePrometheus, UnreachableAndSilentServersFailWithinTheTimeout) {
  PrometheusClient client(1s);
  auto refused = client.query("http://127.0.0.1:" + std::to_string(testing::freePort()), "up");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().reason(), prometheus_reasons::kUnreachable);

  // Accepts connections (the kernel completes the handshake) but never answers.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  auto start = std::chrono::steady_clock::now();
  auto silent = client.query("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)), "up");
  auto took = std::chrono::steady_clock::now() - start;
  ::close(fd);
  ASSERT_FALSE(silent.ok());
  EXPECT_EQ(silent.error().reason(), prometheus_reasons::kUnreachable);
  EXPECT_LT(took, 10s);
}

TEST(PrometheusAnswers, OversizedAndForeignAnswersAreNeitherReadWholeNorQuoted) {
  testing::MetricsTarget answers;
  answers.start();
  PrometheusClient client(5s);
  const std::string url = "http://127.0.0.1:" + std::to_string(answers.port());
  answers.set(std::string(kMaxPrometheusAnswerBytes + 1, 'x'));
  auto big = client.query(url, "up");
  ASSERT_FALSE(big.ok());
  EXPECT_THAT(big.error().message(), HasSubstr("larger than 4 MiB"));
  EXPECT_LT(big.error().message().size(), 300u);

  // An address that is not Prometheus: its answer never reaches the status.
  answers.set("<html>internal admin page: token=abc123</html>");
  auto foreign = client.query(url, "up");
  ASSERT_FALSE(foreign.ok());
  EXPECT_THAT(foreign.error().message(), HasSubstr("not Prometheus query API JSON"));
  EXPECT_THAT(foreign.error().message(), Not(HasSubstr("token=abc123")));

  // Prometheus' own error text: kept, but short and printable.
  answers.set(R"({"status":"error","errorType":"bad_data","error":")" + std::string(400, 'e') + R"(\u0007"})");
  auto error = client.query(url, "up");
  ASSERT_FALSE(error.ok());
  EXPECT_THAT(error.error().message(), HasSubstr("bad_data: eeee"));
  EXPECT_LT(error.error().message().size(), 300u);
  EXPECT_EQ(error.error().message().find('\a'), std::string::npos);
}

}  // namespace
}  // namespace poolguard::usage

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new poolguard::usage::PostgresEnvironment());
  return RUN_ALL_TESTS();
}
