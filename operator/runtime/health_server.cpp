#include "runtime/health_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <spdlog/spdlog.h>

namespace poolguard::runtime {

HealthServer::~HealthServer() { stop(); }

void HealthServer::addLivenessCheck(const std::string& name, HealthCheck check) {
  std::lock_guard lock(mu_);
  liveness_.emplace_back(name, std::move(check));
}

void HealthServer::addReadinessCheck(const std::string& name, HealthCheck check) {
  std::lock_guard lock(mu_);
  readiness_.emplace_back(name, std::move(check));
}

Status HealthServer::start(const std::string& host, int port) {
  if (thread_.joinable()) return Error(ErrorCode::kInvalidArgument, "health server already started");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res); rc != 0) {
    return Error(ErrorCode::kInvalidArgument, "health server address " + host + ": " + gai_strerror(rc));
  }
  // Non-blocking: serve() accepts until the backlog is empty.
  int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, res->ai_protocol);
  int one = 1;
  if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 16) != 0) {
    std::string why = std::strerror(errno);
    if (fd >= 0) close(fd);
    freeaddrinfo(res);
    return Error(ErrorCode::kUnavailable, "health server on " + host + ":" + service + ": " + why);
  }
  freeaddrinfo(res);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  listenFd_ = fd;
  wakeFd_ = eventfd(0, EFD_CLOEXEC);
  thread_ = std::thread([this] { serve(); });
  return okStatus();
}

void HealthServer::stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  [[maybe_unused]] auto n = write(wakeFd_, &one, sizeof one);
  thread_.join();
  close(listenFd_);
  close(wakeFd_);
  listenFd_ = wakeFd_ = -1;
  port_ = 0;
}

namespace {

// A connection whose request is still arriving. Every connection is read without blocking, so clients that send
// nothing (or one byte a second) cannot delay the probes of the others.
struct PendingRequest {
  int fd = -1;
  std::string request;
  std::chrono::steady_clock::time_point deadline;
};

constexpr auto kRequestTimeout = std::chrono::seconds(2);
// Beyond this many open connections the oldest is closed: the kubelet's probes are a few a minute.
constexpr size_t kMaxConnections = 64;
constexpr size_t kMaxRequestBytes = 8192;

bool requestComplete(const std::string& request) {
  return request.find("\r\n\r\n") != std::string::npos || request.size() >= kMaxRequestBytes;
}

}  // namespace

void HealthServer::serve() {
  std::vector<PendingRequest> pending;
  std::vector<pollfd> fds;
  auto closeAt = [&](size_t i) {
    close(pending[i].fd);
    pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(i));
  };
  while (true) {
    fds.assign({{listenFd_, POLLIN, 0}, {wakeFd_, POLLIN, 0}});
    for (const auto& p : pending) fds.push_back({p.fd, POLLIN, 0});
    int timeoutMs = -1;
    if (!pending.empty()) {
      auto first = std::min_element(pending.begin(), pending.end(), [](const auto& a, const auto& b) {
                     return a.deadline < b.deadline;
                   })->deadline;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(first - std::chrono::steady_clock::now());
      timeoutMs = static_cast<int>(std::max<int64_t>(0, left.count()) + 1);
    }
    if (poll(fds.data(), fds.size(), timeoutMs) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("health server: poll failed: {}", std::strerror(errno));
      break;
    }
    if (fds[1].revents) break;
    // Read what arrived first (fds and pending are in the same order from index 2), answering the complete
    // requests; closing shifts `pending`, so walk backwards.
    for (size_t i = pending.size(); i-- > 0;) {
      if (fds[i + 2].revents == 0) continue;
      char buf[1024];
      bool eof = false;
      while (!requestComplete(pending[i].request)) {
        ssize_t n = recv(pending[i].fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
          pending[i].request.append(buf, static_cast<size_t>(n));
          continue;
        }
        eof = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
        break;
      }
      if (requestComplete(pending[i].request) || eof) {
        if (!pending[i].request.empty()) respond(pending[i].fd, pending[i].request);
        closeAt(i);
      }
    }
    const auto now = std::chrono::steady_clock::now();
    for (size_t i = pending.size(); i-- > 0;) {
      if (pending[i].deadline <= now) closeAt(i);
    }
    if (fds[0].revents & POLLIN) {
      while (true) {
        int conn = accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (conn < 0) break;
        if (pending.size() >= kMaxConnections) closeAt(0);
        pending.push_back(PendingRequest{conn, {}, now + kRequestTimeout});
      }
    }
  }
  for (const auto& p : pending) close(p.fd);
}

std::pair<bool, std::string> HealthServer::evaluate(const std::vector<std::pair<std::string, HealthCheck>>& checks) {
  bool ok = true;
  std::string body;
  for (const auto& [name, check] : checks) {
    bool pass = false;
    try {
      pass = check();
    } catch (...) {
      pass = false;
    }
    body += (pass ? "[+]" : "[-]") + name + (pass ? " ok\n" : " failed\n");
    ok = ok && pass;
  }
  body += ok ? "ok\n" : "not ok\n";
  return {ok, body};
}

void HealthServer::respond(int fd, const std::string& request) {
  auto lineEnd = request.find("\r\n");
  std::string line = request.substr(0, lineEnd);
  std::string method = line.substr(0, line.find(' '));
  std::string path;
  if (auto sp = line.find(' '); sp != std::string::npos) {
    path = line.substr(sp + 1, line.find(' ', sp + 1) - sp - 1);
    path = path.substr(0, path.find('?'));
  }
  int status = 404;
  std::string body = "not found\n";
  if (method != "GET" && method != "HEAD") {
    status = 405;
    body = "method not allowed\n";
  } else if (path == "/healthz" || path == "/readyz") {
    std::vector<std::pair<std::string, HealthCheck>> checks;
    {
      std::lock_guard lock(mu_);
      checks = path == "/healthz" ? liveness_ : readiness_;
    }
    auto [ok, text] = evaluate(checks);
    status = ok ? 200 : 503;
    body = std::move(text);
  }
  const char* reason = status == 200   ? "OK"
                       : status == 503 ? "Service Unavailable"
                       : status == 405 ? "Method Not Allowed"
                                       : "Not Found";
  std::string response =
      "HTTP/1.1 " + std::to_string(status) + " " + reason +
      "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n\r\n" + (method == "HEAD" ? std::string() : body);
  // The answer is a few hundred bytes into an empty socket buffer: one send without blocking. A client that
  // does not read is not waited for.
  [[maybe_unused]] ssize_t sent = send(fd, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace poolguard::runtime
