#include "budget/admission.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

namespace poolguard::budget {
namespace {

constexpr size_t kMaxNameLength = 253;

// Connections a workload holds at worst with `pods` pods at most (a rollout's surge, and the old pods still
// terminating when its policy counts them, on top). The surge follows the kind (budget.cpp shapeOf): a blue-green
// or traffic-routed Argo Rollout runs all its pods twice, so each replica more costs two pods' connections.
int64_t worstAt(const WorkloadBudget& w, int32_t pods) { return w.facts.peakAt(pods) * w.perPod; }

// The most pods the workload may reach when `room` connections more than today's worst case are its own.
int32_t podsWithin(const WorkloadBudget& w, int64_t room) {
  const int32_t from = w.facts.podsMax;
  const int64_t base = worstAt(w, from);
  if (w.perPod <= 0 || room <= 0) return from;
  // worstAt grows by at least perPod per pod: the answer is below from + room / perPod + 1.
  int64_t lo = from, hi = std::min<int64_t>(int64_t{from} + room / w.perPod + 1, INT32_MAX);
  while (lo < hi) {
    int64_t mid = lo + (hi - lo + 1) / 2;
    if (worstAt(w, static_cast<int32_t>(mid)) - base <= room)
      lo = mid;
    else
      hi = mid - 1;
  }
  return static_cast<int32_t>(lo);
}

struct Member {
  const WorkloadBudget* workload;
  size_t share;
};

std::string resourceOf(policy::WorkloadKind kind) { return policy::infoOf(kind).resource; }

// The kinds whose replicas the policy checks (its resource rules and isWorkload): only they get an allotment.
bool checksReplicas(policy::WorkloadKind kind) {
  return kind == policy::WorkloadKind::kDeployment || kind == policy::WorkloadKind::kStatefulSet ||
         kind == policy::WorkloadKind::kRollout;
}

std::string shortDigest(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return std::string(out, 8);
}

}  // namespace

std::vector<Allotment> allotments(const DatabaseBudget& db) {
  std::vector<Allotment> out;
  if (!db.available) return out;

  // The shares: without allocations the whole database; with them each allocation and the namespaces in none.
  struct Share {
    std::string label;
    int64_t limit = 0;
    int64_t worstCase = 0;
    int64_t room = 0;
    std::vector<const WorkloadBudget*> members;
  };
  std::vector<Share> shares;
  if (db.allocations.empty()) {
    shares.push_back(Share{"the database", *db.available, db.worstCase, 0, {}});
  } else {
    for (const auto& a : db.allocations)
      shares.push_back(Share{a.label(), a.maxConnections.value_or(0), a.worstCase, 0, {}});
    shares.push_back(
        Share{db.unallocated->label(), db.unallocated->maxConnections.value_or(0), db.unallocated->worstCase, 0, {}});
  }
  for (const auto& p : db.policies) {
    // The share it counts against: its allocation, or (the last share) the namespaces in none.
    const AllocationBudget* a = db.shareOf(p);
    const size_t g =
        a == nullptr || a == &*db.unallocated ? shares.size() - 1 : static_cast<size_t>(a - db.allocations.data());
    // Only the kinds whose replicas the admission policy checks take room: a DaemonSet's pods follow the nodes,
    // a Job's its parallelism and a CronJob's its schedule (their worst case is in the share's all the same).
    for (const auto& w : p.workloads) {
      if (checksReplicas(w.facts.kind)) shares[g].members.push_back(&w);
    }
  }

  // Each share's room, and the database's: when allocations promise more than there is, the shares' rooms are
  // scaled down so that together they never exceed what the database has left.
  int64_t total = 0;
  for (auto& s : shares) {
    s.room = std::max<int64_t>(0, s.limit - s.worstCase);
    total += s.room;
  }
  const int64_t dbRoom = std::max<int64_t>(0, *db.available - db.worstCase);
  if (total > dbRoom) {
    for (auto& s : shares) s.room = total > 0 ? s.room * dbRoom / total : 0;
  }

  for (auto& s : shares) {
    if (s.members.empty()) continue;
    // Order: largest worst case first, then by name, so the split is the same on every reconcile.
    auto& members = s.members;
    std::stable_sort(members.begin(), members.end(), [](const WorkloadBudget* a, const WorkloadBudget* b) {
      if (a->worstCase != b->worstCase) return a->worstCase > b->worstCase;
      return std::tie(a->facts.namespace_, a->facts.name, a->facts.kind) <
             std::tie(b->facts.namespace_, b->facts.name, b->facts.kind);
    });
    int64_t sumWorst = 0;
    for (const auto* w : members) sumWorst += w->worstCase;
    // First in proportion to each workload's worst case (equal parts when none has any), in whole pods.
    std::vector<int32_t> pods(members.size());
    int64_t used = 0;
    for (size_t i = 0; i < members.size(); ++i) {
      const auto& w = *members[i];
      int64_t part = sumWorst > 0 ? s.room * w.worstCase / sumWorst : s.room / static_cast<int64_t>(members.size());
      pods[i] = podsWithin(w, part);
      used += worstAt(w, pods[i]) - worstAt(w, w.facts.podsMax);
    }
    // Then what whole pods left over, a pod at a time in the same order, while one more still fits.
    for (bool added = true; added;) {
      added = false;
      for (size_t i = 0; i < members.size(); ++i) {
        const auto& w = *members[i];
        if (pods[i] == INT32_MAX) continue;
        int64_t cost = worstAt(w, pods[i] + 1) - worstAt(w, pods[i]);
        if (cost <= 0 || used + cost > s.room) continue;
        ++pods[i];
        used += cost;
        added = true;
      }
    }
    for (size_t i = 0; i < members.size(); ++i) {
      const auto& w = *members[i];
      Allotment a;
      a.kind = w.facts.kind;
      a.namespace_ = w.facts.namespace_;
      a.name = w.facts.name;
      a.autoscaled = w.facts.autoscaled;
      a.podsMax = w.facts.podsMax;
      a.maxPods = pods[i];
      a.perPod = w.perPod;
      a.allotted = worstAt(w, pods[i]) - worstAt(w, w.facts.podsMax);
      a.share = s.label;
      a.shareLimit = s.limit;
      a.shareWorstCase = s.worstCase;
      out.push_back(std::move(a));
    }
  }
  std::sort(out.begin(), out.end(), [](const Allotment& a, const Allotment& b) {
    return std::tie(a.namespace_, a.name, a.kind) < std::tie(b.namespace_, b.name, b.kind);
  });
  return out;
}

std::string admissionObjectName(const std::string& database) {
  const std::string prefix = "poolguard-budget-";
  if (prefix.size() + database.size() <= kMaxNameLength) return prefix + database;
  std::string digest = shortDigest(database);
  std::string head = database.substr(0, kMaxNameLength - prefix.size() - digest.size() - 1);
  while (!head.empty() && (head.back() == '-' || head.back() == '.')) head.pop_back();
  return prefix + head + "-" + digest;
}

std::string allotmentKey(policy::WorkloadKind kind, const std::string& ns, const std::string& name) {
  return resourceOf(kind) + "_" + ns + "_" + name;
}

namespace {

// The CEL of the policy. params is the budget's ConnectionAllotment (crds/poolguard.dev_connectionallotments.yaml):
// spec.database, spec.maxSize (the ceiling, when set), spec.requireLeakDetection and spec.allotments by
// allotmentKey().
json variables() {
  auto var = [](const char* name, const char* expression) { return json{{"name", name}, {"expression", expression}}; };
  return json::array({
      var("database", "params.spec.database"),
      var("isPolicy", "request.resource.group == 'poolguard.dev'"),
      // The kinds whose replicas are checked: Deployments, StatefulSets and Argo Rollouts' Rollouts (a rule may name
      // a resource the cluster does not serve: it then matches nothing).
      var("isWorkload",
          "(request.resource.group == 'apps' && "
          "(request.resource.resource == 'deployments' || request.resource.resource == 'statefulsets')) || "
          "(request.resource.group == 'argoproj.io' && request.resource.resource == 'rollouts')"),
      var("isHpa",
          "request.resource.group == 'autoscaling' && request.resource.resource == 'horizontalpodautoscalers'"),
      // A policy of this database, new here: created, or moved from another database.
      var("policyHere",
          "variables.isPolicy && has(object.spec.database) && object.spec.database.name == variables.database"),
      var("policyNewHere",
          "request.operation == 'CREATE' || !has(oldObject.spec.database) || "
          "oldObject.spec.database.name != variables.database"),
      var("maxSize", "has(object.spec.pool) && has(object.spec.pool.maxSize) ? object.spec.pool.maxSize : 0"),
      var("oldMaxSize",
          "request.operation == 'UPDATE' && has(oldObject.spec.pool) && has(oldObject.spec.pool.maxSize) ? "
          "oldObject.spec.pool.maxSize : 0"),
      var("leakOff",
          "!has(object.spec.pool) || !has(object.spec.pool.leakDetectionThreshold) || "
          "duration(object.spec.pool.leakDetectionThreshold) == duration('0s')"),
      var("leakWasOff",
          "request.operation == 'CREATE' || !has(oldObject.spec.pool) || "
          "!has(oldObject.spec.pool.leakDetectionThreshold) || "
          "duration(oldObject.spec.pool.leakDetectionThreshold) == duration('0s')"),
      // The HPA controller finds its target by the group of scaleTargetRef.apiVersion and its kind.
      var("targetResource",
          "!variables.isHpa || !has(object.spec.scaleTargetRef.apiVersion) ? '' : "
          "object.spec.scaleTargetRef.apiVersion.startsWith('apps/') ? "
          "(object.spec.scaleTargetRef.kind == 'Deployment' ? 'deployments' : "
          "object.spec.scaleTargetRef.kind == 'StatefulSet' ? 'statefulsets' : '') : "
          "object.spec.scaleTargetRef.apiVersion.startsWith('argoproj.io/') && "
          "object.spec.scaleTargetRef.kind == 'Rollout' ? 'rollouts' : ''"),
      var("key",
          "variables.isWorkload ? request.resource.resource + '_' + request.namespace + '_' + request.name : "
          "variables.targetResource != '' ? variables.targetResource + '_' + request.namespace + '_' + "
          "object.spec.scaleTargetRef.name : ''"),
      var("allotted", "variables.key != '' && has(params.spec.allotments) && variables.key in params.spec.allotments"),
      // Read only where allotted is true (variables are evaluated when first used).
      var("allotment", "params.spec.allotments[variables.key]"),
      var("room",
          "' (' + string(variables.allotment.shareConnections) + ' connections, ' + "
          "string(variables.allotment.shareWorstCase) + ' taken at worst) allows at most ' + "
          "string(variables.allotment.maxPods)"),
  });
}

json validations() {
  auto rule = [](const char* expression, const char* messageExpression) {
    return json{{"expression", expression},
                {"messageExpression", messageExpression},
                {"message", "the change breaks the database's connection budget (ClusterConnectionBudget)"},
                {"reason", "Forbidden"}};
  };
  return json::array({
      rule("!variables.policyHere || !has(params.spec.maxSize) || variables.maxSize <= params.spec.maxSize || "
           "(!variables.policyNewHere && variables.maxSize <= variables.oldMaxSize)",
           "'database ' + variables.database + ': pool.maxSize ' + string(variables.maxSize) + ' is above the "
           "ceiling of ' + string(params.spec.maxSize) + ' connections per pool (ClusterConnectionBudget ' + "
           "variables.database + ', spec.ceilings.maxSize); set pool.maxSize to ' + string(params.spec.maxSize) + "
           "' or less'"),
      rule("!variables.policyHere || !has(params.spec.requireLeakDetection) || !params.spec.requireLeakDetection || "
           "!variables.leakOff || (!variables.policyNewHere && variables.leakWasOff)",
           "'database ' + variables.database + ': pool.leakDetectionThreshold is 0s (off), and ClusterConnectionBudget "
           "' + variables.database + ' requires leak detection (spec.ceilings.requireLeakDetection); set it to "
           "30s, say'"),
      // replicas, directly or through the scale subresource (kubectl scale): a raise beyond the allotment. Keeping
      // or lowering a value is always allowed. An autoscaled workload's allotment is at least its HPA's maximum, so
      // the HPA's own scaling always fits; its replicas are still checked, as after the HPA is deleted.
      rule("!variables.isWorkload || !variables.allotted || !has(object.spec.replicas) || object.spec.replicas <= "
           "variables.allotment.maxPods || "
           "(request.operation == 'UPDATE' && has(oldObject.spec.replicas) && "
           "object.spec.replicas <= oldObject.spec.replicas)",
           "'database ' + variables.database + ': ' + (request.resource.resource == 'deployments' ? 'Deployment ' : "
           "request.resource.resource == 'rollouts' ? 'Rollout ' : 'StatefulSet ') + request.namespace + '/' + "
           "request.name + ' asks for ' + string(object.spec.replicas) + "
           "' replicas; its allotment in ' + variables.allotment.share + variables.room + ' replicas at ' + "
           "string(variables.allotment.perPod) + ' connections per pod. Keep the replicas at ' + "
           "string(variables.allotment.maxPods) + ' or fewer, or ask the owners of the database to raise the share "
           "(ClusterConnectionBudget ' + variables.database + ')'"),
      // an HPA's maxReplicas: created, moved to another target, or raised beyond the allotment.
      rule("!variables.isHpa || !variables.allotted || object.spec.maxReplicas <= variables.allotment.maxPods || "
           "(request.operation == 'UPDATE' && oldObject.spec.scaleTargetRef == object.spec.scaleTargetRef && "
           "object.spec.maxReplicas <= oldObject.spec.maxReplicas)",
           "'database ' + variables.database + ': HorizontalPodAutoscaler ' + request.namespace + '/' + request.name "
           "+ ' asks for maxReplicas ' + string(object.spec.maxReplicas) + '; the allotment of ' + "
           "object.spec.scaleTargetRef.kind + ' ' + object.spec.scaleTargetRef.name + ' in ' + "
           "variables.allotment.share + variables.room + ' pods at ' + string(variables.allotment.perPod) + ' "
           "connections per pod. Keep maxReplicas at ' + string(variables.allotment.maxPods) + ' or fewer, or ask "
           "the owners of the database to raise the share (ClusterConnectionBudget ' + variables.database + ')'"),
  });
}

json metadataFor(const std::string& name, const std::string& database, const std::string& uid) {
  json labels = {{"app.kubernetes.io/part-of", "poolguard"}};
  // A label value holds at most 63 characters: longer database names are found by the owner reference.
  if (database.size() <= 63) labels["poolguard.dev/budget"] = database;
  return {{"name", name},
          {"labels", labels},
          {"ownerReferences", json::array({{{"apiVersion", "poolguard.dev/v1alpha1"},
                                            {"kind", "ClusterConnectionBudget"},
                                            {"name", database},
                                            {"uid", uid}}})}};
}

}  // namespace

AdmissionObjects admissionObjects(const policy::ClusterBudget& budget, const std::string& uid,
                                  const DatabaseBudget* db) {
  AdmissionObjects o;
  o.name = admissionObjectName(budget.database);
  const json meta = metadataFor(o.name, budget.database, uid);

  json spec = {{"database", budget.database}};
  if (budget.ceilings.maxSize) spec["maxSize"] = *budget.ceilings.maxSize;
  if (budget.ceilings.requireLeakDetection) spec["requireLeakDetection"] = true;
  json allotted = json::object();
  if (db) {
    for (const auto& a : allotments(*db)) {
      allotted[allotmentKey(a.kind, a.namespace_, a.name)] = {{"maxPods", a.maxPods},
                                                              {"autoscaled", a.autoscaled},
                                                              {"share", a.share},
                                                              {"shareConnections", a.shareLimit},
                                                              {"shareWorstCase", a.shareWorstCase},
                                                              {"perPod", a.perPod}};
    }
  }
  o.allotted = allotted.size();
  spec["allotments"] = std::move(allotted);
  o.params = {
      {"apiVersion", "poolguard.dev/v1alpha1"}, {"kind", "ConnectionAllotment"}, {"metadata", meta}, {"spec", spec}};

  auto rules = json::array({
      {{"apiGroups", {"poolguard.dev"}},
       {"apiVersions", {"*"}},
       {"operations", {"CREATE", "UPDATE"}},
       {"resources", {"connectionpoolpolicies", "clusterconnectionpoolpolicies"}}},
      {{"apiGroups", {"apps"}},
       {"apiVersions", {"*"}},
       {"operations", {"UPDATE"}},
       {"resources", {"deployments", "deployments/scale", "statefulsets", "statefulsets/scale"}}},
      // Argo Rollouts' Rollouts (and their scale subresource): matches nothing where the CRD is not installed, and
      // takes effect as soon as it is, without a new policy.
      {{"apiGroups", {"argoproj.io"}},
       {"apiVersions", {"*"}},
       {"operations", {"UPDATE"}},
       {"resources", {"rollouts", "rollouts/scale"}}},
      {{"apiGroups", {"autoscaling"}},
       {"apiVersions", {"*"}},
       {"operations", {"CREATE", "UPDATE"}},
       {"resources", {"horizontalpodautoscalers"}}},
  });
  o.policy = {{"apiVersion", "admissionregistration.k8s.io/v1"},
              {"kind", "ValidatingAdmissionPolicy"},
              {"metadata", meta},
              {"spec",
               {
                   // An expression that cannot be evaluated lets the change through: a refusal is a guard in front
                   // of the budget, which still reports and clamps what gets past it (docs/admission.md).
                   {"failurePolicy", "Ignore"},
                   {"paramKind", {{"apiVersion", "poolguard.dev/v1alpha1"}, {"kind", "ConnectionAllotment"}}},
                   {"matchConstraints", {{"resourceRules", rules}}},
                   {"variables", variables()},
                   {"validations", validations()},
               }}};
  o.binding = {{"apiVersion", "admissionregistration.k8s.io/v1"},
               {"kind", "ValidatingAdmissionPolicyBinding"},
               {"metadata", meta},
               {"spec",
                {{"policyName", o.name},
                 {"paramRef", {{"name", o.name}, {"parameterNotFoundAction", "Allow"}}},
                 {"validationActions", budget.admissionMode == policy::AdmissionMode::kWarn ? json::array({"Warn"})
                                                                                            : json::array({"Deny"})}}}};
  return o;
}

}  // namespace poolguard::budget
