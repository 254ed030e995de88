#include "kube/status.h"

#include <gtest/gtest.h>

namespace poolguard::kube {
namespace {

std::string status(int code, const std::string& reason, const std::string& message, const std::string& details = "") {
  return R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":")" + message +
         R"(","reason":")" + reason + R"(","code":)" + std::to_string(code) +
         (details.empty() ? "" : R"(,"details":)" + details) + "}";
}

struct Case {
  const char* name;
  int http;
  std::string body;
  ErrorCode expected;
};

class StatusMapping : public ::testing::TestWithParam<Case> {};

TEST_P(StatusMapping, MapsToTypedError) {
  const Case& c = GetParam();
  Error e = errorFromResponse(c.http, c.body);
  EXPECT_EQ(e.code(), c.expected) << toString(e.code()) << " for " << c.body;
  EXPECT_EQ(e.httpStatus(), c.http);
}

INSTANTIATE_TEST_SUITE_P(
    Status, StatusMapping,
    ::testing::Values(
        Case{"NotFound", 404, status(404, "NotFound", "configmaps \\\"x\\\" not found"), ErrorCode::kNotFound},
        Case{"AlreadyExists", 409, status(409, "AlreadyExists", "exists"), ErrorCode::kAlreadyExists},
        Case{"Conflict", 409, status(409, "Conflict", "the object has been modified"), ErrorCode::kConflict},
        Case{"Forbidden", 403, status(403, "Forbidden", "cannot list"), ErrorCode::kForbidden},
        Case{"Unauthorized", 401, status(401, "Unauthorized", "Unauthorized"), ErrorCode::kUnauthorized},
        Case{"Invalid", 422, status(422, "Invalid", "bad"), ErrorCode::kInvalid},
        Case{"Expired", 410, status(410, "Expired", "too old resource version"), ErrorCode::kGone},
        Case{"Gone", 410, status(410, "Gone", "gone"), ErrorCode::kGone},
        Case{"TooManyRequests", 429, status(429, "TooManyRequests", "slow down"), ErrorCode::kTooManyRequests},
        Case{"GatewayTimeout", 504, status(504, "Timeout", "timed out"), ErrorCode::kTimeout},
        Case{"ServerTimeout", 500, status(500, "ServerTimeout", "took too long"), ErrorCode::kTimeout},
        Case{"InternalError", 500, status(500, "InternalError", "etcd"), ErrorCode::kUnavailable},
        Case{"ServiceUnavailable", 503, status(503, "ServiceUnavailable", "x"), ErrorCode::kUnavailable},
        Case{"BadRequest", 400, status(400, "BadRequest", "bad"), ErrorCode::kInvalidArgument},
        Case{"UnsupportedMediaType", 415, status(415, "UnsupportedMediaType", "no"), ErrorCode::kInvalidArgument},
        // Not a Status: the HTTP code decides.
        Case{"PlainNotFound", 404, "404 page not found", ErrorCode::kNotFound},
        Case{"PlainForbidden", 403, "", ErrorCode::kForbidden},
        Case{"PlainUnauthorized", 401, "Unauthorized", ErrorCode::kUnauthorized},
        Case{"PlainGone", 410, "", ErrorCode::kGone},
        Case{"ProxyTimeout", 504, "<html>gateway timeout</html>", ErrorCode::kTimeout},
        Case{"EmptyBadGateway", 502, "", ErrorCode::kUnavailable},
        Case{"EmptyUnavailable", 503, "", ErrorCode::kUnavailable},
        Case{"UnknownReasonUsesCode", 409, status(409, "SomethingNew", "x"), ErrorCode::kConflict},
        Case{"Teapot", 418, "", ErrorCode::kInternal}),
    [](const ::testing::TestParamInfo<Case>& p) { return std::string(p.param.name); });

TEST(Status, KeepsMessageAndReason) {
  Error e = errorFromResponse(404, status(404, "NotFound", "configmaps \\\"x\\\" not found"));
  EXPECT_EQ(e.message(), "configmaps \"x\" not found");
  EXPECT_EQ(e.reason(), "NotFound");
  EXPECT_FALSE(e.retryable());
}

TEST(Status, InvalidCarriesCauses) {
  std::string details = R"({"name":"x","kind":"Widget","causes":[
      {"reason":"FieldValueRequired","message":"Required value","field":"spec.size"},
      {"reason":"FieldValueInvalid","message":"must be positive","field":"spec.replicas"}]})";
  Error e = errorFromResponse(422, status(422, "Invalid", "Widget \\\"x\\\" is invalid", details));
  ASSERT_EQ(e.code(), ErrorCode::kInvalid);
  ASSERT_EQ(e.causes().size(), 2u);
  EXPECT_EQ(e.causes()[0].field, "spec.size");
  EXPECT_EQ(e.causes()[0].reason, "FieldValueRequired");
  EXPECT_EQ(e.causes()[0].message, "Required value");
  EXPECT_EQ(e.causes()[1].field, "spec.replicas");
}

TEST(Status, RetryAfterFromHeaderOrDetails) {
  Error fromHeader = errorFromResponse(429, status(429, "TooManyRequests", "slow"), "7");
  ASSERT_TRUE(fromHeader.retryAfter());
  EXPECT_EQ(*fromHeader.retryAfter(), std::chrono::seconds(7));
  EXPECT_TRUE(fromHeader.retryable());

  Error fromDetails = errorFromResponse(429, status(429, "TooManyRequests", "slow", R"({"retryAfterSeconds":3})"));
  ASSERT_TRUE(fromDetails.retryAfter());
  EXPECT_EQ(*fromDetails.retryAfter(), std::chrono::seconds(3));

  EXPECT_FALSE(errorFromResponse(429, "", "soon").retryAfter()) << "only delta-seconds are understood";
  EXPECT_FALSE(errorFromResponse(429, "", "").retryAfter());
}

TEST(Status, NonStatusBodyIsQuotedShortly) {
  Error e = errorFromResponse(502, std::string(1000, 'x'));
  EXPECT_EQ(e.message().substr(0, 10), "HTTP 502: ");
  EXPECT_LT(e.message().size(), 300u);
}

TEST(Status, WatchErrorEventObject) {
  auto obj = nlohmann::json::parse(R"json({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
      "message":"too old resource version: 1 (4567)","reason":"Expired","code":410})json");
  Error e = errorFromStatus(obj);
  EXPECT_EQ(e.code(), ErrorCode::kGone);
  EXPECT_EQ(e.httpStatus(), 410);
  EXPECT_EQ(e.message(), "too old resource version: 1 (4567)");
  // A Status with only a code still maps.
  EXPECT_EQ(errorFromStatus(nlohmann::json{{"code", 410}}).code(), ErrorCode::kGone);
  EXPECT_EQ(errorFromStatus(nlohmann::json::object(), 500).code(), ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace poolguard::kube
