#pragma once
// /healthz and /readyz on an internal port: a small HTTP/1.0-style server on a plain socket (no TLS, no
// keep-alive) on its own thread. It reads every open connection without blocking, in one poll loop, so slow or
// silent clients never delay the answer to another; each connection has 2 s to send its request, and beyond 64
// open connections the oldest is closed.
//
// GET /healthz: 200 while every liveness check passes (none registered: the process is alive).
// GET /readyz:  200 while every readiness check passes, else 503 naming the failing checks.
// Anything else: 404. Checks run on the server thread and must be quick and non-blocking (read an atomic).
#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/result.h"

namespace poolguard::runtime {

using HealthCheck = std::function<bool()>;

class HealthServer {
 public:
  HealthServer() = default;
  ~HealthServer();
  HealthServer(const HealthServer&) = delete;
  HealthServer& operator=(const HealthServer&) = delete;

  void addLivenessCheck(const std::string& name, HealthCheck check);
  void addReadinessCheck(const std::string& name, HealthCheck check);

  // Binds host:port (port 0 picks a free one, see port()) and starts serving.
  Status start(const std::string& host, int port);
  void stop();
  int port() const { return port_.load(); }

 private:
  void serve();
  void respond(int fd, const std::string& request);
  std::pair<bool, std::string> evaluate(const std::vector<std::pair<std::string, HealthCheck>>& checks);

  std::mutex mu_;
  std::vector<std::pair<std::string, HealthCheck>> liveness_;
  std::vector<std::pair<std::string, HealthCheck>> readiness_;
  int listenFd_ = -1;
  int wakeFd_ = -1;
  std::atomic<int> port_{0};
  std::thread thread_;
};

}  // namespace poolguard::runtime
