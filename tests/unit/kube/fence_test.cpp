// RequestDeadline, WriteFence and FencedClient; and the REST client keeping a request deadline against a server
// that accepts connections and never answers.
#include "kube/fence.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "../../support/silent_server.h"
#include "kube/rest_client.h"

namespace poolguard::kube {
namespace {

using namespace std::chrono_literals;

// Records each call and the request deadline of the calling thread at that moment.
class RecordingClient final : public Client {
 public:
  struct Call {
    std::string verb;
    std::optional<Clock::steady_point> deadline;
  };
  std::vector<Call> calls;

  Result<json> get(const Resource&, const std::string&, const std::string&, const std::string&) override {
    return record("get");
  }
  Result<json> list(const Resource&, const std::string&, const ListOptions&) override { return record("list"); }
  Result<json> create(const Resource&, const std::string&, const json&, const WriteOptions&) override {
    return record("create");
  }
  Result<json> update(const Resource&, const std::string&, const json&, const WriteOptions&) override {
    return record("update");
  }
  Result<json> patch(const Resource&, const std::string&, const std::string&, PatchType, const json&,
                     const WriteOptions&) override {
    return record("patch");
  }
  Result<json> apply(const Resource&, const std::string&, const std::string&, const json&,
                     const WriteOptions&) override {
    return record("apply");
  }
  Status remove(const Resource&, const std::string&, const std::string&, const json&) override {
    (void)record("remove");
    return okStatus();
  }
  Result<std::unique_ptr<WatchStream>> watch(const Resource&, const std::string&, const WatchOptions&) override {
    (void)record("watch");
    return Error(ErrorCode::kUnavailable, "no watch here");
  }

 private:
  Result<json> record(const char* verb) {
    calls.push_back({verb, RequestDeadline::current()});
    return json::object();
  }
};

const json kObject = {{"metadata", {{"name", "x"}}}};

WriteOptions applyOptions() {
  WriteOptions o;
  o.fieldManager = "poolguard";
  return o;
}

TEST(RequestDeadline, NestsAndTheEarlierWins) {
  auto now = std::chrono::steady_clock::now();
  EXPECT_FALSE(RequestDeadline::current());
  {
    RequestDeadline outer(now + 10s);
    EXPECT_EQ(RequestDeadline::current(), now + 10s);
    {
      RequestDeadline later(now + 20s);
      EXPECT_EQ(RequestDeadline::current(), now + 10s) << "a later deadline must not extend an earlier one";
      RequestDeadline earlier(now + 5s);
      EXPECT_EQ(RequestDeadline::current(), now + 5s);
    }
    EXPECT_EQ(RequestDeadline::current(), now + 10s);
    std::optional<Clock::steady_point> onOtherThread = now;
    std::thread([&] { onOtherThread = RequestDeadline::current(); }).join();
    EXPECT_FALSE(onOtherThread) << "a deadline belongs to its thread";
  }
  EXPECT_FALSE(RequestDeadline::current());
}

TEST(FencedClient, WritesPassOnlyWhileTheFenceIsOpenEachBoundedByItsEnd) {
  ManualClock clock;
  RecordingClient inner;
  auto fence = std::make_shared<WriteFence>(clock);
  FencedClient client(inner, fence);
  const auto configMaps = resources::configMaps();

  // Closed at first: nothing is written.
  auto refused = client.apply(configMaps, "ns", "x", kObject, applyOptions());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(refused.error().message().find("not the leader"), std::string::npos) << refused.error().message();
  EXPECT_TRUE(inner.calls.empty());

  const auto until = clock.steadyNow() + 10s;
  fence->openUntil(until);
  ASSERT_TRUE(client.apply(configMaps, "ns", "x", kObject, applyOptions()).ok());
  ASSERT_TRUE(client.create(configMaps, "ns", kObject).ok());
  ASSERT_TRUE(client.update(configMaps, "ns", kObject).ok());
  ASSERT_TRUE(client.patch(configMaps, "ns", "x", PatchType::kMerge, json::object()).ok());
  ASSERT_TRUE(client.remove(configMaps, "ns", "x").ok());
  ASSERT_EQ(inner.calls.size(), 5u);
  for (const auto& c : inner.calls) EXPECT_EQ(c.deadline, until) << c.verb << " must end by the fence";

  // Reads are never fenced nor bounded.
  inner.calls.clear();
  fence->close();
  EXPECT_TRUE(client.get(configMaps, "ns", "x").ok());
  EXPECT_TRUE(client.list(configMaps, "ns").ok());
  ASSERT_EQ(inner.calls.size(), 2u);
  EXPECT_FALSE(inner.calls[0].deadline);
  EXPECT_FALSE(client.remove(configMaps, "ns", "x").ok());
  EXPECT_FALSE(client.patch(configMaps, "ns", "x", PatchType::kMerge, json::object()).ok());
  EXPECT_EQ(inner.calls.size(), 2u);
}

TEST(FencedClient, TheFenceClosesByItselfWhenItsTimePasses) {
  ManualClock clock;
  RecordingClient inner;
  auto fence = std::make_shared<WriteFence>(clock);
  FencedClient client(inner, fence);
  fence->openUntil(clock.steadyNow() + 5s);
  clock.advance(4999ms);
  EXPECT_TRUE(client.update(resources::leases(), "ns", kObject).ok());
  clock.advance(1ms);
  EXPECT_FALSE(fence->openWindow());
  EXPECT_FALSE(client.update(resources::leases(), "ns", kObject).ok()) << "nobody renewed: the window has ended";
  EXPECT_EQ(inner.calls.size(), 1u);
}

TEST(RestClient, ARequestDeadlineCancelsARequestTheServerNeverAnswers) {
  poolguard::testing::SilentServer server;
  Config c;
  c.server = "http://127.0.0.1:" + std::to_string(server.port());
  RestClientOptions o;
  o.qps = 0;
  o.requestTimeout = std::chrono::seconds(30);
  int retries = 0;
  o.sleep = [&](std::chrono::nanoseconds) { ++retries; };
  auto client = makeRestClient(c, o);
  ASSERT_TRUE(client.ok()) << client.error().message();

  auto start = std::chrono::steady_clock::now();
  Result<json> got = json();
  {
    RequestDeadline deadline(start + 300ms);
    json lease = {{"metadata", {{"name", "l"}, {"resourceVersion", "7"}}}};
    got = (*client)->update(resources::leases(), "ns", lease);  // idempotent: retried, but not past the deadline
  }
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), ErrorCode::kTimeout) << got.error().message();
  EXPECT_NE(got.error().message().find("request deadline"), std::string::npos) << got.error().message();
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 3s) << "the 30 s idle timeout must not decide";
  EXPECT_EQ(retries, 0) << "no retry after the deadline";

  // Past the deadline nothing is sent at all.
  RequestDeadline passed(std::chrono::steady_clock::now() - 1ms);
  auto late = (*client)->get(resources::leases(), "ns", "l");
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code(), ErrorCode::kTimeout);
  EXPECT_NE(late.error().message().find("not sent"), std::string::npos) << late.error().message();
}

}  // namespace
}  // namespace poolguard::kube
