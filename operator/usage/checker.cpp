#include "usage/checker.h"

#include <spdlog/spdlog.h>

#include "usage/metrics.h"

namespace poolguard::usage {

namespace {

std::string keyOf(const std::string& ns, const std::string& name) { return ns + "/" + name; }

}  // namespace

Checker::Checker(const Clock& clock, prometheus::Registry* registry, const CheckerOptions& options)
    : clock_(clock),
      postgres_(clock, options.postgres),
      prometheus_(options.prometheusTimeout),
      metrics_(registry ? std::make_unique<UsageMetrics>(*registry) : nullptr) {}

Checker::~Checker() = default;

UsageReport Checker::check(const policy::Policy& policy, const std::vector<GovernedWorkload>& workloads,
                           kube::Client& client) {
  std::optional<Result<PostgresCredentials>> credentials;
  if (policy.spec.usage.postgres) {
    credentials.emplace(fetchCredentials(client, policy.namespace_, *policy.spec.usage.postgres));
  }
  return check(policy, workloads, credentials);
}

UsageReport Checker::check(const policy::Policy& policy, const std::vector<GovernedWorkload>& workloads,
                           const std::optional<Result<PostgresCredentials>>& credentials) {
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
    in.prometheus = SourceOutcome<PrometheusValues>::of(
        readPrometheus(prometheus_, *usage.prometheus, policy.spec.profile, workloads));
    if (!in.prometheus.ok()) report.errors.push_back(in.prometheus.result->error());
  }
  in.now = clock_.now();
  report.result = analyze(in);

  if (metrics_) {
    metrics_->record(policy, workloads, report.result);
    for (const auto& e : report.errors) metrics_->recordError(policy.namespace_, policy.name, e.reason());
  }

  const auto now = clock_.steadyNow();
  std::string previousReason;
  {
    std::lock_guard lock(mu_);
    PolicyState& state = policies_[keyOf(policy.namespace_, policy.name)];
    previousReason = state.lastReason;
    state.lastCheck = now;
    state.lastReason = report.result.condition.reason;
  }
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
  {
    std::lock_guard lock(mu_);
    policies_.erase(keyOf(ns, name));
  }
  if (metrics_) metrics_->forget(ns, name);
}

}  // namespace poolguard::usage
