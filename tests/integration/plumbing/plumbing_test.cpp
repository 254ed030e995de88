// The local control plane is real: a CRD applied with kubectl is served, objects round-trip through etcd,
// the controller manager turns a Deployment into a ReplicaSet, and PostgreSQL answers.
#include <gtest/gtest.h>

#include "support/cluster.h"

namespace poolguard::testing {
namespace {

const char* kWidgetCrd = R"(apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.plumbing.poolguard.dev
spec:
  group: plumbing.poolguard.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, minimum: 1}
)";

TEST(Plumbing, ServerReportsPinnedVersion) {
  auto r = cluster().kubectl({"version", "-o", "json"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("\"gitVersion\": \"v1.35."), std::string::npos) << r.out;
}

TEST(Plumbing, CrdRoundTrip) {
  auto applied = cluster().kubectl({"apply", "-f", "-"}, kWidgetCrd);
  ASSERT_EQ(applied.exitCode, 0) << applied.err;
  auto est = cluster().waitEstablished("crd/widgets.plumbing.poolguard.dev");
  ASSERT_EQ(est.exitCode, 0) << est.err;

  std::string ns = createNamespace("plumbing");
  auto created = cluster().kubectl({"-n", ns, "create", "-f", "-"},
                                   "apiVersion: plumbing.poolguard.dev/v1\nkind: Widget\nmetadata: {name: w1}\n"
                                   "spec: {size: 7}\n");
  ASSERT_EQ(created.exitCode, 0) << created.err;
  auto got = cluster().kubectl({"-n", ns, "get", "widget", "w1", "-o", "jsonpath={.spec.size}"});
  ASSERT_EQ(got.exitCode, 0) << got.err;
  EXPECT_EQ(got.out, "7");

  // The schema is enforced by the real API server.
  auto bad = cluster().kubectl({"-n", ns, "create", "-f", "-"},
                               "apiVersion: plumbing.poolguard.dev/v1\nkind: Widget\nmetadata: {name: w2}\n"
                               "spec: {size: 0}\n");
  EXPECT_NE(bad.exitCode, 0);
  EXPECT_NE(bad.err.find("spec.size"), std::string::npos) << bad.err;
}

TEST(Plumbing, ControllerManagerCreatesReplicaSet) {
  std::string ns = createNamespace("plumbing");
  auto r = cluster().kubectl({"-n", ns, "create", "deployment", "web", "--image=registry.invalid/web:1"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  bool hasReplicaSet = eventually(
      [&] {
        auto rs = cluster().kubectl({"-n", ns, "get", "replicasets", "-l", "app=web", "-o", "name"});
        return rs.exitCode == 0 && rs.out.find("replicaset.apps/web-") != std::string::npos;
      },
      std::chrono::seconds(60));
  EXPECT_TRUE(hasReplicaSet);
}

TEST(Plumbing, PostgresAnswers) {
  auto r = cluster().psql("SELECT current_setting('max_connections')::int > 0, current_user");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out, "t|" + cluster().pgUser + "\n");
}

}  // namespace
}  // namespace poolguard::testing
