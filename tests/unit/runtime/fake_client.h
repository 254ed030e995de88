#pragma once
// A scripted kube::Client for unit tests of the runtime (after kube-rs controller-rs fixtures): list pages and
// watch streams are played from scripts in order, and get/create/update/patch/remove act on an in-memory object
// map with resourceVersions, optimistic concurrency and injectable failures. Thread-safe.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kube/client.h"

namespace poolguard::runtime::testing {

using kube::json;

// One watch: either the watch() call fails, or next() returns `steps` in order. After the last step next()
// blocks until cancel() (then kCancelled), unless `endAfterSteps` makes it return a clean end.
struct WatchScript {
  std::optional<Error> openError;
  std::vector<Result<std::optional<kube::WatchEvent>>> steps;
  bool endAfterSteps = false;
};

inline kube::WatchEvent watchEvent(kube::WatchEventType type, json obj) {
  return kube::WatchEvent{type, std::move(obj)};
}

inline json object(const std::string& ns, const std::string& name, const std::string& rv, json extra = json::object()) {
  json o = {{"metadata", {{"name", name}, {"resourceVersion", rv}}}};
  if (!ns.empty()) o["metadata"]["namespace"] = ns;
  o.merge_patch(extra);
  return o;
}

inline json listPage(std::vector<json> items, const std::string& rv, const std::string& continueToken = "") {
  json l = {{"kind", "List"}, {"metadata", {{"resourceVersion", rv}}}, {"items", json::array()}};
  for (auto& i : items) l["items"].push_back(std::move(i));
  if (!continueToken.empty()) l["metadata"]["continue"] = continueToken;
  return l;
}

class FakeWatchStream final : public kube::WatchStream {
 public:
  explicit FakeWatchStream(WatchScript script) : script_(std::move(script)) {}
  Result<std::optional<kube::WatchEvent>> next() override {
    std::unique_lock lock(mu_);
    if (cancelled_) return Error(ErrorCode::kCancelled, "watch cancelled");
    if (pos_ < script_.steps.size()) return script_.steps[pos_++];
    if (script_.endAfterSteps) return std::optional<kube::WatchEvent>{};
    cv_.wait(lock, [&] { return cancelled_; });
    return Error(ErrorCode::kCancelled, "watch cancelled");
  }
  void cancel() override {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  WatchScript script_;
  size_t pos_ = 0;
  bool cancelled_ = false;
};

class FakeClient final : public kube::Client {
 public:
  // --- scripts
  void pushList(Result<json> page) {
    std::lock_guard lock(mu_);
    lists_.push_back(std::move(page));
  }
  void pushWatch(WatchScript script) {
    std::lock_guard lock(mu_);
    watches_.push_back(std::move(script));
  }
  // The next call of `verb` ("get", "create", "update", "patch", "remove") fails with `e`.
  void failNext(const std::string& verb, Error e) {
    std::lock_guard lock(mu_);
    failures_[verb].push_back(std::move(e));
  }
  // Every call of `verb` fails with `e` until clearFailures().
  void failAlways(const std::string& verb, Error e) {
    std::lock_guard lock(mu_);
    persistent_.insert_or_assign(verb, std::move(e));
  }
  void clearFailures() {
    std::lock_guard lock(mu_);
    failures_.clear();
    persistent_.clear();
  }

  // --- object map
  void put(const kube::Resource& r, json obj) {
    std::lock_guard lock(mu_);
    obj["metadata"]["resourceVersion"] = std::to_string(++rv_);
    objects_[keyOf(r, obj["metadata"].value("namespace", ""), obj["metadata"].value("name", ""))] = obj;
  }
  std::optional<json> stored(const kube::Resource& r, const std::string& ns, const std::string& name) const {
    std::lock_guard lock(mu_);
    auto it = objects_.find(keyOf(r, ns, name));
    if (it == objects_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<json> storedOf(const kube::Resource& r) const {
    std::lock_guard lock(mu_);
    std::vector<json> out;
    std::string prefix = r.key() + "/";
    for (const auto& [k, v] : objects_) {
      if (k.rfind(prefix, 0) == 0) out.push_back(v);
    }
    return out;
  }

  // --- observations
  std::vector<kube::ListOptions> listCalls() const {
    std::lock_guard lock(mu_);
    return listCalls_;
  }
  std::vector<kube::WatchOptions> watchCalls() const {
    std::lock_guard lock(mu_);
    return watchCalls_;
  }
  std::vector<std::string> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  int count(const std::string& verb) const {
    std::lock_guard lock(mu_);
    int n = 0;
    for (const auto& c : calls_) n += c.rfind(verb + " ", 0) == 0;
    return n;
  }

  // --- kube::Client
  Result<json> get(const kube::Resource& r, const std::string& ns, const std::string& name,
                   const std::string& = "") override {
    std::lock_guard lock(mu_);
    calls_.push_back("get " + keyOf(r, ns, name));
    if (auto e = failure("get")) return *e;
    auto it = objects_.find(keyOf(r, ns, name));
    if (it == objects_.end()) return notFound(r, name);
    return it->second;
  }
  Result<json> list(const kube::Resource& r, const std::string& ns, const kube::ListOptions& opts = {}) override {
    std::lock_guard lock(mu_);
    calls_.push_back("list " + r.key() + "/" + ns);
    listCalls_.push_back(opts);
    if (lists_.empty()) return Error(ErrorCode::kUnavailable, "fake: no list scripted");
    auto page = std::move(lists_.front());
    lists_.pop_front();
    return page;
  }
  Result<json> create(const kube::Resource& r, const std::string& ns, const json& obj,
                      const kube::WriteOptions& = {}) override {
    std::lock_guard lock(mu_);
    std::string name = obj["metadata"].value("name", "");
    calls_.push_back("create " + keyOf(r, ns, name));
    if (auto e = failure("create")) return *e;
    auto key = keyOf(r, ns, name);
    if (objects_.count(key)) return Error(ErrorCode::kAlreadyExists, name + " already exists").withHttpStatus(409);
    json stored = obj;
    stored["metadata"]["namespace"] = ns;
    stored["metadata"]["resourceVersion"] = std::to_string(++rv_);
    objects_[key] = stored;
    return stored;
  }
  Result<json> update(const kube::Resource& r, const std::string& ns, const json& obj,
                      const kube::WriteOptions& = {}) override {
    std::lock_guard lock(mu_);
    std::string name = obj["metadata"].value("name", "");
    calls_.push_back("update " + keyOf(r, ns, name));
    if (auto e = failure("update")) return *e;
    auto it = objects_.find(keyOf(r, ns, name));
    if (it == objects_.end()) return notFound(r, name);
    std::string want = obj["metadata"].value("resourceVersion", "");
    if (!want.empty() && want != it->second["metadata"].value("resourceVersion", "")) {
      return Error(ErrorCode::kConflict, "the object has been modified").withHttpStatus(409);
    }
    json stored = obj;
    stored["metadata"]["resourceVersion"] = std::to_string(++rv_);
    it->second = stored;
    return stored;
  }
  Result<json> patch(const kube::Resource& r, const std::string& ns, const std::string& name, kube::PatchType type,
                     const json& patch, const kube::WriteOptions& = {}) override {
    std::lock_guard lock(mu_);
    calls_.push_back("patch " + keyOf(r, ns, name));
    patches_.push_back(patch);
    if (auto e = failure("patch")) return *e;
    auto it = objects_.find(keyOf(r, ns, name));
    if (it == objects_.end()) return notFound(r, name);
    if (type == kube::PatchType::kJson) {
      try {
        it->second = it->second.patch(patch);  // RFC 6902, "test" included
      } catch (const std::exception& e) {
        return Error(ErrorCode::kConflict, std::string("json patch: ") + e.what()).withHttpStatus(409);
      }
    } else {
      it->second.merge_patch(patch);
    }
    it->second["metadata"]["resourceVersion"] = std::to_string(++rv_);
    return it->second;
  }
  Result<json> apply(const kube::Resource& r, const std::string& ns, const std::string& name, const json& obj,
                     const kube::WriteOptions&) override {
    std::lock_guard lock(mu_);
    calls_.push_back("apply " + keyOf(r, ns, name));
    if (auto e = failure("apply")) return *e;
    json& stored = objects_[keyOf(r, ns, name)];
    if (stored.is_null()) stored = json::object();
    stored.merge_patch(obj);
    stored["metadata"]["resourceVersion"] = std::to_string(++rv_);
    return stored;
  }
  Status remove(const kube::Resource& r, const std::string& ns, const std::string& name,
                const json& = json::object()) override {
    std::lock_guard lock(mu_);
    calls_.push_back("remove " + keyOf(r, ns, name));
    if (auto e = failure("remove")) return *e;
    if (objects_.erase(keyOf(r, ns, name)) == 0) return notFound(r, name);
    return okStatus();
  }
  Result<std::unique_ptr<kube::WatchStream>> watch(const kube::Resource& r, const std::string& ns,
                                                   const kube::WatchOptions& opts) override {
    std::lock_guard lock(mu_);
    calls_.push_back("watch " + r.key() + "/" + ns);
    watchCalls_.push_back(opts);
    WatchScript script;
    if (!watches_.empty()) {
      script = std::move(watches_.front());
      watches_.pop_front();
    }
    if (script.openError) return *script.openError;
    return std::unique_ptr<kube::WatchStream>(std::make_unique<FakeWatchStream>(std::move(script)));
  }

  std::vector<json> patches() const {
    std::lock_guard lock(mu_);
    return patches_;
  }

 private:
  static std::string keyOf(const kube::Resource& r, const std::string& ns, const std::string& name) {
    return r.key() + "/" + ns + "/" + name;
  }
  static Error notFound(const kube::Resource& r, const std::string& name) {
    return Error(ErrorCode::kNotFound, r.resource + " \"" + name + "\" not found").withHttpStatus(404);
  }
  std::optional<Error> failure(const std::string& verb) {
    if (auto it = failures_.find(verb); it != failures_.end() && !it->second.empty()) {
      Error e = it->second.front();
      it->second.pop_front();
      return e;
    }
    if (auto it = persistent_.find(verb); it != persistent_.end()) return it->second;
    return std::nullopt;
  }

  mutable std::mutex mu_;
  int64_t rv_ = 100;
  std::deque<Result<json>> lists_;
  std::deque<WatchScript> watches_;
  std::map<std::string, std::deque<Error>> failures_;
  std::map<std::string, Error> persistent_;
  std::map<std::string, json> objects_;
  std::vector<kube::ListOptions> listCalls_;
  std::vector<kube::WatchOptions> watchCalls_;
  std::vector<std::string> calls_;
  std::vector<json> patches_;
};

}  // namespace poolguard::runtime::testing
