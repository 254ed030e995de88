// The status of a ClusterConnectionBudget: the database's totals as plan() computes them for any policy of the
// database (every policy of a database sees the same budget), with WithinBudget and Ready.
#include <spdlog/spdlog.h>

#include "controller/conditions.h"
#include "controller/reconciler.h"
#include "controller/status.h"
#include "controller/usage_monitor.h"

namespace poolguard::controller {

std::vector<std::string> Reconciler::policiesOfDatabase(const std::string& database) const {
  std::vector<std::string> keys;
  for (const auto& v : allPolicies()) {
    if (v.parsed && v.parsed->spec.database.name == database) keys.push_back(runtime::objectKey(*v.object));
  }
  return keys;
}

std::string Reconciler::databaseOf(const std::string& policyKey) const {
  const bool cluster = policyKey.find('/') == std::string::npos;
  runtime::Store* store = cluster ? caches_.clusterPolicies : caches_.policies;
  auto o = store ? store->get(policyKey) : nullptr;
  if (!o) return "";
  const auto& p = runtime::recordAs<model::PolicyObject>(*o);
  return p.parsed ? p.parsed->spec.database.name : "";
}

std::vector<std::string> Reconciler::budgetsWithAllocations() const {
  std::vector<std::string> names;
  if (!caches_.budgets) return names;
  for (const auto& o : caches_.budgets->list()) {
    const auto& b = runtime::recordAs<model::BudgetObject>(*o);
    if (b.parsed && !b.parsed->allocations.empty()) names.push_back(b.meta.name);
  }
  return names;
}

std::vector<std::string> Reconciler::policiesUnderAllocations() const {
  std::vector<std::string> keys;
  for (const auto& name : budgetsWithAllocations()) {
    auto more = policiesOfDatabase(name);
    keys.insert(keys.end(), more.begin(), more.end());
  }
  return keys;
}

namespace {

std::string shareName(const budget::AllocationBudget& a) {
  return a.name.empty() ? "the namespaces in no allocation" : "allocation " + a.name;
}

std::string shareFigures(const budget::AllocationBudget& a) {
  return shareName(a) + ": worst case " + std::to_string(a.worstCase) + " against its " +
         (a.maxConnections ? std::to_string(*a.maxConnections) : std::string("unknown share"));
}

json shareJson(const budget::AllocationBudget& a, int32_t namespaces) {
  json j{{"steadyState", a.steadyState}, {"worstCase", a.worstCase}, {"namespaces", namespaces}};
  if (!a.name.empty()) j["name"] = a.name;
  if (a.maxConnections) j["maxConnections"] = *a.maxConnections;
  return j;
}

Condition budgetCondition(const budget::DatabaseBudget& db, const std::string& name, size_t policies) {
  if (!db.available) {
    return unknownCondition(condition::kWithinBudget, "MaxConnectionsUnknown",
                            "database " + name +
                                ": max_connections is unknown; set spec.maxConnections, or spec.database."
                                "maxConnections or spec.usage.postgres in a policy of the database");
  }
  std::string figures = "worst case " + std::to_string(db.worstCase) + " connections of " + std::to_string(policies) +
                        (policies == 1 ? " policy" : " policies") + " against " + std::to_string(*db.available) +
                        " available (max_connections " + std::to_string(db.maxConnections.value_or(0)) + " - " +
                        std::to_string(db.reservedConnections) + " reserved)";
  // With allocations: each share that is over, and allocations promising more than there is.
  std::vector<std::string> over;
  int64_t allocated = 0;
  for (const auto& a : db.allocations) {
    allocated += a.maxConnections.value_or(0);
    if (a.over()) over.push_back(shareFigures(a));
  }
  if (db.unallocated && db.unallocated->over()) over.push_back(shareFigures(*db.unallocated));
  if (!db.allocations.empty() && allocated > *db.available) {
    figures += "; the allocations add up to " + std::to_string(allocated) + ", more than the " +
               std::to_string(*db.available) + " available";
  }
  if (!over.empty()) {
    std::string list;
    for (const auto& o : over) list += (list.empty() ? "" : "; ") + o;
    return makeCondition(condition::kWithinBudget, false, "BudgetExceeded",
                         "over budget: " + list + " (" + figures +
                             "); lower pools or HPA maxReplicas, raise the allocation, or let the policies Clamp");
  }
  if (db.worstCase > *db.available) {
    return makeCondition(condition::kWithinBudget, false, "BudgetExceeded",
                         "over budget: " + figures +
                             "; lower pools or HPA maxReplicas, raise max_connections, or let the policies Clamp");
  }
  return makeCondition(condition::kWithinBudget, true, "WithinBudget", figures);
}

}  // namespace

Result<ReconcileOutcome> Reconciler::reconcileBudget(const std::string& name) {
  if (!caches_.budgets) return ReconcileOutcome{};
  auto cached = caches_.budgets->get(name);
  if (!cached) {
    std::lock_guard l(mu_);
    lastWrittenBudgetStatus_.erase(name);
    return ReconcileOutcome{};
  }
  const auto& b = runtime::recordAs<model::BudgetObject>(*cached);
  if (!b.meta.deletionTimestamp.empty()) return ReconcileOutcome{};

  // What this process wrote last, unless the cache shows a newer generation or another object by that name.
  json stored = b.status;
  {
    std::lock_guard l(mu_);
    auto it = lastWrittenBudgetStatus_.find(name);
    if (it != lastWrittenBudgetStatus_.end() && it->second.uid == b.meta.uid &&
        it->second.status.value("observedGeneration", int64_t{0}) >= stored.value("observedGeneration", int64_t{0})) {
      stored = it->second.status;
    }
  }
  const std::vector<Condition> previous = conditionsFromJson(stored);
  std::vector<Condition> desired;
  json status = json::object();
  if (!b.parsed) {
    // The API server validates the spec; this is a budget written before a stricter version, say.
    desired.push_back(makeCondition(condition::kWithinBudget, false, "InvalidSpec", b.invalidMessage));
  } else {
    // Any valid policy of the database plans the same totals: the first by key, so the choice is stable.
    std::shared_ptr<const model::PolicyObject> anchor;
    size_t policies = 0;
    // Policies of the database that read max_connections from the server, and whether one's check has ended.
    bool checksTheServer = false, aCheckEnded = false;
    for (const auto& v : allPolicies()) {
      const auto& p = v.object;
      if (!p->parsed || !p->meta.deletionTimestamp.empty() || p->parsed->spec.database.name != name) continue;
      ++policies;
      if (p->parsed->spec.usage.postgres) {
        checksTheServer = true;
        aCheckEnded = aCheckEnded || (usage_ && usage_->latest(runtime::objectKey(*p), p->meta.uid).has_value());
      }
      if (!anchor || runtime::objectKey(*p) < runtime::objectKey(*anchor)) anchor = p;
    }
    budget::DatabaseBudget db;
    if (anchor) {
      Snapshot s = gather(anchor, anchor->status);
      if (usage_) s.discoveredMaxConnections = usage_->serverMaxConnections(name);
      db = plan(s).database;
      // max_connections can only come from the server, and no check of it has ended yet: wait for the first (the
      // policy it ends for is reconciled, and enqueues this budget) rather than report it unknown for a moment.
      // A check that ended without it (the server unreachable, say) does not hold the status back.
      if (!db.maxConnections && checksTheServer && usage_ && !aCheckEnded) return ReconcileOutcome{};
    } else {
      std::vector<budget::AllocationInput> allocations;
      for (const auto& a : b.parsed->allocations) allocations.push_back({a.name, a.maxConnections});
      db = budget::computeDatabase(name, b.parsed->maxConnections,
                                   b.parsed->reservedConnections.value_or(policy::Database{}.reservedConnections), {},
                                   allocations);
    }
    desired.push_back(budgetCondition(db, name, policies));
    if (db.maxConnections) status["maxConnections"] = *db.maxConnections;
    if (db.available) status["available"] = *db.available;
    status["steadyState"] = db.steadyState;
    status["worstCase"] = db.worstCase;
    status["policies"] = policies;
    if (!db.allocations.empty()) {
      // How many namespaces each share counts (the first allocation that matches a namespace counts it).
      std::vector<int32_t> counted(db.allocations.size() + 1, 0);
      if (caches_.namespaces) {
        for (const auto& n : caches_.namespaces->list()) {
          auto labels = n->meta.labels;
          labels.emplace(model::kNamespaceNameLabel, n->meta.name);
          int a = policy::allocationOf(*b.parsed, labels);
          ++counted[a < 0 ? db.allocations.size() : static_cast<size_t>(a)];
        }
      }
      status["allocations"] = json::array();
      for (size_t i = 0; i < db.allocations.size(); ++i)
        status["allocations"].push_back(shareJson(db.allocations[i], counted[i]));
      if (db.unallocated) status["unallocated"] = shareJson(*db.unallocated, counted.back());
    }
  }
  const Condition within = desired.front();  // a copy: desired grows below
  desired.push_back(within.status == "True"
                        ? makeCondition(condition::kReady, true, "Ready", "the database's worst case fits")
                        : makeCondition(condition::kReady, false, within.reason, within.message));
  const auto conditions = mergeConditions(previous, desired, b.meta.generation, formatRfc3339(clock_.now()));
  status["observedGeneration"] = b.meta.generation;
  status["conditions"] = json::array();
  for (const auto& c : conditions) status["conditions"].push_back(toJson(c));
  if (status == stored) return ReconcileOutcome{};

  json body = {{"apiVersion", "poolguard.dev/v1alpha1"},
               {"kind", "ClusterConnectionBudget"},
               {"metadata", {{"name", name}}},
               {"status", status}};
  kube::WriteOptions opts{kFieldManager, true, false, "status", true};
  auto r = client_.apply(kube::resources::clusterConnectionBudgets(), "", name, body, opts);
  if (!r.ok()) return r.error();
  {
    std::lock_guard l(mu_);
    lastWrittenBudgetStatus_[name] = StatusRecord{b.meta.uid, status};
  }
  if (!transitions(previous, conditions).empty()) {
    spdlog::info("ClusterConnectionBudget {}: {} ({})", name, within.reason, within.message);
    // Every transition is an Event too (a cluster-scoped object's Events are in the default namespace).
    if (events_) {
      recordTransitions(*events_, model::referenceTo(b, "poolguard.dev/v1alpha1", "ClusterConnectionBudget"), previous,
                        conditions);
    }
  }
  return ReconcileOutcome{};
}

}  // namespace poolguard::controller
