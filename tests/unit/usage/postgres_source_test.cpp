#include "usage/postgres_source.h"
#include "usage/libpq.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "../../support/silent_server.h"
#include "fake_client.h"
#include "usage/grant.h"

namespace poolguard::usage {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ClassifyConnectionError, WrongPassword) {
  auto e = classifyConnectionError(
      "db.example:5432",
      "connection to server at \"db.example\" (10.0.0.7), port 5432 failed: FATAL:  password authentication failed "
      "for user \"monitor\"\n");
  EXPECT_EQ(e.reason(), postgres_reasons::kAuthFailed);
  EXPECT_EQ(e.code(), ErrorCode::kUnauthorized);
  EXPECT_EQ(e.message(), "postgres db.example:5432: password authentication failed for user \"monitor\"");
}

TEST(ClassifyConnectionError, PgHbaWithoutSslIsAnAuthenticationFailure) {
  auto e = classifyConnectionError(
      "db:5432",
      "connection to server at \"db\" (10.0.0.7), port 5432 failed: FATAL:  no pg_hba.conf entry for host "
      "\"10.0.0.9\", user \"monitor\", database \"app\", SSL off\n");
  EXPECT_EQ(e.reason(), postgres_reasons::kAuthFailed);
}

TEST(ClassifyConnectionError, TlsRefusedAndVerificationFailed) {
  auto refused = classifyConnectionError(
      "db:5432",
      "connection to server at \"db\" (10.0.0.7), port 5432 failed: server does not support SSL, but SSL "
      "was required\n");
  EXPECT_EQ(refused.reason(), postgres_reasons::kTls);
  EXPECT_THAT(refused.message(), HasSubstr("postgres db:5432: TLS refused: server does not support SSL"));

  auto unverified = classifyConnectionError(
      "db:5432", "connection to server at \"db\" (10.0.0.7), port 5432 failed: SSL error: certificate verify failed\n");
  EXPECT_EQ(unverified.reason(), postgres_reasons::kTls);
  EXPECT_EQ(unverified.message(), "postgres db:5432: TLS verification failed: SSL error: certificate verify failed");

  auto hostname = classifyConnectionError(
      "127.0.0.1:5432",
      "connection to server at \"127.0.0.1\", port 5432 failed: server certificate for \"other\" "
      "does not match host name \"127.0.0.1\"\n");
  EXPECT_EQ(hostname.reason(), postgres_reasons::kTls);
}

TEST(ClassifyConnectionError, UnreachableKeepsOneLinePerCauseWithoutHints) {
  auto e = classifyConnectionError(
      "localhost:1",
      "connection to server at \"localhost\" (::1), port 1 failed: Connection refused\n\tIs the server running on that "
      "host and accepting TCP/IP connections?\nconnection to server at \"localhost\" (127.0.0.1), port 1 failed: "
      "Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?\n");
  EXPECT_EQ(e.reason(), postgres_reasons::kUnreachable);
  EXPECT_TRUE(e.retryable());
  EXPECT_EQ(e.message(), "postgres localhost:1: unreachable: Connection refused");

  auto timeout = classifyConnectionError("10.1.1.1:5432",
                                         "connection to server at \"10.1.1.1\", port 5432 failed: "
                                         "timeout expired\n");
  EXPECT_EQ(timeout.code(), ErrorCode::kTimeout);
  EXPECT_EQ(timeout.message(), "postgres 10.1.1.1:5432: unreachable: connect timed out");
}

// The credentials fetchCredentials reads when usernameKey names the password's key: PostgreSQL quotes the user name
// back, so the password would reach the status.
PostgresCredentials passwordAsUserName(const std::string& password) {
  PostgresCredentials c{password, password, std::nullopt};
  c.usernameFrom = c.passwordFrom = "the value of key \"password\" of Secret ns1/pg-monitor";
  return c;
}

TEST(HideCredentials, TheUserNamePostgresQuotesBackIsNamedByItsSecretKey) {
  const auto creds = passwordAsUserName("s3cr3t-pw");
  auto e = classifyConnectionError(
      "db:5432", hideCredentials("connection to server at \"db\" (10.0.0.7), port 5432 failed: FATAL:  password "
                                 "authentication failed for user \"s3cr3t-pw\"\n",
                                 creds, "app"));
  EXPECT_EQ(e.reason(), postgres_reasons::kAuthFailed);
  EXPECT_EQ(e.message(),
            "postgres db:5432: password authentication failed for user \"<the value of key \"password\" of Secret "
            "ns1/pg-monitor>\"");

  for (const char* text :
       {"FATAL:  role \"s3cr3t-pw\" does not exist", "FATAL:  too many connections for role \"s3cr3t-pw\"",
        "FATAL:  no pg_hba.conf entry for host \"10.0.0.9\", user \"s3cr3t-pw\", database \"app\", SSL off",
        "FATAL:  pg_hba.conf rejects connection for host \"10.0.0.9\", user \"s3cr3t-pw\", database \"app\""}) {
    auto hidden = hideCredentials(text, creds, "app");
    EXPECT_THAT(hidden, Not(HasSubstr("s3cr3t"))) << text;
    EXPECT_THAT(hidden, HasSubstr("\"<the value of key \"password\" of Secret ns1/pg-monitor>\"")) << text;
    if (std::string_view(text).find("database") != std::string_view::npos) {
      EXPECT_THAT(hidden, HasSubstr("database \"app\"")) << text;
    }
  }
  PostgresCredentials plain{"monitor", "pw-8f2c", std::nullopt};
  EXPECT_EQ(hideCredentials("FATAL:  password authentication failed for user \"monitor\"", plain, "app"),
            "FATAL:  password authentication failed for user \"<the user name>\"");
}

TEST(HideCredentials, ALongValueIsFoundAsPostgresCutsItAndAPasswordGoesWhole) {
  const std::string longPassword(80, 'k');
  auto cut = hideCredentials("FATAL:  password authentication failed for user \"" + longPassword.substr(0, 63) + "\"",
                             passwordAsUserName(longPassword), "app");
  EXPECT_EQ(cut,
            "FATAL:  password authentication failed for user \"<the value of key \"password\" of Secret "
            "ns1/pg-monitor>\"");
  EXPECT_EQ(hideCredentials(std::string(59, 'k'), passwordAsUserName(longPassword), "app"), std::string(59, 'k'))
      << "fewer than 60 bytes are not a cut name";

  // A password that begins with the user name is replaced whole, not after the user name's placeholder.
  PostgresCredentials creds{"mon", "mon-secret", std::nullopt};
  EXPECT_EQ(hideCredentials("x mon-secret y mon z", creds, "app"), "x <the password> y <the user name> z");
  // A line break in a value does not split it past recognition (the raw message is hidden before it is cut into
  // lines).
  auto lines = hideCredentials("FATAL:  role \"ab\ncd\" does not exist\n", passwordAsUserName("ab\ncd"), "app");
  EXPECT_THAT(lines, Not(HasSubstr("ab")));
  EXPECT_THAT(lines, Not(HasSubstr("cd\"")));
}

TEST(HideCredentials, TheDatabaseNameIsNeverAGuessingOracle) {
  // The author names a guess as the database: what PostgreSQL quotes back of it is shown as it is, so the status
  // reads the same whether or not the guess is the password.
  const std::string guess = "hunter2";
  for (const std::string& database : {guess, std::string("x\", user \"") + guess}) {
    const std::string text = "FATAL:  database \"" + database + "\" does not exist";
    PostgresCredentials right{"monitor", guess, std::nullopt};
    PostgresCredentials wrong{"monitor", "other-pw", std::nullopt};
    EXPECT_EQ(hideCredentials(text, right, database), text) << database;
    EXPECT_EQ(hideCredentials(text, wrong, database), text) << database;
  }
  // The user name quoted beside it is hidden whatever the database is called.
  const auto creds = passwordAsUserName(guess);
  EXPECT_EQ(hideCredentials("FATAL:  no pg_hba.conf entry for host \"h\", user \"hunter2\", database \"hunter2\"",
                            creds, guess),
            "FATAL:  no pg_hba.conf entry for host \"h\", user \"<the value of key \"password\" of Secret "
            "ns1/pg-monitor>\", database \"hunter2\"");
}

// The grant the tests' Secrets carry: db.example on port 5432, the server of source().
const std::map<std::string, std::string> kGrant = {{kAllowedServersAnnotation, "db.example"}};

policy::PostgresSource source() {
  policy::PostgresSource s;
  s.host = "db.example";
  s.database = "app";
  s.credentialsSecretRef.name = "pg-monitor";
  return s;
}

TEST(FetchCredentials, ReadsTheNamedSecretByName) {
  testing::FakeSecretsClient client;
  client.addSecret("ns1", "pg-monitor", {{"username", "bW9uaXRvcg=="}, {"password", "czNjcjN0IQ=="}}, kGrant);
  auto creds = fetchCredentials(client, "ns1", source());
  ASSERT_TRUE(creds.ok()) << creds.error().message();
  EXPECT_EQ(creds->username, "monitor");
  EXPECT_EQ(creds->password, "s3cr3t!");
  EXPECT_FALSE(creds->caPem);
  EXPECT_EQ(creds->usernameFrom, "the value of key \"username\" of Secret ns1/pg-monitor");
  EXPECT_EQ(creds->passwordFrom, "the value of key \"password\" of Secret ns1/pg-monitor");
  for (const auto& call : client.calls) EXPECT_THAT(call, HasSubstr("get secrets ns1/pg-monitor"));
}

TEST(FetchCredentials, CustomKeysAndCaWithDefaultKey) {
  testing::FakeSecretsClient client;
  client.addSecret("ns1", "pg-monitor", {{"user", "bW9uaXRvcg=="}, {"pass", "eA=="}}, kGrant);
  client.addSecret("ns1", "pg-ca", {{"ca.crt", "LS0tLS1CRUdJTg=="}}, kGrant);
  auto s = source();
  s.credentialsSecretRef.usernameKey = "user";
  s.credentialsSecretRef.passwordKey = "pass";
  s.caSecretRef = policy::SecretKeyRef{"pg-ca", ""};
  auto creds = fetchCredentials(client, "ns1", s);
  ASSERT_TRUE(creds.ok()) << creds.error().message();
  EXPECT_EQ(creds->password, "x");
  EXPECT_EQ(creds->caPem, "-----BEGIN");
  EXPECT_EQ(creds->usernameFrom, "the value of key \"user\" of Secret ns1/pg-monitor");
  EXPECT_EQ(creds->passwordFrom, "the value of key \"pass\" of Secret ns1/pg-monitor");
  EXPECT_THAT(client.calls, Not(::testing::Contains(HasSubstr("list"))));
}

TEST(FetchCredentials, MissingSecretKeyOrBadEncodingSayWhat) {
  testing::FakeSecretsClient client;
  auto missing = fetchCredentials(client, "ns1", source());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().reason(), postgres_reasons::kCredentials);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(missing.error().message(), HasSubstr("secret ns1/pg-monitor"));
  EXPECT_THAT(missing.error().message(), HasSubstr("not found"));

  client.addSecret("ns1", "pg-monitor", {{"username", "bW9uaXRvcg=="}}, kGrant);
  auto noKey = fetchCredentials(client, "ns1", source());
  ASSERT_FALSE(noKey.ok());
  EXPECT_EQ(noKey.error().message(), "secret ns1/pg-monitor has no key \"password\"");

  client.addSecret("ns1", "pg-monitor", {{"username", "bW9uaXRvcg=="}, {"password", "!!!"}}, kGrant);
  auto bad = fetchCredentials(client, "ns1", source());
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message(), HasSubstr("not valid base64"));
  EXPECT_THAT(bad.error().message(), Not(HasSubstr("!!!")));
}

TEST(PostgresReader, UnreachableServerIsATypedErrorAndNoConnectionIsKept) {
  ManualClock clock;
  PostgresReader reader(clock, {std::chrono::seconds(2), std::chrono::milliseconds(1000), ""});
  auto s = source();
  s.host = "127.0.0.1";
  s.port = 1;
  s.sslMode = policy::SslMode::kDisable;
  auto snap = reader.read(s, {"monitor", "secret-password", std::nullopt});
  ASSERT_FALSE(snap.ok());
  EXPECT_EQ(snap.error().reason(), postgres_reasons::kUnreachable);
  EXPECT_THAT(snap.error().message(), HasSubstr("postgres 127.0.0.1:1: unreachable"));
  EXPECT_THAT(snap.error().message(), Not(HasSubstr("secret-password")));
  EXPECT_EQ(reader.openConnections(), 0u);
}

TEST(PostgresReader, ReleasingATargetNeverWaitsForAReadInProgressOnIt) {
  poolguard::testing::SilentServer silent;  // accepts, never answers: the read holds its connection until timeout
  ASSERT_NE(silent.port(), 0);
  PostgresReader reader(SystemClock::instance(), {std::chrono::seconds(3), std::chrono::milliseconds(1000), ""});
  auto s = source();
  s.host = "127.0.0.1";
  s.port = silent.port();
  s.sslMode = policy::SslMode::kDisable;
  std::thread reading([&] { (void)reader.read(s, {"monitor", "pw", std::nullopt}); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the read is connecting now
  auto start = std::chrono::steady_clock::now();
  reader.closeExcept({});  // as another target's check does when a policy goes
  auto took = std::chrono::steady_clock::now() - start;
  reading.join();
  EXPECT_LT(took, std::chrono::milliseconds(500)) << "closeExcept waited for the read on the released target";
  EXPECT_EQ(reader.openConnections(), 0u);
}

TEST(FetchCredentials, ASecretThatDoesNotAllowTheServerIsNotUsed) {
  testing::FakeSecretsClient client;
  client.addSecret("ns1", "pg-monitor", {{"username", "bW9uaXRvcg=="}, {"password", "czNjcjN0IQ=="}});
  auto ungranted = fetchCredentials(client, "ns1", source());
  ASSERT_FALSE(ungranted.ok());
  EXPECT_EQ(ungranted.error().reason(), grant_reasons::kCredentialsNotGranted);
  EXPECT_EQ(ungranted.error().code(), ErrorCode::kForbidden);
  EXPECT_THAT(ungranted.error().message(),
              HasSubstr("secret ns1/pg-monitor does not allow its contents to be used for db.example:5432: it has no "
                        "annotation poolguard.dev/allowed-servers"));
  EXPECT_THAT(ungranted.error().message(),
              HasSubstr("kubectl -n ns1 annotate secret pg-monitor poolguard.dev/allowed-servers=db.example:5432"));

  client.addSecret("ns1", "pg-monitor", {{"username", "bW9uaXRvcg=="}, {"password", "czNjcjN0IQ=="}},
                   {{kAllowedServersAnnotation, "other.example:5432"}});
  auto elsewhere = fetchCredentials(client, "ns1", source());
  ASSERT_FALSE(elsewhere.ok());
  EXPECT_THAT(elsewhere.error().message(), HasSubstr("does not name this server"));
  EXPECT_THAT(elsewhere.error().message(), Not(HasSubstr("other.example"))) << "the grant is not shown to the author";

  // The CA Secret needs the grant too: the author must not choose whom poolguard trusts.
  client.addSecret("ns1", "pg-monitor", {{"username", "bW9uaXRvcg=="}, {"password", "czNjcjN0IQ=="}}, kGrant);
  client.addSecret("ns1", "their-ca", {{"ca.crt", "LS0tLS1CRUdJTg=="}});
  auto s = source();
  s.caSecretRef = policy::SecretKeyRef{"their-ca", ""};
  auto ca = fetchCredentials(client, "ns1", s);
  ASSERT_FALSE(ca.ok());
  EXPECT_THAT(ca.error().message(), HasSubstr("secret ns1/their-ca does not allow"));
  // One Secret holding both: read once.
  client.addSecret("ns1", "pg-monitor",
                   {{"username", "bW9uaXRvcg=="}, {"password", "czNjcjN0IQ=="}, {"ca.crt", "LS0tLS1CRUdJTg=="}},
                   kGrant);
  s.caSecretRef = policy::SecretKeyRef{"pg-monitor", ""};
  client.calls.clear();
  auto both = fetchCredentials(client, "ns1", s);
  ASSERT_TRUE(both.ok()) << both.error().message();
  EXPECT_EQ(client.calls.size(), 1u);
}

TEST(RequireAuth, NoClearTextPasswordWithoutProofOfTheServersName) {
  for (auto mode : {policy::SslMode::kDisable, policy::SslMode::kRequire, policy::SslMode::kVerifyCa}) {
    ASSERT_NE(requireAuthFor(mode), nullptr) << policy::toString(mode);
    EXPECT_STREQ(requireAuthFor(mode), "!password") << policy::toString(mode);
  }
  EXPECT_EQ(requireAuthFor(policy::SslMode::kVerifyFull), nullptr) << "the server proved its name";
}

TEST(LibpqAccepts, KnowsItsOwnKeywords) {
  EXPECT_TRUE(libpqAccepts("sslmode"));
  EXPECT_FALSE(libpqAccepts("no_such_keyword"));
}

// libpq is loaded when first needed, not linked: every function postgres_source.cpp calls resolves.
TEST(Libpq, LoadsOnFirstUseWithEveryFunction) {
  auto lib = loadLibpq();
  ASSERT_TRUE(lib.ok()) << lib.error().message();
#define POOLGUARD_EXPECT_RESOLVED(name) EXPECT_NE((*lib)->name, nullptr) << #name;
  POOLGUARD_LIBPQ_FUNCTIONS(POOLGUARD_EXPECT_RESOLVED)
#undef POOLGUARD_EXPECT_RESOLVED
  EXPECT_EQ(*lib, &libpq());
}

}  // namespace
}  // namespace poolguard::usage
