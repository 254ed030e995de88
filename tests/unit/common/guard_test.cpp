#include "common/guard.h"

#include <gtest/gtest.h>

#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace poolguard {
namespace {

TEST(GuardedMain, PassesTheBodysExitCodeThrough) {
  std::ostringstream err;
  EXPECT_EQ(guardedMain([] { return 0; }, err), 0);
  EXPECT_EQ(guardedMain([] { return 1; }, err), 1);
  EXPECT_EQ(err.str(), "");
}

TEST(GuardedMain, TurnsALibraryExceptionIntoOneLineAndExitCode2) {
  std::ostringstream err;
  int rc = guardedMain(
      []() -> int {
        nlohmann::json name = true;
        return static_cast<int>(name.get<std::string>().size());  // throws type_error, as a wrong-typed field did
      },
      err);
  EXPECT_EQ(rc, 2);
  const std::string text = err.str();
  EXPECT_TRUE(text.starts_with("error: unexpected failure: ")) << text;
  EXPECT_NE(text.find("type must be string"), std::string::npos) << text;
  EXPECT_EQ(text.find('\n'), text.size() - 1) << "one line: " << text;
}

TEST(GuardedMain, MultiLineMessagesAndNonStandardExceptionsStayOneLine) {
  std::ostringstream err;
  EXPECT_EQ(guardedMain([]() -> int { throw std::runtime_error("first\nsecond"); }, err), 2);
  EXPECT_EQ(err.str().find('\n'), err.str().size() - 1) << err.str();
  std::ostringstream err2;
  EXPECT_EQ(guardedMain([]() -> int { throw 42; }, err2), 2);
  EXPECT_TRUE(err2.str().starts_with("error: unexpected failure")) << err2.str();
}

}  // namespace
}  // namespace poolguard
