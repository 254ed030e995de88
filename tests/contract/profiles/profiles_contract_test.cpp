// Contract tests: what poolguard renders for each profile, read by the real library it targets. Each test renders
// a policy with the C++ code, hands the result to a small program built against the pinned library (in
// tests/contract/profiles/<name>/), and compares the configuration the library reports with the policy.
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
  REQUIRE_TOOL("go", "a Go toolchain (1.21 or later) on PATH");
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
  REQUIRE_TOOL("go", "a Go toolchain (1.21 or later) on PATH");
  auto p = contractPolicy(Profile::kPgxpool);
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

  // maxLifetime 0 (unlimited) must not reach pgxpool as 0, which closes every connection after one use.
  p.spec.pool.maxLifetime = Millis(0);
  r = run({bin.string()}, envOf(renderSettings(p, "shop", "orders-api")));
  ASSERT_EQ(r.exitCode, 0) << r.output;
  EXPECT_EQ(keyValues(r.output)["max_conn_lifetime"], "876000h0m0s");
}

TEST(ProfileContract, NodePostgresPoolTakesTheSettings) {
  REQUIRE_TOOL("node", "apt-get install nodejs npm");
  REQUIRE_TOOL("npm", "apt-get install npm");
  fs::path dir = cacheDir() / "nodepg";
  fs::create_directories(dir);
  // Reinstall whenever the pinned lock file changes.
  auto read = [](const fs::path& f) {
    std::ifstream in(f);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  std::string lock = read(sourceDir() / "nodepg" / "package-lock.json");
  if (read(dir / "package-lock.json") != lock || !fs::exists(dir / "node_modules" / "pg")) {
    fs::copy_file(sourceDir() / "nodepg" / "package.json", dir / "package.json", fs::copy_options::overwrite_existing);
    fs::copy_file(sourceDir() / "nodepg" / "package-lock.json", dir / "package-lock.json",
                  fs::copy_options::overwrite_existing);
    ProcessResult install = run({"npm", "ci", "--no-audit", "--no-fund"}, {}, dir);
    ASSERT_EQ(install.exitCode, 0) << "npm ci in " << dir << " failed:\n" << install.output;
  }
  auto env = envOf(renderSettings(contractPolicy(Profile::kNodePostgres), "shop", "orders-api"));
  env.emplace_back("NODE_PATH", (dir / "node_modules").string());
  ProcessResult r = run({"node", (sourceDir() / "nodepg" / "check.js").string()}, env);
  ASSERT_EQ(r.exitCode, 0) << r.output;
  auto got = keyValues(r.output);
  EXPECT_EQ(got["max"], "20") << r.output;
  EXPECT_EQ(got["min"], "5");
  EXPECT_EQ(got["connectionTimeoutMillis"], "2500");
  EXPECT_EQ(got["idleTimeoutMillis"], "600000");
  EXPECT_EQ(got["maxLifetimeSeconds"], "1800");
  EXPECT_EQ(got["application_name"], "shop/orders-api") << "pg reads PGAPPNAME";
}

TEST(ProfileContract, SpringBootBindsTheHikariSettings) {
  REQUIRE_TOOL("java", "apt-get install default-jdk-headless");
  REQUIRE_TOOL("javac", "apt-get install default-jdk-headless");
  REQUIRE_TOOL("mvn", "apt-get install maven");
  fs::path dir = cacheDir() / "hikari";
  fs::create_directories(dir);
  fs::path classpathFile = dir / "classpath.txt";
  ProcessResult resolve = run({"mvn", "-q", "-B", "-f", (sourceDir() / "hikari" / "pom.xml").string(),
                               "dependency:build-classpath", "-Dmdep.outputFile=" + classpathFile.string()});
  ASSERT_EQ(resolve.exitCode, 0) << "mvn dependency:build-classpath failed:\n" << resolve.output;
  std::ifstream cpIn(classpathFile);
  std::string classpath((std::istreambuf_iterator<char>(cpIn)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(classpath.empty());
  ProcessResult compile = run({"javac", "-d", (dir / "classes").string(), "-cp", classpath,
                               (sourceDir() / "hikari" / "HikariCheck.java").string()});
  ASSERT_EQ(compile.exitCode, 0) << compile.output;

  auto env = envOf(renderSettings(contractPolicy(Profile::kSpringHikari), "shop", "orders-api"));
  // Shows why the application name does not go through data-source-properties (see settings.cpp).
  env.emplace_back("SPRING_DATASOURCE_HIKARI_DATASOURCEPROPERTIES_APPLICATIONNAME", "unused");
  ProcessResult r = run({"java", "-cp", classpath + ":" + (dir / "classes").string(), "HikariCheck"}, env, {}, true);
  ASSERT_EQ(r.exitCode, 0) << r.output;
  auto got = keyValues(r.output);
  EXPECT_EQ(got["maximumPoolSize"], "20") << r.output;
  EXPECT_EQ(got["minimumIdle"], "5");
  EXPECT_EQ(got["connectionTimeout"], "2500");
  EXPECT_EQ(got["idleTimeout"], "600000");
  EXPECT_EQ(got["maxLifetime"], "1800000");
  EXPECT_EQ(got["leakDetectionThreshold"], "20000");
  EXPECT_EQ(got["connectionInitSql"], "SET application_name = 'shop/orders-api'");
  EXPECT_EQ(got["dataSourceProperties"], "[applicationname]");
}

TEST(ProfileContract, SqlAlchemyQueuePoolTakesTheSettings) {
  // Debian's python3-sqlalchemy lives in the system interpreter, whatever python3 comes first on PATH.
  std::string python = fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  ProcessResult probe = run({python, "-c", "import sqlalchemy, psycopg2"});
  if (probe.exitCode != 0) {
    FAIL() << "SQLAlchemy or psycopg2 is missing for " << python
           << "; install them with apt-get install python3-sqlalchemy python3-psycopg2\n"
           << probe.output;
  }
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

int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

TEST(ProfileContract, PgBouncerLoadsTheRenderedIni) {
  const std::string pgbouncer = "/usr/sbin/pgbouncer";
  if (!fs::exists(pgbouncer)) FAIL() << pgbouncer << " is not installed: apt-get install pgbouncer";
  REQUIRE_TOOL("psql", "apt-get install postgresql-client");
  auto p = contractPolicy(Profile::kPgBouncer);
  p.spec.pool.maxLifetime = Millis(0);
  auto s = renderSettings(p, "shop", "orders-api");

  std::string tmpl = (fs::temp_directory_path() / "poolguard-pgbouncer-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  fs::path dir = tmpl;
  // PgBouncer refuses to run as root; as root it drops to nobody, who must read the files.
  ::chmod(dir.c_str(), 0755);
  int port = freePort();
  ASSERT_GT(port, 0);
  std::ofstream(dir / "poolguard.ini") << s.pgbouncerIni;
  // The application's own file, as docs/profiles.md shows: poolguard's settings are the last lines of [pgbouncer].
  std::ofstream(dir / "pgbouncer.ini") << "[databases]\norders = host=127.0.0.1 port=1 dbname=orders\n"
                                       << "[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = " << port
                                       << "\nunix_socket_dir =\nauth_type = any\nadmin_users = pgbouncer\n"
                                       << "default_pool_size = 99\n"
                                       << "%include " << (dir / "poolguard.ini").string() << "\n";
  ::chmod((dir / "poolguard.ini").c_str(), 0644);
  ::chmod((dir / "pgbouncer.ini").c_str(), 0644);

  pid_t pid = ::fork();
  if (pid == 0) {
    int log = ::open((dir / "pgbouncer.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    std::string ini = (dir / "pgbouncer.ini").string();
    if (::geteuid() == 0)
      ::execl(pgbouncer.c_str(), "pgbouncer", "-u", "nobody", ini.c_str(), nullptr);
    else
      ::execl(pgbouncer.c_str(), "pgbouncer", ini.c_str(), nullptr);
    ::_exit(127);
  }
  ASSERT_GT(pid, 0);
  std::vector<std::string> psql = {"psql", "-h",        "127.0.0.1", "-p",        std::to_string(port),
                                   "-U",   "pgbouncer", "-d",        "pgbouncer", "-At",
                                   "-F",   "|",         "-c"};
  auto admin = [&](const std::string& command) {
    auto argv = psql;
    argv.push_back(command);
    return run(argv, {{"PGAPPNAME", s.applicationName}, {"PGCONNECT_TIMEOUT", "2"}}, {}, true);
  };
  ProcessResult config;
  for (int attempt = 0; attempt < 50; ++attempt) {
    config = admin("SHOW CONFIG");
    if (config.exitCode == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ProcessResult clients = admin("SHOW CLIENTS");
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);
  std::ifstream logIn(dir / "pgbouncer.log");
  std::string log((std::istreambuf_iterator<char>(logIn)), std::istreambuf_iterator<char>());
  fs::remove_all(dir);
  ASSERT_EQ(config.exitCode, 0) << "PgBouncer's admin console did not answer:\n" << config.output << log;

  std::map<std::string, std::string> got;
  std::istringstream in(config.output);
  for (std::string line; std::getline(in, line);) {
    auto bar = line.find('|');
    if (bar == std::string::npos) continue;
    auto bar2 = line.find('|', bar + 1);
    got[line.substr(0, bar)] = line.substr(bar + 1, bar2 == std::string::npos ? std::string::npos : bar2 - bar - 1);
  }
  EXPECT_EQ(got["default_pool_size"], "20") << "poolguard's line wins over the application's 99\n" << config.output;
  EXPECT_EQ(got["min_pool_size"], "5");
  EXPECT_EQ(got["reserve_pool_size"], "0");
  EXPECT_EQ(got["query_wait_timeout"], "2.5");
  EXPECT_EQ(got["server_idle_timeout"], "600");
  EXPECT_EQ(std::stod(got["server_lifetime"]), 315360000.0) << "unlimited, not PgBouncer's use-once 0";
  EXPECT_EQ(got["listen_port"], std::to_string(port)) << "the application's own settings survive the include";
  // libpq (psql here, psycopg2 and most drivers elsewhere) sends PGAPPNAME as application_name.
  EXPECT_NE(clients.output.find("shop/orders-api"), std::string::npos) << clients.output;
}

}  // namespace
}  // namespace poolguard::render
