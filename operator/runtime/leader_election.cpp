#include "runtime/leader_election.h"

#include <algorithm>

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <thread>

#include "runtime/watcher.h"

namespace poolguard::runtime {

using kube::json;

Status validateLeaderElectionFlags(int64_t leaseDurationSeconds, int64_t renewDeadlineSeconds,
                                   int64_t retryPeriodSeconds) {
  auto invalid = [](const std::string& message) { return Status(Error(ErrorCode::kInvalidArgument, message)); };
  for (const auto& [flag, value] : {std::pair<const char*, int64_t>{"--lease-duration", leaseDurationSeconds},
                                    {"--renew-deadline", renewDeadlineSeconds},
                                    {"--retry-period", retryPeriodSeconds}}) {
    if (value < 1)
      return invalid(std::string(flag) + " " + std::to_string(value) + ": use a whole number of seconds of 1 or more");
  }
  const std::string lease = std::to_string(leaseDurationSeconds);
  const std::string renew = std::to_string(renewDeadlineSeconds);
  const std::string retry = std::to_string(retryPeriodSeconds);
  if (renewDeadlineSeconds >= leaseDurationSeconds) {
    return invalid("--renew-deadline " + renew + " must be less than --lease-duration " + lease +
                   ", or the leader could still write after its lease expired; lower --renew-deadline or raise "
                   "--lease-duration (the defaults are 10 and 15)");
  }
  // renewDeadline > 1.2 x retryPeriod, in whole numbers.
  if (renewDeadlineSeconds * 5 <= retryPeriodSeconds * 6) {
    return invalid("--renew-deadline " + renew + " must be more than 1.2 times --retry-period " + retry +
                   ", so a failed renewal is tried again before the deadline; raise --renew-deadline or lower "
                   "--retry-period (the defaults are 10 and 2)");
  }
  return okStatus();
}

std::string defaultIdentity() {
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == 0) std::snprintf(host, sizeof host, "unknown");
  return std::string(host) + "_" + std::to_string(getpid());
}

std::string formatMicroTime(Clock::time_point t) {
  auto secs = std::chrono::time_point_cast<std::chrono::seconds>(t);
  if (secs > t) secs -= std::chrono::seconds(1);
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(t - secs).count();
  std::time_t tt = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[48];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  // micros is in [0, 1e6): six digits.
  std::string out(buf);
  std::string digits = std::to_string(micros);
  out += "." + std::string(6 - std::min<size_t>(6, digits.size()), '0') + digits + "Z";
  return out;
}

LeaderElector::LeaderElector(kube::Client& client, LeaderElectionConfig config)
    : client_(client),
      config_(std::move(config)),
      clock_(config_.clock ? *config_.clock : SystemClock::instance()),
      leases_(kube::resources::leases()) {
  if (config_.identity.empty()) config_.identity = defaultIdentity();
}

LeaderElector::Record LeaderElector::parseRecord(const json& lease) {
  Record r;
  auto spec = lease.find("spec");
  if (spec == lease.end() || !spec->is_object()) return r;
  auto str = [&](const char* f) {
    auto it = spec->find(f);
    return (it != spec->end() && it->is_string()) ? it->get<std::string>() : std::string();
  };
  auto num = [&](const char* f) {
    auto it = spec->find(f);
    return (it != spec->end() && it->is_number_integer()) ? it->get<int64_t>() : int64_t{0};
  };
  r.holderIdentity = str("holderIdentity");
  r.leaseDurationSeconds = num("leaseDurationSeconds");
  r.acquireTime = str("acquireTime");
  r.renewTime = str("renewTime");
  r.leaseTransitions = num("leaseTransitions");
  return r;
}

void LeaderElector::writeRecord(json& lease, const Record& r) {
  json& spec = lease["spec"];
  spec["holderIdentity"] = r.holderIdentity;
  spec["leaseDurationSeconds"] = r.leaseDurationSeconds;
  spec["acquireTime"] = r.acquireTime;
  spec["renewTime"] = r.renewTime;
  spec["leaseTransitions"] = r.leaseTransitions;
}

void LeaderElector::observe(const Record& r, const std::string& resourceVersion) {
  std::string newHolder;
  {
    std::lock_guard lock(mu_);
    bool changed = !haveObserved_ || !(r == observed_);
    bool holderChanged = !haveObserved_ || r.holderIdentity != observed_.holderIdentity;
    if (changed) observedAt_ = clock_.steadyNow();
    observed_ = r;
    observedResourceVersion_ = resourceVersion;
    haveObserved_ = true;
    if (!holderChanged) return;
    newHolder = r.holderIdentity;
  }
  if (config_.onNewLeader && !newHolder.empty()) config_.onNewLeader(newHolder);
}

std::string LeaderElector::observedHolder() const {
  std::lock_guard lock(mu_);
  return observed_.holderIdentity;
}

Result<bool> LeaderElector::tryAcquireOrRenew() {
  const auto leaseSeconds =
      std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(config_.leaseDuration).count());
  const std::string now = formatMicroTime(clock_.now());
  Record mine{config_.identity, leaseSeconds, now, now, 0};

  if (written_) {
    // Renewal: one update of the Lease as we last wrote it. Its resourceVersion makes the update fail if anyone
    // wrote the Lease since; then (or on any other failure) read it and decide as a candidate would.
    json lease = std::move(*written_);
    written_.reset();
    Record previous = parseRecord(lease);
    mine.acquireTime = previous.acquireTime.empty() ? now : previous.acquireTime;
    mine.leaseTransitions = previous.leaseTransitions;
    writeRecord(lease, mine);
    auto renewed = client_.update(leases_, config_.leaseNamespace, lease);
    if (renewed) {
      observe(mine, resourceVersionOf(*renewed));
      written_ = std::move(*renewed);
      return true;
    }
    if (renewed.error().code() == ErrorCode::kTimeout) return renewed.error();
    mine = Record{config_.identity, leaseSeconds, now, now, 0};
  }

  auto current = client_.get(leases_, config_.leaseNamespace, config_.leaseName);
  if (!current) {
    if (current.error().code() != ErrorCode::kNotFound) return current.error();
    json lease{{"apiVersion", leases_.apiVersion()},
               {"kind", leases_.kind},
               {"metadata", {{"name", config_.leaseName}, {"namespace", config_.leaseNamespace}}}};
    writeRecord(lease, mine);
    auto created = client_.create(leases_, config_.leaseNamespace, lease);
    if (!created) return created.error();
    observe(mine, resourceVersionOf(*created));
    written_ = std::move(*created);
    return true;
  }

  json lease = std::move(*current);
  Record existing = parseRecord(lease);
  observe(existing, resourceVersionOf(lease));
  {
    std::lock_guard lock(mu_);
    // The holder's own leaseDurationSeconds counts (a released lease says 1 s), measured on our clock from
    // when we saw the record change.
    auto duration =
        existing.leaseDurationSeconds > 0
            ? std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::seconds(existing.leaseDurationSeconds))
            : config_.leaseDuration;
    bool expired = clock_.steadyNow() >= observedAt_ + duration;
    if (!existing.holderIdentity.empty() && existing.holderIdentity != config_.identity && !expired) return false;
  }
  if (existing.holderIdentity == config_.identity) {
    mine.acquireTime = existing.acquireTime.empty() ? now : existing.acquireTime;
    mine.leaseTransitions = existing.leaseTransitions;
  } else {
    mine.leaseTransitions = existing.leaseTransitions + 1;
  }
  writeRecord(lease, mine);
  // The update carries the resourceVersion we read: a concurrent writer makes it fail with kConflict.
  auto updated = client_.update(leases_, config_.leaseNamespace, lease);
  if (!updated) return updated.error();
  observe(mine, resourceVersionOf(*updated));
  written_ = std::move(*updated);
  return true;
}

Status LeaderElector::release() {
  written_.reset();
  auto current = client_.get(leases_, config_.leaseNamespace, config_.leaseName);
  if (!current) return current.error().code() == ErrorCode::kNotFound ? okStatus() : Status(current.error());
  json lease = std::move(*current);
  Record existing = parseRecord(lease);
  if (existing.holderIdentity != config_.identity) return okStatus();
  const std::string now = formatMicroTime(clock_.now());
  Record released{"", 1, now, now, existing.leaseTransitions};
  writeRecord(lease, released);
  auto updated = client_.update(leases_, config_.leaseNamespace, lease);
  if (!updated) return updated.error();
  observe(released, resourceVersionOf(*updated));
  return okStatus();
}

std::chrono::milliseconds LeaderElector::jittered(std::chrono::milliseconds d) {
  // A little jitter keeps candidates from colliding; little enough that a standby notices a released Lease
  // within 1.2 retry periods (client-go's 2.2 would let a graceful hand-over take up to 4.4 s at the defaults).
  std::uniform_real_distribution<double> u(1.0, 1.2);
  return std::chrono::milliseconds(static_cast<int64_t>(static_cast<double>(d.count()) * u(rng_)));
}

void LeaderElector::run(std::stop_token stop) {
  // Every attempt ends by `deadline`, whatever the connection does.
  auto attempt = [this](Clock::steady_point deadline) {
    kube::RequestDeadline bound(deadline);
    return tryAcquireOrRenew();
  };
  auto openFence = [this](Clock::steady_point until) {
    if (config_.fence) config_.fence->openUntil(until);
  };

  // Campaign.
  Clock::steady_point lastRenew{};
  bool acquired = false;
  while (!stop.stop_requested()) {
    auto start = clock_.steadyNow();
    auto r = attempt(start + config_.renewDeadline);
    if (r.ok() && *r) {
      lastRenew = start;
      acquired = true;
      break;
    }
    if (!r.ok()) {
      spdlog::warn("leader election {}/{}: acquire failed: {}", config_.leaseNamespace, config_.leaseName,
                   r.error().message());
    }
    if (!sleepFor(clock_, jittered(config_.retryPeriod), stop, config_.clockPoll)) return;
  }
  if (!acquired) return;
  if (stop.stop_requested()) {
    kube::RequestDeadline bound(clock_.steadyNow() + config_.renewDeadline);
    (void)release();
    return;
  }

  spdlog::info("leader election {}/{}: {} is the leader", config_.leaseNamespace, config_.leaseName, config_.identity);
  // Nobody may take the Lease over before (start of our write + leaseDuration); we write only until
  // (start + renewDeadline).
  openFence(lastRenew + config_.renewDeadline);
  leading_.store(true);
  std::stop_source leading;
  std::thread work;
  if (config_.onStartedLeading) {
    work = std::thread([fn = config_.onStartedLeading, token = leading.get_token()] { fn(token); });
  }

  // Renew until the deadline passes without a successful renewal, another holder shows up, or we are stopped.
  bool lost = false;
  while (!stop.stop_requested()) {
    if (!sleepFor(clock_, config_.retryPeriod, stop, config_.clockPoll)) break;
    auto start = clock_.steadyNow();
    auto r = attempt(lastRenew + config_.renewDeadline);
    if (r.ok() && *r) {
      lastRenew = start;
      openFence(lastRenew + config_.renewDeadline);
      continue;
    }
    if (r.ok()) {
      spdlog::error("leader election {}/{}: lease taken by {}", config_.leaseNamespace, config_.leaseName,
                    observedHolder());
      lost = true;
      break;
    }
    spdlog::warn("leader election {}/{}: renew failed: {}", config_.leaseNamespace, config_.leaseName,
                 r.error().message());
    if (clock_.steadyNow() - lastRenew >= config_.renewDeadline) {
      spdlog::error("leader election {}/{}: no renewal within {} ms, stepping down", config_.leaseNamespace,
                    config_.leaseName, config_.renewDeadline.count());
      lost = true;
      break;
    }
  }

  // Writes stop first, then the work is told to stop.
  if (config_.fence) config_.fence->close();
  leading_.store(false);
  leading.request_stop();
  if (config_.onStoppedLeading) config_.onStoppedLeading();
  if (work.joinable()) work.join();
  if (!lost && config_.releaseOnCancel) {
    kube::RequestDeadline bound(clock_.steadyNow() + config_.renewDeadline);
    if (auto s = release(); !s.ok()) {
      spdlog::warn("leader election {}/{}: release failed: {}", config_.leaseNamespace, config_.leaseName,
                   s.error().message());
    }
  }
}

}  // namespace poolguard::runtime
