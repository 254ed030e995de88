#pragma once
// Errors as values across module boundaries. An Error knows what kind of failure it is, the HTTP status it
// came with (0 when none), whether retrying can help, and, for Kubernetes "Invalid" answers, the causes.
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace poolguard {

enum class ErrorCode {
  kInvalidArgument,  // bad input from a user: a policy, a flag, a kubeconfig
  kNotFound,
  kAlreadyExists,
  kConflict,  // optimistic concurrency: resourceVersion mismatch or an apply conflict
  kForbidden,
  kUnauthorized,
  kInvalid,          // the API server rejected the object (422); see causes
  kGone,             // 410 Expired/Gone: the resourceVersion is too old, relist
  kTooManyRequests,  // 429; see retryAfter
  kTimeout,          // 504 or a server-side timeout
  kUnavailable,      // transport failure or 5xx: the request may not have reached the server
  kCancelled,
  kInternal,
};

struct ErrorCause {
  std::string field;
  std::string reason;
  std::string message;
};

class Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  int httpStatus() const { return httpStatus_; }
  const std::string& reason() const { return reason_; }
  const std::vector<ErrorCause>& causes() const { return causes_; }
  std::optional<std::chrono::seconds> retryAfter() const { return retryAfter_; }

  Error& withHttpStatus(int status) {
    httpStatus_ = status;
    return *this;
  }
  Error& withReason(std::string reason) {
    reason_ = std::move(reason);
    return *this;
  }
  Error& withCauses(std::vector<ErrorCause> causes) {
    causes_ = std::move(causes);
    return *this;
  }
  Error& withRetryAfter(std::chrono::seconds after) {
    retryAfter_ = after;
    return *this;
  }
  // Marks the error as terminal for a reconcile: repeating the same work cannot succeed until what it reads
  // changes (controller-runtime's TerminalError). Only the code that knows this says so: no ErrorCode or HTTP
  // status is terminal by itself (an API server's 400 during a finalize is retried like any failure).
  Error& asTerminal() {
    terminal_ = true;
    return *this;
  }
  bool terminal() const { return terminal_; }

  // Whether the same request may succeed if repeated later without changes.
  bool retryable() const {
    switch (code_) {
      case ErrorCode::kConflict:
      case ErrorCode::kTooManyRequests:
      case ErrorCode::kTimeout:
      case ErrorCode::kUnavailable:
      case ErrorCode::kInternal:
        return true;
      default:
        return false;
    }
  }

 private:
  ErrorCode code_;
  std::string message_;
  int httpStatus_ = 0;
  std::string reason_;
  std::vector<ErrorCause> causes_;
  std::optional<std::chrono::seconds> retryAfter_;
  bool terminal_ = false;
};

const char* toString(ErrorCode code);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const Error& error() const { return std::get<Error>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct Ok {};
using Status = Result<Ok>;
inline Status okStatus() { return Ok{}; }

}  // namespace poolguard
