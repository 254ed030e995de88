#pragma once
// The informer cache: the objects controllers read, compacted, keyed "namespace/name" ("name" when cluster
// scoped), with a namespace index and named secondary indexes.
//
// Contract:
// - Stored objects are immutable snapshots (shared_ptr<const json>); readers keep them without copying, and a
//   later write replaces the pointer, never the pointee.
// - Reads take a shared lock, writes an exclusive one; handlers are never called under the lock (the Store only
//   returns the changes, the Informer dispatches them).
// - Every object is compacted before it is stored: metadata.managedFields and the kubectl last-applied
//   annotation go, then the optional Transform runs. A Transform must keep metadata.name, metadata.namespace and
//   metadata.resourceVersion and whatever the indexes read.
// - An object whose resourceVersion equals the stored one is not reported as a change.
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace poolguard::runtime {

using json = nlohmann::json;
using ObjectPtr = std::shared_ptr<const json>;
// Keeps only what controllers read; receives an already compacted object.
using Transform = std::function<json(json)>;
// The index values of an object (none, one or several).
using IndexFunc = std::function<std::vector<std::string>(const json&)>;
using ObjectPredicate = std::function<bool(const json&)>;

struct StoreChange {
  enum class Type { kAdded, kUpdated, kDeleted };
  Type type;
  std::string key;
  ObjectPtr oldObject;  // kUpdated, kDeleted
  ObjectPtr object;     // kAdded, kUpdated
};

class Store {
 public:
  explicit Store(Transform transform = {});

  // Registers a secondary index. Call before the first write (indexes are not back-filled).
  void addIndex(const std::string& name, IndexFunc fn);

  // Writes (from the informer). Each returns what changed, for event handlers.
  std::optional<StoreChange> apply(json obj);
  std::optional<StoreChange> remove(const json& obj);
  // Atomically makes the cache equal to `objects`: adds and updates for what is new or changed, deletes for what
  // vanished. With `scopeNamespace`, only objects of that namespace can vanish (one informer per namespace
  // sharing a Store); without it, any object can.
  std::vector<StoreChange> replace(std::vector<json> objects, const std::optional<std::string>& scopeNamespace = {});

  // Reads.
  ObjectPtr get(const std::string& key) const;
  ObjectPtr get(const std::string& ns, const std::string& name) const;
  std::vector<ObjectPtr> list() const;
  std::vector<ObjectPtr> listInNamespace(const std::string& ns) const;
  std::vector<ObjectPtr> listInNamespace(const std::string& ns, const ObjectPredicate& pred) const;
  // Objects of `ns` whose labels match a metav1.LabelSelector (see matchesLabelSelector).
  std::vector<ObjectPtr> listMatchingLabels(const std::string& ns, const json& labelSelector) const;
  std::vector<ObjectPtr> byIndex(const std::string& indexName, const std::string& value) const;
  std::vector<std::string> keys() const;
  size_t size() const;

 private:
  struct Index {
    IndexFunc fn;
    std::unordered_map<std::string, std::set<std::string>> values;  // value -> keys
  };
  ObjectPtr prepare(json obj, std::string& key) const;
  std::optional<StoreChange> putLocked(const std::string& key, ObjectPtr obj);
  std::optional<StoreChange> eraseLocked(const std::string& key);
  void indexLocked(const std::string& key, const json& obj, bool add);
  std::vector<ObjectPtr> collectLocked(const std::set<std::string>& keys) const;

  Transform transform_;
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, ObjectPtr> objects_;
  std::unordered_map<std::string, std::set<std::string>> byNamespace_;
  std::map<std::string, Index> indexes_;
};

// "namespace/name", or "name" for cluster-scoped objects.
std::string objectKey(const json& obj);
std::string objectKey(const std::string& ns, const std::string& name);
// Splits a key made by objectKey into {namespace, name}.
std::pair<std::string, std::string> splitKey(const std::string& key);

// Removes metadata.managedFields and the kubectl.kubernetes.io/last-applied-configuration annotation.
json compactObject(json obj);

// A secondary index of HorizontalPodAutoscalers by their target: values are scaleTargetKey(ns, kind, name).
inline constexpr const char* kScaleTargetIndex = "scaleTargetRef";
IndexFunc scaleTargetRefIndex();
std::string scaleTargetKey(const std::string& ns, const std::string& kind, const std::string& name);

}  // namespace poolguard::runtime
