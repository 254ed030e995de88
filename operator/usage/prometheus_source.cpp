#include "usage/prometheus_source.h"

#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>

#include <nlohmann/json.hpp>

#include "kube/http.h"
#include "kube/url.h"

namespace poolguard::usage {

namespace {

constexpr const char* kHikariConnections = R"(sum(hikaricp_connections{namespace="$namespace",pod=~"$workload-.*"}))";
constexpr const char* kHikariPending =
    R"(sum(hikaricp_connections_pending{namespace="$namespace",pod=~"$workload-.*"}))";
constexpr const char* kPgBouncerConnections =
    R"(sum(pgbouncer_pools_server_active_connections{namespace="$namespace",pod=~"$workload-.*"}))";
constexpr const char* kPgBouncerPending =
    R"(sum(pgbouncer_pools_client_waiting_connections{namespace="$namespace",pod=~"$workload-.*"}))";

Error promError(ErrorCode code, const char* reason, std::string message) {
  return Error(code, std::move(message)).withReason(reason);
}

// At most `max` printable ASCII characters of an error text from the server, others as '?'.
std::string sanitized(const std::string& s, size_t max = 160) {
  std::string out;
  for (char c : s.substr(0, max)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  return s.size() > max ? out + "..." : out;
}

// A sample value is a JSON string: "12", "NaN", "+Inf".
Result<std::optional<double>> parseSampleValue(const nlohmann::json& pair, const std::string& what) {
  if (!pair.is_array() || pair.size() != 2 || !pair[1].is_string()) {
    return promError(ErrorCode::kInternal, prometheus_reasons::kMalformed,
                     what + ": sample is not a [timestamp, \"value\"] pair");
  }
  const std::string text = pair[1].get<std::string>();
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size()) {
    return promError(ErrorCode::kInternal, prometheus_reasons::kMalformed,
                     what + ": sample value \"" + sanitized(text, 40) + "\" is not a number");
  }
  if (std::isnan(v)) return std::optional<double>{};
  if (std::isinf(v)) {
    return promError(ErrorCode::kInvalidArgument, prometheus_reasons::kQueryFailed,
                     what + ": sample value is " + text + ", not a count");
  }
  return std::optional<double>{v};
}

}  // namespace

PrometheusQueries defaultQueries(policy::Profile profile) {
  switch (profile) {
    case policy::Profile::kSpringHikari:
      return {kHikariConnections, kHikariPending};
    case policy::Profile::kPgBouncer:
      return {kPgBouncerConnections, kPgBouncerPending};
    default:
      return {};
  }
}

PrometheusQueries effectiveQueries(const policy::PrometheusSource& source, policy::Profile profile) {
  PrometheusQueries q = defaultQueries(profile);
  if (!source.connectionsQuery.empty()) q.connections = source.connectionsQuery;
  if (!source.pendingQuery.empty()) q.pending = source.pendingQuery;
  return q;
}

bool prometheusConfigured(const policy::Usage& usage, policy::Profile profile) {
  return usage.prometheus && !usage.prometheus->url.empty() && !effectiveQueries(*usage.prometheus, profile).empty();
}

std::string escapePromqlString(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string renderQuery(std::string_view tmpl, std::string_view ns, std::string_view workload) {
  static constexpr std::string_view kNamespace = "$namespace";
  static constexpr std::string_view kWorkload = "$workload";
  std::string out;
  out.reserve(tmpl.size() + ns.size() + workload.size());
  for (size_t i = 0; i < tmpl.size();) {
    std::string_view rest = tmpl.substr(i);
    if (rest.substr(0, kNamespace.size()) == kNamespace) {
      out += escapePromqlString(ns);
      i += kNamespace.size();
    } else if (rest.substr(0, kWorkload.size()) == kWorkload) {
      out += escapePromqlString(workload);
      i += kWorkload.size();
    } else {
      out += tmpl[i++];
    }
  }
  return out;
}

// The URL as a metric label: scheme, host, port and path; never userinfo, a query or a fragment (where a token
// could hide).
std::string prometheusTarget(const std::string& url) {
  std::string out = url.substr(0, url.find_first_of("?#"));
  auto scheme = out.find("://");
  size_t hostStart = scheme == std::string::npos ? 0 : scheme + 3;
  auto at = out.find('@', hostStart);
  auto pathStart = out.find('/', hostStart);
  if (at != std::string::npos && (pathStart == std::string::npos || at < pathStart))
    out.erase(hostStart, at + 1 - hostStart);
  return out;
}

Result<std::optional<double>> parseQueryResponse(int httpStatus, const std::string& body, const std::string& what) {
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("status") || !doc["status"].is_string()) {
    if (httpStatus < 200 || httpStatus >= 300) {
      ErrorCode code = httpStatus >= 500 ? ErrorCode::kUnavailable : ErrorCode::kInvalidArgument;
      return promError(code, prometheus_reasons::kQueryFailed,
                       what + ": HTTP " + std::to_string(httpStatus) + " (" + std::to_string(body.size()) +
                           " bytes that are not the Prometheus query API)")
          .withHttpStatus(httpStatus);
    }
    return promError(
        ErrorCode::kInternal, prometheus_reasons::kMalformed,
        what + ": the answer is not Prometheus query API JSON (" + std::to_string(body.size()) + " bytes)");
  }
  if (doc["status"] != "success") {
    auto text = [&doc](const char* key, const char* fallback) {
      auto it = doc.find(key);
      return (it != doc.end() && it->is_string()) ? it->get<std::string>() : std::string(fallback);
    };
    std::string type = text("errorType", "error");
    std::string message = text("error", "no error message");
    ErrorCode code = (type == "timeout" || type == "unavailable") ? ErrorCode::kTimeout : ErrorCode::kInvalidArgument;
    return promError(code, prometheus_reasons::kQueryFailed,
                     what + ": " + sanitized(type, 40) + ": " + sanitized(message))
        .withHttpStatus(httpStatus);
  }
  if (httpStatus < 200 || httpStatus >= 300) {
    return promError(ErrorCode::kUnavailable, prometheus_reasons::kQueryFailed,
                     what + ": HTTP " + std::to_string(httpStatus))
        .withHttpStatus(httpStatus);
  }
  const auto data = doc.find("data");
  if (data == doc.end() || !data->is_object() || !data->contains("resultType") || !data->contains("result") ||
      !(*data)["resultType"].is_string()) {
    return promError(ErrorCode::kInternal, prometheus_reasons::kMalformed, what + ": data.resultType/result missing");
  }
  const std::string type = (*data)["resultType"].get<std::string>();
  const nlohmann::json& result = (*data)["result"];
  if (type == "scalar") return parseSampleValue(result, what);
  if (type != "vector") {
    return promError(ErrorCode::kInvalidArgument, prometheus_reasons::kQueryFailed,
                     what + ": returned a " + type + ", expected an instant vector or a scalar");
  }
  if (!result.is_array()) {
    return promError(ErrorCode::kInternal, prometheus_reasons::kMalformed, what + ": vector result is not a list");
  }
  // Templates normally sum() to one series; several are added, since they all count the same workload.
  std::optional<double> sum;
  for (const auto& series : result) {
    if (!series.is_object() || !series.contains("value")) {
      return promError(ErrorCode::kInternal, prometheus_reasons::kMalformed, what + ": series without a value");
    }
    auto v = parseSampleValue(series["value"], what);
    if (!v) return v.error();
    if (*v) sum = sum.value_or(0.0) + **v;
  }
  if (sum && !std::isfinite(*sum)) {
    return promError(ErrorCode::kInternal, prometheus_reasons::kMalformed, what + ": the series add up to infinity");
  }
  return sum;
}

// One HTTP endpoint (kube/http.h, the project's one request path) per base URL, kept while a policy uses it.
struct PrometheusClient::Impl {
  std::chrono::milliseconds timeout;
  mutable std::mutex mu;
  std::map<std::string, std::shared_ptr<kube::HttpEndpoint>> endpoints;

  Result<std::shared_ptr<kube::HttpEndpoint>> endpointFor(const std::string& baseUrl) {
    std::lock_guard lock(mu);
    auto it = endpoints.find(baseUrl);
    if (it != endpoints.end()) return it->second;
    auto made = kube::HttpEndpoint::make(baseUrl, kube::HttpTls{}, timeout);
    if (!made) {
      return promError(ErrorCode::kInvalidArgument, prometheus_reasons::kUnreachable,
                       "prometheus " + prometheusTarget(baseUrl) + ": invalid URL");
    }
    std::shared_ptr<kube::HttpEndpoint> endpoint = std::move(*made);
    endpoints.emplace(baseUrl, endpoint);
    return endpoint;
  }
};

PrometheusClient::PrometheusClient(std::chrono::milliseconds timeout) : impl_(std::make_unique<Impl>()) {
  impl_->timeout = timeout;
}

PrometheusClient::~PrometheusClient() = default;

void PrometheusClient::closeExcept(const std::set<std::string>& keep) {
  // A query in flight holds its endpoint: dropping it here closes its connections once that query ends.
  std::lock_guard lock(impl_->mu);
  std::erase_if(impl_->endpoints, [&](const auto& entry) { return !keep.count(entry.first); });
}

size_t PrometheusClient::openClients() const {
  std::lock_guard lock(impl_->mu);
  return impl_->endpoints.size();
}

Result<std::optional<double>> PrometheusClient::query(const std::string& baseUrl, const std::string& promql) {
  const std::string what = "prometheus " + prometheusTarget(baseUrl) + " query " + promql;
  auto endpoint = impl_->endpointFor(baseUrl);
  if (!endpoint) return endpoint.error();
  const int64_t seconds = std::max<int64_t>(1, impl_->timeout.count() / 1000);
  kube::HttpRequest req;
  // The server-side limit keeps a slow evaluation from outliving the client's own deadline.
  req.pathAndQuery = "api/v1/query?query=" + kube::percentEncode(promql) + "&timeout=" + std::to_string(seconds) + "s";
  req.headers = {{"Accept", "application/json"}};
  req.deadline = SystemClock::instance().steadyNow() + impl_->timeout + std::chrono::seconds(1);
  req.maxBodyBytes = kMaxPrometheusAnswerBytes;
  auto resp = (*endpoint)->send(req);
  if (!resp) {
    if (resp.error().reason() == kube::http_reasons::kTooLarge) {
      return promError(
          ErrorCode::kInvalidArgument, prometheus_reasons::kMalformed,
          what + ": the answer is larger than " + std::to_string(kMaxPrometheusAnswerBytes >> 20) + " MiB");
    }
    return promError(ErrorCode::kUnavailable, prometheus_reasons::kUnreachable, what + ": " + resp.error().message());
  }
  return parseQueryResponse(resp->status, resp->body, what);
}

Result<PrometheusValues> readPrometheus(PrometheusClient& client, const policy::PrometheusSource& source,
                                        policy::Profile profile, const std::vector<GovernedWorkload>& workloads) {
  const PrometheusQueries queries = effectiveQueries(source, profile);
  PrometheusValues values;
  for (const auto& w : workloads) {
    WorkloadMetrics m;
    if (!queries.connections.empty()) {
      auto v = client.query(source.url, renderQuery(queries.connections, w.namespace_, w.name));
      if (!v) return v.error();
      m.connections = *v;
    }
    if (!queries.pending.empty()) {
      auto v = client.query(source.url, renderQuery(queries.pending, w.namespace_, w.name));
      if (!v) return v.error();
      m.pending = *v;
    }
    values.emplace(w.namespace_ + "/" + w.name, m);
  }
  return values;
}

}  // namespace poolguard::usage
