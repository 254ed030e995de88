#pragma once
// What every cached Kubernetes object is, whatever its kind: its metadata, typed. Each watched kind has a record
// that extends Object with only the fields decisions read (model/records.h); the informer caches hold those
// records, decoded as each list page or watch event arrives, never the JSON they came from.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace poolguard::kube {

struct ObjectMeta {
  std::string name;
  std::string namespace_;  // empty when the object does not say (or is cluster scoped)
  std::string uid;
  std::string resourceVersion;
  std::string creationTimestamp;
  std::string deletionTimestamp;  // set once deletion was requested
  int64_t generation = 0;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::vector<std::string> finalizers;
  bool operator==(const ObjectMeta&) const = default;
};

// The base of every record. Not polymorphic: a record is created with std::make_shared of its own type, whose
// control block destroys it as that type, and the cache that holds one kind hands it back cast to that type
// (see runtime::recordAs).
struct Object {
  ObjectMeta meta;
};

using ObjectPtr = std::shared_ptr<const Object>;

}  // namespace poolguard::kube
