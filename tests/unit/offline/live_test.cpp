#include "offline/live.h"

#include <gtest/gtest.h>

#include <sstream>

#include "offline/commands.h"

namespace poolguard::offline {
namespace {

using json = nlohmann::json;

policy::Document doc(const std::string& source, json object) {
  return policy::Document{source, 0, std::move(object), {}};
}

json deployment(const std::string& ns, const std::string& name, int replicas, const std::string& app) {
  json d = json::parse(R"({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {},
                           "spec": {"template": {"spec": {"containers": [{"name": "app"}]}}}})");
  d["metadata"]["name"] = name;
  d["metadata"]["labels"]["app"] = app;
  if (!ns.empty()) d["metadata"]["namespace"] = ns;
  d["spec"]["replicas"] = replicas;
  d["spec"]["selector"]["matchLabels"]["app"] = app;
  return d;
}

json policyOf(const std::string& ns, const std::string& name, const std::string& app, int maxSize,
              const std::string& database) {
  return {{"apiVersion", "poolguard.dev/v1alpha1"},
          {"kind", "ConnectionPoolPolicy"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec",
           {{"selector", {{"matchLabels", {{"app", app}}}}},
            {"pool", {{"maxSize", maxSize}}},
            {"database", {{"name", database}, {"maxConnections", 100}}}}}};
}

TEST(Overlay, AFileObjectReplacesTheLiveOneOfTheSameKindNamespaceAndName) {
  std::vector<policy::Document> live{
      doc(kLiveSource, deployment("default", "web", 2, "web")), doc(kLiveSource, deployment("shop", "web", 2, "web")),
      doc(kLiveSource, json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "shop"}}}})};
  // Without a namespace, a file's object is in "default", as kubectl apply puts it.
  std::vector<policy::Document> files{
      doc("change.yaml", deployment("", "web", 5, "web")),
      doc("change.yaml", json{{"apiVersion", "v1"},
                              {"kind", "Namespace"},
                              {"metadata", {{"name", "shop"}, {"labels", {{"team", "a"}}}}}})};
  auto merged = overlay(live, files);
  ASSERT_EQ(merged.size(), 3u);
  EXPECT_EQ(merged[0].object["metadata"]["namespace"], "shop") << "live objects the files do not name are kept first";
  EXPECT_EQ(merged[1].source, "change.yaml");
  EXPECT_EQ(merged[1].object["spec"]["replicas"], 5);
  EXPECT_EQ(merged[2].object["metadata"]["labels"]["team"], "a");
}

TEST(Overlay, OnlyTheDatabasesTheFilesConcernAreReportedAndDecideTheExitCode) {
  // Live: database "full" over its 97 (a worst case of (20 + 5) x 5), and "shared" with 75 of 97.
  std::vector<policy::Document> live{doc(kLiveSource, deployment("a", "big", 20, "big")),
                                     doc(kLiveSource, policyOf("a", "p", "big", 5, "full")),
                                     doc(kLiveSource, deployment("b", "ledger", 4, "ledger")),
                                     doc(kLiveSource, policyOf("b", "q", "ledger", 15, "shared"))};
  std::vector<policy::Document> change{doc("change.yaml", deployment("c", "checkout", 2, "checkout")),
                                       doc("change.yaml", policyOf("c", "r", "checkout", 10, "shared"))};
  Loaded loaded;
  loaded.documents = overlay(live, change);
  std::ostringstream out, err;
  EXPECT_EQ(runPlanLive(loaded, kLiveSource, "text", out, err), kExitFailed) << out.str() << err.str();
  EXPECT_NE(out.str().find("b/q"), std::string::npos) << "the other team's policy is in the table: " << out.str();
  EXPECT_EQ(out.str().find("Database full"), std::string::npos) << "a database the change does not touch is left out";

  // An HPA of the files concerns the database of the workload it scales.
  Loaded hpaOnly;
  hpaOnly.documents = overlay(
      live, {doc("hpa.yaml",
                 json{{"apiVersion", "autoscaling/v2"},
                      {"kind", "HorizontalPodAutoscaler"},
                      {"metadata", {{"name", "ledger"}, {"namespace", "b"}}},
                      {"spec",
                       {{"scaleTargetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "ledger"}}},
                        {"maxReplicas", 5}}}})});
  std::ostringstream out2, err2;
  EXPECT_EQ(runPlanLive(hpaOnly, kLiveSource, "text", out2, err2), kExitFailed) << out2.str();
  EXPECT_NE(out2.str().find("Database shared"), std::string::npos) << out2.str();
  EXPECT_EQ(out2.str().find("Database full"), std::string::npos) << out2.str();

  // Nothing but the cluster: every database.
  Loaded all;
  all.documents = live;
  std::ostringstream out3, err3;
  EXPECT_EQ(runPlanLive(all, kLiveSource, "text", out3, err3), kExitFailed) << "database full is over";
  EXPECT_NE(out3.str().find("Database full"), std::string::npos) << out3.str();
}

TEST(Overlay, FilesWithoutANamespaceLandInTheContextsAndAnotherTeamsInvalidPolicyOnlyWarns) {
  std::vector<policy::Document> files{
      doc("change.yaml", deployment("", "web", 5, "web")),
      doc("change.yaml", json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "shop"}}}})};
  placeInNamespace(files, "shop");
  EXPECT_EQ(files[0].object["metadata"]["namespace"], "shop");
  EXPECT_FALSE(files[1].object["metadata"].contains("namespace")) << "a Namespace is cluster scoped";
  auto merged = overlay({doc(kLiveSource, deployment("shop", "web", 2, "web"))}, files);
  ASSERT_EQ(merged.size(), 2u) << "the file's web replaced the live one in the context's namespace";

  // A live policy the API server would refuse today (written before a stricter version) is a warning, not exit 1.
  json invalid = policyOf("b", "old", "ledger", 5, "shared");
  invalid["spec"]["pool"]["maxSize"] = 0;
  Loaded loaded;
  loaded.documents = overlay({doc(kLiveSource, invalid), doc(kLiveSource, deployment("c", "checkout", 2, "checkout"))},
                             {doc("change.yaml", policyOf("c", "r", "checkout", 10, "shared"))});
  std::ostringstream out, err;
  EXPECT_EQ(runPlanLive(loaded, kLiveSource, "text", out, err), kExitOk) << out.str() << err.str();
  EXPECT_NE(err.str().find("warning: cluster: document"), std::string::npos) << err.str();
}

}  // namespace
}  // namespace poolguard::offline
