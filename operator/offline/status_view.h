#pragma once
// `poolguard status`: per database, what poolguard's own objects say about it, in one view: capacity, allocations,
// worst case, live connections, leaks and saturation, the top workloads by connections and worst case, the clients
// no policy governs, and each policy's state. It reads the status the operator wrote (list on
// ConnectionPoolPolicies, ClusterConnectionPoolPolicies and ClusterConnectionBudgets): no Secret, no database
// connection, nothing the reader's own RBAC does not already show. docs/runbook.md starts with it.
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/result.h"
#include "kube/client.h"

namespace poolguard::offline {

// What the view is built from, as the API server returns it (status included).
struct StatusObjects {
  std::vector<nlohmann::json> budgets;          // ClusterConnectionBudgets
  std::vector<nlohmann::json> clusterPolicies;  // ClusterConnectionPoolPolicies
  std::vector<nlohmann::json> policies;         // ConnectionPoolPolicies
  // What could not be read, and what the view therefore lacks (a list the reader may not do, say).
  std::vector<std::string> notes;
};

struct StatusOptions {
  std::string database;  // only this database; "" for all
  size_t top = 10;       // workloads listed per database
};

// Lists the three kinds; `ns` limits the ConnectionPoolPolicies to one namespace ("" for all). A kind the reader
// may not list, or a cluster without its CRD, becomes a note; any other failure is an error.
Result<StatusObjects> readStatusObjects(kube::Client& client, const std::string& ns);

// The view: {"databases": [...], "notes": [...]}; docs/runbook.md ("poolguard status") describes each field.
// `now` dates the last checks ("checkedSecondsAgo").
nlohmann::json statusView(const StatusObjects& objects, const StatusOptions& opts, Clock::time_point now);

// The view as text: a block per database.
void printStatusText(const nlohmann::json& view, std::ostream& out);

struct StatusCommand {
  std::string kubeconfig, context;  // kube::loadDefault's search order
  std::string ns;                   // -n: only this namespace's ConnectionPoolPolicies
  std::string output = "text";      // text, json, yaml
  StatusOptions view;
  bool watch = false;
  int intervalSeconds = 5;
};

// `poolguard status`: prints the view once, or with `watch` again every interval until interrupted (text after a
// line with the time; json and yaml as one document per refresh). Exit 0 once printed, 2 when the cluster cannot be
// read (with watch: a failed refresh is reported and retried).
int runStatus(const StatusCommand& command, std::ostream& out, std::ostream& err);

}  // namespace poolguard::offline
