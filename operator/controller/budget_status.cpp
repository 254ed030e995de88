// The status of a ClusterConnectionBudget: the database's totals as plan() computes them for any policy of the
// database (every policy of a database sees the same budget), with WithinBudget and Ready.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "controller/conditions.h"
#include "controller/reconciler.h"
#include "controller/status.h"
#include "controller/usage_monitor.h"
#include "policy/selection.h"
#include "render/workload.h"

namespace poolguard::controller {

std::vector<std::string> Reconciler::policiesOfDatabase(const std::string& database) const {
  std::vector<std::string> keys;
  for (const auto& v : allPolicies()) {
    if (v.parsed && v.parsed->spec.database.name == database) keys.push_back(runtime::objectKey(*v.object));
  }
  return keys;
}

std::vector<std::string> Reconciler::policiesWithoutUsageOf(const std::string& database) const {
  std::vector<std::string> keys;
  for (const auto& v : allPolicies()) {
    const auto& p = v.parsed;
    if (p && p->spec.database.name == database && !p->spec.usage.postgres && !p->spec.usage.prometheus)
      keys.push_back(runtime::objectKey(*v.object));
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

policy::Policy Reconciler::usagePolicyOf(const policy::ClusterBudget& b, const budget::DatabaseBudget& db) const {
  // The usage monitor checks policies: the budget's check is one, named so that no policy's key can be the same.
  policy::Policy p;
  p.kind = "ClusterConnectionBudget";
  p.name = budgetUsageKey(b.database);
  p.uid = b.uid;
  p.spec.database.name = b.database;
  p.spec.database.maxConnections = b.maxConnections;
  p.spec.database.reservedConnections = db.reservedConnections;
  p.spec.usage = *b.usage;
  return p;
}

std::vector<usage::GovernedWorkload> Reconciler::governedWorkloadsOf(const budget::DatabaseBudget& db) const {
  // The application_name each governed workload's pool reports, from its policy's delivery.applicationName.
  std::map<std::tuple<bool, std::string, std::string>, const policy::Policy*> policies;
  for (const auto& v : allPolicies()) {
    if (v.parsed) policies[{v.parsed->clusterScoped(), v.parsed->namespace_, v.parsed->name}] = v.parsed.get();
  }
  std::vector<usage::GovernedWorkload> out;
  for (const auto& pb : db.policies) {
    auto p = policies.find({pb.cluster, pb.cluster ? "" : pb.namespace_, pb.name});
    const policy::Policy* governing = p == policies.end() ? nullptr : p->second;
    for (const auto& wb : pb.workloads) {
      const auto& f = wb.facts;
      out.push_back(usage::GovernedWorkload{
          f.namespace_, f.name,
          governing ? render::expandApplicationName(governing->spec.delivery.applicationName, f.namespace_, f.name)
                    : "",
          f.podsNow, f.podsMax, f.surge + f.terminating, std::nullopt, pb.effectiveMaxSize, pb.processesPerPod,
          pb.overheadPerPod,
          // The budget's check ends leaked sessions only of workloads whose policy is in Enforce.
          governing != nullptr && writesSettings(*governing)});
    }
  }
  return out;
}

std::set<std::string> Reconciler::applicationNamesOf(const budget::DatabaseBudget& db) const {
  std::set<std::string> names;
  for (const auto& w : governedWorkloadsOf(db)) {
    if (!w.applicationName.empty()) names.insert(w.applicationName);
  }
  return names;
}

std::set<std::string> Reconciler::knownApplicationNames() const {
  // The application_name every workload a policy selects reports, whatever its database: such sessions are a
  // policy's, even where another policy of the same namespace wins the workload.
  std::set<std::string> names;
  for (const auto& v : allPolicies()) {
    if (!v.parsed || v.deleting) continue;
    const policy::Policy& p = *v.parsed;
    std::vector<std::string> namespaces;
    if (!p.clusterScoped()) {
      namespaces.push_back(p.namespace_);
    } else if (caches_.namespaces && p.spec.namespaceSelector) {
      for (const auto& n : caches_.namespaces->list()) {
        if (poolguard::matches(*p.spec.namespaceSelector, namespaceLabels(n->meta.name)))
          namespaces.push_back(n->meta.name);
      }
    }
    for (const auto& ns : namespaces) {
      const auto nsLabels = namespaceLabels(ns);
      for (policy::WorkloadKind kind : p.spec.kinds) {
        runtime::Store* store = storeFor(kind);
        if (store == nullptr) continue;
        for (const auto& w : store->listInNamespace(ns)) {
          if (!policy::selects(p, kind, ns, w->meta.labels, &nsLabels) ||
              !runtime::recordAs<model::Workload>(*w).governable())
            continue;
          std::string name = render::expandApplicationName(p.spec.delivery.applicationName, ns, w->meta.name);
          if (!name.empty()) names.insert(std::move(name));
        }
      }
    }
  }
  return names;
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

std::string shareFigures(const budget::AllocationBudget& a) {
  return a.label() + ": worst case " + std::to_string(a.worstCase) + " against its " +
         (a.maxConnections ? std::to_string(*a.maxConnections) : std::string("unknown share"));
}

constexpr size_t kMaxUsageMessage = 4096;

// What the status says of the central check: the server's connections, those of this database's governed
// workloads (each application_name counted once), and the sessions no policy of any database accounts for.
json budgetUsageJson(const usage::AnalysisResult& r, const usage::AnalysisInput* input,
                     const std::set<std::string>& governed, const std::set<std::string>& known) {
  json u = json::object();
  const auto& us = r.usage;
  if (!us.source.empty()) u["source"] = us.source;
  if (us.lastCheckTime) u["lastCheckTime"] = formatRfc3339(*us.lastCheckTime);
  if (us.serverMaxConnections) u["serverMaxConnections"] = *us.serverMaxConnections;
  if (input && input->postgres.ok()) {
    const usage::ServerSnapshot& snap = input->postgres.result->value();
    u["connections"] = snap.totalConnections();
    u["governed"] = usage::sessionsOf(snap, governed);
    int32_t rest = 0;
    for (const auto& c : usage::ungovernedSessions(snap, known, 0)) rest += c.connections;
    u["ungovernedConnections"] = rest;
    json list = json::array();
    for (const auto& c : usage::ungovernedSessions(snap, known)) {
      list.push_back({{"applicationName", c.applicationName},
                      {"user", c.user},
                      {"clientAddress", c.clientAddress},
                      {"connections", c.connections}});
    }
    u["ungoverned"] = list;
  }
  addTerminations(u, r);
  return u;
}

// The governed workloads with the largest worst case, then the most live connections; at most 20.
json topWorkloadsJson(const budget::DatabaseBudget& db, const std::optional<usage::AnalysisResult>& checked) {
  struct Row {
    const budget::WorkloadBudget* w;
    std::string policy;
    std::optional<int32_t> connections;
  };
  std::map<std::pair<std::string, std::string>, int32_t> live;
  if (checked) {
    for (const auto& wu : checked->workloads) {
      if (wu.connections) live[{wu.namespace_, wu.name}] = *wu.connections;
    }
  }
  std::vector<Row> rows;
  for (const auto& pb : db.policies) {
    for (const auto& wb : pb.workloads) {
      Row r{&wb, pb.cluster ? pb.name : pb.namespace_ + "/" + pb.name, std::nullopt};
      if (auto it = live.find({wb.facts.namespace_, wb.facts.name}); it != live.end()) r.connections = it->second;
      rows.push_back(std::move(r));
    }
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return std::make_tuple(-a.w->worstCase, -a.connections.value_or(-1), a.w->facts.namespace_, a.w->facts.name) <
           std::make_tuple(-b.w->worstCase, -b.connections.value_or(-1), b.w->facts.namespace_, b.w->facts.name);
  });
  json out = json::array();
  for (const auto& r : rows) {
    if (out.size() == 20) break;
    json j{{"kind", policy::toString(r.w->facts.kind)},
           {"namespace", r.w->facts.namespace_},
           {"name", r.w->facts.name},
           {"policy", r.policy},
           {"worstCase", r.w->worstCase}};
    if (r.connections) j["connections"] = *r.connections;
    out.push_back(std::move(j));
  }
  return out;
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
    if (usage_) usage_->forget("", budgetUsageKey(name));
    {
      std::lock_guard l(mu_);
      lastWrittenBudgetStatus_.erase(name);
    }
    // Its admission objects go with it (their owner reference also lets the garbage collector remove them).
    auto removed = keepAdmission(name, nullptr, nullptr);
    if (!removed.ok()) return removed.error();
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
  bool checksTheServer = false;  // a usage check can still tell the server's max_connections
  json status = json::object();
  // A failure to keep the admission objects is reported in the status and retried after it is written.
  std::optional<Error> admissionError;
  auto keepAdmissionIn = [&](const budget::DatabaseBudget* db) {
    auto kept = keepAdmission(name, &b, db);
    if (!kept.ok()) {
      admissionError = kept.error();
      status["admission"] = {
          {"mode", policy::toString(b.parsed ? b.parsed->admissionMode : policy::AdmissionMode::kNone)},
          {"message", kept.error().message()}};
    } else if (!kept->is_null()) {
      status["admission"] = *kept;
    }
  };
  if (!b.parsed) {
    keepAdmissionIn(nullptr);
    if (usage_) usage_->forget("", budgetUsageKey(name));  // no checks while invalid: release its session
    // The API server validates the spec; this is a budget written before a stricter version, say.
    desired.push_back(makeCondition(condition::kWithinBudget, false, "InvalidSpec", b.invalidMessage));
  } else {
    // Any valid policy of the database plans the same totals: the first by key, so the choice is stable.
    std::shared_ptr<const model::PolicyObject> anchor;
    size_t policies = 0;
    // Policies of the database that read max_connections from the server, and whether one's check has ended.
    bool aCheckEnded = false;
    for (const auto& v : allPolicies()) {
      const auto& p = v.object;
      if (!p->parsed || !p->meta.deletionTimestamp.empty() || p->parsed->spec.database.name != name) continue;
      ++policies;
      if (p->parsed->spec.usage.postgres) {
        const auto latest = usage_ ? usage_->latest(runtime::objectKey(*p), p->meta.uid) : std::nullopt;
        aCheckEnded = aCheckEnded || latest.has_value();
        // A check that failed in a way only a change cures (its Secret, its credentials) will not tell it.
        checksTheServer = checksTheServer || !(latest && latest->postgresNeedsChange);
      }
      if (!anchor || runtime::objectKey(*p) < runtime::objectKey(*anchor)) anchor = p;
    }
    budget::DatabaseBudget db;
    if (anchor) {
      Snapshot s = gather(anchor, anchor->status);
      if (usage_) s.discoveredMaxConnections = usage_->serverMaxConnections(name);
      db = plan(s).database;
    } else {
      std::vector<budget::AllocationInput> allocations;
      for (const auto& a : b.parsed->allocations) allocations.push_back({a.name, a.maxConnections});
      // No policy: the budget's capacity, else what its own check read from the server.
      std::optional<int32_t> maxConnections = b.parsed->maxConnections;
      if (!maxConnections && usage_) maxConnections = usage_->serverMaxConnections(name);
      db = budget::computeDatabase(name, maxConnections,
                                   b.parsed->reservedConnections.value_or(policy::Database{}.reservedConnections), {},
                                   allocations);
    }
    // The central usage check: the whole server, for every governed workload of the database, with the
    // Secrets of the operator's namespace.
    std::optional<usage::AnalysisResult> checked;
    if (b.parsed->usage && usage_) {
      usage_->want(model::referenceTo(b, "poolguard.dev/v1alpha1", "ClusterConnectionBudget"),
                   usagePolicyOf(*b.parsed, db), governedWorkloadsOf(db), operatorNamespace_);
      checked = usage_->latest(budgetUsageKey(name), b.meta.uid);
      if (b.parsed->usage->postgres) {
        checksTheServer = checksTheServer || !(checked && checked->postgresNeedsChange);
        aCheckEnded = aCheckEnded || checked.has_value();
      }
    } else if (usage_) {
      usage_->forget("", budgetUsageKey(name));
    }
    // max_connections can only come from the server, and no check of it has ended yet: wait for the first (the
    // policy or budget it ends for enqueues this budget) rather than report it unknown for a moment. A check that
    // ended without it (the server unreachable, say) does not hold the status back.
    if (!db.maxConnections && checksTheServer && usage_ && !aCheckEnded) return ReconcileOutcome{};
    keepAdmissionIn(&db);
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
    if (checked) {
      // Every workload of the database may have a finding: the message stays within what a condition may hold.
      std::string message = checked->condition.message;
      if (message.size() > kMaxUsageMessage) message = message.substr(0, kMaxUsageMessage - 3) + "...";
      desired.push_back(Condition{condition::kUsageHealthy, usage::toString(checked->condition.status),
                                  checked->condition.reason, message, 0, ""});
      auto input = usage_->latestInput(budgetUsageKey(name), b.meta.uid);
      status["usage"] =
          budgetUsageJson(*checked, input ? input.get() : nullptr, applicationNamesOf(db), knownApplicationNames());
    } else if (b.parsed->usage) {
      desired.push_back(
          unknownCondition(condition::kUsageHealthy, "Pending", "the first check of the server has not ended yet"));
    } else {
      desired.push_back(unknownCondition(condition::kUsageHealthy, usage::reasons::kNotConfigured,
                                         "no usage source: set spec.usage.postgres to see who holds the server's "
                                         "connections"));
    }
    status["topWorkloads"] = topWorkloadsJson(db, checked);
  }
  const Condition within = desired.front();  // a copy: desired grows below
  const Condition* usageHealthy = nullptr;
  for (const auto& c : desired) {
    if (c.type == condition::kUsageHealthy) usageHealthy = &c;
  }
  if (within.status != "True") {
    desired.push_back(makeCondition(condition::kReady, false, within.reason, within.message));
  } else if (usageHealthy && usageHealthy->status == "False") {
    const Condition unhealthy = *usageHealthy;
    desired.push_back(makeCondition(condition::kReady, false, unhealthy.reason, unhealthy.message));
  } else {
    desired.push_back(makeCondition(condition::kReady, true, "Ready", "the database's worst case fits"));
  }
  if (auto progress = progressCondition(desired, {.maxConnectionsComing = checksTheServer}))
    desired.push_back(std::move(*progress));
  const auto conditions = mergeConditions(previous, desired, b.meta.generation, formatRfc3339(clock_.now()));
  status["observedGeneration"] = b.meta.generation;
  status["conditions"] = json::array();
  for (const auto& c : conditions) status["conditions"].push_back(toJson(c));
  if (status == stored) {
    if (admissionError) return *admissionError;
    return ReconcileOutcome{};
  }

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
  if (admissionError) return *admissionError;
  return ReconcileOutcome{};
}

}  // namespace poolguard::controller
