// Server-side apply with two field managers: shared ownership, conflicts, force, and removal of fields a manager
// stops sending.
#include "helpers.h"

namespace poolguard::kube::testing {
namespace {

using poolguard::testing::createNamespace;

WriteOptions manager(const std::string& name, bool force = false) {
  WriteOptions o;
  o.fieldManager = name;
  o.force = force;
  return o;
}

// The data keys `manager` owns according to metadata.managedFields.
std::set<std::string> ownedDataKeys(const json& obj, const std::string& managerName) {
  std::set<std::string> out;
  for (const auto& entry : obj["metadata"].value("managedFields", json::array())) {
    if (entry.value("manager", "") != managerName) continue;
    const json fields = entry.value("fieldsV1", json::object());
    if (!fields.contains("f:data")) continue;
    for (const auto& [key, _] : fields["f:data"].items()) {
      if (key.rfind("f:", 0) == 0) out.insert(key.substr(2));
    }
  }
  return out;
}

TEST(ServerSideApply, TwoManagers) {
  auto client = adminClient();
  auto cms = resources::configMaps();
  std::string ns = createNamespace("kube-apply");

  auto a1 =
      client->apply(cms, ns, "shared", configMap("shared", {{"a", "1"}, {"shared", "from-a"}}), manager("manager-a"));
  ASSERT_TRUE(a1.ok()) << a1.error().message();

  auto b1 = client->apply(cms, ns, "shared", configMap("shared", {{"b", "2"}}), manager("manager-b"));
  ASSERT_TRUE(b1.ok()) << b1.error().message();
  EXPECT_EQ((*b1)["data"], json({{"a", "1"}, {"b", "2"}, {"shared", "from-a"}}));
  EXPECT_EQ(ownedDataKeys(*b1, "manager-a"), (std::set<std::string>{"a", "shared"}));
  EXPECT_EQ(ownedDataKeys(*b1, "manager-b"), (std::set<std::string>{"b"}));

  // Applying the same value is shared ownership, not a conflict.
  auto b2 =
      client->apply(cms, ns, "shared", configMap("shared", {{"b", "2"}, {"shared", "from-a"}}), manager("manager-b"));
  ASSERT_TRUE(b2.ok()) << b2.error().message();
  EXPECT_EQ(ownedDataKeys(*b2, "manager-a"), (std::set<std::string>{"a", "shared"}));
  EXPECT_EQ(ownedDataKeys(*b2, "manager-b"), (std::set<std::string>{"b", "shared"}));

  auto conflict =
      client->apply(cms, ns, "shared", configMap("shared", {{"b", "2"}, {"shared", "from-b"}}), manager("manager-b"));
  ASSERT_FALSE(conflict.ok());
  EXPECT_EQ(conflict.error().code(), ErrorCode::kConflict) << conflict.error().message();
  EXPECT_EQ(conflict.error().httpStatus(), 409);
  ASSERT_FALSE(conflict.error().causes().empty());
  EXPECT_EQ(conflict.error().causes()[0].reason, "FieldManagerConflict");
  EXPECT_EQ(conflict.error().causes()[0].field, ".data.shared");
  EXPECT_NE(conflict.error().message().find("manager-a"), std::string::npos) << conflict.error().message();

  auto forced = client->apply(cms, ns, "shared", configMap("shared", {{"b", "2"}, {"shared", "from-b"}}),
                              manager("manager-b", /*force=*/true));
  ASSERT_TRUE(forced.ok()) << forced.error().message();
  EXPECT_EQ((*forced)["data"]["shared"], "from-b");
  EXPECT_EQ(ownedDataKeys(*forced, "manager-a"), std::set<std::string>{"a"});
  EXPECT_EQ(ownedDataKeys(*forced, "manager-b"), (std::set<std::string>{"b", "shared"}));

  // manager-a stops sending "a": as its only owner, the field goes. "shared" belongs to manager-b and stays.
  auto a2 = client->apply(cms, ns, "shared", configMap("shared", json::object()), manager("manager-a"));
  ASSERT_TRUE(a2.ok()) << a2.error().message();
  EXPECT_EQ((*a2)["data"], json({{"b", "2"}, {"shared", "from-b"}}));
  EXPECT_TRUE(ownedDataKeys(*a2, "manager-a").empty());
}

TEST(ServerSideApply, NeedsAFieldManager) {
  auto client = adminClient();
  auto r = client->apply(resources::configMaps(), "default", "x", configMap("x", {}), WriteOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
}

TEST(ServerSideApply, DiscardedResponseStillWritesAndReturnsAnEmptyObject) {
  auto client = adminClient();
  std::string ns = createNamespace("kube-apply-discard");
  WriteOptions o = manager("quiet");
  o.discardResponse = true;
  auto r = client->apply(resources::configMaps(), ns, "quiet", configMap("quiet", {{"k", "v"}}), o);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(*r, json::object()) << "the server's answer is not parsed";
  auto live = client->get(resources::configMaps(), ns, "quiet");
  ASSERT_TRUE(live.ok()) << live.error().message();
  EXPECT_EQ((*live)["data"]["k"], "v");
  // Errors are still read from the body.
  auto bad = client->apply(resources::configMaps(), ns, "Not_A_Name", configMap("Not_A_Name", {}), o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalid) << bad.error().message();
}

TEST(ServerSideApply, DryRunLeavesNothing) {
  auto client = adminClient();
  std::string ns = createNamespace("kube-apply-dry");
  WriteOptions o = manager("dry");
  o.dryRun = true;
  auto r = client->apply(resources::configMaps(), ns, "dry", configMap("dry", {{"k", "v"}}), o);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ((*r)["data"]["k"], "v");
  EXPECT_EQ(client->get(resources::configMaps(), ns, "dry").error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace poolguard::kube::testing
