#include "runtime/store.h"

#include <mutex>

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

std::string objectKey(const kube::Object& obj) { return objectKey(obj.meta.namespace_, obj.meta.name); }

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

kube::ObjectMeta metaOf(const json& obj) {
  kube::ObjectMeta m;
  auto mi = obj.find("metadata");
  if (mi == obj.end() || !mi->is_object()) return m;
  const json& meta = *mi;
  m.name = metaString(obj, "name");
  m.namespace_ = metaString(obj, "namespace");
  m.uid = metaString(obj, "uid");
  m.resourceVersion = metaString(obj, "resourceVersion");
  m.creationTimestamp = metaString(obj, "creationTimestamp");
  m.deletionTimestamp = metaString(obj, "deletionTimestamp");
  if (auto g = meta.find("generation"); g != meta.end() && g->is_number_integer()) m.generation = g->get<int64_t>();
  auto strings = [&](const char* field, std::map<std::string, std::string>& out) {
    auto f = meta.find(field);
    if (f == meta.end() || !f->is_object()) return;
    for (const auto& [k, v] : f->items()) {
      if (v.is_string()) out.emplace(k, v.get<std::string>());
    }
  };
  strings("labels", m.labels);
  strings("annotations", m.annotations);
  if (auto f = meta.find("finalizers"); f != meta.end() && f->is_array()) {
    for (const auto& v : *f) {
      if (v.is_string()) m.finalizers.push_back(v.get<std::string>());
    }
  }
  return m;
}

ObjectPtr decodeJsonObject(json&& obj) {
  auto out = std::make_shared<JsonObject>();
  out->value = compactObject(std::move(obj));
  out->meta = metaOf(out->value);
  return out;
}

void Store::addIndex(const std::string& name, IndexFunc fn) {
  std::unique_lock lock(mu_);
  indexes_[name] = Index{std::move(fn), {}};
}

void Store::indexLocked(const std::string& key, const kube::Object& obj, bool add) {
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
  const std::string& oldRv = old->meta.resourceVersion;
  if (!oldRv.empty() && oldRv == obj->meta.resourceVersion) return std::nullopt;
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

std::optional<StoreChange> Store::apply(ObjectPtr obj) {
  if (!obj) return std::nullopt;
  std::string key = objectKey(*obj);
  std::unique_lock lock(mu_);
  return putLocked(key, std::move(obj));
}

std::optional<StoreChange> Store::remove(const std::string& key) {
  std::unique_lock lock(mu_);
  return eraseLocked(key);
}

std::vector<StoreChange> Store::replace(std::vector<ObjectPtr> objects,
                                        const std::optional<std::string>& scopeNamespace) {
  // Keys are made before the lock so readers are blocked only for the swap itself.
  std::vector<std::pair<std::string, ObjectPtr>> prepared;
  prepared.reserve(objects.size());
  for (auto& o : objects) {
    if (!o) continue;
    std::string key = objectKey(*o);
    prepared.emplace_back(std::move(key), std::move(o));
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

std::vector<ObjectPtr> Store::listMatchingLabels(const std::string& ns, const LabelSelector& selector) const {
  return listInNamespace(ns, [&](const kube::Object& o) { return matches(selector, o.meta.labels); });
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
