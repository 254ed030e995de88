#include "runtime/watcher.h"

#include <gtest/gtest.h>

#include <future>
#include <set>
#include <thread>

#include "fake_client.h"

namespace poolguard::runtime {
namespace {

using kube::WatchEventType;
using testing::FakeClient;
using testing::listPage;
using testing::object;
using testing::watchEvent;
using testing::WatchScript;
namespace ws = watcher_state;

const json& valueOf(const ObjectPtr& p) { return recordAs<JsonObject>(p)->value; }

kube::Resource configMaps() { return {"", "v1", "configmaps", "ConfigMap", true}; }

WatcherOptions options() {
  WatcherOptions o;
  o.resource = configMaps();
  o.ns = "team";
  o.labelSelector = "app=db";
  return o;
}

// Steps until the watcher reaches Watching; returns every event seen on the way.
std::vector<WatcherEvent> stepUntilWatching(Watcher& w) {
  std::vector<WatcherEvent> events;
  for (int i = 0; i < 10 && !std::holds_alternative<ws::Watching>(w.state()); ++i) {
    auto r = w.step();
    EXPECT_EQ(r.delay.count(), 0) << (r.error ? r.error->message() : "");
    for (auto& e : r.events) events.push_back(std::move(e));
  }
  EXPECT_TRUE(std::holds_alternative<ws::Watching>(w.state()));
  return events;
}

TEST(Watcher, ListsAllPagesThenWatchesFromTheListResourceVersion) {
  FakeClient client;
  client.pushList(listPage({object("team", "a", "5"), object("team", "b", "6")}, "", "page2"));
  client.pushList(listPage({object("team", "c", "7")}, "42"));
  Watcher w(client, options(), 1);

  auto first = w.step();
  EXPECT_TRUE(first.events.empty());
  ASSERT_TRUE(std::holds_alternative<ws::Listing>(w.state()));
  EXPECT_EQ(std::get<ws::Listing>(w.state()).continueToken, "page2");

  auto second = w.step();
  ASSERT_EQ(second.events.size(), 1u);
  EXPECT_EQ(second.events[0].type, WatcherEvent::Type::kRestarted);
  ASSERT_EQ(second.events[0].objects.size(), 3u);
  EXPECT_EQ(second.events[0].objects[0]->meta.name, "a");
  EXPECT_EQ(second.events[0].objects[2]->meta.name, "c");
  EXPECT_EQ(valueOf(second.events[0].objects[2])["kind"], "ConfigMap");
  EXPECT_EQ(valueOf(second.events[0].objects[2])["apiVersion"], "v1");
  ASSERT_TRUE(std::holds_alternative<ws::Listed>(w.state()));
  EXPECT_EQ(std::get<ws::Listed>(w.state()).resourceVersion, "42");

  auto lists = client.listCalls();
  ASSERT_EQ(lists.size(), 2u);
  EXPECT_EQ(lists[0].limit, 500);
  EXPECT_EQ(lists[0].continueToken, "");
  EXPECT_EQ(lists[0].labelSelector, "app=db");
  EXPECT_EQ(lists[1].continueToken, "page2");

  client.pushWatch(WatchScript{});
  auto third = w.step();
  EXPECT_TRUE(third.events.empty());
  ASSERT_TRUE(std::holds_alternative<ws::Watching>(w.state()));
  auto watches = client.watchCalls();
  ASSERT_EQ(watches.size(), 1u);
  EXPECT_EQ(watches[0].resourceVersion, "42");
  EXPECT_TRUE(watches[0].allowBookmarks);
  EXPECT_EQ(watches[0].labelSelector, "app=db");
  EXPECT_GE(watches[0].timeout.count(), 300);
  EXPECT_LE(watches[0].timeout.count(), 600);
}

TEST(Watcher, WatchTimeoutsAreRandomizedWithinTheRange) {
  FakeClient client;
  Watcher w(client, options(), 7);
  client.pushList(listPage({}, "1"));
  (void)w.step();
  for (int i = 0; i < 20; ++i) {
    client.pushWatch(WatchScript{{}, {}, true});
    (void)w.step();  // open
    (void)w.step();  // clean end -> Listed
  }
  std::set<int64_t> seen;
  for (const auto& c : client.watchCalls()) {
    EXPECT_GE(c.timeout.count(), 300);
    EXPECT_LE(c.timeout.count(), 600);
    seen.insert(c.timeout.count());
  }
  EXPECT_GT(seen.size(), 5u);
}

TEST(Watcher, EventsAndBookmarksAdvanceTheResourceVersionAndACleanEndResumesFromIt) {
  FakeClient client;
  client.pushList(listPage({}, "10"));
  WatchScript script;
  script.steps.push_back(std::optional(watchEvent(WatchEventType::kAdded, object("team", "a", "11"))));
  script.steps.push_back(std::optional(watchEvent(WatchEventType::kModified, object("team", "a", "12"))));
  script.steps.push_back(
      std::optional(watchEvent(WatchEventType::kBookmark, json{{"metadata", {{"resourceVersion", "15"}}}})));
  script.steps.push_back(std::optional(watchEvent(WatchEventType::kDeleted, object("team", "a", "16"))));
  script.steps.push_back(
      std::optional(watchEvent(WatchEventType::kBookmark, json{{"metadata", {{"resourceVersion", "20"}}}})));
  script.endAfterSteps = true;
  client.pushWatch(script);
  Watcher w(client, options(), 1);
  stepUntilWatching(w);

  auto added = w.step();
  ASSERT_EQ(added.events.size(), 1u);
  EXPECT_EQ(added.events[0].type, WatcherEvent::Type::kApplied);
  EXPECT_EQ(std::get<ws::Watching>(w.state()).resourceVersion, "11");
  auto modified = w.step();
  ASSERT_EQ(modified.events.size(), 1u);
  EXPECT_EQ(modified.events[0].type, WatcherEvent::Type::kApplied);
  auto bookmark = w.step();
  EXPECT_TRUE(bookmark.events.empty());
  EXPECT_EQ(std::get<ws::Watching>(w.state()).resourceVersion, "15");
  auto deleted = w.step();
  ASSERT_EQ(deleted.events.size(), 1u);
  EXPECT_EQ(deleted.events[0].type, WatcherEvent::Type::kDeleted);
  (void)w.step();
  EXPECT_EQ(std::get<ws::Watching>(w.state()).resourceVersion, "20");

  auto end = w.step();
  EXPECT_EQ(end.delay.count(), 0);
  EXPECT_FALSE(end.error.has_value());
  ASSERT_TRUE(std::holds_alternative<ws::Listed>(w.state()));
  EXPECT_EQ(std::get<ws::Listed>(w.state()).resourceVersion, "20");

  client.pushWatch(WatchScript{});
  (void)w.step();
  auto watches = client.watchCalls();
  ASSERT_EQ(watches.size(), 2u);
  EXPECT_EQ(watches[1].resourceVersion, "20");
  EXPECT_EQ(client.listCalls().size(), 1u) << "a clean end must not relist";
}

TEST(Watcher, GoneFromTheStreamRelistsAfterAJitteredBackoff) {
  FakeClient client;
  client.pushList(listPage({}, "10"));
  WatchScript script;
  script.steps.push_back(Error(ErrorCode::kGone, "too old resource version").withHttpStatus(410));
  client.pushWatch(script);
  Watcher w(client, options(), 1);
  stepUntilWatching(w);

  auto gone = w.step();
  // The first failure waits `initial` stretched by up to `jitter`: never at once, never in lockstep.
  const auto opts = options().backoff;
  EXPECT_GE(gone.delay, opts.initial);
  EXPECT_LT(gone.delay.count(), static_cast<int64_t>(static_cast<double>(opts.initial.count()) * (1 + opts.jitter)));
  ASSERT_TRUE(gone.error.has_value());
  EXPECT_EQ(gone.error->code(), ErrorCode::kGone);
  EXPECT_TRUE(std::holds_alternative<ws::Empty>(w.state()));

  client.pushList(listPage({object("team", "b", "30")}, "31"));
  auto relist = w.step();
  ASSERT_EQ(relist.events.size(), 1u);
  EXPECT_EQ(relist.events[0].type, WatcherEvent::Type::kRestarted);
  EXPECT_EQ(client.listCalls().size(), 2u);
}

TEST(Watcher, GoneAsAnErrorEventRelists) {
  FakeClient client;
  client.pushList(listPage({}, "10"));
  WatchScript script;
  script.steps.push_back(std::optional(watchEvent(
      WatchEventType::kError, json{{"kind", "Status"}, {"code", 410}, {"reason", "Expired"}, {"message", "old"}})));
  client.pushWatch(script);
  Watcher w(client, options(), 1);
  stepUntilWatching(w);
  auto r = w.step();
  EXPECT_TRUE(std::holds_alternative<ws::Empty>(w.state()));
  EXPECT_GT(r.delay.count(), 0) << "a relist waits out a jittered back-off";
}

TEST(Watcher, RepeatedGoneBacksOffFurtherAndSeedsSpreadTheRelists) {
  std::set<int64_t> firstDelays;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    FakeClient client;
    client.pushList(listPage({}, "10"));
    client.pushWatch(WatchScript{Error(ErrorCode::kGone, "expired").withHttpStatus(410), {}, false});
    client.pushList(Error(ErrorCode::kGone, "expired again").withHttpStatus(410));
    Watcher w(client, options(), seed);
    (void)w.step();
    auto first = w.step();
    auto second = w.step();
    ASSERT_TRUE(first.error && second.error);
    EXPECT_GT(second.delay, first.delay) << "the back-off grows while relists keep failing";
    firstDelays.insert(first.delay.count());
  }
  EXPECT_GT(firstDelays.size(), 4u) << "watchers with different seeds relist at different times";
}

TEST(Watcher, GoneWhenOpeningTheWatchRelists) {
  FakeClient client;
  client.pushList(listPage({}, "10"));
  client.pushWatch(WatchScript{Error(ErrorCode::kGone, "expired").withHttpStatus(410), {}, false});
  Watcher w(client, options(), 1);
  (void)w.step();
  (void)w.step();
  EXPECT_TRUE(std::holds_alternative<ws::Empty>(w.state()));
}

TEST(Watcher, OtherErrorEventsBackOffAndResumeFromTheLastResourceVersion) {
  FakeClient client;
  client.pushList(listPage({}, "10"));
  WatchScript script;
  script.steps.push_back(std::optional(watchEvent(WatchEventType::kAdded, object("team", "a", "12"))));
  script.steps.push_back(std::optional(
      watchEvent(WatchEventType::kError, json{{"kind", "Status"}, {"code", 500}, {"message", "etcd hiccup"}})));
  client.pushWatch(script);
  Watcher w(client, options(), 1);
  stepUntilWatching(w);
  (void)w.step();
  auto r = w.step();
  EXPECT_GT(r.delay.count(), 0);
  ASSERT_TRUE(std::holds_alternative<ws::Listed>(w.state()));
  EXPECT_EQ(std::get<ws::Listed>(w.state()).resourceVersion, "12");
}

TEST(Watcher, FailuresBackOffExponentiallyWithJitterUpToTheCapAndResetOnSuccess) {
  FakeClient client;
  WatcherOptions o = options();
  Watcher w(client, o, 3);
  std::vector<int64_t> delays;
  for (int i = 0; i < 10; ++i) {
    auto r = w.step();  // no list scripted: kUnavailable
    ASSERT_TRUE(r.error.has_value());
    EXPECT_TRUE(std::holds_alternative<ws::Listing>(w.state()));
    delays.push_back(r.delay.count());
  }
  // Base 500 ms doubling; the jitter stretches by less than half, so consecutive delays still grow.
  EXPECT_GE(delays[0], 500);
  EXPECT_LT(delays[0], 750);
  EXPECT_GE(delays[1], 1000);
  EXPECT_LT(delays[1], 1500);
  EXPECT_GE(delays[2], 2000);
  for (size_t i = 1; i < 6; ++i) EXPECT_GT(delays[i], delays[i - 1]) << i;
  for (auto d : delays) EXPECT_LE(d, 30'000);
  EXPECT_EQ(delays.back(), 30'000);

  client.pushList(listPage({}, "1"));
  (void)w.step();
  ASSERT_TRUE(std::holds_alternative<ws::Listed>(w.state()));
  client.pushWatch(WatchScript{Error(ErrorCode::kUnavailable, "connection refused"), {}, false});
  auto failedOpen = w.step();
  EXPECT_TRUE(std::holds_alternative<ws::Listed>(w.state()));
  EXPECT_GE(failedOpen.delay.count(), 500);
  EXPECT_LT(failedOpen.delay.count(), 750) << "a successful list must reset the backoff";
}

TEST(Watcher, ListFailureOnALaterPageRetriesThatPage) {
  FakeClient client;
  client.pushList(listPage({object("team", "a", "5")}, "", "p2"));
  client.pushList(Error(ErrorCode::kUnavailable, "blip"));
  client.pushList(listPage({object("team", "b", "6")}, "9"));
  Watcher w(client, options(), 1);
  (void)w.step();
  auto failed = w.step();
  EXPECT_GT(failed.delay.count(), 0);
  ASSERT_TRUE(std::holds_alternative<ws::Listing>(w.state()));
  EXPECT_EQ(std::get<ws::Listing>(w.state()).items.size(), 1u);
  auto done = w.step();
  ASSERT_EQ(done.events.size(), 1u);
  EXPECT_EQ(done.events[0].objects.size(), 2u);
  EXPECT_EQ(client.listCalls()[2].continueToken, "p2");
}

TEST(Watcher, RunStopsPromptlyWhileAWatchIsBlocked) {
  FakeClient client;
  client.pushList(listPage({object("team", "a", "5")}, "6"));
  client.pushWatch(WatchScript{});  // blocks until cancelled
  Watcher w(client, options(), 1);
  std::stop_source stop;
  std::promise<void> restarted;
  auto started = restarted.get_future();
  std::thread t([&] {
    w.run(stop.get_token(), SystemClock::instance(), [&](WatcherEvent&& ev) {
      if (ev.type == WatcherEvent::Type::kRestarted) restarted.set_value();
    });
  });
  ASSERT_EQ(started.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  // Wait for the watch to be open, then stop: run() must return although the stream never ends by itself.
  for (int i = 0; i < 500 && client.watchCalls().empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  stop.request_stop();
  auto joined = std::async(std::launch::async, [&] { t.join(); });
  EXPECT_EQ(joined.wait_for(std::chrono::seconds(5)), std::future_status::ready);
}

TEST(Watcher, RunWaitsOutBackoffOnTheInjectedClock) {
  FakeClient client;
  client.pushList(Error(ErrorCode::kUnavailable, "down"));
  client.pushList(listPage({}, "6"));
  client.pushWatch(WatchScript{});
  ManualClock clock;
  Watcher w(client, options(), 1);
  std::stop_source stop;
  std::thread t([&] { w.run(stop.get_token(), clock, [](WatcherEvent&&) {}); });
  for (int i = 0; i < 100 && client.listCalls().size() < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(client.listCalls().size(), 1u) << "the retry must wait for the clock";
  clock.advance(std::chrono::seconds(1));
  for (int i = 0; i < 400 && client.watchCalls().empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(client.listCalls().size(), 2u);
  EXPECT_EQ(client.watchCalls().size(), 1u);
  stop.request_stop();
  t.join();
}

}  // namespace
}  // namespace poolguard::runtime
