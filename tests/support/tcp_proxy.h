#pragma once
// A TCP proxy for fault injection: forwards every connection made to 127.0.0.1:port() to an upstream address,
// byte for byte (TLS passes through untouched), and can stall as a network path does.
//
// stall(): from then on nothing is forwarded in either direction, on open and on new connections. The proxy
// keeps reading what each side sends (so it sees a side close), and holds it.
// resume(): a connection whose client closed it meanwhile is dropped without delivering what it held, as a
// connection the client gave up on is gone; every other connection delivers what it held and goes on.
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace poolguard::testing {

class TcpProxy {
 public:
  TcpProxy(std::string upstreamHost, int upstreamPort);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  // Listens on an ephemeral port of 127.0.0.1 and starts forwarding; false when it cannot listen.
  bool start();
  int port() const { return port_; }
  void stall();
  void resume();
  // Connections accepted so far, and connections dropped by resume().
  int64_t accepted() const { return accepted_.load(); }
  int64_t dropped() const { return dropped_.load(); }

 private:
  void loop();

  std::string upstreamHost_;
  int upstreamPort_;
  int listenFd_ = -1;
  int wakeFds_[2] = {-1, -1};
  int port_ = 0;
  std::atomic<bool> stalled_{false};
  std::atomic<bool> resumeRequested_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> accepted_{0};
  std::atomic<int64_t> dropped_{0};
  std::thread thread_;
};

}  // namespace poolguard::testing
