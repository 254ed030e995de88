#include <gtest/gtest.h>

#include "policy/parse.h"

namespace poolguard::policy {
namespace {

using std::chrono::milliseconds;

json minimal() {
  return json::parse(R"({"apiVersion": "poolguard.dev/v1alpha1", "kind": "ConnectionPoolPolicy",
    "metadata": {"name": "orders", "namespace": "shop", "uid": "u-1", "generation": 4,
                 "creationTimestamp": "2024-01-02T03:04:05Z"},
    "spec": {"selector": {"matchLabels": {"app": "orders"}}, "pool": {"maxSize": 10}, "database": {"name": "db"}}})");
}

TEST(FromJson, AppliesDefaultsPerApiMd) {
  auto r = fromJson(minimal());
  ASSERT_TRUE(r.ok()) << r.error().message();
  const Policy& p = *r;
  EXPECT_EQ(p.name, "orders");
  EXPECT_EQ(p.namespace_, "shop");
  EXPECT_EQ(p.uid, "u-1");
  EXPECT_EQ(p.generation, 4);
  EXPECT_EQ(p.creationTimestamp, "2024-01-02T03:04:05Z");
  const Spec& s = p.spec;
  EXPECT_EQ(s.selector.matchLabels.at("app"), "orders");
  EXPECT_EQ(s.kinds, (std::vector<WorkloadKind>{WorkloadKind::kDeployment, WorkloadKind::kStatefulSet}));
  EXPECT_TRUE(s.containers.empty());
  EXPECT_EQ(s.mode, Mode::kEnforce);
  EXPECT_EQ(s.priority, 0);
  EXPECT_FALSE(s.suspend);
  EXPECT_EQ(s.pool.maxSize, 10);
  EXPECT_EQ(s.pool.minIdle, 0);
  EXPECT_EQ(s.pool.acquireTimeout, milliseconds(30000));
  EXPECT_EQ(s.pool.idleTimeout, milliseconds(600000));
  EXPECT_EQ(s.pool.maxLifetime, milliseconds(1800000));
  EXPECT_EQ(s.pool.leakDetectionThreshold, milliseconds(0));
  EXPECT_EQ(s.pool.processesPerPod, 1);
  EXPECT_EQ(s.profile, Profile::kGeneric);
  EXPECT_EQ(s.delivery.method, DeliveryMethod::kEnv);
  EXPECT_TRUE(s.delivery.envNames.empty());
  EXPECT_EQ(s.delivery.applicationName, "{namespace}/{name}");
  EXPECT_TRUE(s.rollout.restartOnChange);
  EXPECT_EQ(s.database.name, "db");
  EXPECT_FALSE(s.database.maxConnections.has_value());
  EXPECT_EQ(s.database.reservedConnections, 3);
  EXPECT_EQ(s.budget.onExceeded, OnExceeded::kWarn);
  EXPECT_EQ(s.budget.weight, 1);
  EXPECT_EQ(s.usage.interval, milliseconds(30000));
  EXPECT_FALSE(s.usage.postgres.has_value());
  EXPECT_FALSE(s.usage.prometheus.has_value());
  EXPECT_EQ(s.usage.thresholds.saturationPercent, 90);
  EXPECT_EQ(s.usage.thresholds.idleInTransaction, milliseconds(60000));
}

TEST(FromJson, ReadsEveryField) {
  json obj = minimal();
  obj["spec"] = json::parse(R"({
    "selector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["api", "web"]}]},
    "kinds": ["StatefulSet"], "containers": ["app"], "mode": "Audit", "priority": -3, "suspend": true,
    "pool": {"maxSize": 20, "minIdle": 2, "acquireTimeout": "1.5s", "idleTimeout": "5m", "maxLifetime": "0s",
             "leakDetectionThreshold": "1m", "processesPerPod": 4},
    "profile": "PgBouncer",
    "delivery": {"method": "ConfigMap", "envNames": {"maxSize": "POOL_MAX"}, "applicationName": ""},
    "rollout": {"restartOnChange": false},
    "database": {"name": "pay", "maxConnections": 200, "reservedConnections": 5},
    "budget": {"onExceeded": "Clamp", "weight": 2},
    "usage": {"interval": "1m",
              "postgres": {"host": "db", "port": 6432, "database": "pay", "sslMode": "require",
                           "credentialsSecretRef": {"name": "mon", "usernameKey": "u", "passwordKey": "p"},
                           "caSecretRef": {"name": "ca"}},
              "prometheus": {"url": "http://prom:9090", "connectionsQuery": "q1", "pendingQuery": "q2"},
              "thresholds": {"saturationPercent": 75, "idleInTransaction": "2m"}}})");
  auto r = fromJson(obj);
  ASSERT_TRUE(r.ok()) << r.error().message();
  const Spec& s = r->spec;
  ASSERT_EQ(s.selector.matchExpressions.size(), 1u);
  EXPECT_EQ(s.selector.matchExpressions[0].op, "In");
  EXPECT_EQ(s.selector.matchExpressions[0].values, (std::vector<std::string>{"api", "web"}));
  EXPECT_EQ(s.kinds, std::vector<WorkloadKind>{WorkloadKind::kStatefulSet});
  EXPECT_EQ(s.containers, std::vector<std::string>{"app"});
  EXPECT_EQ(s.mode, Mode::kAudit);
  EXPECT_EQ(s.priority, -3);
  EXPECT_TRUE(s.suspend);
  EXPECT_EQ(s.pool.acquireTimeout, milliseconds(1500));
  EXPECT_EQ(s.pool.maxLifetime, milliseconds(0));
  EXPECT_EQ(s.pool.leakDetectionThreshold, milliseconds(60000));
  EXPECT_EQ(s.pool.processesPerPod, 4);
  EXPECT_EQ(s.profile, Profile::kPgBouncer);
  EXPECT_EQ(s.delivery.method, DeliveryMethod::kConfigMap);
  EXPECT_EQ(s.delivery.envNames.at("maxSize"), "POOL_MAX");
  EXPECT_EQ(s.delivery.applicationName, "");
  EXPECT_FALSE(s.rollout.restartOnChange);
  EXPECT_EQ(s.database.maxConnections, 200);
  EXPECT_EQ(s.database.reservedConnections, 5);
  EXPECT_EQ(s.budget.onExceeded, OnExceeded::kClamp);
  EXPECT_EQ(s.budget.weight, 2);
  ASSERT_TRUE(s.usage.postgres.has_value());
  EXPECT_EQ(s.usage.postgres->port, 6432);
  EXPECT_EQ(s.usage.postgres->sslMode, SslMode::kRequire);
  EXPECT_EQ(s.usage.postgres->credentialsSecretRef.usernameKey, "u");
  ASSERT_TRUE(s.usage.postgres->caSecretRef.has_value());
  EXPECT_EQ(s.usage.postgres->caSecretRef->key, "ca.crt");
  ASSERT_TRUE(s.usage.prometheus.has_value());
  EXPECT_EQ(s.usage.prometheus->pendingQuery, "q2");
  EXPECT_EQ(s.usage.thresholds.saturationPercent, 75);
  EXPECT_EQ(s.usage.thresholds.idleInTransaction, milliseconds(120000));
}

TEST(FromJson, InvalidObjectListsEveryCause) {
  json obj = minimal();
  obj["spec"]["pool"]["maxSize"] = 0;
  obj["spec"]["mode"] = "Sometimes";
  std::vector<FieldError> errors;
  auto r = fromJson(obj, &errors);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalid);
  EXPECT_FALSE(r.error().retryable());
  ASSERT_EQ(errors.size(), 2u);
  ASSERT_EQ(r.error().causes().size(), 2u);
  EXPECT_EQ(r.error().causes()[1].field, "spec.pool.maxSize");
  const std::string& m = r.error().message();
  EXPECT_NE(m.find("ConnectionPoolPolicy \"orders\" is invalid"), std::string::npos) << m;
  EXPECT_NE(m.find("spec.mode: Unsupported value"), std::string::npos) << m;
  EXPECT_NE(m.find("spec.pool.maxSize: Invalid value: 0"), std::string::npos) << m;
}

TEST(FromJson, ValidObjectLeavesNoErrors) {
  std::vector<FieldError> errors{{"x", "stale"}};
  ASSERT_TRUE(fromJson(minimal(), &errors).ok());
  EXPECT_TRUE(errors.empty());
}

TEST(ToJson, RoundTripsThroughFromJson) {
  auto first = fromJson(minimal());
  ASSERT_TRUE(first.ok());
  json out = toJson(*first);
  EXPECT_EQ(out["apiVersion"], "poolguard.dev/v1alpha1");
  EXPECT_EQ(out["kind"], "ConnectionPoolPolicy");
  EXPECT_EQ(out["metadata"]["name"], "orders");
  EXPECT_EQ(out["spec"]["pool"]["idleTimeout"], "10m");
  EXPECT_EQ(out["spec"]["usage"]["thresholds"]["idleInTransaction"], "1m");
  EXPECT_TRUE(validate(out).empty());
  auto second = fromJson(out);
  ASSERT_TRUE(second.ok()) << second.error().message();
  EXPECT_EQ(toJson(*second), out);
}

TEST(ToJson, MatchesApplyDefaultsForTheSameInput) {
  // The model's defaults (types.h) and the CRD's (schema) must agree.
  auto p = fromJson(minimal());
  ASSERT_TRUE(p.ok());
  json fromModel = toJson(*p)["spec"];
  json fromSchema = applyDefaults(minimal())["spec"];
  // Durations may be spelled differently ("60s" vs "1m"); compare them parsed.
  for (const char* key : {"acquireTimeout", "idleTimeout", "maxLifetime", "leakDetectionThreshold"}) {
    EXPECT_EQ(*parseDuration(fromModel["pool"][key]), *parseDuration(fromSchema["pool"][key])) << key;
    fromModel["pool"].erase(key);
    fromSchema["pool"].erase(key);
  }
  for (json* s : {&fromModel, &fromSchema}) {
    (*s)["usage"].erase("interval");
    (*s)["usage"]["thresholds"].erase("idleInTransaction");
  }
  EXPECT_EQ(fromModel, fromSchema);
  Policy defaults;
  EXPECT_EQ(defaults.spec.usage.interval, *parseDuration(applyDefaults(minimal())["spec"]["usage"]["interval"]));
  EXPECT_EQ(defaults.spec.usage.thresholds.idleInTransaction,
            *parseDuration(applyDefaults(minimal())["spec"]["usage"]["thresholds"]["idleInTransaction"]));
}

TEST(EnumNames, MatchTheApi) {
  EXPECT_STREQ(toString(WorkloadKind::kStatefulSet), "StatefulSet");
  EXPECT_STREQ(toString(Mode::kAudit), "Audit");
  EXPECT_STREQ(toString(Profile::kSpringHikari), "SpringHikari");
  EXPECT_STREQ(toString(Profile::kGoSQL), "GoSQL");
  EXPECT_STREQ(toString(Profile::kPgxpool), "Pgxpool");
  EXPECT_STREQ(toString(Profile::kSQLAlchemy), "SQLAlchemy");
  EXPECT_STREQ(toString(Profile::kNodePostgres), "NodePostgres");
  EXPECT_STREQ(toString(Profile::kPgBouncer), "PgBouncer");
  EXPECT_STREQ(toString(Profile::kGeneric), "Generic");
  EXPECT_STREQ(toString(DeliveryMethod::kConfigMap), "ConfigMap");
  EXPECT_STREQ(toString(OnExceeded::kClamp), "Clamp");
  EXPECT_STREQ(toString(SslMode::kVerifyFull), "verify-full");
  EXPECT_STREQ(toString(SslMode::kVerifyCa), "verify-ca");
  EXPECT_STREQ(toString(SslMode::kDisable), "disable");
  EXPECT_STREQ(toString(SslMode::kRequire), "require");
}

}  // namespace
}  // namespace poolguard::policy
