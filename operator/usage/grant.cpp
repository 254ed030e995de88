#include "usage/grant.h"

#include <algorithm>
#include <cctype>
#include <optional>

namespace poolguard::usage {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// A host as compared: lower case, without a trailing dot (the root of a fully qualified name).
std::string canonicalHost(std::string_view host) {
  std::string out = lower(host);
  if (out.size() > 1 && out.back() == '.') out.pop_back();
  return out;
}

std::string hostPort(const std::string& host, int port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::optional<int> parsePort(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  int port = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + (c - '0');
  }
  if (port < 1 || port > 65535) return std::nullopt;
  return port;
}

bool validName(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](unsigned char c) { return std::isalnum(c) || c == '.' || c == '-' || c == '_'; });
}

bool validV6(std::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c) || c == ':' || c == '.'; });
}

Error notGranted(std::string message) {
  return Error(ErrorCode::kForbidden, std::move(message)).withReason(grant_reasons::kCredentialsNotGranted);
}

Error urlNotAllowed(std::string message) {
  return Error(ErrorCode::kForbidden, std::move(message)).withReason(grant_reasons::kPrometheusUrlNotAllowed);
}

struct HttpUrl {
  std::string scheme;
  std::string host;
  int port = 0;
  std::string path;  // "/" when empty
  bool userinfo = false;
  bool queryOrFragment = false;
};

std::optional<HttpUrl> parseHttpUrl(std::string_view url) {
  HttpUrl out;
  auto schemeEnd = url.find("://");
  if (schemeEnd == std::string_view::npos) return std::nullopt;
  out.scheme = lower(url.substr(0, schemeEnd));
  if (out.scheme != "http" && out.scheme != "https") return std::nullopt;
  std::string_view rest = url.substr(schemeEnd + 3);
  size_t authorityEnd = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authorityEnd);
  std::string_view tail = authorityEnd == std::string_view::npos ? std::string_view() : rest.substr(authorityEnd);
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    out.userinfo = true;
    authority = authority.substr(at + 1);
  }
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos || !validV6(authority.substr(1, close - 1))) return std::nullopt;
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port = after.substr(1);
    }
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (!validName(host)) return std::nullopt;
  } else if (!validName(host)) {
    return std::nullopt;
  }
  out.host = canonicalHost(host);
  if (port.empty()) {
    out.port = out.scheme == "https" ? 443 : 80;
  } else {
    auto p = parsePort(port);
    if (!p) return std::nullopt;
    out.port = *p;
  }
  size_t pathEnd = tail.find_first_of("?#");
  out.path = std::string(tail.substr(0, pathEnd));
  out.queryOrFragment = pathEnd != std::string_view::npos;
  if (out.path.empty()) out.path = "/";
  return out;
}

// "." and ".." segments, also percent-encoded, and backslashes: a server may resolve them to a path outside the
// prefix.
bool hasDotSegmentsOrBackslash(const std::string& path) {
  std::string p = lower(path);
  // Percent-encoding and ';' parameters are refused whole: a proxy in front may decode or resolve them to a path
  // outside the prefix.
  if (p.find_first_of("\\%;") != std::string::npos) return true;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    std::string segment = p.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (segment == "." || segment == "..") return true;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return false;
}

bool under(const HttpUrl& url, const HttpUrl& prefix) {
  if (url.scheme != prefix.scheme || url.host != prefix.host || url.port != prefix.port) return false;
  std::string base = prefix.path;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  if (base == "/") return true;
  return url.path == base || url.path.rfind(base + "/", 0) == 0;
}

// The URL as it may appear in a message: scheme, host, port and path only.
std::string shown(const HttpUrl& u) { return u.scheme + "://" + hostPort(u.host, u.port) + u.path; }

}  // namespace

Result<std::vector<ServerGrant>> parseAllowedServers(std::string_view value) {
  std::vector<ServerGrant> out;
  size_t i = 0;
  while (i < value.size()) {
    size_t end = value.find_first_of(", \t\n", i);
    std::string_view entry = value.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i);
    i = end == std::string_view::npos ? value.size() : end + 1;
    if (entry.empty()) continue;
    const std::string quoted = "entry \"" + std::string(entry) + "\": ";
    ServerGrant g;
    std::string_view host = entry, port;
    if (entry.front() == '[') {
      auto close = entry.find(']');
      if (close == std::string_view::npos) return Error(ErrorCode::kInvalidArgument, quoted + "no closing ]");
      host = entry.substr(1, close - 1);
      std::string_view after = entry.substr(close + 1);
      if (!after.empty() && after.front() != ':')
        return Error(ErrorCode::kInvalidArgument, quoted + "expected :port after the bracketed address");
      if (!after.empty()) port = after.substr(1);
      if (!validV6(host)) return Error(ErrorCode::kInvalidArgument, quoted + "not an IPv6 address");
    } else {
      auto colon = entry.find(':');
      if (colon != std::string_view::npos && entry.find(':', colon + 1) != std::string_view::npos) {
        return Error(ErrorCode::kInvalidArgument, quoted + "write an IPv6 address in brackets: [address]:port");
      }
      if (colon != std::string_view::npos) {
        host = entry.substr(0, colon);
        port = entry.substr(colon + 1);
      }
      if (host.size() > 2 && host.substr(0, 2) == "*.") {
        g.pattern = true;
        host = host.substr(1);  // keeps the dot: ".db.svc"
        if (!validName(host.substr(1)) || host.find('*') != std::string_view::npos) {
          return Error(ErrorCode::kInvalidArgument, quoted + "a wildcard is only allowed as *.suffix");
        }
      } else if (!validName(host)) {
        return Error(ErrorCode::kInvalidArgument,
                     quoted + "a host is a DNS name or an IP address (a wildcard only as *.suffix)");
      }
    }
    if (!port.empty() || (entry.back() == ':')) {
      auto p = parsePort(port);
      if (!p) return Error(ErrorCode::kInvalidArgument, quoted + "the port must be a number from 1 to 65535");
      g.port = *p;
    }
    g.host = canonicalHost(host);
    out.push_back(std::move(g));
  }
  return out;
}

Status checkSecretGrant(const kube::json& secret, const std::string& ns, const std::string& secretName,
                        const policy::PostgresSource& source) {
  // One server only: libpq reads "a,b" as a list of hosts to try in turn (and a NUL ends the C string), so a
  // name that merely ends like a granted one must not reach it.
  if (!validName(source.host) && !validV6(source.host)) {
    return notGranted("usage.postgres.host \"" + source.host.substr(0, 64) +
                      "\" is not one DNS name or IP address; poolguard connects to a single server only");
  }
  const std::string host = canonicalHost(source.host);
  const std::string target = hostPort(host, source.port);
  const std::string where =
      "secret " + ns + "/" + secretName + " does not allow its contents to be used for " + target + ": ";
  const kube::json* annotation = nullptr;
  if (auto meta = secret.find("metadata"); meta != secret.end() && meta->is_object()) {
    if (auto ann = meta->find("annotations"); ann != meta->end() && ann->is_object()) {
      if (auto a = ann->find(kAllowedServersAnnotation); a != ann->end()) annotation = &*a;
    }
  }
  if (!annotation || !annotation->is_string()) {
    return notGranted(where + "it has no annotation " + kAllowedServersAnnotation +
                      " (poolguard sends a Secret's contents only to the servers it names); someone who may edit "
                      "the Secret can allow this server: kubectl -n " +
                      ns + " annotate secret " + secretName + " " + kAllowedServersAnnotation + "=" + target);
  }
  auto grants = parseAllowedServers(annotation->get<std::string>());
  if (!grants) {
    return notGranted(where + "its annotation " + kAllowedServersAnnotation +
                      " is malformed: " + grants.error().message());
  }
  bool wildcardOnly = false;
  for (const auto& g : *grants) {
    if (g.port != source.port) continue;
    if (!g.pattern && g.host == host) return okStatus();
    if (g.pattern && host.size() > g.host.size() &&
        host.compare(host.size() - g.host.size(), g.host.size(), g.host) == 0) {
      if (source.sslMode == policy::SslMode::kVerifyFull) return okStatus();
      wildcardOnly = true;
    }
  }
  if (wildcardOnly) {
    return notGranted(where + "its annotation " + kAllowedServersAnnotation +
                      " matches it only by a wildcard, which holds only with sslMode verify-full (the server proves "
                      "its name); with sslMode " +
                      policy::toString(source.sslMode) + " the annotation must name " + target + " itself");
  }
  return notGranted(where + "its annotation " + kAllowedServersAnnotation +
                    " does not name this server; someone who may edit the Secret can add " + target + " to it");
}

Status validatePrometheusPrefix(const std::string& prefix) {
  auto p = parseHttpUrl(prefix);
  if (!p) return Error(ErrorCode::kInvalidArgument, "\"" + prefix + "\" is not an http or https URL with a host");
  if (p->userinfo || p->queryOrFragment) {
    return Error(ErrorCode::kInvalidArgument,
                 "\"" + shown(*p) + "...\": a prefix takes no user information, query or fragment");
  }
  if (hasDotSegmentsOrBackslash(p->path)) {
    return Error(ErrorCode::kInvalidArgument, "\"" + shown(*p) + "\": a prefix takes no . or .. path segments");
  }
  return okStatus();
}

Status checkPrometheusUrl(const std::string& url, const std::vector<std::string>& allowedPrefixes) {
  auto u = parseHttpUrl(url);
  if (!u) return urlNotAllowed("prometheus URL: not an http or https URL with a host");
  const std::string what = "prometheus " + shown(*u) + ": ";
  if (u->userinfo) return urlNotAllowed(what + "not allowed: a URL may not carry user information");
  if (u->queryOrFragment) return urlNotAllowed(what + "not allowed: a base URL takes no query or fragment");
  if (hasDotSegmentsOrBackslash(u->path)) {
    return urlNotAllowed(what + "not allowed: the path has . or .. segments");
  }
  std::string allowed;
  for (const auto& prefix : allowedPrefixes) {
    auto p = parseHttpUrl(prefix);
    if (!p) continue;
    if (under(*u, *p)) return okStatus();
    allowed += (allowed.empty() ? "" : ", ") + shown(*p);
  }
  return urlNotAllowed(what +
                       "not allowed: a ConnectionPoolPolicy may query only the Prometheus endpoints the cluster "
                       "admin allows (" +
                       (allowed.empty() ? std::string("none are allowed now") : "allowed: " + allowed) +
                       "); the admin can add it with the operator flag --prometheus-allowed-url-prefixes (Helm value "
                       "usage.prometheusAllowedUrlPrefixes)");
}

}  // namespace poolguard::usage
