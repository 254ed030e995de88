#pragma once
// The watcher behind every informer, as an explicit state machine (after kube-rs kube-runtime watcher.rs):
//
//   Empty ──list page 1──▶ Listing{continue, items} ──last page──▶ Listed{rv}  (emits Restarted{all items})
//   Listed{rv} ──open watch(rv, random timeout)──▶ Watching{rv, stream}
//   Watching ── ADDED/MODIFIED ▶ Applied, DELETED ▶ Deleted, BOOKMARK ▶ rv updated; stays Watching
//   Watching ── stream ends cleanly ▶ Listed{last rv}                (resume, no relist, no delay)
//   any      ── 410 Gone (HTTP or ERROR event) ▶ Empty + jittered backoff delay (relist; the store diffs the list)
//   any      ── other failure ▶ same resumable state + jittered exponential backoff delay
//
// Guarantees: after a Restarted event the consumer holds the complete list as of its resourceVersion; every later
// Applied/Deleted is newer than it. Objects deleted while the watcher was away are not reported individually:
// Restarted carries the full list and the consumer (Store::replace) derives the deletions.
// Caveats: step() blocks while a page is fetched or a watch event awaited; cancel() from another thread unblocks
// it. A Watcher is driven by one thread at a time.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stop_token>
#include <string>
#include <variant>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "kube/client.h"
#include "runtime/backoff.h"
#include "runtime/store.h"

namespace poolguard::runtime {

using json = nlohmann::json;

namespace watcher_state {
struct Empty {};
struct Listing {
  std::string continueToken;
  std::vector<ObjectPtr> items;  // the records of the pages received so far (each page is decoded as it arrives)
};
struct Listed {
  std::string resourceVersion;
};
struct Watching {
  std::string resourceVersion;  // of the newest event or bookmark seen
  std::shared_ptr<kube::WatchStream> stream;
};
}  // namespace watcher_state

using WatcherState =
    std::variant<watcher_state::Empty, watcher_state::Listing, watcher_state::Listed, watcher_state::Watching>;

struct WatcherEvent {
  enum class Type { kRestarted, kApplied, kDeleted };
  Type type;
  ObjectPtr object;                // kApplied, kDeleted
  std::vector<ObjectPtr> objects;  // kRestarted: the complete list
};

struct WatcherOptions {
  kube::Resource resource;
  std::string ns;  // "" = all namespaces (or a cluster-scoped resource)
  std::string labelSelector;
  std::string fieldSelector;
  int64_t pageSize = 500;
  // Each watch asks the server to end it after a random duration in this range, so that long-lived watches are
  // spread over API server instances and restarts of many watchers do not line up.
  std::chrono::seconds minWatchTimeout{300};
  std::chrono::seconds maxWatchTimeout{600};
  BackoffOptions backoff{};
  // The fields of each object to parse (kube::FieldFilter); null: all of them.
  std::shared_ptr<const kube::FieldFilter> fields;
  // What each object becomes (with kind and apiVersion filled in); decodeJsonObject when empty.
  Decoder decode;
};

class Watcher {
 public:
  struct StepResult {
    std::vector<WatcherEvent> events;
    // How long to wait before the next step (non-zero only after a failure).
    std::chrono::milliseconds delay{0};
    // The failure behind a delay or a relist, for logging.
    std::optional<Error> error;
  };

  Watcher(kube::Client& client, WatcherOptions opts, uint64_t seed = std::random_device{}());

  // Performs exactly one transition of the state machine.
  StepResult step();
  const WatcherState& state() const { return state_; }

  // Loops step() until `stop` is requested, handing events to `sink` in order and waiting out backoff delays on
  // `clock`. Unblocks an in-flight watch when stopped.
  void run(std::stop_token stop, const Clock& clock, const std::function<void(WatcherEvent&&)>& sink);

  // Ends a blocked watch from any thread (the step reports kCancelled and resumes from its resourceVersion).
  void cancel();
  // When run() last finished a step, or started (std::chrono::steady_clock, real time whatever clock run() was
  // given). A watcher that stops advancing is blocked: a healthy one completes a step at least once per watch
  // timeout, when the server ends the watch.
  std::chrono::steady_clock::time_point lastProgress() const;

 private:
  StepResult stepEmptyOrListing(std::string continueToken, std::vector<ObjectPtr> items);
  ObjectPtr decode(json obj) const;
  StepResult stepListed(const std::string& rv);
  StepResult stepWatching(watcher_state::Watching& w);
  StepResult fail(Error e, WatcherState next);
  std::chrono::seconds randomWatchTimeout();
  json withTypeMeta(json obj) const;

  kube::Client& client_;
  WatcherOptions opts_;
  std::mt19937_64 rng_;
  Backoff backoff_;
  std::atomic<int64_t> lastProgress_{0};                  // steady_clock ticks
  std::shared_ptr<const kube::FieldFilter> listFields_;   // a page of objects kept by opts_.fields
  std::shared_ptr<const kube::FieldFilter> eventFields_;  // an event of such an object
  WatcherState state_;
  std::mutex streamMu_;
  std::shared_ptr<kube::WatchStream> activeStream_;
};

// The "metadata.resourceVersion" of an object or list ("" when absent).
std::string resourceVersionOf(const json& obj);

}  // namespace poolguard::runtime
