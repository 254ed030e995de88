#include "offline/status_view.h"

#include <gtest/gtest.h>

#include <sstream>

#include "../runtime/fake_client.h"

namespace poolguard::offline {
namespace {

using json = nlohmann::json;

// Statuses as the operator writes them (operator/controller/status.cpp and budget_status.cpp).
json budget() {
  return json::parse(R"json({
    "apiVersion": "poolguard.dev/v1alpha1", "kind": "ClusterConnectionBudget",
    "metadata": {"name": "orders", "generation": 2},
    "spec": {"reservedConnections": 10},
    "status": {
      "observedGeneration": 2, "maxConnections": 300, "available": 290, "steadyState": 76, "worstCase": 184,
      "policies": 2,
      "allocations": [{"name": "payments", "worstCase": 120, "maxConnections": 100, "namespaces": 1}],
      "unallocated": {"worstCase": 64, "namespaces": 1},
      "usage": {"source": "postgres", "lastCheckTime": "2026-11-30T09:12:40Z", "serverMaxConnections": 300,
                "connections": 57, "governed": 42, "ungovernedConnections": 3, "leakedSessions": 1,
                "ungoverned": [{"applicationName": "psql", "user": "dba", "clientAddress": "10.0.0.5",
                                "connections": 3}]},
      "topWorkloads": [{"kind": "Deployment", "namespace": "pay", "name": "ledger", "policy": "pay/ledger",
                        "worstCase": 120}],
      "conditions": [
        {"type": "WithinBudget", "status": "False", "reason": "BudgetExceeded",
         "message": "over budget: allocation payments: worst case 120 against its 100"},
        {"type": "UsageHealthy", "status": "True", "reason": "Healthy", "message": "ok"},
        {"type": "Ready", "status": "False", "reason": "BudgetExceeded", "message": "over budget"},
        {"type": "Stalled", "status": "True", "reason": "BudgetExceeded",
         "message": "WithinBudget is False and needs a change to clear: over budget"}]}})json");
}

json policy(const std::string& ns, const std::string& name, const std::string& database) {
  json p = json::parse(R"json({
    "apiVersion": "poolguard.dev/v1alpha1", "kind": "ConnectionPoolPolicy",
    "metadata": {"generation": 3},
    "spec": {"database": {"name": "x"}},
    "status": {"observedGeneration": 3,
      "budget": {"maxConnections": 300, "reservedConnections": 10, "available": 290, "steadyState": 76,
                 "worstCase": 184},
      "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "fine"}]}})json");
  p["metadata"]["namespace"] = ns;
  p["metadata"]["name"] = name;
  p["spec"]["database"]["name"] = database;
  p["status"]["budget"]["database"] = database;
  return p;
}

StatusObjects objects() {
  StatusObjects o;
  o.budgets.push_back(budget());
  json ledger = policy("pay", "ledger", "orders");
  ledger["status"]["workloadStatuses"] = json::parse(R"json([
    {"kind": "Deployment", "name": "ledger", "state": "Applied", "connections": 30, "worstCase": 120}])json");
  json shop = policy("shop", "orders-api", "orders");
  shop["status"]["usage"] = json::parse(R"json({"connections": 12, "idleInTransaction": 2,
    "oldestIdleInTransactionSeconds": 312, "lastCheckTime": "2026-11-30T09:12:50Z"})json");
  shop["status"]["workloadStatuses"] = json::parse(R"json([
    {"kind": "Deployment", "name": "orders-api", "state": "Applied", "connections": 12, "worstCase": 40},
    {"kind": "StatefulSet", "name": "orders-db-sync", "state": "Applied", "worstCase": 24}])json");
  shop["status"]["conditions"] = json::parse(R"json([
    {"type": "UsageHealthy", "status": "False", "reason": "LeakSuspected",
     "message": "shop/orders-api: 2 sessions idle in transaction longer than 1m0s"},
    {"type": "Ready", "status": "False", "reason": "NotReady", "message": "not ready: UsageHealthy (LeakSuspected)"},
    {"type": "Stalled", "status": "True", "reason": "LeakSuspected",
     "message": "UsageHealthy is False and needs a change to clear: shop/orders-api: 2 sessions"}])json");
  o.policies.push_back(ledger);
  o.policies.push_back(shop);
  // Another database, without a budget or usage; and a policy poolguard has not observed yet.
  json other = policy("shop", "search", "search");
  other["status"]["budget"]["worstCase"] = 30;
  other["status"]["budget"]["available"] = 97;
  other["status"]["budget"]["maxConnections"] = 100;
  other["status"]["budget"]["reservedConnections"] = 3;
  o.policies.push_back(other);
  json fresh = policy("shop", "fresh", "search");
  fresh["status"] = {{"observedGeneration", -1}};
  fresh["metadata"]["generation"] = 1;
  o.policies.push_back(fresh);
  return o;
}

Clock::time_point at(const std::string& rfc3339) {
  Clock::time_point t;
  EXPECT_TRUE(parseRfc3339(rfc3339, t));
  return t;
}

const json& database(const json& view, const std::string& name) {
  for (const auto& d : view["databases"]) {
    if (d["name"] == name) return d;
  }
  static const json none = json::object();
  ADD_FAILURE() << "no database " << name << " in " << view.dump(2);
  return none;
}

TEST(StatusView, OneEntryPerDatabaseWithCapacityAllocationsLiveUsageAndLeaks) {
  const json view = statusView(objects(), {}, at("2026-11-30T09:13:00Z"));
  ASSERT_EQ(view["databases"].size(), 2u) << view.dump(2);
  const json& orders = database(view, "orders");
  EXPECT_EQ(orders["budget"], "orders");
  EXPECT_EQ(orders["capacity"], (json{{"maxConnections", 300}, {"available", 290}, {"reservedConnections", 10}}));
  EXPECT_EQ(orders["worstCase"], 184);
  EXPECT_EQ(orders["fits"], true);
  EXPECT_EQ(orders["ready"], false);
  ASSERT_EQ(orders["allocations"].size(), 2u);
  EXPECT_EQ(orders["allocations"][0]["name"], "payments");
  EXPECT_EQ(orders["allocations"][0]["over"], true);
  EXPECT_EQ(orders["allocations"][1]["name"], "(unallocated)");
  EXPECT_EQ(orders["allocations"][1]["over"], false);
  // The budget's central check counts the governed sessions; the latest check of any object dates the view.
  EXPECT_EQ(orders["live"]["serverConnections"], 57);
  EXPECT_EQ(orders["live"]["governedConnections"], 42);
  EXPECT_EQ(orders["live"]["ungovernedConnections"], 3);
  EXPECT_EQ(orders["live"]["serverPercent"], 19);
  EXPECT_EQ(orders["live"]["lastCheckTime"], "2026-11-30T09:12:50Z");
  EXPECT_EQ(orders["live"]["checkedSecondsAgo"], 10);
  EXPECT_EQ(orders["leaks"]["idleInTransaction"], 2);
  EXPECT_EQ(orders["leaks"]["oldestIdleInTransactionSeconds"], 312);
  EXPECT_EQ(orders["leaks"]["leakedSessions"], 1);
  ASSERT_EQ(orders["ungoverned"].size(), 1u);
  EXPECT_EQ(orders["ungoverned"][0]["applicationName"], "psql");
  // Findings: the budget's allocation over, the policy's leak.
  ASSERT_EQ(orders["findings"].size(), 2u) << orders["findings"].dump(2);
  EXPECT_EQ(orders["findings"][0]["object"], "ClusterConnectionBudget orders");
  EXPECT_EQ(orders["findings"][0]["reason"], "BudgetExceeded");
  EXPECT_EQ(orders["findings"][1]["object"], "ConnectionPoolPolicy shop/orders-api");
  EXPECT_EQ(orders["findings"][1]["reason"], "LeakSuspected");
}

TEST(StatusView, TopWorkloadsByConnectionsThenWorstCaseAndEachObjectsState) {
  StatusOptions opts;
  opts.top = 2;
  const json view = statusView(objects(), opts, at("2026-11-30T09:13:00Z"));
  const json& orders = database(view, "orders");
  EXPECT_EQ(orders["workloads"], 3);
  ASSERT_EQ(orders["topWorkloads"].size(), 2u);
  EXPECT_EQ(orders["topWorkloads"][0]["name"], "ledger");
  EXPECT_EQ(orders["topWorkloads"][0]["namespace"], "pay") << "a namespaced policy's workloads are in its namespace";
  EXPECT_EQ(orders["topWorkloads"][0]["policy"], "pay/ledger");
  EXPECT_EQ(orders["topWorkloads"][1]["name"], "orders-api");
  EXPECT_EQ(orders["topWorkloads"][1]["worstCase"], 40);

  std::map<std::string, std::string> states;
  for (const auto& o : orders["objects"]) states[o["object"]] = o.value("state", "") + " " + o.value("reason", "");
  EXPECT_EQ(states["ClusterConnectionBudget orders"], "Stalled BudgetExceeded");
  EXPECT_EQ(states["ConnectionPoolPolicy shop/orders-api"], "Stalled LeakSuspected");
  EXPECT_EQ(states["ConnectionPoolPolicy pay/ledger"], "Ready Ready");

  const json& search = database(view, "search");
  EXPECT_FALSE(search.contains("budget"));
  EXPECT_EQ(search["capacity"]["available"], 97);
  EXPECT_EQ(search["worstCase"], 30);
  EXPECT_FALSE(search.contains("ungoverned")) << "only a budget's check lists the clients no policy governs";
  std::map<std::string, std::string> searchStates;
  for (const auto& o : search["objects"]) searchStates[o["object"]] = o.value("state", "");
  EXPECT_EQ(searchStates["ConnectionPoolPolicy shop/fresh"], "NotObserved");
  EXPECT_EQ(search["ready"], false) << "a policy not observed yet is not ready";
}

TEST(StatusView, OneDatabaseAndMalformedObjects) {
  StatusOptions opts;
  opts.database = "search";
  StatusObjects o = objects();
  // What a reader gets from an API server is never trusted to have a shape: a status of the wrong type, a
  // condition list that is not one, a workload entry that is a string.
  json odd = policy("x", "odd", "search");
  odd["status"]["conditions"] = "garbage";
  odd["status"]["workloadStatuses"] = json::array({"garbage", 7});
  odd["status"]["budget"] = 5;
  o.policies.push_back(odd);
  o.policies.push_back(json::array());
  const json view = statusView(o, opts, at("2026-11-30T09:13:00Z"));
  ASSERT_EQ(view["databases"].size(), 1u);
  EXPECT_EQ(view["databases"][0]["name"], "search");
  std::ostringstream text;
  printStatusText(view, text);
  EXPECT_NE(text.str().find("DATABASE search: NOT READY"), std::string::npos) << text.str();

  opts.database = "nothing";
  const json none = statusView(o, opts, at("2026-11-30T09:13:00Z"));
  EXPECT_TRUE(none["databases"].empty());
  EXPECT_EQ(none["notes"][0], "no policy or ClusterConnectionBudget names database nothing");
}

TEST(StatusView, TextAnswersTheRunbooksFirstQuestions) {
  const json view = statusView(objects(), {}, at("2026-11-30T09:13:00Z"));
  std::ostringstream out;
  printStatusText(view, out);
  const std::string text = out.str();
  for (const char* expected :
       {"DATABASE orders: NOT READY (ClusterConnectionBudget orders)",
        "capacity:     290 available (max_connections 300 - 10 reserved)",
        "worst case:   184 of 290 (63%), steady state 76", "allocations:  payments 120/100 OVER; (unallocated) 64/-",
        "live:         57 on the server (19% of max_connections 300); 42 from governed workloads, 3 ungoverned; "
        "checked "
        "10s ago",
        "leaks:        2 sessions idle in transaction now, the oldest for 312s; 1 past terminateLeaked's age",
        "ConnectionPoolPolicy shop/orders-api  LeakSuspected", "Deployment pay/ledger", "psql",
        "ConnectionPoolPolicy shop/fresh", "NotObserved"}) {
    EXPECT_NE(text.find(expected), std::string::npos) << expected << "\n" << text;
  }
}

TEST(StatusView, TextShortensLongMessagesAndJsonKeepsThemWhole) {
  StatusObjects o = objects();
  const std::string longMessage = "1 of 1 workloads differ from the policy: " + std::string(400, 'x');
  o.policies[0]["status"]["conditions"] =
      json::array({{{"type", "Applied"}, {"status", "False"}, {"reason", "Drifted"}, {"message", longMessage}}});
  const json view = statusView(o, {}, at("2026-11-30T09:13:00Z"));
  EXPECT_EQ(database(view, "orders")["findings"][1]["message"], longMessage);
  std::ostringstream out;
  printStatusText(view, out);
  std::istringstream lines(out.str());
  std::string line;
  bool shortened = false;
  while (std::getline(lines, line)) {
    if (line.find("Drifted") == std::string::npos) continue;
    EXPECT_LT(line.size(), 220u) << line;
    shortened = shortened || line.ends_with("xxx...");
  }
  EXPECT_TRUE(shortened) << out.str();
}

TEST(StatusView, UnknownIsNotNoneAWorkloadCountsOnceAndTheCapacityFiguresAgree) {
  StatusObjects o = objects();
  // The budget's last check could not read the server: who else holds connections is unknown, not "none".
  o.budgets[0]["status"]["usage"] = {{"source", "postgres"}, {"lastCheckTime", "2026-11-30T09:12:40Z"}};
  // A losing policy lists the workload it loses; the winner lists it too.
  o.policies[0]["status"]["workloadStatuses"].push_back(
      {{"kind", "Deployment"}, {"name", "orders-api"}, {"namespace", "shop"}, {"state", "Conflicted"}});
  // Two statuses of one database written moments apart: the figures shown come from one of them.
  o.policies[3]["status"]["budget"] = {
      {"database", "search"}, {"maxConnections", 90}, {"reservedConnections", 5}, {"available", 85}, {"worstCase", 10}};
  const json view = statusView(o, {}, at("2026-11-30T09:13:00Z"));
  const json& orders = database(view, "orders");
  EXPECT_FALSE(orders.contains("ungoverned")) << orders.dump(2);
  std::ostringstream text;
  printStatusText(view, text);
  EXPECT_NE(text.str().find("ungoverned clients: unknown"), std::string::npos) << text.str();
  EXPECT_EQ(orders["workloads"], 3) << "the conflicted entry is the winner's workload, counted once";
  const json& search = database(view, "search");
  EXPECT_EQ(search["capacity"], (json{{"available", 85}, {"maxConnections", 90}, {"reservedConnections", 5}}));
  EXPECT_EQ(search["worstCase"], 30) << "the largest worst case of the statuses";
}

TEST(StatusView, AKindTheReaderMayNotListIsANoteAnyOtherFailureAnError) {
  runtime::testing::FakeClient client;
  client.pushList(Error(ErrorCode::kForbidden, "clusterconnectionbudgets is forbidden"));
  client.pushList(json{{"items", json::array()}, {"metadata", json::object()}});
  client.pushList(json{{"items", json::array({policy("shop", "search", "search")})}, {"metadata", json::object()}});
  auto read = readStatusObjects(client, "shop");
  ASSERT_TRUE(read.ok()) << read.error().message();
  EXPECT_TRUE(read->budgets.empty());
  EXPECT_EQ(read->policies.size(), 1u);
  ASSERT_EQ(read->notes.size(), 1u);
  EXPECT_NE(read->notes[0].find("status needs list on it"), std::string::npos) << read->notes[0];

  runtime::testing::FakeClient broken;
  broken.pushList(Error(ErrorCode::kUnavailable, "connection refused"));
  auto failed = readStatusObjects(broken, "");
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message().find("connection refused"), std::string::npos);
}

}  // namespace
}  // namespace poolguard::offline
