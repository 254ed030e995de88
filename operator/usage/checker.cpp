#include "usage/checker.h"

#include <spdlog/spdlog.h>

#include <map>
#include <set>

#include "policy/parse.h"
#include "usage/grant.h"
#include "usage/metrics.h"

namespace poolguard::usage {

namespace {

std::string keyOf(const std::string& ns, const std::string& name) { return ns + "/" + name; }

// A ClusterConnectionPoolPolicy and a ClusterConnectionBudget are cluster-scoped: only a cluster admin creates
// them, so the Prometheus endpoints they name are the admin's own choice, not a policy author's.
bool choosesItsOwnPrometheus(const policy::Policy& policy) {
  return policy.clusterScoped() || policy.kind == "ClusterConnectionBudget";
}

// Whether the check's credentials are the ones the policy's author chose: a namespaced policy's own Secret, in its
// own namespace. A ClusterConnectionBudget's check and a ClusterConnectionPoolPolicy's use the operator's namespace.
bool authorsOwnCredentials(const policy::Policy& policy, const CheckContext& context) {
  if (policy.kind == "ClusterConnectionBudget" || policy.clusterScoped()) return false;
  return context.secretNamespace.empty() || context.secretNamespace == policy.namespace_;
}

void append(std::string& message, const std::string& part) { message += (message.empty() ? "" : "; ") + part; }

}  // namespace

bool ownsApplicationName(const GovernedWorkload& w) {
  const std::string prefix = w.namespace_ + "/";
  return !w.namespace_.empty() && w.applicationName.size() >= prefix.size() &&
         w.applicationName.compare(0, prefix.size(), prefix) == 0;
}

std::string foreignApplicationNamesMessage(const std::vector<const GovernedWorkload*>& workloads, bool clusterPolicy) {
  constexpr size_t kNamed = 3;
  std::string named;
  for (size_t i = 0; i < workloads.size() && i < kNamed; ++i) {
    const GovernedWorkload& w = *workloads[i];
    named += (named.empty() ? "" : ", ") + w.namespace_ + "/" + w.name + " (application_name \"" + w.applicationName +
             "\", not \"" + w.namespace_ + "/...\")";
  }
  if (workloads.size() > kNamed) named += " and " + std::to_string(workloads.size() - kNamed) + " more";
  return "poolguard ends no leaked session of workload" + std::string(workloads.size() == 1 ? " " : "s ") + named +
         ": with credentials its policy's author did not supply it ends only an application_name that begins with "
         "the workload's namespace; include {namespace} in delivery.applicationName (as the default "
         "\"{namespace}/{name}\" does)" +
         (clusterPolicy ? "" : ", or give the policy usage.postgres with a Secret of its own namespace");
}

std::string postgresTarget(const policy::PostgresSource& pg) {
  return pg.host + ":" + std::to_string(pg.port) + "/" + pg.database;
}

Checker::Checker(const Clock& clock, prometheus::Registry* registry, const CheckerOptions& options)
    : clock_(clock),
      postgres_(clock, options.postgres),
      prometheus_(options.prometheusTimeout),
      prometheusAllowedUrlPrefixes_(options.prometheusAllowedUrlPrefixes),
      metrics_(registry ? std::make_unique<UsageMetrics>(*registry) : nullptr) {}

Checker::~Checker() = default;

UsageReport Checker::check(const policy::Policy& policy, const std::vector<GovernedWorkload>& workloads,
                           kube::Client& client, const CheckContext& context) {
  std::optional<Result<PostgresCredentials>> credentials;
  if (policy.spec.usage.postgres) {
    const std::string& ns = context.secretNamespace.empty() ? policy.namespace_ : context.secretNamespace;
    credentials.emplace(fetchCredentials(client, ns, *policy.spec.usage.postgres));
  }
  return check(policy, workloads, credentials, context);
}

UsageReport Checker::check(const policy::Policy& policy, const std::vector<GovernedWorkload>& workloads,
                           const std::optional<Result<PostgresCredentials>>& credentials, const CheckContext& context) {
  const policy::Usage& usage = policy.spec.usage;
  AnalysisInput in;
  in.thresholds = usage.thresholds;
  in.workloads = workloads;
  in.declaredMaxConnections = policy.spec.database.maxConnections;
  in.declaredReservedConnections = policy.spec.database.reservedConnections;

  UsageReport report;
  if (usage.postgres) {
    if (!credentials) {
      in.postgres = SourceOutcome<ServerSnapshot>::of(
          Error(ErrorCode::kInvalidArgument,
                "postgres " + usage.postgres->host + ":" + std::to_string(usage.postgres->port) + ": no credentials")
              .withReason(postgres_reasons::kCredentials));
    } else if (!credentials->ok()) {
      in.postgres = SourceOutcome<ServerSnapshot>::of(credentials->error());
    } else {
      in.postgres = SourceOutcome<ServerSnapshot>::of(postgres_.read(*usage.postgres, credentials->value()));
    }
    if (!in.postgres.ok()) report.errors.push_back(in.postgres.result->error());
  }
  if (prometheusConfigured(usage, policy.spec.profile)) {
    // A ConnectionPoolPolicy only under the prefixes the cluster admin allows: its author must not reach other
    // addresses through poolguard.
    auto allowed = choosesItsOwnPrometheus(policy)
                       ? okStatus()
                       : checkPrometheusUrl(usage.prometheus->url, prometheusAllowedUrlPrefixes_);
    in.prometheus = SourceOutcome<PrometheusValues>::of(
        allowed.ok() ? readPrometheus(prometheus_, *usage.prometheus, policy.spec.profile, workloads)
                     : Result<PrometheusValues>(allowed.error()));
    if (!in.prometheus.ok()) report.errors.push_back(in.prometheus.result->error());
  }
  in.now = clock_.now();
  report.result = analyze(in);
  report.input = std::make_shared<const AnalysisInput>(in);
  if (usage.postgres && in.postgres.ok() && credentials && credentials->ok()) {
    terminateLeaked(policy, workloads, credentials->value(), context, report.result);
  }

  if (metrics_) {
    std::vector<UsageMetrics::SourceRead> sources;
    if (usage.postgres) sources.push_back({"postgres", postgresTarget(*usage.postgres), in.postgres.ok()});
    if (prometheusConfigured(usage, policy.spec.profile)) {
      sources.push_back({"prometheus", prometheusTarget(usage.prometheus->url), in.prometheus.ok()});
    }
    metrics_->record(policy, workloads, report.result, sources);
    for (const auto& e : report.errors) metrics_->recordError(policy.namespace_, policy.name, e.reason());
  }

  const auto now = clock_.steadyNow();
  std::string previousReason;
  std::optional<TargetsInUse> inUse;
  {
    std::lock_guard lock(mu_);
    PolicyState& state = policies_[keyOf(policy.namespace_, policy.name)];
    previousReason = state.lastReason;
    state.lastCheck = now;
    state.lastReason = report.result.condition.reason;
    for (const auto& l : report.result.leakedSessions) state.sessionsEnded += l.ended ? 1 : 0;
    report.result.sessionsEnded = state.sessionsEnded;
    const std::string postgresKey = usage.postgres && credentials && credentials->ok()
                                        ? PostgresReader::connectionKey(*usage.postgres, credentials->value().username)
                                        : "";
    const std::string prometheusUrl = prometheusConfigured(usage, policy.spec.profile) ? usage.prometheus->url : "";
    // A policy that moved to another server (or user) releases the old session unless another policy uses it.
    if (postgresKey != state.postgresKey || prometheusUrl != state.prometheusUrl) {
      state.postgresKey = postgresKey;
      state.prometheusUrl = prometheusUrl;
      inUse = targetsInUseLocked();
    }
  }
  if (inUse) releaseUnused(*inUse);
  report.nextCheckDue = now + usage.interval;
  // Logged on a change of outcome only: a standing failure would otherwise repeat every interval.
  if (previousReason != report.result.condition.reason) {
    const auto& c = report.result.condition;
    if (c.status != ConditionStatus::kFalse && c.reason != reasons::kUsageUnavailable) {
      spdlog::info("usage {}/{}: {} ({})", policy.namespace_, policy.name, c.reason, c.message);
    } else {
      spdlog::warn("usage {}/{}: {} ({})", policy.namespace_, policy.name, c.reason, c.message);
    }
  }
  return report;
}

void Checker::terminateLeaked(const policy::Policy& policy, const std::vector<GovernedWorkload>& workloads,
                              const PostgresCredentials& credentials, const CheckContext& context,
                              AnalysisResult& result) {
  const auto& usage = policy.spec.usage;
  const auto olderThan = usage.terminateOlderThan();
  if (!olderThan) return;
  // A replica that may have lost the leader's lease ends nothing and reports nothing: the next leader's check will.
  const auto& mayEnd = context.mayEndSessions;
  if (mayEnd && !mayEnd()) {
    spdlog::debug("usage {}/{}: terminateLeaked skipped: this replica may no longer be the leader", policy.namespace_,
                  policy.name);
    return;
  }
  // Only the sessions the analysis attributes to a governed workload: by the application_name it reports.
  // A name two workloads share cannot tell whose a session is: such sessions are never ended.
  std::map<std::string, const GovernedWorkload*> byName;
  std::set<std::string> shared;
  for (const auto& w : workloads) {
    if (w.applicationName.empty() || w.applicationName == kOwnApplicationName || !w.mayEndSessions) continue;
    if (!byName.emplace(w.applicationName, &w).second) shared.insert(w.applicationName);
  }
  for (const auto& name : shared) byName.erase(name);
  std::string& message = result.condition.message;
  for (const auto& name : shared) {
    append(message, "application_name \"" + name +
                        "\" is reported by more than one governed workload: poolguard ends none of its sessions");
  }
  // With credentials the author did not supply, only names the workload's namespace owns.
  if (!authorsOwnCredentials(policy, context)) {
    std::vector<const GovernedWorkload*> foreign;
    for (auto it = byName.begin(); it != byName.end();) {
      if (ownsApplicationName(*it->second)) {
        ++it;
        continue;
      }
      foreign.push_back(it->second);
      it = byName.erase(it);
    }
    if (!foreign.empty()) append(message, foreignApplicationNamesMessage(foreign, policy.clusterScoped()));
  }
  if (byName.empty()) return;
  std::vector<std::string> names;
  for (const auto& [name, w] : byName) names.push_back(name);
  const bool dryRun = policy.spec.mode == policy::Mode::kAudit;
  auto outcome = postgres_.terminateIdleInTransaction(*usage.postgres, credentials, names, *olderThan,
                                                      usage.actions.terminateLeaked->maxPerCheck, dryRun, mayEnd);
  if (!outcome.ok()) {
    append(message, "ending leaked sessions failed: " + outcome.error().message());
    return;
  }
  std::vector<std::string> pids;
  for (const auto& s : outcome->sessions) {
    const GovernedWorkload* w = byName.at(s.applicationName);
    result.leakedSessions.push_back(LeakedSession{w->namespace_, w->name, s.user, s.pid, s.idleSeconds, s.ended});
    if (s.ended || dryRun) pids.push_back(std::to_string(s.pid));
    if (s.ended && metrics_) metrics_->recordTerminated(policy.namespace_, policy.name, w->namespace_ + "/" + w->name);
  }
  const std::string what = " idle in transaction longer than " + policy::formatDuration(*olderThan);
  auto list = [&] {
    std::string out;
    for (const auto& p : pids) out += (out.empty() ? "" : ", ") + p;
    return out;
  };
  if (!pids.empty()) {
    append(message, (dryRun ? "in Enforce, poolguard would end " : std::string("poolguard ended ")) +
                        std::to_string(pids.size()) + (pids.size() == 1 ? " session" : " sessions") + what + " (pid " +
                        list() + ")");
  }
  if (outcome->failed) append(message, *outcome->failed);
  if (outcome->stopped) {
    append(message,
           "poolguard stopped ending sessions: this replica may no longer be the leader (the next leader's "
           "check ends the rest)");
  }
  if (outcome->refused) {
    append(message, "poolguard may not end sessions: its monitoring role (the user of Secret " +
                        usage.postgres->credentialsSecretRef.name +
                        ") lacks pg_signal_backend; GRANT pg_signal_backend TO that role (docs/runbook.md)");
  }
}

Clock::steady_point Checker::nextCheckDue(const policy::Policy& policy, Clock::steady_point now) const {
  std::lock_guard lock(mu_);
  auto it = policies_.find(keyOf(policy.namespace_, policy.name));
  if (it == policies_.end()) return now;
  return it->second.lastCheck + policy.spec.usage.interval;
}

std::chrono::milliseconds Checker::requeueAfter(const policy::Policy& policy) const {
  const auto now = clock_.steadyNow();
  const auto due = nextCheckDue(policy, now);
  if (due <= now) return std::chrono::milliseconds(0);
  return std::chrono::ceil<std::chrono::milliseconds>(due - now);
}

void Checker::forget(const std::string& ns, const std::string& name) {
  std::optional<TargetsInUse> inUse;
  {
    std::lock_guard lock(mu_);
    if (policies_.erase(keyOf(ns, name)) > 0) inUse = targetsInUseLocked();
  }
  // Outside mu_: closing waits for a read in progress on that connection, which must not hold up other policies.
  if (inUse) releaseUnused(*inUse);
  if (metrics_) metrics_->forget(ns, name);
}

Checker::TargetsInUse Checker::targetsInUseLocked() const {
  TargetsInUse inUse;
  for (const auto& [key, state] : policies_) {
    if (!state.postgresKey.empty()) inUse.postgresKeys.insert(state.postgresKey);
    if (!state.prometheusUrl.empty()) inUse.prometheusUrls.insert(state.prometheusUrl);
  }
  return inUse;
}

void Checker::releaseUnused(const TargetsInUse& inUse) {
  postgres_.closeExcept(inUse.postgresKeys);
  prometheus_.closeExcept(inUse.prometheusUrls);
}

}  // namespace poolguard::usage
