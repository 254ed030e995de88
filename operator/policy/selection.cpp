#include "policy/selection.h"

#include <algorithm>

namespace poolguard::policy {

std::string WorkloadKey::toString() const {
  return std::string(policy::toString(kind)) + " " + namespace_ + "/" + name;
}

bool selects(const policy::Policy& p, policy::WorkloadKind kind, const std::string& ns,
             const std::map<std::string, std::string>& labels,
             const std::map<std::string, std::string>* namespaceLabels) {
  if (p.clusterScoped()) {
    if (namespaceLabels == nullptr || !p.spec.namespaceSelector) return false;
    if (!poolguard::matches(*p.spec.namespaceSelector, *namespaceLabels)) return false;
  } else if (p.namespace_ != ns) {
    return false;
  }
  if (std::find(p.spec.kinds.begin(), p.spec.kinds.end(), kind) == p.spec.kinds.end()) return false;
  return poolguard::matches(p.spec.selector, labels);
}

bool outranks(const policy::Policy& a, const policy::Policy& b) {
  if (a.clusterScoped() != b.clusterScoped()) return !a.clusterScoped();  // the namespace's own policy wins
  if (a.spec.priority != b.spec.priority) return a.spec.priority > b.spec.priority;
  // RFC 3339 timestamps in UTC with a fixed layout compare correctly as strings; an empty one (not yet
  // persisted) sorts last.
  if (a.creationTimestamp != b.creationTimestamp) {
    if (a.creationTimestamp.empty()) return false;
    if (b.creationTimestamp.empty()) return true;
    return a.creationTimestamp < b.creationTimestamp;
  }
  if (a.namespace_ != b.namespace_) return a.namespace_ < b.namespace_;
  return a.name < b.name;
}

int winner(const std::vector<const policy::Policy*>& candidates) {
  int best = -1;
  for (int i = 0; i < static_cast<int>(candidates.size()); ++i) {
    if (best < 0 || outranks(*candidates[static_cast<size_t>(i)], *candidates[static_cast<size_t>(best)])) best = i;
  }
  return best;
}

}  // namespace poolguard::policy
