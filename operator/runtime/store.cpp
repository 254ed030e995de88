#include "runtime/store.h"

#include <mutex>

#include "runtime/selector.h"
#include "runtime/watcher.h"

namespace poolguard::runtime {

namespace {

std::string metaString(const json& obj, const char* field) {
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return "";
  auto f = m->find(field);
  return (f != m->end() && f->is_string()) ? f->get<std::string>() : "";
}

}  // namespace

std::string objectKey(const std::string& ns, const std::string& name) { return ns.empty() ? name : ns + "/" + name; }

std::string objectKey(const json& obj) { return objectKey(metaString(obj, "namespace"), metaString(obj, "name")); }

std::pair<std::string, std::string> splitKey(const std::string& key) {
  auto slash = key.find('/');
  if (slash == std::string::npos) return {"", key};
  return {key.substr(0, slash), key.substr(slash + 1)};
}

json compactObject(json obj) {
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return obj;
  m->erase("managedFields");
  if (auto a = m->find("annotations"); a != m->end() && a->is_object()) {
    a->erase("kubectl.kubernetes.io/last-applied-configuration");
    if (a->empty()) m->erase("annotations");
  }
  return obj;
}

std::string scaleTargetKey(const std::string& ns, const std::string& kind, const std::string& name) {
  return ns + "/" + kind + "/" + name;
}

IndexFunc scaleTargetRefIndex() {
  return [](const json& hpa) -> std::vector<std::string> {
    auto spec = hpa.find("spec");
    if (spec == hpa.end() || !spec->is_object()) return {};
    auto ref = spec->find("scaleTargetRef");
    if (ref == spec->end() || !ref->is_object()) return {};
    std::string kind = ref->value("kind", "");
    std::string name = ref->value("name", "");
    if (kind.empty() || name.empty()) return {};
    return {scaleTargetKey(metaString(hpa, "namespace"), kind, name)};
  };
}

Store::Store(Transform transform) : transform_(std::move(transform)) {}

void Store::addIndex(const std::string& name, IndexFunc fn) {
  std::unique_lock lock(mu_);
  indexes_[name] = Index{std::move(fn), {}};
}

ObjectPtr Store::prepare(json obj, std::string& key) const {
  key = objectKey(obj);
  obj = compactObject(std::move(obj));
  if (transform_) obj = transform_(std::move(obj));
  return std::make_shared<const json>(std::move(obj));
}

void Store::indexLocked(const std::string& key, const json& obj, bool add) {
  auto ns = splitKey(key).first;
  if (add) {
    byNamespace_[ns].insert(key);
  } else if (auto it = byNamespace_.find(ns); it != byNamespace_.end()) {
    it->second.erase(key);
    if (it->second.empty()) byNamespace_.erase(it);
  }
  for (auto& [name, index] : indexes_) {
    for (const auto& value : index.fn(obj)) {
      if (add) {
        index.values[value].insert(key);
      } else if (auto it = index.values.find(value); it != index.values.end()) {
        it->second.erase(key);
        if (it->second.empty()) index.values.erase(it);
      }
    }
  }
}

std::optional<StoreChange> Store::putLocked(const std::string& key, ObjectPtr obj) {
  auto it = objects_.find(key);
  if (it == objects_.end()) {
    indexLocked(key, *obj, true);
    objects_.emplace(key, obj);
    return StoreChange{StoreChange::Type::kAdded, key, nullptr, std::move(obj)};
  }
  ObjectPtr old = it->second;
  std::string oldRv = resourceVersionOf(*old);
  if (!oldRv.empty() && oldRv == resourceVersionOf(*obj)) return std::nullopt;
  indexLocked(key, *old, false);
  indexLocked(key, *obj, true);
  it->second = obj;
  return StoreChange{StoreChange::Type::kUpdated, key, std::move(old), std::move(obj)};
}

std::optional<StoreChange> Store::eraseLocked(const std::string& key) {
  auto it = objects_.find(key);
  if (it == objects_.end()) return std::nullopt;
  ObjectPtr old = it->second;
  indexLocked(key, *old, false);
  objects_.erase(it);
  return StoreChange{StoreChange::Type::kDeleted, key, std::move(old), nullptr};
}

std::optional<StoreChange> Store::apply(json obj) {
  std::string key;
  auto prepared = prepare(std::move(obj), key);
  std::unique_lock lock(mu_);
  return putLocked(key, std::move(prepared));
}

std::optional<StoreChange> Store::remove(const json& obj) {
  std::string key = objectKey(obj);
  std::unique_lock lock(mu_);
  return eraseLocked(key);
}

std::vector<StoreChange> Store::replace(std::vector<json> objects, const std::optional<std::string>& scopeNamespace) {
  // Compaction and transforms run before the lock so readers are blocked only for the swap itself.
  std::vector<std::pair<std::string, ObjectPtr>> prepared;
  prepared.reserve(objects.size());
  for (auto& o : objects) {
    std::string key;
    auto p = prepare(std::move(o), key);
    prepared.emplace_back(std::move(key), std::move(p));
  }
  std::vector<StoreChange> changes;
  std::unique_lock lock(mu_);
  std::set<std::string> incoming;
  for (const auto& [key, _] : prepared) incoming.insert(key);
  std::vector<std::string> vanished;
  if (scopeNamespace) {
    if (auto it = byNamespace_.find(*scopeNamespace); it != byNamespace_.end()) {
      for (const auto& key : it->second) {
        if (!incoming.count(key)) vanished.push_back(key);
      }
    }
  } else {
    for (const auto& [key, _] : objects_) {
      if (!incoming.count(key)) vanished.push_back(key);
    }
  }
  for (const auto& key : vanished) {
    if (auto c = eraseLocked(key)) changes.push_back(std::move(*c));
  }
  for (auto& [key, obj] : prepared) {
    if (auto c = putLocked(key, std::move(obj))) changes.push_back(std::move(*c));
  }
  return changes;
}

ObjectPtr Store::get(const std::string& key) const {
  std::shared_lock lock(mu_);
  auto it = objects_.find(key);
  return it == objects_.end() ? nullptr : it->second;
}

ObjectPtr Store::get(const std::string& ns, const std::string& name) const { return get(objectKey(ns, name)); }

std::vector<ObjectPtr> Store::collectLocked(const std::set<std::string>& keys) const {
  std::vector<ObjectPtr> out;
  out.reserve(keys.size());
  for (const auto& k : keys) {
    if (auto it = objects_.find(k); it != objects_.end()) out.push_back(it->second);
  }
  return out;
}

std::vector<ObjectPtr> Store::list() const {
  std::shared_lock lock(mu_);
  std::vector<ObjectPtr> out;
  out.reserve(objects_.size());
  for (const auto& [_, o] : objects_) out.push_back(o);
  return out;
}

std::vector<ObjectPtr> Store::listInNamespace(const std::string& ns) const {
  std::shared_lock lock(mu_);
  auto it = byNamespace_.find(ns);
  return it == byNamespace_.end() ? std::vector<ObjectPtr>{} : collectLocked(it->second);
}

std::vector<ObjectPtr> Store::listInNamespace(const std::string& ns, const ObjectPredicate& pred) const {
  auto all = listInNamespace(ns);
  std::vector<ObjectPtr> out;
  for (auto& o : all) {
    if (pred(*o)) out.push_back(std::move(o));
  }
  return out;
}

std::vector<ObjectPtr> Store::listMatchingLabels(const std::string& ns, const json& labelSelector) const {
  return listInNamespace(ns, [&](const json& o) { return matchesLabelSelector(labelSelector, labelsOf(o)); });
}

std::vector<ObjectPtr> Store::byIndex(const std::string& indexName, const std::string& value) const {
  std::shared_lock lock(mu_);
  auto idx = indexes_.find(indexName);
  if (idx == indexes_.end()) return {};
  auto it = idx->second.values.find(value);
  return it == idx->second.values.end() ? std::vector<ObjectPtr>{} : collectLocked(it->second);
}

std::vector<std::string> Store::keys() const {
  std::shared_lock lock(mu_);
  std::vector<std::string> out;
  out.reserve(objects_.size());
  for (const auto& [k, _] : objects_) out.push_back(k);
  return out;
}

size_t Store::size() const {
  std::shared_lock lock(mu_);
  return objects_.size();
}

}  // namespace poolguard::runtime
