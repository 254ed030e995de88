#pragma once
// Real servers the usage integration tests start for themselves: a PostgreSQL 15 with TLS from a test CA and
// a small max_connections, a Prometheus, and an HTTP target exposing HikariCP-style pool metrics.
#include <libpq-fe.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace poolguard::usage::testing {

// Runs a shell command, returns its exit code; output (stdout and stderr) goes to *out when given.
int sh(const std::string& command, std::string* out = nullptr);
int freePort();
std::string readFile(const std::string& path);

class PostgresServer {
 public:
  // Creates certificates, initdb, starts postgres on a free loopback port with ssl=on.
  void start(int maxConnections);
  void stop();
  ~PostgresServer() { stop(); }

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  std::string caPem() const { return readFile(dir_ + "/ca.crt"); }
  std::string wrongCaPem() const { return readFile(dir_ + "/wrong-ca.crt"); }
  static constexpr const char* kMonitorUser = "monitor";
  static constexpr const char* kMonitorPassword = "monitor-pw-8f2c";

  // A superuser session over the Unix socket with the given application_name; nullptr on failure.
  PGconn* connect(const std::string& applicationName) const;
  // Runs SQL as the superuser; returns the first column of the first row ("" when none) or throws.
  std::string exec(const std::string& sql) const;

 private:
  std::string dir_;
  std::string runAs_;  // "runuser -u postgres -- " when running as root
  int port_ = 0;
  bool running_ = false;
};

// Serves GET /metrics with the current text.
class MetricsTarget {
 public:
  void start();
  void stop();
  ~MetricsTarget() { stop(); }
  void set(const std::string& body) {
    std::lock_guard l(mu_);
    body_ = body;
  }
  int port() const { return port_; }

 private:
  void serve();
  int listenFd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::mutex mu_;
  std::string body_;
};

class PrometheusServer {
 public:
  // Scrapes every target every second; targets: "host:port" -> labels added to its series.
  void start(const std::map<std::string, std::map<std::string, std::string>>& targets);
  void stop();
  ~PrometheusServer() { stop(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace poolguard::usage::testing
