#include "controller/contest.h"

#include <gtest/gtest.h>

namespace poolguard::controller {
namespace {

using namespace std::chrono_literals;
using steady = Clock::steady_point;

TEST(ContestBackoff, DoublesFromOneMinuteToHalfAnHour) {
  EXPECT_EQ(contestBackoff(1), 60s);
  EXPECT_EQ(contestBackoff(2), 120s);
  EXPECT_EQ(contestBackoff(3), 240s);
  EXPECT_EQ(contestBackoff(5), 960s);
  EXPECT_EQ(contestBackoff(6), 1800s);
  EXPECT_EQ(contestBackoff(40), 1800s);
}

// Corrections every `every` from `from` until one makes a contest; returns when it did and the back-off.
std::pair<steady, std::chrono::seconds> fightUntilContest(ContestTracker& t, steady from, std::chrono::seconds every) {
  for (steady at = from;; at += every) {
    if (auto backoff = t.onCorrection(at)) return {at, *backoff};
  }
}

TEST(ContestTracker, SixCorrectionsWithinAWindowMakeAContest) {
  ContestTracker t;
  steady t0{};
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(t.onCorrection(t0 + i * 10s)) << i;
  EXPECT_FALSE(t.backingOff(t0 + 50s));
  auto backoff = t.onCorrection(t0 + 50s);
  ASSERT_TRUE(backoff);
  EXPECT_EQ(*backoff, 60s);
  EXPECT_TRUE(t.backingOff(t0 + 109s));
  EXPECT_FALSE(t.backingOff(t0 + 110s));
  EXPECT_FALSE(t.onCorrection(t0 + 80s)) << "corrections during the back-off are not counted";
}

TEST(ContestTracker, CorrectionsSpreadBeyondTheWindowNeverMakeAContest) {
  ContestTracker t;
  steady t0{};
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(t.onCorrection(t0 + i * 13s)) << i;
  EXPECT_EQ(t.contests(), 0);
}

TEST(ContestTracker, AFightThatGoesOnBacksOffLongerEachTime) {
  ContestTracker t;
  steady at{};
  std::vector<std::chrono::seconds> backoffs;
  for (int i = 0; i < 8; ++i) {
    auto [when, backoff] = fightUntilContest(t, at, 1s);
    backoffs.push_back(backoff);
    at = when + backoff;  // the fight resumes the moment poolguard writes again
  }
  EXPECT_EQ(backoffs, (std::vector<std::chrono::seconds>{60s, 120s, 240s, 480s, 960s, 1800s, 1800s, 1800s}));
}

TEST(ContestTracker, StartsOverOnceTheOtherManagerHasStopped) {
  ContestTracker t;
  auto [first, b1] = fightUntilContest(t, steady{}, 1s);
  auto [second, b2] = fightUntilContest(t, first + b1 + 30s, 1s);
  EXPECT_EQ(b2, 120s) << "a contest within two windows of the last back-off is the same fight";
  // Quiet for longer than two windows after the back-off ended: a later contest is a new fight.
  auto [third, b3] = fightUntilContest(t, second + b2 + 121s, 1s);
  EXPECT_EQ(b3, 60s);
  EXPECT_EQ(t.contests(), 1);
}

}  // namespace
}  // namespace poolguard::controller
