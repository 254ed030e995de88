#include "policy/types.h"

#include <algorithm>

namespace poolguard::policy {

const char* toString(WorkloadKind k) {
  switch (k) {
    case WorkloadKind::kDeployment:
      return "Deployment";
    case WorkloadKind::kStatefulSet:
      return "StatefulSet";
  }
  return "Unknown";
}

const char* toString(Mode m) {
  switch (m) {
    case Mode::kEnforce:
      return "Enforce";
    case Mode::kAudit:
      return "Audit";
  }
  return "Unknown";
}

const char* toString(Profile p) {
  switch (p) {
    case Profile::kSpringHikari:
      return "SpringHikari";
    case Profile::kGoSQL:
      return "GoSQL";
    case Profile::kPgxpool:
      return "Pgxpool";
    case Profile::kSQLAlchemy:
      return "SQLAlchemy";
    case Profile::kNodePostgres:
      return "NodePostgres";
    case Profile::kPgBouncer:
      return "PgBouncer";
    case Profile::kGeneric:
      return "Generic";
  }
  return "Unknown";
}

const char* toString(DeliveryMethod d) {
  switch (d) {
    case DeliveryMethod::kEnv:
      return "Env";
    case DeliveryMethod::kConfigMap:
      return "ConfigMap";
  }
  return "Unknown";
}

const char* toString(OnExceeded o) {
  switch (o) {
    case OnExceeded::kWarn:
      return "Warn";
    case OnExceeded::kClamp:
      return "Clamp";
  }
  return "Unknown";
}

const char* toString(SslMode s) {
  switch (s) {
    case SslMode::kDisable:
      return "disable";
    case SslMode::kRequire:
      return "require";
    case SslMode::kVerifyCa:
      return "verify-ca";
    case SslMode::kVerifyFull:
      return "verify-full";
  }
  return "unknown";
}

bool LabelSelector::matches(const std::map<std::string, std::string>& labels) const {
  for (const auto& [key, value] : matchLabels) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  for (const auto& req : matchExpressions) {
    auto it = labels.find(req.key);
    bool present = it != labels.end();
    bool listed = present && std::find(req.values.begin(), req.values.end(), it->second) != req.values.end();
    if (req.op == "In") {
      if (!listed) return false;
    } else if (req.op == "NotIn") {
      if (listed) return false;
    } else if (req.op == "Exists") {
      if (!present) return false;
    } else if (req.op == "DoesNotExist") {
      if (present) return false;
    } else {
      // An operator validation would have rejected: selecting nothing is the safe reading.
      return false;
    }
  }
  return true;
}

std::string LabelSelector::toString() const {
  // Same form as apimachinery's labels.Selector.String(): requirements sorted by key, set values sorted.
  std::vector<std::pair<std::string, std::string>> parts;
  for (const auto& [key, value] : matchLabels) parts.emplace_back(key, key + "=" + value);
  for (const auto& req : matchExpressions) {
    auto values = req.values;
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    std::string joined;
    for (const auto& v : values) joined += (joined.empty() ? "" : ",") + v;
    if (req.op == "In") {
      parts.emplace_back(req.key, req.key + " in (" + joined + ")");
    } else if (req.op == "NotIn") {
      parts.emplace_back(req.key, req.key + " notin (" + joined + ")");
    } else if (req.op == "Exists") {
      parts.emplace_back(req.key, req.key);
    } else if (req.op == "DoesNotExist") {
      parts.emplace_back(req.key, "!" + req.key);
    }
  }
  std::stable_sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ",") + p.second;
  return out;
}

}  // namespace poolguard::policy
