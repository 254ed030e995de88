// Contract tests: what poolguard renders for each profile, read by the real library it targets. Each test renders
// a policy with the C++ code, hands the result to a small program built against the pinned library (in
// tests/contract/profiles/<name>/), and compares the configuration the library reports with the policy. The
// IdleInTransaction tests connect those programs to a real PostgreSQL 15 (tests/integration/usage/local_servers.h):
// a session opened from the rendered settings reports pool.idleInTransactionTimeout, and a transaction left idle
// longer is ended by PostgreSQL, or by PgBouncer in front of it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/usage/local_servers.h"
#include "render/settings.h"

extern char** environ;

namespace poolguard::render {
namespace {

namespace fs = std::filesystem;
using policy::Millis;
using policy::Profile;

fs::path sourceDir() { return fs::path(POOLGUARD_TEST_SOURCE_DIR) / "tests" / "contract" / "profiles"; }

fs::path cacheDir() {
  if (const char* c = std::getenv("POOLGUARD_CACHE_DIR"); c != nullptr && *c != '\0') return c;
  const char* home = std::getenv("HOME");
  return fs::path(home != nullptr ? home : "/tmp") / ".cache" / "poolguard";
}

struct ProcessResult {
  int exitCode = -1;
  std::string output;  // stdout and stderr together
};

// Runs argv with the current environment plus `extraEnv`, in `cwd`; `stdoutOnly` keeps stderr out of the output.
ProcessResult run(const std::vector<std::string>& argv,
                  const std::vector<std::pair<std::string, std::string>>& extraEnv = {}, const fs::path& cwd = {},
                  bool stdoutOnly = false) {
  std::vector<std::string> envStrings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    bool overridden = false;
    for (const auto& [k, v] : extraEnv) overridden = overridden || entry.rfind(k + "=", 0) == 0;
    if (!overridden) envStrings.push_back(entry);
  }
  for (const auto& [k, v] : extraEnv) envStrings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : envStrings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);

  int fds[2];
  if (::pipe(fds) != 0) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    if (!stdoutOnly) ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    ::execvpe(cargv[0], cargv.data(), envp.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  ProcessResult r;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) r.output.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

bool onPath(const std::string& tool) { return run({"sh", "-c", "command -v " + tool}).exitCode == 0; }

// A missing toolchain fails the test (never skips it), naming what to install.
#define REQUIRE_TOOL(tool, install)                                                                        \
  do {                                                                                                     \
    if (!onPath(tool)) FAIL() << (tool) << " is not installed; the contract test needs it: " << (install); \
  } while (0)

std::map<std::string, std::string> keyValues(const std::string& output) {
  std::map<std::string, std::string> m;
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) m[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return m;
}

policy::Policy contractPolicy(Profile profile) {
  policy::Policy p;
  p.name = "orders-pool";
  p.namespace_ = "shop";
  p.spec.profile = profile;
  p.spec.pool.maxSize = 20;
  p.spec.pool.minIdle = 5;
  p.spec.pool.acquireTimeout = Millis(2'500);
  p.spec.pool.idleTimeout = Millis(600'000);
  p.spec.pool.maxLifetime = Millis(1'800'000);
  p.spec.pool.leakDetectionThreshold = Millis(20'000);
  p.spec.database.name = "orders";
  return p;
}

std::vector<std::pair<std::string, std::string>> envOf(const RenderedSettings& s) {
  std::vector<std::pair<std::string, std::string>> env;
  for (const auto& e : s.env) env.emplace_back(e.name, e.value);
  return env;
}

// Builds a Go program from tests/contract/profiles/<dir> into the cache; returns the binary.
fs::path buildGo(const std::string& dir) {
  fs::path out = cacheDir() / "bin" / (dir + "-check");
  fs::create_directories(out.parent_path());
  ProcessResult r = run({"go", "build", "-o", out.string(), "."}, {}, sourceDir() / dir);
  EXPECT_EQ(r.exitCode, 0) << "go build in " << (sourceDir() / dir) << " failed:\n" << r.output;
  return out;
}

TEST(ProfileContract, GoSQLDatabaseSqlTakesTheSettings) {
  REQUIRE_TOOL("go", "a Go toolchain (1.23 or later) on PATH");
  auto s = renderSettings(contractPolicy(Profile::kGoSQL), "shop", "orders-api");
  fs::path bin = buildGo("gosql");
  ASSERT_FALSE(::testing::Test::HasFailure());
  ProcessResult r = run({bin.string()}, envOf(s));
  ASSERT_EQ(r.exitCode, 0) << r.output;
  auto got = keyValues(r.output);
  EXPECT_EQ(got["max_open"], "20") << r.output;
  EXPECT_EQ(got["max_idle"], "20");
  EXPECT_EQ(got["max_lifetime"], "30m0s");
  EXPECT_EQ(got["max_idle_time"], "10m0s");
  EXPECT_EQ(got["acquire_timeout"], "2.5s");
}

TEST(ProfileContract, PgxpoolParseConfigTakesTheSettings) {
  REQUIRE_TOOL("go", "a Go toolchain (1.23 or later) on PATH");
  auto p = contractPolicy(Profile::kPgxpool);
  p.spec.pool.idleInTransactionTimeout = Millis(45'000);
  fs::path bin = buildGo("pgx");
  ASSERT_FALSE(::testing::Test::HasFailure());
  ProcessResult r = run({bin.string()}, envOf(renderSettings(p, "shop", "orders-api")));
  ASSERT_EQ(r.exitCode, 0) << r.output;
  auto got = keyValues(r.output);
  EXPECT_EQ(got["max_conns"], "20") << r.output;
  EXPECT_EQ(got["min_conns"], "5");
  EXPECT_EQ(got["max_conn_lifetime"], "30m0s");
  EXPECT_EQ(got["max_conn_idle_time"], "10m0s");
  EXPECT_EQ(got["application_name"], "shop/orders-api") << "pgx reads PGAPPNAME";
  EXPECT_EQ(got["options"], "-c idle_in_transaction_session_timeout=45000") << "pgx reads PGOPTIONS (from v5.7.5)";

  // maxLifetime 0 (unlimited) must not reach pgxpool as 0, which closes every connection after one use.
  p.spec.pool.maxLifetime = Millis(0);
  r = run({bin.string()}, envOf(renderSettings(p, "shop", "orders-api")));
  ASSERT_EQ(r.exitCode, 0) << r.output;
  EXPECT_EQ(keyValues(r.output)["max_conn_lifetime"], "876000h0m0s");
}

std::string readText(const fs::path& f) {
  std::ifstream in(f);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// node_modules with the pinned pg, installed into the cache again whenever the pinned lock file changes; the test
// fails when the tools are missing or npm fails.
fs::path nodeModules() {
  for (const char* tool : {"node", "npm"}) {
    if (!onPath(tool)) {
      ADD_FAILURE() << tool << " is not installed; the contract test needs it: apt-get install nodejs npm";
      return {};
    }
  }
  fs::path dir = cacheDir() / "nodepg";
  fs::create_directories(dir);
  std::string lock = readText(sourceDir() / "nodepg" / "package-lock.json");
  if (readText(dir / "package-lock.json") != lock || !fs::exists(dir / "node_modules" / "pg")) {
    fs::copy_file(sourceDir() / "nodepg" / "package.json", dir / "package.json", fs::copy_options::overwrite_existing);
    fs::copy_file(sourceDir() / "nodepg" / "package-lock.json", dir / "package-lock.json",
                  fs::copy_options::overwrite_existing);
    ProcessResult install = run({"npm", "ci", "--no-audit", "--no-fund"}, {}, dir);
    EXPECT_EQ(install.exitCode, 0) << "npm ci in " << dir << " failed:\n" << install.output;
  }
  return dir / "node_modules";
}

ProcessResult runNode(std::vector<std::pair<std::string, std::string>> env, const fs::path& modules,
                      const std::string& argument = "") {
  env.emplace_back("NODE_PATH", modules.string());
  std::vector<std::string> argv = {"node", (sourceDir() / "nodepg" / "check.js").string()};
  if (!argument.empty()) argv.push_back(argument);
  return run(argv, env);
}

TEST(ProfileContract, NodePostgresPoolTakesTheSettings) {
  fs::path modules = nodeModules();
  ASSERT_FALSE(::testing::Test::HasFailure());
  auto p = contractPolicy(Profile::kNodePostgres);
  p.spec.pool.idleInTransactionTimeout = Millis(45'000);
  ProcessResult r = runNode(envOf(renderSettings(p, "shop", "orders-api")), modules);
  ASSERT_EQ(r.exitCode, 0) << r.output;
  auto got = keyValues(r.output);
  EXPECT_EQ(got["max"], "20") << r.output;
  EXPECT_EQ(got["min"], "5");
  EXPECT_EQ(got["connectionTimeoutMillis"], "2500");
  EXPECT_EQ(got["idleTimeoutMillis"], "600000");
  EXPECT_EQ(got["maxLifetimeSeconds"], "1800");
  EXPECT_EQ(got["application_name"], "shop/orders-api") << "pg reads PGAPPNAME";
  EXPECT_EQ(got["options"], "-c idle_in_transaction_session_timeout=45000") << "pg reads PGOPTIONS";
}

// The classpath of the pinned Spring Boot, HikariCP and PgJDBC (resolved by Maven) with HikariCheck compiled into it.
std::string hikariClasspath() {
  for (const auto& [tool, package] : {std::pair{"java", "default-jdk-headless"},
                                      std::pair{"javac", "default-jdk-headless"}, std::pair{"mvn", "maven"}}) {
    if (!onPath(tool)) {
      ADD_FAILURE() << tool << " is not installed; the contract test needs it: apt-get install " << package;
      return {};
    }
  }
  fs::path dir = cacheDir() / "hikari";
  fs::create_directories(dir);
  fs::path classpathFile = dir / "classpath.txt";
  ProcessResult resolve = run({"mvn", "-q", "-B", "-f", (sourceDir() / "hikari" / "pom.xml").string(),
                               "dependency:build-classpath", "-Dmdep.outputFile=" + classpathFile.string()});
  EXPECT_EQ(resolve.exitCode, 0) << "mvn dependency:build-classpath failed:\n" << resolve.output;
  std::string classpath = readText(classpathFile);
  EXPECT_FALSE(classpath.empty());
  ProcessResult compile = run({"javac", "-d", (dir / "classes").string(), "-cp", classpath,
                               (sourceDir() / "hikari" / "HikariCheck.java").string()});
  EXPECT_EQ(compile.exitCode, 0) << compile.output;
  return classpath + ":" + (dir / "classes").string();
}

ProcessResult runHikari(const std::string& classpath, const std::vector<std::pair<std::string, std::string>>& env,
                        const std::string& argument = "") {
  std::vector<std::string> argv = {"java", "-cp", classpath, "HikariCheck"};
  if (!argument.empty()) argv.push_back(argument);
  return run(argv, env, {}, true);
}

TEST(ProfileContract, SpringBootBindsTheHikariSettings) {
  std::string classpath = hikariClasspath();
  ASSERT_FALSE(::testing::Test::HasFailure());
  auto p = contractPolicy(Profile::kSpringHikari);
  p.spec.pool.idleInTransactionTimeout = Millis(45'000);
  auto env = envOf(renderSettings(p, "shop", "orders-api"));
  // Shows why the application name does not go through data-source-properties (see settings.cpp).
  env.emplace_back("SPRING_DATASOURCE_HIKARI_DATASOURCEPROPERTIES_APPLICATIONNAME", "unused");
  ProcessResult r = runHikari(classpath, env);
  ASSERT_EQ(r.exitCode, 0) << r.output;
  auto got = keyValues(r.output);
  EXPECT_EQ(got["maximumPoolSize"], "20") << r.output;
  EXPECT_EQ(got["minimumIdle"], "5");
  EXPECT_EQ(got["connectionTimeout"], "2500");
  EXPECT_EQ(got["idleTimeout"], "600000");
  EXPECT_EQ(got["maxLifetime"], "1800000");
  EXPECT_EQ(got["leakDetectionThreshold"], "20000");
  EXPECT_EQ(got["connectionInitSql"], "SET application_name = 'shop/orders-api'");
  EXPECT_EQ(got["dataSourceProperties"], "[applicationname, options]") << "keys arrive lower-cased";
  EXPECT_EQ(got["options"], "-c idle_in_transaction_session_timeout=45000");
}

// Debian's python3-sqlalchemy lives in the system interpreter, whatever python3 comes first on PATH. Fails the test
// when SQLAlchemy or psycopg2 is missing for it.
std::string systemPython() {
  std::string python = fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  ProcessResult probe = run({python, "-c", "import sqlalchemy, psycopg2"});
  if (probe.exitCode != 0) {
    ADD_FAILURE() << "SQLAlchemy or psycopg2 is missing for " << python
                  << "; install them with apt-get install python3-sqlalchemy python3-psycopg2\n"
                  << probe.output;
  }
  return python;
}

TEST(ProfileContract, SqlAlchemyQueuePoolTakesTheSettings) {
  std::string python = systemPython();
  ASSERT_FALSE(::testing::Test::HasFailure());
  auto p = contractPolicy(Profile::kSQLAlchemy);
  ProcessResult r =
      run({python, (sourceDir() / "sqlalchemy" / "check.py").string()}, envOf(renderSettings(p, "shop", "api")));
  ASSERT_EQ(r.exitCode, 0) << r.output;
  auto got = keyValues(r.output);
  EXPECT_EQ(got["pool_class"], "QueuePool") << r.output;
  EXPECT_EQ(got["pool_size"], "5");
  EXPECT_EQ(got["max_overflow"], "15");
  EXPECT_EQ(got["total"], "20") << "pool_size + max_overflow is maxSize";
  EXPECT_EQ(got["timeout"], "2.5");
  EXPECT_EQ(got["recycle"], "1800");

  p.spec.pool.minIdle = 0;
  p.spec.pool.maxLifetime = Millis(0);
  r = run({python, (sourceDir() / "sqlalchemy" / "check.py").string()}, envOf(renderSettings(p, "shop", "api")));
  ASSERT_EQ(r.exitCode, 0) << r.output;
  got = keyValues(r.output);
  EXPECT_EQ(got["pool_size"], "20");
  EXPECT_EQ(got["max_overflow"], "0");
  EXPECT_EQ(got["recycle"], "-1");
}

using usage::testing::freePort;

// A PgBouncer started from an application file like the one docs/profiles.md shows: [databases] with `orders`,
// [pgbouncer] with the application's own settings (listen port, auth_type any, default_pool_size 99), and
// poolguard's rendered file %include'd as its last line.
class PgBouncerProcess {
 public:
  ~PgBouncerProcess() { stop(); }

  // `ordersDatabase`: the [databases] entry's connection string.
  void start(const RenderedSettings& s, const std::string& ordersDatabase) {
    applicationName_ = s.applicationName;
    std::string tmpl = (fs::temp_directory_path() / "poolguard-pgbouncer-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    // PgBouncer refuses to run as root; as root it drops to nobody, who must read the files.
    ::chmod(dir_.c_str(), 0755);
    port_ = freePort();
    ASSERT_GT(port_, 0);
    std::ofstream(dir_ / "poolguard.ini") << s.pgbouncerIni;
    std::ofstream(dir_ / "pgbouncer.ini") << "[databases]\norders = " << ordersDatabase << "\n"
                                          << "[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = " << port_
                                          << "\nunix_socket_dir =\nauth_type = any\nadmin_users = pgbouncer\n"
                                          << "default_pool_size = 99\n"
                                          << "%include " << (dir_ / "poolguard.ini").string() << "\n";
    ::chmod((dir_ / "poolguard.ini").c_str(), 0644);
    ::chmod((dir_ / "pgbouncer.ini").c_str(), 0644);

    pid_ = ::fork();
    if (pid_ == 0) {
      int log = ::open((dir_ / "pgbouncer.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(log, STDOUT_FILENO);
      ::dup2(log, STDERR_FILENO);
      std::string ini = (dir_ / "pgbouncer.ini").string();
      if (::geteuid() == 0)
        ::execl(kBinary, "pgbouncer", "-u", "nobody", ini.c_str(), nullptr);
      else
        ::execl(kBinary, "pgbouncer", ini.c_str(), nullptr);
      ::_exit(127);
    }
    ASSERT_GT(pid_, 0);
  }

  // psql (libpq) on database `db` with -c `commands`, sending the rendered application name.
  ProcessResult psql(const std::string& db, const std::string& user, const std::vector<std::string>& commands,
                     const std::vector<std::pair<std::string, std::string>>& extraEnv = {}) const {
    std::vector<std::string> argv = {"psql", "-h",  "127.0.0.1", "-p", std::to_string(port_), "-U", user, "-d",
                                     db,     "-At", "-F",        "|"};
    for (const auto& c : commands) {
      argv.push_back("-c");
      argv.push_back(c);
    }
    auto env = extraEnv;
    env.emplace_back("PGAPPNAME", applicationName_);
    env.emplace_back("PGCONNECT_TIMEOUT", "2");
    return run(argv, env);
  }

  // A command on the admin console, retried while PgBouncer starts.
  ProcessResult admin(const std::string& command) const {
    ProcessResult r;
    for (int attempt = 0; attempt < 50; ++attempt) {
      r = psql("pgbouncer", "pgbouncer", {command});
      if (r.exitCode == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return r;
  }

  // SHOW CONFIG as key -> value.
  std::map<std::string, std::string> config(std::string* raw) const {
    ProcessResult r = admin("SHOW CONFIG");
    *raw = r.output;
    std::map<std::string, std::string> got;
    std::istringstream in(r.output);
    for (std::string line; std::getline(in, line);) {
      auto bar = line.find('|');
      if (bar == std::string::npos) continue;
      auto bar2 = line.find('|', bar + 1);
      got[line.substr(0, bar)] = line.substr(bar + 1, bar2 == std::string::npos ? std::string::npos : bar2 - bar - 1);
    }
    return got;
  }

  int port() const { return port_; }

  // Stops PgBouncer and returns its log.
  std::string stop() {
    if (pid_ <= 0) return "";
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    std::string log = readText(dir_ / "pgbouncer.log");
    fs::remove_all(dir_);
    return log;
  }

  static constexpr const char* kBinary = "/usr/sbin/pgbouncer";

 private:
  fs::path dir_;
  std::string applicationName_;
  int port_ = 0;
  pid_t pid_ = -1;
};

#define REQUIRE_PGBOUNCER()                                                                  \
  do {                                                                                       \
    if (!fs::exists(PgBouncerProcess::kBinary))                                              \
      FAIL() << PgBouncerProcess::kBinary << " is not installed: apt-get install pgbouncer"; \
    REQUIRE_TOOL("psql", "apt-get install postgresql-client");                               \
  } while (0)

TEST(ProfileContract, PgBouncerLoadsTheRenderedIni) {
  REQUIRE_PGBOUNCER();
  auto p = contractPolicy(Profile::kPgBouncer);
  p.spec.pool.maxLifetime = Millis(0);
  p.spec.pool.idleInTransactionTimeout = Millis(45'000);
  auto s = renderSettings(p, "shop", "orders-api");
  PgBouncerProcess pgbouncer;
  pgbouncer.start(s, "host=127.0.0.1 port=1 dbname=orders");
  ASSERT_FALSE(::testing::Test::HasFailure());
  std::string raw;
  auto got = pgbouncer.config(&raw);
  ProcessResult clients = pgbouncer.admin("SHOW CLIENTS");
  std::string log = pgbouncer.stop();
  ASSERT_FALSE(got.empty()) << "PgBouncer's admin console did not answer:\n" << raw << log;

  EXPECT_EQ(got["default_pool_size"], "20") << "poolguard's line wins over the application's 99\n" << raw;
  EXPECT_EQ(got["min_pool_size"], "5");
  EXPECT_EQ(got["reserve_pool_size"], "0");
  EXPECT_EQ(got["query_wait_timeout"], "2.5");
  EXPECT_EQ(got["server_idle_timeout"], "600");
  EXPECT_EQ(std::stod(got["server_lifetime"]), 315360000.0) << "unlimited, not PgBouncer's use-once 0";
  EXPECT_EQ(got["idle_transaction_timeout"], "45");
  EXPECT_EQ(got["listen_port"], std::to_string(pgbouncer.port()))
      << "the application's own settings survive the include";
  // libpq (psql here, psycopg2 and most drivers elsewhere) sends PGAPPNAME as application_name.
  EXPECT_NE(clients.output.find("shop/orders-api"), std::string::npos) << clients.output;
}

// pool.idleInTransactionTimeout with real sessions: one PostgreSQL 15 for the suite, a role and database `orders`
// the libraries connect to over TCP (password, no TLS), and PostgreSQL's log to tell who ended a session.
class IdleInTransaction : public ::testing::Test {
 protected:
  static constexpr const char* kPassword = "orders-app-pw-3c1e";
  // The shortest timeout the API takes is 1s; 1500ms also shows the unit reaches PostgreSQL as milliseconds.
  static constexpr Millis kTimeout{1'500};
  static constexpr int kIdleSleepMs = 3'000;

  static void SetUpTestSuite() {
    try {
      server_ = std::make_unique<usage::testing::PostgresServer>();
      server_->start(50);
      server_->exec(std::string("CREATE ROLE app LOGIN PASSWORD '") + kPassword + "'");
      server_->exec("CREATE DATABASE orders OWNER app");
    } catch (const std::exception& e) {
      startError_ = e.what();
    }
  }
  static void TearDownTestSuite() { server_.reset(); }

  void SetUp() override { ASSERT_TRUE(startError_.empty()) << "PostgreSQL did not start: " << startError_; }

  static policy::Policy timeoutPolicy(Profile profile) {
    auto p = contractPolicy(profile);
    p.spec.pool.idleInTransactionTimeout = kTimeout;
    return p;
  }

  static std::string url(const std::string& scheme) {
    return scheme + "://app:" + kPassword + "@127.0.0.1:" + std::to_string(server_->port()) + "/orders?sslmode=disable";
  }

  // The rendered variables, and where the database is: libpq's variables, DATABASE_URL, and how long to sleep.
  static std::vector<std::pair<std::string, std::string>> sessionEnv(const RenderedSettings& s) {
    auto env = envOf(s);
    env.insert(env.end(), {{"PGHOST", "127.0.0.1"},
                           {"PGPORT", std::to_string(server_->port())},
                           {"PGUSER", "app"},
                           {"PGPASSWORD", kPassword},
                           {"PGDATABASE", "orders"},
                           {"PGSSLMODE", "disable"},
                           {"DATABASE_URL", url("postgresql")},
                           {"IDLE_SLEEP", std::to_string(kIdleSleepMs) + "ms"},
                           {"IDLE_SLEEP_MS", std::to_string(kIdleSleepMs)},
                           {"IDLE_SLEEP_SECONDS", std::to_string(kIdleSleepMs / 1000.0)}});
    return env;
  }

  // How often PostgreSQL has ended a session for idling in a transaction.
  static int timeoutsLogged() {
    const std::string log = usage::testing::readFile(server_->dir() + "/postgres.log");
    const std::string line = "terminating connection due to idle-in-transaction timeout";
    int n = 0;
    for (size_t at = log.find(line); at != std::string::npos; at = log.find(line, at + 1)) ++n;
    return n;
  }

  // The program's session reported the timeout, its idle transaction failed, and PostgreSQL ended it.
  static void expectEndedByPostgres(const ProcessResult& r, int loggedBefore) {
    ASSERT_EQ(r.exitCode, 0) << r.output;
    auto got = keyValues(r.output);
    EXPECT_EQ(got["idle_in_transaction_session_timeout"], "1500ms") << r.output;
    EXPECT_EQ(got["after_idle"].rfind("error: ", 0), 0u) << "the statement after the idle time succeeded\n" << r.output;
    EXPECT_EQ(timeoutsLogged(), loggedBefore + 1) << "PostgreSQL's log does not say it ended the session\n" << r.output;
  }

  static inline std::unique_ptr<usage::testing::PostgresServer> server_;
  static inline std::string startError_;
};

TEST_F(IdleInTransaction, SqlAlchemyWithPsycopg2SessionsCarryIt) {
  std::string python = systemPython();
  ASSERT_FALSE(::testing::Test::HasFailure());
  int before = timeoutsLogged();
  ProcessResult r = run({python, (sourceDir() / "sqlalchemy" / "check.py").string(), "session"},
                        sessionEnv(renderSettings(timeoutPolicy(Profile::kSQLAlchemy), "shop", "api")));
  expectEndedByPostgres(r, before);
}

TEST_F(IdleInTransaction, GoSQLWithLibPqAndWithPgxSessionsCarryIt) {
  REQUIRE_TOOL("go", "a Go toolchain (1.23 or later) on PATH");
  fs::path bin = buildGo("gosql");
  ASSERT_FALSE(::testing::Test::HasFailure());
  auto env = sessionEnv(renderSettings(timeoutPolicy(Profile::kGoSQL), "shop", "orders-api"));
  for (const char* driver : {"postgres", "pgx"}) {  // lib/pq, pgx's stdlib
    SCOPED_TRACE(driver);
    int before = timeoutsLogged();
    expectEndedByPostgres(run({bin.string(), "session", driver}, env), before);
  }
}

TEST_F(IdleInTransaction, PgxpoolSessionsCarryIt) {
  REQUIRE_TOOL("go", "a Go toolchain (1.23 or later) on PATH");
  fs::path bin = buildGo("pgx");
  ASSERT_FALSE(::testing::Test::HasFailure());
  int before = timeoutsLogged();
  ProcessResult r =
      run({bin.string(), "session"}, sessionEnv(renderSettings(timeoutPolicy(Profile::kPgxpool), "shop", "api")));
  expectEndedByPostgres(r, before);
}

TEST_F(IdleInTransaction, NodePostgresSessionsCarryIt) {
  fs::path modules = nodeModules();
  ASSERT_FALSE(::testing::Test::HasFailure());
  int before = timeoutsLogged();
  ProcessResult r =
      runNode(sessionEnv(renderSettings(timeoutPolicy(Profile::kNodePostgres), "shop", "api")), modules, "session");
  expectEndedByPostgres(r, before);
}

TEST_F(IdleInTransaction, SpringHikariSessionsCarryIt) {
  std::string classpath = hikariClasspath();
  ASSERT_FALSE(::testing::Test::HasFailure());
  auto env = sessionEnv(renderSettings(timeoutPolicy(Profile::kSpringHikari), "shop", "api"));
  env.insert(env.end(), {{"SPRING_DATASOURCE_HIKARI_JDBCURL",
                          "jdbc:postgresql://127.0.0.1:" + std::to_string(server_->port()) + "/orders?sslmode=disable"},
                         {"SPRING_DATASOURCE_HIKARI_USERNAME", "app"},
                         {"SPRING_DATASOURCE_HIKARI_PASSWORD", kPassword}});
  int before = timeoutsLogged();
  expectEndedByPostgres(runHikari(classpath, env, "session"), before);
}

TEST_F(IdleInTransaction, GenericSessionsOfLibpqCarryIt) {
  REQUIRE_TOOL("psql", "apt-get install postgresql-client");
  auto env = sessionEnv(renderSettings(timeoutPolicy(Profile::kGeneric), "shop", "api"));
  int before = timeoutsLogged();
  // psql is libpq itself: PGOPTIONS with no code at all.
  ProcessResult r = run({"psql", "-At", "-c", "SHOW idle_in_transaction_session_timeout", "-c", "BEGIN", "-c",
                         "SELECT 1", "-c", "\\! sleep " + std::to_string(kIdleSleepMs / 1000.0), "-c", "SELECT 2"},
                        env);
  EXPECT_NE(r.exitCode, 0) << r.output;
  EXPECT_EQ(r.output.rfind("1500ms\n", 0), 0u) << r.output;
  EXPECT_NE(r.output.find("idle-in-transaction timeout"), std::string::npos) << r.output;
  EXPECT_EQ(timeoutsLogged(), before + 1);
}

TEST_F(IdleInTransaction, PgBouncerEndsTheTransactionItself) {
  REQUIRE_PGBOUNCER();
  auto s = renderSettings(timeoutPolicy(Profile::kPgBouncer), "shop", "orders-api");
  PgBouncerProcess pgbouncer;
  pgbouncer.start(
      s, "host=127.0.0.1 port=" + std::to_string(server_->port()) + " dbname=orders user=app password=" + kPassword);
  ASSERT_FALSE(::testing::Test::HasFailure());
  std::string raw;
  EXPECT_EQ(pgbouncer.config(&raw)["idle_transaction_timeout"], "1.5") << raw;

  ProcessResult r = pgbouncer.psql(
      "orders", "app", {"BEGIN", "SELECT 1", "\\! sleep " + std::to_string(kIdleSleepMs / 1000.0), "SELECT 2"});
  // Why PGOPTIONS is not the way through PgBouncer: it refuses the options startup parameter by default.
  ProcessResult withOptions =
      pgbouncer.psql("orders", "app", {"SELECT 1"}, {{"PGOPTIONS", idleInTransactionOptions(kTimeout)}});
  std::string idleInTransaction =
      server_->exec("SELECT count(*) FROM pg_stat_activity WHERE datname = 'orders' AND state = 'idle in transaction'");
  std::string log = pgbouncer.stop();
  EXPECT_NE(r.exitCode, 0) << r.output << log;
  EXPECT_EQ(r.output.find("2\n"), std::string::npos) << "the statement after the idle time ran\n" << r.output;
  EXPECT_NE(r.output.find("idle transaction timeout"), std::string::npos) << "PgBouncer closed the client\n"
                                                                          << r.output;
  EXPECT_EQ(idleInTransaction, "0") << "the server connection PgBouncer held in the transaction is gone too";
  EXPECT_NE(withOptions.exitCode, 0) << withOptions.output;
  EXPECT_NE(withOptions.output.find("unsupported startup parameter"), std::string::npos) << withOptions.output;
}

}  // namespace
}  // namespace poolguard::render
