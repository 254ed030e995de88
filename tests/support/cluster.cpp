#include "support/cluster.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

extern char** environ;

namespace poolguard::testing {
namespace {

LocalCluster g_cluster;
bool g_started = false;

std::string envOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return (v && *v) ? v : fallback;
}

// Reads DIR/env (lines of `export K=V`) into a map.
std::map<std::string, std::string> readEnvFile(const std::string& path) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("export ", 0) == 0) line = line.substr(7);
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

void loadCluster(const std::string& dir) {
  auto env = readEnvFile(dir + "/env");
  if (env.empty()) throw std::runtime_error("no cluster environment in " + dir + "/env");
  g_cluster.dir = dir;
  g_cluster.kubeconfig = env["KUBECONFIG"];
  g_cluster.server = env["KUBE_APISERVER"];
  g_cluster.pgHost = env["PGHOST"];
  g_cluster.pgPort = std::stoi(env["PGPORT"]);
  g_cluster.pgUser = env["PGUSER"];
  g_cluster.pgDatabase = env["PGDATABASE"];
  g_cluster.prometheusUrl = env.count("PROMETHEUS_URL") ? env["PROMETHEUS_URL"] : "";
}

class ClusterEnvironment : public ::testing::Environment {
 public:
  explicit ClusterEnvironment(ClusterOptions opts) : opts_(opts) {}

  void SetUp() override {
    std::string existing = envOr("POOLGUARD_TEST_CLUSTER", "");
    if (!existing.empty()) {
      loadCluster(existing);
      g_started = true;
      return;
    }
    char tmpl[] = "/tmp/poolguard-test-XXXXXX";
    if (!mkdtemp(tmpl)) FAIL() << "mkdtemp failed";
    dir_ = tmpl;
    std::vector<std::string> argv{sourceDir() + "/scripts/local-cluster", "start", dir_};
    if (opts_.prometheus) argv.push_back("--prometheus");
    auto r = run(argv);
    if (r.exitCode != 0) {
      FAIL() << "scripts/local-cluster start failed (exit " << r.exitCode << "):\n" << r.out << r.err;
    }
    loadCluster(dir_);
    owned_ = true;
    g_started = true;
  }

  void TearDown() override {
    if (!owned_) return;
    run({sourceDir() + "/scripts/local-cluster", "stop", dir_});
    if (envOr("POOLGUARD_KEEP_CLUSTER_DIR", "").empty()) run({"rm", "-rf", dir_});
  }

 private:
  ClusterOptions opts_;
  std::string dir_;
  bool owned_ = false;
};

}  // namespace

CommandResult run(const std::vector<std::string>& argv, const std::string& input,
                  const std::map<std::string, std::string>& env) {
  CommandResult result;
  int inPipe[2], outPipe[2], errPipe[2];
  if (pipe2(inPipe, O_CLOEXEC) || pipe2(outPipe, O_CLOEXEC) || pipe2(errPipe, O_CLOEXEC)) {
    result.err = "pipe failed";
    return result;
  }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(inPipe[0], 0);
    dup2(outPipe[1], 1);
    dup2(errPipe[1], 2);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(inPipe[0]);
  close(outPipe[1]);
  close(errPipe[1]);
  // Feed stdin from a thread so a child that writes a lot before reading cannot deadlock us.
  std::thread writer([fd = inPipe[1], input] {
    signal(SIGPIPE, SIG_IGN);
    size_t off = 0;
    while (off < input.size()) {
      ssize_t n = write(fd, input.data() + off, input.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close(fd);
  });
  pollfd fds[2] = {{outPipe[0], POLLIN, 0}, {errPipe[0], POLLIN, 0}};
  int open = 2;
  char buf[65536];
  while (open > 0) {
    if (poll(fds, 2, -1) < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      } else {
        (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  writer.join();
  int status = 0;
  waitpid(pid, &status, 0);
  result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

CommandResult LocalCluster::kubectl(const std::vector<std::string>& args, const std::string& input) const {
  std::vector<std::string> argv{"kubectl", "--kubeconfig=" + kubeconfig};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, input);
}

CommandResult LocalCluster::waitEstablished(const std::string& crd) const {
  const std::string target = crd.starts_with("crd/") ? crd : "crd/" + crd;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    CommandResult r = kubectl({"wait", "--for=condition=Established", "--timeout=60s", target});
    if (r.exitCode == 0 || std::chrono::steady_clock::now() > deadline ||
        r.err.find("accessor error") == std::string::npos) {
      return r;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

CommandResult LocalCluster::psql(const std::string& sql, const std::string& database) const {
  return run({"psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", pgHost, "-p", std::to_string(pgPort), "-U",
              pgUser, "-d", database.empty() ? pgDatabase : database, "-c", sql});
}

void useLocalCluster(ClusterOptions opts) { ::testing::AddGlobalTestEnvironment(new ClusterEnvironment(opts)); }

const LocalCluster& cluster() {
  if (!g_started) throw std::runtime_error("the local cluster is not running: call useLocalCluster() in main");
  return g_cluster;
}

std::string sourceDir() { return envOr("POOLGUARD_SOURCE_DIR", POOLGUARD_SOURCE_DIR_DEFAULT); }
std::string poolguardBinary() { return envOr("POOLGUARD_BINARY", POOLGUARD_BINARY_DEFAULT); }
std::string kstatusBinary() { return envOr("POOLGUARD_KSTATUS", POOLGUARD_KSTATUS_DEFAULT); }

std::string createNamespace(const std::string& prefix) {
  static std::atomic<int> counter{0};
  std::string name = "t-" + prefix + "-" + std::to_string(getpid() % 100000) + "-" + std::to_string(++counter);
  auto r = cluster().kubectl({"create", "namespace", name});
  if (r.exitCode != 0) throw std::runtime_error("creating namespace " + name + " failed: " + r.err);
  return name;
}

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    try {
      if (cond()) return true;
    } catch (const nlohmann::json::exception&) {
      // The object read is not in the shape the condition expects yet (absent, or a field still null): not yet.
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace poolguard::testing
