#include "runtime/workqueue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <set>
#include <thread>

#include "runtime/controller.h"

namespace poolguard::runtime {
namespace {

using namespace std::chrono_literals;

WorkQueueOptions opts(const std::string& name, const Clock* clock = nullptr,
                      std::shared_ptr<RateLimiter> limiter = nullptr) {
  WorkQueueOptions o;
  o.name = name;
  o.clock = clock;
  o.rateLimiter = std::move(limiter);
  o.clockPoll = 5ms;
  return o;
}

TEST(WorkQueue, DeduplicatesQueuedKeys) {
  WorkQueue q(opts("dedupe"));
  q.add("a/x");
  q.add("a/x");
  q.add("a/y");
  EXPECT_EQ(q.len(), 2u);
  EXPECT_EQ(q.tryGet(), "a/x");
  EXPECT_EQ(q.tryGet(), "a/y");
  EXPECT_EQ(q.tryGet(), std::nullopt);
}

TEST(WorkQueue, AKeyAddedWhileProcessingComesBackOnlyAfterDone) {
  WorkQueue q(opts("processing"));
  q.add("k");
  auto k = q.tryGet();
  ASSERT_EQ(k, "k");
  q.add("k");
  q.add("k");
  EXPECT_EQ(q.len(), 0u) << "must not be handed to a second worker while in flight";
  q.done("k");
  EXPECT_EQ(q.len(), 1u);
  EXPECT_EQ(q.tryGet(), "k");
  q.done("k");
  EXPECT_EQ(q.len(), 0u);
}

TEST(WorkQueue, NoKeyIsEverProcessedByTwoWorkersAtOnce) {
  WorkQueue q(opts("concurrency"));
  std::mutex mu;
  std::set<std::string> inFlight;
  std::atomic<bool> overlap{false};
  std::atomic<int> processed{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 6; ++w) {
    workers.emplace_back([&] {
      while (auto k = q.get()) {
        {
          std::lock_guard l(mu);
          if (!inFlight.insert(*k).second) overlap = true;
        }
        std::this_thread::yield();
        {
          std::lock_guard l(mu);
          inFlight.erase(*k);
        }
        ++processed;
        q.done(*k);
      }
    });
  }
  for (int i = 0; i < 20000; ++i) q.add("key-" + std::to_string(i % 3));
  // Every key added after its last processing started is processed again: wait for the queue to drain.
  for (int i = 0; i < 1000 && q.len() > 0; ++i) std::this_thread::sleep_for(1ms);
  q.shutdown();
  for (auto& w : workers) w.join();
  EXPECT_FALSE(overlap.load());
  EXPECT_GE(processed.load(), 3);
}

TEST(WorkQueue, AddAfterWaitsForTheClockAndTheEarlierDelayWins) {
  ManualClock clock;
  WorkQueue q(opts("delayed", &clock));
  q.addAfter("k", 10s);
  q.addAfter("k", 3s);
  q.addAfter("k", 20s);
  EXPECT_EQ(q.len(), 0u);
  EXPECT_EQ(q.delayedLen(), 1u);
  clock.advance(2s);
  EXPECT_EQ(q.len(), 0u);
  clock.advance(1s);
  EXPECT_EQ(q.len(), 1u);
  EXPECT_EQ(q.delayedLen(), 0u);
  q.addAfter("now", 0s);
  EXPECT_EQ(q.len(), 2u);
}

TEST(WorkQueue, BlockedGetWakesWhenADelayedKeyBecomesDue) {
  ManualClock clock;
  WorkQueue q(opts("delayed-get", &clock));
  q.addAfter("k", 1s);
  auto got = std::async(std::launch::async, [&] { return q.get(); });
  EXPECT_EQ(got.wait_for(30ms), std::future_status::timeout);
  clock.advance(1s);
  ASSERT_EQ(got.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(got.get(), "k");
}

TEST(WorkQueue, ShutdownReleasesBlockedGettersAndIgnoresAdds) {
  WorkQueue q(opts("shutdown"));
  auto got = std::async(std::launch::async, [&] { return q.get(); });
  EXPECT_EQ(got.wait_for(20ms), std::future_status::timeout);
  q.shutdown();
  ASSERT_EQ(got.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(got.get(), std::nullopt);
  q.add("k");
  EXPECT_TRUE(q.shuttingDown());
  EXPECT_EQ(q.tryGet(), std::nullopt);
}

TEST(RateLimiters, PerKeyExponentialFrom5msTo1000s) {
  ItemExponentialRateLimiter l(5ms, 1000s);
  EXPECT_EQ(l.when("a"), 5ms);
  EXPECT_EQ(l.when("a"), 10ms);
  EXPECT_EQ(l.when("a"), 20ms);
  EXPECT_EQ(l.when("b"), 5ms);
  EXPECT_EQ(l.numRequeues("a"), 3);
  for (int i = 0; i < 100; ++i) (void)l.when("a");
  EXPECT_EQ(l.when("a"), 1000s);
  l.forget("a");
  EXPECT_EQ(l.numRequeues("a"), 0);
  EXPECT_EQ(l.when("a"), 5ms);
}

TEST(RateLimiters, GlobalBucketAllowsABurstThenPacesAtItsRate) {
  ManualClock clock;
  BucketRateLimiter l(clock, 10, 100);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(l.when("k" + std::to_string(i)), 0ns) << i;
  EXPECT_EQ(l.when("x"), 100ms);
  EXPECT_EQ(l.when("y"), 200ms);
  clock.advance(1s);
  // 10 tokens refilled, 2 of them already promised.
  for (int i = 0; i < 8; ++i) EXPECT_EQ(l.when("z"), 0ns);
  EXPECT_EQ(l.when("z"), 100ms);
}

TEST(RateLimiters, DefaultControllerLimiterTakesTheLongerDelay) {
  ManualClock clock;
  auto l = defaultControllerRateLimiter(clock);
  EXPECT_EQ(l->when("a"), 5ms);
  EXPECT_EQ(l->when("a"), 10ms);
  EXPECT_EQ(l->numRequeues("a"), 2);
  l->forget("a");
  EXPECT_EQ(l->numRequeues("a"), 0);
}

TEST(WorkQueue, AddRateLimitedBacksOffPerKey) {
  ManualClock clock;
  WorkQueue q(opts("ratelimited", &clock, std::make_shared<ItemExponentialRateLimiter>(1s, 60s)));
  q.addRateLimited("k");
  EXPECT_EQ(q.len(), 0u);
  clock.advance(1s);
  ASSERT_EQ(q.tryGet(), "k");
  q.done("k");
  q.addRateLimited("k");
  clock.advance(1s);
  EXPECT_EQ(q.len(), 0u) << "the second failure waits twice as long";
  clock.advance(1s);
  EXPECT_EQ(q.len(), 1u);
  EXPECT_EQ(q.numRequeues("k"), 2);
  q.forget("k");
  EXPECT_EQ(q.numRequeues("k"), 0);
}

ControllerOptions controllerOpts(const std::string& name, const Clock* clock) {
  ControllerOptions o;
  o.name = name;
  o.workers = 1;
  o.clock = clock;
  o.rateLimiter = std::make_shared<ItemExponentialRateLimiter>(1s, 60s);
  o.clockPoll = 5ms;
  return o;
}

// onDrained runs once a burst is over (the queue empty, nothing reconciling), not between its keys.
TEST(Controller, TellsWhenABurstOfWorkIsOver) {
  ManualClock clock;
  auto o = controllerOpts("drained", &clock);
  int drained = 0;
  size_t lenWhenDrained = 99;
  Controller* self = nullptr;
  o.onDrained = [&] {
    ++drained;
    lenWhenDrained = self->queue().len();
  };
  Controller c(o, [](const std::string&) -> Result<ReconcileResult> { return ReconcileResult{}; });
  self = &c;
  for (const auto& k : {"a", "b", "c"}) c.queue().add(k);
  ASSERT_TRUE(c.processNextWorkItem());
  ASSERT_TRUE(c.processNextWorkItem());
  EXPECT_EQ(drained, 0) << "called while keys were still queued";
  ASSERT_TRUE(c.processNextWorkItem());
  EXPECT_EQ(drained, 1);
  EXPECT_EQ(lenWhenDrained, 0u);
  c.queue().add("d");
  ASSERT_TRUE(c.processNextWorkItem());
  EXPECT_EQ(drained, 2) << "each burst ends once";
}

TEST(Controller, FilesOutcomesByTheReconcileContract) {
  ManualClock clock;
  std::map<std::string, Result<ReconcileResult>> outcomes{
      {"ok", ReconcileResult{}},
      {"later", ReconcileResult{false, 30s}},
      {"again", ReconcileResult{true, 0ms}},
      {"broken", Error(ErrorCode::kUnavailable, "api down")},
      {"invalid", Error(ErrorCode::kInvalidArgument, "bad policy").asTerminal()},
      // An API server's 400 (say, during a finalize) is not terminal by itself: retried with back-off.
      {"badrequest", Error(ErrorCode::kInvalidArgument, "admission webhook refused").withHttpStatus(400)},
  };
  std::vector<std::string> seen;
  Controller c(controllerOpts("contract", &clock), [&](const std::string& key) -> Result<ReconcileResult> {
    seen.push_back(key);
    if (key == "throws") throw std::runtime_error("boom");
    return outcomes.at(key);
  });
  for (const auto& k : {"ok", "later", "again", "broken", "invalid", "badrequest", "throws"}) c.queue().add(k);
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(c.processNextWorkItem());
  EXPECT_EQ(seen.size(), 7u);
  EXPECT_EQ(c.queue().len(), 0u);
  // requeueAfter 30s, plus four rate-limited ones (again, broken, badrequest, throws) at 1s; ok and invalid are
  // done.
  EXPECT_EQ(c.queue().delayedLen(), 5u);
  EXPECT_EQ(c.queue().numRequeues("ok"), 0);
  EXPECT_EQ(c.queue().numRequeues("invalid"), 0);
  EXPECT_EQ(c.queue().numRequeues("broken"), 1);
  EXPECT_EQ(c.queue().numRequeues("badrequest"), 1);
  EXPECT_EQ(c.queue().numRequeues("throws"), 1);
  EXPECT_EQ(c.queue().numRequeues("later"), 0);
  clock.advance(1s);
  EXPECT_EQ(c.queue().len(), 4u);
  clock.advance(29s);
  EXPECT_EQ(c.queue().len(), 5u);
}

TEST(Controller, RunStopsWorkersOnStop) {
  std::atomic<int> reconciles{0};
  Controller c(controllerOpts("run", nullptr), [&](const std::string&) -> Result<ReconcileResult> {
    ++reconciles;
    return ReconcileResult{};
  });
  std::stop_source stop;
  std::thread t([&] { c.run(stop.get_token()); });
  c.queue().add("a");
  c.queue().add("b");
  for (int i = 0; i < 1000 && reconciles.load() < 2; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(reconciles.load(), 2);
  stop.request_stop();
  auto joined = std::async(std::launch::async, [&] { t.join(); });
  EXPECT_EQ(joined.wait_for(5s), std::future_status::ready);
  c.queue().add("c");
  EXPECT_EQ(reconciles.load(), 2);
}

}  // namespace
}  // namespace poolguard::runtime
