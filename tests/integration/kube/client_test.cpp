// CRUD, patches, typed errors, status subresource and pagination against the real API server.
#include <mutex>
#include <set>

#include "helpers.h"

namespace poolguard::kube::testing {
namespace {

using poolguard::testing::createNamespace;
using poolguard::testing::eventually;

TEST(KubeClient, ConfigMapCrud) {
  auto client = adminClient();
  auto cms = resources::configMaps();
  std::string ns = createNamespace("kube-crud");

  auto created = client->create(cms, ns, configMap("settings", {{"pool", "10"}}));
  ASSERT_TRUE(created.ok()) << created.error().message();
  EXPECT_EQ((*created)["data"]["pool"], "10");
  std::string rv = (*created)["metadata"]["resourceVersion"];

  auto again = client->create(cms, ns, configMap("settings", {{"pool", "10"}}));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists) << again.error().message();
  EXPECT_EQ(again.error().httpStatus(), 409);

  auto got = client->get(cms, ns, "settings");
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_EQ((*got)["metadata"]["uid"], (*created)["metadata"]["uid"]);

  json changed = *got;
  changed["data"]["pool"] = "20";
  auto updated = client->update(cms, ns, changed);
  ASSERT_TRUE(updated.ok()) << updated.error().message();
  EXPECT_EQ((*updated)["data"]["pool"], "20");
  EXPECT_NE((*updated)["metadata"]["resourceVersion"], rv);

  // The same update again carries a stale resourceVersion now.
  auto stale = client->update(cms, ns, changed);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code(), ErrorCode::kConflict) << stale.error().message();

  auto merged =
      client->patch(cms, ns, "settings", PatchType::kMerge, {{"data", {{"extra", "yes"}, {"pool", nullptr}}}});
  ASSERT_TRUE(merged.ok()) << merged.error().message();
  EXPECT_EQ((*merged)["data"], json({{"extra", "yes"}}));

  auto jsonPatched = client->patch(cms, ns, "settings", PatchType::kJson,
                                   json::array({{{"op", "add"}, {"path", "/data/pool"}, {"value", "30"}}}));
  ASSERT_TRUE(jsonPatched.ok()) << jsonPatched.error().message();
  EXPECT_EQ((*jsonPatched)["data"]["pool"], "30");

  auto failedTest = client->patch(cms, ns, "settings", PatchType::kJson,
                                  json::array({{{"op", "test"}, {"path", "/data/pool"}, {"value", "31"}}}));
  ASSERT_FALSE(failedTest.ok());
  EXPECT_FALSE(failedTest.error().retryable());

  auto strategic =
      client->patch(cms, ns, "settings", PatchType::kStrategicMerge, {{"metadata", {{"labels", {{"team", "db"}}}}}});
  ASSERT_TRUE(strategic.ok()) << strategic.error().message();
  EXPECT_EQ((*strategic)["metadata"]["labels"]["team"], "db");
  EXPECT_EQ((*strategic)["data"]["pool"], "30");

  ASSERT_TRUE(client->remove(cms, ns, "settings").ok());
  auto gone = client->get(cms, ns, "settings");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(gone.error().httpStatus(), 404);
  EXPECT_NE(gone.error().message().find("\"settings\" not found"), std::string::npos) << gone.error().message();

  auto removeAgain = client->remove(cms, ns, "settings");
  ASSERT_FALSE(removeAgain.ok());
  EXPECT_EQ(removeAgain.error().code(), ErrorCode::kNotFound);
}

struct CountingObserver final : RequestObserver {
  std::mutex mu;
  std::vector<std::string> seen;  // "VERB resource code"
  void observe(std::string_view verb, std::string_view resource, int code, double) override {
    std::lock_guard lock(mu);
    seen.push_back(std::string(verb) + " " + std::string(resource) + " " + std::to_string(code));
  }
};

TEST(KubeClient, ReportsRequestsToTheObserver) {
  auto observer = std::make_shared<CountingObserver>();
  RestClientOptions options;
  options.observer = observer;
  auto client = clientFor(adminConfig(), options);
  ASSERT_TRUE(client->get(resources::namespaces(), "", "default").ok());
  ASSERT_FALSE(client->get(resources::configMaps(), "default", "no-such-configmap").ok());
  EXPECT_EQ(observer->seen, (std::vector<std::string>{"GET namespaces 200", "GET configmaps 404"}));
}

TEST(KubeClient, DryRunDoesNotPersist) {
  auto client = adminClient();
  std::string ns = createNamespace("kube-dryrun");
  WriteOptions dry;
  dry.dryRun = true;
  auto created = client->create(resources::configMaps(), ns, configMap("ghost", {{"a", "b"}}), dry);
  ASSERT_TRUE(created.ok()) << created.error().message();
  EXPECT_EQ((*created)["data"]["a"], "b");
  auto got = client->get(resources::configMaps(), ns, "ghost");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), ErrorCode::kNotFound);
}

TEST(KubeClient, InvalidObjectCarriesCauses) {
  auto client = adminClient();
  std::string ns = createNamespace("kube-invalid");
  auto created = client->create(resources::configMaps(), ns, configMap("Not_A_Valid_Name", {}));
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().code(), ErrorCode::kInvalid) << created.error().message();
  EXPECT_EQ(created.error().httpStatus(), 422);
  ASSERT_FALSE(created.error().causes().empty());
  EXPECT_EQ(created.error().causes()[0].field, "metadata.name");
  EXPECT_EQ(created.error().causes()[0].reason, "FieldValueInvalid");
}

TEST(KubeClient, MissingNamespaceIsNotFound) {
  auto client = adminClient();
  auto created = client->create(resources::configMaps(), "no-such-namespace-here", configMap("x", {}));
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().code(), ErrorCode::kNotFound) << created.error().message();
}

TEST(KubeClient, PaginatesSevenObjectsInPagesOfTwo) {
  auto client = adminClient();
  auto cms = resources::configMaps();
  std::string ns = createNamespace("kube-pages");
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(client->create(cms, ns, configMap("item-" + std::to_string(i), {}, {{"paged", "yes"}})).ok());
  }
  // One object without the label, so the selector is shown to apply.
  ASSERT_TRUE(client->create(cms, ns, configMap("unlabelled", {})).ok());

  ListOptions opts;
  opts.limit = 2;
  opts.labelSelector = "paged=yes";
  std::vector<size_t> pageSizes;
  std::set<std::string> seen;
  while (true) {
    auto page = client->list(cms, ns, opts);
    ASSERT_TRUE(page.ok()) << page.error().message();
    pageSizes.push_back((*page)["items"].size());
    for (const auto& item : (*page)["items"]) seen.insert(item["metadata"]["name"].get<std::string>());
    opts.continueToken = (*page)["metadata"].value("continue", "");
    if (opts.continueToken.empty()) break;
    ASSERT_LT(pageSizes.size(), 10u) << "pagination does not end";
  }
  EXPECT_EQ(pageSizes, (std::vector<size_t>{2, 2, 2, 1}));
  EXPECT_EQ(seen.size(), 7u);
  EXPECT_EQ(seen.count("unlabelled"), 0u);

  ListOptions all;
  all.limit = 2;
  all.labelSelector = "paged=yes";
  auto everything = listAll(*client, cms, ns, all);
  ASSERT_TRUE(everything.ok()) << everything.error().message();
  EXPECT_EQ(everything->items.size(), 7u);
  EXPECT_FALSE(everything->resourceVersion.empty());
}

const Resource kGadgets{"kubetest.poolguard.dev", "v1", "gadgets", "Gadget", true};
const Resource kCrds{"apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", false};

json gadgetCrd() {
  json schema = {{"type", "object"},
                 {"properties",
                  {{"spec", {{"type", "object"}, {"properties", {{"size", {{"type", "integer"}}}}}}},
                   {"status", {{"type", "object"}, {"properties", {{"phase", {{"type", "string"}}}}}}}}}};
  return {{"apiVersion", "apiextensions.k8s.io/v1"},
          {"kind", "CustomResourceDefinition"},
          {"metadata", {{"name", "gadgets.kubetest.poolguard.dev"}}},
          {"spec",
           {{"group", "kubetest.poolguard.dev"},
            {"scope", "Namespaced"},
            {"names", {{"plural", "gadgets"}, {"singular", "gadget"}, {"kind", "Gadget"}}},
            {"versions", json::array({{{"name", "v1"},
                                       {"served", true},
                                       {"storage", true},
                                       {"subresources", {{"status", json::object()}}},
                                       {"schema", {{"openAPIV3Schema", schema}}}}})}}}};
}

// Applies the test CRD with this client and waits until Gadgets are served.
void ensureGadgetCrd(Client& client, const std::string& ns) {
  WriteOptions apply;
  apply.fieldManager = "kube-integration-test";
  apply.force = true;
  auto crd = client.apply(kCrds, "", "gadgets.kubetest.poolguard.dev", gadgetCrd(), apply);
  ASSERT_TRUE(crd.ok()) << crd.error().message();
  bool served = eventually([&] { return client.list(kGadgets, ns).ok(); }, std::chrono::seconds(60));
  ASSERT_TRUE(served) << "gadgets are not served";
}

TEST(KubeClient, ListsAndWatchesParseOnlyTheFieldsAsked) {
  auto client = adminClient();
  auto cms = resources::configMaps();
  std::string ns = createNamespace("kube-fields");
  ASSERT_TRUE(client->create(cms, ns, configMap("kept", {{"big", std::string(4096, 'x')}}, {{"app", "web"}})).ok());
  const FieldFilter item =
      FieldFilter::only().keep("metadata", FieldFilter::only().keep("name").keep("resourceVersion").keep("labels"));

  ListOptions lo;
  lo.labelSelector = "app=web";  // not the namespace's kube-root-ca.crt
  lo.fields = std::make_shared<const FieldFilter>(FieldFilter::listOf(item));
  auto page = client->list(cms, ns, lo);
  ASSERT_TRUE(page.ok()) << page.error().message();
  ASSERT_EQ((*page)["items"].size(), 1u);
  const json& got = (*page)["items"][0];
  EXPECT_EQ(got, (json{{"metadata",
                        {{"name", "kept"},
                         {"resourceVersion", got["metadata"].value("resourceVersion", "")},
                         {"labels", {{"app", "web"}}}}}}));
  EXPECT_FALSE((*page)["metadata"].value("resourceVersion", "").empty()) << "the list's own resourceVersion stays";

  WatchOptions wo;
  wo.resourceVersion = (*page)["metadata"].value("resourceVersion", "");
  wo.timeout = std::chrono::seconds(30);
  wo.fields = std::make_shared<const FieldFilter>(FieldFilter::watchEventOf(item));
  auto watch = client->watch(cms, ns, wo);
  ASSERT_TRUE(watch.ok()) << watch.error().message();
  ASSERT_TRUE(client->create(cms, ns, configMap("later", {{"big", std::string(4096, 'y')}})).ok());
  auto e = (*watch)->next();
  ASSERT_TRUE(e.ok() && e->has_value()) << (e.ok() ? "stream ended" : e.error().message());
  EXPECT_EQ((*e)->type, WatchEventType::kAdded);
  EXPECT_EQ((*e)->object["metadata"].value("name", ""), "later");
  EXPECT_FALSE((*e)->object.contains("data"));
  EXPECT_FALSE((*e)->object["metadata"].contains("managedFields"));
  (*watch)->cancel();
}

TEST(KubeClient, StatusSubresourceAndMainResourceIgnoreEachOther) {
  auto client = adminClient();
  std::string ns = createNamespace("kube-status");
  ensureGadgetCrd(*client, ns);
  if (HasFatalFailure()) return;

  json gadget = {{"apiVersion", "kubetest.poolguard.dev/v1"},
                 {"kind", "Gadget"},
                 {"metadata", {{"name", "g1"}}},
                 {"spec", {{"size", 1}}},
                 {"status", {{"phase", "SetOnCreate"}}}};
  auto created = client->create(kGadgets, ns, gadget);
  ASSERT_TRUE(created.ok()) << created.error().message();
  EXPECT_FALSE(created->contains("status")) << "status is dropped on create: " << created->dump();

  json statusWrite = *created;
  statusWrite["spec"]["size"] = 99;
  statusWrite["status"] = {{"phase", "Ready"}};
  WriteOptions toStatus;
  toStatus.subresource = "status";
  auto viaStatus = client->update(kGadgets, ns, statusWrite, toStatus);
  ASSERT_TRUE(viaStatus.ok()) << viaStatus.error().message();
  EXPECT_EQ((*viaStatus)["status"]["phase"], "Ready");
  EXPECT_EQ((*viaStatus)["spec"]["size"], 1) << "the status subresource ignores spec";

  json mainWrite = *viaStatus;
  mainWrite["spec"]["size"] = 2;
  mainWrite["status"]["phase"] = "WrittenThroughMain";
  auto viaMain = client->update(kGadgets, ns, mainWrite);
  ASSERT_TRUE(viaMain.ok()) << viaMain.error().message();
  EXPECT_EQ((*viaMain)["spec"]["size"], 2);
  EXPECT_EQ((*viaMain)["status"]["phase"], "Ready") << "the main resource ignores status";

  auto patched = client->patch(kGadgets, ns, "g1", PatchType::kMerge, {{"status", {{"phase", "Patched"}}}}, toStatus);
  ASSERT_TRUE(patched.ok()) << patched.error().message();
  EXPECT_EQ((*patched)["status"]["phase"], "Patched");

  WriteOptions applyStatus = toStatus;
  applyStatus.fieldManager = "status-writer";
  applyStatus.force = true;
  auto applied = client->apply(kGadgets, ns, "g1",
                               {{"apiVersion", "kubetest.poolguard.dev/v1"},
                                {"kind", "Gadget"},
                                {"metadata", {{"name", "g1"}}},
                                {"status", {{"phase", "Applied"}}}},
                               applyStatus);
  ASSERT_TRUE(applied.ok()) << applied.error().message();
  EXPECT_EQ((*applied)["status"]["phase"], "Applied");
  EXPECT_EQ((*applied)["spec"]["size"], 2);

  auto read = client->get(kGadgets, ns, "g1", "status");
  ASSERT_TRUE(read.ok()) << read.error().message();
  EXPECT_EQ((*read)["status"]["phase"], "Applied");
}

}  // namespace
}  // namespace poolguard::kube::testing
