#include "budget/budget.h"

#include <algorithm>
#include <charconv>
#include <limits>

namespace poolguard::budget {
namespace {

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

WorkloadFacts factsFor(const WorkloadShape& shape) {
  WorkloadFacts f;
  f.kind = shape.kind;
  f.namespace_ = shape.namespace_;
  f.name = shape.name;
  f.podsNow = std::max(0, shape.replicas);
  f.autoscaled = shape.hpaMaxReplicas.has_value();
  f.podsMax = std::max(f.podsNow, shape.hpaMaxReplicas.value_or(shape.podsMax.value_or(0)));
  f.surges = shape.kind != policy::WorkloadKind::kStatefulSet && !shape.recreate;
  f.fullSurge = shape.fullSurge;
  f.maxSurge = shape.maxSurge;
  f.surge = f.surgeAt(f.podsMax);
  f.terminatingPerRun = shape.terminatingPerRun;
  f.overlapsOnlyWhenSurging = shape.overlapsOnlyWhenSurging;
  f.podsSource = shape.podsSource;
  return f;
}

int32_t WorkloadFacts::surgeAt(int32_t pods) const {
  if (!surges || pods <= 0) return 0;
  if (fullSurge) return pods;
  const int64_t extra = maxSurge.percent ? ceilDiv(int64_t{pods} * maxSurge.value, 100) : int64_t{maxSurge.value};
  return static_cast<int32_t>(std::clamp<int64_t>(extra, 0, pods));
}

int32_t WorkloadFacts::terminatingAt(int32_t pods) const {
  if (!countsTerminating || pods <= 0) return 0;
  if (terminatingPerRun > 0) return terminatingPerRun;
  if (!surges || (overlapsOnlyWhenSurging && surgeAt(pods) == 0)) return 0;
  return pods - surgeAt(pods);
}

WorkloadFacts underPolicy(WorkloadFacts facts, bool countTerminating) {
  facts.countsTerminating = countTerminating;
  facts.terminating = facts.terminatingAt(facts.podsMax);
  return facts;
}

namespace {

// A non-negative integer annotation of poolguard's; nullopt when absent or malformed (plan then warns, naming it).
std::optional<int32_t> countAnnotation(const model::Workload& w, const char* key) {
  auto it = w.meta.annotations.find(key);
  if (it == w.meta.annotations.end()) return std::nullopt;
  int32_t n = 0;
  const std::string& v = it->second;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n < 0) return std::nullopt;
  return n;
}

}  // namespace

WorkloadShape shapeOf(const model::Workload& workload, const model::Hpa* hpa) {
  using policy::WorkloadKind;
  WorkloadShape s;
  s.kind = workload.kind;
  s.name = workload.meta.name;
  s.namespace_ = workload.meta.namespace_.empty() ? "default" : workload.meta.namespace_;
  s.replicas = workload.replicas.value_or(1);
  if (hpa != nullptr) s.hpaMaxReplicas = hpa->maxReplicas;
  s.maxSurge = workload.maxSurge.value_or(kDefaultMaxSurge);
  switch (workload.kind) {
    case WorkloadKind::kDeployment:
      s.recreate = workload.strategyType == "Recreate";
      break;
    case WorkloadKind::kStatefulSet:
      break;
    case WorkloadKind::kDaemonSet:
      // One pod per node that should run it: the status's count, else the annotation, else 1 (plan warns).
      if (workload.desiredNumberScheduled) {
        s.replicas = *workload.desiredNumberScheduled;
        s.podsSource = "nodes";
      } else if (auto nodes = countAnnotation(workload, kNodesAnnotation)) {
        s.replicas = *nodes;
        s.podsSource = "nodes, annotation";
      } else {
        s.replicas = 1;
        s.podsSource = "1 node assumed";
      }
      s.recreate = workload.strategyType == "OnDelete";
      s.maxSurge = workload.maxSurge.value_or(kDaemonSetDefaultMaxSurge);
      // Without surge the DaemonSet controller starts a node's new pod only once its old one is gone.
      s.overlapsOnlyWhenSurging = true;
      break;
    case WorkloadKind::kJob: {
      // Its pods at once: parallelism (1 when absent), no more than completions when set; none once finished. A
      // failed pod's replacement starts while it terminates unless podReplacementPolicy is Failed.
      int32_t pods = workload.parallelism.value_or(1);
      if (workload.completions) pods = std::min(pods, *workload.completions);
      if (workload.finished) pods = 0;
      s.replicas = pods;
      s.recreate = true;
      if (!workload.replacesOnlyFailedPods) s.terminatingPerRun = pods;
      break;
    }
    case WorkloadKind::kCronJob: {
      // A run's pods: parallelism (1 when absent), no more than completions when set.
      int32_t perRun = workload.parallelism.value_or(1);
      if (workload.completions) perRun = std::min(perRun, *workload.completions);
      int32_t runs = 1;
      if (workload.concurrencyPolicy.empty() || workload.concurrencyPolicy == "Allow") {
        if (auto n = countAnnotation(workload, kConcurrentRunsAnnotation)) {
          runs = std::max(1, *n);
          s.podsSource = std::to_string(runs) + (runs == 1 ? " run" : " runs");
        } else {
          runs = kDefaultConcurrentRuns;
          s.podsSource = std::to_string(runs) + " runs assumed";
        }
      } else {
        s.podsSource = "1 run";
        if (workload.concurrencyPolicy == "Replace") s.terminatingPerRun = perRun;
      }
      // A suspended CronJob starts no run (none replaces another); the ones already running count.
      if (workload.suspended) {
        runs = 0;
        s.terminatingPerRun = 0;
      }
      runs = std::max(runs, workload.activeRuns);
      auto pods = [&](int32_t n) {
        return static_cast<int32_t>(std::min<int64_t>(int64_t{n} * perRun, std::numeric_limits<int32_t>::max()));
      };
      s.replicas = pods(workload.activeRuns);
      s.podsMax = pods(runs);
      s.recreate = true;
      break;
    }
    case WorkloadKind::kRollout:
      if (workload.strategyType == "BlueGreen" || workload.strategyType == "CanaryTrafficRouting") s.fullSurge = true;
      break;
  }
  return s;
}

WorkloadFacts workloadFacts(const json& workload, const model::Hpa* hpa) {
  model::Diagnostics ignored;
  return workloadFacts(model::decodeWorkload(workload, ignored), hpa);
}

const model::Hpa* findHpa(const std::vector<model::Hpa>& hpas, policy::WorkloadKind kind, const std::string& ns,
                          const std::string& name) {
  for (const auto& h : hpas) {
    if (h.targets(kind, ns, name)) return &h;
  }
  return nullptr;
}

PolicyInput policyInput(const policy::Policy& p) {
  PolicyInput in;
  in.namespace_ = p.namespace_;
  in.name = p.name;
  in.onExceeded = p.spec.budget.onExceeded;
  in.weight = std::max(1, p.spec.budget.weight);
  in.maxSize = std::max(1, p.spec.pool.maxSize);
  in.processesPerPod = std::max(1, p.spec.pool.processesPerPod);
  in.overheadPerPod = std::max(0, p.spec.pool.overheadPerPod);
  in.countTerminating = p.spec.budget.terminatingPods == policy::TerminatingPods::kCount;
  return in;
}

const PolicyBudget* DatabaseBudget::find(const std::string& ns, const std::string& name, bool cluster) const {
  for (const auto& p : policies) {
    if (p.namespace_ == ns && p.name == name && p.cluster == cluster) return &p;
  }
  return nullptr;
}

namespace {

// Clamp within one share (docs/budget.md): the Clamp policies among `members` shrink, by weight, so that the
// share's worst case fits in `cap`; the others keep what they ask for.
void clampWithin(const std::vector<PolicyInput>& policies, const std::vector<size_t>& members, int64_t cap,
                 const std::vector<int64_t>& worstFactor, const std::vector<int64_t>& worstOverhead,
                 std::vector<int32_t>& effective) {
  int64_t asked = 0, overhead = 0;
  for (size_t i : members) {
    asked += worstFactor[i] * policies[i].maxSize;
    overhead += worstOverhead[i];
  }
  if (asked + overhead <= cap) return;
  // Connections opened outside the pools are fixed: the pools share what they leave.
  cap -= overhead;
  // What the Clamp policies may share: the cap minus what the Warn policies ask for.
  int64_t remaining = cap;
  std::vector<size_t> active;
  for (size_t i : members) {
    if (policies[i].onExceeded == policy::OnExceeded::kClamp && worstFactor[i] > 0)
      active.push_back(i);
    else
      remaining -= worstFactor[i] * policies[i].maxSize;
  }
  // Water-filling: a policy whose weighted share exceeds what it asks for keeps its maxSize and leaves the
  // rest to the others; repeat until every remaining policy is limited by its share.
  while (!active.empty()) {
    int64_t totalWeight = 0;
    for (size_t i : active) totalWeight += policies[i].weight;
    std::vector<size_t> satisfied;
    for (size_t i : active) {
      int64_t share = remaining > 0 ? remaining * policies[i].weight / totalWeight : 0;
      if (share / worstFactor[i] >= policies[i].maxSize) satisfied.push_back(i);
    }
    if (satisfied.empty()) {
      for (size_t i : active) {
        int64_t share = remaining > 0 ? remaining * policies[i].weight / totalWeight : 0;
        effective[i] = static_cast<int32_t>(std::max<int64_t>(1, share / worstFactor[i]));
      }
      return;
    }
    for (size_t i : satisfied) {
      remaining -= worstFactor[i] * policies[i].maxSize;
      active.erase(std::find(active.begin(), active.end(), i));
    }
  }
}

}  // namespace

const AllocationBudget* DatabaseBudget::shareOf(const PolicyBudget& p) const {
  if (p.allocation >= 0 && static_cast<size_t>(p.allocation) < allocations.size())
    return &allocations[static_cast<size_t>(p.allocation)];
  return unallocated ? &*unallocated : nullptr;
}

bool DatabaseBudget::anyShareOver() const {
  if (unallocated && unallocated->over()) return true;
  return std::any_of(allocations.begin(), allocations.end(), [](const AllocationBudget& a) { return a.over(); });
}

DatabaseBudget computeDatabase(const std::string& database, std::optional<int32_t> maxConnections,
                               int32_t reservedConnections, const std::vector<PolicyInput>& policies,
                               const std::vector<AllocationInput>& allocations) {
  DatabaseBudget db;
  db.database = database;
  db.maxConnections = maxConnections;
  db.reservedConnections = reservedConnections;
  if (maxConnections) db.available = int64_t{*maxConnections} - reservedConnections;

  // Connections one unit of maxSize costs per policy, at a rollout's peak at pods max and at pods now.
  std::vector<int64_t> worstFactor(policies.size(), 0);
  std::vector<int64_t> steadyFactor(policies.size(), 0);
  // Connections outside the pools, at the peak and at pods now: not scaled by maxSize.
  std::vector<int64_t> worstOverhead(policies.size(), 0);
  std::vector<int64_t> steadyOverhead(policies.size(), 0);
  // Of the peak's pods, those still terminating, per policy.
  std::vector<int64_t> terminatingPods(policies.size(), 0);
  for (size_t i = 0; i < policies.size(); ++i) {
    for (const auto& facts : policies[i].workloads) {
      const WorkloadFacts w = underPolicy(facts, policies[i].countTerminating);
      worstFactor[i] += w.peakPods() * policies[i].processesPerPod;
      steadyFactor[i] += int64_t{w.podsNow} * policies[i].processesPerPod;
      worstOverhead[i] += w.peakPods() * policies[i].overheadPerPod;
      steadyOverhead[i] += int64_t{w.podsNow} * policies[i].overheadPerPod;
      terminatingPods[i] += w.terminating;
    }
    db.unclampedWorstCase += worstFactor[i] * policies[i].maxSize + worstOverhead[i];
  }

  std::vector<int32_t> effective(policies.size());
  for (size_t i = 0; i < policies.size(); ++i) effective[i] = policies[i].maxSize;

  // The shares Clamp works within: without allocations the whole database; with them each allocation, and the
  // namespaces in none sharing what the allocations leave of available.
  auto groupOf = [&](size_t i) {
    int a = policies[i].allocation;
    return a >= 0 && static_cast<size_t>(a) < allocations.size() ? static_cast<size_t>(a) : allocations.size();
  };
  if (allocations.empty()) {
    std::vector<size_t> all(policies.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    if (db.available) clampWithin(policies, all, *db.available, worstFactor, worstOverhead, effective);
  } else {
    int64_t allocated = 0;
    for (const auto& a : allocations) {
      db.allocations.push_back(AllocationBudget{a.name, int64_t{a.maxConnections}});
      allocated += a.maxConnections;
    }
    db.unallocated = AllocationBudget{};
    if (db.available) db.unallocated->maxConnections = std::max<int64_t>(0, *db.available - allocated);
    for (size_t g = 0; g <= allocations.size(); ++g) {
      std::vector<size_t> members;
      for (size_t i = 0; i < policies.size(); ++i) {
        if (groupOf(i) == g) members.push_back(i);
      }
      const AllocationBudget& share = g < allocations.size() ? db.allocations[g] : *db.unallocated;
      if (share.maxConnections)
        clampWithin(policies, members, *share.maxConnections, worstFactor, worstOverhead, effective);
    }
    // Allocations that promise more than there is (each share fits, the sum does not): the database as a whole is
    // still held to available, from what each share left.
    if (db.available) {
      std::vector<PolicyInput> afterShares = policies;
      std::vector<size_t> all(policies.size());
      for (size_t i = 0; i < all.size(); ++i) {
        all[i] = i;
        afterShares[i].maxSize = effective[i];
      }
      clampWithin(afterShares, all, *db.available, worstFactor, worstOverhead, effective);
    }
  }

  for (size_t i = 0; i < policies.size(); ++i) {
    const auto& in = policies[i];
    PolicyBudget pb;
    pb.namespace_ = in.namespace_;
    pb.name = in.name;
    pb.onExceeded = in.onExceeded;
    pb.weight = in.weight;
    pb.maxSize = in.maxSize;
    pb.effectiveMaxSize = effective[i];
    pb.processesPerPod = in.processesPerPod;
    pb.overheadPerPod = in.overheadPerPod;
    pb.countTerminating = in.countTerminating;
    pb.clamped = effective[i] < in.maxSize;
    pb.cluster = in.cluster;
    pb.allocation = allocations.empty() || groupOf(i) == allocations.size() ? -1 : static_cast<int>(groupOf(i));
    pb.unclampedWorstCase = worstFactor[i] * in.maxSize + worstOverhead[i];
    pb.overheadWorstCase = worstOverhead[i];
    const int64_t perPod = int64_t{effective[i]} * in.processesPerPod + in.overheadPerPod;
    pb.terminatingWorstCase = terminatingPods[i] * perPod;
    for (const auto& w : in.workloads) {
      WorkloadBudget wb;
      wb.facts = underPolicy(w, in.countTerminating);
      wb.perPod = perPod;
      wb.steadyState = int64_t{w.podsNow} * wb.perPod;
      wb.worstCase = wb.facts.peakPods() * wb.perPod;
      pb.workloads.push_back(std::move(wb));
    }
    pb.steadyState = steadyFactor[i] * effective[i] + steadyOverhead[i];
    pb.worstCase = worstFactor[i] * effective[i] + worstOverhead[i];
    db.steadyState += pb.steadyState;
    db.worstCase += pb.worstCase;
    if (!allocations.empty()) {
      AllocationBudget& share =
          pb.allocation >= 0 ? db.allocations[static_cast<size_t>(pb.allocation)] : *db.unallocated;
      share.steadyState += pb.steadyState;
      share.worstCase += pb.worstCase;
      share.unclampedWorstCase += pb.unclampedWorstCase;
      ++share.policies;
    }
    db.policies.push_back(std::move(pb));
  }
  return db;
}

}  // namespace poolguard::budget
