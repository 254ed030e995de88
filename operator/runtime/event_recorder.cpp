#include "runtime/event_recorder.h"

#include <spdlog/spdlog.h>

#include <cstdio>

#include "runtime/leader_election.h"

namespace poolguard::runtime {

using kube::json;

json objectReference(const json& obj) {
  json ref = json::object();
  auto copy = [&](const json& from, const char* src, const char* dst) {
    auto it = from.find(src);
    if (it != from.end() && it->is_string() && !it->get_ref<const std::string&>().empty()) ref[dst] = *it;
  };
  copy(obj, "apiVersion", "apiVersion");
  copy(obj, "kind", "kind");
  auto m = obj.find("metadata");
  const json& meta = (m != obj.end() && m->is_object()) ? *m : obj;  // an ObjectReference has no metadata
  copy(meta, "namespace", "namespace");
  copy(meta, "name", "name");
  copy(meta, "uid", "uid");
  copy(meta, "resourceVersion", "resourceVersion");
  copy(obj, "fieldPath", "fieldPath");
  return ref;
}

namespace {

std::string refKey(const json& ref) {
  return ref.value("kind", "") + "/" + ref.value("namespace", "") + "/" + ref.value("name", "") + "/" +
         ref.value("uid", "");
}

const char* typeName(EventType t) { return t == EventType::kWarning ? "Warning" : "Normal"; }

}  // namespace

EventRecorder::EventRecorder(kube::Client& client, EventRecorderOptions opts)
    : client_(client),
      opts_(std::move(opts)),
      clock_(opts_.clock ? *opts_.clock : SystemClock::instance()),
      events_(kube::resources::events()) {
  if (opts_.instance.empty()) opts_.instance = defaultIdentity();
  writer_ = std::thread([this] { writerLoop(); });
}

EventRecorder::~EventRecorder() { stop(); }

void EventRecorder::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    dropped_ += pending_.size();
    pending_.clear();
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

template <typename Map, typename Lru>
void EventRecorder::touch(Map& map, Lru& lru, const std::string& key, size_t max) {
  auto it = map.find(key);
  if (it != map.end()) {
    lru.splice(lru.begin(), lru, it->second.second);
    return;
  }
  while (map.size() >= max && !lru.empty()) {
    map.erase(lru.back());
    lru.pop_back();
  }
}

void EventRecorder::record(const json& object, EventType type, const std::string& reason, const std::string& message) {
  json ref = objectReference(object);
  std::string key = refKey(ref);
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    touch(limits_, limitsLru_, key, opts_.maxTracked);
    auto it = limits_.find(key);
    if (it == limits_.end()) {
      double perSecond = 1.0 / std::chrono::duration<double>(opts_.refillInterval).count();
      limitsLru_.push_front(key);
      it = limits_
               .emplace(key, std::make_pair(std::make_unique<kube::RateLimiter>(perSecond, opts_.burst, clock_),
                                            limitsLru_.begin()))
               .first;
    }
    if (!it->second.first->tryAcquire()) {
      ++dropped_;
      spdlog::debug("event {} for {} dropped: rate limited", reason, key);
      return;
    }
    if (pending_.size() >= opts_.maxPending) {
      ++dropped_;
      spdlog::warn("event {} for {} dropped: {} events pending", reason, key, pending_.size());
      return;
    }
    pending_.push_back(Pending{std::move(ref), type, reason, message, clock_.now()});
  }
  cv_.notify_all();
}

bool EventRecorder::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return (pending_.empty() && !writing_) || stopping_; });
}

uint64_t EventRecorder::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

uint64_t EventRecorder::written() const {
  std::lock_guard lock(mu_);
  return written_;
}

void EventRecorder::writerLoop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
    if (stopping_) return;
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    writing_ = true;
    lock.unlock();
    write(std::move(p));
    lock.lock();
    writing_ = false;
    cv_.notify_all();
  }
}

std::string EventRecorder::nextEventName(const std::string& objectName) {
  // client-go's "<name>.<unix nanos in hex>", kept strictly increasing so two events in the same instant
  // (or under a clock that stands still) do not collide.
  int64_t nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.now().time_since_epoch()).count();
  nanos = std::max(nanos, lastNameNanos_ + 1);
  lastNameNanos_ = nanos;
  char hex[32];
  std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(nanos));
  return (objectName.empty() ? std::string("object") : objectName) + "." + hex;
}

void EventRecorder::write(Pending&& p) {
  const std::string ns = p.ref.value("namespace", "default");
  const std::string timestamp = formatRfc3339(p.at);
  const std::string aggKey = refKey(p.ref) + "\x1f" + typeName(p.type) + "\x1f" + p.reason + "\x1f" + p.message;
  const auto now = clock_.steadyNow();
  bool ok = false;

  auto agg = aggregates_.find(aggKey);
  if (agg != aggregates_.end() && now - agg->second.first.lastSeen <= opts_.aggregationWindow) {
    Aggregate& a = agg->second.first;
    json patch{{"count", a.count + 1}, {"lastTimestamp", timestamp}};
    auto r = client_.patch(events_, a.namespace_, a.name, kube::PatchType::kMerge, patch);
    if (r) {
      a.count += 1;
      a.lastSeen = now;
      touch(aggregates_, aggregatesLru_, aggKey, opts_.maxTracked);
      ok = true;
    } else if (r.error().code() != ErrorCode::kNotFound) {
      spdlog::warn("event {} for {}/{}: patch failed, dropped: {}", p.reason, ns, p.ref.value("name", ""),
                   r.error().message());
    }
    if (ok || r.error().code() != ErrorCode::kNotFound) {
      std::lock_guard lock(mu_);
      (ok ? written_ : dropped_) += 1;
      return;
    }
    // The aggregated Event expired: start a new one.
  }

  json event{{"apiVersion", "v1"},
             {"kind", "Event"},
             {"metadata", {{"name", nextEventName(p.ref.value("name", ""))}, {"namespace", ns}}},
             {"involvedObject", p.ref},
             {"reason", p.reason},
             {"message", p.message},
             {"type", typeName(p.type)},
             {"source", {{"component", opts_.component}, {"host", opts_.instance}}},
             {"reportingComponent", opts_.component},
             {"reportingInstance", opts_.instance},
             {"firstTimestamp", timestamp},
             {"lastTimestamp", timestamp},
             {"count", 1}};
  auto created = client_.create(events_, ns, event);
  if (created) {
    touch(aggregates_, aggregatesLru_, aggKey, opts_.maxTracked);
    auto it = aggregates_.find(aggKey);
    if (it == aggregates_.end()) {
      aggregatesLru_.push_front(aggKey);
      it = aggregates_.emplace(aggKey, std::make_pair(Aggregate{}, aggregatesLru_.begin())).first;
    }
    it->second.first = Aggregate{ns, event["metadata"]["name"].get<std::string>(), 1, now};
    ok = true;
  } else {
    spdlog::warn("event {} for {}/{}: create failed, dropped: {}", p.reason, ns, p.ref.value("name", ""),
                 created.error().message());
  }
  std::lock_guard lock(mu_);
  (ok ? written_ : dropped_) += 1;
}

}  // namespace poolguard::runtime
