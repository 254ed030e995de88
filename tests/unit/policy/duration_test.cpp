#include <gtest/gtest.h>

#include "policy/parse.h"

namespace poolguard::policy {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;

nanoseconds ns(const std::string& s) {
  auto r = parseDurationNanos(s);
  EXPECT_TRUE(r.ok()) << s << ": " << (r.ok() ? "" : r.error().message());
  return r.ok() ? *r : nanoseconds{-1};
}

TEST(ParseDuration, UnitsAsGoReadsThem) {
  EXPECT_EQ(ns("1ns"), nanoseconds(1));
  EXPECT_EQ(ns("1us"), nanoseconds(1000));
  EXPECT_EQ(ns("1\xC2\xB5s"), nanoseconds(1000));
  EXPECT_EQ(ns("1\xCE\xBCs"), nanoseconds(1000));
  EXPECT_EQ(ns("300ms"), milliseconds(300));
  EXPECT_EQ(ns("30s"), seconds(30));
  EXPECT_EQ(ns("10m"), minutes(10));
  EXPECT_EQ(ns("2h"), hours(2));
}

TEST(ParseDuration, ZeroForms) {
  EXPECT_EQ(ns("0"), nanoseconds(0));
  EXPECT_EQ(ns("0s"), nanoseconds(0));
  EXPECT_EQ(ns("0ms"), nanoseconds(0));
  EXPECT_EQ(ns("0h0m"), nanoseconds(0));
}

TEST(ParseDuration, FractionsAndCombinations) {
  EXPECT_EQ(ns("1.5s"), milliseconds(1500));
  EXPECT_EQ(ns(".5s"), milliseconds(500));
  EXPECT_EQ(ns("1.s"), seconds(1));
  EXPECT_EQ(ns("1h30m"), minutes(90));
  EXPECT_EQ(ns("1h2m3s4ms"), hours(1) + minutes(2) + seconds(3) + milliseconds(4));
  EXPECT_EQ(ns("1.5h"), minutes(90));
  EXPECT_EQ(ns("2m1.25s"), milliseconds(121250));
  // Units may repeat, as in Go.
  EXPECT_EQ(ns("1s1s"), seconds(2));
}

TEST(ParseDuration, LargestValueGoAccepts) {
  EXPECT_EQ(ns("2562047h47m16.854775807s"), nanoseconds(INT64_MAX));
  EXPECT_EQ(ns("9223372036854775807ns"), nanoseconds(INT64_MAX));
}

TEST(ParseDuration, RejectsWhatGoRejectsAndSigns) {
  for (const char* bad : {"",  "s",   "5",   "30", "00", "5d",     "5 s", " 5s",  "5s ",  "1e3s",  ".s",
                          ".", "-5s", "+5s", "-0", "5S", "1h-30m", "abc", "5sec", "1,5s", "0x10s", "\xC2\xB5s"}) {
    auto r = parseDurationNanos(bad);
    EXPECT_FALSE(r.ok()) << "accepted \"" << bad << "\"";
    if (!r.ok()) {
      EXPECT_NE(r.error().message().find(std::string("\"") + bad + "\""), std::string::npos) << r.error().message();
      EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    }
  }
}

TEST(ParseDuration, RejectsOverflowWithoutWrapping) {
  for (const char* big : {"2562048h", "9223372036854775808ns", "99999999999999999999s", "3000000h",
                          "2562047h47m16.854775808s", "1000000000000000000000000000000h"}) {
    auto r = parseDurationNanos(big);
    EXPECT_FALSE(r.ok()) << "accepted " << big;
    if (!r.ok()) {
      EXPECT_NE(r.error().message().find("out of range"), std::string::npos) << r.error().message();
    }
  }
}

TEST(ParseDuration, ManyFractionDigitsAreIgnoredBeyondPrecision) {
  EXPECT_EQ(ns("1.0000000000000000000000001s"), seconds(1));
}

TEST(ParseDuration, MillisTruncatesBelowAMillisecond) {
  auto r = parseDuration("1500us");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, milliseconds(1));
  auto ms = parseDuration("1m30s");
  ASSERT_TRUE(ms.ok());
  EXPECT_EQ(*ms, milliseconds(90000));
}

TEST(FormatDuration, ShortestForm) {
  EXPECT_EQ(formatDuration(milliseconds(0)), "0s");
  EXPECT_EQ(formatDuration(milliseconds(30000)), "30s");
  EXPECT_EQ(formatDuration(milliseconds(90000)), "1m30s");
  EXPECT_EQ(formatDuration(milliseconds(3600000)), "1h");
  EXPECT_EQ(formatDuration(milliseconds(3660000)), "1h1m");
  EXPECT_EQ(formatDuration(milliseconds(3601000)), "1h1s");
  EXPECT_EQ(formatDuration(milliseconds(1500)), "1.5s");
  EXPECT_EQ(formatDuration(milliseconds(1050)), "1.05s");
  EXPECT_EQ(formatDuration(milliseconds(500)), "500ms");
  EXPECT_EQ(formatDuration(milliseconds(600000)), "10m");
}

TEST(FormatDuration, RoundTripsThroughParse) {
  for (int64_t v : {0LL, 1LL, 999LL, 1000LL, 1001LL, 59999LL, 60000LL, 3599999LL, 86400000LL, 123456789LL}) {
    auto back = parseDuration(formatDuration(milliseconds(v)));
    ASSERT_TRUE(back.ok()) << formatDuration(milliseconds(v));
    EXPECT_EQ(back->count(), v) << formatDuration(milliseconds(v));
  }
}

}  // namespace
}  // namespace poolguard::policy
