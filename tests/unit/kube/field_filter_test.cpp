// Fields kept while parsing: what is not kept never becomes a DOM node.
#include "kube/field_filter.h"

#include <gtest/gtest.h>

namespace poolguard::kube {
namespace {

using json = nlohmann::json;

const char* kDeployment = R"({
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "7",
               "labels": {"app": "web"},
               "annotations": {"poolguard.dev/policy": "p", "kubectl.kubernetes.io/last-applied-configuration": "{...}"},
               "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
  "spec": {"replicas": 3, "progressDeadlineSeconds": 600,
           "template": {"spec": {"containers": [
             {"name": "app", "image": "x", "env": [{"name": "A", "value": "1"}], "resources": {"limits": {"cpu": "1"}}},
             {"name": "side", "image": "y"}]}}},
  "status": {"replicas": 3, "conditions": [{"type": "Available", "status": "True"}]}
})";

FieldFilter workloadFilter() {
  return FieldFilter::only()
      .keep("kind")
      .keep("metadata", FieldFilter::only()
                            .keep("name")
                            .keep("namespace")
                            .keep("resourceVersion")
                            .keep("labels")
                            .keep("annotations", FieldFilter::only().keepPrefix("poolguard.dev/")))
      .keep("spec",
            FieldFilter::only()
                .keep("replicas")
                .keep("template", FieldFilter::only().keep(
                                      "spec", FieldFilter::only().keep("containers",
                                                                       FieldFilter::only().keep("name").keep("env")))));
}

TEST(FieldFilter, KeepsOnlyTheNamedFieldsDownToArrayElements) {
  json kept = workloadFilter().parse(kDeployment);
  ASSERT_FALSE(kept.is_discarded());
  json want = R"({
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "7", "labels": {"app": "web"},
                 "annotations": {"poolguard.dev/policy": "p"}},
    "spec": {"replicas": 3, "template": {"spec": {"containers": [
      {"name": "app", "env": [{"name": "A", "value": "1"}]}, {"name": "side"}]}}}
  })"_json;
  EXPECT_EQ(kept, want) << kept.dump(2);
}

TEST(FieldFilter, AllKeepsEverythingButWhatItDrops) {
  json kept =
      FieldFilter::only().keep("metadata", FieldFilter::all().drop("managedFields")).keep("spec").parse(kDeployment);
  json full = json::parse(kDeployment);
  EXPECT_FALSE(kept["metadata"].contains("managedFields"));
  EXPECT_EQ(kept["metadata"]["annotations"], full["metadata"]["annotations"]);
  EXPECT_EQ(kept["spec"], full["spec"]) << "everything below a kept key";
  EXPECT_FALSE(kept.contains("status"));
}

TEST(FieldFilter, ListsAndWatchEventsKeepTheirEnvelope) {
  std::string list =
      std::string(R"({"apiVersion":"apps/v1","kind":"DeploymentList","metadata":{"resourceVersion":"9",)") +
      R"("continue":"abc","remainingItemCount":5},"items":[)" + kDeployment + "," + kDeployment + "]}";
  json page = FieldFilter::listOf(workloadFilter()).parse(list);
  ASSERT_EQ(page["items"].size(), 2u);
  EXPECT_EQ(page["metadata"], (json{{"resourceVersion", "9"}, {"continue", "abc"}}));
  EXPECT_FALSE(page["items"][1].contains("status"));

  std::string event = std::string(R"({"type":"MODIFIED","object":)") + kDeployment + "}";
  json e = FieldFilter::watchEventOf(workloadFilter()).parse(event);
  EXPECT_EQ(e["type"], "MODIFIED");
  EXPECT_EQ(e["object"]["spec"]["replicas"], 3);
  EXPECT_FALSE(e["object"]["metadata"].contains("managedFields"));
}

TEST(FieldFilter, ScalarsAtAnyPlaceAndMalformedText) {
  EXPECT_EQ(FieldFilter::only().keep("a").parse(R"({"a": [1, 2.5, null, true, "s"], "b": {"c": [1]}})"),
            (json{{"a", {1, 2.5, nullptr, true, "s"}}}));
  EXPECT_TRUE(FieldFilter::all().parse("{\"a\": ").is_discarded());
  EXPECT_TRUE(FieldFilter::all().parse("").is_discarded());
  EXPECT_TRUE(FieldFilter::all().parse("{} trailing").is_discarded());
  EXPECT_EQ(FieldFilter::all().parse("[1,{\"x\":[]}]"), json::parse("[1,{\"x\":[]}]"));
}

}  // namespace
}  // namespace poolguard::kube
