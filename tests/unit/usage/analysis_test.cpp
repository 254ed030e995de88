#include "usage/analysis.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace poolguard::usage {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

GovernedWorkload workload(std::string name, int32_t pods, int32_t maxSize, int32_t processes = 1) {
  GovernedWorkload w;
  w.namespace_ = "ns1";
  w.name = name;
  w.applicationName = "ns1/" + name;
  w.podsNow = pods;
  w.podsMax = pods;
  w.maxSize = maxSize;
  w.processesPerPod = processes;
  return w;
}

class AnalysisTest : public ::testing::Test {
 protected:
  ManualClock clock;
  ServerSnapshot snap;
  AnalysisInput in;

  void SetUp() override {
    snap.readAt = clock.now();
    snap.maxConnections = 100;
    snap.reservedConnections = 3;
    in.workloads = {workload("app", 2, 10)};
    in.thresholds.idleInTransaction = 60s;
    in.thresholds.saturationPercent = 90;
  }

  void sessions(const std::string& app, const std::string& state, int32_t n) {
    snap.byApplication[app].countByState[state] += n;
  }
  // An idle-in-transaction session that entered the state `age` before the clock's current time.
  void leakedSession(const std::string& app, std::chrono::seconds age) {
    sessions(app, kStateIdleInTransaction, 1);
    snap.byApplication[app].idleInTransactionSince.push_back(clock.now() - age);
  }
  AnalysisResult run() {
    in.postgres = SourceOutcome<ServerSnapshot>::of(snap);
    in.now = clock.now();
    return analyze(in);
  }
};

TEST_F(AnalysisTest, NothingConfiguredIsUnknownNotConfigured) {
  AnalysisInput empty;
  auto r = analyze(empty);
  EXPECT_EQ(r.condition.status, ConditionStatus::kUnknown);
  EXPECT_EQ(r.condition.reason, "NotConfigured");
  EXPECT_FALSE(r.usage.lastCheckTime);
}

TEST_F(AnalysisTest, HealthyReportsUsageOfGovernedWorkloadsOnly) {
  sessions("ns1/app", kStateActive, 3);
  sessions("ns1/app", kStateIdle, 5);
  sessions("other/app", kStateIdle, 40);  // not governed: counts for the server, not for the policy
  sessions("", kStateActive, 1);
  auto r = run();
  EXPECT_EQ(r.condition.status, ConditionStatus::kTrue);
  EXPECT_EQ(r.condition.reason, "Healthy");
  EXPECT_EQ(r.usage.source, "postgres");
  EXPECT_EQ(r.usage.connections, 8);
  EXPECT_EQ(r.usage.active, 3);
  EXPECT_EQ(r.usage.idle, 5);
  EXPECT_EQ(r.usage.idleInTransaction, 0);
  EXPECT_FALSE(r.usage.oldestIdleInTransactionSeconds);
  EXPECT_EQ(r.usage.serverMaxConnections, 100);
  EXPECT_EQ(r.usage.lastCheckTime, clock.now());
  EXPECT_EQ(r.databaseConnections, 49);
  ASSERT_EQ(r.workloads.size(), 1u);
  EXPECT_EQ(r.workloads[0].connections, 8);
  EXPECT_EQ(r.workloads[0].allowedConnections, 20);
}

TEST_F(AnalysisTest, WorkloadWithoutSessionsHasZeroConnections) {
  sessions("ns1/other", kStateIdle, 4);
  auto r = run();
  EXPECT_EQ(r.workloads[0].connections, 0);
  EXPECT_EQ(r.condition.reason, "Healthy");
}

TEST_F(AnalysisTest, IdleInTransactionBecomesALeakOnlyPastTheThreshold) {
  leakedSession("ns1/app", 30s);
  auto r = run();
  EXPECT_EQ(r.condition.reason, "Healthy");
  EXPECT_EQ(r.usage.idleInTransaction, 1);
  EXPECT_EQ(r.usage.oldestIdleInTransactionSeconds, 30);

  clock.advance(30s);  // exactly the threshold: not longer than it
  r = run();
  EXPECT_EQ(r.condition.reason, "Healthy");

  clock.advance(5s);
  r = run();
  EXPECT_EQ(r.condition.status, ConditionStatus::kFalse);
  EXPECT_EQ(r.condition.reason, "LeakSuspected");
  EXPECT_THAT(r.condition.message, HasSubstr("ns1/app: 1 session idle in transaction longer than 1m0s"));
  EXPECT_THAT(r.condition.message, HasSubstr("oldest 1m5s"));
  EXPECT_EQ(r.usage.oldestIdleInTransactionSeconds, 65);
  EXPECT_EQ(r.workloads[0].idleInTransactionOverThreshold, 1);
}

TEST_F(AnalysisTest, LeakCountsEverySessionPastTheThresholdAndTheAbortedState) {
  leakedSession("ns1/app", 200s);
  leakedSession("ns1/app", 90s);
  leakedSession("ns1/app", 10s);
  sessions("ns1/app", kStateIdleInTransactionAborted, 1);
  snap.byApplication["ns1/app"].idleInTransactionSince.push_back(clock.now() - 70s);
  auto r = run();
  EXPECT_EQ(r.condition.reason, "LeakSuspected");
  EXPECT_THAT(r.condition.message, HasSubstr("3 sessions idle in transaction"));
  EXPECT_THAT(r.condition.message, HasSubstr("oldest 3m20s"));
  EXPECT_EQ(r.usage.idleInTransaction, 4);
}

TEST_F(AnalysisTest, LeaksOfUngovernedApplicationsAreNotAttributed) {
  leakedSession("ns2/app", 3600s);
  leakedSession("psql", 3600s);
  auto r = run();
  EXPECT_EQ(r.condition.reason, "Healthy");
  EXPECT_EQ(r.usage.idleInTransaction, 0);
}

TEST_F(AnalysisTest, ExceedsPolicyAboveCurrentPodsTimesMaxSizeTimesProcesses) {
  in.workloads = {workload("app", 2, 5, 2)};  // 20 allowed
  sessions("ns1/app", kStateIdle, 20);
  EXPECT_EQ(run().condition.reason, "Healthy");
  sessions("ns1/app", kStateActive, 1);
  auto r = run();
  EXPECT_EQ(r.condition.reason, "ExceedsPolicy");
  EXPECT_THAT(r.condition.message, HasSubstr("ns1/app holds 21 connections"));
  EXPECT_THAT(r.condition.message, HasSubstr("20 = 2 pods x maxSize 5 x 2 processes per pod"));
}

TEST_F(AnalysisTest, ExceedsPolicyUsesCurrentPodsNotHpaHeadroom) {
  in.workloads = {workload("app", 2, 5)};
  in.workloads[0].podsMax = 10;
  sessions("ns1/app", kStateIdle, 11);
  EXPECT_EQ(run().condition.reason, "ExceedsPolicy");
}

TEST_F(AnalysisTest, RolloutSurgeAndDrainingPodsAreAllowed) {
  in.workloads = {workload("app", 2, 5)};
  in.workloads[0].surge = 1;
  sessions("ns1/app", kStateIdle, 15);
  EXPECT_EQ(run().condition.reason, "Healthy");

  in.workloads[0].surge = 0;
  in.workloads[0].podsObserved = 3;  // an old pod still draining
  EXPECT_EQ(run().condition.reason, "Healthy");

  in.workloads[0].podsObserved = 2;
  auto r = run();
  EXPECT_EQ(r.condition.reason, "ExceedsPolicy");
}

TEST_F(AnalysisTest, SaturatedAtThePercentOfUsableConnections) {
  snap.maxConnections = 20;  // usable 17; 90% of it is 15.3
  in.workloads = {workload("app", 10, 10)};
  sessions("ns1/app", kStateIdle, 10);
  sessions("someone-else", kStateIdle, 5);
  EXPECT_EQ(run().condition.reason, "Healthy");
  sessions("someone-else", kStateActive, 1);
  auto r = run();
  EXPECT_EQ(r.condition.reason, "Saturated");
  EXPECT_THAT(r.condition.message, HasSubstr("database at 16 of 17 usable connections"));
  EXPECT_THAT(r.condition.message, HasSubstr("max_connections 20"));
}

TEST_F(AnalysisTest, SaturationUsesTheLargerOfServerAndPolicyReservations) {
  snap.maxConnections = 20;
  snap.reservedConnections = 6;  // e.g. reserved_connections on PostgreSQL 16
  in.declaredReservedConnections = 3;
  in.thresholds.saturationPercent = 100;
  in.workloads = {workload("app", 10, 10)};
  sessions("ns1/app", kStateIdle, 14);
  auto r = run();
  EXPECT_EQ(r.condition.reason, "Saturated");
  EXPECT_THAT(r.condition.message, HasSubstr("6 reserved"));
}

TEST_F(AnalysisTest, PrecedenceIsLeakThenExhaustedThenExceedsThenSaturatedAndAllAreListed) {
  snap.maxConnections = 20;
  in.workloads = {workload("app", 1, 5), workload("web", 1, 5)};
  leakedSession("ns1/app", 120s);
  sessions("ns1/app", kStateIdle, 9);  // 10 > 5: exceeds; 19 in total: saturated
  sessions("ns1/web", kStateIdle, 5);
  sessions("other", kStateIdle, 4);
  PrometheusValues prom{{"ns1/web", {5.0, 3.0}}};
  in.prometheus = SourceOutcome<PrometheusValues>::of(prom);
  auto r = run();
  EXPECT_EQ(r.condition.status, ConditionStatus::kFalse);
  EXPECT_EQ(r.condition.reason, "LeakSuspected");
  EXPECT_EQ(r.findings, (std::vector<Finding>{Finding::kLeakSuspected, Finding::kPoolExhausted, Finding::kExceedsPolicy,
                                              Finding::kSaturated}));
  const auto& m = r.condition.message;
  auto leak = m.find("idle in transaction"), pending = m.find("3 requests waiting"),
       exceeds = m.find("holds 10 connections"), saturated = m.find("database at 19");
  ASSERT_NE(leak, std::string::npos) << m;
  ASSERT_NE(pending, std::string::npos) << m;
  ASSERT_NE(exceeds, std::string::npos) << m;
  ASSERT_NE(saturated, std::string::npos) << m;
  EXPECT_LT(leak, pending);
  EXPECT_LT(pending, exceeds);
  EXPECT_LT(exceeds, saturated);
  EXPECT_EQ(r.usage.source, "postgres+prometheus");

  // Without the leak the next finding leads.
  snap.byApplication["ns1/app"].idleInTransactionSince.clear();
  snap.byApplication["ns1/app"].countByState.erase(kStateIdleInTransaction);
  sessions("ns1/app", kStateIdle, 1);
  EXPECT_EQ(run().condition.reason, "PoolExhausted");
  in.prometheus = SourceOutcome<PrometheusValues>::notConfigured();
  EXPECT_EQ(run().condition.reason, "ExceedsPolicy");
}

TEST_F(AnalysisTest, PostgresFailureIsUnknownUsageUnavailableWithWhatFailed) {
  in.postgres = SourceOutcome<ServerSnapshot>::of(
      Error(ErrorCode::kUnauthorized, "postgres db.example:5432: password authentication failed for user monitor"));
  in.now = clock.now();
  auto r = analyze(in);
  EXPECT_EQ(r.condition.status, ConditionStatus::kUnknown);
  EXPECT_EQ(r.condition.reason, "UsageUnavailable");
  EXPECT_EQ(r.condition.message, "postgres db.example:5432: password authentication failed for user monitor");
  EXPECT_EQ(r.usage.source, "");
  EXPECT_FALSE(r.usage.connections);
  EXPECT_TRUE(r.postgresNeedsChange) << "refused credentials: the next check fails the same way";
}

TEST_F(AnalysisTest, OnlyAFailureTheNextCheckCannotCureNeedsAChange) {
  in.now = clock.now();
  for (auto [code, needsChange] : {std::pair{ErrorCode::kUnavailable, false},
                                   {ErrorCode::kTimeout, false},
                                   {ErrorCode::kForbidden, true},
                                   {ErrorCode::kNotFound, true},
                                   {ErrorCode::kInvalidArgument, true}}) {
    in.postgres = SourceOutcome<ServerSnapshot>::of(Error(code, "postgres db:5432: failed"));
    EXPECT_EQ(analyze(in).postgresNeedsChange, needsChange) << static_cast<int>(code);
  }
}

TEST_F(AnalysisTest, FindingsOfOneSourceStillReportWhenTheOtherFailed) {
  in.postgres = SourceOutcome<ServerSnapshot>::of(Error(ErrorCode::kUnavailable, "postgres db:5432: unreachable"));
  in.prometheus = SourceOutcome<PrometheusValues>::of(PrometheusValues{{"ns1/app", {4.0, 2.0}}});
  in.now = clock.now();
  auto r = analyze(in);
  EXPECT_EQ(r.condition.reason, "PoolExhausted");
  EXPECT_THAT(r.condition.message, HasSubstr("also unavailable: postgres db:5432: unreachable"));
  EXPECT_EQ(r.usage.source, "prometheus");
  EXPECT_EQ(r.usage.connections, 4);
}

TEST_F(AnalysisTest, PrometheusOnly) {
  in.workloads = {workload("app", 2, 10)};
  in.prometheus = SourceOutcome<PrometheusValues>::of(PrometheusValues{{"ns1/app", {12.0, 0.0}}});
  in.now = clock.now();
  auto r = analyze(in);
  EXPECT_EQ(r.condition.reason, "Healthy");
  EXPECT_EQ(r.usage.source, "prometheus");
  EXPECT_EQ(r.usage.connections, 12);
  EXPECT_FALSE(r.usage.serverMaxConnections);

  in.prometheus = SourceOutcome<PrometheusValues>::of(PrometheusValues{{"ns1/app", {21.0, 0.0}}});
  EXPECT_EQ(analyze(in).condition.reason, "ExceedsPolicy");
}

TEST_F(AnalysisTest, PrometheusWithoutAnySampleIsNoDataNotHealthy) {
  in.prometheus = SourceOutcome<PrometheusValues>::of(PrometheusValues{{"ns1/app", {}}});
  in.now = clock.now();
  auto r = analyze(in);
  EXPECT_EQ(r.condition.status, ConditionStatus::kUnknown);
  EXPECT_EQ(r.condition.reason, "UsageUnavailable");
  EXPECT_THAT(r.condition.message, HasSubstr("no samples"));
  EXPECT_FALSE(r.usage.connections);
}

TEST_F(AnalysisTest, PrometheusWithoutTheConnectionSeriesDoesNotClaimZeroConnections) {
  in.prometheus = SourceOutcome<PrometheusValues>::of(PrometheusValues{{"ns1/app", {std::nullopt, 0.0}}});
  in.now = clock.now();
  auto r = analyze(in);
  EXPECT_EQ(r.condition.reason, "Healthy");
  EXPECT_FALSE(r.usage.connections);
  EXPECT_EQ(r.condition.message, "no connection count reported yet for 1 workload");
}

TEST_F(AnalysisTest, PostgresCountWinsOverPrometheusForAttributableWorkloads) {
  sessions("ns1/app", kStateIdle, 3);
  in.prometheus = SourceOutcome<PrometheusValues>::of(PrometheusValues{{"ns1/app", {50.0, 0.0}}});
  auto r = run();
  EXPECT_EQ(r.workloads[0].connections, 3);
  EXPECT_EQ(r.condition.reason, "Healthy");

  in.workloads[0].applicationName = "";  // attribution disabled: Prometheus' count is all there is
  r = run();
  EXPECT_EQ(r.workloads[0].connections, 50);
  EXPECT_EQ(r.condition.reason, "ExceedsPolicy");
}

TEST_F(AnalysisTest, DeclaredMaxConnectionsMismatchIsFlagged) {
  in.declaredMaxConnections = 200;
  auto r = run();
  ASSERT_TRUE(r.maxConnectionsMismatch);
  EXPECT_THAT(*r.maxConnectionsMismatch, HasSubstr("200"));
  EXPECT_THAT(*r.maxConnectionsMismatch, HasSubstr("max_connections=100"));
  in.declaredMaxConnections = 100;
  EXPECT_FALSE(run().maxConnectionsMismatch);
}

TEST(FormatDuration, Compact) {
  EXPECT_EQ(formatDuration(std::chrono::seconds(0)), "0s");
  EXPECT_EQ(formatDuration(std::chrono::seconds(59)), "59s");
  EXPECT_EQ(formatDuration(std::chrono::seconds(125)), "2m5s");
  EXPECT_EQ(formatDuration(std::chrono::seconds(3603)), "1h0m3s");
}

TEST(UngovernedSessions, WhatNoGovernedWorkloadAccountsForLargestFirstAndCapped) {
  ServerSnapshot snap;
  snap.clients = {{"shop/web", "app", "10.0.0.1", 7},
                  {"psql", "alice", "10.0.0.9", 1},
                  {"", "batch", "10.0.0.5", 3},
                  {"psql", "bob", "10.0.0.8", 1}};
  for (int i = 0; i < 30; ++i) snap.clients.push_back({"tool-" + std::to_string(i), "x", "local", 1});
  GovernedWorkload web;
  web.applicationName = "shop/web";
  GovernedWorkload silent;  // application_name disabled: attributes nothing, and excludes nothing
  auto out = ungovernedSessions(snap, std::vector<GovernedWorkload>{web, silent});
  ASSERT_EQ(out.size(), 20u) << "at most 20 groups";
  EXPECT_EQ(out[0], (ClientSessions{"", "batch", "10.0.0.5", 3})) << "largest first; no application_name counts";
  EXPECT_EQ(out[1], (ClientSessions{"psql", "alice", "10.0.0.9", 1})) << "then by name, role";
  EXPECT_EQ(out[2], (ClientSessions{"psql", "bob", "10.0.0.8", 1}));
  for (const auto& c : out) EXPECT_NE(c.applicationName, "shop/web");
  EXPECT_EQ(ungovernedSessions(snap, std::vector<GovernedWorkload>{web}, 2).size(), 2u);
  // poolguard's own sessions (other checks of the server) are never listed; limit 0 lists every group.
  snap.clients.push_back({"poolguard", "monitor", "10.0.0.2", 9});
  auto all = ungovernedSessions(snap, std::set<std::string>{"shop/web"}, 0);
  EXPECT_EQ(all.size(), 33u);
  for (const auto& c : all) EXPECT_NE(c.applicationName, "poolguard");
}

}  // namespace
}  // namespace poolguard::usage
