#include "runtime/informer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "fake_client.h"
#include "runtime/workqueue.h"

namespace poolguard::runtime {
namespace {

WorkQueueOptions namedQueue(const std::string& name) {
  WorkQueueOptions o;
  o.name = name;
  return o;
}

using kube::WatchEventType;
using testing::FakeClient;
using testing::listPage;
using testing::object;
using testing::watchEvent;
using testing::WatchScript;

ObjectPtr rec(json j) { return decodeJsonObject(std::move(j)); }
const json& valueOf(const ObjectPtr& p) { return recordAs<JsonObject>(p)->value; }

// Collects handler calls; wait() blocks (bounded) until `n` have arrived.
class Recorder {
 public:
  EventHandlers handlers() {
    EventHandlers h;
    h.onAdd = [this](const ObjectPtr& o) { push("add " + objectKey(*o)); };
    h.onUpdate = [this](const ObjectPtr& a, const ObjectPtr& b) {
      push("update " + objectKey(*b) + " " + a->meta.resourceVersion + "->" + b->meta.resourceVersion);
    };
    h.onDelete = [this](const ObjectPtr& o) { push("delete " + objectKey(*o)); };
    return h;
  }
  std::vector<std::string> wait(size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(5), [&] { return seen_.size() >= n; });
    return seen_;
  }

 private:
  void push(std::string s) {
    std::lock_guard lock(mu_);
    seen_.push_back(std::move(s));
    cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> seen_;
};

InformerOptions options(std::vector<std::string> namespaces = {}) {
  InformerOptions o;
  o.resource = {"", "v1", "configmaps", "ConfigMap", true};
  o.namespaces = std::move(namespaces);
  return o;
}

TEST(Informer, SyncsThenFollowsTheWatch) {
  FakeClient client;
  client.pushList(listPage({object("a", "one", "5")}, "10"));
  WatchScript script;
  script.steps.push_back(std::optional(watchEvent(WatchEventType::kAdded, object("a", "two", "11"))));
  script.steps.push_back(std::optional(watchEvent(WatchEventType::kModified, object("a", "one", "12"))));
  script.steps.push_back(std::optional(watchEvent(WatchEventType::kDeleted, object("a", "two", "13"))));
  client.pushWatch(script);

  Informer inf(client, options());
  Recorder rec;
  inf.addHandlers(rec.handlers());
  EXPECT_FALSE(inf.hasSynced());
  std::stop_source stop;
  inf.start(stop.get_token());
  ASSERT_TRUE(inf.waitForSync(stop.get_token(), std::chrono::seconds(5)));
  auto seen = rec.wait(4);
  EXPECT_EQ(seen, (std::vector<std::string>{"add a/one", "add a/two", "update a/one 5->12", "delete a/two"}));
  EXPECT_EQ(inf.store().size(), 1u);
  ASSERT_TRUE(inf.store().get("a/one"));
  EXPECT_EQ(inf.store().get("a/one")->meta.resourceVersion, "12");
  EXPECT_EQ(valueOf(inf.store().get("a/one"))["kind"], "ConfigMap");
  stop.request_stop();
  inf.stop();
}

TEST(Informer, RelistAfterGoneDeletesObjectsThatVanishedMeanwhile) {
  FakeClient client;
  client.pushList(listPage({object("a", "stays", "5"), object("a", "vanishes", "6")}, "10"));
  WatchScript expired;
  expired.steps.push_back(Error(ErrorCode::kGone, "too old").withHttpStatus(410));
  client.pushWatch(expired);
  client.pushList(listPage({object("a", "stays", "5"), object("a", "arrived", "20")}, "21"));
  client.pushWatch(WatchScript{});

  Informer inf(client, options());
  Recorder rec;
  inf.addHandlers(rec.handlers());
  inf.start(std::stop_token{});
  auto seen = rec.wait(4);
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[2], "delete a/vanishes");
  EXPECT_EQ(seen[3], "add a/arrived");
  EXPECT_FALSE(inf.store().get("a/vanishes"));
  inf.stop();
}

TEST(Informer, OneWatchPerNamespaceIntoOneStore) {
  FakeClient client;
  // Lists are served in call order; the two watch threads race, so give both namespaces identical pages.
  client.pushList(listPage({}, "10"));
  client.pushList(listPage({}, "10"));
  client.pushWatch(WatchScript{});
  client.pushWatch(WatchScript{});
  Informer inf(client, options({"a", "b"}));
  inf.start(std::stop_token{});
  ASSERT_TRUE(inf.waitForSync(std::stop_token{}, std::chrono::seconds(5)));
  auto calls = client.calls();
  EXPECT_NE(std::find(calls.begin(), calls.end(), "list configmaps/a"), calls.end());
  EXPECT_NE(std::find(calls.begin(), calls.end(), "list configmaps/b"), calls.end());
  inf.stop();
}

TEST(Informer, EnqueueHandlersAddKeysOnly) {
  WorkQueue q(namedQueue("informer-enqueue-test"));
  auto h = enqueueKeys(q);
  auto o = rec(object("a", "x", "1"));
  h.onAdd(o);
  h.onUpdate(o, o);
  EXPECT_EQ(q.len(), 1u);
  auto mapped = enqueueKeys(q, [](const kube::Object&) { return std::vector<std::string>{"a/owner1", "a/owner2"}; });
  mapped.onDelete(o);
  EXPECT_EQ(q.len(), 3u);
}

TEST(Informer, AnUpdateTheFilterRejectsEnqueuesNothing) {
  WorkQueue q(namedQueue("informer-filter-test"));
  // A kind's filter, as a record would define it: the status, the generation and the resourceVersion do not count.
  ChangeFilter changed = [](const kube::Object& a, const kube::Object& b) {
    auto decided = [](const kube::Object& o) {
      json v = recordAs<JsonObject>(o).value;
      v.erase("status");
      v["metadata"].erase("generation");
      v["metadata"].erase("resourceVersion");
      return v;
    };
    return decided(a) != decided(b);
  };
  auto h = enqueueKeys(q, {}, changed);
  json before = object("a", "x", "1",
                       {{"metadata", {{"generation", 1}, {"labels", {{"app", "web"}}}}},
                        {"spec", {{"replicas", 2}}},
                        {"status", {{"readyReplicas", 1}}}});
  json statusOnly = before;
  statusOnly["metadata"]["resourceVersion"] = "2";
  statusOnly["metadata"]["generation"] = 2;
  statusOnly["status"]["readyReplicas"] = 2;
  h.onUpdate(rec(before), rec(statusOnly));
  EXPECT_EQ(q.len(), 0u) << "a status-only update must enqueue nothing";
  json relabelled = statusOnly;
  relabelled["metadata"]["labels"]["app"] = "api";
  h.onUpdate(rec(statusOnly), rec(relabelled));
  EXPECT_EQ(q.len(), 1u);
  // The filter only gates updates: adds and deletes always enqueue.
  WorkQueue q2(namedQueue("informer-filter-test-2"));
  auto h2 = enqueueKeys(q2, {}, changed);
  h2.onAdd(rec(before));
  h2.onDelete(rec(object("a", "y", "1")));
  EXPECT_EQ(q2.len(), 2u);
}

// A record of the caller's own type: what the Decoder makes of each listed or watched object is what the Store
// holds and what handlers receive.
struct Sized : kube::Object {
  std::string kind;
  size_t dataKeys = 0;
};

TEST(Informer, StoresWhatTheDecoderMakesOfEachObject) {
  FakeClient client;
  client.pushList(listPage({object("a", "one", "5", {{"data", {{"k", "v"}}}})}, "10"));
  WatchScript script;
  script.steps.push_back(std::optional(
      watchEvent(WatchEventType::kAdded, object("a", "two", "11", {{"data", {{"k", "v"}, {"l", "w"}}}}))));
  client.pushWatch(script);
  auto opts = options();
  std::atomic<int> decoded{0};
  opts.decode = [&decoded](json&& o) -> ObjectPtr {
    ++decoded;
    auto r = std::make_shared<Sized>();
    r->meta = metaOf(o);
    r->kind = o.value("kind", "");
    r->dataKeys = o.contains("data") ? o["data"].size() : 0;
    return r;
  };
  Informer inf(client, opts);
  Recorder seen;
  inf.addHandlers(seen.handlers());
  std::stop_source stop;
  inf.start(stop.get_token());
  ASSERT_TRUE(inf.waitForSync(stop.get_token(), std::chrono::seconds(5)));
  EXPECT_EQ(seen.wait(2), (std::vector<std::string>{"add a/one", "add a/two"}));
  ASSERT_EQ(decoded.load(), 2) << "the informer's Decoder must reach its watchers";
  auto one = inf.store().get("a/one");
  auto two = inf.store().get("a/two");
  ASSERT_TRUE(one && two);
  EXPECT_EQ(recordAs<Sized>(one)->kind, "ConfigMap") << "the decoder sees the kind filled in";
  EXPECT_EQ(recordAs<Sized>(one)->dataKeys, 1u);
  EXPECT_EQ(recordAs<Sized>(two)->dataKeys, 2u);
  EXPECT_EQ(two->meta.resourceVersion, "11");
  stop.request_stop();
  inf.stop();
}

TEST(Informer, ListsAndWatchesParseOnlyItsFields) {
  FakeClient client;
  client.pushList(listPage({object("a", "one", "5")}, "10"));
  client.pushWatch(WatchScript{});
  auto opts = options();
  opts.fields = std::make_shared<const kube::FieldFilter>(kube::FieldFilter::only().keep("metadata"));
  Informer inf(client, opts);
  std::stop_source stop;
  inf.start(stop.get_token());
  ASSERT_TRUE(inf.waitForSync(stop.get_token(), std::chrono::seconds(5)));
  for (int i = 0; i < 100 && client.watchCalls().empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_FALSE(client.listCalls().empty());
  ASSERT_FALSE(client.watchCalls().empty());
  ASSERT_TRUE(client.listCalls()[0].fields);
  ASSERT_TRUE(client.watchCalls()[0].fields);
  // A page keeps its items and its resourceVersion; an event keeps its type and object.
  json page = client.listCalls()[0].fields->parse(
      R"({"metadata":{"resourceVersion":"3"},"items":[{"metadata":{"name":"x"},"data":{}}]})");
  EXPECT_EQ(page, json::parse(R"({"metadata":{"resourceVersion":"3"},"items":[{"metadata":{"name":"x"}}]})"));
  json event = client.watchCalls()[0].fields->parse(R"({"type":"ADDED","object":{"metadata":{"name":"x"},"data":{}}})");
  EXPECT_EQ(event, json::parse(R"({"type":"ADDED","object":{"metadata":{"name":"x"}}})"));
  stop.request_stop();
  inf.stop();
}

}  // namespace
}  // namespace poolguard::runtime
