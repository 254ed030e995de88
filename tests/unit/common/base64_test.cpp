#include "common/base64.h"

#include <gtest/gtest.h>

namespace poolguard {
namespace {

TEST(Base64, DecodesPaddedGroups) {
  EXPECT_EQ(decodeBase64(""), "");
  EXPECT_EQ(decodeBase64("aGVs"), "hel");
  EXPECT_EQ(decodeBase64("aGVsbA=="), "hell");
  EXPECT_EQ(decodeBase64("aGVsbG8="), "hello");
  EXPECT_EQ(decodeBase64("bW9uaXRvcg=="), "monitor");
  EXPECT_EQ(decodeBase64("czNjcjN0IQ=="), "s3cr3t!");
  EXPECT_EQ(decodeBase64("AP8="), std::string("\x00\xff", 2));
  EXPECT_EQ(decodeBase64("+/8="), std::string("\xfb\xff", 2));
}

TEST(Base64, PaddingIsOptional) {
  EXPECT_EQ(decodeBase64("bW9uaXRvcg"), "monitor");
  EXPECT_EQ(decodeBase64("aGVsbG8"), "hello");
}

TEST(Base64, IgnoresWhitespace) {
  // Wrapped lines, as in kubeconfig data fields and Secrets written by hand.
  EXPECT_EQ(decodeBase64("aGVs\nbG8=\n"), "hello");
  EXPECT_EQ(decodeBase64("YW\nJj"), "abc");
}

TEST(Base64, RejectsWhatIsNotBase64) {
  EXPECT_FALSE(decodeBase64("aGV*bG8="));      // alphabet
  EXPECT_FALSE(decodeBase64("bW9u*XRvcg=="));  // alphabet
  EXPECT_FALSE(decodeBase64("a"));             // a lone symbol holds no whole byte
  EXPECT_FALSE(decodeBase64("a===="));         // the same, and too much padding
  EXPECT_FALSE(decodeBase64("YQ="));           // padding that does not complete the group
  EXPECT_FALSE(decodeBase64("aG=sbG8="));      // padding in the middle
  EXPECT_FALSE(decodeBase64("YQ==YQ"));        // data after padding
  EXPECT_FALSE(decodeBase64("aGVsbG8=aGVs"));  // data after padding
}

}  // namespace
}  // namespace poolguard
