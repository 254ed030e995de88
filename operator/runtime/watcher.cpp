#include "runtime/watcher.h"

#include <spdlog/spdlog.h>

#include "runtime/stop.h"

namespace poolguard::runtime {

namespace ws = watcher_state;

std::string resourceVersionOf(const json& obj) {
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return "";
  auto rv = m->find("resourceVersion");
  return (rv != m->end() && rv->is_string()) ? rv->get<std::string>() : "";
}

namespace {

// A watch ERROR event carries a metav1.Status; 410 (or reason Expired/Gone) means the resourceVersion is too old.
Error errorFromStatus(const json& status) {
  // Malformed statuses must not throw: every field is optional and checked for its type.
  auto field = [&status](const char* key) -> const json* {
    if (!status.is_object()) return nullptr;
    auto it = status.find(key);
    return it == status.end() ? nullptr : &*it;
  };
  const json* c = field("code");
  const json* r = field("reason");
  const json* m = field("message");
  int code = (c && c->is_number_integer()) ? c->get<int>() : 0;
  std::string reason = (r && r->is_string()) ? r->get<std::string>() : "";
  std::string message = (m && m->is_string()) ? m->get<std::string>() : "watch error event";
  ErrorCode ec = ErrorCode::kInternal;
  if (code == 410 || reason == "Expired" || reason == "Gone") {
    ec = ErrorCode::kGone;
  } else if (code == 429) {
    ec = ErrorCode::kTooManyRequests;
  } else if (code == 403) {
    ec = ErrorCode::kForbidden;
  } else if (code == 401) {
    ec = ErrorCode::kUnauthorized;
  } else if (code >= 500 || code == 0) {
    ec = ErrorCode::kUnavailable;
  }
  return Error(ec, message).withHttpStatus(code).withReason(reason);
}

}  // namespace

json Watcher::withTypeMeta(json obj) const {
  // List items carry no kind/apiVersion; handlers and event references expect whole objects either way.
  if (obj.is_object()) {
    if (!obj.contains("kind")) obj["kind"] = opts_.resource.kind;
    if (!obj.contains("apiVersion")) obj["apiVersion"] = opts_.resource.apiVersion();
  }
  return obj;
}

ObjectPtr Watcher::decode(json obj) const {
  obj = withTypeMeta(std::move(obj));
  return opts_.decode ? opts_.decode(std::move(obj)) : decodeJsonObject(std::move(obj));
}

Watcher::Watcher(kube::Client& client, WatcherOptions opts, uint64_t seed)
    : client_(client),
      opts_(std::move(opts)),
      rng_(seed),
      backoff_(opts_.backoff, seed ^ 0x9e3779b97f4a7c15ULL),
      lastProgress_(std::chrono::steady_clock::now().time_since_epoch().count()),
      listFields_(opts_.fields ? std::make_shared<const kube::FieldFilter>(kube::FieldFilter::listOf(*opts_.fields))
                               : nullptr),
      eventFields_(opts_.fields
                       ? std::make_shared<const kube::FieldFilter>(kube::FieldFilter::watchEventOf(*opts_.fields))
                       : nullptr) {}

std::chrono::seconds Watcher::randomWatchTimeout() {
  auto lo = opts_.minWatchTimeout.count();
  auto hi = std::max(lo, opts_.maxWatchTimeout.count());
  std::uniform_int_distribution<int64_t> d(lo, hi);
  return std::chrono::seconds(d(rng_));
}

Watcher::StepResult Watcher::fail(Error e, WatcherState next) {
  StepResult r;
  // A 410 means the resourceVersion (or continue token) expired: only a fresh list can resynchronize. Still not
  // at once: a compaction expires every watch of the cluster together, and relisting after the same jittered
  // back-off as any failure keeps the informers (and every other client) from listing in lockstep.
  state_ = e.code() == ErrorCode::kGone ? WatcherState{ws::Empty{}} : std::move(next);
  r.delay = backoff_.next();
  if (e.retryAfter()) r.delay = std::max<std::chrono::milliseconds>(r.delay, *e.retryAfter());
  r.error = std::move(e);
  return r;
}

Watcher::StepResult Watcher::step() {
  if (std::holds_alternative<ws::Empty>(state_)) return stepEmptyOrListing("", {});
  if (auto* l = std::get_if<ws::Listing>(&state_)) {
    return stepEmptyOrListing(l->continueToken, std::move(l->items));
  }
  if (auto* l = std::get_if<ws::Listed>(&state_)) return stepListed(std::string(l->resourceVersion));
  return stepWatching(std::get<ws::Watching>(state_));
}

Watcher::StepResult Watcher::stepEmptyOrListing(std::string continueToken, std::vector<ObjectPtr> items) {
  kube::ListOptions lo;
  lo.labelSelector = opts_.labelSelector;
  lo.fieldSelector = opts_.fieldSelector;
  lo.limit = opts_.pageSize;
  lo.fields = listFields_;
  lo.continueToken = continueToken;
  auto page = client_.list(opts_.resource, opts_.ns, lo);
  if (!page) {
    // Retry the same page after the delay; a 410 on the continue token restarts the list.
    return fail(page.error(), ws::Listing{std::move(continueToken), std::move(items)});
  }
  json list = std::move(*page);
  if (auto it = list.find("items"); it != list.end() && it->is_array()) {
    // Each item becomes its record now, and its JSON is freed: the list is never held whole as JSON.
    for (auto& item : *it) {
      if (auto rec = decode(std::move(item))) items.push_back(std::move(rec));
      item = nullptr;
    }
  }
  std::string next;
  if (auto m = list.find("metadata"); m != list.end() && m->is_object()) next = m->value("continue", "");
  StepResult r;
  if (!next.empty()) {
    state_ = ws::Listing{std::move(next), std::move(items)};
    return r;
  }
  backoff_.reset();
  state_ = ws::Listed{resourceVersionOf(list)};
  r.events.push_back(WatcherEvent{WatcherEvent::Type::kRestarted, nullptr, std::move(items)});
  return r;
}

Watcher::StepResult Watcher::stepListed(const std::string& rv) {
  kube::WatchOptions wo;
  wo.labelSelector = opts_.labelSelector;
  wo.fieldSelector = opts_.fieldSelector;
  wo.fields = eventFields_;
  wo.resourceVersion = rv;
  wo.allowBookmarks = true;
  wo.timeout = randomWatchTimeout();
  auto stream = client_.watch(opts_.resource, opts_.ns, wo);
  if (!stream) return fail(stream.error(), ws::Listed{rv});
  std::shared_ptr<kube::WatchStream> shared(std::move(*stream));
  {
    std::lock_guard lock(streamMu_);
    activeStream_ = shared;
  }
  state_ = ws::Watching{rv, std::move(shared)};
  return {};
}

Watcher::StepResult Watcher::stepWatching(ws::Watching& w) {
  auto next = w.stream->next();
  auto closeStream = [&] {
    std::lock_guard lock(streamMu_);
    activeStream_.reset();
  };
  if (!next) {
    closeStream();
    return fail(next.error(), ws::Listed{w.resourceVersion});
  }
  if (!next->has_value()) {
    // The server ended the watch (timeoutSeconds): resume where we were.
    closeStream();
    state_ = ws::Listed{w.resourceVersion};
    return {};
  }
  kube::WatchEvent& ev = **next;
  StepResult r;
  switch (ev.type) {
    case kube::WatchEventType::kError:
      closeStream();
      return fail(errorFromStatus(ev.object), ws::Listed{w.resourceVersion});
    case kube::WatchEventType::kBookmark:
      if (auto rv = resourceVersionOf(ev.object); !rv.empty()) w.resourceVersion = rv;
      break;
    case kube::WatchEventType::kAdded:
    case kube::WatchEventType::kModified:
    case kube::WatchEventType::kDeleted: {
      if (auto rv = resourceVersionOf(ev.object); !rv.empty()) w.resourceVersion = rv;
      auto type =
          ev.type == kube::WatchEventType::kDeleted ? WatcherEvent::Type::kDeleted : WatcherEvent::Type::kApplied;
      // A delete needs only the key: it goes through even if the decoder makes nothing of the object.
      kube::ObjectMeta meta = type == WatcherEvent::Type::kDeleted ? metaOf(ev.object) : kube::ObjectMeta{};
      ObjectPtr rec = decode(std::move(ev.object));
      if (!rec && type == WatcherEvent::Type::kDeleted)
        rec = std::make_shared<kube::Object>(kube::Object{std::move(meta)});
      if (rec) r.events.push_back(WatcherEvent{type, std::move(rec), {}});
      break;
    }
  }
  backoff_.reset();
  return r;
}

void Watcher::cancel() {
  std::shared_ptr<kube::WatchStream> s;
  {
    std::lock_guard lock(streamMu_);
    s = activeStream_;
  }
  if (s) s->cancel();
}

std::chrono::steady_clock::time_point Watcher::lastProgress() const {
  return std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(lastProgress_.load()));
}

void Watcher::run(std::stop_token stop, const Clock& clock, const std::function<void(WatcherEvent&&)>& sink) {
  std::stop_callback onStop(stop, [this] { cancel(); });
  auto progressed = [this] { lastProgress_ = std::chrono::steady_clock::now().time_since_epoch().count(); };
  progressed();
  while (!stop.stop_requested()) {
    auto r = step();
    progressed();
    for (auto& ev : r.events) sink(std::move(ev));
    if (stop.stop_requested()) break;
    if (r.error) {
      const char* what = r.error->code() == ErrorCode::kGone ? "relisting" : "retrying";
      spdlog::warn("watch {} in namespace '{}': {} ({}); {} in {} ms", opts_.resource.key(), opts_.ns,
                   r.error->message(), toString(r.error->code()), what, r.delay.count());
    }
    if (r.delay.count() > 0 && !sleepFor(clock, r.delay, stop)) break;
    progressed();
  }
  std::lock_guard lock(streamMu_);
  activeStream_.reset();
}

}  // namespace poolguard::runtime
