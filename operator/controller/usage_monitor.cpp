#include "controller/usage_monitor.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <tuple>

#include "runtime/event_recorder.h"
#include "runtime/store.h"
#include "usage/grant.h"

namespace poolguard::controller {
namespace {

using json = nlohmann::json;

// The same sessions, found in the same way: how long each has been idle is not compared (it grows at every check).
bool sameSessions(const std::vector<usage::LeakedSession>& a, const std::vector<usage::LeakedSession>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
    return std::tie(x.pid, x.ended, x.namespace_, x.workload) == std::tie(y.pid, y.ended, y.namespace_, y.workload);
  });
}

bool sameFindings(const usage::AnalysisResult& a, const usage::AnalysisResult& b) {
  auto figures = [](const usage::UsageStatus& u) {
    return std::tie(u.source, u.connections, u.active, u.idle, u.idleInTransaction, u.oldestIdleInTransactionSeconds,
                    u.serverMaxConnections);
  };
  if (a.condition.status != b.condition.status || a.condition.reason != b.condition.reason ||
      a.condition.message != b.condition.message || figures(a.usage) != figures(b.usage) ||
      a.databaseConnections != b.databaseConnections || a.maxConnectionsMismatch != b.maxConnectionsMismatch ||
      a.workloads.size() != b.workloads.size() || a.ungoverned != b.ungoverned ||
      !sameSessions(a.leakedSessions, b.leakedSessions) || a.sessionsEnded != b.sessionsEnded) {
    return false;
  }
  for (size_t i = 0; i < a.workloads.size(); ++i) {
    if (a.workloads[i].name != b.workloads[i].name || a.workloads[i].connections != b.workloads[i].connections)
      return false;
  }
  return true;
}

}  // namespace

UsageMonitor::UsageMonitor(usage::Checker& checker, kube::Client& client, const Clock& clock, OnChange onChange,
                           runtime::EventRecorder* events, std::shared_ptr<const kube::WriteFence> fence)
    : checker_(checker),
      client_(client),
      clock_(clock),
      onChange_(std::move(onChange)),
      events_(events),
      fence_(std::move(fence)) {}

UsageMonitor::~UsageMonitor() { stop(); }

std::string UsageMonitor::targetOf(const policy::Policy& p, const std::string& secretNamespace) {
  if (const auto& pg = p.spec.usage.postgres) {
    return "postgres " + usage::postgresTarget(*pg) + " as " + pg->credentialsSecretRef.name + "@" + secretNamespace;
  }
  // Per namespace too: one tenant's slow queries must not hold up another's checks (a cluster policy's: "").
  if (const auto& prom = p.spec.usage.prometheus) {
    return "prometheus " + usage::prometheusTarget(prom->url) + " for " + p.namespace_;
  }
  return "";
}

void UsageMonitor::want(const json& policyObject, const policy::Policy& policy,
                        std::vector<usage::GovernedWorkload> workloads, const std::string& secretNamespace) {
  const std::string key = runtime::objectKey(policy.namespace_, policy.name);
  const auto& meta = policyObject.value("metadata", json::object());
  const std::string uid = meta.value("uid", "");
  const std::string secrets = secretNamespace.empty() ? policy.namespace_ : secretNamespace;
  const std::string target = targetOf(policy, secrets);
  std::vector<std::thread> finished;
  {
    std::lock_guard l(mu_);
    if (stopped_ || target.empty()) return;
    auto [it, added] = wanted_.try_emplace(key);
    Wanted& w = it->second;
    const bool moved = added || w.uid != uid || w.target != target;
    w.uid = uid;
    w.object = {
        {"apiVersion", policyObject.value("apiVersion", "")},
        {"kind", policyObject.value("kind", "")},
        {"metadata", {{"name", meta.value("name", policy.name)}, {"namespace", policy.namespace_}, {"uid", uid}}}};
    w.policy = policy;
    w.workloads = std::move(workloads);
    w.secretNamespace = secrets;
    w.target = target;
    if (moved) {
      w.due = clock_.steadyNow();
      if (auto f = found_.find(key); f != found_.end() && f->second.uid != uid) found_.erase(f);
    }
    auto t = targets_.find(target);
    if (t == targets_.end()) {  // a retiring thread has already left targets_
      auto& fresh = targets_[target];
      fresh = std::make_unique<Target>();
      Target* self = fresh.get();
      fresh->thread = std::thread([this, target, self] { run(target, self); });
    }
    collectFinishedLocked(finished);
  }
  cv_.notify_all();
  for (auto& t : finished) t.join();
}

void UsageMonitor::forget(const std::string& ns, const std::string& name) {
  const std::string key = runtime::objectKey(ns, name);
  bool deferred = false;
  {
    std::lock_guard l(mu_);
    found_.erase(key);
    auto it = wanted_.find(key);
    if (it != wanted_.end()) {
      // The target's thread releases the policy's connections after the check it may be running: closing a
      // connection waits for a read in progress, which must not hold up the caller (a reconcile).
      auto t = targets_.find(it->second.target);
      if (t != targets_.end()) {
        t->second->forgets.emplace_back(ns, name);
        deferred = true;
      }
      const std::string database = it->second.policy.spec.database.name;
      wanted_.erase(it);
      bool named = false;
      for (const auto& [k, w] : wanted_) named = named || w.policy.spec.database.name == database;
      if (!named) serverMaxConnections_.erase(database);
    }
  }
  cv_.notify_all();
  if (!deferred) checker_.forget(ns, name);
}

std::optional<usage::AnalysisResult> UsageMonitor::latest(const std::string& policyKey, const std::string& uid) const {
  std::lock_guard l(mu_);
  auto it = found_.find(policyKey);
  if (it == found_.end() || it->second.uid != uid) return std::nullopt;
  return it->second.result;
}

std::shared_ptr<const usage::AnalysisInput> UsageMonitor::latestInput(const std::string& policyKey,
                                                                      const std::string& uid) const {
  std::lock_guard l(mu_);
  auto it = found_.find(policyKey);
  if (it == found_.end() || it->second.uid != uid) return nullptr;
  return it->second.input;
}

std::optional<int32_t> UsageMonitor::serverMaxConnections(const std::string& database) const {
  std::lock_guard l(mu_);
  auto it = serverMaxConnections_.find(database);
  if (it == serverMaxConnections_.end()) return std::nullopt;
  return it->second;
}

size_t UsageMonitor::targets() const {
  std::lock_guard l(mu_);
  return targets_.size();
}

size_t UsageMonitor::policies() const {
  std::lock_guard l(mu_);
  return wanted_.size() + found_.size() + serverMaxConnections_.size();
}

void UsageMonitor::stop() {
  std::vector<std::unique_ptr<Target>> all;
  {
    std::lock_guard l(mu_);
    stopped_ = true;
    for (auto& [name, t] : targets_) all.push_back(std::move(t));
    targets_.clear();
    for (auto& t : retiring_) all.push_back(std::move(t));
    retiring_.clear();
  }
  cv_.notify_all();
  for (auto& t : all) {
    if (t->thread.joinable()) t->thread.join();
  }
}

void UsageMonitor::collectFinishedLocked(std::vector<std::thread>& finished) {
  std::erase_if(retiring_, [&](std::unique_ptr<Target>& t) {
    if (!t->done) return false;
    finished.push_back(std::move(t->thread));
    return true;
  });
}

void UsageMonitor::run(const std::string& target, Target* self) {
  std::unique_lock l(mu_);
  while (!stopped_) {
    if (!self->forgets.empty()) {
      auto forgets = std::move(self->forgets);
      self->forgets.clear();
      l.unlock();
      for (const auto& [ns, name] : forgets) checker_.forget(ns, name);
      l.lock();
      continue;
    }
    const auto now = clock_.steadyNow();
    std::optional<Clock::steady_point> next;
    std::vector<std::pair<std::string, Wanted>> due;
    for (auto& [key, w] : wanted_) {
      if (w.target != target) continue;
      if (w.due <= now) {
        due.emplace_back(key, w);
        w.due = now + w.policy.spec.usage.interval;
      } else if (!next || w.due < *next) {
        next = w.due;
      }
    }
    if (due.empty() && !next) {
      // No policy checks this target any more: retire (a later want starts a new thread).
      if (auto t = targets_.find(target); t != targets_.end() && t->second.get() == self) {
        retiring_.push_back(std::move(t->second));
        targets_.erase(t);
      }
      break;
    }
    if (due.empty()) {
      // Polls at least every 200 ms, so an injected clock's time is followed too.
      auto wait = std::min<std::chrono::nanoseconds>(*next - now, std::chrono::milliseconds(200));
      cv_.wait_for(l, wait);
      continue;
    }
    l.unlock();
    for (auto& [key, w] : due) checkOne(key, std::move(w));
    l.lock();
  }
  self->done = true;
}

void UsageMonitor::checkOne(const std::string& key, Wanted wanted) {
  usage::UsageReport report;
  try {
    usage::CheckContext context{wanted.secretNamespace, nullptr};
    // Sessions are ended only while this replica surely holds the leader's lease, as writes are.
    if (fence_) context.mayEndSessions = [fence = fence_] { return fence->openWindow().has_value(); };
    report = checker_.check(wanted.policy, wanted.workloads, client_, context);
  } catch (const std::exception& e) {
    // A check must never end the process from a monitor thread: the policy reports the failure instead.
    spdlog::error("usage check of {} failed: {}", key, e.what());
    report.result.condition = {usage::ConditionStatus::kUnknown, usage::reasons::kUsageUnavailable,
                               std::string("the usage check failed: ") + e.what()};
  }
  bool changed = false;
  {
    std::lock_guard l(mu_);
    auto w = wanted_.find(key);
    if (w == wanted_.end() || w->second.uid != wanted.uid || w->second.target != wanted.target) return;  // gone
    auto& f = found_[key];
    changed = f.uid != wanted.uid || !sameFindings(f.result, report.result);
    // Only a ClusterConnectionBudget's sources are read again (by the policies of its database): a policy's own
    // check keeps no copy of the server's sessions.
    f = Found{wanted.uid, report.result, wanted.policy.kind == "ClusterConnectionBudget" ? report.input : nullptr};
    if (report.result.usage.serverMaxConnections) {
      serverMaxConnections_[wanted.policy.spec.database.name] = *report.result.usage.serverMaxConnections;
    }
  }
  // Every session terminateLeaked ended is an Event, whether or not the findings changed; in Audit, the sessions it
  // would end, when the findings change.
  if (events_) {
    for (const auto& l : report.result.leakedSessions) {
      if (!l.ended && !changed) continue;
      const std::string session = "session " + std::to_string(l.pid) + " of workload " + l.namespace_ + "/" +
                                  l.workload + " (user " + l.user + ", idle in transaction for " +
                                  std::to_string(l.idleSeconds) + "s)";
      if (l.ended) {
        events_->record(wanted.object, runtime::EventType::kWarning, "LeakedSessionEnded", "ended " + session);
      } else {
        events_->record(wanted.object, runtime::EventType::kNormal, "LeakedSessionNotEnded",
                        "did not end " + session +
                            (wanted.policy.spec.mode == policy::Mode::kAudit ? ": the policy is in Audit" : ""));
      }
    }
  }
  if (!changed) return;
  // A Secret or URL poolguard may not use is the policy owner's to fix (an upgrade from before the grants meets
  // it first): an Event as well as the condition, when the finding appears.
  for (const auto& e : report.errors) {
    if (events_ && (e.reason() == usage::grant_reasons::kCredentialsNotGranted ||
                    e.reason() == usage::grant_reasons::kPrometheusUrlNotAllowed)) {
      events_->record(wanted.object, runtime::EventType::kWarning, e.reason(), e.message());
    }
  }
  if (onChange_) onChange_(key);
}

}  // namespace poolguard::controller
