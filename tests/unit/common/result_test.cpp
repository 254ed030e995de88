#include "common/result.h"

#include <gtest/gtest.h>

namespace poolguard {
namespace {

TEST(Result, HoldsValueOrError) {
  Result<int> good = 42;
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 42);
  Result<int> bad = Error(ErrorCode::kNotFound, "configmaps \"x\" not found");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(bad.error().message(), "configmaps \"x\" not found");
}

TEST(Error, RetryableOnlyForTransientCodes) {
  EXPECT_TRUE(Error(ErrorCode::kUnavailable, "").retryable());
  EXPECT_TRUE(Error(ErrorCode::kTooManyRequests, "").retryable());
  EXPECT_TRUE(Error(ErrorCode::kConflict, "").retryable());
  EXPECT_FALSE(Error(ErrorCode::kInvalid, "").retryable());
  EXPECT_FALSE(Error(ErrorCode::kForbidden, "").retryable());
  EXPECT_FALSE(Error(ErrorCode::kInvalidArgument, "").retryable());
}

TEST(Error, CarriesApiDetails) {
  Error e(ErrorCode::kTooManyRequests, "slow down");
  e.withHttpStatus(429).withReason("TooManyRequests").withRetryAfter(std::chrono::seconds(3));
  EXPECT_EQ(e.httpStatus(), 429);
  EXPECT_EQ(e.reason(), "TooManyRequests");
  ASSERT_TRUE(e.retryAfter().has_value());
  EXPECT_EQ(e.retryAfter()->count(), 3);
  EXPECT_STREQ(toString(e.code()), "TooManyRequests");
}

}  // namespace
}  // namespace poolguard
