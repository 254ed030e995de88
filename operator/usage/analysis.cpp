#include "usage/analysis.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>
#include <tuple>

namespace poolguard::usage {

int32_t ApplicationActivity::total() const {
  int32_t n = 0;
  for (const auto& [state, count] : countByState) n += count;
  return n;
}

int32_t ApplicationActivity::inState(const std::string& state) const {
  auto it = countByState.find(state);
  return it == countByState.end() ? 0 : it->second;
}

int32_t ApplicationActivity::idleInTransaction() const {
  return inState(kStateIdleInTransaction) + inState(kStateIdleInTransactionAborted);
}

int32_t ServerSnapshot::totalConnections() const {
  int32_t n = 0;
  for (const auto& [app, activity] : byApplication) n += activity.total();
  return n;
}

const char* toString(ConditionStatus s) {
  switch (s) {
    case ConditionStatus::kTrue:
      return "True";
    case ConditionStatus::kFalse:
      return "False";
    case ConditionStatus::kUnknown:
      return "Unknown";
  }
  return "Unknown";
}

const char* reasonOf(Finding f) {
  switch (f) {
    case Finding::kLeakSuspected:
      return reasons::kLeakSuspected;
    case Finding::kPoolExhausted:
      return reasons::kPoolExhausted;
    case Finding::kExceedsPolicy:
      return reasons::kExceedsPolicy;
    case Finding::kSaturated:
      return reasons::kSaturated;
  }
  return reasons::kUsageUnavailable;
}

std::string formatDuration(std::chrono::seconds s) {
  auto total = std::max<int64_t>(0, s.count());
  int64_t h = total / 3600, m = (total % 3600) / 60, sec = total % 60;
  std::ostringstream o;
  if (h > 0)
    o << h << "h" << m << "m" << sec << "s";
  else if (m > 0)
    o << m << "m" << sec << "s";
  else
    o << sec << "s";
  return o.str();
}

namespace {

int64_t effectivePods(const GovernedWorkload& w) {
  int64_t pods = int64_t{std::max(0, w.podsNow)} + std::max(0, w.surge);
  // Terminating pods of an old ReplicaSet still hold connections until they exit; what exists is allowed.
  if (w.podsObserved) pods = std::max<int64_t>(pods, *w.podsObserved);
  return pods;
}

std::string plural(int64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string workloadKey(const GovernedWorkload& w) { return w.namespace_ + "/" + w.name; }

struct FindingText {
  Finding finding;
  std::string message;
};

}  // namespace

int64_t allowedConnections(const GovernedWorkload& w) {
  return effectivePods(w) *
         (int64_t{std::max(0, w.maxSize)} * std::max(1, w.processesPerPod) + std::max(0, w.overheadPerPod));
}

AnalysisResult analyze(const AnalysisInput& in) {
  AnalysisResult r;
  if (!in.postgres.configured && !in.prometheus.configured) {
    r.condition = {ConditionStatus::kUnknown, reasons::kNotConfigured,
                   "usage.postgres and usage.prometheus are not configured (Prometheus needs queries for this "
                   "profile)"};
    return r;
  }

  std::vector<std::string> failures;
  std::vector<FindingText> findings;
  const bool pgOk = in.postgres.ok();
  const bool promOk = in.prometheus.ok();
  if (in.postgres.configured && !pgOk) {
    failures.push_back(in.postgres.result->error().message());
    const ErrorCode code = in.postgres.result->error().code();
    r.postgresNeedsChange = code == ErrorCode::kForbidden || code == ErrorCode::kUnauthorized ||
                            code == ErrorCode::kNotFound || code == ErrorCode::kInvalidArgument ||
                            code == ErrorCode::kInvalid;
  }
  if (in.prometheus.configured && !promOk) failures.push_back(in.prometheus.result->error().message());

  for (const auto& w : in.workloads) {
    WorkloadUsage u;
    u.namespace_ = w.namespace_;
    u.name = w.name;
    u.allowedConnections = allowedConnections(w);
    r.workloads.push_back(std::move(u));
  }

  if (pgOk) {
    const ServerSnapshot& snap = in.postgres.result->value();
    r.usage.serverMaxConnections = snap.maxConnections;
    r.databaseConnections = snap.totalConnections();
    r.ungoverned = ungovernedSessions(snap, in.workloads);
    if (in.declaredMaxConnections && *in.declaredMaxConnections != snap.maxConnections) {
      r.maxConnectionsMismatch = "spec.database.maxConnections is " + std::to_string(*in.declaredMaxConnections) +
                                 " but the server reports max_connections=" + std::to_string(snap.maxConnections);
    }

    int32_t connections = 0, active = 0, idle = 0, idleInTx = 0;
    std::optional<int64_t> oldest;
    for (size_t i = 0; i < in.workloads.size(); ++i) {
      const GovernedWorkload& w = in.workloads[i];
      WorkloadUsage& u = r.workloads[i];
      if (w.applicationName.empty()) continue;
      auto it = snap.byApplication.find(w.applicationName);
      if (it == snap.byApplication.end()) {
        u.connections = 0;
        continue;
      }
      const ApplicationActivity& a = it->second;
      u.connections = a.total();
      u.byState = a.countByState;
      connections += a.total();
      active += a.inState(kStateActive);
      idle += a.inState(kStateIdle);
      idleInTx += a.idleInTransaction();

      std::chrono::seconds oldestAge{0};
      for (const auto& since : a.idleInTransactionSince) {
        auto age = in.now - since;
        if (age > in.thresholds.idleInTransaction) ++u.idleInTransactionOverThreshold;
        oldestAge = std::max(oldestAge, std::chrono::duration_cast<std::chrono::seconds>(age));
      }
      if (!a.idleInTransactionSince.empty()) {
        u.oldestIdleInTransactionSeconds = oldestAge.count();
        oldest = std::max(oldest.value_or(0), oldestAge.count());
      }
      if (u.idleInTransactionOverThreshold > 0) {
        findings.push_back(
            {Finding::kLeakSuspected,
             workloadKey(w) + ": " + plural(u.idleInTransactionOverThreshold, "session", "sessions") +
                 " idle in transaction longer than " +
                 formatDuration(std::chrono::duration_cast<std::chrono::seconds>(in.thresholds.idleInTransaction)) +
                 " (oldest " + formatDuration(oldestAge) + ", application_name \"" + w.applicationName + "\")"});
      }
    }
    r.usage.connections = connections;
    r.usage.active = active;
    r.usage.idle = idle;
    r.usage.idleInTransaction = idleInTx;
    r.usage.oldestIdleInTransactionSeconds = oldest;

    // What applications can use: the server's own reservation, or the policy's when it keeps more free.
    const int32_t reserved = std::max(snap.reservedConnections, in.declaredReservedConnections);
    const int64_t usable = std::max<int64_t>(1, int64_t{snap.maxConnections} - reserved);
    const int64_t total = snap.totalConnections();
    if (total * 100 >= usable * in.thresholds.saturationPercent) {
      findings.push_back({Finding::kSaturated,
                          "database at " + std::to_string(total) + " of " + std::to_string(usable) +
                              " usable connections (" + std::to_string(total * 100 / usable) +
                              "% >= " + std::to_string(in.thresholds.saturationPercent) + "%; max_connections " +
                              std::to_string(snap.maxConnections) + ", " + std::to_string(reserved) + " reserved)"});
    }
  }

  bool promHasData = false;
  if (promOk) {
    const PrometheusValues& values = in.prometheus.result->value();
    std::optional<int32_t> promConnections;
    for (size_t i = 0; i < in.workloads.size(); ++i) {
      const GovernedWorkload& w = in.workloads[i];
      WorkloadUsage& u = r.workloads[i];
      auto it = values.find(workloadKey(w));
      if (it == values.end()) continue;
      const WorkloadMetrics& m = it->second;
      if (m.connections || m.pending) promHasData = true;
      u.pending = m.pending;
      // PostgreSQL's count is authoritative; Prometheus fills in for workloads it cannot attribute.
      if (!u.connections && m.connections) u.connections = static_cast<int32_t>(std::llround(*m.connections));
      if (m.connections) {
        promConnections = promConnections.value_or(0) + static_cast<int32_t>(std::llround(*m.connections));
      }
      if (m.pending && *m.pending > 0) {
        findings.push_back({Finding::kPoolExhausted,
                            workloadKey(w) + ": " + plural(std::llround(std::ceil(*m.pending)), "request", "requests") +
                                " waiting for a pool connection"});
      }
    }
    if (!pgOk) r.usage.connections = promConnections;
  }

  for (size_t i = 0; i < in.workloads.size(); ++i) {
    const GovernedWorkload& w = in.workloads[i];
    const WorkloadUsage& u = r.workloads[i];
    if (!u.connections || w.maxSize <= 0 || *u.connections <= u.allowedConnections) continue;
    std::string pods = plural(effectivePods(w), "pod", "pods");
    if (effectivePods(w) != w.podsNow) pods += " (" + std::to_string(w.podsNow) + " desired, during rollout)";
    findings.push_back(
        {Finding::kExceedsPolicy,
         workloadKey(w) + " holds " + std::to_string(*u.connections) + " connections, more than its policy allows (" +
             std::to_string(u.allowedConnections) + " = " + pods + " x maxSize " + std::to_string(w.maxSize) + " x " +
             plural(std::max(1, w.processesPerPod), "process", "processes") + " per pod" +
             (w.overheadPerPod > 0 ? " + " + std::to_string(w.overheadPerPod) + " outside the pool per pod"
                                   : std::string()) +
             ")"});
  }

  if (pgOk && promOk)
    r.usage.source = "postgres+prometheus";
  else if (pgOk)
    r.usage.source = "postgres";
  else if (promOk)
    r.usage.source = "prometheus";
  if (pgOk || promOk) r.usage.lastCheckTime = in.now;

  std::stable_sort(findings.begin(), findings.end(),
                   [](const FindingText& a, const FindingText& b) { return a.finding < b.finding; });
  for (const auto& f : findings) {
    if (r.findings.empty() || r.findings.back() != f.finding) r.findings.push_back(f.finding);
  }

  auto join = [](const std::vector<std::string>& parts) {
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
    return out;
  };

  if (!findings.empty()) {
    std::vector<std::string> parts;
    parts.reserve(findings.size() + failures.size());
    for (const auto& f : findings) parts.push_back(f.message);
    for (const auto& f : failures) parts.push_back("also unavailable: " + f);
    r.condition = {ConditionStatus::kFalse, reasonOf(findings.front().finding), join(parts)};
  } else if (!failures.empty()) {
    r.condition = {ConditionStatus::kUnknown, reasons::kUsageUnavailable, join(failures)};
  } else if (!pgOk && !promHasData) {
    // An empty answer is no data, not zero connections: a Healthy built on it would hide a broken query.
    r.condition = {ConditionStatus::kUnknown, reasons::kUsageUnavailable,
                   "prometheus returned no samples for any governed workload"};
  } else {
    const std::string workloads = plural(static_cast<int64_t>(in.workloads.size()), "workload", "workloads");
    // Prometheus may hold a pool's other series before its connection count: unknown is not zero.
    std::string msg = r.usage.connections
                          ? plural(*r.usage.connections, "connection", "connections") + " from " + workloads
                          : "no connection count reported yet for " + workloads;
    if (r.databaseConnections && r.usage.serverMaxConnections) {
      msg += "; server at " + std::to_string(*r.databaseConnections) + " of max_connections " +
             std::to_string(*r.usage.serverMaxConnections);
    }
    r.condition = {ConditionStatus::kTrue, reasons::kHealthy, msg};
  }
  return r;
}

std::vector<ClientSessions> ungovernedSessions(const ServerSnapshot& snapshot,
                                               const std::vector<GovernedWorkload>& workloads, size_t limit) {
  std::set<std::string> governed;
  for (const auto& w : workloads) {
    if (!w.applicationName.empty()) governed.insert(w.applicationName);
  }
  return ungovernedSessions(snapshot, governed, limit);
}

std::vector<ClientSessions> ungovernedSessions(const ServerSnapshot& snapshot, const std::set<std::string>& governed,
                                               size_t limit) {
  std::vector<ClientSessions> out;
  for (const auto& c : snapshot.clients) {
    if (c.connections > 0 && !governed.count(c.applicationName) && c.applicationName != kOwnApplicationName)
      out.push_back(c);
  }
  std::sort(out.begin(), out.end(), [](const ClientSessions& a, const ClientSessions& b) {
    return std::tie(b.connections, a.applicationName, a.user, a.clientAddress) <
           std::tie(a.connections, b.applicationName, b.user, b.clientAddress);
  });
  if (limit > 0 && out.size() > limit) out.resize(limit);
  return out;
}

int32_t sessionsOf(const ServerSnapshot& snapshot, const std::set<std::string>& applicationNames) {
  int32_t n = 0;
  for (const auto& name : applicationNames) {
    if (auto it = snapshot.byApplication.find(name); it != snapshot.byApplication.end()) n += it->second.total();
  }
  return n;
}

}  // namespace poolguard::usage
