// Where a Secret's contents may go (poolguard.dev/allowed-servers) and which Prometheus URLs a policy may use.
#include "usage/grant.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace poolguard::usage {
namespace {

using ::testing::HasSubstr;

kube::json secretWith(const std::string& allowed) {
  return {{"metadata", {{"name", "pg"}, {"annotations", {{kAllowedServersAnnotation, allowed}}}}}};
}

policy::PostgresSource at(const std::string& host, int port, policy::SslMode mode) {
  policy::PostgresSource s;
  s.host = host;
  s.port = port;
  s.sslMode = mode;
  return s;
}

TEST(AllowedServers, ParsesNamesAddressesPortsAndWildcards) {
  auto g = parseAllowedServers(" db.shop.svc:6432,DB-2.shop.svc. ,10.0.0.7:5433\n[fd00::1]:5432 *.pg.internal");
  ASSERT_TRUE(g.ok()) << g.error().message();
  ASSERT_EQ(g->size(), 5u);
  EXPECT_EQ((*g)[0].host, "db.shop.svc");
  EXPECT_EQ((*g)[0].port, 6432);
  EXPECT_EQ((*g)[1].host, "db-2.shop.svc") << "lower case, no trailing dot";
  EXPECT_EQ((*g)[1].port, 5432) << "PostgreSQL's port by default";
  EXPECT_EQ((*g)[2].host, "10.0.0.7");
  EXPECT_EQ((*g)[3].host, "fd00::1");
  EXPECT_TRUE((*g)[4].pattern);
  EXPECT_EQ((*g)[4].host, ".pg.internal");
}

TEST(AllowedServers, RejectsWhatCannotBeAServer) {
  for (const char* bad :
       {"db:0", "db:65536", "db:http", "db:", "fd00::1", "[fd00::1", "a*.b", "*", "*.", "d;b", "db/x", "[zz]:1"}) {
    auto g = parseAllowedServers(bad);
    EXPECT_FALSE(g.ok()) << bad;
    if (!g.ok()) {
      EXPECT_THAT(g.error().message(), HasSubstr("entry \"")) << bad;
    }
  }
}

TEST(SecretGrant, AnExplicitEntryAllowsItsServerWithAnySslMode) {
  auto secret = secretWith("db.shop.svc:5432, 10.0.0.7");
  for (auto mode : {policy::SslMode::kDisable, policy::SslMode::kRequire, policy::SslMode::kVerifyCa,
                    policy::SslMode::kVerifyFull}) {
    EXPECT_TRUE(checkSecretGrant(secret, "shop", "pg", at("DB.shop.svc", 5432, mode)).ok());
    EXPECT_TRUE(checkSecretGrant(secret, "shop", "pg", at("10.0.0.7", 5432, mode)).ok());
  }
  auto otherPort = checkSecretGrant(secret, "shop", "pg", at("db.shop.svc", 6432, policy::SslMode::kVerifyFull));
  ASSERT_FALSE(otherPort.ok());
  EXPECT_THAT(otherPort.error().message(), HasSubstr("add db.shop.svc:6432 to it"));
  EXPECT_FALSE(checkSecretGrant(secret, "shop", "pg", at("db.shop.svc.evil", 5432, policy::SslMode::kVerifyFull)).ok());
}

TEST(SecretGrant, AWildcardHoldsOnlyForServersThatProveTheirName) {
  auto secret = secretWith("*.pg.internal:5432");
  EXPECT_TRUE(checkSecretGrant(secret, "shop", "pg", at("a.pg.internal", 5432, policy::SslMode::kVerifyFull)).ok());
  EXPECT_FALSE(checkSecretGrant(secret, "shop", "pg", at("pg.internal", 5432, policy::SslMode::kVerifyFull)).ok())
      << "*.suffix needs a label before the suffix";
  EXPECT_FALSE(checkSecretGrant(secret, "shop", "pg", at("apg.internal", 5432, policy::SslMode::kVerifyFull)).ok());
  for (auto mode : {policy::SslMode::kDisable, policy::SslMode::kRequire, policy::SslMode::kVerifyCa}) {
    auto s = checkSecretGrant(secret, "shop", "pg", at("a.pg.internal", 5432, mode));
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().reason(), grant_reasons::kCredentialsNotGranted);
    EXPECT_THAT(s.error().message(), HasSubstr("only by a wildcard, which holds only with sslMode verify-full"));
    EXPECT_THAT(s.error().message(), HasSubstr("must name a.pg.internal:5432 itself"));
  }
}

TEST(SecretGrant, AHostThatIsNotOneServerIsNeverGranted) {
  // libpq tries "a,b" as two hosts in turn: a name that only ends like a granted one must not pass.
  auto secret = secretWith("*.pg.internal, db.pg.internal");
  for (const std::string& host :
       std::vector<std::string>{"evil.example,x.pg.internal", "evil.example x.pg.internal", "evil/x.pg.internal",
                                std::string("evil.example\0.pg.internal", 26), "user@db.pg.internal", ""}) {
    auto s = checkSecretGrant(secret, "shop", "pg", at(host, 5432, policy::SslMode::kVerifyFull));
    ASSERT_FALSE(s.ok()) << host;
    EXPECT_THAT(s.error().message(), HasSubstr("is not one DNS name or IP address"));
  }
  EXPECT_TRUE(
      checkSecretGrant(secretWith("[fd00::1]:5432"), "shop", "pg", at("fd00::1", 5432, policy::SslMode::kDisable))
          .ok());
}

TEST(SecretGrant, MissingOrMalformedAnnotationsSayWhatToDo) {
  kube::json bare = {{"metadata", {{"name", "pg"}}}};
  auto missing = checkSecretGrant(bare, "shop", "pg", at("db", 5432, policy::SslMode::kDisable));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kForbidden);
  EXPECT_THAT(missing.error().message(),
              HasSubstr("kubectl -n shop annotate secret pg poolguard.dev/allowed-servers=db:5432"));
  kube::json notAString = {{"metadata", {{"annotations", {{kAllowedServersAnnotation, 5}}}}}};
  EXPECT_FALSE(checkSecretGrant(notAString, "shop", "pg", at("db", 5432, policy::SslMode::kDisable)).ok());
  auto malformed = checkSecretGrant(secretWith("db:x"), "shop", "pg", at("db", 5432, policy::SslMode::kDisable));
  ASSERT_FALSE(malformed.ok());
  EXPECT_THAT(malformed.error().message(), HasSubstr("is malformed: entry \"db:x\""));
}

TEST(PrometheusUrl, OnlyUnderAnAllowedPrefix) {
  const std::vector<std::string> allowed{"http://prometheus.monitoring.svc:9090", "https://thanos.example/query/"};
  for (const char* ok : {"http://prometheus.monitoring.svc:9090", "http://Prometheus.monitoring.svc:9090/",
                         "http://prometheus.monitoring.svc:9090/prom", "https://thanos.example:443/query",
                         "https://thanos.example/query/tenant-a"}) {
    EXPECT_TRUE(checkPrometheusUrl(ok, allowed).ok()) << ok;
  }
  for (const char* refused :
       {"http://prometheus.monitoring.svc:9091", "https://prometheus.monitoring.svc:9090",
        "http://prometheus.monitoring.svc:9090.evil.example", "http://prometheus.monitoring.svc.evil:9090",
        "http://prometheus.monitoring.svc:9090@evil.example:9090", "http://user:pw@prometheus.monitoring.svc:9090",
        "https://thanos.example/querything", "https://thanos.example/query/../admin",
        "https://thanos.example/query/%2e%2e/admin", "https://thanos.example/query/%2f..%2f..%2fadmin",
        "https://thanos.example/query/x;/../../admin", "http://prometheus.monitoring.svc:9090/?x=1",
        "http://10.0.0.1:9090", "file:///etc/passwd", "prometheus:9090"}) {
    auto s = checkPrometheusUrl(refused, allowed);
    EXPECT_FALSE(s.ok()) << refused;
    if (!s.ok()) {
      EXPECT_EQ(s.error().reason(), grant_reasons::kPrometheusUrlNotAllowed) << refused;
      EXPECT_THAT(s.error().message(), ::testing::Not(HasSubstr("pw@"))) << "never echo a credential";
    }
  }
  auto none = checkPrometheusUrl("http://prometheus.monitoring.svc:9090", {});
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.error().message(), HasSubstr("none are allowed now"));
  EXPECT_THAT(none.error().message(), HasSubstr("--prometheus-allowed-url-prefixes"));
}

TEST(PrometheusUrl, PrefixesAreCheckedAtStart) {
  EXPECT_TRUE(validatePrometheusPrefix("http://prometheus:9090/").ok());
  for (const char* bad : {"prometheus:9090", "ftp://x", "http://u:p@x", "http://x/?q", "http://x/a/../b", "http://"}) {
    EXPECT_FALSE(validatePrometheusPrefix(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace poolguard::usage
