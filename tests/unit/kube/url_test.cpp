#include "kube/url.h"

#include <gtest/gtest.h>

namespace poolguard::kube {
namespace {

TEST(ResourcePath, CoreNamespaced) {
  auto cm = resources::configMaps();
  EXPECT_EQ(resourcePath(cm, "team-a"), "/api/v1/namespaces/team-a/configmaps");
  EXPECT_EQ(resourcePath(cm, "team-a", "settings"), "/api/v1/namespaces/team-a/configmaps/settings");
  EXPECT_EQ(resourcePath(cm, ""), "/api/v1/configmaps") << "all namespaces";
}

TEST(ResourcePath, NamedGroup) {
  EXPECT_EQ(resourcePath(resources::deployments(), "ns", "web", "scale"),
            "/apis/apps/v1/namespaces/ns/deployments/web/scale");
  EXPECT_EQ(resourcePath(resources::connectionPoolPolicies(), "ns", "p", "status"),
            "/apis/poolguard.dev/v1alpha1/namespaces/ns/connectionpoolpolicies/p/status");
  EXPECT_EQ(resourcePath(resources::horizontalPodAutoscalers(), "ns"),
            "/apis/autoscaling/v2/namespaces/ns/horizontalpodautoscalers");
}

TEST(ResourcePath, ClusterScopedIgnoresNamespace) {
  EXPECT_EQ(resourcePath(resources::namespaces(), "ignored", "kube-system"), "/api/v1/namespaces/kube-system");
  EXPECT_EQ(resourcePath(resources::namespaces(), ""), "/api/v1/namespaces");
}

TEST(ResourcePath, SubresourceNeedsAName) {
  EXPECT_EQ(resourcePath(resources::configMaps(), "ns", "", "status"), "/api/v1/namespaces/ns/configmaps");
}

TEST(ResourcePath, EscapesSegments) {
  EXPECT_EQ(resourcePath(resources::configMaps(), "n s", "a/b"), "/api/v1/namespaces/n%20s/configmaps/a%2Fb");
}

TEST(PercentEncode, KeepsOnlyUnreserved) {
  EXPECT_EQ(percentEncode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(percentEncode("app in (a,b),tier!=db"), "app%20in%20%28a%2Cb%29%2Ctier%21%3Ddb");
  EXPECT_EQ(percentEncode("a=b&c"), "a%3Db%26c");
  EXPECT_EQ(percentEncode("\xC3\xA9"), "%C3%A9");
}

TEST(Query, SkipsEmptyAndKeepsOrder) {
  Query q;
  q.add("b", std::string("2")).add("skip", std::string()).add("a", std::string("x y")).add("off", false);
  EXPECT_EQ(q.str(), "?b=2&a=x%20y");
  EXPECT_EQ(Query().str(), "");
}

TEST(Query, List) {
  ListOptions o;
  EXPECT_EQ(listQuery(o).str(), "");
  o.labelSelector = "app=web,tier in (a,b)";
  o.fieldSelector = "metadata.name=x";
  o.limit = 2;
  o.continueToken = "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTIzfQ==";
  o.resourceVersion = "1";
  o.resourceVersionMatch = "Exact";
  EXPECT_EQ(listQuery(o).str(),
            "?labelSelector=app%3Dweb%2Ctier%20in%20%28a%2Cb%29&fieldSelector=metadata.name%3Dx&limit=2"
            "&continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTIzfQ%3D%3D&resourceVersion=1&resourceVersionMatch=Exact");
}

TEST(Query, Watch) {
  WatchOptions o;
  o.resourceVersion = "4711";
  o.timeout = std::chrono::seconds(420);
  EXPECT_EQ(watchQuery(o).str(), "?watch=true&resourceVersion=4711&allowWatchBookmarks=true&timeoutSeconds=420");
  o.allowBookmarks = false;
  o.labelSelector = "a=b";
  EXPECT_EQ(watchQuery(o).str(), "?watch=true&labelSelector=a%3Db&resourceVersion=4711&timeoutSeconds=420");
}

TEST(Query, Write) {
  WriteOptions o;
  EXPECT_EQ(writeQuery(o).str(), "");
  o.fieldManager = "poolguard";
  o.force = true;
  o.dryRun = true;
  EXPECT_EQ(writeQuery(o).str(), "?fieldManager=poolguard&force=true&dryRun=All");
}

}  // namespace
}  // namespace poolguard::kube
