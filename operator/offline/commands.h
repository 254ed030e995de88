#pragma once
// The offline commands for GitOps pipelines; `poolguard validate|render|plan -f FILE... [-o text|json|yaml]`.
// Each FILE may hold many YAML documents (or JSON, or a v1 List); "-" is standard input. Output goes to `out`,
// diagnostics to `err`. Exit codes: 0 success, 1 an invalid policy (validate, render) or a database over budget
// (plan), 2 a usage error or input the commands cannot read: a file that cannot be read or parsed, or a document
// with a value of the wrong type where Kubernetes would refuse it (model/records.h). Unreadable input is reported
// ("FILE: document N: KIND NS/NAME: FIELD: MESSAGE") and left out; everything else is still checked and printed,
// and the exit code is 2.
#include <ostream>
#include <string>
#include <vector>

#include "offline/workspace.h"

namespace poolguard::offline {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// Checks every ConnectionPoolPolicy and ClusterConnectionBudget with the rules the API server applies. Text output:
// one line per problem, "FILE: document N: ConnectionPoolPolicy NS/NAME: FIELD: MESSAGE" (N counts from 1).
int runValidate(const std::vector<std::string>& files, const std::string& output, std::ostream& out, std::ostream& err);
int runValidateLoaded(const Loaded& loaded, const std::string& output, std::ostream& out, std::ostream& err);

// Prints the server-side-apply bodies (workloads and ConfigMaps) Enforce writes for the Deployments and
// StatefulSets in the files, with budget Clamp applied. Text output is a YAML stream that
// `kubectl apply --server-side --field-manager poolguard -f -` accepts; json and yaml print a v1 List.
int runRender(const std::vector<std::string>& files, const std::string& output, std::ostream& out, std::ostream& err);
int runRenderLoaded(const Loaded& loaded, const std::string& output, std::ostream& out, std::ostream& err);

// Prints the connection budget per database: policies, workloads, steady state and worst case against
// max_connections - reserved, with the database's ClusterConnectionBudget (capacity, ceilings) when the files hold
// one. Exit 1 when any database is over budget, or a policy or budget is invalid.
int runPlan(const std::vector<std::string>& files, const std::string& output, std::ostream& out, std::ostream& err);
int runPlanLoaded(const Loaded& loaded, const std::string& output, std::ostream& out, std::ostream& err);
// plan --live: only the databases the documents not from `liveSource` concern (databasesConcerned) are reported and
// decide the exit code; all of them when every document is from it.
int runPlanLive(const Loaded& loaded, const std::string& liveSource, const std::string& output, std::ostream& out,
                std::ostream& err);

}  // namespace poolguard::offline
