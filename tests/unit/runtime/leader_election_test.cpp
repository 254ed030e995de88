#include "runtime/leader_election.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "fake_client.h"

namespace poolguard::runtime {
namespace {

using namespace std::chrono_literals;
using kube::json;
using testing::FakeClient;

const kube::Resource kLeases{"coordination.k8s.io", "v1", "leases", "Lease", true};

LeaderElectionConfig config(const std::string& identity, const Clock& clock) {
  LeaderElectionConfig c;
  c.leaseNamespace = "ops";
  c.leaseName = "poolguard";
  c.identity = identity;
  c.clock = &clock;
  c.clockPoll = 2ms;
  return c;
}

json spec(FakeClient& client) { return client.stored(kLeases, "ops", "poolguard").value()["spec"]; }

// Polls a condition on the real clock while advancing `clock` in `step`s: drives loops that wait on a ManualClock.
bool driveUntil(ManualClock& clock, std::chrono::milliseconds step, const std::function<bool()>& done) {
  for (int i = 0; i < 2000; ++i) {
    if (done()) return true;
    clock.advance(step);
    std::this_thread::sleep_for(1ms);
  }
  return done();
}

// onStartedLeading that flags `started` and then idles until leadership ends.
std::function<void(std::stop_token)> idleWork(std::atomic<bool>& started) {
  return [&started](std::stop_token leading) {
    started = true;
    while (!leading.stop_requested()) std::this_thread::sleep_for(1ms);
  };
}

TEST(LeaderElection, MicroTimeHasSixFractionalDigits) {
  auto t = std::chrono::system_clock::from_time_t(1700000000) + 250ms;
  EXPECT_EQ(formatMicroTime(t), "2023-11-14T22:13:20.250000Z");
}

std::string timing(int64_t lease, int64_t renew, int64_t retry) {
  auto s = validateLeaderElectionFlags(lease, renew, retry);
  if (s.ok()) return "ok";
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  return s.error().message();
}

TEST(LeaderElection, TimingFlagsAreCheckedAsClientGoChecksThem) {
  EXPECT_EQ(timing(15, 10, 2), "ok") << "the defaults";
  EXPECT_EQ(timing(137, 107, 26), "ok") << "controller-runtime's defaults";
  EXPECT_EQ(timing(2, 1, 0), "--retry-period 0: use a whole number of seconds of 1 or more");
  EXPECT_EQ(timing(-15, 10, 2), "--lease-duration -15: use a whole number of seconds of 1 or more");
  EXPECT_EQ(timing(15, 0, 2), "--renew-deadline 0: use a whole number of seconds of 1 or more");
  // A renew deadline as long as the lease keeps the write fence open after another replica may have taken over.
  EXPECT_EQ(timing(15, 15, 2),
            "--renew-deadline 15 must be less than --lease-duration 15, or the leader could still write after its "
            "lease expired; lower --renew-deadline or raise --lease-duration (the defaults are 10 and 15)");
  EXPECT_NE(timing(10, 30, 2), "ok");
  // The deadline must leave room to retry a failed renewal.
  EXPECT_EQ(timing(15, 2, 2),
            "--renew-deadline 2 must be more than 1.2 times --retry-period 2, so a failed renewal is tried again "
            "before the deadline; raise --renew-deadline or lower --retry-period (the defaults are 10 and 2)");
  EXPECT_NE(timing(15, 6, 5), "ok") << "6 is not more than 1.2 x 5";
  EXPECT_EQ(timing(15, 7, 5), "ok");
  EXPECT_NE(timing(15, 1, 10), "ok");
}

TEST(LeaderElection, DefaultIdentityIsHostnameUnderscorePid) {
  auto id = defaultIdentity();
  EXPECT_NE(id.find('_'), std::string::npos);
  EXPECT_EQ(id.substr(id.rfind('_') + 1), std::to_string(getpid()));
}

TEST(LeaderElection, AcquiresAMissingLeaseByCreatingIt) {
  FakeClient client;
  ManualClock clock;
  LeaderElector e(client, config("a", clock));
  auto r = e.tryAcquireOrRenew();
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_TRUE(*r);
  auto s = spec(client);
  EXPECT_EQ(s["holderIdentity"], "a");
  EXPECT_EQ(s["leaseDurationSeconds"], 15);
  EXPECT_EQ(s["leaseTransitions"], 0);
  EXPECT_EQ(s["acquireTime"], formatMicroTime(clock.now()));
  EXPECT_EQ(e.observedHolder(), "a");
}

TEST(LeaderElection, RenewKeepsAcquireTimeAndMovesRenewTime) {
  FakeClient client;
  ManualClock clock;
  LeaderElector e(client, config("a", clock));
  ASSERT_TRUE(*e.tryAcquireOrRenew());
  auto acquired = spec(client)["acquireTime"];
  clock.advance(2s);
  ASSERT_TRUE(*e.tryAcquireOrRenew());
  auto s = spec(client);
  EXPECT_EQ(s["acquireTime"], acquired);
  EXPECT_EQ(s["renewTime"], formatMicroTime(clock.now()));
  EXPECT_EQ(s["leaseTransitions"], 0);
  EXPECT_EQ(client.count("update"), 1);
}

TEST(LeaderElection, RespectsALiveHolderAndTakesOverOnlyAfterTheLeaseGoesUnrenewed) {
  FakeClient client;
  ManualClock clock;
  LeaderElector a(client, config("a", clock));
  LeaderElector b(client, config("b", clock));
  ASSERT_TRUE(*a.tryAcquireOrRenew());
  auto r = b.tryAcquireOrRenew();
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  EXPECT_EQ(b.observedHolder(), "a");

  // a keeps renewing: b's observation restarts every time the record changes.
  for (int i = 0; i < 5; ++i) {
    clock.advance(10s);
    ASSERT_TRUE(*a.tryAcquireOrRenew());
    EXPECT_FALSE(*b.tryAcquireOrRenew());
  }
  // a stops renewing: b takes over once 15 s have passed since it saw the last change.
  clock.advance(14s);
  EXPECT_FALSE(*b.tryAcquireOrRenew());
  clock.advance(1s);
  ASSERT_TRUE(*b.tryAcquireOrRenew());
  auto s = spec(client);
  EXPECT_EQ(s["holderIdentity"], "b");
  EXPECT_EQ(s["leaseTransitions"], 1);
  // a now sees b's lease and does not fight for it.
  EXPECT_FALSE(*a.tryAcquireOrRenew());
}

TEST(LeaderElection, AConcurrentWriterMakesTheUpdateConflict) {
  FakeClient client;
  ManualClock clock;
  LeaderElector a(client, config("a", clock));
  ASSERT_TRUE(*a.tryAcquireOrRenew());
  // The optimistic renewal conflicts, so the Lease is read; the read-modify-write conflicts too.
  client.failNext("update", Error(ErrorCode::kConflict, "the object has been modified").withHttpStatus(409));
  client.failNext("update", Error(ErrorCode::kConflict, "the object has been modified").withHttpStatus(409));
  auto r = a.tryAcquireOrRenew();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kConflict);
}

TEST(LeaderElection, ARenewalIsOneUpdateWithoutARead) {
  FakeClient client;
  ManualClock clock;
  LeaderElector a(client, config("a", clock));
  ASSERT_TRUE(*a.tryAcquireOrRenew());
  const int gets = client.count("get"), updates = client.count("update");
  for (int i = 0; i < 3; ++i) {
    clock.advance(2s);
    auto r = a.tryAcquireOrRenew();
    ASSERT_TRUE(r.ok() && *r);
  }
  EXPECT_EQ(client.count("get"), gets) << "a renewal must not read the Lease first";
  EXPECT_EQ(client.count("update"), updates + 3);
  EXPECT_EQ(spec(client)["renewTime"], formatMicroTime(clock.now()));
}

TEST(LeaderElection, ARenewalThatConflictsReadsTheLeaseAndYieldsToALiveHolder) {
  FakeClient client;
  ManualClock clock;
  LeaderElector a(client, config("a", clock));
  ASSERT_TRUE(*a.tryAcquireOrRenew());
  json lease = client.stored(kLeases, "ops", "poolguard").value();
  lease["spec"]["holderIdentity"] = "b";
  client.put(kLeases, lease);  // b wrote the Lease: a's resourceVersion is stale
  auto r = a.tryAcquireOrRenew();
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_FALSE(*r);
  EXPECT_EQ(a.observedHolder(), "b");
  EXPECT_EQ(spec(client)["holderIdentity"], "b");
}

// Forwards to a FakeClient and records the request deadline of every Lease write.
class DeadlineRecorder final : public kube::Client {
 public:
  explicit DeadlineRecorder(FakeClient& inner) : inner_(inner) {}
  std::vector<std::optional<Clock::steady_point>> deadlines() const {
    std::lock_guard lock(mu_);
    return deadlines_;
  }
  Result<json> get(const kube::Resource& r, const std::string& ns, const std::string& name,
                   const std::string& sub = "") override {
    return inner_.get(r, ns, name, sub);
  }
  Result<json> list(const kube::Resource& r, const std::string& ns, const kube::ListOptions& o = {}) override {
    return inner_.list(r, ns, o);
  }
  Result<json> create(const kube::Resource& r, const std::string& ns, const json& obj,
                      const kube::WriteOptions& o = {}) override {
    record();
    return inner_.create(r, ns, obj, o);
  }
  Result<json> update(const kube::Resource& r, const std::string& ns, const json& obj,
                      const kube::WriteOptions& o = {}) override {
    record();
    return inner_.update(r, ns, obj, o);
  }
  Result<json> patch(const kube::Resource& r, const std::string& ns, const std::string& name, kube::PatchType t,
                     const json& p, const kube::WriteOptions& o = {}) override {
    return inner_.patch(r, ns, name, t, p, o);
  }
  Result<json> apply(const kube::Resource& r, const std::string& ns, const std::string& name, const json& obj,
                     const kube::WriteOptions& o) override {
    return inner_.apply(r, ns, name, obj, o);
  }
  Status remove(const kube::Resource& r, const std::string& ns, const std::string& name,
                const json& d = json::object()) override {
    return inner_.remove(r, ns, name, d);
  }
  Result<std::unique_ptr<kube::WatchStream>> watch(const kube::Resource& r, const std::string& ns,
                                                   const kube::WatchOptions& o) override {
    return inner_.watch(r, ns, o);
  }

 private:
  void record() {
    std::lock_guard lock(mu_);
    deadlines_.push_back(kube::RequestDeadline::current());
  }
  FakeClient& inner_;
  mutable std::mutex mu_;
  std::vector<std::optional<Clock::steady_point>> deadlines_;
};

TEST(LeaderElection, EveryAttemptEndsByTheRenewDeadlineAndTheFenceFollowsTheRenewals) {
  FakeClient fake;
  DeadlineRecorder client(fake);
  ManualClock clock;
  auto fence = std::make_shared<kube::WriteFence>(clock);
  std::atomic<bool> started{false};
  std::atomic<bool> fenceOpenWhenWorkStopped{true};
  auto c = config("a", clock);
  c.fence = fence;
  c.onStartedLeading = [&](std::stop_token leading) {
    started = true;
    while (!leading.stop_requested()) std::this_thread::sleep_for(1ms);
    fenceOpenWhenWorkStopped = fence->openWindow().has_value();
  };
  const auto acquiredAt = clock.steadyNow();
  EXPECT_FALSE(fence->openWindow()) << "closed until the Lease is held";
  LeaderElector e(client, c);
  auto done = std::async(std::launch::async, [&] { e.run(std::stop_token{}); });
  ASSERT_TRUE(driveUntil(clock, 0ms, [&] { return started.load(); }));
  ASSERT_EQ(client.deadlines().size(), 1u);
  EXPECT_EQ(client.deadlines()[0], acquiredAt + c.renewDeadline) << "the acquisition is bounded";
  EXPECT_EQ(fence->openWindow(), acquiredAt + c.renewDeadline);

  // A renewal: bounded by the last renewal's start + renewDeadline, and it moves the fence.
  // (The request's deadline is recorded as it is sent; the fence moves once its answer is in.)
  ASSERT_TRUE(driveUntil(clock, 100ms, [&] {
    auto w = fence->openWindow();
    return client.deadlines().size() >= 2 && w && *w > acquiredAt + c.renewDeadline;
  })) << "a renewal moves the fence";
  auto window = fence->openWindow();
  ASSERT_TRUE(window);
  EXPECT_EQ(client.deadlines()[1], acquiredAt + c.renewDeadline);
  EXPECT_LE(*window, clock.steadyNow() + c.renewDeadline);

  // Another holder: the fence closes before the work is told to stop, though its time has not passed.
  json lease = fake.stored(kLeases, "ops", "poolguard").value();
  lease["spec"]["holderIdentity"] = "b";
  fake.put(kLeases, lease);
  ASSERT_TRUE(driveUntil(clock, 100ms, [&] { return done.wait_for(0ms) == std::future_status::ready; }));
  EXPECT_FALSE(fenceOpenWhenWorkStopped.load());
  EXPECT_FALSE(fence->openWindow());
}

TEST(LeaderElection, WithRenewalsFailingTheFenceClosesAtTheRenewDeadline) {
  FakeClient client;
  ManualClock clock;
  auto fence = std::make_shared<kube::WriteFence>(clock);
  std::atomic<bool> started{false};
  auto c = config("a", clock);
  c.fence = fence;
  c.onStartedLeading = idleWork(started);
  LeaderElector e(client, c);
  auto done = std::async(std::launch::async, [&] { e.run(std::stop_token{}); });
  ASSERT_TRUE(driveUntil(clock, 0ms, [&] { return started.load(); }));
  ASSERT_TRUE(driveUntil(clock, 100ms, [&] { return client.count("update") >= 1; }));
  client.failAlways("update", Error(ErrorCode::kTimeout, "no answer by the request deadline"));
  client.failAlways("get", Error(ErrorCode::kTimeout, "no answer by the request deadline"));
  auto window = fence->openWindow();
  ASSERT_TRUE(window);
  // Until the window ends, writes may go on; from its end, none, whatever the elector's loop is doing.
  while (clock.steadyNow() + 50ms < *window) {
    EXPECT_TRUE(fence->openWindow());
    clock.advance(50ms);
  }
  clock.advance(*window - clock.steadyNow());
  EXPECT_FALSE(fence->openWindow());
  ASSERT_TRUE(driveUntil(clock, 100ms, [&] { return done.wait_for(0ms) == std::future_status::ready; }));
  EXPECT_FALSE(e.isLeader());
}

TEST(LeaderElection, TwoCandidatesCreatingAtOnceHaveOneWinner) {
  FakeClient client;
  ManualClock clock;
  LeaderElector a(client, config("a", clock));
  LeaderElector b(client, config("b", clock));
  ASSERT_TRUE(*a.tryAcquireOrRenew());
  // b read "not found" before a created: its create fails with AlreadyExists.
  client.failNext("get", Error(ErrorCode::kNotFound, "not found"));
  auto r = b.tryAcquireOrRenew();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(spec(client)["holderIdentity"], "a");
}

TEST(LeaderElection, ReleaseEmptiesTheHolderSoAnotherCandidateTakesOverAtOnce) {
  FakeClient client;
  ManualClock clock;
  LeaderElector a(client, config("a", clock));
  LeaderElector b(client, config("b", clock));
  ASSERT_TRUE(*a.tryAcquireOrRenew());
  EXPECT_FALSE(*b.tryAcquireOrRenew());
  ASSERT_TRUE(a.release().ok());
  auto s = spec(client);
  EXPECT_EQ(s["holderIdentity"], "");
  EXPECT_EQ(s["leaseDurationSeconds"], 1);
  EXPECT_TRUE(*b.tryAcquireOrRenew());
  // Releasing a lease held by someone else changes nothing.
  int updates = client.count("update");
  ASSERT_TRUE(a.release().ok());
  EXPECT_EQ(client.count("update"), updates);
}

TEST(LeaderElection, RunLeadsUntilAnotherHolderAppearsThenStopsWorkImmediately) {
  FakeClient client;
  ManualClock clock;
  std::atomic<bool> workStopped{false}, stoppedCallback{false}, started{false};
  auto c = config("a", clock);
  c.onStartedLeading = [&](std::stop_token leading) {
    started = true;
    while (!leading.stop_requested()) std::this_thread::sleep_for(1ms);
    workStopped = true;
  };
  c.onStoppedLeading = [&] { stoppedCallback = true; };
  LeaderElector e(client, c);
  auto done = std::async(std::launch::async, [&] { e.run(std::stop_token{}); });
  ASSERT_TRUE(driveUntil(clock, 0ms, [&] { return started.load(); }));
  EXPECT_TRUE(e.isLeader());

  // Someone else writes the lease (as if our renewals had not reached the server).
  json lease = client.stored(kLeases, "ops", "poolguard").value();
  lease["spec"]["holderIdentity"] = "b";
  lease["spec"]["renewTime"] = formatMicroTime(clock.now());
  client.put(kLeases, lease);

  ASSERT_TRUE(driveUntil(clock, 500ms, [&] { return done.wait_for(0ms) == std::future_status::ready; }));
  EXPECT_FALSE(e.isLeader());
  EXPECT_TRUE(workStopped.load());
  EXPECT_TRUE(stoppedCallback.load());
  EXPECT_EQ(spec(client)["holderIdentity"], "b") << "a lost lease must not be released";
}

TEST(LeaderElection, RunStepsDownWhenRenewalsFailForTheRenewDeadline) {
  FakeClient client;
  ManualClock clock;
  std::atomic<bool> started{false};
  auto c = config("a", clock);
  c.onStartedLeading = idleWork(started);
  LeaderElector e(client, c);
  auto done = std::async(std::launch::async, [&] { e.run(std::stop_token{}); });
  ASSERT_TRUE(driveUntil(clock, 0ms, [&] { return started.load(); }));
  auto leadingSince = clock.steadyNow();
  client.failAlways("update", Error(ErrorCode::kUnavailable, "connection refused"));
  ASSERT_TRUE(driveUntil(clock, 250ms, [&] { return done.wait_for(0ms) == std::future_status::ready; }));
  auto ledFor = clock.steadyNow() - leadingSince;
  EXPECT_GE(ledFor, 10s);
  EXPECT_LT(ledFor, 15s) << "must step down before the lease can expire for others";
}

TEST(LeaderElection, GracefulStopReleasesTheLeaseAfterWorkEnded) {
  FakeClient client;
  ManualClock clock;
  std::atomic<bool> started{false}, workRunning{false};
  std::atomic<bool> releasedWhileWorking{false};
  auto c = config("a", clock);
  c.onStartedLeading = [&](std::stop_token leading) {
    workRunning = true;
    started = true;
    while (!leading.stop_requested()) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(20ms);
    if (client.stored(kLeases, "ops", "poolguard").value()["spec"]["holderIdentity"] == "") releasedWhileWorking = true;
    workRunning = false;
  };
  LeaderElector e(client, c);
  std::stop_source stop;
  auto done = std::async(std::launch::async, [&] { e.run(stop.get_token()); });
  ASSERT_TRUE(driveUntil(clock, 0ms, [&] { return started.load(); }));
  stop.request_stop();
  ASSERT_EQ(done.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(releasedWhileWorking.load());
  EXPECT_FALSE(workRunning.load());
  auto s = spec(client);
  EXPECT_EQ(s["holderIdentity"], "");
  EXPECT_EQ(s["leaseDurationSeconds"], 1);
}

}  // namespace
}  // namespace poolguard::runtime
