#pragma once
// A kube::Client that serves Secrets from a map and records what was asked; everything else is refused, so a
// test fails if the usage code lists or watches.
#include <map>
#include <string>
#include <vector>

#include "kube/client.h"

namespace poolguard::usage::testing {

class FakeSecretsClient : public kube::Client {
 public:
  void addSecret(const std::string& ns, const std::string& name, const std::map<std::string, std::string>& data,
                 const std::map<std::string, std::string>& annotations = {}) {
    kube::json obj = {{"apiVersion", "v1"}, {"kind", "Secret"}, {"metadata", {{"namespace", ns}, {"name", name}}}};
    for (const auto& [k, v] : annotations) obj["metadata"]["annotations"][k] = v;
    obj["data"] = kube::json::object();
    for (const auto& [k, v] : data) obj["data"][k] = v;  // already base64
    secrets_[ns + "/" + name] = obj;
  }
  std::vector<std::string> calls;

  Result<kube::json> get(const kube::Resource& r, const std::string& ns, const std::string& name,
                         const std::string& = "") override {
    calls.push_back("get " + r.resource + " " + ns + "/" + name);
    if (r.resource != "secrets") return refuse("get " + r.resource);
    auto it = secrets_.find(ns + "/" + name);
    if (it == secrets_.end()) {
      return Error(ErrorCode::kNotFound, "secrets \"" + name + "\" not found").withHttpStatus(404);
    }
    return it->second;
  }
  Result<kube::json> list(const kube::Resource& r, const std::string&, const kube::ListOptions&) override {
    return refuse("list " + r.resource);
  }
  Result<kube::json> create(const kube::Resource& r, const std::string&, const kube::json&,
                            const kube::WriteOptions&) override {
    return refuse("create " + r.resource);
  }
  Result<kube::json> update(const kube::Resource& r, const std::string&, const kube::json&,
                            const kube::WriteOptions&) override {
    return refuse("update " + r.resource);
  }
  Result<kube::json> patch(const kube::Resource& r, const std::string&, const std::string&, kube::PatchType,
                           const kube::json&, const kube::WriteOptions&) override {
    return refuse("patch " + r.resource);
  }
  Result<kube::json> apply(const kube::Resource& r, const std::string&, const std::string&, const kube::json&,
                           const kube::WriteOptions&) override {
    return refuse("apply " + r.resource);
  }
  Status remove(const kube::Resource& r, const std::string&, const std::string&, const kube::json&) override {
    calls.push_back("remove " + r.resource);
    return Error(ErrorCode::kForbidden, "not allowed in this test");
  }
  Result<std::unique_ptr<kube::WatchStream>> watch(const kube::Resource& r, const std::string&,
                                                   const kube::WatchOptions&) override {
    calls.push_back("watch " + r.resource);
    return Error(ErrorCode::kForbidden, "not allowed in this test");
  }

 private:
  Error refuse(const std::string& what) {
    calls.push_back(what);
    return Error(ErrorCode::kForbidden, what + " is not allowed in this test");
  }
  std::map<std::string, kube::json> secrets_;
};

}  // namespace poolguard::usage::testing
