// The CRD against a real kube-apiserver, and the offline validator against the same corpus
// (tests/testdata/policies): both accept every valid policy and reject every invalid one.
//
// Each invalid file names the expected message with `# expect:`; the API server's stderr must contain it. For
// rules that are CEL rules, unknown fields, required fields, enums, duplicates and sizes, the offline message
// contains the same text. For schema-level bounds and types (minimum, maximum, minLength, minItems, pattern, type)
// the API server words the message itself ("spec.pool.maxSize in body should be ..."); there the file adds
// `# expect-offline:` with the offline wording, which names the field, and both must still reject.
#include <gtest/gtest.h>

#include "policy/parse.h"
#include "support/cluster.h"
#include "support/policy_corpus.h"

namespace poolguard::testing {
namespace {

using policy::json;

const char* kCrdName = "connectionpoolpolicies.poolguard.dev";

class Schema : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto applied = cluster().kubectl({"apply", "-f", sourceDir() + "/crds/"});
    ASSERT_EQ(applied.exitCode, 0) << applied.err;
    auto established = cluster().waitEstablished(std::string("crd/") + kCrdName);
    ASSERT_EQ(established.exitCode, 0) << established.err;
    ns_ = createNamespace("schema");
    // Established can precede discovery by a moment; wait until kubectl can resolve the kind.
    ASSERT_TRUE(eventually(
        [] {
          return cluster().kubectl({"get", "cpol", "-n", ns_}).exitCode == 0;
        },
        std::chrono::seconds(30)));
  }

  static std::string ns_;
};

std::string Schema::ns_;

TEST_F(Schema, ValidPoliciesAreAcceptedByBoth) {
  auto files = policyCorpus(sourceDir(), "valid");
  ASSERT_FALSE(files.empty());
  for (const auto& file : files) {
    SCOPED_TRACE(file.string());
    auto docs = policy::readDocuments(file.string());
    ASSERT_TRUE(docs.ok()) << docs.error().message();
    for (const auto& doc : *docs) {
      auto errors = policy::validate(doc.object);
      EXPECT_TRUE(errors.empty()) << (errors.empty() ? "" : policy::toString(errors[0]));
    }
    auto created = cluster().kubectl({"-n", ns_, "create", "--validate=strict", "-o", "json", "-f", file.string()});
    ASSERT_EQ(created.exitCode, 0) << created.err;
    // What the API server stored is what applyDefaults predicts.
    json stored = json::parse(created.out);
    ASSERT_EQ(docs->size(), 1u);
    EXPECT_EQ(stored["spec"], policy::applyDefaults(docs->front().object)["spec"]);
    auto model = policy::fromJson(stored);
    EXPECT_TRUE(model.ok()) << (model.ok() ? "" : model.error().message());
  }
}

TEST_F(Schema, InvalidPoliciesAreRejectedByBothWithTheExpectedMessage) {
  auto files = policyCorpus(sourceDir(), "invalid");
  ASSERT_GE(files.size(), 30u);
  for (const auto& file : files) {
    SCOPED_TRACE(file.string());
    std::string expect = corpusDirective(file, "expect");
    ASSERT_FALSE(expect.empty()) << "no # expect: line";
    std::string expectOffline = corpusDirective(file, "expect-offline");
    if (expectOffline.empty()) expectOffline = expect;

    auto created = cluster().kubectl({"-n", ns_, "create", "--validate=strict", "-f", file.string()});
    EXPECT_NE(created.exitCode, 0) << "the API server accepted it";
    EXPECT_NE(created.err.find(expect), std::string::npos) << "expected: " << expect << "\nstderr: " << created.err;

    auto docs = policy::readDocuments(file.string());
    std::string offline;
    if (!docs.ok()) {
      offline = docs.error().message();
    } else {
      for (const auto& doc : *docs) {
        for (const auto& e : policy::validate(doc.object)) offline += policy::toString(e) + "\n";
      }
    }
    EXPECT_FALSE(offline.empty()) << "validate accepted it";
    EXPECT_NE(offline.find(expectOffline), std::string::npos) << "expected: " << expectOffline << "\ngot: " << offline;
  }
}

TEST_F(Schema, ExplainDocumentsThePool) {
  auto explained = cluster().kubectl({"explain", "connectionpoolpolicy.spec.pool"});
  ASSERT_EQ(explained.exitCode, 0) << explained.err;
  for (const char* field : {"maxSize", "minIdle", "acquireTimeout", "idleTimeout", "maxLifetime",
                            "leakDetectionThreshold", "processesPerPod"}) {
    EXPECT_NE(explained.out.find(field), std::string::npos) << field << " missing:\n" << explained.out;
  }
  EXPECT_NE(explained.out.find("Connections one pool may hold"), std::string::npos) << explained.out;
  auto viaShortName = cluster().kubectl({"explain", "cpol.spec.usage.postgres.sslMode"});
  EXPECT_EQ(viaShortName.exitCode, 0) << viaShortName.err;
}

TEST_F(Schema, PrinterColumnsAndShortNames) {
  const char* manifest = R"(apiVersion: poolguard.dev/v1alpha1
kind: ConnectionPoolPolicy
metadata: {name: columns}
spec:
  selector: {}
  mode: Audit
  pool: {maxSize: 4}
  database: {name: columns-db}
)";
  auto created = cluster().kubectl({"-n", ns_, "create", "-f", "-"}, manifest);
  ASSERT_EQ(created.exitCode, 0) << created.err;
  auto got = cluster().kubectl({"-n", ns_, "get", "poolpolicy", "columns"});
  ASSERT_EQ(got.exitCode, 0) << got.err;
  for (const char* column : {"MODE", "DATABASE", "MATCHED", "APPLIED", "BUDGET", "READY", "AGE"}) {
    EXPECT_NE(got.out.find(column), std::string::npos) << column << "\n" << got.out;
  }
  EXPECT_NE(got.out.find("Audit"), std::string::npos) << got.out;
  EXPECT_NE(got.out.find("columns-db"), std::string::npos) << got.out;
  auto byCategory = cluster().kubectl({"-n", ns_, "get", "poolguard", "-o", "name"});
  ASSERT_EQ(byCategory.exitCode, 0) << byCategory.err;
  EXPECT_NE(byCategory.out.find("connectionpoolpolicy.poolguard.dev/columns"), std::string::npos) << byCategory.out;
}

TEST_F(Schema, StatusIsASubresourceWithItsOwnSchema) {
  const char* manifest = R"(apiVersion: poolguard.dev/v1alpha1
kind: ConnectionPoolPolicy
metadata: {name: status-sub}
spec:
  selector: {}
  pool: {maxSize: 4}
  database: {name: status-db}
status:
  observedGeneration: 7
)";
  auto created = cluster().kubectl({"-n", ns_, "create", "-o", "json", "-f", "-"}, manifest);
  ASSERT_EQ(created.exitCode, 0) << created.err;
  // The status sent is ignored; what comes back is the CRD's default, which tells kstatus that poolguard has not
  // observed the object yet.
  EXPECT_EQ(json::parse(created.out).value("status", json()), (json{{"observedGeneration", -1}}))
      << "status must be ignored on create, and defaulted";
  const char* patch =
      R"({"status": {"observedGeneration": 1, "budget": {"summary": "40/97"}, "workloads": {"matched": 2},
          "conditions": [{"type": "Ready", "status": "True", "reason": "AllGood", "message": "ok",
                          "lastTransitionTime": "2024-01-01T00:00:00Z", "observedGeneration": 1}]}})";
  auto patched = cluster().kubectl(
      {"-n", ns_, "patch", "cpol", "status-sub", "--subresource=status", "--type=merge", "-p", patch});
  ASSERT_EQ(patched.exitCode, 0) << patched.err;
  auto got = cluster().kubectl({"-n", ns_, "get", "cpol", "status-sub"});
  ASSERT_EQ(got.exitCode, 0) << got.err;
  EXPECT_NE(got.out.find("40/97"), std::string::npos) << got.out;
  EXPECT_NE(got.out.find("True"), std::string::npos) << got.out;
  const char* badState =
      R"({"status": {"workloadStatuses": [{"kind": "Deployment", "name": "a", "state": "Broken"}]}})";
  auto rejected = cluster().kubectl(
      {"-n", ns_, "patch", "cpol", "status-sub", "--subresource=status", "--type=merge", "-p", badState});
  EXPECT_NE(rejected.exitCode, 0);
  EXPECT_NE(rejected.err.find("Unsupported value: \"Broken\""), std::string::npos) << rejected.err;
}

}  // namespace
}  // namespace poolguard::testing
