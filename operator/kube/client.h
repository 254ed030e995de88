#pragma once
// What a Kubernetes client does. Nothing above this header knows about the transport (cpprestsdk lives only in
// rest_client.cpp). Objects are nlohmann::json values in the API's own JSON shape.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "kube/field_filter.h"

namespace poolguard::kube {

using json = nlohmann::json;

// Identifies a REST resource: core ("" group, "v1") or a named group, its plural resource name and kind.
struct Resource {
  std::string group;     // "" for the core group
  std::string version;   // "v1", "v1alpha1"
  std::string resource;  // plural, lower case: "deployments"
  std::string kind;      // "Deployment"
  bool namespaced = true;

  std::string apiVersion() const { return group.empty() ? version : group + "/" + version; }
  std::string key() const { return resource + (group.empty() ? "" : "." + group); }  // "deployments.apps"
};

namespace resources {
Resource deployments();
Resource statefulSets();
Resource daemonSets();
Resource jobs();                      // batch/v1
Resource cronJobs();                  // batch/v1
Resource rollouts();                  // argoproj.io/v1alpha1 (Argo Rollouts; its CRD may be absent)
Resource horizontalPodAutoscalers();  // autoscaling/v2
Resource configMaps();
Resource secrets();
Resource events();
Resource leases();
Resource namespaces();
Resource connectionPoolPolicies();
Resource clusterConnectionBudgets();       // cluster scoped
Resource clusterConnectionPoolPolicies();  // cluster scoped
Resource connectionAllotments();           // cluster scoped: a budget's admission parameters
Resource validatingAdmissionPolicies();    // admissionregistration.k8s.io/v1, cluster scoped
Resource validatingAdmissionPolicyBindings();
Resource customResourceDefinitions();  // apiextensions.k8s.io/v1, cluster scoped
}  // namespace resources

struct ListOptions {
  std::string labelSelector;
  std::string fieldSelector;
  int64_t limit = 0;  // 0: no pagination (a single page)
  std::string continueToken;
  std::string resourceVersion;       // "" = most recent (quorum read)
  std::string resourceVersionMatch;  // "" / "NotOlderThan" / "Exact"
  // Parse only these fields of the page (FieldFilter::listOf(item)); null: the whole page.
  std::shared_ptr<const FieldFilter> fields;
};

struct WriteOptions {
  std::string fieldManager;  // required for apply
  bool force = false;        // apply only
  bool dryRun = false;
  std::string subresource;  // "" or "status" / "scale"
  // The caller does not read the object the server returns: a successful write returns an empty object and the
  // body (a whole object, managedFields included) is not parsed.
  bool discardResponse = false;
};

enum class PatchType { kMerge, kJson, kStrategicMerge, kApply };

struct WatchOptions {
  std::string labelSelector;
  std::string fieldSelector;
  std::string resourceVersion;
  bool allowBookmarks = true;
  std::chrono::seconds timeout{300};  // server-side timeoutSeconds; the client idle timeout is set above it
  // Parse only these fields of each event (FieldFilter::watchEventOf(object)); null: whole events.
  std::shared_ptr<const FieldFilter> fields;
};

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark, kError };

struct WatchEvent {
  WatchEventType type;
  json object;  // for kError: the metav1.Status
};

// A running watch. next() blocks until an event arrives, the stream ends (returns std::nullopt with ok status),
// or it fails (returns an Error; kGone means the resourceVersion expired: relist). An ERROR event from the server
// is returned as the Error its metav1.Status maps to (code 410 -> kGone), never as a kError event, so a caller
// has one failure path; kError remains for fakes that want to hand a Status through unchanged.
class WatchStream {
 public:
  virtual ~WatchStream() = default;
  virtual Result<std::optional<WatchEvent>> next() = 0;
  // Closes the stream from any thread; a blocked next() returns kCancelled promptly.
  virtual void cancel() = 0;
};

class Client {
 public:
  virtual ~Client() = default;

  virtual Result<json> get(const Resource& r, const std::string& ns, const std::string& name,
                           const std::string& subresource = "") = 0;
  // One page; the returned List carries metadata.continue and metadata.resourceVersion.
  virtual Result<json> list(const Resource& r, const std::string& ns, const ListOptions& opts = {}) = 0;
  virtual Result<json> create(const Resource& r, const std::string& ns, const json& obj,
                              const WriteOptions& opts = {}) = 0;
  virtual Result<json> update(const Resource& r, const std::string& ns, const json& obj,
                              const WriteOptions& opts = {}) = 0;
  virtual Result<json> patch(const Resource& r, const std::string& ns, const std::string& name, PatchType type,
                             const json& patch, const WriteOptions& opts = {}) = 0;
  // Server-side apply (PatchType::kApply with fieldManager, force).
  virtual Result<json> apply(const Resource& r, const std::string& ns, const std::string& name, const json& obj,
                             const WriteOptions& opts) = 0;
  virtual Status remove(const Resource& r, const std::string& ns, const std::string& name,
                        const json& deleteOptions = json::object()) = 0;
  virtual Result<std::unique_ptr<WatchStream>> watch(const Resource& r, const std::string& ns,
                                                     const WatchOptions& opts) = 0;
};

// Lists every page (limit/continue) and returns all items plus the list's resourceVersion.
struct ListAllResult {
  std::vector<json> items;
  std::string resourceVersion;
};
Result<ListAllResult> listAll(Client& client, const Resource& r, const std::string& ns, ListOptions opts);

// A watch timeout drawn uniformly from [min, 2*min), as client-go's reflector does, so that many watches
// started together do not all expire and relist in the same second.
std::chrono::seconds jitteredWatchTimeout(std::chrono::seconds min = std::chrono::minutes(5));

}  // namespace poolguard::kube
