#include <gtest/gtest.h>

#include "policy/types.h"

namespace poolguard::policy {
namespace {

using Labels = std::map<std::string, std::string>;

TEST(LabelSelector, EmptyMatchesEverything) {
  LabelSelector s;
  EXPECT_TRUE(s.matches({}));
  EXPECT_TRUE(s.matches({{"app", "x"}}));
  EXPECT_EQ(s.toString(), "");
}

TEST(LabelSelector, MatchLabelsNeedsEveryPair) {
  LabelSelector s;
  s.matchLabels = {{"app", "web"}, {"tier", "api"}};
  EXPECT_TRUE(s.matches({{"app", "web"}, {"tier", "api"}, {"extra", "1"}}));
  EXPECT_FALSE(s.matches({{"app", "web"}}));
  EXPECT_FALSE(s.matches({{"app", "web"}, {"tier", "db"}}));
  EXPECT_FALSE(s.matches({}));
}

TEST(LabelSelector, Operators) {
  LabelSelector in{{}, {{"tier", "In", {"api", "web"}}}};
  EXPECT_TRUE(in.matches({{"tier", "web"}}));
  EXPECT_FALSE(in.matches({{"tier", "db"}}));
  EXPECT_FALSE(in.matches({}));

  LabelSelector notIn{{}, {{"tier", "NotIn", {"db"}}}};
  EXPECT_TRUE(notIn.matches({{"tier", "web"}}));
  EXPECT_TRUE(notIn.matches({}));  // absent label is not in the set, as in Kubernetes
  EXPECT_FALSE(notIn.matches({{"tier", "db"}}));

  LabelSelector exists{{}, {{"canary", "Exists", {}}}};
  EXPECT_TRUE(exists.matches({{"canary", ""}}));
  EXPECT_FALSE(exists.matches({{"other", "x"}}));

  LabelSelector absent{{}, {{"legacy", "DoesNotExist", {}}}};
  EXPECT_TRUE(absent.matches({{"app", "x"}}));
  EXPECT_FALSE(absent.matches({{"legacy", "true"}}));
}

TEST(LabelSelector, UnknownOperatorSelectsNothing) {
  LabelSelector s{{}, {{"app", "Equals", {"x"}}}};
  EXPECT_FALSE(s.matches({{"app", "x"}}));
}

TEST(LabelSelector, AllRequirementsMustHold) {
  LabelSelector s{{{"app", "web"}}, {{"tier", "In", {"api"}}, {"legacy", "DoesNotExist", {}}}};
  EXPECT_TRUE(s.matches({{"app", "web"}, {"tier", "api"}}));
  EXPECT_FALSE(s.matches({{"app", "web"}, {"tier", "api"}, {"legacy", "1"}}));
  EXPECT_FALSE(s.matches({{"app", "other"}, {"tier", "api"}}));
}

TEST(LabelSelector, ToStringIsTheQueryForm) {
  LabelSelector s{{{"app", "web"}},
                  {{"tier", "In", {"web", "api"}},
                   {"env", "NotIn", {"dev"}},
                   {"canary", "Exists", {}},
                   {"legacy", "DoesNotExist", {}}}};
  EXPECT_EQ(s.toString(), "app=web,canary,env notin (dev),!legacy,tier in (api,web)");
}

}  // namespace
}  // namespace poolguard::policy
