#pragma once
// The kube module reports every API request here and knows nothing about how it is exported: the metrics module
// adapts this to prometheus-cpp, so kube does not depend on it.
#include <string_view>

namespace poolguard::kube {

class RequestObserver {
 public:
  virtual ~RequestObserver() = default;
  // verb: GET, LIST, WATCH, CREATE, UPDATE, PATCH, APPLY, DELETE. resource: Resource::key() ("deployments.apps").
  // code: the HTTP status, or 0 when no response arrived (transport failure, cancelled). seconds: from sending
  // the request to its headers (for WATCH: until the stream is established). Called once per attempt, from the
  // calling thread; implementations must be thread-safe and cheap.
  virtual void observe(std::string_view verb, std::string_view resource, int code, double seconds) = 0;
};

}  // namespace poolguard::kube
