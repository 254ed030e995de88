#include "offline/status_view.h"

#include <algorithm>
#include <map>
#include <set>
#include <thread>
#include <tuple>

#include "kube/config.h"
#include "kube/rest_client.h"
#include "offline/text_table.h"
#include "offline/yaml_emit.h"

namespace poolguard::offline {

using json = nlohmann::json;

namespace {

// A member of an object, or null: what the API server returns is read without assuming its shape.
const json& member(const json& object, const char* key) {
  static const json none;
  if (!object.is_object()) return none;
  auto it = object.find(key);
  return it == object.end() ? none : *it;
}

std::string text(const json& object, const char* key) {
  const json& v = member(object, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

std::optional<int64_t> number(const json& object, const char* key) {
  const json& v = member(object, key);
  if (v.is_number_integer()) return v.get<int64_t>();
  return std::nullopt;
}

const json& condition(const json& object, const std::string& type) {
  static const json none = json::object();
  const json& conditions = member(member(object, "status"), "conditions");
  if (!conditions.is_array()) return none;
  for (const auto& c : conditions) {
    if (text(c, "type") == type) return c;
  }
  return none;
}

std::string objectLabel(const std::string& kind, const json& object) {
  const json& meta = member(object, "metadata");
  const std::string ns = text(meta, "namespace");
  return kind + " " + (ns.empty() ? "" : ns + "/") + text(meta, "name");
}

// The database a policy counts against: what the operator wrote, else what the spec names.
std::string databaseOf(const json& policy) {
  std::string db = text(member(member(policy, "status"), "budget"), "database");
  if (db.empty()) db = text(member(member(policy, "spec"), "database"), "name");
  return db;
}

// One policy or budget in the view's "objects" list: whether poolguard has observed it, and its state.
json objectState(const std::string& kind, const json& object) {
  json out{{"object", objectLabel(kind, object)}};
  const auto generation = number(member(object, "metadata"), "generation");
  const auto observed = number(member(object, "status"), "observedGeneration");
  if (!observed || (generation && *observed < *generation)) {
    out["state"] = "NotObserved";
    out["message"] = "poolguard has not observed generation " + (generation ? std::to_string(*generation) : "?") +
                     " yet" + (kind == "ClusterConnectionBudget" ? "" : " (or the policy is suspended)");
    return out;
  }
  for (const char* type : {"Stalled", "Reconciling"}) {
    const json& c = condition(object, type);
    if (text(c, "status") == "True") {
      out["state"] = std::string(type);
      out["reason"] = text(c, "reason");
      out["message"] = text(c, "message");
      return out;
    }
  }
  const json& ready = condition(object, "Ready");
  out["state"] = text(ready, "status") == "True" ? "Ready" : "NotReady";
  if (!text(ready, "reason").empty()) out["reason"] = text(ready, "reason");
  if (!text(ready, "message").empty()) out["message"] = text(ready, "message");
  return out;
}

// What an object reports that needs someone's attention: a usage finding, a budget that does not fit, a spec or a
// write that failed.
void addFindings(const std::string& kind, const json& object, json& findings) {
  for (const char* type : {"Accepted", "Applied", "WithinBudget", "UsageHealthy"}) {
    const json& c = condition(object, type);
    if (text(c, "status") != "False") continue;
    if (std::string(type) == "Applied" && text(c, "reason") == "Pending") continue;  // under way, not a finding
    findings.push_back({{"object", objectLabel(kind, object)},
                        {"condition", type},
                        {"reason", text(c, "reason")},
                        {"message", text(c, "message")}});
  }
}

struct Database {
  const json* budget = nullptr;
  std::vector<std::pair<std::string, const json*>> policies;  // kind, object
};

void addMax(json& out, const char* key, std::optional<int64_t> v) {
  if (!v) return;
  if (!out.contains(key) || out[key].get<int64_t>() < *v) out[key] = *v;
}

void addSum(json& out, const char* key, std::optional<int64_t> v) {
  if (!v) return;
  out[key] = out.value(key, int64_t{0}) + *v;
}

json databaseView(const std::string& name, const Database& d, const StatusOptions& opts, Clock::time_point now) {
  json out{{"name", name}};
  json capacity = json::object();
  json live = json::object();
  json leaks = json::object();
  json findings = json::array();
  json objects = json::array();
  std::optional<Clock::time_point> lastCheck;
  auto noteCheck = [&](const json& usage) {
    Clock::time_point t;
    if (parseRfc3339(text(usage, "lastCheckTime"), t) && (!lastCheck || t > *lastCheck)) lastCheck = t;
  };
  // Worst case by workload from the budget's own list, for policies whose status predates per-workload figures.
  std::map<std::tuple<std::string, std::string, std::string>, int64_t> budgetWorstCase;  // kind, namespace, name

  if (d.budget) {
    const json& b = *d.budget;
    const json& st = member(b, "status");
    out["budget"] = text(member(b, "metadata"), "name");
    if (auto v = number(st, "maxConnections")) capacity["maxConnections"] = *v;
    if (auto v = number(st, "available")) capacity["available"] = *v;
    if (auto v = number(st, "worstCase")) out["worstCase"] = *v;
    if (auto v = number(st, "steadyState")) out["steadyState"] = *v;
    json allocations = json::array();
    auto share = [&](const json& a, bool unallocated) {
      json s{{"name", unallocated ? "(unallocated)" : text(a, "name")}};
      if (auto v = number(a, "worstCase")) s["worstCase"] = *v;
      if (auto v = number(a, "maxConnections")) s["maxConnections"] = *v;
      if (auto v = number(a, "namespaces")) s["namespaces"] = *v;
      s["over"] = s.contains("maxConnections") && s.value("worstCase", int64_t{0}) > s["maxConnections"].get<int64_t>();
      allocations.push_back(std::move(s));
    };
    if (member(st, "allocations").is_array()) {
      for (const auto& a : member(st, "allocations")) share(a, false);
    }
    if (member(st, "unallocated").is_object()) share(member(st, "unallocated"), true);
    if (!allocations.empty()) out["allocations"] = std::move(allocations);
    const json& usage = member(st, "usage");
    if (usage.is_object()) {
      noteCheck(usage);
      if (auto v = number(usage, "connections")) live["serverConnections"] = *v;
      if (auto v = number(usage, "governed")) live["governedConnections"] = *v;
      if (auto v = number(usage, "ungovernedConnections")) live["ungovernedConnections"] = *v;
      if (auto v = number(usage, "serverMaxConnections")) live["serverMaxConnections"] = *v;
      addSum(leaks, "leakedSessions", number(usage, "leakedSessions"));
      addSum(leaks, "sessionsEnded", number(usage, "sessionsEnded"));
      // Only a check that read the server lists them: absent, they are unknown, not none.
      if (member(usage, "ungoverned").is_array()) {
        json ungoverned = json::array();
        for (const auto& c : member(usage, "ungoverned")) {
          ungoverned.push_back({{"applicationName", text(c, "applicationName")},
                                {"user", text(c, "user")},
                                {"clientAddress", text(c, "clientAddress")},
                                {"connections", number(c, "connections").value_or(0)}});
        }
        out["ungoverned"] = std::move(ungoverned);
      }
    }
    if (member(st, "topWorkloads").is_array()) {
      for (const auto& w : member(st, "topWorkloads")) {
        if (auto v = number(w, "worstCase"))
          budgetWorstCase[{text(w, "kind"), text(w, "namespace"), text(w, "name")}] = *v;
      }
    }
    addFindings("ClusterConnectionBudget", b, findings);
    objects.push_back(objectState("ClusterConnectionBudget", b));
  }

  json workloads = json::array();
  // The budget's central check counts every governed workload's sessions; without one, each policy's own check.
  const bool governedFromPolicies = !live.contains("governedConnections");
  for (const auto& [kind, p] : d.policies) {
    const json& st = member(*p, "status");
    const json& b = member(st, "budget");
    // Each policy reports the whole database's figures; statuses written moments apart may differ: the largest
    // worst case and the smallest capacity are shown.
    if (!d.budget) {
      addMax(out, "worstCase", number(b, "worstCase"));
      addMax(out, "steadyState", number(b, "steadyState"));
      // The capacity of one status, the one with the least available, so its three figures agree.
      if (auto v = number(b, "available"); v && (!capacity.contains("available") || *v < capacity["available"])) {
        capacity = json::object();
        capacity["available"] = *v;
        if (auto max = number(b, "maxConnections")) capacity["maxConnections"] = *max;
        if (auto reserved = number(b, "reservedConnections")) capacity["reservedConnections"] = *reserved;
      }
    }
    const json& usage = member(st, "usage");
    if (usage.is_object()) {
      noteCheck(usage);
      if (governedFromPolicies) addSum(live, "governedConnections", number(usage, "connections"));
      if (auto v = number(usage, "serverMaxConnections")) live["serverMaxConnections"] = *v;
      addSum(leaks, "idleInTransaction", number(usage, "idleInTransaction"));
      addMax(leaks, "oldestIdleInTransactionSeconds", number(usage, "oldestIdleInTransactionSeconds"));
      // A budget's check lists the sessions of every governed workload: the policies' own lists would count
      // them again.
      if (!d.budget) {
        addSum(leaks, "leakedSessions", number(usage, "leakedSessions"));
        addSum(leaks, "sessionsEnded", number(usage, "sessionsEnded"));
      }
    }
    const std::string policyNs = text(member(*p, "metadata"), "namespace");
    const std::string policy = (policyNs.empty() ? "" : policyNs + "/") + text(member(*p, "metadata"), "name");
    if (member(st, "workloadStatuses").is_array()) {
      for (const auto& w : member(st, "workloadStatuses")) {
        // A workload a higher policy governs is listed by that policy too: counted once, there.
        if (!w.is_object() || text(w, "state") == "Conflicted") continue;
        std::string ns = text(w, "namespace");
        if (ns.empty()) ns = policyNs;
        json row{{"kind", text(w, "kind")},
                 {"namespace", ns},
                 {"name", text(w, "name")},
                 {"policy", policy},
                 {"state", text(w, "state")}};
        if (auto v = number(w, "connections")) row["connections"] = *v;
        std::optional<int64_t> worst = number(w, "worstCase");
        if (!worst) {
          auto it = budgetWorstCase.find({text(w, "kind"), ns, text(w, "name")});
          if (it != budgetWorstCase.end()) worst = it->second;
        }
        if (worst) row["worstCase"] = *worst;
        workloads.push_back(std::move(row));
      }
    }
    addFindings(kind, *p, findings);
    objects.push_back(objectState(kind, *p));
  }
  if (capacity.contains("maxConnections") && capacity.contains("available") &&
      (d.budget || !capacity.contains("reservedConnections")))
    capacity["reservedConnections"] = capacity["maxConnections"].get<int64_t>() - capacity["available"].get<int64_t>();
  out["capacity"] = capacity;
  if (out.contains("worstCase") && capacity.contains("available"))
    out["fits"] = out["worstCase"].get<int64_t>() <= capacity["available"].get<int64_t>();
  if (lastCheck) {
    live["lastCheckTime"] = formatRfc3339(*lastCheck);
    live["checkedSecondsAgo"] =
        std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::seconds>(now - *lastCheck).count());
  }
  // Saturation: the server's connections (else the governed ones) against its max_connections.
  if (auto max = number(live, "serverMaxConnections"); max && *max > 0) {
    auto used = number(live, "serverConnections");
    if (!used) used = number(live, "governedConnections");
    if (used) live["serverPercent"] = (*used * 100) / *max;
  }
  out["live"] = live;
  out["leaks"] = leaks;
  out["findings"] = findings;

  std::sort(workloads.begin(), workloads.end(), [](const json& a, const json& b) {
    return std::make_tuple(-a.value("connections", int64_t{-1}), -a.value("worstCase", int64_t{-1}),
                           a.value("namespace", ""), a.value("name", "")) <
           std::make_tuple(-b.value("connections", int64_t{-1}), -b.value("worstCase", int64_t{-1}),
                           b.value("namespace", ""), b.value("name", ""));
  });
  out["workloads"] = workloads.size();
  if (workloads.size() > opts.top)
    workloads.erase(workloads.begin() + static_cast<std::ptrdiff_t>(opts.top), workloads.end());
  out["topWorkloads"] = std::move(workloads);
  out["objects"] = objects;
  bool ready = !objects.empty();
  for (const auto& o : objects) ready = ready && o.value("state", "") == "Ready";
  out["ready"] = ready;
  return out;
}

}  // namespace

Result<StatusObjects> readStatusObjects(kube::Client& client, const std::string& ns) {
  namespace r = kube::resources;
  StatusObjects out;
  struct Wanted {
    kube::Resource resource;
    std::vector<json>* into;
  };
  for (const auto& [resource, into] : {Wanted{r::clusterConnectionBudgets(), &out.budgets},
                                       Wanted{r::clusterConnectionPoolPolicies(), &out.clusterPolicies},
                                       Wanted{r::connectionPoolPolicies(), &out.policies}}) {
    kube::ListOptions opts;
    opts.limit = 500;
    auto listed = kube::listAll(client, resource, resource.namespaced ? ns : "", opts);
    if (listed.ok()) {
      *into = std::move(listed->items);
      continue;
    }
    const ErrorCode code = listed.error().code();
    if (code == ErrorCode::kForbidden || code == ErrorCode::kNotFound) {
      out.notes.push_back("cannot list " + resource.key() + ": " + listed.error().message() +
                          (code == ErrorCode::kForbidden ? " (the view lacks them: status needs list on it)"
                                                         : " (its CRD is not installed)"));
      continue;
    }
    return Error(code, "cannot list " + resource.key() + ": " + listed.error().message());
  }
  return out;
}

json statusView(const StatusObjects& objects, const StatusOptions& opts, Clock::time_point now) {
  std::map<std::string, Database> databases;
  for (const auto& b : objects.budgets) {
    const std::string name = text(member(b, "metadata"), "name");
    if (!name.empty()) databases[name].budget = &b;
  }
  for (const auto& p : objects.clusterPolicies) {
    const std::string db = databaseOf(p);
    if (!db.empty()) databases[db].policies.emplace_back("ClusterConnectionPoolPolicy", &p);
  }
  for (const auto& p : objects.policies) {
    const std::string db = databaseOf(p);
    if (!db.empty()) databases[db].policies.emplace_back("ConnectionPoolPolicy", &p);
  }
  json out{{"databases", json::array()}, {"notes", objects.notes}};
  for (const auto& [name, d] : databases) {
    if (!opts.database.empty() && name != opts.database) continue;
    out["databases"].push_back(databaseView(name, d, opts, now));
  }
  if (!opts.database.empty() && out["databases"].empty())
    out["notes"].push_back("no policy or ClusterConnectionBudget names database " + opts.database);
  return out;
}

namespace {

std::string numberOr(const json& object, const char* key, const std::string& fallback = "?") {
  auto v = number(object, key);
  return v ? std::to_string(*v) : fallback;
}

// Messages can list every workload: the text view keeps their start (-o json carries them whole).
std::string shorten(const std::string& message, size_t max = 140) {
  return message.size() <= max ? message : message.substr(0, max - 3) + "...";
}

std::string ago(int64_t seconds) {
  if (seconds < 120) return std::to_string(seconds) + "s ago";
  if (seconds < 7200) return std::to_string(seconds / 60) + "m ago";
  return std::to_string(seconds / 3600) + "h ago";
}

}  // namespace

void printStatusText(const json& view, std::ostream& out) {
  const json& databases = member(view, "databases");
  if (!databases.is_array() || databases.empty())
    out << "No database: no ConnectionPoolPolicy, ClusterConnectionPoolPolicy or ClusterConnectionBudget found.\n";
  bool first = true;
  for (const auto& d : databases.is_array() ? databases : json::array()) {
    if (!first) out << "\n";
    first = false;
    out << "DATABASE " << text(d, "name") << ": " << (member(d, "ready").get<bool>() ? "Ready" : "NOT READY");
    if (!text(d, "budget").empty()) out << " (ClusterConnectionBudget " << text(d, "budget") << ")";
    out << "\n";
    const json& cap = member(d, "capacity");
    std::vector<std::vector<std::string>> rows;
    rows.push_back({"capacity:", cap.contains("available")
                                     ? numberOr(cap, "available") + " available (max_connections " +
                                           numberOr(cap, "maxConnections") + " - " +
                                           numberOr(cap, "reservedConnections") + " reserved)"
                                     : "max_connections unknown"});
    std::string worst = numberOr(d, "worstCase");
    if (cap.contains("available") && d.contains("worstCase")) {
      const int64_t available = cap["available"].get<int64_t>();
      worst += " of " + std::to_string(available);
      if (available > 0) worst += " (" + std::to_string(d["worstCase"].get<int64_t>() * 100 / available) + "%)";
      if (!member(d, "fits").get<bool>()) worst += " OVER BUDGET";
    }
    worst += ", steady state " + numberOr(d, "steadyState");
    rows.push_back({"worst case:", worst});
    if (member(d, "allocations").is_array()) {
      std::string shares;
      for (const auto& a : member(d, "allocations")) {
        if (!shares.empty()) shares += "; ";
        shares += text(a, "name") + " " + numberOr(a, "worstCase") + "/" + numberOr(a, "maxConnections", "-") +
                  (member(a, "over").is_boolean() && a["over"].get<bool>() ? " OVER" : "");
      }
      rows.push_back({"allocations:", shares});
    }
    const json& live = member(d, "live");
    std::string liveText;
    if (live.contains("serverConnections")) {
      liveText = numberOr(live, "serverConnections") + " on the server";
      if (live.contains("serverMaxConnections"))
        liveText += " (" + numberOr(live, "serverPercent") + "% of max_connections " +
                    numberOr(live, "serverMaxConnections") + ")";
      liveText += "; ";
    }
    if (live.contains("governedConnections"))
      liveText += numberOr(live, "governedConnections") + " from governed workloads";
    if (live.contains("ungovernedConnections"))
      liveText += ", " + numberOr(live, "ungovernedConnections") + " ungoverned";
    if (live.contains("checkedSecondsAgo")) liveText += "; checked " + ago(live["checkedSecondsAgo"].get<int64_t>());
    rows.push_back(
        {"live:", liveText.empty() ? "no usage check (set usage.postgres in a policy or the budget)" : liveText});
    const json& leaks = member(d, "leaks");
    if (leaks.is_object() && !leaks.empty()) {
      // Only what some check counted: a budget's check alone does not count sessions idle in transaction.
      std::vector<std::string> parts;
      if (leaks.contains("idleInTransaction")) {
        std::string idle = numberOr(leaks, "idleInTransaction") + " sessions idle in transaction now";
        if (leaks.contains("oldestIdleInTransactionSeconds"))
          idle += ", the oldest for " + numberOr(leaks, "oldestIdleInTransactionSeconds") + "s";
        parts.push_back(idle);
      }
      if (leaks.contains("leakedSessions"))
        parts.push_back(numberOr(leaks, "leakedSessions") + " past terminateLeaked's age");
      if (leaks.contains("sessionsEnded")) parts.push_back(numberOr(leaks, "sessionsEnded") + " ended");
      std::string l;
      for (const auto& part : parts) l += (l.empty() ? "" : "; ") + part;
      rows.push_back({"leaks:", l});
    }
    printTable(rows, out, "  ");

    const json& findings = member(d, "findings");
    if (findings.is_array() && !findings.empty()) {
      out << "  findings:\n";
      std::vector<std::vector<std::string>> f;
      for (const auto& x : findings) f.push_back({text(x, "object"), text(x, "reason"), shorten(text(x, "message"))});
      printTable(f, out, "    ");
    }
    const json& top = member(d, "topWorkloads");
    if (top.is_array() && !top.empty()) {
      out << "  top workloads (" << top.size() << " of " << numberOr(d, "workloads") << ", by connections):\n";
      std::vector<std::vector<std::string>> t{{"WORKLOAD", "POLICY", "STATE", "CONNECTIONS", "WORST CASE"}};
      for (const auto& w : top) {
        t.push_back({text(w, "kind") + " " + text(w, "namespace") + "/" + text(w, "name"), text(w, "policy"),
                     text(w, "state"), numberOr(w, "connections", "-"), numberOr(w, "worstCase", "-")});
      }
      printTable(t, out, "    ");
    }
    const json& ungoverned = member(d, "ungoverned");
    if (ungoverned.is_array()) {
      if (ungoverned.empty()) {
        out << "  ungoverned clients: none\n";
      } else {
        out << "  ungoverned clients:\n";
        std::vector<std::vector<std::string>> u{{"APPLICATION", "USER", "CLIENT", "CONNECTIONS"}};
        for (const auto& c : ungoverned) {
          u.push_back({text(c, "applicationName").empty() ? "(none)" : text(c, "applicationName"), text(c, "user"),
                       text(c, "clientAddress"), numberOr(c, "connections")});
        }
        printTable(u, out, "    ");
      }
    } else {
      out << "  ungoverned clients: unknown (a ClusterConnectionBudget with usage.postgres lists them)\n";
    }
    out << "  objects:\n";
    std::vector<std::vector<std::string>> o;
    for (const auto& x : member(d, "objects")) {
      std::string state = text(x, "state");
      if (!text(x, "reason").empty() && state != "Ready") state += " " + text(x, "reason");
      o.push_back({text(x, "object"), state, state == "Ready" ? "" : shorten(text(x, "message"))});
    }
    printTable(o, out, "    ");
  }
  const json& notes = member(view, "notes");
  if (notes.is_array()) {
    for (const auto& n : notes) out << "note: " << (n.is_string() ? n.get<std::string>() : n.dump()) << "\n";
  }
}

int runStatus(const StatusCommand& command, std::ostream& out, std::ostream& err) {
  auto config = kube::loadDefault(command.kubeconfig, command.context);
  if (!config.ok()) {
    err << "error: " << config.error().message() << "\n";
    return 2;
  }
  kube::RestClientOptions opts;
  opts.userAgent = "poolguard-status";
  auto client = kube::makeRestClient(*config, opts);
  if (!client.ok()) {
    err << "error: " << client.error().message() << "\n";
    return 2;
  }
  SystemClock clock;
  for (bool first = true;; first = false) {
    auto objects = readStatusObjects(**client, command.ns);
    if (!objects.ok()) {
      err << "error: " << objects.error().message() << "\n";
      if (!command.watch) return 2;
    } else {
      const json view = statusView(*objects, command.view, clock.now());
      if (command.output == "json") {
        out << view.dump(command.watch ? -1 : 2, ' ', false, json::error_handler_t::replace) << "\n";
      } else if (command.output == "yaml") {
        if (command.watch && !first) out << "---\n";
        out << toYaml(view);
      } else {
        if (command.watch) out << (first ? "" : "\n") << "--- " << formatRfc3339(clock.now()) << "\n";
        printStatusText(view, out);
      }
      out.flush();
    }
    if (!command.watch) return 0;
    std::this_thread::sleep_for(std::chrono::seconds(std::max(1, command.intervalSeconds)));
  }
}

}  // namespace poolguard::offline
