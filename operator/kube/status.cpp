#include "kube/status.h"

#include <charconv>
#include <string>

namespace poolguard::kube {
namespace {

ErrorCode codeFor(const std::string& reason, int http) {
  if (reason == "NotFound") return ErrorCode::kNotFound;
  if (reason == "AlreadyExists") return ErrorCode::kAlreadyExists;
  if (reason == "Conflict") return ErrorCode::kConflict;
  if (reason == "Forbidden") return ErrorCode::kForbidden;
  if (reason == "Unauthorized") return ErrorCode::kUnauthorized;
  if (reason == "Invalid") return ErrorCode::kInvalid;
  if (reason == "Gone" || reason == "Expired") return ErrorCode::kGone;
  if (reason == "TooManyRequests") return ErrorCode::kTooManyRequests;
  if (reason == "Timeout" || reason == "ServerTimeout") return ErrorCode::kTimeout;
  if (reason == "ServiceUnavailable" || reason == "InternalError") return ErrorCode::kUnavailable;
  if (reason == "BadRequest" || reason == "MethodNotAllowed" || reason == "NotAcceptable" ||
      reason == "UnsupportedMediaType" || reason == "RequestEntityTooLarge") {
    return ErrorCode::kInvalidArgument;
  }
  switch (http) {
    case 400:
    case 405:
    case 406:
    case 413:
    case 415:
      return ErrorCode::kInvalidArgument;
    case 401:
      return ErrorCode::kUnauthorized;
    case 403:
      return ErrorCode::kForbidden;
    case 404:
      return ErrorCode::kNotFound;
    case 409:
      return ErrorCode::kConflict;
    case 410:
      return ErrorCode::kGone;
    case 422:
      return ErrorCode::kInvalid;
    case 429:
      return ErrorCode::kTooManyRequests;
    case 504:
      return ErrorCode::kTimeout;
    default:
      break;
  }
  if (http >= 500) return ErrorCode::kUnavailable;
  return ErrorCode::kInternal;
}

std::optional<std::chrono::seconds> parseRetryAfter(std::string_view header) {
  int64_t secs = 0;
  auto [ptr, ec] = std::from_chars(header.data(), header.data() + header.size(), secs);
  // An HTTP date is allowed too; the API server never sends one, so only delta-seconds are read.
  if (ec != std::errc() || ptr != header.data() + header.size() || secs < 0) return std::nullopt;
  return std::chrono::seconds(secs);
}

}  // namespace

Error errorFromStatus(const nlohmann::json& status, int fallbackHttpStatus) {
  int http = fallbackHttpStatus;
  std::string reason, message;
  std::vector<ErrorCause> causes;
  std::optional<std::chrono::seconds> retryAfter;
  if (status.is_object()) {
    if (auto c = status.find("code"); c != status.end() && c->is_number_integer()) http = c->get<int>();
    if (auto r = status.find("reason"); r != status.end() && r->is_string()) reason = r->get<std::string>();
    if (auto m = status.find("message"); m != status.end() && m->is_string()) message = m->get<std::string>();
    if (auto d = status.find("details"); d != status.end() && d->is_object()) {
      if (auto cs = d->find("causes"); cs != d->end() && cs->is_array()) {
        for (const auto& c : *cs) {
          if (!c.is_object()) continue;
          auto text = [&c](const char* key) {
            auto it = c.find(key);
            return (it != c.end() && it->is_string()) ? it->get<std::string>() : std::string();
          };
          causes.push_back({text("field"), text("reason"), text("message")});
        }
      }
      if (auto ra = d->find("retryAfterSeconds"); ra != d->end() && ra->is_number_integer() && ra->get<int64_t>() > 0) {
        retryAfter = std::chrono::seconds(ra->get<int64_t>());
      }
    }
  }
  if (message.empty()) message = reason.empty() ? "HTTP " + std::to_string(http) : reason;
  Error e(codeFor(reason, http), std::move(message));
  e.withHttpStatus(http).withReason(reason).withCauses(std::move(causes));
  if (retryAfter) e.withRetryAfter(*retryAfter);
  return e;
}

Error errorFromResponse(int httpStatus, std::string_view body, std::string_view retryAfter) {
  nlohmann::json parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  Error e = [&] {
    if (parsed.is_object() && parsed.contains("kind") && parsed["kind"] == "Status") {
      Error fromStatus = errorFromStatus(parsed, httpStatus);
      // The HTTP status is authoritative for what happened on the wire; Status.code normally agrees.
      fromStatus.withHttpStatus(httpStatus);
      return fromStatus;
    }
    std::string snippet(body.substr(0, 200));
    std::string message = "HTTP " + std::to_string(httpStatus) + (snippet.empty() ? "" : ": " + snippet);
    Error plain(codeFor("", httpStatus), std::move(message));
    plain.withHttpStatus(httpStatus);
    return plain;
  }();
  if (auto ra = parseRetryAfter(retryAfter)) e.withRetryAfter(*ra);
  return e;
}

}  // namespace poolguard::kube
