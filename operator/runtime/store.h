#pragma once
// The informer cache: typed records (kube/object.h) keyed "namespace/name" ("name" when cluster scoped), with a
// namespace index and named secondary indexes.
//
// Contract:
// - Each informer decodes what it receives into its kind's record (a Decoder) before the Store sees it; the
//   Store keeps records and never the JSON they came from. JsonObject is the record for kinds without one of
//   their own (it keeps the object, compacted).
// - Stored records are immutable (shared_ptr<const>); readers keep them without copying, and a later write
//   replaces the pointer, never the pointee. A Store holds records of one type: recordAs<T> hands them back.
// - Reads take a shared lock, writes an exclusive one; handlers are never called under the lock (the Store only
//   returns the changes, the Informer dispatches them).
// - A record whose resourceVersion equals the stored one is not reported as a change.
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

#include "common/label_selector.h"
#include "kube/object.h"

namespace poolguard::runtime {

using json = nlohmann::json;
using ObjectPtr = kube::ObjectPtr;
// Decodes an object as it arrives (only the fields the informer's FieldFilter kept) into its record.
using Decoder = std::function<ObjectPtr(json&& obj)>;
// The index values of a record (none, one or several).
using IndexFunc = std::function<std::vector<std::string>(const kube::Object&)>;
using ObjectPredicate = std::function<bool(const kube::Object&)>;

// The record of a kind without a typed one: the object itself, compacted (see compactObject).
struct JsonObject : kube::Object {
  json value;
};
// The default Decoder: a JsonObject with the metadata read leniently (fields of another type count as absent).
ObjectPtr decodeJsonObject(json&& obj);
// The metadata of an object, read leniently.
kube::ObjectMeta metaOf(const json& obj);

// A record of a Store that holds records of type T (every Store holds one type: its informer's).
template <class T>
std::shared_ptr<const T> recordAs(const ObjectPtr& p) {
  return std::static_pointer_cast<const T>(p);
}
template <class T>
const T& recordAs(const kube::Object& o) {
  return static_cast<const T&>(o);
}

struct StoreChange {
  enum class Type { kAdded, kUpdated, kDeleted };
  Type type;
  std::string key;
  ObjectPtr oldObject;  // kUpdated, kDeleted
  ObjectPtr object;     // kAdded, kUpdated
};

class Store {
 public:
  Store() = default;

  // Registers a secondary index. Call before the first write (indexes are not back-filled).
  void addIndex(const std::string& name, IndexFunc fn);

  // Writes (from the informer). Each returns what changed, for event handlers.
  std::optional<StoreChange> apply(ObjectPtr obj);
  std::optional<StoreChange> remove(const std::string& key);
  // Atomically makes the cache equal to `objects`: adds and updates for what is new or changed, deletes for what
  // vanished. With `scopeNamespace`, only objects of that namespace can vanish (one informer per namespace
  // sharing a Store); without it, any object can.
  std::vector<StoreChange> replace(std::vector<ObjectPtr> objects,
                                   const std::optional<std::string>& scopeNamespace = {});

  // Reads.
  ObjectPtr get(const std::string& key) const;
  ObjectPtr get(const std::string& ns, const std::string& name) const;
  std::vector<ObjectPtr> list() const;
  std::vector<ObjectPtr> listInNamespace(const std::string& ns) const;
  std::vector<ObjectPtr> listInNamespace(const std::string& ns, const ObjectPredicate& pred) const;
  // Records of `ns` whose labels match the selector.
  std::vector<ObjectPtr> listMatchingLabels(const std::string& ns, const LabelSelector& selector) const;
  std::vector<ObjectPtr> byIndex(const std::string& indexName, const std::string& value) const;
  std::vector<std::string> keys() const;
  size_t size() const;

 private:
  struct Index {
    IndexFunc fn;
    std::unordered_map<std::string, std::set<std::string>> values;  // value -> keys
  };
  std::optional<StoreChange> putLocked(const std::string& key, ObjectPtr obj);
  std::optional<StoreChange> eraseLocked(const std::string& key);
  void indexLocked(const std::string& key, const kube::Object& obj, bool add);
  std::vector<ObjectPtr> collectLocked(const std::set<std::string>& keys) const;

  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, ObjectPtr> objects_;
  std::unordered_map<std::string, std::set<std::string>> byNamespace_;
  std::map<std::string, Index> indexes_;
};

// "namespace/name", or "name" for cluster-scoped objects.
std::string objectKey(const kube::Object& obj);
std::string objectKey(const json& obj);
std::string objectKey(const std::string& ns, const std::string& name);
// Splits a key made by objectKey into {namespace, name}.
std::pair<std::string, std::string> splitKey(const std::string& key);

// Removes metadata.managedFields and the kubectl.kubernetes.io/last-applied-configuration annotation.
json compactObject(json obj);

}  // namespace poolguard::runtime
