#include "runtime/health_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
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
  int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
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

void HealthServer::serve() {
  pollfd fds[2] = {{listenFd_, POLLIN, 0}, {wakeFd_, POLLIN, 0}};
  while (true) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("health server: poll failed: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents) return;
    if (!(fds[0].revents & POLLIN)) continue;
    int conn = accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;
    handle(conn);
    close(conn);
  }
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

void HealthServer::handle(int fd) {
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string request;
  char buf[1024];
  // The request line is all we need; stop at the end of the headers or at 8 KiB.
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < 8192) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    request.append(buf, static_cast<size_t>(n));
  }
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
  size_t off = 0;
  while (off < response.size()) {
    ssize_t n = send(fd, response.data() + off, response.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

}  // namespace poolguard::runtime
