#include "policy/types.h"

namespace poolguard::policy {

const WorkloadKindInfo& infoOf(WorkloadKind kind) {
  for (const auto& info : kWorkloadKinds) {
    if (info.kind == kind) return info;
  }
  return kWorkloadKinds[0];
}

std::optional<WorkloadKind> workloadKindNamed(const std::string& name) {
  for (const auto& info : kWorkloadKinds) {
    if (name == info.name) return info.kind;
  }
  return std::nullopt;
}

const char* toString(WorkloadKind k) { return infoOf(k).name; }

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

const char* toString(TerminatingPods t) { return t == TerminatingPods::kCount ? "Count" : "Ignore"; }

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

const char* toString(AdmissionMode m) {
  switch (m) {
    case AdmissionMode::kNone:
      return "None";
    case AdmissionMode::kWarn:
      return "Warn";
    case AdmissionMode::kDeny:
      return "Deny";
  }
  return "Unknown";
}

int allocationOf(const ClusterBudget& budget, const std::map<std::string, std::string>& namespaceLabels) {
  for (size_t i = 0; i < budget.allocations.size(); ++i) {
    if (matches(budget.allocations[i].namespaceSelector, namespaceLabels)) return static_cast<int>(i);
  }
  return -1;
}

std::string describe(const Policy& p) {
  return p.clusterScoped() ? std::string(Policy::kClusterPolicyKind) + " " + p.name
                           : "ConnectionPoolPolicy " + p.namespace_ + "/" + p.name;
}

bool sameObject(const Policy& a, const Policy& b) {
  return a.clusterScoped() == b.clusterScoped() && a.namespace_ == b.namespace_ && a.name == b.name;
}

}  // namespace poolguard::policy
