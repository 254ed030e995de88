#pragma once
// Records core/v1 Events about objects without ever blocking the caller.
//
// Contract:
// - record() only rate-limits and enqueues; a writer thread of the recorder talks to the API server.
// - Rate limit per involved object (client-go's spam filter): a token bucket of `burst` events refilled with
//   one token every `refillInterval`. Events over the limit are dropped.
// - Aggregation: an event with the same involved object, type, reason and message as one written less than
//   `aggregationWindow` ago increments that Event's count and moves its lastTimestamp (a merge patch) instead of
//   creating a new Event. If that Event is gone (expired by the API server's TTL), a new one is created.
// - Write failures are logged and the event is dropped; so are events beyond `maxPending` queued ones. Events
//   are best effort by design: a reconcile never waits or fails because of one.
// - Object names and messages are logged; nothing else from the objects is.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "common/clock.h"
#include "kube/client.h"
#include "kube/rate_limiter.h"

namespace poolguard::runtime {

enum class EventType { kNormal, kWarning };

struct EventRecorderOptions {
  std::string component = "poolguard";  // source.component and reportingComponent
  std::string instance;                 // reportingInstance and source.host; defaultIdentity() when empty
  std::chrono::milliseconds aggregationWindow{std::chrono::minutes(10)};
  int burst = 25;
  std::chrono::milliseconds refillInterval{std::chrono::minutes(5)};
  size_t maxPending = 1000;
  size_t maxTracked = 4096;      // aggregation and rate-limit entries remembered (least recently used go first)
  const Clock* clock = nullptr;  // SystemClock when null
};

// The involvedObject reference for an object (apiVersion, kind, namespace, name, uid, resourceVersion), or the
// same fields copied from something that already is a reference.
kube::json objectReference(const kube::json& obj);

class EventRecorder {
 public:
  EventRecorder(kube::Client& client, EventRecorderOptions opts = {});
  // Stops the writer; events not yet written are dropped (call flush() first to wait for them).
  ~EventRecorder();
  EventRecorder(const EventRecorder&) = delete;
  EventRecorder& operator=(const EventRecorder&) = delete;

  // `object`: the object the event is about (a full object or an ObjectReference).
  void record(const kube::json& object, EventType type, const std::string& reason, const std::string& message);
  // Waits until every event recorded so far has been written or dropped; false on timeout.
  bool flush(std::chrono::milliseconds timeout);
  void stop();

  // Counters, for tests and debugging.
  uint64_t dropped() const;
  uint64_t written() const;

 private:
  struct Pending {
    kube::json ref;
    EventType type;
    std::string reason;
    std::string message;
    Clock::time_point at;
  };
  struct Aggregate {
    std::string namespace_;
    std::string name;
    int64_t count = 0;
    Clock::steady_point lastSeen;
  };
  void writerLoop();
  void write(Pending&& p);
  std::string nextEventName(const std::string& objectName);
  template <typename Map, typename Lru>
  static void touch(Map& map, Lru& lru, const std::string& key, size_t max);

  kube::Client& client_;
  EventRecorderOptions opts_;
  const Clock& clock_;
  kube::Resource events_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> pending_;
  bool stopping_ = false;
  bool writing_ = false;
  uint64_t dropped_ = 0;
  uint64_t written_ = 0;
  // Per-object buckets; rate limiting happens on the caller's thread.
  std::unordered_map<std::string, std::pair<std::unique_ptr<kube::RateLimiter>, std::list<std::string>::iterator>>
      limits_;
  std::list<std::string> limitsLru_;

  // Writer thread only.
  std::unordered_map<std::string, std::pair<Aggregate, std::list<std::string>::iterator>> aggregates_;
  std::list<std::string> aggregatesLru_;
  int64_t lastNameNanos_ = 0;

  std::thread writer_;
};

}  // namespace poolguard::runtime
