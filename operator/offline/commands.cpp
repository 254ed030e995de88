#include "offline/commands.h"

#include <algorithm>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>

#include "offline/text_table.h"
#include "offline/workspace.h"
#include "offline/yaml_emit.h"
#include "render/settings.h"
#include "render/workload.h"

namespace poolguard::offline {
namespace {

bool validOutput(const std::string& output, std::ostream& err) {
  if (output == "text" || output == "json" || output == "yaml") return true;
  err << "error: -o/--output must be text, json or yaml, not \"" << output << "\"\n";
  return false;
}

// Reports what the commands could not read: unreadable files and documents that fail their type checks. True
// when there was any (exit code 2 once the rest is done).
bool reportUnreadable(const Loaded& loaded, const Workspace& ws, std::ostream& err) {
  for (const auto& e : loaded.errors) err << "error: " << e << "\n";
  for (const auto& e : ws.inputErrors) err << "error: " << toString(e) << "\n";
  return !loaded.errors.empty() || !ws.inputErrors.empty();
}

json inputErrorsJson(const Loaded& loaded, const Workspace& ws) {
  json out = json::array();
  for (const auto& e : loaded.errors) out.push_back({{"message", e}});
  for (const auto& e : ws.inputErrors) {
    out.push_back({{"source", e.source},
                   {"document", e.document},
                   {"object", e.object},
                   {"field", e.error.field},
                   {"message", e.error.message}});
  }
  return out;
}

bool usageError(const std::vector<std::string>& files, const std::string& output, std::ostream& err) {
  if (!validOutput(output, err)) return true;
  if (files.empty()) {
    err << "error: name at least one file with -f (- reads standard input)\n";
    return true;
  }
  return false;
}

void print(const json& value, const std::string& output, std::ostream& out) {
  if (output == "json")
    out << value.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  else
    out << toYaml(value);
}

// Only called for documents whose metadata passed model::decodeMeta: name and namespace are strings if present.
std::string policyLabel(const PolicyEntry& e) {
  std::string ns, name;
  if (auto meta = e.object.find("metadata"); meta != e.object.end() && meta->is_object()) {
    if (auto it = meta->find("namespace"); it != meta->end() && it->is_string()) ns = it->get<std::string>();
    if (auto it = meta->find("name"); it != meta->end() && it->is_string()) name = it->get<std::string>();
  }
  if (model::isClusterPolicy(e.object)) return "ClusterConnectionPoolPolicy " + (name.empty() ? "<unnamed>" : name);
  return "ConnectionPoolPolicy " + (ns.empty() ? std::string("default") : ns) + "/" +
         (name.empty() ? std::string("<unnamed>") : name);
}

// "policy shop/orders" or "ClusterConnectionPoolPolicy baseline".
std::string policyName(const policy::Policy& p) {
  return p.clusterScoped() ? policy::describe(p) : "policy " + p.namespace_ + "/" + p.name;
}

std::string budgetLabel(const BudgetEntry& b) {
  std::string name;
  if (auto meta = b.object.find("metadata"); meta != b.object.end() && meta->is_object()) {
    if (auto it = meta->find("name"); it != meta->end() && it->is_string()) name = it->get<std::string>();
  }
  return "ClusterConnectionBudget " + (name.empty() ? std::string("<unnamed>") : name);
}

// Reports invalid policies and budgets on `err`; true when there were any.
// Reports every invalid policy and budget; true when one of them counts (with `exceptSource`, those read from that
// source, the cluster for plan --live, are warnings: another team's object does not decide this run).
bool reportInvalid(const Workspace& ws, std::ostream& err, const std::string& exceptSource = "") {
  bool any = false;
  auto report = [&](const std::string& source, int document, const std::string& label, const std::string& what) {
    const bool counts = exceptSource.empty() || source != exceptSource;
    err << (counts ? "" : "warning: ") << source << ": document " << document << ": " << label << ": " << what << "\n";
    any = any || counts;
  };
  for (const auto& b : ws.budgets) {
    for (const auto& e : b.errors) report(b.source, b.document, budgetLabel(b), policy::toString(e));
  }
  for (const auto& p : ws.policies) {
    for (const auto& e : p.errors) report(p.source, p.document, policyLabel(p), policy::toString(e));
    if (!p.parsed && p.errors.empty()) report(p.source, p.document, policyLabel(p), "invalid");
  }
  return any;
}

std::string workloadLabel(const WorkloadEntry& w) {
  return std::string(policy::toString(w.record.kind)) + " " + w.record.meta.namespace_ + "/" + w.record.meta.name;
}

std::string optionalNumber(const std::optional<int64_t>& v) { return v ? std::to_string(*v) : "unknown"; }

// The namespaces of the policies counted against a share (an allocation's index, or -1: in none), sorted.
std::vector<std::string> shareNamespaces(const budget::DatabaseBudget& db, int allocation) {
  std::set<std::string> names;
  for (const auto& pb : db.policies) {
    if (pb.allocation == allocation && !pb.namespace_.empty()) names.insert(pb.namespace_);
  }
  return {names.begin(), names.end()};
}

std::string shareState(const budget::DatabaseBudget& db, const budget::AllocationBudget& a, int allocation) {
  if (a.over()) return "BudgetExceeded";
  if (!a.maxConnections) return "MaxConnectionsUnknown";
  bool clamped = std::any_of(db.policies.begin(), db.policies.end(),
                             [&](const auto& p) { return p.allocation == allocation && p.clamped; });
  return clamped ? "Clamped" : "WithinBudget";
}

std::string databaseState(const budget::DatabaseBudget& db) {
  if (!db.available) return "MaxConnectionsUnknown";
  if (db.overBudget()) return "BudgetExceeded";
  bool clamped = std::any_of(db.policies.begin(), db.policies.end(), [](const auto& p) { return p.clamped; });
  return clamped ? "Clamped" : "WithinBudget";
}

}  // namespace

int runValidate(const std::vector<std::string>& files, const std::string& output, std::ostream& out,
                std::ostream& err) {
  if (usageError(files, output, err)) return kExitUsage;
  return runValidateLoaded(loadDocuments(files), output, out, err);
}

int runValidateLoaded(const Loaded& loaded, const std::string& output, std::ostream& out, std::ostream& err) {
  Workspace ws = buildWorkspace(loaded.documents);
  bool unreadable = reportUnreadable(loaded, ws, err);

  json results = json::array();
  int invalid = 0;
  int total = 0;
  for (const auto& p : ws.policies) {
    ++total;
    const std::string label = policyLabel(p);
    // A document may have no metadata (a cluster-scoped one is kept as written): find, never a const operator[].
    const auto meta = p.object.find("metadata");
    auto metaString = [&](const char* key) {
      if (meta == p.object.end() || !meta->is_object()) return json("");
      auto it = meta->find(key);
      return it != meta->end() && it->is_string() ? *it : json("");
    };
    json r{{"source", p.source},         {"document", p.document},    {"namespace", metaString("namespace")},
           {"name", metaString("name")}, {"valid", p.errors.empty()}, {"errors", json::array()}};
    for (const auto& e : p.errors) r["errors"].push_back({{"field", e.field}, {"message", e.message}});
    results.push_back(r);
    if (!p.errors.empty()) ++invalid;
    if (output == "text") {
      if (p.errors.empty()) {
        out << p.source << ": document " << p.document << ": " << label << ": valid\n";
      } else {
        for (const auto& e : p.errors) {
          out << p.source << ": document " << p.document << ": " << label << ": " << policy::toString(e) << "\n";
        }
      }
    }
  }
  json budgets = json::array();
  int invalidBudgets = 0;
  for (const auto& b : ws.budgets) {
    json r{{"source", b.source},
           {"document", b.document},
           {"name", b.parsed ? json(b.parsed->database) : json("")},
           {"valid", b.errors.empty()},
           {"errors", json::array()}};
    for (const auto& e : b.errors) r["errors"].push_back({{"field", e.field}, {"message", e.message}});
    budgets.push_back(r);
    if (!b.errors.empty()) ++invalidBudgets;
    if (output == "text") {
      if (b.errors.empty()) out << b.source << ": document " << b.document << ": " << budgetLabel(b) << ": valid\n";
      for (const auto& e : b.errors) {
        out << b.source << ": document " << b.document << ": " << budgetLabel(b) << ": " << policy::toString(e) << "\n";
      }
    }
  }
  invalid += invalidBudgets;
  if (output == "text") {
    out << total << " " << (total == 1 ? "policy" : "policies") << " checked, " << invalid - invalidBudgets
        << " invalid";
    if (!ws.budgets.empty()) {
      out << "; " << ws.budgets.size() << " ClusterConnectionBudget" << (ws.budgets.size() == 1 ? "" : "s")
          << " checked, " << invalidBudgets << " invalid";
    }
    out << "\n";
    if (total == 0 && !unreadable) err << "warning: no ConnectionPoolPolicy (poolguard.dev) found in the input\n";
  } else {
    json report{{"policies", results},
                {"checked", total},
                {"invalid", invalid - invalidBudgets},
                {"inputErrors", inputErrorsJson(loaded, ws)}};
    if (!ws.budgets.empty()) report["clusterConnectionBudgets"] = budgets;
    print(report, output, out);
  }
  if (unreadable) return kExitUsage;
  return invalid > 0 ? kExitFailed : kExitOk;
}

int runRender(const std::vector<std::string>& files, const std::string& output, std::ostream& out, std::ostream& err) {
  if (usageError(files, output, err)) return kExitUsage;
  return runRenderLoaded(loadDocuments(files), output, out, err);
}

int runRenderLoaded(const Loaded& loaded, const std::string& output, std::ostream& out, std::ostream& err) {
  Workspace ws = buildWorkspace(loaded.documents);
  bool unreadable = reportUnreadable(loaded, ws, err);
  bool invalid = reportInvalid(ws, err);
  for (const auto& w : ws.warnings) err << "warning: " << w << "\n";

  std::vector<const WorkloadEntry*> ordered;
  for (const auto& w : ws.workloads) ordered.push_back(&w);
  std::stable_sort(ordered.begin(), ordered.end(), [](const WorkloadEntry* a, const WorkloadEntry* b) {
    return std::tie(a->record.meta.namespace_, a->record.meta.name, a->record.kind) <
           std::tie(b->record.meta.namespace_, b->record.meta.name, b->record.kind);
  });

  json items = json::array();
  std::string text;
  bool failed = invalid;
  std::map<int, controller::Plan> plans;  // by policy index, made when first needed
  for (const WorkloadEntry* w : ordered) {
    if (w->governedBy < 0) {
      err << "note: " << workloadLabel(*w) << ": no valid policy selects it; nothing to write\n";
      continue;
    }
    const auto& pe = ws.policies[static_cast<size_t>(w->governedBy)];
    const policy::Policy& p = *pe.parsed;
    std::string header = "# " + workloadLabel(*w) + ": " + policyName(p);
    for (int i : w->outranked) {
      const auto& other = *ws.policies[static_cast<size_t>(i)].parsed;
      header += " (outranks " + (other.clusterScoped() ? policyName(other) : other.namespace_ + "/" + other.name) + ")";
    }
    if (p.spec.suspend) {
      err << "note: " << workloadLabel(*w) << ": " << policyName(p) << " is suspended; nothing to write\n";
      continue;
    }
    if (w->record.kind == policy::WorkloadKind::kRollout && !w->record.workloadRefName.empty()) {
      err << "note: " << workloadLabel(*w) << ": runs the pod template of "
          << (w->record.workloadRefKind.empty() ? "Deployment" : w->record.workloadRefKind) << " "
          << w->record.workloadRefName << " (spec.workloadRef); nothing to write\n";
      continue;
    }
    int32_t effective = effectiveMaxSize(ws, p, w->record.meta.namespace_);
    if (effective != p.spec.pool.maxSize) {
      header += "; maxSize clamped from " + std::to_string(p.spec.pool.maxSize) + " to " + std::to_string(effective);
    }
    if (p.spec.mode == policy::Mode::kAudit) header += "; mode Audit: reported, not written";
    // What the operator would write: its own plan, on the files as the cluster.
    auto cached = plans.find(w->governedBy);
    if (cached == plans.end())
      cached = plans.emplace(w->governedBy, planFor(ws, static_cast<size_t>(w->governedBy))).first;
    const controller::Plan& plan = cached->second;
    const controller::PlannedWorkload* desired = nullptr;
    for (const auto& pw : plan.workloads) {
      if (pw.kind == w->record.kind && pw.namespace_ == w->record.meta.namespace_ && pw.name == w->record.meta.name)
        desired = &pw;
    }
    if (!desired) {
      std::string why = "cannot be rendered";
      for (const auto& st : plan.status.workloads) {
        if (st.kind == w->record.kind && st.name == w->record.meta.name &&
            (st.namespace_.empty() || st.namespace_ == w->record.meta.namespace_) && !st.message.empty())
          why = st.message;
      }
      err << w->source << ": document " << w->document << ": " << why << "\n";
      failed = true;
      continue;
    }
    for (const auto& missing : desired->missingContainers) {
      err << "warning: " << workloadLabel(*w) << ": container " << missing << " named in spec.containers of "
          << policyName(p) << " does not exist\n";
    }
    if (desired->configMap) {
      // Offline input rarely carries a uid; Enforce adds the owner reference from the live workload.
      if ((*desired->configMap)["metadata"].value("ownerReferences", json::array()).empty())
        header += "; the ConfigMap's ownerReference is added from the live workload's uid";
      items.push_back(*desired->configMap);
      text += "---\n" + header + "\n" + toYaml(*desired->configMap);
    }
    items.push_back(desired->apply);
    text += "---\n" + header + "\n" + toYaml(desired->apply);
  }

  if (output == "text")
    out << text;
  else
    print(json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", items}}, output, out);
  if (unreadable) return kExitUsage;
  return failed ? kExitFailed : kExitOk;
}

int runPlan(const std::vector<std::string>& files, const std::string& output, std::ostream& out, std::ostream& err) {
  if (usageError(files, output, err)) return kExitUsage;
  return runPlanLoaded(loadDocuments(files), output, out, err);
}

namespace {
int planOf(const Loaded& loaded, const std::string& output, std::ostream& out, std::ostream& err,
           const std::string& onlyConcerned);
}  // namespace

int runPlanLoaded(const Loaded& loaded, const std::string& output, std::ostream& out, std::ostream& err) {
  return planOf(loaded, output, out, err, "");
}

int runPlanLive(const Loaded& loaded, const std::string& liveSource, const std::string& output, std::ostream& out,
                std::ostream& err) {
  return planOf(loaded, output, out, err, liveSource);
}

namespace {

int planOf(const Loaded& loaded, const std::string& output, std::ostream& out, std::ostream& err,
           const std::string& onlyConcerned) {
  Workspace ws = buildWorkspace(loaded.documents);
  if (!onlyConcerned.empty()) {
    const bool anyOther = std::any_of(loaded.documents.begin(), loaded.documents.end(),
                                      [&](const policy::Document& d) { return d.source != onlyConcerned; });
    if (anyOther) {
      const auto concerned = databasesConcerned(ws, loaded.documents, onlyConcerned);
      std::erase_if(ws.databases, [&](const budget::DatabaseBudget& db) { return !concerned.count(db.database); });
    }
  }
  bool unreadable = reportUnreadable(loaded, ws, err);
  bool invalid = reportInvalid(ws, err, onlyConcerned);
  for (const auto& w : ws.warnings) err << "warning: " << w << "\n";
  // Figures poolguard had to assume: say which, and how to state them. And workloads whose pools would report the
  // same application_name: live usage is attributed by it, so it could not tell them apart.
  // (A Rollout with spec.workloadRef runs its Deployment's pods: the two share them, and their name, rightly.)
  std::set<std::pair<std::string, std::string>> runsAnothersPods;
  for (const auto& w : ws.workloads) {
    if (w.record.kind == policy::WorkloadKind::kRollout && !w.record.workloadRefName.empty())
      runsAnothersPods.emplace(w.record.meta.namespace_, w.record.meta.name);
  }
  for (const auto& db : ws.databases) {
    std::map<std::string, std::vector<std::string>> byApplicationName;
    for (const auto& pb : db.policies) {
      const policy::Policy* governing = nullptr;
      for (const auto& pe : ws.policies) {
        if (pe.parsed && pe.parsed->clusterScoped() == pb.cluster && pe.parsed->name == pb.name &&
            (pb.cluster || pe.parsed->namespace_ == pb.namespace_))
          governing = &*pe.parsed;
      }
      if (governing == nullptr) continue;
      for (const auto& wb : pb.workloads) {
        if (wb.facts.kind == policy::WorkloadKind::kRollout &&
            runsAnothersPods.count({wb.facts.namespace_, wb.facts.name}))
          continue;
        std::string name =
            render::expandApplicationName(governing->spec.delivery.applicationName, wb.facts.namespace_, wb.facts.name);
        if (!name.empty())
          byApplicationName[name].push_back(std::string(policy::toString(wb.facts.kind)) + " " + wb.facts.namespace_ +
                                            "/" + wb.facts.name);
      }
    }
    for (const auto& [name, workloads] : byApplicationName) {
      if (workloads.size() < 2) continue;
      std::string listed;
      for (const auto& w : workloads) listed += (listed.empty() ? "" : ", ") + w;
      err << "warning: " << listed << " report the same application_name \"" << name
          << "\": live usage cannot tell them apart; give one a delivery.applicationName of its own (such as "
             "\"{namespace}/{name}-job\")\n";
    }
    for (const auto& pb : db.policies) {
      for (const auto& wb : pb.workloads) {
        const auto& f = wb.facts;
        const std::string name = std::string(policy::toString(f.kind)) + " " + f.namespace_ + "/" + f.name;
        if (f.kind == policy::WorkloadKind::kDaemonSet && f.podsSource == "1 node assumed") {
          err << "warning: " << name << ": the nodes that run it are unknown here, 1 assumed; set the annotation "
              << budget::kNodesAnnotation << " on it, or plan with --live (status.desiredNumberScheduled)\n";
        } else if (f.kind == policy::WorkloadKind::kCronJob && f.podsSource.ends_with("assumed")) {
          err << "warning: " << name << ": concurrencyPolicy Allow lets runs overlap, "
              << budget::kDefaultConcurrentRuns << " assumed; set the annotation " << budget::kConcurrentRunsAnnotation
              << " on it, or concurrencyPolicy: Forbid\n";
        }
      }
    }
  }

  bool over = false;
  json databases = json::array();
  for (const auto& db : ws.databases) {
    over = over || db.overBudget();
    json d{
        {"database", db.database},   {"reservedConnections", db.reservedConnections}, {"steadyState", db.steadyState},
        {"worstCase", db.worstCase}, {"unclampedWorstCase", db.unclampedWorstCase},   {"state", databaseState(db)},
        {"policies", json::array()}};
    if (db.maxConnections) d["maxConnections"] = *db.maxConnections;
    if (db.available) d["available"] = *db.available;
    if (const auto* b = budgetFor(ws, db.database)) {
      json cb{{"name", b->database}, {"requireLeakDetection", b->ceilings.requireLeakDetection}};
      if (b->reservedConnections) cb["reservedConnections"] = *b->reservedConnections;
      if (b->maxConnections) cb["maxConnections"] = *b->maxConnections;
      if (b->ceilings.maxSize) cb["maxSizeCeiling"] = *b->ceilings.maxSize;
      d["clusterConnectionBudget"] = cb;
    }
    if (!db.allocations.empty()) {
      auto shareJson = [&](const budget::AllocationBudget& a, int index) {
        json j{{"steadyState", a.steadyState},
               {"worstCase", a.worstCase},
               {"unclampedWorstCase", a.unclampedWorstCase},
               {"over", a.over()},
               {"namespaces", shareNamespaces(db, index)}};
        if (!a.name.empty()) j["name"] = a.name;
        if (a.maxConnections) j["maxConnections"] = *a.maxConnections;
        return j;
      };
      d["allocations"] = json::array();
      for (size_t i = 0; i < db.allocations.size(); ++i)
        d["allocations"].push_back(shareJson(db.allocations[i], static_cast<int>(i)));
      d["unallocated"] = shareJson(*db.unallocated, -1);
    }
    for (const auto& pb : db.policies) {
      json pj{{"namespace", pb.namespace_},
              {"name", pb.name},
              {"kind", pb.cluster ? "ClusterConnectionPoolPolicy" : "ConnectionPoolPolicy"},
              {"onExceeded", policy::toString(pb.onExceeded)},
              {"weight", pb.weight},
              {"maxSize", pb.maxSize},
              {"effectiveMaxSize", pb.effectiveMaxSize},
              {"processesPerPod", pb.processesPerPod},
              {"overheadPerPod", pb.overheadPerPod},
              {"terminatingPods", pb.countTerminating ? "Count" : "Ignore"},
              {"clamped", pb.clamped},
              {"steadyState", pb.steadyState},
              {"allocation",
               pb.allocation >= 0 ? json(db.allocations[static_cast<size_t>(pb.allocation)].name) : json(nullptr)},
              {"worstCase", pb.worstCase},
              {"workloads", json::array()}};
      for (const auto& wb : pb.workloads) {
        pj["workloads"].push_back({{"kind", policy::toString(wb.facts.kind)},
                                   {"namespace", wb.facts.namespace_},
                                   {"name", wb.facts.name},
                                   {"podsNow", wb.facts.podsNow},
                                   {"podsMax", wb.facts.podsMax},
                                   {"surge", wb.facts.surge},
                                   {"podsSource", wb.facts.podsSource},
                                   {"terminating", wb.facts.terminating},
                                   {"perPod", wb.perPod},
                                   {"steadyState", wb.steadyState},
                                   {"worstCase", wb.worstCase}});
      }
      d["policies"].push_back(pj);
    }
    databases.push_back(d);
  }

  if (output != "text") {
    print(json{{"databases", databases}, {"overBudget", over}, {"inputErrors", inputErrorsJson(loaded, ws)}}, output,
          out);
  } else {
    std::vector<std::vector<std::string>> summary{
        {"DATABASE", "MAX", "RESERVED", "AVAILABLE", "STEADY", "WORST", "STATE"}};
    for (const auto& db : ws.databases) {
      summary.push_back({db.database, db.maxConnections ? std::to_string(*db.maxConnections) : "unknown",
                         std::to_string(db.reservedConnections), optionalNumber(db.available),
                         std::to_string(db.steadyState), std::to_string(db.worstCase), databaseState(db)});
    }
    printTable(summary, out);
    for (const auto& db : ws.databases) {
      out << "\nDatabase " << db.database << ":\n";
      if (const auto* b = budgetFor(ws, db.database)) {
        out << "  ClusterConnectionBudget " << b->database << ": maxConnections "
            << (b->maxConnections ? std::to_string(*b->maxConnections) : "from the policies or the server")
            << ", reserved "
            << (b->reservedConnections ? std::to_string(*b->reservedConnections) : "from the policies");
        if (b->ceilings.maxSize) out << ", maxSize ceiling " << *b->ceilings.maxSize;
        if (b->ceilings.requireLeakDetection) out << ", leak detection required";
        out << "\n";
      }
      if (!db.allocations.empty()) {
        std::vector<std::vector<std::string>> shares{{"ALLOCATION", "SHARE", "STEADY", "WORST", "STATE", "NAMESPACES"}};
        auto row = [&](const budget::AllocationBudget& a, int index) {
          std::string names;
          for (const auto& n : shareNamespaces(db, index)) names += (names.empty() ? "" : ",") + n;
          shares.push_back({a.name.empty() ? "(no allocation)" : a.name,
                            a.maxConnections ? std::to_string(*a.maxConnections) : "unknown",
                            std::to_string(a.steadyState), std::to_string(a.worstCase), shareState(db, a, index),
                            names.empty() ? "-" : names});
        };
        for (size_t i = 0; i < db.allocations.size(); ++i) row(db.allocations[i], static_cast<int>(i));
        row(*db.unallocated, -1);
        printTable(shares, out, "  ");
      }
      std::vector<std::vector<std::string>> rows{
          {"POLICY", "WORKLOAD", "PODS", "MAX PODS", "SURGE", "PER POD", "STEADY", "WORST", "MAXSIZE"}};
      for (const auto& pb : db.policies) {
        std::string maxSize = std::to_string(pb.effectiveMaxSize);
        if (pb.clamped) maxSize += " (clamped from " + std::to_string(pb.maxSize) + ")";
        for (const auto& pe : ws.policies) {
          if (!pe.parsed || pe.parsed->clusterScoped() != pb.cluster || pe.parsed->name != pb.name ||
              (!pb.cluster && pe.parsed->namespace_ != pb.namespace_))
            continue;
          if (pe.parsed->spec.pool.maxSize > pb.maxSize) {
            maxSize += " (ceiling; asks " + std::to_string(pe.parsed->spec.pool.maxSize) + ")";
          }
        }
        // A cluster policy has a row per namespace it governs workloads in: "ccpol/<name>", the namespace in the
        // workload column.
        const std::string policyColumn = pb.cluster ? "ccpol/" + pb.name : pb.namespace_ + "/" + pb.name;
        const std::string workloadPrefix = pb.cluster && !pb.namespace_.empty() ? pb.namespace_ + "/" : "";
        if (pb.workloads.empty()) rows.push_back({policyColumn, "(none)", "0", "0", "0", "-", "0", "0", maxSize});
        for (const auto& wb : pb.workloads) {
          rows.push_back(
              {policyColumn, std::string(policy::toString(wb.facts.kind)) + "/" + workloadPrefix + wb.facts.name,
               std::to_string(wb.facts.podsNow),
               std::to_string(wb.facts.podsMax) + (wb.facts.autoscaled ? " (HPA)" : "") +
                   (wb.facts.podsSource.empty() ? "" : " (" + wb.facts.podsSource + ")"),
               // With the old pods still terminating counted: "3 (+9 terminating)".
               std::to_string(wb.facts.surge) +
                   (wb.facts.terminating > 0 ? " (+" + std::to_string(wb.facts.terminating) + " terminating)" : ""),
               // With connections outside the pool: "22 (2 outside the pool)".
               std::to_string(wb.perPod) +
                   (pb.overheadPerPod > 0 ? " (" + std::to_string(pb.overheadPerPod) + " outside the pool)" : ""),
               std::to_string(wb.steadyState), std::to_string(wb.worstCase), maxSize});
        }
      }
      printTable(rows, out, "  ");
      if (db.anyShareOver()) {
        out << "  over budget: an allocation's worst case is above its share: lower pool.maxSize or HPA "
               "maxReplicas, raise the allocation, or set budget.onExceeded: Clamp\n";
      } else if (db.overBudget()) {
        out << "  over budget by " << db.worstCase - *db.available
            << " connections: lower pool.maxSize or HPA maxReplicas, raise max_connections, or set "
               "budget.onExceeded: Clamp\n";
      } else if (!db.available) {
        out << "  max_connections unknown: set spec.database.maxConnections to check this database\n";
      }
    }
  }
  if (unreadable) return kExitUsage;
  return over || invalid ? kExitFailed : kExitOk;
}

}  // namespace

}  // namespace poolguard::offline
