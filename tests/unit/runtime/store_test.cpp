#include "runtime/store.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace poolguard::runtime {
namespace {

json obj(const std::string& ns, const std::string& name, const std::string& rv, json labels = json::object()) {
  json o = {{"metadata", {{"namespace", ns}, {"name", name}, {"resourceVersion", rv}}}};
  if (!labels.empty()) o["metadata"]["labels"] = labels;
  return o;
}

// The record an informer without a typed decoder stores.
ObjectPtr rec(json j) { return decodeJsonObject(std::move(j)); }
const json& valueOf(const ObjectPtr& p) { return recordAs<JsonObject>(p)->value; }

std::vector<std::string> names(const std::vector<ObjectPtr>& objs) {
  std::vector<std::string> out;
  for (const auto& o : objs) out.push_back(o->meta.name);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> describe(const std::vector<StoreChange>& changes) {
  std::vector<std::string> out;
  for (const auto& c : changes) {
    const char* t = c.type == StoreChange::Type::kAdded     ? "add"
                    : c.type == StoreChange::Type::kUpdated ? "update"
                                                            : "delete";
    out.push_back(std::string(t) + " " + c.key);
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Store, CompactsManagedFieldsAndLastAppliedAnnotation) {
  Store s;
  json o = obj("a", "x", "1");
  o["metadata"]["managedFields"] = json::array({{{"manager", "kubectl"}}});
  o["metadata"]["annotations"] = {{"kubectl.kubernetes.io/last-applied-configuration", "{...}"}, {"keep", "me"}};
  o["spec"] = {{"replicas", 3}};
  (void)s.apply(rec(o));
  auto got = s.get("a/x");
  ASSERT_TRUE(got);
  EXPECT_FALSE(valueOf(got)["metadata"].contains("managedFields"));
  EXPECT_EQ(valueOf(got)["metadata"]["annotations"], (json{{"keep", "me"}}));
  EXPECT_EQ(got->meta.annotations, (std::map<std::string, std::string>{{"keep", "me"}}));
  EXPECT_EQ(valueOf(got)["spec"]["replicas"], 3);
}

TEST(Store, DropsAnAnnotationsMapLeftEmpty) {
  json o = obj("a", "x", "1");
  o["metadata"]["annotations"] = {{"kubectl.kubernetes.io/last-applied-configuration", "{}"}};
  EXPECT_FALSE(compactObject(o)["metadata"].contains("annotations"));
}

TEST(Store, DecodedRecordsCarryTheMetadataReadLeniently) {
  json o = obj("a", "x", "7", {{"app", "web"}, {"replicas", 3}});
  o["metadata"]["uid"] = "u-1";
  o["metadata"]["generation"] = 4;
  o["metadata"]["finalizers"] = json::array({"keep", 1});
  o["metadata"]["deletionTimestamp"] = 5;
  auto r = rec(o);
  EXPECT_EQ(r->meta.namespace_, "a");
  EXPECT_EQ(r->meta.name, "x");
  EXPECT_EQ(r->meta.resourceVersion, "7");
  EXPECT_EQ(r->meta.uid, "u-1");
  EXPECT_EQ(r->meta.generation, 4);
  // A field of another type counts as absent.
  EXPECT_EQ(r->meta.labels, (std::map<std::string, std::string>{{"app", "web"}}));
  EXPECT_EQ(r->meta.finalizers, (std::vector<std::string>{"keep"}));
  EXPECT_EQ(r->meta.deletionTimestamp, "");
  EXPECT_EQ(metaOf(json{{"metadata", "x"}}), kube::ObjectMeta{});
  EXPECT_EQ(valueOf(r), o) << "the record keeps the object";
}

TEST(Store, KeysAreNamespaceSlashNameOrNameForClusterScoped) {
  EXPECT_EQ(objectKey(obj("ns", "n", "1")), "ns/n");
  EXPECT_EQ(objectKey(json{{"metadata", {{"name", "node1"}}}}), "node1");
  EXPECT_EQ(objectKey(*rec(obj("ns", "n", "1"))), "ns/n");
  EXPECT_EQ(objectKey(*rec(json{{"metadata", {{"name", "node1"}}}})), "node1");
  EXPECT_EQ(splitKey("ns/n"), (std::pair<std::string, std::string>{"ns", "n"}));
  EXPECT_EQ(splitKey("node1"), (std::pair<std::string, std::string>{"", "node1"}));
}

TEST(Store, ApplyReportsAddThenUpdateButNotTheSameResourceVersionTwice) {
  Store s;
  auto add = s.apply(rec(obj("a", "x", "1")));
  ASSERT_TRUE(add);
  EXPECT_EQ(add->type, StoreChange::Type::kAdded);
  EXPECT_FALSE(s.apply(rec(obj("a", "x", "1"))));
  auto upd = s.apply(rec(obj("a", "x", "2")));
  ASSERT_TRUE(upd);
  EXPECT_EQ(upd->type, StoreChange::Type::kUpdated);
  EXPECT_EQ(upd->oldObject->meta.resourceVersion, "1");
  EXPECT_EQ(upd->object->meta.resourceVersion, "2");
  auto del = s.remove("a/x");
  ASSERT_TRUE(del);
  EXPECT_EQ(del->type, StoreChange::Type::kDeleted);
  EXPECT_EQ(del->oldObject->meta.resourceVersion, "2");
  EXPECT_EQ(s.size(), 0u);
  EXPECT_FALSE(s.remove("a/x"));
}

TEST(Store, SnapshotsHandedToReadersDoNotChange) {
  Store s;
  (void)s.apply(rec(obj("a", "x", "1")));
  auto before = s.get("a/x");
  (void)s.apply(rec(obj("a", "x", "2")));
  EXPECT_EQ(before->meta.resourceVersion, "1");
  EXPECT_EQ(valueOf(before)["metadata"]["resourceVersion"], "1");
  EXPECT_EQ(s.get("a/x")->meta.resourceVersion, "2");
}

TEST(Store, ReplaceDiffsAgainstTheCacheAndDeletesWhatVanished) {
  Store s;
  (void)s.apply(rec(obj("a", "keep", "1")));
  (void)s.apply(rec(obj("a", "change", "1")));
  (void)s.apply(rec(obj("b", "gone", "1")));
  auto changes = s.replace({rec(obj("a", "keep", "1")), rec(obj("a", "change", "2")), rec(obj("c", "new", "1"))});
  EXPECT_EQ(describe(changes), (std::vector<std::string>{"add c/new", "delete b/gone", "update a/change"}));
  EXPECT_EQ(s.size(), 3u);
  EXPECT_FALSE(s.get("b/gone"));
  EXPECT_TRUE(s.listInNamespace("b").empty());
}

TEST(Store, ScopedReplaceOnlyDeletesInItsNamespace) {
  Store s;
  (void)s.apply(rec(obj("a", "x", "1")));
  (void)s.apply(rec(obj("b", "y", "1")));
  auto changes = s.replace({}, std::string("a"));
  EXPECT_EQ(describe(changes), (std::vector<std::string>{"delete a/x"}));
  EXPECT_TRUE(s.get("b/y"));
}

TEST(Store, ListsByNamespaceAndPredicateAndLabelSelector) {
  Store s;
  (void)s.apply(rec(obj("a", "web", "1", {{"app", "web"}, {"tier", "front"}})));
  (void)s.apply(rec(obj("a", "db", "1", {{"app", "db"}})));
  (void)s.apply(rec(obj("b", "web", "1", {{"app", "web"}})));
  EXPECT_EQ(names(s.listInNamespace("a")), (std::vector<std::string>{"db", "web"}));
  EXPECT_EQ(names(s.listInNamespace("a", [](const kube::Object& o) { return o.meta.name == "db"; })),
            (std::vector<std::string>{"db"}));
  EXPECT_EQ(names(s.listMatchingLabels("a", LabelSelector{{{"app", "web"}}, {}})), (std::vector<std::string>{"web"}));
  EXPECT_EQ(names(s.listMatchingLabels("a", LabelSelector{{}, {{"tier", "Exists", {}}}})),
            (std::vector<std::string>{"web"}));
  EXPECT_EQ(names(s.listMatchingLabels("a", LabelSelector{})), (std::vector<std::string>{"db", "web"}));
  EXPECT_TRUE(s.listMatchingLabels("a", LabelSelector{{{"app", "api"}}, {}}).empty());
  EXPECT_EQ(s.list().size(), 3u);
}

TEST(Store, SecondaryIndexFollowsUpdatesAndDeletes) {
  const std::string index = "target";
  auto targetKey = [](const std::string& ns, const std::string& kind, const std::string& name) {
    return ns + "/" + kind + "/" + name;
  };
  Store s;
  s.addIndex(index, [&](const kube::Object& o) -> std::vector<std::string> {
    const json& ref = recordAs<JsonObject>(o).value["spec"]["scaleTargetRef"];
    return {targetKey(o.meta.namespace_, ref["kind"].get<std::string>(), ref["name"].get<std::string>())};
  });
  auto hpa = [](const std::string& name, const std::string& rv, const std::string& kind, const std::string& target) {
    json o = obj("a", name, rv);
    o["spec"] = {{"scaleTargetRef", {{"apiVersion", "apps/v1"}, {"kind", kind}, {"name", target}}}};
    return rec(std::move(o));
  };
  (void)s.apply(hpa("h1", "1", "Deployment", "web"));
  (void)s.apply(hpa("h2", "1", "StatefulSet", "web"));
  EXPECT_EQ(names(s.byIndex(index, targetKey("a", "Deployment", "web"))), (std::vector<std::string>{"h1"}));
  (void)s.apply(hpa("h1", "2", "Deployment", "api"));
  EXPECT_TRUE(s.byIndex(index, targetKey("a", "Deployment", "web")).empty());
  EXPECT_EQ(names(s.byIndex(index, targetKey("a", "Deployment", "api"))), (std::vector<std::string>{"h1"}));
  (void)s.remove("a/h1");
  EXPECT_TRUE(s.byIndex(index, targetKey("a", "Deployment", "api")).empty());
  EXPECT_TRUE(s.byIndex("no-such-index", "x").empty());
  // The index is namespaced: a same-named target elsewhere is another key.
  EXPECT_TRUE(s.byIndex(index, targetKey("b", "StatefulSet", "web")).empty());
  EXPECT_EQ(names(s.byIndex(index, targetKey("a", "StatefulSet", "web"))), (std::vector<std::string>{"h2"}));
}

}  // namespace
}  // namespace poolguard::runtime
