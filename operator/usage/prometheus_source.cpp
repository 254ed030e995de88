#include "usage/prometheus_source.h"

#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>

#include <cpprest/containerstream.h>
#include <cpprest/http_client.h>
#include <cpprest/uri_builder.h>
#include <nlohmann/json.hpp>

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

// The answer's body, at most kMaxPrometheusAnswerBytes of it.
Result<std::string> readCapped(web::http::http_response& resp, const std::string& what) {
  auto tooLarge = [&] {
    return promError(ErrorCode::kInvalidArgument, prometheus_reasons::kMalformed,
                     what + ": the answer is larger than " + std::to_string(kMaxPrometheusAnswerBytes >> 20) + " MiB");
  };
  if (resp.headers().content_length() > kMaxPrometheusAnswerBytes) return tooLarge();
  concurrency::streams::container_buffer<std::string> buffer;
  auto stream = resp.body();
  size_t total = 0;
  while (true) {
    size_t n = stream.read(buffer, 64 * 1024).get();
    if (n == 0) break;
    total += n;
    if (total > kMaxPrometheusAnswerBytes) return tooLarge();
  }
  return std::move(buffer.collection());
}

struct PrometheusClient::Impl {
  std::chrono::milliseconds timeout;
  mutable std::mutex mu;
  std::map<std::string, std::shared_ptr<web::http::client::http_client>> clients;

  Result<std::shared_ptr<web::http::client::http_client>> clientFor(const std::string& baseUrl) {
    std::lock_guard lock(mu);
    auto it = clients.find(baseUrl);
    if (it != clients.end()) return it->second;
    try {
      web::http::client::http_client_config config;
      config.set_timeout(timeout);
      auto client =
          std::make_shared<web::http::client::http_client>(utility::conversions::to_string_t(baseUrl), config);
      clients.emplace(baseUrl, client);
      return client;
    } catch (const std::exception& e) {
      return promError(ErrorCode::kInvalidArgument, prometheus_reasons::kUnreachable,
                       "prometheus " + baseUrl + ": invalid URL: " + e.what());
    }
  }
};

PrometheusClient::PrometheusClient(std::chrono::milliseconds timeout) : impl_(std::make_unique<Impl>()) {
  impl_->timeout = timeout;
}

PrometheusClient::~PrometheusClient() = default;

void PrometheusClient::closeExcept(const std::set<std::string>& keep) {
  std::lock_guard lock(impl_->mu);
  std::erase_if(impl_->clients, [&](const auto& entry) { return !keep.count(entry.first); });
}

size_t PrometheusClient::openClients() const {
  std::lock_guard lock(impl_->mu);
  return impl_->clients.size();
}

Result<std::optional<double>> PrometheusClient::query(const std::string& baseUrl, const std::string& promql) {
  const std::string what = "prometheus " + prometheusTarget(baseUrl) + " query " + promql;
  auto client = impl_->clientFor(baseUrl);
  if (!client) return client.error();
  try {
    web::uri_builder path(U("api/v1/query"));
    path.append_query(U("query"), utility::conversions::to_string_t(promql));
    // The server-side limit keeps a slow evaluation from outliving the client's own timeout.
    path.append_query(U("timeout"), utility::conversions::to_string_t(
                                        std::to_string(std::max<int64_t>(1, impl_->timeout.count() / 1000)) + "s"));
    web::http::http_request req(web::http::methods::GET);
    req.set_request_uri(path.to_uri());
    req.headers().add(U("Accept"), U("application/json"));
    web::http::http_response resp = (*client)->request(req).get();
    auto body = readCapped(resp, what);
    if (!body) return body.error();
    return parseQueryResponse(resp.status_code(), *body, what);
  } catch (const web::http::http_exception& e) {
    return promError(ErrorCode::kUnavailable, prometheus_reasons::kUnreachable, what + ": " + e.what());
  } catch (const std::exception& e) {
    return promError(ErrorCode::kUnavailable, prometheus_reasons::kUnreachable, what + ": " + e.what());
  }
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
