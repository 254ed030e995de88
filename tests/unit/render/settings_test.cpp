#include "render/settings.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "fixtures.h"

namespace poolguard::render {
namespace {

using policy::Millis;
using policy::Profile;
using testing::basePolicy;

std::map<std::string, std::string> envMap(const RenderedSettings& s) {
  std::map<std::string, std::string> m;
  for (const auto& e : s.env) m[e.name] = e.value;
  return m;
}

TEST(RenderSettings, GenericUsesMillisecondsAndPgAppName) {
  auto s = renderSettings(basePolicy(Profile::kGeneric), "shop", "orders-api");
  std::map<std::string, std::string> want = {
      {"POOL_MAX_SIZE", "20"},
      {"POOL_MIN_IDLE", "5"},
      {"POOL_ACQUIRE_TIMEOUT_MS", "30000"},
      {"POOL_IDLE_TIMEOUT_MS", "600000"},
      {"POOL_MAX_LIFETIME_MS", "1800000"},
      {"POOL_LEAK_DETECTION_THRESHOLD_MS", "0"},
      {"PGAPPNAME", "shop/orders-api"},
  };
  EXPECT_EQ(envMap(s), want);
  EXPECT_EQ(s.env.front().name, "POOL_MAX_SIZE") << "canonical order starts with maxSize";
  EXPECT_TRUE(s.pgbouncerIni.empty());
  EXPECT_EQ(s.applicationName, "shop/orders-api");
}

TEST(RenderSettings, SpringHikariUsesRelaxedBindingNamesAndInitSqlForApplicationName) {
  auto p = basePolicy(Profile::kSpringHikari);
  p.spec.pool.leakDetectionThreshold = Millis(5'000);
  p.spec.delivery.applicationName = "{namespace}/{name}'s";
  auto m = envMap(renderSettings(p, "shop", "orders-api"));
  EXPECT_EQ(m.at("SPRING_DATASOURCE_HIKARI_MAXIMUMPOOLSIZE"), "20");
  EXPECT_EQ(m.at("SPRING_DATASOURCE_HIKARI_MINIMUMIDLE"), "5");
  EXPECT_EQ(m.at("SPRING_DATASOURCE_HIKARI_CONNECTIONTIMEOUT"), "30000");
  EXPECT_EQ(m.at("SPRING_DATASOURCE_HIKARI_IDLETIMEOUT"), "600000");
  EXPECT_EQ(m.at("SPRING_DATASOURCE_HIKARI_MAXLIFETIME"), "1800000");
  EXPECT_EQ(m.at("SPRING_DATASOURCE_HIKARI_LEAKDETECTIONTHRESHOLD"), "5000");
  EXPECT_EQ(m.at("SPRING_DATASOURCE_HIKARI_CONNECTIONINITSQL"), "SET application_name = 'shop/orders-api''s'");
  EXPECT_EQ(m.count("PGAPPNAME"), 0u) << "PgJDBC ignores PGAPPNAME";
}

TEST(RenderSettings, GoSqlUsesGoDurationsAndKeepsIdleUpToMaxSize) {
  auto p = basePolicy(Profile::kGoSQL);
  p.spec.pool.acquireTimeout = Millis(1'500);
  p.spec.pool.maxLifetime = Millis(0);
  auto m = envMap(renderSettings(p, "shop", "orders-api"));
  std::map<std::string, std::string> want = {
      {"DB_MAX_OPEN_CONNS", "20"},      {"DB_MAX_IDLE_CONNS", "20"},    {"DB_ACQUIRE_TIMEOUT", "1.5s"},
      {"DB_CONN_MAX_IDLE_TIME", "10m"}, {"DB_CONN_MAX_LIFETIME", "0s"}, {"PGAPPNAME", "shop/orders-api"},
  };
  EXPECT_EQ(m, want);
}

TEST(RenderSettings, PgxpoolRendersConnectionStringParametersAndNeverZeroLifetime) {
  auto p = basePolicy(Profile::kPgxpool);
  auto m = envMap(renderSettings(p, "shop", "orders-api"));
  std::map<std::string, std::string> want = {
      {"PGX_POOL_MAX_CONNS", "20"},          {"PGX_POOL_MIN_CONNS", "5"},      {"PGX_POOL_MAX_CONN_IDLE_TIME", "10m"},
      {"PGX_POOL_MAX_CONN_LIFETIME", "30m"}, {"PGAPPNAME", "shop/orders-api"},
  };
  EXPECT_EQ(m, want);
  p.spec.pool.maxLifetime = Millis(0);
  EXPECT_EQ(envMap(renderSettings(p, "shop", "orders-api")).at("PGX_POOL_MAX_CONN_LIFETIME"), "876000h");
}

TEST(RenderSettings, SqlAlchemyPoolSizePlusOverflowIsMaxSize) {
  auto p = basePolicy(Profile::kSQLAlchemy);
  auto m = envMap(renderSettings(p, "shop", "orders-api"));
  EXPECT_EQ(m.at("SQLALCHEMY_POOL_SIZE"), "5");
  EXPECT_EQ(m.at("SQLALCHEMY_MAX_OVERFLOW"), "15");
  EXPECT_EQ(m.at("SQLALCHEMY_POOL_TIMEOUT"), "30");
  EXPECT_EQ(m.at("SQLALCHEMY_POOL_RECYCLE"), "1800");

  p.spec.pool.minIdle = 0;
  p.spec.pool.acquireTimeout = Millis(2'250);
  p.spec.pool.maxLifetime = Millis(0);
  m = envMap(renderSettings(p, "shop", "orders-api"));
  EXPECT_EQ(m.at("SQLALCHEMY_POOL_SIZE"), "20") << "pool_size 0 would mean unlimited";
  EXPECT_EQ(m.at("SQLALCHEMY_MAX_OVERFLOW"), "0");
  EXPECT_EQ(m.at("SQLALCHEMY_POOL_TIMEOUT"), "2.25");
  EXPECT_EQ(m.at("SQLALCHEMY_POOL_RECYCLE"), "-1");
}

TEST(RenderSettings, NodePostgresUsesMillisAndWholeSecondLifetime) {
  auto p = basePolicy(Profile::kNodePostgres);
  p.spec.pool.maxLifetime = Millis(90'500);
  auto m = envMap(renderSettings(p, "shop", "orders-api"));
  std::map<std::string, std::string> want = {
      {"PG_POOL_MAX", "20"},
      {"PG_POOL_MIN", "5"},
      {"PG_POOL_CONNECTION_TIMEOUT_MILLIS", "30000"},
      {"PG_POOL_IDLE_TIMEOUT_MILLIS", "600000"},
      {"PG_POOL_MAX_LIFETIME_SECONDS", "91"},
      {"PGAPPNAME", "shop/orders-api"},
  };
  EXPECT_EQ(m, want);
}

TEST(RenderSettings, PgBouncerRendersIniSectionAndPinsReservePool) {
  auto p = basePolicy(Profile::kPgBouncer);
  auto s = renderSettings(p, "shop", "orders-api");
  auto m = envMap(s);
  EXPECT_EQ(m.at("PGBOUNCER_DEFAULT_POOL_SIZE"), "20");
  EXPECT_EQ(m.at("PGBOUNCER_RESERVE_POOL_SIZE"), "0");
  EXPECT_EQ(m.at("PGBOUNCER_SERVER_LIFETIME"), "1800");
  EXPECT_EQ(s.pgbouncerIni.find("[pgbouncer]\n"), std::string::npos)
      << "a second [pgbouncer] header would reset the application's own settings";
  EXPECT_NE(s.pgbouncerIni.find("default_pool_size = 20\n"), std::string::npos);
  EXPECT_NE(s.pgbouncerIni.find("min_pool_size = 5\n"), std::string::npos);
  EXPECT_NE(s.pgbouncerIni.find("reserve_pool_size = 0\n"), std::string::npos);
  EXPECT_NE(s.pgbouncerIni.find("query_wait_timeout = 30\n"), std::string::npos);
  EXPECT_NE(s.pgbouncerIni.find("server_idle_timeout = 600\n"), std::string::npos);
  EXPECT_NE(s.pgbouncerIni.find("server_lifetime = 1800\n"), std::string::npos);

  p.spec.pool.maxLifetime = Millis(0);
  s = renderSettings(p, "shop", "orders-api");
  EXPECT_NE(s.pgbouncerIni.find("server_lifetime = 315360000\n"), std::string::npos)
      << "0 means use-once to PgBouncer, so unlimited is rendered as ten years";
}

TEST(RenderSettings, EnvNamesOverrideAndCanEnableSettingsTheLibraryLacks) {
  auto p = basePolicy(Profile::kPgxpool);
  p.spec.delivery.envNames = {{"maxSize", "DATABASE_POOL_MAX"}, {"acquireTimeout", "DATABASE_ACQUIRE_TIMEOUT"}};
  auto m = envMap(renderSettings(p, "shop", "orders-api"));
  EXPECT_EQ(m.count("PGX_POOL_MAX_CONNS"), 0u);
  EXPECT_EQ(m.at("DATABASE_POOL_MAX"), "20");
  EXPECT_EQ(m.at("DATABASE_ACQUIRE_TIMEOUT"), "30s");
}

TEST(RenderSettings, ApplicationNameTemplateAndEmptyDisables) {
  auto p = basePolicy();
  p.spec.delivery.applicationName = "svc:{name}@{namespace}:{name}";
  EXPECT_EQ(renderSettings(p, "shop", "api").applicationName, "svc:api@shop:api");
  p.spec.delivery.applicationName = "";
  auto s = renderSettings(p, "shop", "api");
  EXPECT_EQ(s.applicationName, "");
  EXPECT_EQ(envMap(s).count("PGAPPNAME"), 0u);
}

TEST(RenderSettings, EffectiveMaxSizeLowersMinIdleWithIt) {
  auto p = basePolicy(Profile::kGeneric);
  RenderOptions o;
  o.effectiveMaxSize = 3;
  auto s = renderSettings(p, "shop", "orders-api", o);
  EXPECT_EQ(s.maxSize, 3);
  EXPECT_EQ(envMap(s).at("POOL_MAX_SIZE"), "3");
  EXPECT_EQ(envMap(s).at("POOL_MIN_IDLE"), "3");

  auto sa = renderSettings(basePolicy(Profile::kSQLAlchemy), "shop", "orders-api", o);
  EXPECT_EQ(envMap(sa).at("SQLALCHEMY_POOL_SIZE"), "3");
  EXPECT_EQ(envMap(sa).at("SQLALCHEMY_MAX_OVERFLOW"), "0");
}

TEST(RenderSettings, HashIsStableAndFollowsTheSettings) {
  auto p = basePolicy();
  auto a = renderSettings(p, "shop", "orders-api");
  auto b = renderSettings(p, "shop", "orders-api");
  EXPECT_EQ(a.hash, b.hash);
  EXPECT_EQ(a.hash.size(), 16u);
  // Pinned: a change here restarts every governed pod in every cluster on upgrade.
  EXPECT_EQ(settingsHash({{"maxSize", "POOL_MAX_SIZE", "20"}}, ""),
            settingsHash({{"other", "POOL_MAX_SIZE", "20"}}, ""))
      << "the key is not part of the hash, only what the process sees";
  EXPECT_EQ(settingsHash({{"maxSize", "POOL_MAX_SIZE", "20"}}, ""), "867a37810a50e421");
  p.spec.pool.maxSize = 21;
  EXPECT_NE(renderSettings(p, "shop", "orders-api").hash, a.hash);
  EXPECT_NE(renderSettings(basePolicy(), "shop", "other").hash, a.hash) << "the application name differs";
}

// The golden files' policy (golden_test.cpp) without pool.idleInTransactionTimeout.
policy::Policy goldenPolicy(Profile profile) {
  auto p = basePolicy(profile);
  p.spec.pool.acquireTimeout = Millis(2'500);
  p.spec.pool.leakDetectionThreshold = Millis(20'000);
  return p;
}

const std::vector<Profile>& allProfiles() {
  static const std::vector<Profile> all = {Profile::kSpringHikari, Profile::kGoSQL,        Profile::kPgxpool,
                                           Profile::kSQLAlchemy,   Profile::kNodePostgres, Profile::kPgBouncer,
                                           Profile::kGeneric};
  return all;
}

TEST(RenderSettings, IdleInTransactionTimeoutUnsetRendersNothingAndKeepsEveryHash) {
  // The hashes these settings had before pool.idleInTransactionTimeout existed: a policy that does not set it must
  // not restart a single pod on upgrade.
  const std::map<Profile, std::string> before = {
      {Profile::kSpringHikari, "38e1939102eb884b"}, {Profile::kGoSQL, "2d95a5b7a5cb0d28"},
      {Profile::kPgxpool, "9b81e6a760aa252c"},      {Profile::kSQLAlchemy, "c752356aac2b0832"},
      {Profile::kNodePostgres, "a8c20143e7951d9e"}, {Profile::kPgBouncer, "bfb58d7aeb5b004c"},
      {Profile::kGeneric, "b409c9942d6b4150"},
  };
  for (Profile profile : allProfiles()) {
    auto s = renderSettings(goldenPolicy(profile), "shop", "orders-api");
    EXPECT_EQ(s.hash, before.at(profile)) << policy::toString(profile);
    for (const auto& e : s.env) {
      EXPECT_NE(e.key, kIdleInTransactionTimeout) << policy::toString(profile) << " " << e.name;
      EXPECT_NE(e.key, kPgOptions) << policy::toString(profile) << " " << e.name;
    }
    EXPECT_EQ(s.pgbouncerIni.find("idle_transaction_timeout"), std::string::npos);
  }
}

TEST(RenderSettings, IdleInTransactionTimeoutInEachProfilesOwnWay) {
  const std::string options = "-c idle_in_transaction_session_timeout=45000";
  const std::map<Profile, std::map<std::string, std::string>> want = {
      {Profile::kSpringHikari, {{"SPRING_DATASOURCE_HIKARI_DATASOURCEPROPERTIES_OPTIONS", options}}},
      {Profile::kGoSQL, {{"PGOPTIONS", options}}},
      {Profile::kPgxpool, {{"PGOPTIONS", options}}},
      {Profile::kSQLAlchemy, {{"PGOPTIONS", options}}},
      {Profile::kNodePostgres, {{"PGOPTIONS", options}}},
      {Profile::kPgBouncer, {{"PGBOUNCER_IDLE_TRANSACTION_TIMEOUT", "45"}}},
      {Profile::kGeneric, {{"POOL_IDLE_IN_TRANSACTION_TIMEOUT_MS", "45000"}, {"PGOPTIONS", options}}},
  };
  for (Profile profile : allProfiles()) {
    auto p = goldenPolicy(profile);
    p.spec.pool.idleInTransactionTimeout = Millis(45'000);
    auto s = renderSettings(p, "shop", "orders-api");
    std::map<std::string, std::string> got;
    for (const auto& e : s.env) {
      if (e.key == kIdleInTransactionTimeout || e.key == kPgOptions) got[e.name] = e.value;
    }
    EXPECT_EQ(got, want.at(profile)) << policy::toString(profile);
    EXPECT_EQ(s.env.back().key, profile == Profile::kGeneric ? kPgOptions : kIdleInTransactionTimeout)
        << "last in the canonical order";
    EXPECT_NE(s.hash, renderSettings(goldenPolicy(profile), "shop", "orders-api").hash) << policy::toString(profile);
  }
}

TEST(RenderSettings, PgBouncerIdleTransactionTimeoutIsInTheIniInSeconds) {
  auto p = basePolicy(Profile::kPgBouncer);
  p.spec.pool.idleInTransactionTimeout = Millis(1'500);
  auto s = renderSettings(p, "shop", "orders-api");
  EXPECT_EQ(envMap(s).at("PGBOUNCER_IDLE_TRANSACTION_TIMEOUT"), "1.5");
  EXPECT_NE(s.pgbouncerIni.find("server_lifetime = 1800\nidle_transaction_timeout = 1.5\n"), std::string::npos)
      << s.pgbouncerIni;
  EXPECT_EQ(envMap(s).count("PGOPTIONS"), 0u) << "PgBouncer refuses a client's options; it ends the transaction itself";
}

TEST(RenderSettings, EnvNamesRenamesTheIdleInTransactionTimeoutVariable) {
  auto p = basePolicy(Profile::kSQLAlchemy);
  p.spec.pool.idleInTransactionTimeout = Millis(2'000);
  p.spec.delivery.envNames = {{"idleInTransactionTimeout", "DB_SERVER_OPTIONS"}};
  auto m = envMap(renderSettings(p, "shop", "orders-api"));
  EXPECT_EQ(m.count("PGOPTIONS"), 0u);
  EXPECT_EQ(m.at("DB_SERVER_OPTIONS"), "-c idle_in_transaction_session_timeout=2000");

  // Generic's PGOPTIONS has a profile-internal key: the rename takes the milliseconds variable only.
  p.spec.profile = Profile::kGeneric;
  p.spec.delivery.envNames = {{"idleInTransactionTimeout", "APP_IDLE_TX_MS"}};
  m = envMap(renderSettings(p, "shop", "orders-api"));
  EXPECT_EQ(m.at("APP_IDLE_TX_MS"), "2000");
  EXPECT_EQ(m.at("PGOPTIONS"), "-c idle_in_transaction_session_timeout=2000");
  EXPECT_EQ(m.count("POOL_IDLE_IN_TRANSACTION_TIMEOUT_MS"), 0u);
  EXPECT_EQ(settingKeys().back(), "idleInTransactionTimeout");
}

TEST(RenderSettings, ServerOptionsForm) {
  EXPECT_EQ(idleInTransactionOptions(Millis(1'000)), "-c idle_in_transaction_session_timeout=1000");
  EXPECT_TRUE(isIdleInTransactionOptions("-c idle_in_transaction_session_timeout=45000"));
  EXPECT_FALSE(isIdleInTransactionOptions("-c idle_in_transaction_session_timeout="));
  EXPECT_FALSE(isIdleInTransactionOptions("-c idle_in_transaction_session_timeout=45s"));
  EXPECT_FALSE(isIdleInTransactionOptions("-c idle_in_transaction_session_timeout=45000 -c search_path=shop"));
  EXPECT_FALSE(isIdleInTransactionOptions("-c search_path=shop"));
  EXPECT_TRUE(isServerOptions({kIdleInTransactionTimeout, "PGOPTIONS", idleInTransactionOptions(Millis(1'000))}));
  EXPECT_TRUE(isServerOptions({kPgOptions, "PGOPTIONS", idleInTransactionOptions(Millis(1'000))}));
  EXPECT_FALSE(isServerOptions({kIdleInTransactionTimeout, "PGBOUNCER_IDLE_TRANSACTION_TIMEOUT", "1"}));
  EXPECT_FALSE(isServerOptions({kIdleInTransactionTimeout, "POOL_IDLE_IN_TRANSACTION_TIMEOUT_MS", "1000"}));
}

TEST(RenderSettings, TimeUnits) {
  EXPECT_EQ(secondsString(Millis(30'000)), "30");
  EXPECT_EQ(secondsString(Millis(1'500)), "1.5");
  EXPECT_EQ(secondsString(Millis(250)), "0.25");
  EXPECT_EQ(secondsString(Millis(0)), "0");
  EXPECT_EQ(wholeSecondsRoundedUp(Millis(1'001)), 2);
  EXPECT_EQ(wholeSecondsRoundedUp(Millis(0)), 0);
  EXPECT_EQ(millisString(Millis(42)), "42");
}

}  // namespace
}  // namespace poolguard::render
