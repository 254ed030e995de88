#pragma once
// Leader election on a coordination.k8s.io/v1 Lease, with client-go's algorithm:
// - A candidate reads the Lease and takes it over when it is free (no holder), already its own, or when the
//   record has not changed for leaseDuration as measured on the candidate's own monotonic clock (no trust in
//   other nodes' wall clocks). Every write is an update carrying the read resourceVersion, so two candidates
//   cannot both win: the slower one gets a conflict.
// - The leader renews every retryPeriod with one optimistic update of the Lease as it last wrote it (a conflict
//   means someone else wrote it: then it reads the Lease and decides as a candidate). When it has not renewed
//   for renewDeadline, or when it sees another holder, it stops leading at once: the token given to
//   onStartedLeading is cancelled before onStoppedLeading runs. renewDeadline < leaseDuration leaves the old
//   leader time to stop before anyone else may take over.
// - Every attempt is bounded (kube::RequestDeadline): a renewal ends by (start of the last successful renewal +
//   renewDeadline), however the connection behaves, so a hung request cannot keep a leader past its deadline.
// - The optional write fence is open until (start of the last successful renewal + renewDeadline), and is closed
//   before the work is told to stop. Writes through a kube::FencedClient on it stop on time even when this
//   loop is late to notice, and writes still in flight are cancelled at the fence's end.
// - On a requested stop the leader cancels its work, waits for onStartedLeading to return, then releases the
//   Lease (empty holder, leaseDurationSeconds 1) so a successor takes over without waiting out the lease.
// Caveats: run() returns after leadership is lost; it does not campaign again. Callers usually exit the
// process (a fresh start begins with fresh caches). Timing is as good as the injected Clock.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stop_token>
#include <string>

#include "common/clock.h"
#include "common/result.h"
#include "kube/client.h"
#include "kube/fence.h"
#include "runtime/stop.h"

namespace poolguard::runtime {

struct LeaderElectionConfig {
  std::string leaseNamespace;
  std::string leaseName;
  std::string identity;  // defaultIdentity() when empty
  std::chrono::milliseconds leaseDuration{15'000};
  std::chrono::milliseconds renewDeadline{10'000};
  std::chrono::milliseconds retryPeriod{2'000};
  bool releaseOnCancel = true;
  // Runs on a thread of its own once the Lease is held; must return soon after `leading` is stopped.
  std::function<void(std::stop_token leading)> onStartedLeading;
  // Runs on the elector's thread when leadership ends, for whatever reason.
  std::function<void()> onStoppedLeading;
  // Runs when the observed holder changes (including to this identity).
  std::function<void(const std::string& holder)> onNewLeader;
  // Opened while this replica may write (see above); optional.
  std::shared_ptr<kube::WriteFence> fence;
  const Clock* clock = nullptr;  // SystemClock when null
  std::chrono::milliseconds clockPoll = kDefaultClockPoll;
};

// The --lease-duration, --renew-deadline and --retry-period values (seconds), checked as client-go checks them:
// each positive; the renew deadline shorter than the lease (or the write fence stays open after the lease may
// have expired); the renew deadline longer than 1.2 retry periods (client-go's jitter factor), so a failed renewal
// is tried again before the deadline. The error (kInvalidArgument) is one line naming the flags and the fix.
Status validateLeaderElectionFlags(int64_t leaseDurationSeconds, int64_t renewDeadlineSeconds,
                                   int64_t retryPeriodSeconds);

// "<hostname>_<pid>": unique per process on a node, and readable in `kubectl get lease`.
std::string defaultIdentity();

// metav1.MicroTime as the API server expects it: "2006-01-02T15:04:05.000000Z".
std::string formatMicroTime(Clock::time_point t);

class LeaderElector {
 public:
  LeaderElector(kube::Client& client, LeaderElectionConfig config);

  // One attempt: a renewal (one update) when this identity wrote the Lease last, else a read-modify-write. True
  // when this identity holds the Lease afterwards; false when another identity holds a live lease; an Error when
  // the attempt failed (transport, conflict, permissions, the request deadline). Not for concurrent callers.
  Result<bool> tryAcquireOrRenew();
  // Gives the Lease up if this identity holds it (see the contract above). Ok when there was nothing to do.
  Status release();

  // Campaigns, leads, renews; returns when leadership is lost or `stop` is requested (releasing the Lease if
  // configured). Blocks.
  void run(std::stop_token stop);

  bool isLeader() const { return leading_.load(); }
  const std::string& identity() const { return config_.identity; }
  // The holder last observed in the Lease ("" when none).
  std::string observedHolder() const;

 private:
  struct Record {
    std::string holderIdentity;
    int64_t leaseDurationSeconds = 0;
    std::string acquireTime;
    std::string renewTime;
    int64_t leaseTransitions = 0;
    bool operator==(const Record&) const = default;
  };
  static Record parseRecord(const kube::json& lease);
  static void writeRecord(kube::json& lease, const Record& r);
  void observe(const Record& r, const std::string& resourceVersion);
  std::chrono::milliseconds jittered(std::chrono::milliseconds d);

  kube::Client& client_;
  LeaderElectionConfig config_;
  const Clock& clock_;
  kube::Resource leases_;
  std::mt19937_64 rng_{std::random_device{}()};
  mutable std::mutex mu_;
  Record observed_;
  std::string observedResourceVersion_;
  Clock::steady_point observedAt_{};
  bool haveObserved_ = false;
  // The Lease as this identity last wrote it (holding it), for optimistic renewals; reset on any failure.
  std::optional<kube::json> written_;
  std::atomic<bool> leading_{false};
};

}  // namespace poolguard::runtime
