#include "support/operator_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include <iostream>

#include "support/cluster.h"
#include "support/e2e_helpers.h"

namespace poolguard::testing {

int freePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

OperatorProcess::OperatorProcess(std::vector<std::string> extraArgs, std::string kubeconfig)
    : extraArgs_(std::move(extraArgs)), kubeconfig_(std::move(kubeconfig)) {}

OperatorProcess::~OperatorProcess() {
  if (running()) stop(SIGKILL);
}

void OperatorProcess::start() {
  metricsPort_ = freePort();
  healthPort_ = freePort();
  static int counter = 0;
  logPath_ = cluster().dir + "/logs/poolguard-" + std::to_string(getpid()) + "-" + std::to_string(++counter) + ".log";
  std::vector<std::string> argv{poolguardBinary(),
                                "run",
                                "--kubeconfig=" + (kubeconfig_.empty() ? cluster().kubeconfig : kubeconfig_),
                                "--metrics-bind-address=127.0.0.1:" + std::to_string(metricsPort_),
                                "--health-probe-bind-address=127.0.0.1:" + std::to_string(healthPort_),
                                "--log-format=text",
                                "--log-level=debug"};
  argv.insert(argv.end(), extraArgs_.begin(), extraArgs_.end());
  pid_ = fork();
  if (pid_ == 0) {
    // The operator must not outlive a test binary that crashed or was killed.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    // KUBECONFIG of the test environment must not matter: --kubeconfig wins, and nothing else is read.
    unsetenv("KUBECONFIG");
    for (const auto& [name, value] : env_) setenv(name.c_str(), value.c_str(), 1);
    int fd = open(logPath_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
}

bool OperatorProcess::running() const {
  if (pid_ <= 0) return false;
  return waitpid(pid_, nullptr, WNOHANG) == 0;
}

bool OperatorProcess::waitReady(int seconds) {
  std::string url = "http://127.0.0.1:" + std::to_string(healthPort_) + "/readyz";
  return eventually(
             [&] {
               if (!running()) return true;
               return run({"curl", "-sf", "-o", "/dev/null", url}).exitCode == 0;
             },
             std::chrono::seconds(seconds)) &&
         running();
}

int OperatorProcess::stop(int sig, std::chrono::milliseconds grace) {
  if (pid_ <= 0) return -1;
  kill(pid_, sig);
  int status = 0;
  const auto step = std::chrono::milliseconds(50);
  for (auto waited = std::chrono::milliseconds(0); waited < grace; waited += step) {
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r != 0) {
      pid_ = -1;
      return r > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(step);
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return -1;
}

std::string OperatorProcess::logs() const {
  std::ifstream in(logPath_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string OperatorProcess::metrics() const {
  auto r = run({"curl", "-sf", "http://127.0.0.1:" + std::to_string(metricsPort_) + "/metrics"});
  return r.exitCode == 0 ? r.out : "";
}

namespace {
std::vector<std::string> auditLines() {
  std::vector<std::string> lines;
  std::ifstream in(cluster().dir + "/logs/audit.log");
  std::string line;
  while (std::getline(in, line)) lines.push_back(std::move(line));
  return lines;
}
}  // namespace

size_t auditLineCount() { return auditLines().size(); }

std::vector<nlohmann::json> auditEvents(size_t sinceLine) {
  std::vector<nlohmann::json> out;
  auto lines = auditLines();
  for (size_t i = sinceLine; i < lines.size(); ++i) {
    auto j = nlohmann::json::parse(lines[i], nullptr, false);
    if (!j.is_discarded() && j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

std::vector<nlohmann::json> operatorRequests(size_t sinceLine, bool writesOnly) {
  std::vector<nlohmann::json> out;
  for (auto& j : auditEvents(sinceLine)) {
    if (j.value("stage", "") != "ResponseComplete") continue;
    if (j.value("userAgent", "").rfind("poolguard/", 0) != 0) continue;
    std::string verb = j.value("verb", "");
    if (writesOnly && verb != "create" && verb != "update" && verb != "patch" && verb != "delete") continue;
    out.push_back(std::move(j));
  }
  return out;
}

void SuiteOperator::start(std::vector<std::string> extraArgs, std::vector<std::pair<std::string, std::string>> env) {
  ASSERT_NO_FATAL_FAILURE(installCrds());
  op_ = std::make_unique<OperatorProcess>(std::move(extraArgs));
  for (auto& [name, value] : env) op_->setEnv(std::move(name), std::move(value));
  op_->start();
  ASSERT_TRUE(op_->waitReady()) << op_->logs();
}

void SuiteOperator::stop() {
  if (op_) op_->stop();
  op_.reset();
}

void SuiteOperator::printLogTailIfFailed() const {
  if (op_ && ::testing::Test::HasFailure()) std::cerr << "--- operator log tail:\n" << tail(op_->logs(), 60) << "\n";
}

}  // namespace poolguard::testing
