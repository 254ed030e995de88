#pragma once
// Pool metrics from Prometheus' HTTP query API (/api/v1/query). The policy's PromQL templates (or the
// profile's defaults) are rendered per workload with $namespace and $workload, queried with a short timeout,
// and the answer is read as one number or "no data". Requests go through kube::HttpEndpoint (kube/http.h), the
// project's one HTTP request path, with a deadline and a size limit.
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "policy/types.h"
#include "usage/analysis.h"

namespace poolguard::usage {

// Error reasons (Error::reason()) of the Prometheus source; also the `reason` label of
// poolguard_usage_check_errors_total.
namespace prometheus_reasons {
inline constexpr const char* kUnreachable = "PrometheusUnreachable";
inline constexpr const char* kQueryFailed = "PrometheusQueryFailed";  // status "error" or a non-2xx answer
inline constexpr const char* kMalformed = "PrometheusMalformed";
}  // namespace prometheus_reasons

struct PrometheusQueries {
  std::string connections;  // "" = not queried
  std::string pending;      // "" = not queried
  bool empty() const { return connections.empty() && pending.empty(); }
};

// The profile's templates: SpringHikari (hikaricp_*) and PgBouncer (pgbouncer exporter pools); none otherwise.
PrometheusQueries defaultQueries(policy::Profile profile);
// The policy's templates where given, else the profile's.
PrometheusQueries effectiveQueries(const policy::PrometheusSource& source, policy::Profile profile);
// Whether the Prometheus source has a URL and at least one query to run.
bool prometheusConfigured(const policy::Usage& usage, policy::Profile profile);

// How a Prometheus URL is shown (poolguard_usage_up{target}, messages): scheme, host, port and path, never its
// userinfo, query or fragment (where a credential could hide).
std::string prometheusTarget(const std::string& url);

// The most of an answer poolguard reads; a larger one is an error.
inline constexpr size_t kMaxPrometheusAnswerBytes = size_t{4} << 20;

// Escapes a value for a double-quoted PromQL string literal (backslash, quote, newline, carriage return, tab).
std::string escapePromqlString(std::string_view value);
// Replaces $namespace and $workload in one pass (a substituted value is never expanded again). Values are
// escaped for a double-quoted string, which is where templates put them.
std::string renderQuery(std::string_view tmpl, std::string_view ns, std::string_view workload);

// Reads a /api/v1/query answer. A vector is summed over its series; a scalar is taken as is. An empty vector
// and NaN are "no data" (nullopt), never zero. Infinite values, other result types and bodies that are not the
// API's JSON are errors. `what` names the query in error messages. Messages go into a policy's status, which the
// policy's author reads: an answer that is not the query API is never quoted, and Prometheus' own error text is
// cut short to printable characters.
Result<std::optional<double>> parseQueryResponse(int httpStatus, const std::string& body, const std::string& what);

class PrometheusClient {
 public:
  explicit PrometheusClient(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  ~PrometheusClient();
  PrometheusClient(const PrometheusClient&) = delete;
  PrometheusClient& operator=(const PrometheusClient&) = delete;

  // Blocks (kube::HttpEndpoint::send); never call it from a cpprestsdk/pplx pool thread.
  // Runs an instant query against baseUrl (which may carry a path prefix: http://host:9090/prometheus).
  Result<std::optional<double>> query(const std::string& baseUrl, const std::string& promql);

  // Drops the HTTP clients (and their kept-alive connections) of every base URL not in `keep`.
  void closeExcept(const std::set<std::string>& keep);
  size_t openClients() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Queries connections and pending for each workload (keys "namespace/name"). The first failing query fails
// the read: a half-read set of values would make the analysis guess.
Result<PrometheusValues> readPrometheus(PrometheusClient& client, const policy::PrometheusSource& source,
                                        policy::Profile profile, const std::vector<GovernedWorkload>& workloads);

}  // namespace poolguard::usage
