#include "common/label_selector.h"

#include <gtest/gtest.h>

namespace poolguard {
namespace {

TEST(LabelSelector, EmptyMatchesEverything) {
  LabelSelector s;
  EXPECT_TRUE(matches(s, {}));
  EXPECT_TRUE(matches(s, {{"app", "x"}}));
  EXPECT_EQ(toString(s), "");
}

TEST(LabelSelector, MatchLabelsNeedsEveryPair) {
  LabelSelector s;
  s.matchLabels = {{"app", "web"}, {"tier", "api"}};
  EXPECT_TRUE(matches(s, {{"app", "web"}, {"tier", "api"}, {"extra", "1"}}));
  EXPECT_FALSE(matches(s, {{"app", "web"}}));
  EXPECT_FALSE(matches(s, {{"app", "web"}, {"tier", "db"}}));
  EXPECT_FALSE(matches(s, {}));
}

TEST(LabelSelector, Operators) {
  LabelSelector in{{}, {{"tier", "In", {"api", "web"}}}};
  EXPECT_TRUE(matches(in, {{"tier", "web"}}));
  EXPECT_FALSE(matches(in, {{"tier", "db"}}));
  EXPECT_FALSE(matches(in, {}));

  LabelSelector notIn{{}, {{"tier", "NotIn", {"db"}}}};
  EXPECT_TRUE(matches(notIn, {{"tier", "web"}}));
  EXPECT_TRUE(matches(notIn, {}));  // absent label is not in the set, as in Kubernetes
  EXPECT_FALSE(matches(notIn, {{"tier", "db"}}));

  LabelSelector exists{{}, {{"canary", "Exists", {}}}};
  EXPECT_TRUE(matches(exists, {{"canary", ""}}));
  EXPECT_FALSE(matches(exists, {{"other", "x"}}));

  LabelSelector absent{{}, {{"legacy", "DoesNotExist", {}}}};
  EXPECT_TRUE(matches(absent, {{"app", "x"}}));
  EXPECT_FALSE(matches(absent, {{"legacy", "true"}}));
}

TEST(LabelSelector, UnknownOperatorSelectsNothing) {
  LabelSelector s{{}, {{"app", "Equals", {"x"}}}};
  EXPECT_FALSE(matches(s, {{"app", "x"}}));
}

TEST(LabelSelector, AllRequirementsMustHold) {
  LabelSelector s{{{"app", "web"}}, {{"tier", "In", {"api"}}, {"legacy", "DoesNotExist", {}}}};
  EXPECT_TRUE(matches(s, {{"app", "web"}, {"tier", "api"}}));
  EXPECT_FALSE(matches(s, {{"app", "web"}, {"tier", "api"}, {"legacy", "1"}}));
  EXPECT_FALSE(matches(s, {{"app", "other"}, {"tier", "api"}}));
}

TEST(LabelSelector, ToStringIsTheQueryForm) {
  LabelSelector s{{{"app", "web"}},
                  {{"tier", "In", {"web", "api"}},
                   {"env", "NotIn", {"dev"}},
                   {"canary", "Exists", {}},
                   {"legacy", "DoesNotExist", {}}}};
  EXPECT_EQ(toString(s), "app=web,canary,env notin (dev),!legacy,tier in (api,web)");
}

}  // namespace
}  // namespace poolguard
