#include "runtime/bind_address.h"

#include <gtest/gtest.h>

namespace poolguard::runtime {
namespace {

std::string parsed(const std::string& value) {
  auto a = parseBindAddress("--metrics-bind-address", value);
  if (!a.ok()) return "error: " + a.error().message();
  return *a ? (*a)->toString() : "disabled";
}

TEST(BindAddress, AcceptsTheFormsControllerRuntimeTakes) {
  EXPECT_EQ(parsed("0"), "disabled");
  EXPECT_EQ(parsed(""), "disabled");
  EXPECT_EQ(parsed(":8080"), "0.0.0.0:8080");
  EXPECT_EQ(parsed("8081"), "0.0.0.0:8081");
  EXPECT_EQ(parsed("127.0.0.1:9090"), "127.0.0.1:9090");
  EXPECT_EQ(parsed("localhost:1"), "localhost:1");
  EXPECT_EQ(parsed("[::1]:65535"), "[::1]:65535");
}

TEST(BindAddress, MalformedValuesAreErrorsNamingTheFlagAndTheFix) {
  for (const char* bad : {"abc", ":", ":http", "host:", ":0", ":65536", ":-1", ":80x", "[::1", "[]:80", "[::1]80",
                          "::1:80", "host:99999999999"}) {
    auto a = parseBindAddress("--health-probe-bind-address", bad);
    ASSERT_FALSE(a.ok()) << bad;
    EXPECT_EQ(a.error().code(), ErrorCode::kInvalidArgument);
    const std::string& m = a.error().message();
    EXPECT_TRUE(m.starts_with(std::string("--health-probe-bind-address \"") + bad + "\": ")) << m;
    EXPECT_NE(m.find("use HOST:PORT, :PORT for every interface, or 0 to disable"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace poolguard::runtime
