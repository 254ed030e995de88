#pragma once
// What the offline commands read from their files: policies, workloads and HPAs, with the governing policy of
// each workload decided by the same rule the operator uses and the budget computed per database. Pure apart
// from loadDocuments, which reads the files.
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "budget/budget.h"
#include "common/result.h"
#include "policy/parse.h"
#include "policy/types.h"

namespace poolguard::offline {

using json = nlohmann::json;

// Reads every file ("-" = standard input) into documents, in order. Fails on the first unreadable file.
Result<std::vector<policy::Document>> loadDocuments(const std::vector<std::string>& files);

bool isPolicy(const json& obj);
bool isWorkload(const json& obj);
bool isHpa(const json& obj);

struct PolicyEntry {
  std::string source;
  int document = 0;  // 1-based
  json object;
  std::optional<policy::Policy> parsed;  // nullopt when invalid
  std::vector<policy::FieldError> errors;
};

struct WorkloadEntry {
  std::string source;
  int document = 0;
  json object;
  policy::WorkloadKind kind = policy::WorkloadKind::kDeployment;
  std::string namespace_;
  std::string name;
  int governedBy = -1;         // index into Workspace::policies; -1 when no valid policy selects it
  std::vector<int> outranked;  // other valid policies that select it and lose
};

struct Workspace {
  std::vector<PolicyEntry> policies;
  std::vector<WorkloadEntry> workloads;
  std::vector<json> hpas;
  std::vector<budget::DatabaseBudget> databases;  // ordered by database name
  std::vector<std::string> warnings;              // e.g. policies of one database declaring different maxConnections
};

// Objects without metadata.namespace are in "default", as kubectl apply would put them.
Workspace buildWorkspace(const std::vector<policy::Document>& documents);

// True when `a` wins over `b` for a workload both select: highest priority, then the oldest creationTimestamp,
// then namespace/name (the operator's rule).
bool outranks(const policy::Policy& a, const policy::Policy& b);

// The effective maxSize of a policy after Clamp.
int32_t effectiveMaxSize(const Workspace& ws, const policy::Policy& p);

}  // namespace poolguard::offline
