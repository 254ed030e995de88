#include "budget/budget.h"

#include <algorithm>
#include <charconv>

namespace poolguard::budget {
namespace {

std::optional<int32_t> intAt(const json& obj, const json::json_pointer& ptr) {
  if (!obj.contains(ptr)) return std::nullopt;
  const auto& v = obj.at(ptr);
  if (!v.is_number_integer()) return std::nullopt;
  int64_t n = v.get<int64_t>();
  if (n < 0 || n > INT32_MAX) return std::nullopt;
  return static_cast<int32_t>(n);
}

std::string stringAt(const json& obj, const json::json_pointer& ptr) {
  if (!obj.contains(ptr) || !obj.at(ptr).is_string()) return "";
  return obj.at(ptr).get<std::string>();
}

std::optional<Surge> parseSurge(const json& v) {
  if (v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= INT32_MAX) {
    return Surge{static_cast<int32_t>(v.get<int64_t>()), false};
  }
  if (!v.is_string()) return std::nullopt;
  std::string s = v.get<std::string>();
  bool percent = !s.empty() && s.back() == '%';
  if (percent) s.pop_back();
  int32_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size() || n < 0) return std::nullopt;
  return Surge{n, percent};
}

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

WorkloadFacts factsFor(const WorkloadShape& shape) {
  WorkloadFacts f;
  f.kind = shape.kind;
  f.namespace_ = shape.namespace_;
  f.name = shape.name;
  f.podsNow = std::max(0, shape.replicas);
  f.autoscaled = shape.hpaMaxReplicas.has_value();
  f.podsMax = std::max(f.podsNow, shape.hpaMaxReplicas.value_or(0));
  if (shape.kind == policy::WorkloadKind::kStatefulSet || shape.recreate) {
    f.surge = 0;
  } else if (shape.maxSurge.percent) {
    f.surge = static_cast<int32_t>(ceilDiv(int64_t{f.podsMax} * shape.maxSurge.value, 100));
  } else {
    f.surge = shape.maxSurge.value;
  }
  return f;
}

WorkloadShape shapeOf(const json& workload, const json* hpa) {
  WorkloadShape s;
  s.kind = workload.value("kind", "") == "StatefulSet" ? policy::WorkloadKind::kStatefulSet
                                                       : policy::WorkloadKind::kDeployment;
  s.name = stringAt(workload, json::json_pointer("/metadata/name"));
  s.namespace_ = stringAt(workload, json::json_pointer("/metadata/namespace"));
  if (s.namespace_.empty()) s.namespace_ = "default";
  s.replicas = intAt(workload, json::json_pointer("/spec/replicas")).value_or(1);
  if (hpa != nullptr) s.hpaMaxReplicas = intAt(*hpa, json::json_pointer("/spec/maxReplicas"));
  std::string strategy = stringAt(workload, json::json_pointer("/spec/strategy/type"));
  s.recreate = strategy == "Recreate";
  static const json::json_pointer surgePtr("/spec/strategy/rollingUpdate/maxSurge");
  if (workload.contains(surgePtr)) {
    if (auto surge = parseSurge(workload.at(surgePtr))) s.maxSurge = *surge;
  }
  return s;
}

const json* findHpa(const std::vector<json>& hpas, policy::WorkloadKind kind, const std::string& ns,
                    const std::string& name) {
  for (const auto& h : hpas) {
    std::string hns = stringAt(h, json::json_pointer("/metadata/namespace"));
    if (hns.empty()) hns = "default";
    if (hns != ns) continue;
    std::string apiVersion = stringAt(h, json::json_pointer("/spec/scaleTargetRef/apiVersion"));
    if (!apiVersion.empty() && apiVersion != "apps/v1") continue;
    if (stringAt(h, json::json_pointer("/spec/scaleTargetRef/kind")) != policy::toString(kind)) continue;
    if (stringAt(h, json::json_pointer("/spec/scaleTargetRef/name")) != name) continue;
    return &h;
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
  return in;
}

const PolicyBudget* DatabaseBudget::find(const std::string& ns, const std::string& name) const {
  for (const auto& p : policies) {
    if (p.namespace_ == ns && p.name == name) return &p;
  }
  return nullptr;
}

DatabaseBudget computeDatabase(const std::string& database, std::optional<int32_t> maxConnections,
                               int32_t reservedConnections, const std::vector<PolicyInput>& policies) {
  DatabaseBudget db;
  db.database = database;
  db.maxConnections = maxConnections;
  db.reservedConnections = reservedConnections;
  if (maxConnections) db.available = int64_t{*maxConnections} - reservedConnections;

  // Connections one unit of maxSize costs per policy, at pods max (+ surge) and at pods now.
  std::vector<int64_t> worstFactor(policies.size(), 0);
  std::vector<int64_t> steadyFactor(policies.size(), 0);
  for (size_t i = 0; i < policies.size(); ++i) {
    for (const auto& w : policies[i].workloads) {
      worstFactor[i] += (int64_t{w.podsMax} + w.surge) * policies[i].processesPerPod;
      steadyFactor[i] += int64_t{w.podsNow} * policies[i].processesPerPod;
    }
    db.unclampedWorstCase += worstFactor[i] * policies[i].maxSize;
  }

  std::vector<int32_t> effective(policies.size());
  for (size_t i = 0; i < policies.size(); ++i) effective[i] = policies[i].maxSize;

  if (db.available && db.unclampedWorstCase > *db.available) {
    // What the Clamp policies may share: available minus what the Warn policies ask for.
    int64_t remaining = *db.available;
    std::vector<size_t> active;
    for (size_t i = 0; i < policies.size(); ++i) {
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
        break;
      }
      for (size_t i : satisfied) {
        remaining -= worstFactor[i] * policies[i].maxSize;
        active.erase(std::find(active.begin(), active.end(), i));
      }
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
    pb.clamped = effective[i] < in.maxSize;
    pb.unclampedWorstCase = worstFactor[i] * in.maxSize;
    for (const auto& w : in.workloads) {
      WorkloadBudget wb;
      wb.facts = w;
      wb.perPod = int64_t{effective[i]} * in.processesPerPod;
      wb.steadyState = int64_t{w.podsNow} * wb.perPod;
      wb.worstCase = (int64_t{w.podsMax} + w.surge) * wb.perPod;
      pb.workloads.push_back(wb);
    }
    pb.steadyState = steadyFactor[i] * effective[i];
    pb.worstCase = worstFactor[i] * effective[i];
    db.steadyState += pb.steadyState;
    db.worstCase += pb.worstCase;
    db.policies.push_back(std::move(pb));
  }
  return db;
}

}  // namespace poolguard::budget
