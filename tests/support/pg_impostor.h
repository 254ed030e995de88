#pragma once
// A server that poses as PostgreSQL and asks every client for its password in clear text (what a host of an
// attacker's choosing would do), then records what it was sent and ends the session with an error.
#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace poolguard::testing {

class PostgresImpostor {
 public:
  PostgresImpostor() = default;
  ~PostgresImpostor();
  PostgresImpostor(const PostgresImpostor&) = delete;
  PostgresImpostor& operator=(const PostgresImpostor&) = delete;

  // Listens on an ephemeral port of 127.0.0.1; false when it cannot.
  bool start();
  int port() const { return port_; }
  // Connections accepted, and the passwords clients sent.
  int connections() const { return connections_.load(); }
  std::vector<std::string> passwords() const;

 private:
  void serve();
  void session(int fd);

  int listenFd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::vector<std::string> passwords_;
  std::thread thread_;
};

}  // namespace poolguard::testing
