#pragma once
// An informer keeps a Store in sync with the API server through one Watcher per namespace (or one for all
// namespaces) and tells handlers what changed.
//
// Contract:
// - Handlers run on the informer's watch threads, after the Store has been updated, never under its lock. They
//   must be quick and must not block: enqueue keys (see enqueueKeys) and let reconcilers read the Store.
// - After a relist (410 Gone, or the first list) the Store is replaced atomically: handlers see adds/updates
//   for what changed and deletes for objects that vanished while the watch was down.
// - hasSynced() turns true once every namespace has completed its first list, and stays true.
// - Several namespaces share one Store; each namespace's relist only replaces that namespace's objects.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "kube/client.h"
#include "runtime/store.h"
#include "runtime/watcher.h"

namespace poolguard::runtime {

class WorkQueue;

struct EventHandlers {
  std::function<void(const ObjectPtr& obj)> onAdd;
  std::function<void(const ObjectPtr& oldObj, const ObjectPtr& newObj)> onUpdate;
  std::function<void(const ObjectPtr& obj)> onDelete;  // the last state the cache knew
};

// Whether an update matters to the reconciler: false skips it (a status-only write, say). Each kind's record
// says what its decisions read (see model/records.h).
using ChangeFilter = std::function<bool(const kube::Object& oldObj, const kube::Object& newObj)>;

// Handlers that add the keys `mapper` returns for every added, updated or deleted object. Without a mapper the
// object's own key is added. With `changed`, an update it rejects adds nothing.
EventHandlers enqueueKeys(WorkQueue& queue, std::function<std::vector<std::string>(const kube::Object&)> mapper = {},
                          ChangeFilter changed = {});

struct InformerOptions {
  kube::Resource resource;
  // Empty: a single watch over all namespaces (or of a cluster-scoped resource).
  std::vector<std::string> namespaces;
  std::string labelSelector;
  std::string fieldSelector;
  Decoder decode;  // what each object becomes in the Store; decodeJsonObject when empty
  // The fields of each object to parse at all (the rest is skipped while a page or event is read); null: all.
  std::shared_ptr<const kube::FieldFilter> fields;
  int64_t pageSize = 500;
  std::chrono::seconds minWatchTimeout{300};
  std::chrono::seconds maxWatchTimeout{600};
  BackoffOptions backoff{};
  const Clock* clock = nullptr;  // SystemClock when null
};

class Informer {
 public:
  Informer(kube::Client& client, InformerOptions opts);
  ~Informer();
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // Configuration; call before start().
  void addHandlers(EventHandlers handlers);
  void addIndex(const std::string& name, IndexFunc fn) { store_.addIndex(name, std::move(fn)); }

  // Starts one watch thread per namespace; they run until `stop` is requested or stop() is called.
  void start(std::stop_token stop);
  // Requests the watch threads to end, unblocks their watches and joins them.
  void stop();

  bool hasSynced() const;
  // Set when a started watcher has not finished a step for longer than its longest watch timeout plus `margin`
  // (it is blocked: a healthy watch ends at its timeout at the latest): what is stuck, for /healthz and the log.
  std::optional<std::string> stalled(std::chrono::steady_clock::time_point now, std::chrono::seconds margin) const;
  // Blocks until synced (true), or until `timeout` passes or `stop` is requested (false).
  bool waitForSync(std::stop_token stop, std::chrono::milliseconds timeout) const;

  const Store& store() const { return store_; }
  const kube::Resource& resource() const { return opts_.resource; }

 private:
  void dispatch(const std::vector<StoreChange>& changes);
  void handle(size_t watcherIndex, WatcherEvent&& ev);

  kube::Client& client_;
  InformerOptions opts_;
  const Clock& clock_;
  Store store_;
  std::vector<EventHandlers> handlers_;
  std::vector<std::unique_ptr<Watcher>> watchers_;
  std::vector<std::string> scopes_;  // one per watcher: its namespace ("" = all)
  std::unique_ptr<std::atomic<bool>[]> synced_;
  std::stop_source stopSource_;
  std::unique_ptr<std::stop_callback<std::function<void()>>> linkedStop_;
  std::vector<std::jthread> threads_;
  std::atomic<bool> running_{false};  // read by the health server's thread
};

}  // namespace poolguard::runtime
