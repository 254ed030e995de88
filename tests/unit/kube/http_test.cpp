// kube::HttpEndpoint, the one HTTP request path: a whole answer, a body past the size limit (with and without
// Content-Length), a server that trickles its answer past the deadline, TLS material that does not parse, and
// when the system's CA bundle is skipped for its certificate directory.
#include "kube/http.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <thread>

namespace poolguard::kube {
namespace {

using namespace std::chrono_literals;

// Serves each connection with `respond` (given the connected socket, after the request's headers were read)
// on a thread of its own, until destroyed.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::function<void(int fd)> respond) : respond_(std::move(respond)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 8) != 0) return;
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      while (!stopping_) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        std::string request;
        char buf[4096];
        while (request.find("\r\n\r\n") == std::string::npos) {
          ssize_t n = ::recv(c, buf, sizeof buf, 0);
          if (n <= 0) break;
          request.append(buf, static_cast<size_t>(n));
        }
        lastRequest_ = request;
        if (!stopping_) respond_(c);
        ::close(c);
      }
    });
  }
  ~ScriptedServer() {
    stopping_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    if (thread_.joinable()) thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string lastRequest() const { return lastRequest_; }

  static void write(int fd, const std::string& s) { (void)::send(fd, s.data(), s.size(), MSG_NOSIGNAL); }

 private:
  std::function<void(int)> respond_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::string lastRequest_;
  std::thread thread_;
};

std::unique_ptr<HttpEndpoint> endpoint(const std::string& url) {
  auto e = HttpEndpoint::make(url, HttpTls{}, 5s);
  EXPECT_TRUE(e.ok()) << e.error().message();
  return e.ok() ? std::move(*e) : nullptr;
}

TEST(HttpEndpoint, SendsTheRequestAndReadsTheWholeAnswer) {
  ScriptedServer server([](int fd) {
    ScriptedServer::write(fd,
                          "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Length: 5\r\n"
                          "Connection: close\r\n\r\nhello");
  });
  auto e = endpoint(server.url() + "/prefix");
  HttpRequest req;
  req.method = "POST";
  req.pathAndQuery = "api/v1/query?query=up";
  req.headers = {{"Accept", "application/json"}};
  req.body = "{}";
  req.contentType = "application/json";
  req.maxBodyBytes = 5;  // exactly the body: not too large
  auto r = e->send(req);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->status, 429);
  EXPECT_EQ(r->body, "hello");
  EXPECT_EQ(r->retryAfter, "3");
  EXPECT_EQ(server.lastRequest().rfind("POST /prefix/api/v1/query?query=up HTTP/1.1\r\n", 0), 0u)
      << server.lastRequest();
}

TEST(HttpEndpoint, ABodyPastTheLimitIsRefusedWithOrWithoutContentLength) {
  const std::string body(64 * 1024 + 1, 'x');
  ScriptedServer declared([&](int fd) {
    ScriptedServer::write(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                                  "\r\nConnection: close\r\n\r\n" + body);
  });
  ScriptedServer streamed([&](int fd) {
    // No length: the body ends when the connection closes, so only reading it tells its size.
    ScriptedServer::write(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    for (size_t sent = 0; sent < body.size(); sent += 4096) ScriptedServer::write(fd, body.substr(sent, 4096));
  });
  for (auto* server : {&declared, &streamed}) {
    auto e = endpoint(server->url());
    HttpRequest req;
    req.pathAndQuery = "/x";
    req.maxBodyBytes = 64 * 1024;
    auto r = e->send(req);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().reason(), http_reasons::kTooLarge);
    EXPECT_NE(r.error().message().find("larger than 65536 bytes"), std::string::npos) << r.error().message();
    req.maxBodyBytes = 0;  // no limit: the same answer is read whole
    auto whole = e->send(req);
    ASSERT_TRUE(whole.ok()) << whole.error().message();
    EXPECT_EQ(whole->body.size(), body.size());
  }
}

TEST(HttpEndpoint, AnAnswerThatTricklesPastTheDeadlineIsCancelledAtIt) {
  std::atomic<bool> done{false};
  ScriptedServer server([&](int fd) {
    // Headers at once, then a byte every 200 ms: the idle timeout (5 s) never fires, only the deadline can end it.
    ScriptedServer::write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    for (int i = 0; i < 100 && !done; ++i) {
      ScriptedServer::write(fd, "x");
      std::this_thread::sleep_for(200ms);
    }
  });
  auto e = endpoint(server.url());
  HttpRequest req;
  req.pathAndQuery = "/slow";
  auto start = std::chrono::steady_clock::now();
  req.deadline = SystemClock::instance().steadyNow() + 1s;
  auto r = e->send(req);
  auto took = std::chrono::steady_clock::now() - start;
  done = true;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kTimeout);
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 3s);
}

TEST(HttpEndpoint, TlsMaterialThatDoesNotParseIsRefusedUpFront) {
  HttpTls tls;
  tls.caPem = "not a certificate";
  auto e = HttpEndpoint::make("https://127.0.0.1:1", tls, 5s);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(e.error().message().find("certificate authority"), std::string::npos) << e.error().message();
}

// Sets (or unsets) an environment variable for one test and restores it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      setenv(name, value->c_str(), 1);
    else
      unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      setenv(name_, old_->c_str(), 1);
    else
      unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::string testdataPath(const std::string& name) { return std::string(KUBE_TESTDATA_DIR) + "/" + name; }

TEST(SystemTrust, TheBundleIsReadOnceAndConnectionsParseNothing) {
  ScopedEnv file("SSL_CERT_FILE", testdataPath("ca.crt"));
  ScopedEnv dir("SSL_CERT_DIR", std::string("/nonexistent"));
  EXPECT_EQ(sharedSystemAuthorities(), -1) << "shared before shareSystemTrust()";
  auto reason = shareSystemTrust();
  ASSERT_NE(std::getenv("SSL_CERT_FILE"), nullptr);
  EXPECT_STREQ(std::getenv("SSL_CERT_FILE"), "/dev/null");
  EXPECT_NE(reason.find(testdataPath("ca.crt")), std::string::npos) << reason;
  EXPECT_EQ(sharedSystemAuthorities(), 1) << "the bundle named when it was shared, not /dev/null";
  forgetSharedSystemTrust();
  EXPECT_EQ(sharedSystemAuthorities(), -1);
}

TEST(SystemTrust, AMissingBundleSharesAnEmptyStore) {
  ScopedEnv file("SSL_CERT_FILE", std::string("/nonexistent/bundle.pem"));
  ScopedEnv dir("SSL_CERT_DIR", std::string("/nonexistent"));
  auto reason = shareSystemTrust();
  EXPECT_STREQ(std::getenv("SSL_CERT_FILE"), "/dev/null") << reason;
  EXPECT_EQ(sharedSystemAuthorities(), 0);
  forgetSharedSystemTrust();
}

}  // namespace
}  // namespace poolguard::kube
