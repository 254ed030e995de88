#include "support/pg_impostor.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

namespace poolguard::testing {
namespace {

constexpr uint32_t kSslRequest = 80877103;
constexpr uint32_t kGssEncRequest = 80877104;

bool readExactly(int fd, void* buf, size_t n) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, 5000) <= 0) return false;
    ssize_t got = ::read(fd, p, n);
    if (got <= 0) return false;
    p += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

void writeAll(int fd, const std::string& s) { (void)!::send(fd, s.data(), s.size(), MSG_NOSIGNAL); }

std::string int32(uint32_t v) {
  uint32_t n = htonl(v);
  return std::string(reinterpret_cast<const char*>(&n), 4);
}

}  // namespace

PostgresImpostor::~PostgresImpostor() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  if (listenFd_ >= 0) ::close(listenFd_);
}

bool PostgresImpostor::start() {
  listenFd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (listenFd_ < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listenFd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listenFd_, 16) != 0)
    return false;
  socklen_t len = sizeof addr;
  ::getsockname(listenFd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { serve(); });
  return true;
}

std::vector<std::string> PostgresImpostor::passwords() const {
  std::lock_guard lock(mu_);
  return passwords_;
}

void PostgresImpostor::serve() {
  while (!stopping_) {
    pollfd pfd{listenFd_, POLLIN, 0};
    if (::poll(&pfd, 1, 100) <= 0) continue;
    int fd = ::accept(listenFd_, nullptr, nullptr);
    if (fd < 0) continue;
    ++connections_;
    session(fd);
    ::close(fd);
  }
}

void PostgresImpostor::session(int fd) {
  // Startup: an SSLRequest or GSSENCRequest is declined ('N'), then the StartupMessage follows.
  for (int i = 0; i < 3; ++i) {
    uint32_t header[2];
    if (!readExactly(fd, header, sizeof header)) return;
    uint32_t length = ntohl(header[0]), code = ntohl(header[1]);
    if (length < 8 || length > 10000) return;
    std::string rest(length - 8, '\0');
    if (!rest.empty() && !readExactly(fd, rest.data(), rest.size())) return;
    if (code == kSslRequest || code == kGssEncRequest) {
      writeAll(fd, "N");
      continue;
    }
    break;  // the StartupMessage
  }
  // AuthenticationCleartextPassword.
  writeAll(fd, "R" + int32(8) + int32(3));
  char type = 0;
  uint32_t length = 0;
  if (!readExactly(fd, &type, 1) || !readExactly(fd, &length, 4)) return;
  length = ntohl(length);
  if (type != 'p' || length < 5 || length > 10000) return;
  std::string password(length - 4, '\0');
  if (!readExactly(fd, password.data(), password.size())) return;
  if (!password.empty() && password.back() == '\0') password.pop_back();
  {
    std::lock_guard lock(mu_);
    passwords_.push_back(password);
  }
  std::string fields = std::string("SFATAL") + '\0' + "C28P01" + '\0' + "Mpassword authentication failed" + '\0' + '\0';
  writeAll(fd, "E" + int32(static_cast<uint32_t>(fields.size() + 4)) + fields);
}

}  // namespace poolguard::testing
