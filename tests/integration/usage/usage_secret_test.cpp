// Credentials from a real Secret, read by name through the operator's Kubernetes client, used against the
// local cluster's PostgreSQL.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "kube/config.h"
#include "kube/rest_client.h"
#include "support/cluster.h"
#include "support/pg_impostor.h"
#include "usage/checker.h"
#include "usage/grant.h"

namespace poolguard::usage {
namespace {

using poolguard::testing::cluster;
using ::testing::HasSubstr;
using ::testing::Not;

std::unique_ptr<kube::RestClient> makeClient() {
  auto config = kube::loadKubeconfig(cluster().kubeconfig);
  if (!config) throw std::runtime_error(config.error().message());
  auto client = kube::makeRestClient(*config);
  if (!client) throw std::runtime_error(client.error().message());
  return std::move(*client);
}

policy::Policy makePolicy(const std::string& ns, const std::string& secret) {
  policy::Policy p;
  p.name = "orders";
  p.namespace_ = ns;
  p.spec.database.name = "orders-db";
  policy::PostgresSource pg;
  pg.host = cluster().pgHost;
  pg.port = cluster().pgPort;
  pg.database = cluster().pgDatabase;
  pg.sslMode = policy::SslMode::kDisable;  // the local cluster's PostgreSQL has no TLS; TLS is tested elsewhere
  pg.credentialsSecretRef.name = secret;
  pg.credentialsSecretRef.usernameKey = "user";
  p.spec.usage.postgres = pg;
  return p;
}

// The Secret pg-monitor with the monitoring role's credentials, allowed for the cluster's PostgreSQL.
void createMonitorSecret(const std::string& ns) {
  auto created = cluster().kubectl({"-n", ns, "create", "secret", "generic", "pg-monitor",
                                    "--from-literal=user=usage_monitor", "--from-literal=password=usage-monitor-pw"});
  ASSERT_EQ(created.exitCode, 0) << created.err;
  auto granted =
      cluster().kubectl({"-n", ns, "annotate", "secret", "pg-monitor",
                         "poolguard.dev/allowed-servers=" + cluster().pgHost + ":" + std::to_string(cluster().pgPort)});
  ASSERT_EQ(granted.exitCode, 0) << granted.err;
}

TEST(UsageSecret, CredentialsComeFromTheNamedSecret) {
  const std::string ns = poolguard::testing::createNamespace("usage");
  auto role = cluster().psql(
      "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'usage_monitor') THEN "
      "CREATE ROLE usage_monitor LOGIN PASSWORD 'usage-monitor-pw'; END IF; END $$; "
      "GRANT pg_monitor TO usage_monitor");
  ASSERT_EQ(role.exitCode, 0) << role.err;
  ASSERT_NO_FATAL_FAILURE(createMonitorSecret(ns));

  auto client = makeClient();
  Checker checker(SystemClock::instance());
  GovernedWorkload w;
  w.namespace_ = ns;
  w.name = "app";
  w.applicationName = ns + "/app";
  w.maxSize = 5;
  auto report = checker.check(makePolicy(ns, "pg-monitor"), {w}, *client);
  EXPECT_EQ(report.result.condition.reason, "Healthy") << report.result.condition.message;
  EXPECT_EQ(report.result.usage.source, "postgres");
  EXPECT_GT(report.result.usage.serverMaxConnections.value_or(0), 0);
  auto seen = cluster().psql(
      "SELECT count(*) FROM pg_stat_activity WHERE usename = 'usage_monitor' AND "
      "application_name = 'poolguard'");
  EXPECT_EQ(seen.out, "1\n");

  auto missing = checker.check(makePolicy(ns, "no-such-secret"), {w}, *client);
  EXPECT_EQ(missing.result.condition.reason, "UsageUnavailable");
  EXPECT_THAT(missing.result.condition.message, HasSubstr("secret " + ns + "/no-such-secret"));
  ASSERT_EQ(missing.errors.size(), 1u);
  EXPECT_EQ(missing.errors[0].code(), ErrorCode::kNotFound);

  auto wrongKey = makePolicy(ns, "pg-monitor");
  wrongKey.spec.usage.postgres->credentialsSecretRef.passwordKey = "pass";
  auto noKey = checker.check(wrongKey, {w}, *client);
  EXPECT_THAT(noKey.result.condition.message, HasSubstr("secret " + ns + "/pg-monitor has no key \"pass\""));
}

TEST(UsageSecret, AServerTheSecretDoesNotNameNeverSeesAConnection) {
  const std::string ns = poolguard::testing::createNamespace("usage");
  ASSERT_NO_FATAL_FAILURE(createMonitorSecret(ns));
  poolguard::testing::PostgresImpostor impostor;
  ASSERT_TRUE(impostor.start());

  auto client = makeClient();
  Checker checker(SystemClock::instance());
  auto policy = makePolicy(ns, "pg-monitor");
  policy.spec.usage.postgres->host = "127.0.0.1";
  policy.spec.usage.postgres->port = impostor.port();
  auto report = checker.check(policy, {}, *client);
  EXPECT_EQ(report.result.condition.reason, "UsageUnavailable");
  EXPECT_THAT(report.result.condition.message, HasSubstr("does not name this server"));
  ASSERT_EQ(report.errors.size(), 1u);
  EXPECT_EQ(report.errors[0].reason(), grant_reasons::kCredentialsNotGranted);
  EXPECT_EQ(impostor.connections(), 0);
  EXPECT_TRUE(impostor.passwords().empty());
  EXPECT_EQ(checker.openPostgresConnections(), 0u);
}

// The policy author chooses which key of the Secret is sent as the user name, and PostgreSQL quotes the user name
// back when it refuses the login: none of it reaches the status, a placeholder names the key instead.
TEST(UsageSecret, NoSecretValueShowsWhenTheUserNameKeyNamesAnotherKey) {
  const std::string ns = poolguard::testing::createNamespace("usage");
  const std::string longValue = "long-secret-" + std::string(68, 'q');  // 80 bytes: PostgreSQL cuts a name to 63
  auto created =
      cluster().kubectl({"-n", ns, "create", "secret", "generic", "pg-leaky", "--from-literal=user=usage_monitor",
                         "--from-literal=password=usage-monitor-pw", "--from-literal=long=" + longValue});
  ASSERT_EQ(created.exitCode, 0) << created.err;
  auto granted =
      cluster().kubectl({"-n", ns, "annotate", "secret", "pg-leaky",
                         "poolguard.dev/allowed-servers=" + cluster().pgHost + ":" + std::to_string(cluster().pgPort)});
  ASSERT_EQ(granted.exitCode, 0) << granted.err;

  auto client = makeClient();
  Checker checker(SystemClock::instance());
  for (const char* key : {"password", "long"}) {
    auto policy = makePolicy(ns, "pg-leaky");
    policy.spec.usage.postgres->credentialsSecretRef.usernameKey = key;
    auto report = checker.check(policy, {}, *client);
    EXPECT_EQ(report.result.condition.reason, "UsageUnavailable") << key;
    ASSERT_EQ(report.errors.size(), 1u) << key;
    EXPECT_EQ(report.errors[0].reason(), postgres_reasons::kAuthFailed) << report.errors[0].message();
    for (const std::string& message : {report.result.condition.message, report.errors[0].message()}) {
      EXPECT_THAT(message, Not(HasSubstr("usage-monitor-pw")));
      EXPECT_THAT(message, Not(HasSubstr("long-secret")));
      EXPECT_THAT(message,
                  HasSubstr("\"<the value of key \"" + std::string(key) + "\" of Secret " + ns + "/pg-leaky>\""));
    }
  }
}

}  // namespace
}  // namespace poolguard::usage
