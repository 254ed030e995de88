#include "offline/workspace.h"

#include "policy/selection.h"

#include <algorithm>
#include <filesystem>
#include <map>

namespace poolguard::offline {
namespace {

std::string kindLabel(const json& obj) {
  auto it = obj.find("kind");
  return it != obj.end() && it->is_string() && !it->get_ref<const std::string&>().empty() ? it->get<std::string>()
                                                                                          : "object";
}

std::string objectLabel(const json& obj, const model::ObjectMeta& meta) {
  return kindLabel(obj) + " " + (meta.namespace_.empty() ? std::string("default") : meta.namespace_) + "/" +
         (meta.name.empty() ? std::string("<unnamed>") : meta.name);
}

}  // namespace

namespace {

bool isManifest(const std::filesystem::path& p) {
  const std::string ext = p.extension().string();
  return ext == ".yaml" || ext == ".yml" || ext == ".json";
}

// Appends the manifests of `dir` in lexical order of their names, descending into each subdirectory where it
// comes in that order when `recursive` (as kubectl's directory walk does). False, with the error, when a
// directory cannot be read.
bool walk(const std::filesystem::path& dir, bool recursive, std::vector<std::string>& out, std::string& error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<fs::directory_entry> entries;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(*it);
  if (ec) {
    error = dir.string() + ": cannot read the directory: " + ec.message();
    return false;
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.path().filename() < b.path().filename(); });
  for (const auto& e : entries) {
    std::error_code typeError;
    if (e.is_directory(typeError)) {
      if (recursive && !walk(e.path(), recursive, out, error)) return false;
    } else if (e.is_regular_file(typeError) && isManifest(e.path())) {
      out.push_back(e.path().string());
    }
  }
  return true;
}

// The files `f` stands for: itself, or a directory's manifests.
std::vector<std::string> expandInput(const std::string& f, bool recursive, std::vector<std::string>& errors) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (f == "-" || !fs::is_directory(f, ec)) return {f};
  std::vector<std::string> out;
  std::string error;
  if (!walk(f, recursive, out, error)) {
    errors.push_back(error);
    return {};
  }
  if (out.empty()) {
    errors.push_back(f + ": no .yaml, .yml or .json file in this directory" +
                     (recursive ? std::string() : std::string(" (-R reads its subdirectories too)")));
  }
  return out;
}

}  // namespace

Loaded loadDocuments(const std::vector<std::string>& inputs, bool recursive) {
  Loaded loaded;
  std::vector<std::string> files;
  for (const auto& input : inputs) {
    for (auto& f : expandInput(input, recursive, loaded.errors)) files.push_back(std::move(f));
  }
  for (const auto& f : files) {
    auto docs = policy::readDocuments(f);
    if (!docs) {
      loaded.errors.push_back(docs.error().message());
      continue;
    }
    for (auto& d : *docs) loaded.documents.push_back(std::move(d));
  }
  return loaded;
}

std::string toString(const InputError& e) {
  return e.source + ": document " + std::to_string(e.document) + ": " + e.object + ": " + policy::toString(e.error);
}

Workspace buildWorkspace(const std::vector<policy::Document>& documents) {
  Workspace ws;
  for (const auto& d : documents) {
    model::Diagnostics diagnostics(&d.spellings);
    const auto workloadKind = model::workloadKindOf(d.object);
    std::optional<model::Workload> workload;
    std::optional<model::Hpa> hpa;
    model::ObjectMeta meta;
    if (workloadKind) {
      workload = model::decodeWorkload(d.object, diagnostics);
      meta = workload->meta;
    } else if (model::isHpa(d.object)) {
      hpa = model::decodeHpa(d.object, diagnostics);
      meta = hpa->meta;
    } else {
      meta = model::decodeMeta(d.object, diagnostics);  // policies and every other kind: what any object must be
    }
    if ((workload || hpa) && meta.name.empty() && diagnostics.ok()) {
      diagnostics.add("metadata.name", "required: kubectl refuses an object without a name; add one");
    }
    if (!diagnostics.ok()) {
      for (const auto& e : diagnostics.errors()) {
        ws.inputErrors.push_back(InputError{d.source, d.index + 1, objectLabel(d.object, meta), e});
      }
      continue;
    }
    // kubectl apply puts an object without a namespace in the current one; offline, that is "default".
    const std::string ns = meta.namespace_.empty() ? "default" : meta.namespace_;
    // Only the objects kept are copied (a kustomize or Helm output holds many other kinds).
    auto withNamespace = [&] {
      json obj = d.object;
      if (!obj.contains("metadata") || !obj["metadata"].is_object()) obj["metadata"] = json::object();
      obj["metadata"]["namespace"] = ns;
      return obj;
    };
    if (model::isClusterBudget(d.object)) {
      BudgetEntry b{d.source, d.index + 1, d.object, std::nullopt, {}};
      auto parsed = policy::budgetFromJson(b.object, &b.errors);
      if (parsed) {
        if (budgetFor(ws, parsed->database) != nullptr) {
          b.errors.push_back({"metadata.name", "Duplicate value: \"" + parsed->database +
                                                   "\": a second ClusterConnectionBudget for this database; keep "
                                                   "one per database (it is named after the database)"});
        } else {
          b.parsed = *parsed;
        }
      }
      ws.budgets.push_back(std::move(b));
    } else if (model::isPolicy(d.object) || model::isClusterPolicy(d.object)) {
      // A cluster policy has no namespace.
      PolicyEntry e{
          d.source, d.index + 1, model::isClusterPolicy(d.object) ? d.object : withNamespace(), std::nullopt, {}};
      auto parsed = policy::fromJson(e.object, &e.errors);
      if (parsed) e.parsed = *parsed;
      ws.policies.push_back(std::move(e));
    } else if (workload && !workload->governable()) {
      // A CronJob's run (plan --live reads them: counted with the CronJob) or a finished Job: nothing to govern.
    } else if (workload) {
      WorkloadEntry w;
      w.source = d.source;
      w.document = d.index + 1;
      w.object = withNamespace();
      w.record = std::move(*workload);
      w.record.meta.namespace_ = ns;
      ws.workloads.push_back(std::move(w));
    } else if (hpa) {
      hpa->meta.namespace_ = ns;
      ws.hpas.push_back(std::move(*hpa));
    } else if (d.object.value("kind", json()) == "Namespace" && d.object.value("apiVersion", json()) == "v1" &&
               !meta.name.empty()) {
      ws.namespaceLabels[meta.name] = meta.labels;  // for the allocations of ClusterConnectionBudgets
    }
  }

  for (auto& w : ws.workloads) {
    std::vector<int> selecting;
    std::vector<const policy::Policy*> candidates;
    const auto namespaceLabels = labelsOfNamespace(ws, w.record.meta.namespace_);
    for (int i = 0; i < static_cast<int>(ws.policies.size()); ++i) {
      const auto& p = ws.policies[static_cast<size_t>(i)].parsed;
      if (!p || !policy::selects(*p, w.record.kind, w.record.meta.namespace_, w.record.meta.labels, &namespaceLabels))
        continue;
      selecting.push_back(i);
      candidates.push_back(&*p);
    }
    int best = policy::winner(candidates);
    if (best >= 0) w.governedBy = selecting[static_cast<size_t>(best)];
    for (int i : selecting) {
      // A cluster policy a namespace's own policy replaces is not outranked: the workload was never its to govern.
      if (i == w.governedBy) continue;
      if (best >= 0 && !candidates[static_cast<size_t>(best)]->clusterScoped() &&
          ws.policies[static_cast<size_t>(i)].parsed->clusterScoped())
        continue;
      w.outranked.push_back(i);
    }
  }

  // The operator's view of the same objects: a policy being parsed or not, workloads with the HPA that scales them.
  for (const auto& e : ws.policies) {
    auto record = std::make_shared<model::PolicyObject>();
    model::Diagnostics ignored;  // the document was checked above
    record->meta = model::decodeMeta(e.object, ignored);
    record->cluster = model::isClusterPolicy(e.object);
    if (e.parsed) {
      record->parsed = std::make_shared<const policy::Policy>(*e.parsed);
    } else {
      record->invalidMessage = e.errors.empty() ? "invalid" : policy::toString(e.errors.front());
    }
    ws.policyViews.push_back(controller::viewOf(std::move(record)));
  }
  for (const auto& w : ws.workloads) {
    const model::Hpa* hpa = budget::findHpa(ws.hpas, w.record.kind, w.record.meta.namespace_, w.record.meta.name);
    ws.workloadViews[w.record.meta.namespace_].push_back(
        controller::WorkloadView{w.record.kind, std::make_shared<const model::Workload>(w.record),
                                 hpa ? std::optional<model::Hpa>(*hpa) : std::nullopt});
  }

  // "policy shop/orders", or "ClusterConnectionPoolPolicy baseline".
  auto shortName = [](const policy::Policy& p) {
    return p.clusterScoped() ? policy::describe(p) : "policy " + p.namespace_ + "/" + p.name;
  };
  // One budget per database.name across namespaces, as plan() computes it for any of its policies.
  std::map<std::string, size_t> firstOfDatabase;
  std::map<std::string, std::optional<int32_t>> declared;
  for (size_t i = 0; i < ws.policies.size(); ++i) {
    const auto& p = ws.policies[i].parsed;
    if (!p) continue;
    const std::string& database = p->spec.database.name;
    firstOfDatabase.emplace(database, i);
    if (!p->spec.database.maxConnections) continue;
    if (const auto* b = budgetFor(ws, database); b && b->maxConnections) {
      if (*b->maxConnections != *p->spec.database.maxConnections) {
        ws.warnings.push_back("database " + database + ": " + shortName(*p) + " declares maxConnections " +
                              std::to_string(*p->spec.database.maxConnections) + "; ClusterConnectionBudget " +
                              database + " sets " + std::to_string(*b->maxConnections) + ", which is used");
      }
      continue;
    }
    auto& seen = declared[database];
    if (seen && *seen != *p->spec.database.maxConnections) {
      ws.warnings.push_back("database " + database + ": policies declare different maxConnections (" +
                            std::to_string(*seen) + " and " + std::to_string(*p->spec.database.maxConnections) +
                            " in " + shortName(*p) + "); the smallest is used");
    }
    seen = std::min(seen.value_or(INT32_MAX), *p->spec.database.maxConnections);
  }
  for (const auto& [database, index] : firstOfDatabase) ws.databases.push_back(planFor(ws, index).database);
  return ws;
}

controller::Plan planFor(const Workspace& ws, size_t index) {
  controller::Snapshot s;
  s.self = ws.policyViews.at(index);
  s.policies = ws.policyViews;
  s.workloads = ws.workloadViews;
  s.namespaceLabels = ws.namespaceLabels;
  if (s.self.parsed) {
    if (const auto* b = budgetFor(ws, s.self.parsed->spec.database.name)) s.clusterBudget = *b;
  }
  return controller::plan(s);
}

const policy::ClusterBudget* budgetFor(const Workspace& ws, const std::string& database) {
  for (const auto& b : ws.budgets) {
    if (b.parsed && b.parsed->database == database) return &*b.parsed;
  }
  return nullptr;
}

int32_t effectiveMaxSize(const Workspace& ws, const policy::Policy& p, const std::string& ns) {
  for (const auto& db : ws.databases) {
    if (db.database != p.spec.database.name) continue;
    if (const auto* pb = db.find(p.clusterScoped() ? ns : p.namespace_, p.name, p.clusterScoped()))
      return pb->effectiveMaxSize;
  }
  return p.spec.pool.maxSize;
}

std::map<std::string, std::string> labelsOfNamespace(const Workspace& ws, const std::string& ns) {
  std::map<std::string, std::string> labels;
  if (auto it = ws.namespaceLabels.find(ns); it != ws.namespaceLabels.end()) labels = it->second;
  labels.emplace(model::kNamespaceNameLabel, ns);
  return labels;
}

std::set<std::string> databasesConcerned(const Workspace& ws, const std::vector<policy::Document>& documents,
                                         const std::string& exceptSource) {
  std::set<std::string> out;
  auto databaseOf = [&](int policyIndex) -> const std::string* {
    if (policyIndex < 0) return nullptr;
    const auto& p = ws.policies[static_cast<size_t>(policyIndex)];
    return p.parsed ? &p.parsed->spec.database.name : nullptr;
  };
  for (const auto& p : ws.policies) {
    if (p.source != exceptSource && p.parsed) out.insert(p.parsed->spec.database.name);
  }
  for (const auto& b : ws.budgets) {
    if (b.source != exceptSource && b.parsed) out.insert(b.parsed->database);
  }
  for (const auto& w : ws.workloads) {
    if (w.source == exceptSource) continue;
    if (const auto* db = databaseOf(w.governedBy)) out.insert(*db);
  }
  for (const auto& d : documents) {
    // A Namespace whose labels the files set moves it between allocations and cluster policies' selectors: every
    // database with allocations or a cluster policy.
    if (d.source != exceptSource && d.object.is_object() && d.object.value("kind", json()) == "Namespace") {
      for (const auto& b : ws.budgets) {
        if (b.parsed && !b.parsed->allocations.empty()) out.insert(b.parsed->database);
      }
      for (const auto& p : ws.policies) {
        if (p.parsed && p.parsed->clusterScoped()) out.insert(p.parsed->spec.database.name);
      }
    }
    if (d.source == exceptSource || !model::isHpa(d.object)) continue;
    model::Diagnostics ignored;
    model::Hpa h = model::decodeHpa(d.object, ignored);
    const std::string ns = h.meta.namespace_.empty() ? "default" : h.meta.namespace_;
    for (const auto& w : ws.workloads) {
      if (!h.targets(w.record.kind, w.record.meta.namespace_, w.record.meta.name)) continue;
      if (w.record.meta.namespace_ != ns) continue;
      if (const auto* db = databaseOf(w.governedBy)) out.insert(*db);
    }
  }
  return out;
}

}  // namespace poolguard::offline
