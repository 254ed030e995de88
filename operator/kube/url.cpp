#include "kube/url.h"

namespace poolguard::kube {

std::string percentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

std::string resourcePath(const Resource& r, const std::string& ns, const std::string& name,
                         const std::string& subresource) {
  std::string path = r.group.empty() ? "/api/" + r.version : "/apis/" + r.group + "/" + r.version;
  if (r.namespaced && !ns.empty()) path += "/namespaces/" + percentEncode(ns);
  path += "/" + r.resource;
  if (!name.empty()) {
    path += "/" + percentEncode(name);
    if (!subresource.empty()) path += "/" + percentEncode(subresource);
  }
  return path;
}

Query& Query::add(std::string key, std::string value) {
  if (!value.empty()) params_.emplace_back(std::move(key), std::move(value));
  return *this;
}

Query& Query::add(std::string key, bool value) {
  if (value) params_.emplace_back(std::move(key), "true");
  return *this;
}

std::string Query::str() const {
  std::string out;
  for (const auto& [k, v] : params_) {
    out += out.empty() ? "?" : "&";
    out += percentEncode(k) + "=" + percentEncode(v);
  }
  return out;
}

Query listQuery(const ListOptions& opts) {
  Query q;
  q.add("labelSelector", opts.labelSelector).add("fieldSelector", opts.fieldSelector);
  if (opts.limit > 0) q.add("limit", std::to_string(opts.limit));
  q.add("continue", opts.continueToken)
      .add("resourceVersion", opts.resourceVersion)
      .add("resourceVersionMatch", opts.resourceVersionMatch);
  return q;
}

Query watchQuery(const WatchOptions& opts) {
  Query q;
  q.add("watch", true)
      .add("labelSelector", opts.labelSelector)
      .add("fieldSelector", opts.fieldSelector)
      .add("resourceVersion", opts.resourceVersion)
      .add("allowWatchBookmarks", opts.allowBookmarks);
  if (opts.timeout.count() > 0) q.add("timeoutSeconds", std::to_string(opts.timeout.count()));
  return q;
}

Query writeQuery(const WriteOptions& opts) {
  Query q;
  q.add("fieldManager", opts.fieldManager).add("force", opts.force);
  if (opts.dryRun) q.add("dryRun", std::string("All"));
  return q;
}

}  // namespace poolguard::kube
