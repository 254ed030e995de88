#include "runtime/informer.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "runtime/stop.h"
#include "runtime/workqueue.h"

namespace poolguard::runtime {

EventHandlers enqueueKeys(WorkQueue& queue, std::function<std::vector<std::string>(const kube::Object&)> mapper,
                          ChangeFilter changed) {
  auto keysOf = [mapper = std::move(mapper)](const kube::Object& obj) {
    return mapper ? mapper(obj) : std::vector<std::string>{objectKey(obj)};
  };
  auto enqueue = [&queue, keysOf](const ObjectPtr& obj) {
    if (!obj) return;
    for (const auto& k : keysOf(*obj)) queue.add(k);
  };
  EventHandlers h;
  h.onAdd = enqueue;
  // Both states: a changed label or scaleTargetRef can move an object from one owner to another.
  h.onUpdate = [enqueue, changed = std::move(changed)](const ObjectPtr& oldObj, const ObjectPtr& newObj) {
    if (changed && oldObj && newObj && !changed(*oldObj, *newObj)) return;
    enqueue(oldObj);
    enqueue(newObj);
  };
  h.onDelete = enqueue;
  return h;
}

Informer::Informer(kube::Client& client, InformerOptions opts)
    : client_(client), opts_(std::move(opts)), clock_(opts_.clock ? *opts_.clock : SystemClock::instance()), store_() {
  scopes_ = opts_.namespaces.empty() ? std::vector<std::string>{""} : opts_.namespaces;
  synced_ = std::make_unique<std::atomic<bool>[]>(scopes_.size());
  for (const auto& ns : scopes_) {
    WatcherOptions wo;
    wo.resource = opts_.resource;
    wo.ns = ns;
    wo.labelSelector = opts_.labelSelector;
    wo.fieldSelector = opts_.fieldSelector;
    wo.pageSize = opts_.pageSize;
    wo.decode = opts_.decode;
    wo.minWatchTimeout = opts_.minWatchTimeout;
    wo.maxWatchTimeout = opts_.maxWatchTimeout;
    wo.backoff = opts_.backoff;
    wo.fields = opts_.fields;
    watchers_.push_back(std::make_unique<Watcher>(client_, std::move(wo)));
  }
}

Informer::~Informer() { stop(); }

std::optional<std::string> Informer::stalled(std::chrono::steady_clock::time_point now,
                                             std::chrono::seconds margin) const {
  if (!running_) return std::nullopt;
  const auto limit = opts_.maxWatchTimeout + margin;
  for (size_t i = 0; i < watchers_.size(); ++i) {
    const auto since = watchers_[i]->lastProgress();
    if (now - since > limit) {
      return "watch " + opts_.resource.key() + (scopes_[i].empty() ? "" : " in namespace " + scopes_[i]) +
             " has not advanced for " +
             std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - since).count()) + " s";
    }
  }
  return std::nullopt;
}

void Informer::addHandlers(EventHandlers handlers) { handlers_.push_back(std::move(handlers)); }

void Informer::dispatch(const std::vector<StoreChange>& changes) {
  for (const auto& c : changes) {
    for (const auto& h : handlers_) {
      switch (c.type) {
        case StoreChange::Type::kAdded:
          if (h.onAdd) h.onAdd(c.object);
          break;
        case StoreChange::Type::kUpdated:
          if (h.onUpdate) h.onUpdate(c.oldObject, c.object);
          break;
        case StoreChange::Type::kDeleted:
          if (h.onDelete) h.onDelete(c.oldObject);
          break;
      }
    }
  }
}

void Informer::handle(size_t watcherIndex, WatcherEvent&& ev) {
  std::vector<StoreChange> changes;
  switch (ev.type) {
    case WatcherEvent::Type::kRestarted: {
      std::optional<std::string> scope;
      if (!scopes_[watcherIndex].empty()) scope = scopes_[watcherIndex];
      changes = store_.replace(std::move(ev.objects), scope);
      synced_[watcherIndex].store(true);
      break;
    }
    case WatcherEvent::Type::kApplied:
      if (auto c = store_.apply(std::move(ev.object))) changes.push_back(std::move(*c));
      break;
    case WatcherEvent::Type::kDeleted:
      if (ev.object)
        if (auto c = store_.remove(objectKey(*ev.object))) changes.push_back(std::move(*c));
      break;
  }
  dispatch(changes);
}

void Informer::start(std::stop_token stop) {
  if (!threads_.empty()) return;
  linkedStop_ = std::make_unique<std::stop_callback<std::function<void()>>>(
      stop, std::function<void()>([this] { stopSource_.request_stop(); }));
  for (size_t i = 0; i < watchers_.size(); ++i) {
    threads_.emplace_back([this, i, token = stopSource_.get_token()] {
      watchers_[i]->run(token, clock_, [this, i](WatcherEvent&& ev) { handle(i, std::move(ev)); });
    });
  }
  running_ = true;
}

void Informer::stop() {
  running_ = false;
  stopSource_.request_stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  linkedStop_.reset();
}

bool Informer::hasSynced() const {
  for (size_t i = 0; i < scopes_.size(); ++i) {
    if (!synced_[i].load()) return false;
  }
  return true;
}

bool Informer::waitForSync(std::stop_token stop, std::chrono::milliseconds timeout) const {
  // Sync is a one-way flag set by the watch threads: polling it on the real clock keeps this free of locks.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!hasSynced()) {
    if (stop.stop_requested() || std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace poolguard::runtime
