#pragma once
// Request paths and query strings for the Kubernetes REST API. Pure functions, so every shape of URL the client
// sends is checked by unit tests without a server.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kube/client.h"

namespace poolguard::kube {

// Percent-encodes everything outside RFC 3986 "unreserved" (A-Z a-z 0-9 - . _ ~).
std::string percentEncode(std::string_view s);

// /api/v1/namespaces/NS/configmaps/NAME/SUB or /apis/GROUP/VERSION/...; cluster-scoped resources ignore ns, and a
// namespaced resource with an empty ns addresses all namespaces (for list and watch).
std::string resourcePath(const Resource& r, const std::string& ns, const std::string& name = "",
                         const std::string& subresource = "");

// Builds "?k=v&k2=v2" in insertion order; empty values are skipped, so optional parameters can be added
// unconditionally.
class Query {
 public:
  Query& add(std::string key, std::string value);
  Query& add(std::string key, bool value);
  std::string str() const;

 private:
  std::vector<std::pair<std::string, std::string>> params_;
};

Query listQuery(const ListOptions& opts);
Query watchQuery(const WatchOptions& opts);
Query writeQuery(const WriteOptions& opts);

}  // namespace poolguard::kube
