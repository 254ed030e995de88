#include "runtime/event_recorder.h"

#include <gtest/gtest.h>

#include "fake_client.h"

namespace poolguard::runtime {
namespace {

using namespace std::chrono_literals;
using kube::json;
using testing::FakeClient;

const kube::Resource kEvents{"", "v1", "events", "Event", true};

json deployment(const std::string& name) {
  return json{{"apiVersion", "apps/v1"},
              {"kind", "Deployment"},
              {"metadata", {{"namespace", "team"}, {"name", name}, {"uid", "uid-" + name}, {"resourceVersion", "7"}}},
              {"spec", {{"replicas", 3}}}};
}

EventRecorderOptions opts(const Clock& clock) {
  EventRecorderOptions o;
  o.instance = "pod-1";
  o.clock = &clock;
  return o;
}

TEST(EventRecorder, BuildsAnObjectReference) {
  auto ref = objectReference(deployment("web"));
  EXPECT_EQ(ref, (json{{"apiVersion", "apps/v1"},
                       {"kind", "Deployment"},
                       {"namespace", "team"},
                       {"name", "web"},
                       {"uid", "uid-web"},
                       {"resourceVersion", "7"}}));
  EXPECT_EQ(objectReference(ref), ref) << "a reference passes through unchanged";
}

TEST(EventRecorder, CreatesACoreV1Event) {
  FakeClient client;
  ManualClock clock;
  EventRecorder rec(client, opts(clock));
  rec.record(deployment("web"), EventType::kWarning, "BudgetExceeded", "12 > 10 connections");
  ASSERT_TRUE(rec.flush(5s));
  auto events = client.storedOf(kEvents);
  ASSERT_EQ(events.size(), 1u);
  const json& e = events[0];
  EXPECT_EQ(e["metadata"]["namespace"], "team");
  EXPECT_EQ(e["metadata"]["name"].get<std::string>().rfind("web.", 0), 0u);
  EXPECT_EQ(e["involvedObject"]["kind"], "Deployment");
  EXPECT_EQ(e["involvedObject"]["uid"], "uid-web");
  EXPECT_EQ(e["type"], "Warning");
  EXPECT_EQ(e["reason"], "BudgetExceeded");
  EXPECT_EQ(e["message"], "12 > 10 connections");
  EXPECT_EQ(e["count"], 1);
  EXPECT_EQ(e["source"]["component"], "poolguard");
  EXPECT_EQ(e["reportingInstance"], "pod-1");
  EXPECT_EQ(e["firstTimestamp"], formatRfc3339(clock.now()));
  EXPECT_EQ(rec.written(), 1u);
}

TEST(EventRecorder, AggregatesRepeatsWithinTheWindowByPatchingCount) {
  FakeClient client;
  ManualClock clock;
  EventRecorder rec(client, opts(clock));
  rec.record(deployment("web"), EventType::kNormal, "Scaled", "to 3");
  ASSERT_TRUE(rec.flush(5s));
  clock.advance(1min);
  rec.record(deployment("web"), EventType::kNormal, "Scaled", "to 3");
  clock.advance(1min);
  rec.record(deployment("web"), EventType::kNormal, "Scaled", "to 3");
  ASSERT_TRUE(rec.flush(5s));
  auto events = client.storedOf(kEvents);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["count"], 3);
  EXPECT_EQ(events[0]["lastTimestamp"], formatRfc3339(clock.now()));
  EXPECT_EQ(client.count("create"), 1);
  EXPECT_EQ(client.count("patch"), 2);

  // Another message or reason is another Event.
  rec.record(deployment("web"), EventType::kNormal, "Scaled", "to 4");
  ASSERT_TRUE(rec.flush(5s));
  EXPECT_EQ(client.storedOf(kEvents).size(), 2u);

  // After the window a repeat starts a new Event.
  clock.advance(11min);
  rec.record(deployment("web"), EventType::kNormal, "Scaled", "to 3");
  ASSERT_TRUE(rec.flush(5s));
  EXPECT_EQ(client.storedOf(kEvents).size(), 3u);
}

TEST(EventRecorder, AnAggregatedEventThatExpiredIsCreatedAgain) {
  FakeClient client;
  ManualClock clock;
  EventRecorder rec(client, opts(clock));
  rec.record(deployment("web"), EventType::kNormal, "Scaled", "to 3");
  ASSERT_TRUE(rec.flush(5s));
  auto name = client.storedOf(kEvents)[0]["metadata"]["name"].get<std::string>();
  ASSERT_TRUE(client.remove(kEvents, "team", name).ok());
  rec.record(deployment("web"), EventType::kNormal, "Scaled", "to 3");
  ASSERT_TRUE(rec.flush(5s));
  auto events = client.storedOf(kEvents);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["count"], 1);
  EXPECT_EQ(rec.written(), 2u);
}

TEST(EventRecorder, RateLimitsPerObjectWithABurstOf25AndOneTokenPer5Minutes) {
  FakeClient client;
  ManualClock clock;
  EventRecorder rec(client, opts(clock));
  for (int i = 0; i < 30; ++i) rec.record(deployment("web"), EventType::kNormal, "Tick", std::to_string(i));
  rec.record(deployment("other"), EventType::kNormal, "Tick", "x");
  ASSERT_TRUE(rec.flush(5s));
  EXPECT_EQ(client.storedOf(kEvents).size(), 26u);
  EXPECT_EQ(rec.dropped(), 5u);
  clock.advance(4min);
  rec.record(deployment("web"), EventType::kNormal, "Tick", "early");
  clock.advance(1min);
  rec.record(deployment("web"), EventType::kNormal, "Tick", "refilled");
  ASSERT_TRUE(rec.flush(5s));
  EXPECT_EQ(client.storedOf(kEvents).size(), 27u);
  EXPECT_EQ(rec.dropped(), 6u);
}

TEST(EventRecorder, WriteFailuresAreDroppedAndDoNotStopLaterEvents) {
  FakeClient client;
  ManualClock clock;
  EventRecorder rec(client, opts(clock));
  client.failNext("create", Error(ErrorCode::kForbidden, "events is forbidden").withHttpStatus(403));
  rec.record(deployment("web"), EventType::kNormal, "A", "first");
  rec.record(deployment("web"), EventType::kNormal, "B", "second");
  ASSERT_TRUE(rec.flush(5s));
  EXPECT_EQ(rec.dropped(), 1u);
  EXPECT_EQ(rec.written(), 1u);
  EXPECT_EQ(client.storedOf(kEvents).size(), 1u);
}

TEST(EventRecorder, RecordDoesNotWaitForTheApiServer) {
  FakeClient client;
  ManualClock clock;
  auto o = opts(clock);
  o.maxPending = 3;
  o.burst = 100;
  auto rec = std::make_unique<EventRecorder>(client, o);
  // Without flush the writer may or may not have started; beyond maxPending queued events are dropped, never
  // waited for.
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 50; ++i) rec->record(deployment("web"), EventType::kNormal, "Tick", std::to_string(i));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  ASSERT_TRUE(rec->flush(5s));
  EXPECT_EQ(rec->written() + rec->dropped(), 50u);
  rec.reset();
}

}  // namespace
}  // namespace poolguard::runtime
