#include "common/clock.h"

#include <gtest/gtest.h>

namespace poolguard {
namespace {

TEST(Rfc3339, FormatsUtcSeconds) {
  auto t = std::chrono::system_clock::from_time_t(1700000000);
  EXPECT_EQ(formatRfc3339(t), "2023-11-14T22:13:20Z");
}

TEST(Rfc3339, ParsesWhatItFormats) {
  Clock::time_point t;
  ASSERT_TRUE(parseRfc3339("2023-11-14T22:13:20Z", t));
  EXPECT_EQ(std::chrono::system_clock::to_time_t(t), 1700000000);
}

TEST(Rfc3339, ParsesMicroTimeAndOffsets) {
  Clock::time_point t;
  ASSERT_TRUE(parseRfc3339("2023-11-14T22:13:20.250000Z", t));
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count(), 1700000000250);
  ASSERT_TRUE(parseRfc3339("2023-11-14T23:13:20+01:00", t));
  EXPECT_EQ(std::chrono::system_clock::to_time_t(t), 1700000000);
}

TEST(Rfc3339, RejectsGarbage) {
  Clock::time_point t;
  EXPECT_FALSE(parseRfc3339("", t));
  EXPECT_FALSE(parseRfc3339("yesterday", t));
  EXPECT_FALSE(parseRfc3339("2023-13-14T22:13:20Z", t));
  EXPECT_FALSE(parseRfc3339("2023-11-14T22:13:20", t));
  EXPECT_FALSE(parseRfc3339("2023-11-14T22:13:20Zjunk", t));
}

TEST(ManualClock, AdvancesBothTimes) {
  ManualClock clock;
  auto wall = clock.now();
  auto steady = clock.steadyNow();
  clock.advance(std::chrono::seconds(90));
  EXPECT_EQ(clock.now() - wall, std::chrono::seconds(90));
  EXPECT_EQ(clock.steadyNow() - steady, std::chrono::seconds(90));
}

}  // namespace
}  // namespace poolguard
