#pragma once
// Where a Secret's credentials may go, and which Prometheus endpoints a ConnectionPoolPolicy may query.
//
// A policy author names a Secret and a server; poolguard reads the Secret with its own rights. So the Secret
// itself must say where its contents may be used: the annotation poolguard.dev/allowed-servers lists the servers
// (comma-separated `host:port`, `host` for port 5432, `[v6addr]:port`). Only someone who may edit the Secret can
// set it. An entry `*.suffix[:port]` matches every host under that suffix, but only with sslMode verify-full
// (the server must prove its name); with disable, require or verify-ca the server must be named itself. Every
// Secret a policy's usage.postgres names (credentials and CA) needs the annotation. See docs/security.md.
//
// Prometheus: a ConnectionPoolPolicy's usage.prometheus.url must lie under one of the URL prefixes the cluster
// admin allows (--prometheus-allowed-url-prefixes): the same scheme, host and port, and a path at or below the
// prefix's path. Userinfo, queries, fragments, dot segments, percent-encoding and ';' in the path are refused.
// The cluster-scoped kinds, a cluster admin's own, are not held to it (usage/checker.cpp).
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "kube/client.h"
#include "policy/types.h"

namespace poolguard::usage {

inline constexpr const char* kAllowedServersAnnotation = "poolguard.dev/allowed-servers";

// Error reasons (Error::reason()), also the `reason` label of poolguard_usage_check_errors_total.
namespace grant_reasons {
inline constexpr const char* kCredentialsNotGranted = "CredentialsNotGranted";
inline constexpr const char* kPrometheusUrlNotAllowed = "PrometheusURLNotAllowed";
}  // namespace grant_reasons

struct ServerGrant {
  std::string host;  // lower case; for a pattern the suffix with its leading dot (".db.svc")
  int port = 5432;
  bool pattern = false;
};

// Parses the annotation's value; an error names the entry and what is wrong with it.
Result<std::vector<ServerGrant>> parseAllowedServers(std::string_view value);

// Ok when the Secret (as read from the API) allows its contents to be used for `source`'s server; else a
// kForbidden Error (reason CredentialsNotGranted) whose message names the annotation and what to add.
Status checkSecretGrant(const kube::json& secret, const std::string& ns, const std::string& secretName,
                        const policy::PostgresSource& source);

// Ok when `url` lies under one of `allowedPrefixes`; else a kForbidden Error (reason PrometheusURLNotAllowed)
// that names the flag. Prefixes are checked when the operator starts (validatePrometheusPrefix).
Status checkPrometheusUrl(const std::string& url, const std::vector<std::string>& allowedPrefixes);
// Ok when `prefix` is a usable allow-list entry (http or https, a host, no userinfo, query or fragment).
Status validatePrometheusPrefix(const std::string& prefix);

}  // namespace poolguard::usage
