#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "kube/client.h"
#include "kube/fence.h"
#include "kube/rest_client.h"

namespace poolguard::kube {
namespace {

// Serves a list in pages of `pageSize` and records the options of each call.
class PagingClient final : public Client {
 public:
  PagingClient(int total, int pageSize) : total_(total), pageSize_(pageSize) {}
  std::vector<ListOptions> calls;
  std::optional<Error> failOnPage;

  Result<json> list(const Resource&, const std::string&, const ListOptions& opts) override {
    calls.push_back(opts);
    if (failOnPage && calls.size() == 2) return *failOnPage;
    int start = opts.continueToken.empty() ? 0 : std::stoi(opts.continueToken);
    json items = json::array();
    for (int i = start; i < std::min(total_, start + pageSize_); ++i) items.push_back({{"n", i}});
    json meta{{"resourceVersion", "rv-" + std::to_string(calls.size())}};
    if (start + pageSize_ < total_) meta["continue"] = std::to_string(start + pageSize_);
    return json{{"items", items}, {"metadata", meta}};
  }

  Result<json> get(const Resource&, const std::string&, const std::string&, const std::string&) override {
    return unused();
  }
  Result<json> create(const Resource&, const std::string&, const json&, const WriteOptions&) override {
    return unused();
  }
  Result<json> update(const Resource&, const std::string&, const json&, const WriteOptions&) override {
    return unused();
  }
  Result<json> patch(const Resource&, const std::string&, const std::string&, PatchType, const json&,
                     const WriteOptions&) override {
    return unused();
  }
  Result<json> apply(const Resource&, const std::string&, const std::string&, const json&,
                     const WriteOptions&) override {
    return unused();
  }
  Status remove(const Resource&, const std::string&, const std::string&, const json&) override { return unused(); }
  Result<std::unique_ptr<WatchStream>> watch(const Resource&, const std::string&, const WatchOptions&) override {
    return unused();
  }

 private:
  static Error unused() { return Error(ErrorCode::kInternal, "not used"); }
  int total_;
  int pageSize_;
};

TEST(ListAll, FollowsContinueTokens) {
  PagingClient client(7, 2);
  ListOptions opts;
  opts.limit = 2;
  opts.labelSelector = "app=x";
  opts.resourceVersion = "0";
  auto all = listAll(client, resources::configMaps(), "ns", opts);
  ASSERT_TRUE(all.ok()) << all.error().message();
  ASSERT_EQ(all->items.size(), 7u);
  for (int i = 0; i < 7; ++i) EXPECT_EQ(all->items[static_cast<size_t>(i)]["n"], i);
  EXPECT_EQ(all->resourceVersion, "rv-4");
  ASSERT_EQ(client.calls.size(), 4u);
  EXPECT_EQ(client.calls[0].resourceVersion, "0");
  for (size_t i = 1; i < client.calls.size(); ++i) {
    EXPECT_EQ(client.calls[i].labelSelector, "app=x");
    EXPECT_EQ(client.calls[i].limit, 2);
    EXPECT_TRUE(client.calls[i].resourceVersion.empty()) << "continue pages must not carry a resourceVersion";
    EXPECT_FALSE(client.calls[i].continueToken.empty());
  }
}

TEST(ListAll, PassesErrorsThrough) {
  PagingClient client(7, 2);
  client.failOnPage = Error(ErrorCode::kGone, "continue token expired");
  auto all = listAll(client, resources::configMaps(), "ns", {});
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.error().code(), ErrorCode::kGone);
}

TEST(Resource, NamesItself) {
  EXPECT_EQ(resources::deployments().key(), "deployments.apps");
  EXPECT_EQ(resources::deployments().apiVersion(), "apps/v1");
  EXPECT_EQ(resources::configMaps().key(), "configmaps");
  EXPECT_EQ(resources::configMaps().apiVersion(), "v1");
  EXPECT_EQ(resources::leases().apiVersion(), "coordination.k8s.io/v1");
  EXPECT_FALSE(resources::namespaces().namespaced);
  EXPECT_EQ(resources::connectionPoolPolicies().apiVersion(), "poolguard.dev/v1alpha1");
}

TEST(JitteredWatchTimeout, StaysInRange) {
  bool varied = false;
  auto first = jitteredWatchTimeout();
  for (int i = 0; i < 200; ++i) {
    auto t = jitteredWatchTimeout();
    EXPECT_GE(t, std::chrono::minutes(5));
    EXPECT_LT(t, std::chrono::minutes(10));
    varied |= t != first;
  }
  EXPECT_TRUE(varied);
}

std::string testdata(const std::string& name) {
  std::ifstream in(std::string(KUBE_TESTDATA_DIR) + "/" + name);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(MakeRestClient, AcceptsMatchingTlsMaterial) {
  Config c;
  c.server = "https://127.0.0.1:1";
  c.caPem = testdata("ca.crt");
  c.clientCertPem = testdata("client.crt");
  c.clientKeyPem = testdata("client.key");
  auto client = makeRestClient(c);
  ASSERT_TRUE(client.ok()) << client.error().message();
}

TEST(MakeRestClient, RejectsKeyOfAnotherCertificate) {
  Config c;
  c.server = "https://127.0.0.1:1";
  c.clientCertPem = testdata("client.crt");
  c.clientKeyPem = testdata("other.key");
  auto client = makeRestClient(c);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(client.error().message().find("does not belong"), std::string::npos) << client.error().message();
}

TEST(MakeRestClient, RejectsGarbageCa) {
  Config c;
  c.server = "https://127.0.0.1:1";
  c.caPem = "not a certificate";
  auto client = makeRestClient(c);
  ASSERT_FALSE(client.ok());
  EXPECT_NE(client.error().message().find("certificate authority"), std::string::npos);
}

TEST(MakeRestClient, NeedsAServer) { EXPECT_FALSE(makeRestClient(Config{}).ok()); }

TEST(RestClient, TransportFailureOfIdempotentRequestIsRetriedWithBackoff) {
  Config c;
  c.server = "http://127.0.0.1:1";  // nothing listens on port 1
  std::vector<std::chrono::nanoseconds> sleeps;
  RestClientOptions o;
  o.maxAttempts = 3;
  o.qps = 0;
  o.sleep = [&](std::chrono::nanoseconds d) { sleeps.push_back(d); };
  auto client = makeRestClient(c, o);
  ASSERT_TRUE(client.ok()) << client.error().message();
  auto got = (*client)->get(resources::configMaps(), "ns", "x");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(got.error().message().find("GET /api/v1/namespaces/ns/configmaps/x"), std::string::npos)
      << got.error().message();
  ASSERT_EQ(sleeps.size(), 2u) << "three attempts, two pauses";
  EXPECT_GE(sleeps[0], std::chrono::milliseconds(100));
  EXPECT_LE(sleeps[0], std::chrono::milliseconds(200));
  EXPECT_GE(sleeps[1], std::chrono::milliseconds(200));
  EXPECT_LE(sleeps[1], std::chrono::milliseconds(400));
}

struct RecordingObserver final : RequestObserver {
  struct Call {
    std::string verb, resource;
    int code;
  };
  std::vector<Call> calls;
  void observe(std::string_view verb, std::string_view resource, int code, double seconds) override {
    EXPECT_GE(seconds, 0.0);
    calls.push_back({std::string(verb), std::string(resource), code});
  }
};

TEST(RestClient, ObserverSeesEveryAttempt) {
  Config c;
  c.server = "http://127.0.0.1:1";
  auto observer = std::make_shared<RecordingObserver>();
  RestClientOptions o;
  o.maxAttempts = 2;
  o.qps = 0;
  o.sleep = [](std::chrono::nanoseconds) {};
  o.observer = observer;
  auto client = makeRestClient(c, o);
  ASSERT_TRUE(client.ok());
  (void)(*client)->list(resources::deployments(), "ns");
  (void)(*client)->create(resources::leases(), "ns", json{{"metadata", {{"name", "l"}}}});
  ASSERT_EQ(observer->calls.size(), 3u);
  EXPECT_EQ(observer->calls[0].verb, "LIST");
  EXPECT_EQ(observer->calls[0].resource, "deployments.apps");
  EXPECT_EQ(observer->calls[0].code, 0) << "no response: code 0";
  EXPECT_EQ(observer->calls[1].verb, "LIST");
  EXPECT_EQ(observer->calls[2].verb, "CREATE");
  EXPECT_EQ(observer->calls[2].resource, "leases.coordination.k8s.io");
}

TEST(RestClient, CreateIsNotRetried) {
  Config c;
  c.server = "http://127.0.0.1:1";
  int sleeps = 0;
  RestClientOptions o;
  o.qps = 0;
  o.sleep = [&](std::chrono::nanoseconds) { ++sleeps; };
  auto client = makeRestClient(c, o);
  ASSERT_TRUE(client.ok());
  auto created = (*client)->create(resources::configMaps(), "ns", json{{"metadata", {{"name", "x"}}}});
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(sleeps, 0);
}

// A client allowing one request a second (burst 1) on `clock`, recording its sleeps instead of sleeping.
std::unique_ptr<RestClient> oncePerSecond(const ManualClock& clock, std::vector<std::chrono::nanoseconds>& sleeps) {
  Config c;
  c.server = "http://127.0.0.1:1";
  RestClientOptions o;
  o.qps = 1;
  o.burst = 1;
  o.maxAttempts = 1;
  o.clock = &clock;
  o.sleep = [&sleeps](std::chrono::nanoseconds d) { sleeps.push_back(d); };
  auto client = makeRestClient(c, o);
  EXPECT_TRUE(client.ok());
  return client.ok() ? std::move(*client) : nullptr;
}

TEST(RestClient, RateLimiterWaitsAreSlept) {
  ManualClock clock;
  std::vector<std::chrono::nanoseconds> sleeps;
  auto client = oncePerSecond(clock, sleeps);
  ASSERT_TRUE(client);
  (void)client->get(resources::configMaps(), "ns", "a");
  (void)client->get(resources::configMaps(), "ns", "b");
  ASSERT_EQ(sleeps.size(), 1u);
  EXPECT_EQ(sleeps[0], std::chrono::seconds(1));
}

TEST(RestClient, TheRateLimiterIsNotWaitedOnPastTheDeadline) {
  ManualClock clock;
  std::vector<std::chrono::nanoseconds> sleeps;
  auto client = oncePerSecond(clock, sleeps);
  ASSERT_TRUE(client);
  (void)client->get(resources::configMaps(), "ns", "a");  // takes the only token
  RequestDeadline deadline(clock.steadyNow() + std::chrono::milliseconds(500));
  auto got = client->get(resources::configMaps(), "ns", "b");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), ErrorCode::kTimeout);
  EXPECT_NE(got.error().message().find("rate limit"), std::string::npos) << got.error().message();
  EXPECT_TRUE(sleeps.empty()) << "a 1 s wait cannot end by a deadline 500 ms away";
}

}  // namespace
}  // namespace poolguard::kube
