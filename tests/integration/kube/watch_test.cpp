// Watch streams: events in order, large objects, end of stream, cancellation, and 410 Gone after compaction.
#include <thread>

#include "helpers.h"

namespace poolguard::kube::testing {
namespace {

using poolguard::testing::createNamespace;
using poolguard::testing::run;

std::string resourceVersionOf(const json& obj) { return obj["metadata"]["resourceVersion"].get<std::string>(); }

TEST(Watch, SeesAddedModifiedDeletedInOrder) {
  auto client = adminClient();
  auto cms = resources::configMaps();
  std::string ns = createNamespace("kube-watch");
  auto start = client->list(cms, ns);
  ASSERT_TRUE(start.ok()) << start.error().message();

  WatchOptions opts;
  opts.resourceVersion = (*start)["metadata"]["resourceVersion"];
  opts.timeout = std::chrono::seconds(30);  // bounds the test should an event never come
  auto watch = client->watch(cms, ns, opts);
  ASSERT_TRUE(watch.ok()) << watch.error().message();

  auto created = client->create(cms, ns, configMap("watched", {{"v", "1"}}));
  ASSERT_TRUE(created.ok()) << created.error().message();
  auto patched = client->patch(cms, ns, "watched", PatchType::kMerge, {{"data", {{"v", "2"}}}});
  ASSERT_TRUE(patched.ok()) << patched.error().message();
  ASSERT_TRUE(client->remove(cms, ns, "watched").ok());

  std::vector<WatchEventType> types;
  std::vector<std::string> versions;
  while (types.size() < 3) {
    auto event = (*watch)->next();
    ASSERT_TRUE(event.ok()) << event.error().message();
    ASSERT_TRUE(event->has_value()) << "the stream ended after " << types.size() << " events";
    if ((*event)->type == WatchEventType::kBookmark) continue;
    // The controller manager may publish the new namespace's root CA ConfigMap meanwhile.
    if ((*event)->object["metadata"].value("name", "") == "kube-root-ca.crt") continue;
    EXPECT_EQ((*event)->object["metadata"]["name"], "watched");
    types.push_back((*event)->type);
    versions.push_back(resourceVersionOf((*event)->object));
  }
  EXPECT_EQ(types,
            (std::vector<WatchEventType>{WatchEventType::kAdded, WatchEventType::kModified, WatchEventType::kDeleted}));
  EXPECT_EQ(versions[0], resourceVersionOf(*created));
  EXPECT_EQ(versions[1], resourceVersionOf(*patched));
}

TEST(Watch, CarriesLargeObjectsWhole) {
  auto client = adminClient();
  auto cms = resources::configMaps();
  std::string ns = createNamespace("kube-watch-large");
  WatchOptions opts;
  opts.timeout = std::chrono::seconds(30);
  auto start = client->list(cms, ns);
  ASSERT_TRUE(start.ok());
  opts.resourceVersion = (*start)["metadata"]["resourceVersion"];
  auto watch = client->watch(cms, ns, opts);
  ASSERT_TRUE(watch.ok()) << watch.error().message();

  // ~900 KiB: many socket reads and body chunks for one line.
  std::string big;
  for (int i = 0; big.size() < 900 * 1024; ++i) big += "line " + std::to_string(i) + " of a large value\n";
  ASSERT_TRUE(client->create(cms, ns, configMap("big", {{"payload", big}})).ok());

  while (true) {
    auto event = (*watch)->next();
    ASSERT_TRUE(event.ok()) << event.error().message();
    ASSERT_TRUE(event->has_value());
    if ((*event)->type == WatchEventType::kBookmark) continue;
    // The controller manager may publish the namespace's root CA ConfigMap first.
    if ((*event)->object["metadata"].value("name", "") != "big") continue;
    EXPECT_EQ((*event)->type, WatchEventType::kAdded);
    EXPECT_EQ((*event)->object["data"]["payload"].get<std::string>(), big);
    break;
  }
}

TEST(Watch, EndsWhenTheServerTimesOut) {
  auto client = adminClient();
  std::string ns = createNamespace("kube-watch-end");
  WatchOptions opts;
  opts.timeout = std::chrono::seconds(2);
  auto watch = client->watch(resources::configMaps(), ns, opts);
  ASSERT_TRUE(watch.ok()) << watch.error().message();
  // Without a resourceVersion the current state comes first: the namespace's root CA ConfigMap may appear.
  for (int i = 0; i < 100; ++i) {
    auto event = (*watch)->next();
    ASSERT_TRUE(event.ok()) << event.error().message();
    if (!event->has_value()) return;  // a clean end of stream
  }
  FAIL() << "the watch did not end";
}

TEST(Watch, CancelUnblocksNextPromptly) {
  auto client = adminClient();
  std::string ns = createNamespace("kube-watch-cancel");
  auto start = client->list(resources::configMaps(), ns);
  ASSERT_TRUE(start.ok());
  WatchOptions opts;
  opts.resourceVersion = (*start)["metadata"]["resourceVersion"];
  opts.allowBookmarks = false;
  opts.timeout = std::chrono::seconds(120);
  // Nothing matches: a new namespace gets its kube-root-ca.crt ConfigMap from the controller manager at any time.
  opts.labelSelector = "poolguard.dev/test=matches-nothing";
  auto watch = client->watch(resources::configMaps(), ns, opts);
  ASSERT_TRUE(watch.ok()) << watch.error().message();
  WatchStream* stream = watch->get();
  std::thread canceller([stream] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stream->cancel();
  });
  auto began = std::chrono::steady_clock::now();
  auto event = stream->next();
  auto waited = std::chrono::steady_clock::now() - began;
  canceller.join();
  ASSERT_FALSE(event.ok()) << "got an event from a quiet namespace";
  EXPECT_EQ(event.error().code(), ErrorCode::kCancelled) << event.error().message();
  // Far below the 120 s the server would have kept the watch open.
  EXPECT_LT(waited, std::chrono::seconds(10));
  auto after = stream->next();
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.error().code(), ErrorCode::kCancelled);
}

// Compacts etcd at its current revision through its HTTP gateway, so every older resourceVersion is gone.
void compactEtcd() {
  std::string etcd = clusterEnv()["ETCD_ENDPOINT"];
  ASSERT_FALSE(etcd.empty()) << "ETCD_ENDPOINT missing from " << cluster().dir << "/env";
  auto range = run({"curl", "-sf", "-X", "POST", etcd + "/v3/kv/range", "-d", R"({"key":"AA=="})"});
  ASSERT_EQ(range.exitCode, 0) << range.err;
  std::string revision = json::parse(range.out)["header"]["revision"];
  auto compact = run({"curl", "-sf", "-X", "POST", etcd + "/v3/kv/compaction", "-d",
                      json{{"revision", revision}, {"physical", true}}.dump()});
  ASSERT_EQ(compact.exitCode, 0) << compact.err << compact.out;
}

json event(const std::string& ns, const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Event"},
          {"metadata", {{"name", name}}},
          {"involvedObject", {{"kind", "ConfigMap"}, {"namespace", ns}, {"name", "x"}}},
          {"reason", "Test"},
          {"message", "for compaction"}};
}

// Events are not served from the API server's watch cache (kube-apiserver disables it for them), so their
// watches and exact lists read etcd and see its compaction; other resources would be answered from the cache.
TEST(Watch, TooOldResourceVersionIsGone) {
  auto client = adminClient();
  auto events = resources::events();
  std::string ns = createNamespace("kube-gone");
  auto first = client->create(events, ns, event(ns, "first"));
  ASSERT_TRUE(first.ok()) << first.error().message();
  std::string oldVersion = resourceVersionOf(*first);
  // etcd keeps the compaction revision itself, and a watch from X starts at X+1: two more writes put X+1 below it.
  ASSERT_TRUE(client->create(events, ns, event(ns, "second")).ok());
  ASSERT_TRUE(client->create(events, ns, event(ns, "third")).ok());
  compactEtcd();
  if (HasFatalFailure()) return;

  WatchOptions opts;
  opts.resourceVersion = oldVersion;
  opts.timeout = std::chrono::seconds(30);
  // Fields chosen while parsing keep an ERROR event's Status (its code says relist).
  opts.fields = std::make_shared<const FieldFilter>(
      FieldFilter::watchEventOf(FieldFilter::only().keep("metadata", FieldFilter::only().keep("name"))));
  auto watch = client->watch(events, ns, opts);
  Error gone = [&] {
    if (!watch.ok()) return watch.error();  // an HTTP 410 is as good as an ERROR event
    while (true) {
      auto e = (*watch)->next();
      if (!e.ok()) return e.error();
      if (!e->has_value()) return Error(ErrorCode::kInternal, "stream ended without an error");
    }
  }();
  EXPECT_EQ(gone.code(), ErrorCode::kGone) << gone.message();
  EXPECT_EQ(gone.httpStatus(), 410);
  EXPECT_EQ(gone.reason(), "Expired");

  ListOptions exact;
  exact.resourceVersion = oldVersion;
  exact.resourceVersionMatch = "Exact";
  auto list = client->list(events, ns, exact);
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().code(), ErrorCode::kGone) << list.error().message();
  EXPECT_EQ(list.error().httpStatus(), 410);
}

}  // namespace
}  // namespace poolguard::kube::testing
