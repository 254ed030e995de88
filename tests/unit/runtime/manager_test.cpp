#include "runtime/manager.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <set>

#include "fake_client.h"
#include "http_probe.h"

namespace poolguard::runtime {
namespace {

using namespace std::chrono_literals;
using testing::FakeClient;
using testing::listPage;
using testing::object;
using testing::WatchScript;

ManagerOptions quietOptions() {
  ManagerOptions o;
  o.healthHost = "127.0.0.1";
  o.healthPort = 0;
  o.metricsBindAddress = "";
  o.cacheSyncTimeout = 5s;
  return o;
}

InformerOptions configMaps() {
  InformerOptions o;
  o.resource = {"", "v1", "configmaps", "ConfigMap", true};
  return o;
}

TEST(Manager, ReconcilesCachedObjectsUntilStopped) {
  FakeClient client;
  client.pushList(listPage({object("a", "x", "1"), object("a", "y", "2")}, "3"));
  client.pushWatch(WatchScript{});
  Manager m(client, quietOptions());
  Informer& inf = m.addInformer(configMaps());
  std::mutex mu;
  std::set<std::string> reconciled;
  ControllerOptions co;
  co.name = "manager-test";
  Controller& c = m.addController(co, [&](const std::string& key) -> Result<ReconcileResult> {
    // Level-based: the reconciler reads the cache by key.
    EXPECT_TRUE(inf.store().get(key)) << key;
    std::lock_guard l(mu);
    reconciled.insert(key);
    return ReconcileResult{};
  });
  inf.addHandlers(enqueueKeys(c.queue()));
  std::stop_source stop;
  auto done = std::async(std::launch::async, [&] { return m.run(stop.get_token()); });
  for (int i = 0; i < 2000; ++i) {
    {
      std::lock_guard l(mu);
      if (reconciled.size() == 2) break;
    }
    std::this_thread::sleep_for(1ms);
  }
  {
    std::lock_guard l(mu);
    EXPECT_EQ(reconciled, (std::set<std::string>{"a/x", "a/y"}));
  }
  stop.request_stop();
  ASSERT_EQ(done.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(done.get().ok());
}

// The rule of /healthz: a watch that stops advancing (a blocked connection) or a reconcile that never ends fails
// liveness, so the kubelet restarts the pod; both are fine until their limits pass.
TEST(Manager, LivenessFailsWhenAWatchOrAWorkerIsStuck) {
  FakeClient client;
  client.pushList(listPage({object("a", "x", "1")}, "2"));
  client.pushWatch(WatchScript{});  // opens, then never sends a byte: a hung watch
  ManagerOptions opts = quietOptions();
  opts.watchStallMargin = 1s;
  opts.maxReconcileDuration = 2s;
  Manager m(client, opts);
  InformerOptions io = configMaps();
  io.minWatchTimeout = 1s;
  io.maxWatchTimeout = 1s;
  Informer& inf = m.addInformer(io);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> reconciling{false};
  ControllerOptions co;
  co.name = "liveness-test";
  Controller& c = m.addController(co, [&](const std::string&) -> Result<ReconcileResult> {
    reconciling = true;
    released.wait();  // a reconcile that hangs
    return ReconcileResult{};
  });
  inf.addHandlers(enqueueKeys(c.queue()));
  std::stop_source stop;
  auto done = std::async(std::launch::async, [&] { return m.run(stop.get_token()); });
  for (int i = 0; i < 5000 && (m.health().port() == 0 || !reconciling); ++i) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(reconciling);
  auto [early, earlyBody] = httpGet(m.health().port(), "/healthz");
  EXPECT_EQ(early, 200) << "within its limits nothing is stuck yet: " << earlyBody;

  std::string body;
  for (int i = 0; i < 100; ++i) {
    auto [code, text] = httpGet(m.health().port(), "/healthz");
    body = text;
    if (code == 503 && body.find("[-]workers-progressing") != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_NE(body.find("[-]watches-progressing failed"), std::string::npos) << body;
  EXPECT_NE(body.find("[-]workers-progressing failed"), std::string::npos) << body;

  release.set_value();
  stop.request_stop();
  EXPECT_EQ(done.wait_for(10s), std::future_status::ready);
}

TEST(Manager, FailsWhenCachesDoNotSync) {
  FakeClient client;  // no list scripted: every list fails
  auto o = quietOptions();
  o.cacheSyncTimeout = 100ms;
  Manager m(client, o);
  m.addInformer(configMaps());
  auto s = m.run(std::stop_token{});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kTimeout);
}

TEST(Manager, WithLeaderElectionReconcilesOnlyWhileLeadingAndReleasesOnStop) {
  FakeClient client;
  client.pushList(listPage({object("a", "x", "1")}, "3"));
  client.pushWatch(WatchScript{});
  auto o = quietOptions();
  LeaderElectionConfig le;
  le.leaseNamespace = "ops";
  le.leaseName = "poolguard";
  le.identity = "me";
  o.leaderElection = le;
  Manager m(client, o);
  Informer& inf = m.addInformer(configMaps());
  std::atomic<int> reconciles{0};
  ControllerOptions co;
  co.name = "manager-le-test";
  Controller& c = m.addController(co, [&](const std::string&) -> Result<ReconcileResult> {
    ++reconciles;
    return ReconcileResult{};
  });
  inf.addHandlers(enqueueKeys(c.queue()));
  std::stop_source stop;
  auto done = std::async(std::launch::async, [&] { return m.run(stop.get_token()); });
  for (int i = 0; i < 2000 && reconciles.load() == 0; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(reconciles.load(), 1);
  const kube::Resource leases{"coordination.k8s.io", "v1", "leases", "Lease", true};
  EXPECT_EQ(client.stored(leases, "ops", "poolguard").value()["spec"]["holderIdentity"], "me");
  stop.request_stop();
  ASSERT_EQ(done.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(done.get().ok());
  EXPECT_EQ(client.stored(leases, "ops", "poolguard").value()["spec"]["holderIdentity"], "");
}

}  // namespace
}  // namespace poolguard::runtime
