#pragma once
// Maps failed API answers to typed Errors. The API server answers failures with a metav1.Status whose reason
// names the failure ("NotFound", "Conflict", "Expired"); the HTTP status decides when the body is not a Status
// (a proxy's HTML page, an empty 503).
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace poolguard::kube {

// httpStatus: the response's status code; body: its raw body; retryAfter: the Retry-After header ("" if none).
Error errorFromResponse(int httpStatus, std::string_view body, std::string_view retryAfter = "");

// From a metav1.Status object (as carried by a watch ERROR event); fallbackHttpStatus is used when it has no code.
Error errorFromStatus(const nlohmann::json& status, int fallbackHttpStatus = 0);

}  // namespace poolguard::kube
