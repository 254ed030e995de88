#include "runtime/health_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>

#include "http_probe.h"
#include "runtime/metrics.h"
#include "runtime/workqueue.h"

namespace poolguard::runtime {
namespace {

WorkQueueOptions namedQueue(const std::string& name) {
  WorkQueueOptions o;
  o.name = name;
  return o;
}

TEST(HealthServer, ServesLivenessAndReadinessFromChecks) {
  HealthServer s;
  std::atomic<bool> synced{false};
  s.addReadinessCheck("informers-synced", [&] { return synced.load(); });
  ASSERT_TRUE(s.start("127.0.0.1", 0).ok());
  ASSERT_GT(s.port(), 0);

  auto [liveCode, liveBody] = httpGet(s.port(), "/healthz");
  EXPECT_EQ(liveCode, 200);
  EXPECT_EQ(liveBody, "ok\n");
  auto [notReady, notReadyBody] = httpGet(s.port(), "/readyz");
  EXPECT_EQ(notReady, 503);
  EXPECT_NE(notReadyBody.find("[-]informers-synced failed"), std::string::npos) << notReadyBody;
  synced = true;
  EXPECT_EQ(httpGet(s.port(), "/readyz?verbose").first, 200);
  EXPECT_EQ(httpGet(s.port(), "/nope").first, 404);
  s.stop();
  EXPECT_EQ(s.port(), 0);
}

TEST(HealthServer, ASilentClientDoesNotBlockOthersForever) {
  HealthServer s;
  ASSERT_TRUE(s.start("127.0.0.1", 0).ok());
  int idle = connectIdle(s.port());
  ASSERT_GE(idle, 0);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(httpGet(s.port(), "/healthz").first, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  close(idle);
}

// True while the server has not closed the connection: nothing to read yet, no end of stream.
bool stillOpen(int fd) {
  char c;
  ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

TEST(HealthServer, ProbesAreAnsweredWhileIdleClientsHoldConnections) {
  HealthServer s;
  ASSERT_TRUE(s.start("127.0.0.1", 0).ok());
  std::vector<int> idle;
  for (int i = 0; i < 10; ++i) {
    idle.push_back(connectIdle(s.port()));
    ASSERT_GE(idle.back(), 0);
  }
  // One sends half a request and stops.
  (void)send(idle[0], "GET /hea", 8, 0);
  // Each probe is answered within a second (a kubelet's default probe timeout), served beside the idle
  // connections, not after their timeouts.
  for (const char* path : {"/healthz", "/readyz", "/healthz", "/readyz"}) {
    const auto start = std::chrono::steady_clock::now();
    auto [code, body] = httpGet(s.port(), path, std::chrono::seconds(5));
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(code, 200) << path;
    EXPECT_EQ(body, "ok\n") << path;
    EXPECT_LT(took, std::chrono::seconds(1))
        << path << " took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
  }
  // No idle connection was given up on meanwhile.
  for (int fd : idle) EXPECT_TRUE(stillOpen(fd)) << "the probe waited for an idle connection to time out";
  for (int fd : idle) close(fd);
}

TEST(HealthServer, ClosesTheOldestBeyondTheConnectionCap) {
  HealthServer s;
  ASSERT_TRUE(s.start("127.0.0.1", 0).ok());
  std::vector<int> idle;
  for (int i = 0; i < 70; ++i) {
    idle.push_back(connectIdle(s.port()));
    ASSERT_GE(idle.back(), 0);
  }
  EXPECT_EQ(httpGet(s.port(), "/healthz").first, 200);
  EXPECT_FALSE(stillOpen(idle.front())) << "the oldest of 70 idle connections was closed";
  EXPECT_TRUE(stillOpen(idle.back()));
  for (int fd : idle) close(fd);
}

TEST(HealthServer, ReportsABindFailure) {
  HealthServer a, b;
  ASSERT_TRUE(a.start("127.0.0.1", 0).ok());
  auto s = b.start("127.0.0.1", a.port());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kUnavailable);
}

TEST(MetricsServer, ExposesTheRegistry) {
  // The registry is process-wide and the test may repeat: a fresh queue name keeps the expected values exact.
  static int run = 0;
  std::string name = "metrics-exposed-" + std::to_string(++run);
  WorkQueue q(namedQueue(name));
  q.add("k");
  MetricsServer m;
  ASSERT_TRUE(m.start("127.0.0.1:0").ok());
  ASSERT_GT(m.port(), 0);
  auto [code, body] = httpGet(m.port(), "/metrics");
  EXPECT_EQ(code, 200);
  EXPECT_NE(body.find("workqueue_depth{name=\"" + name + "\"} 1"), std::string::npos) << body;
  EXPECT_NE(body.find("workqueue_adds_total{name=\"" + name + "\"} 1"), std::string::npos);
}

}  // namespace
}  // namespace poolguard::runtime
