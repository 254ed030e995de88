#pragma once
// Which policy governs a workload when several select it: a ConnectionPoolPolicy of its namespace wins over every
// ClusterConnectionPoolPolicy; among policies of one scope the highest priority wins, then the oldest
// (creationTimestamp), then namespace/name. Pure.
#include <map>
#include <string>
#include <vector>

#include "policy/types.h"

namespace poolguard::policy {

struct WorkloadKey {
  policy::WorkloadKind kind;
  std::string namespace_;
  std::string name;

  auto operator<=>(const WorkloadKey&) const = default;
  std::string toString() const;  // "Deployment ns/name"
};

// Whether `p` selects a workload of this kind with these labels in this namespace. A ClusterConnectionPoolPolicy
// also needs the namespace's labels to match its namespaceSelector (null: unknown, so it does not select).
bool selects(const policy::Policy& p, policy::WorkloadKind kind, const std::string& ns,
             const std::map<std::string, std::string>& labels,
             const std::map<std::string, std::string>* namespaceLabels = nullptr);

// True when `a` wins over `b` for a workload both select.
bool outranks(const policy::Policy& a, const policy::Policy& b);

// Among `candidates` (all selecting one workload), the winner's index; -1 when empty.
int winner(const std::vector<const policy::Policy*>& candidates);

}  // namespace poolguard::policy
