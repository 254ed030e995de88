#include "kube/rate_limiter.h"

#include <gtest/gtest.h>

namespace poolguard::kube {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

TEST(RateLimiter, BurstThenQps) {
  ManualClock clock;
  RateLimiter limiter(/*qps=*/2, /*burst=*/3, clock);
  EXPECT_EQ(limiter.reserve(), nanoseconds(0));
  EXPECT_EQ(limiter.reserve(), nanoseconds(0));
  EXPECT_EQ(limiter.reserve(), nanoseconds(0));
  // Each further request queues half a second behind the previous one.
  EXPECT_EQ(limiter.reserve(), milliseconds(500));
  EXPECT_EQ(limiter.reserve(), milliseconds(1000));
}

TEST(RateLimiter, AReleasedReservationDelaysNoOneAfterIt) {
  ManualClock clock;
  RateLimiter limiter(/*qps=*/2, /*burst=*/1, clock);
  EXPECT_EQ(limiter.reserve(), nanoseconds(0));
  EXPECT_EQ(limiter.reserve(), milliseconds(500));  // this caller gives up (its deadline comes first)
  limiter.release();
  EXPECT_EQ(limiter.reserve(), milliseconds(500)) << "the next caller waits as if the other had never asked";
  limiter.release();
  limiter.release();
  clock.advance(milliseconds(5000));
  EXPECT_EQ(limiter.reserve(), nanoseconds(0));
  EXPECT_EQ(limiter.reserve(), milliseconds(500)) << "releases never lift the bucket above its burst";
}

TEST(RateLimiter, RefillsWithTime) {
  ManualClock clock;
  RateLimiter limiter(10, 1, clock);
  EXPECT_EQ(limiter.reserve(), nanoseconds(0));
  EXPECT_EQ(limiter.reserve(), milliseconds(100));
  clock.advance(milliseconds(100));  // pays for the promised token
  EXPECT_EQ(limiter.reserve(), milliseconds(100));
  clock.advance(milliseconds(250));
  EXPECT_EQ(limiter.reserve(), nanoseconds(0));
}

TEST(RateLimiter, RefillIsCappedAtBurst) {
  ManualClock clock;
  RateLimiter limiter(20, 30, clock);
  clock.advance(std::chrono::hours(1));
  for (int i = 0; i < 30; ++i) EXPECT_EQ(limiter.reserve(), nanoseconds(0)) << i;
  EXPECT_EQ(limiter.reserve(), milliseconds(50));
}

TEST(RateLimiter, NonPositiveQpsDisables) {
  ManualClock clock;
  RateLimiter limiter(0, 1, clock);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(limiter.reserve(), nanoseconds(0));
}

TEST(RateLimiter, TryAcquireTakesOnlyATokenThatIsThere) {
  ManualClock clock;
  RateLimiter limiter(/*qps=*/0.5, /*burst=*/2, clock);
  EXPECT_TRUE(limiter.tryAcquire());
  EXPECT_TRUE(limiter.tryAcquire());
  EXPECT_FALSE(limiter.tryAcquire());
  EXPECT_FALSE(limiter.tryAcquire()) << "a refused call takes nothing and promises nothing";
  clock.advance(milliseconds(1999));
  EXPECT_FALSE(limiter.tryAcquire());
  clock.advance(milliseconds(1));
  EXPECT_TRUE(limiter.tryAcquire());
  EXPECT_FALSE(limiter.tryAcquire());
  clock.advance(std::chrono::hours(1));  // refill is capped at burst
  EXPECT_TRUE(limiter.tryAcquire());
  EXPECT_TRUE(limiter.tryAcquire());
  EXPECT_FALSE(limiter.tryAcquire());
}

TEST(RateLimiter, TryAcquireDoesNotJumpReservations) {
  ManualClock clock;
  RateLimiter limiter(10, 1, clock);
  EXPECT_EQ(limiter.reserve(), nanoseconds(0));
  EXPECT_EQ(limiter.reserve(), milliseconds(100));
  clock.advance(milliseconds(100));  // the refilled token is the waiting caller's
  EXPECT_FALSE(limiter.tryAcquire());
  clock.advance(milliseconds(100));
  EXPECT_TRUE(limiter.tryAcquire());
  EXPECT_EQ(limiter.reserve(), milliseconds(100));
}

TEST(RateLimiter, TryAcquireWithNonPositiveQpsAlwaysSucceeds) {
  ManualClock clock;
  RateLimiter limiter(0, 1, clock);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(limiter.tryAcquire());
}

}  // namespace
}  // namespace poolguard::kube
