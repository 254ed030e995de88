#pragma once
// What the offline commands read from their files: policies, budgets, workloads, HPAs and Namespaces. Every document is
// type-checked as it is read (model/records.h); one that fails is reported and left out, and the others are still read.
// The decisions are the operator's own: planFor() runs controller::plan on a Snapshot built from the files, as if they
// were the cluster (nothing written yet, no usage check), so the budget, Clamp and the rendered bodies are what
// the operator would decide. Pure apart from loadDocuments, which reads the files.
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "budget/budget.h"
#include "common/result.h"
#include "controller/plan.h"
#include "model/records.h"
#include "policy/parse.h"
#include "policy/types.h"

namespace poolguard::offline {

using json = nlohmann::json;

struct Loaded {
  std::vector<policy::Document> documents;  // of every readable file, in order
  std::vector<std::string> errors;          // one line per file that cannot be read or parsed, naming it
};

// Reads every file ("-" = standard input) into documents, in order. A directory stands for its .yaml, .yml and
// .json files in lexical order (with `recursive`, those of its subdirectories too), as `kubectl apply -f DIR [-R]`
// reads them. A file that cannot be read or parsed, or a directory without such files, is an error naming it; the
// other files are still read.
Loaded loadDocuments(const std::vector<std::string>& files, bool recursive = false);

// A document the commands cannot read: a value of the wrong type where Kubernetes would refuse it.
struct InputError {
  std::string source;
  int document = 0;    // 1-based
  std::string object;  // "Deployment shop/web", "ConnectionPoolPolicy default/<unnamed>"
  policy::FieldError error;
};
// "FILE: document N: OBJECT: FIELD: MESSAGE"
std::string toString(const InputError& e);

struct PolicyEntry {
  std::string source;
  int document = 0;  // 1-based
  json object;
  std::optional<policy::Policy> parsed;  // nullopt when invalid
  std::vector<policy::FieldError> errors;
};

struct BudgetEntry {
  std::string source;
  int document = 0;  // 1-based
  json object;
  std::optional<policy::ClusterBudget> parsed;  // nullopt when invalid (then no budget applies to its database)
  std::vector<policy::FieldError> errors;
};

struct WorkloadEntry {
  std::string source;
  int document = 0;
  json object;                 // with metadata.namespace filled in
  model::Workload record;      // meta.namespace_ is "default" when the document has none
  int governedBy = -1;         // index into Workspace::policies; -1 when no valid policy selects it
  std::vector<int> outranked;  // other valid policies that select it and lose
};

struct Workspace {
  std::vector<PolicyEntry> policies;
  std::vector<BudgetEntry> budgets;  // ClusterConnectionBudgets, in input order
  std::vector<WorkloadEntry> workloads;
  std::vector<model::Hpa> hpas;
  // The labels of the Namespace objects in the files, by name (a namespace without one carries only
  // kubernetes.io/metadata.name, as the API server gives every namespace).
  std::map<std::string, std::map<std::string, std::string>> namespaceLabels;
  // The same, as the operator's caches hold them (policy views in the order of `policies`).
  std::vector<controller::PolicyView> policyViews;
  std::map<std::string, std::vector<controller::WorkloadView>> workloadViews;  // by namespace
  std::vector<budget::DatabaseBudget> databases;                               // ordered by database name, from plan()
  std::vector<std::string> warnings;    // e.g. policies of one database declaring different maxConnections
  std::vector<InputError> inputErrors;  // documents left out, in input order
};

// The valid ClusterConnectionBudget of `database` in the workspace; nullptr when none.
const policy::ClusterBudget* budgetFor(const Workspace& ws, const std::string& database);

// Objects without metadata.namespace are in "default", as kubectl apply would put them.
Workspace buildWorkspace(const std::vector<policy::Document>& documents);

// The effective maxSize of a policy after Clamp (a cluster policy's in namespace `ns`).
int32_t effectiveMaxSize(const Workspace& ws, const policy::Policy& p, const std::string& ns = "");

// The labels of a namespace: its Namespace object's in the files, and kubernetes.io/metadata.name.
std::map<std::string, std::string> labelsOfNamespace(const Workspace& ws, const std::string& ns);

// The databases the documents not from `exceptSource` concern: those their policies and budgets name, and those of
// the policies governing their workloads and the workloads their HPAs target (`plan --live` reports only these).
std::set<std::string> databasesConcerned(const Workspace& ws, const std::vector<policy::Document>& documents,
                                         const std::string& exceptSource);

// What the operator would decide for the valid policy ws.policies[index], given the files as the cluster.
controller::Plan planFor(const Workspace& ws, size_t index);

}  // namespace poolguard::offline
