#include "support/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <list>
#include <vector>

namespace poolguard::testing {
namespace {

constexpr size_t kMaxPending = size_t{4} << 20;  // per direction; reading pauses above it

void setNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK); }

// One direction of a connection: bytes read from `from`, waiting to be written to `to`.
struct Pipe {
  int from = -1;
  int to = -1;
  std::string pending;
  bool eof = false;       // `from` has nothing more to send
  bool shutDown = false;  // the end of stream was passed on to `to`
};

struct Connection {
  int client = -1;
  int upstream = -1;
  Pipe up;    // client -> upstream
  Pipe down;  // upstream -> client
  bool clientClosedWhileStalled = false;
  bool dead = false;

  void close() {
    if (client >= 0) ::close(client);
    if (upstream >= 0) ::close(upstream);
    client = upstream = -1;
    dead = true;
  }
};

// Reads what is available into the pipe; returns false on EOF or error.
bool readInto(Pipe& p) {
  char buf[16384];
  while (p.pending.size() < kMaxPending) {
    ssize_t n = ::read(p.from, buf, sizeof buf);
    if (n > 0) {
      p.pending.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
  return true;
}

// Writes what it can; returns false on error.
bool writeFrom(Pipe& p) {
  while (!p.pending.empty()) {
    ssize_t n = ::send(p.to, p.pending.data(), p.pending.size(), MSG_NOSIGNAL);
    if (n > 0) {
      p.pending.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
  if (p.eof && !p.shutDown) {
    ::shutdown(p.to, SHUT_WR);
    p.shutDown = true;
  }
  return true;
}

}  // namespace

TcpProxy::TcpProxy(std::string upstreamHost, int upstreamPort)
    : upstreamHost_(std::move(upstreamHost)), upstreamPort_(upstreamPort) {}

TcpProxy::~TcpProxy() {
  stopping_ = true;
  if (wakeFds_[1] >= 0) (void)!::write(wakeFds_[1], "x", 1);
  if (thread_.joinable()) thread_.join();
  for (int fd : {listenFd_, wakeFds_[0], wakeFds_[1]}) {
    if (fd >= 0) ::close(fd);
  }
}

bool TcpProxy::start() {
  listenFd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (listenFd_ < 0) return false;
  int one = 1;
  setsockopt(listenFd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listenFd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return false;
  if (::listen(listenFd_, 128) != 0) return false;
  socklen_t len = sizeof addr;
  if (::getsockname(listenFd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return false;
  port_ = ntohs(addr.sin_port);
  if (::pipe(wakeFds_) != 0) return false;
  setNonBlocking(listenFd_);
  setNonBlocking(wakeFds_[0]);
  thread_ = std::thread([this] { loop(); });
  return true;
}

void TcpProxy::stall() {
  stalled_ = true;
  (void)!::write(wakeFds_[1], "x", 1);
}

void TcpProxy::resume() {
  resumeRequested_ = true;
  stalled_ = false;
  (void)!::write(wakeFds_[1], "x", 1);
}

void TcpProxy::loop() {
  std::list<Connection> connections;
  std::vector<pollfd> fds;
  std::vector<std::pair<Connection*, int>> owners;  // per pollfd: connection and which socket (0 client, 1 up)
  while (!stopping_) {
    const bool stalled = stalled_.load();
    if (resumeRequested_.exchange(false)) {
      for (auto& c : connections) {
        if (c.clientClosedWhileStalled) {
          c.close();
          ++dropped_;
        }
      }
    }
    fds.clear();
    owners.clear();
    fds.push_back({listenFd_, POLLIN, 0});
    fds.push_back({wakeFds_[0], POLLIN, 0});
    owners.emplace_back(nullptr, -1);
    owners.emplace_back(nullptr, -1);
    for (auto& c : connections) {
      if (c.dead) continue;
      for (int side : {0, 1}) {
        Pipe& reading = side == 0 ? c.up : c.down;
        Pipe& writing = side == 0 ? c.down : c.up;  // the pipe that writes to this socket
        short events = 0;
        if (!reading.eof && reading.pending.size() < kMaxPending) events |= POLLIN;
        if (!stalled && (!writing.pending.empty() || (writing.eof && !writing.shutDown))) events |= POLLOUT;
        // A socket with nothing to wait for is left out: a reset one would report POLLHUP on every pass.
        fds.push_back({events == 0 ? -1 : (side == 0 ? c.client : c.upstream), events, 0});
        owners.emplace_back(&c, side);
      }
    }
    if (::poll(fds.data(), fds.size(), 200) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents & POLLIN) {
      char buf[64];
      while (::read(wakeFds_[0], buf, sizeof buf) > 0) {
      }
    }
    if (fds[0].revents & POLLIN) {
      while (true) {
        int client = ::accept(listenFd_, nullptr, nullptr);
        if (client < 0) break;
        int upstream = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(upstreamPort_));
        inet_pton(AF_INET, upstreamHost_.c_str(), &addr.sin_addr);
        if (upstream < 0 || ::connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
          ::close(client);
          if (upstream >= 0) ::close(upstream);
          continue;
        }
        setNonBlocking(client);
        setNonBlocking(upstream);
        Connection& c = connections.emplace_back();
        c.client = client;
        c.upstream = upstream;
        c.up.from = client;
        c.up.to = upstream;
        c.down.from = upstream;
        c.down.to = client;
        ++accepted_;
      }
    }
    for (size_t i = 2; i < fds.size(); ++i) {
      auto [c, side] = owners[i];
      if (c->dead || fds[i].revents == 0) continue;
      Pipe& reading = side == 0 ? c->up : c->down;
      Pipe& writing = side == 0 ? c->down : c->up;
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        if (!readInto(reading)) {
          reading.eof = true;
          if (side == 0 && stalled) c->clientClosedWhileStalled = true;
        }
      }
      if (!stalled && (fds[i].revents & POLLOUT)) {
        if (!writeFrom(writing)) {
          c->close();
          continue;
        }
      }
    }
    // A connection is finished once both directions have ended and delivered everything.
    for (auto& c : connections) {
      if (c.dead || stalled) continue;
      if (c.up.eof && c.down.eof && c.up.pending.empty() && c.down.pending.empty()) c.close();
    }
    connections.remove_if([](const Connection& c) { return c.dead; });
  }
  for (auto& c : connections) c.close();
}

}  // namespace poolguard::testing
