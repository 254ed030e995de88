// Every rule of the spec, offline. Each test starts from a valid policy and breaks one thing, so a rule that
// stopped firing (or started firing on valid input) fails here.
#include <gtest/gtest.h>

#include "policy/parse.h"

namespace poolguard::policy {
namespace {

json base() {
  return json::parse(R"({
    "apiVersion": "poolguard.dev/v1alpha1", "kind": "ConnectionPoolPolicy",
    "metadata": {"name": "orders", "namespace": "shop"},
    "spec": {"selector": {"matchLabels": {"app": "orders"}}, "pool": {"maxSize": 10}, "database": {"name": "db"}}
  })");
}

std::string all(const std::vector<FieldError>& errors) {
  std::string out;
  for (const auto& e : errors) out += toString(e) + "\n";
  return out;
}

// Asserts exactly one error, at field, whose message contains fragment (besides the note that rules were
// skipped, which follows type and size errors).
void expectOne(const json& obj, const std::string& field, const std::string& fragment) {
  auto errors = validate(obj);
  if (errors.size() == 2 && errors[1].message.find("rules were not checked") != std::string::npos) errors.pop_back();
  ASSERT_EQ(errors.size(), 1u) << all(errors);
  EXPECT_EQ(errors[0].field, field) << all(errors);
  EXPECT_NE(errors[0].message.find(fragment), std::string::npos) << all(errors);
}

// Asserts some error at field contains fragment.
void expectHas(const json& obj, const std::string& field, const std::string& fragment) {
  auto errors = validate(obj);
  bool found = false;
  for (const auto& e : errors) found = found || (e.field == field && e.message.find(fragment) != std::string::npos);
  EXPECT_TRUE(found) << field << ": " << fragment << "\n" << all(errors);
}

void expectValid(const json& obj) { EXPECT_TRUE(validate(obj).empty()) << all(validate(obj)) << obj.dump(); }

json with(const std::string& pointer, json value) {
  json obj = base();
  obj[json::json_pointer(pointer)] = std::move(value);
  return obj;
}

TEST(Validate, BaseIsValid) { expectValid(base()); }

TEST(Validate, RequiredFields) {
  json obj = base();
  obj["spec"].erase("selector");
  expectOne(obj, "spec.selector", "Required value");
  obj = base();
  obj["spec"]["pool"].erase("maxSize");
  expectOne(obj, "spec.pool.maxSize", "Required value");
  obj = base();
  obj["spec"].erase("pool");
  expectOne(obj, "spec.pool", "Required value");
  obj = base();
  obj["spec"]["database"].erase("name");
  expectOne(obj, "spec.database.name", "Required value");
  obj = base();
  obj["spec"].erase("database");
  expectOne(obj, "spec.database", "Required value");
  obj = base();
  obj.erase("spec");
  expectOne(obj, "spec", "Required value");
  // A null is the same as leaving the field out (the API server prunes nulls).
  expectOne(with("/spec/pool/maxSize", nullptr), "spec.pool.maxSize", "Required value");
}

TEST(Validate, HeaderAndMetadata) {
  expectOne(with("/apiVersion", "poolguard.dev/v1"), "apiVersion", "Unsupported value: \"poolguard.dev/v1\"");
  expectOne(with("/kind", "Deployment"), "kind", "Unsupported value");
  json obj = base();
  obj.erase("metadata");
  expectOne(obj, "metadata.name", "name or generateName is required");
  expectOne(with("/metadata/name", "Bad_Name"), "metadata.name", "RFC 1123 subdomain");
  expectOne(with("/metadata/name", std::string(254, 'a')), "metadata.name", "no more than 253");
  expectOne(with("/metadata/namespace", "Shop"), "metadata.namespace", "RFC 1123 label");
  expectOne(with("/metadata/labels", json{{"a", 1}}), "metadata.labels[a]", "must be of type string");
  expectOne(with("/metadata/bogus", 1), "metadata.bogus", "unknown field \"metadata.bogus\"");
  obj = base();
  obj["metadata"].erase("name");
  obj["metadata"]["generateName"] = "orders-";
  expectValid(obj);
  // Status written by the operator is accepted as part of a fetched object.
  expectValid(with("/status", json{{"observedGeneration", 3}}));
  expectOne(with("/extra", 1), "extra", "unknown field \"extra\"");
  EXPECT_FALSE(validate(json::array()).empty());
}

TEST(Validate, UnknownFieldsNameThePathAndTheAllowedFields) {
  auto errors = validate(with("/spec/pool/maxsize", 5));
  ASSERT_EQ(errors.size(), 1u) << all(errors);
  EXPECT_EQ(errors[0].field, "spec.pool.maxsize");
  EXPECT_NE(errors[0].message.find("unknown field \"spec.pool.maxsize\""), std::string::npos);
  EXPECT_NE(errors[0].message.find("maxSize, minIdle, acquireTimeout"), std::string::npos) << errors[0].message;
  expectOne(with("/spec/replicas", 3), "spec.replicas", "unknown field \"spec.replicas\"");
  expectOne(with("/spec/usage/postgres",
                 json{{"host", "h"}, {"database", "d"}, {"credentialsSecretRef", {{"name", "s"}, {"user", "x"}}}}),
            "spec.usage.postgres.credentialsSecretRef.user", "unknown field");
  expectOne(with("/spec/selector/matchExpressions", json::array({{{"key", "a"}, {"operator", "Exists"}, {"op", 1}}})),
            "spec.selector.matchExpressions[0].op", "unknown field");
}

TEST(Validate, WrongTypesStopRuleEvaluation) {
  auto errors = validate(with("/spec/pool/maxSize", "ten"));
  ASSERT_EQ(errors.size(), 2u) << all(errors);
  EXPECT_EQ(errors[0].field, "spec.pool.maxSize");
  EXPECT_NE(errors[0].message.find("must be of type integer"), std::string::npos);
  EXPECT_NE(errors[1].message.find("some validation rules were not checked"), std::string::npos);
  EXPECT_NE(all(validate(with("/spec/suspend", "true"))).find("must be of type boolean"), std::string::npos);
  EXPECT_NE(all(validate(with("/spec/kinds", "Deployment"))).find("must be of type array"), std::string::npos);
  EXPECT_NE(all(validate(with("/spec/pool", 5))).find("spec.pool: Invalid value: 5: must be of type object"),
            std::string::npos);
  EXPECT_NE(all(validate(with("/spec/pool/idleTimeout", 600))).find("must be of type string"), std::string::npos);
  EXPECT_NE(all(validate(with("/spec/priority", 1.5))).find("must be of type integer"), std::string::npos);
  EXPECT_NE(all(validate(with("/spec/selector/matchLabels", json{{"app", 5}}))).find("must be of type string"),
            std::string::npos);
}

TEST(Validate, PoolRanges) {
  expectOne(with("/spec/pool/maxSize", 0), "spec.pool.maxSize", "should be greater than or equal to 1");
  // The minIdle rule fires too (0 <= -5 fails), as it does on admission.
  expectHas(with("/spec/pool/maxSize", -5), "spec.pool.maxSize", "should be greater than or equal to 1");
  expectOne(with("/spec/pool/maxSize", 10001), "spec.pool.maxSize", "should be less than or equal to 10000");
  expectValid(with("/spec/pool/maxSize", 10000));
  expectValid(with("/spec/pool/maxSize", 1));
  // Beyond 64 bits: still a clean range error.
  expectOne(with("/spec/pool/maxSize", json(18446744073709551615ULL)), "spec.pool.maxSize", "less than or equal");
  expectHas(with("/spec/pool/maxSize", json(INT64_MIN)), "spec.pool.maxSize", "greater than or equal");
  expectOne(with("/spec/pool/minIdle", -1), "spec.pool.minIdle", "should be greater than or equal to 0");
  expectOne(with("/spec/pool/processesPerPod", 0), "spec.pool.processesPerPod", "greater than or equal to 1");
  expectOne(with("/spec/pool/processesPerPod", 10001), "spec.pool.processesPerPod", "less than or equal to 10000");
}

TEST(Validate, MinIdleAtMostMaxSize) {
  expectValid(with("/spec/pool/minIdle", 10));
  auto obj = with("/spec/pool/minIdle", 11);
  expectOne(obj, "spec.pool.minIdle", "minIdle must be <= maxSize; lower minIdle or raise maxSize");
  EXPECT_EQ(validate(obj)[0].message, "Invalid value: 11: minIdle must be <= maxSize; lower minIdle or raise maxSize");
}

TEST(Validate, DurationSyntax) {
  for (const char* field : {"acquireTimeout", "idleTimeout", "maxLifetime", "leakDetectionThreshold"}) {
    for (const char* bad : {"30", "thirty", "-5s", "5d", "", "3000000h"}) {
      expectOne(with(std::string("/spec/pool/") + field, bad), std::string("spec.pool.") + field,
                "must be a duration such as 500ms, 30s, 10m or 1h30m");
    }
  }
  expectOne(with("/spec/usage/interval", "1 minute"), "spec.usage.interval", "must be a duration");
  expectOne(with("/spec/usage/thresholds/idleInTransaction", "x"), "spec.usage.thresholds.idleInTransaction",
            "must be a duration");
  expectOne(with("/spec/pool/acquireTimeout", std::string(65, '1')), "spec.pool.acquireTimeout", "Too long");
  expectValid(with("/spec/pool/acquireTimeout", "1m0.5s"));
  expectValid(with("/spec/pool/acquireTimeout", "0"));
}

TEST(Validate, LeakDetectionThreshold) {
  expectValid(with("/spec/pool/leakDetectionThreshold", "0s"));
  expectValid(with("/spec/pool/leakDetectionThreshold", "0"));
  expectValid(with("/spec/pool/leakDetectionThreshold", "2s"));
  expectValid(with("/spec/pool/leakDetectionThreshold", "2000ms"));
  expectOne(with("/spec/pool/leakDetectionThreshold", "1999ms"), "spec.pool.leakDetectionThreshold",
            "leakDetectionThreshold must be 0s (off) or at least 2s");
  // Sub-millisecond values are not rounded to 0 (off): admission sees 1ns, so must validate.
  expectOne(with("/spec/pool/leakDetectionThreshold", "1ns"), "spec.pool.leakDetectionThreshold", "at least 2s");
}

TEST(Validate, MaxLifetimeAgainstIdleTimeoutIncludingDefaults) {
  json obj = base();
  obj["spec"]["pool"]["idleTimeout"] = "10m";
  obj["spec"]["pool"]["maxLifetime"] = "0s";
  expectValid(obj);
  obj["spec"]["pool"]["maxLifetime"] = "10m1ms";
  expectValid(obj);
  obj["spec"]["pool"]["maxLifetime"] = "600s";
  expectOne(obj, "spec.pool.maxLifetime", "maxLifetime must be 0s (unlimited) or longer than idleTimeout");
  // Defaults take part: idleTimeout 45m against the default maxLifetime 30m.
  expectOne(with("/spec/pool/idleTimeout", "45m"), "spec.pool.maxLifetime", "longer than idleTimeout");
  // And maxLifetime 5m against the default idleTimeout 10m.
  expectOne(with("/spec/pool/maxLifetime", "5m"), "spec.pool.maxLifetime", "longer than idleTimeout");
  // A syntax error in one of them is reported once, not again by the comparison.
  auto errors = validate(with("/spec/pool/idleTimeout", "forever"));
  EXPECT_EQ(errors.size(), 1u) << all(errors);
}

TEST(Validate, Kinds) {
  expectValid(with("/spec/kinds", json::array({"StatefulSet"})));
  expectOne(with("/spec/kinds", json::array()), "spec.kinds", "should have at least 1 items");
  expectValid(with("/spec/kinds", json::array({"DaemonSet", "Job", "CronJob", "Rollout"})));
  expectOne(with("/spec/kinds", json::array({"ReplicaSet"})), "spec.kinds[0]", "Unsupported value: \"ReplicaSet\"");
  expectOne(with("/spec/kinds", json::array({"Deployment", "Deployment"})), "spec.kinds[1]",
            "Duplicate value: \"Deployment\"");
  auto errors = validate(with("/spec/kinds", json::array({"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob",
                                                          "Rollout", "Deployment"})));
  EXPECT_NE(all(errors).find("spec.kinds: Too many: 7: must have at most 6 items"), std::string::npos) << all(errors);
}

TEST(Validate, Containers) {
  expectValid(with("/spec/containers", json::array({"app", "worker-2"})));
  expectOne(with("/spec/containers", json::array({"app", "app"})), "spec.containers[1]", "Duplicate value: \"app\"");
  expectOne(with("/spec/containers", json::array({"App"})), "spec.containers[0]", "should match");
  expectOne(with("/spec/containers", json::array({"-app"})), "spec.containers[0]", "should match");
  expectOne(with("/spec/containers", json::array({std::string(64, 'a')})), "spec.containers[0]",
            "Too long: may not be more than 63 bytes");
}

TEST(Validate, Enums) {
  expectOne(with("/spec/mode", "enforce"), "spec.mode",
            "Unsupported value: \"enforce\": supported values: "
            "\"Enforce\", \"Audit\"");
  expectOne(with("/spec/profile", "Hikari"), "spec.profile", "\"SpringHikari\", \"GoSQL\"");
  expectOne(with("/spec/delivery/method", "File"), "spec.delivery.method", "Unsupported value");
  expectOne(with("/spec/budget/onExceeded", "Fail"), "spec.budget.onExceeded", "\"Warn\", \"Clamp\"");
  for (const char* mode : {"Enforce", "Audit"}) expectValid(with("/spec/mode", mode));
  for (const char* profile :
       {"SpringHikari", "GoSQL", "Pgxpool", "SQLAlchemy", "NodePostgres", "PgBouncer", "Generic"}) {
    expectValid(with("/spec/profile", profile));
  }
}

TEST(Validate, PriorityAndWeight) {
  expectValid(with("/spec/priority", -100));
  expectValid(with("/spec/priority", 2147483647));
  expectOne(with("/spec/priority", 2147483648LL), "spec.priority", "should be less than or equal to 2147483647");
  expectOne(with("/spec/budget/weight", 0), "spec.budget.weight", "should be greater than or equal to 1");
  expectValid(with("/spec/budget/weight", 7));
}

TEST(Validate, DeliveryEnvNames) {
  expectValid(
      with("/spec/delivery/envNames",
           json{{"maxSize", "DB_POOL_MAX"}, {"applicationName", "PGAPPNAME"}, {"leakDetectionThreshold", "_LEAK"}}));
  expectOne(with("/spec/delivery/envNames", json{{"poolSize", "X"}}), "spec.delivery.envNames.poolSize",
            "unknown field \"spec.delivery.envNames.poolSize\"");
  for (const char* bad : {"1POOL", "POOL-SIZE", "", "POOL SIZE", "pool.size"}) {
    expectOne(with("/spec/delivery/envNames", json{{"minIdle", bad}}), "spec.delivery.envNames.minIdle",
              "must be an environment variable name");
  }
}

TEST(Validate, ApplicationNameTemplate) {
  for (const char* ok : {"", "{namespace}/{name}", "{name}", "static-name", "{namespace}-{name}-x"}) {
    expectValid(with("/spec/delivery/applicationName", ok));
  }
  for (const char* bad : {"{app}", "{name", "name}", "{{name}}", "{namespace}/{pod}", "{}"}) {
    expectOne(with("/spec/delivery/applicationName", bad), "spec.delivery.applicationName",
              "applicationName may use only the placeholders {namespace} and {name}");
  }
}

TEST(Validate, Database) {
  expectOne(with("/spec/database/name", ""), "spec.database.name", "should be at least 1 chars long");
  expectHas(with("/spec/database/maxConnections", 0), "spec.database.maxConnections", "greater than or equal to 1");
  expectOne(with("/spec/database/maxConnections", 262144), "spec.database.maxConnections", "less than or equal");
  expectOne(with("/spec/database/reservedConnections", -1), "spec.database.reservedConnections",
            "greater than or equal to 0");
  json obj = base();
  obj["spec"]["database"]["maxConnections"] = 10;
  obj["spec"]["database"]["reservedConnections"] = 9;
  expectValid(obj);
  obj["spec"]["database"]["reservedConnections"] = 10;
  expectOne(obj, "spec.database.reservedConnections",
            "reservedConnections must be < maxConnections; lower reservedConnections or raise maxConnections");
  // The default of 3 reserved connections counts.
  expectOne(with("/spec/database/maxConnections", 3), "spec.database.reservedConnections", "must be < maxConnections");
  expectValid(with("/spec/database/maxConnections", 4));
}

TEST(Validate, UsageIntervalAndThresholds) {
  expectValid(with("/spec/usage/interval", "5s"));
  expectOne(with("/spec/usage/interval", "4.999s"), "spec.usage.interval", "interval must be at least 5s");
  expectOne(with("/spec/usage/thresholds/saturationPercent", 0), "spec.usage.thresholds.saturationPercent",
            "greater than or equal to 1");
  expectOne(with("/spec/usage/thresholds/saturationPercent", 101), "spec.usage.thresholds.saturationPercent",
            "less than or equal to 100");
  expectOne(with("/spec/usage/thresholds/idleInTransaction", "0s"), "spec.usage.thresholds.idleInTransaction",
            "idleInTransaction must be at least 1s");
}

TEST(Validate, Postgres) {
  json pg = {{"host", "db"}, {"database", "app"}, {"credentialsSecretRef", {{"name", "monitor"}}}};
  expectValid(with("/spec/usage/postgres", pg));
  for (const char* field : {"host", "database", "credentialsSecretRef"}) {
    json broken = pg;
    broken.erase(field);
    expectOne(with("/spec/usage/postgres", broken), std::string("spec.usage.postgres.") + field, "Required value");
  }
  json noName = pg;
  noName["credentialsSecretRef"] = {{"usernameKey", "u"}};
  expectOne(with("/spec/usage/postgres", noName), "spec.usage.postgres.credentialsSecretRef.name", "Required value");
  json badPort = pg;
  badPort["port"] = 0;
  expectOne(with("/spec/usage/postgres", badPort), "spec.usage.postgres.port", "greater than or equal to 1");
  badPort["port"] = 65536;
  expectOne(with("/spec/usage/postgres", badPort), "spec.usage.postgres.port", "less than or equal to 65535");
  json badSsl = pg;
  badSsl["sslMode"] = "prefer";
  expectOne(with("/spec/usage/postgres", badSsl), "spec.usage.postgres.sslMode", "Unsupported value: \"prefer\"");
  json ca = pg;
  ca["caSecretRef"] = json::object();
  expectOne(with("/spec/usage/postgres", ca), "spec.usage.postgres.caSecretRef.name", "Required value");
  json badSecret = pg;
  badSecret["credentialsSecretRef"]["name"] = "Monitor_Secret";
  expectOne(with("/spec/usage/postgres", badSecret), "spec.usage.postgres.credentialsSecretRef.name", "should match");
}

TEST(Validate, Prometheus) {
  for (const char* ok : {"http://prometheus:9090", "https://prom.example/api", "http://10.0.0.1:9090/?x=1"}) {
    expectValid(with("/spec/usage/prometheus", json{{"url", ok}}));
  }
  for (const char* bad :
       {"ftp://prometheus", "prometheus:9090", "http://", "http:///path", "https://a b", "HTTP://prometheus", ""}) {
    expectOne(with("/spec/usage/prometheus", json{{"url", bad}}), "spec.usage.prometheus.url",
              "url must be an http:// or https:// URL");
  }
  expectOne(with("/spec/usage/prometheus", json{{"connectionsQuery", "up"}}), "spec.usage.prometheus.url",
            "Required value");
}

TEST(Validate, Selector) {
  expectValid(with("/spec/selector", json::object()));
  auto req = [](json r) { return with("/spec/selector", json{{"matchExpressions", json::array({std::move(r)})}}); };
  expectValid(req({{"key", "tier"}, {"operator", "In"}, {"values", {"api"}}}));
  expectValid(req({{"key", "tier"}, {"operator", "NotIn"}, {"values", {"api"}}}));
  expectValid(req({{"key", "tier"}, {"operator", "Exists"}}));
  expectValid(req({{"key", "tier"}, {"operator", "DoesNotExist"}, {"values", json::array()}}));
  expectOne(req({{"key", "tier"}, {"operator", "In"}}), "spec.selector.matchExpressions[0].values",
            "values must be non-empty when operator is In or NotIn");
  expectOne(req({{"key", "tier"}, {"operator", "NotIn"}, {"values", json::array()}}),
            "spec.selector.matchExpressions[0].values", "must be non-empty");
  expectOne(req({{"key", "tier"}, {"operator", "Exists"}, {"values", {"a"}}}),
            "spec.selector.matchExpressions[0].values", "values must be empty when operator is Exists or DoesNotExist");
  expectOne(req({{"key", "tier"}, {"operator", "Equals"}, {"values", {"a"}}}),
            "spec.selector.matchExpressions[0].operator", "Unsupported value: \"Equals\"");
  expectOne(req({{"operator", "Exists"}}), "spec.selector.matchExpressions[0].key", "Required value");
  expectOne(req({{"key", "bad key"}, {"operator", "Exists"}}), "spec.selector.matchExpressions[0].key", "should match");
  expectValid(req({{"key", "app.kubernetes.io/name"}, {"operator", "Exists"}}));
  expectOne(with("/spec/selector/matchLabels", json{{"app", "web app"}}), "spec.selector.matchLabels[app]",
            "should match");
  expectOne(with("/spec/selector/matchLabels", json{{"app/x/y", "web"}}), "spec.selector.matchLabels",
            "every matchLabels key must be a label key");
  expectValid(with("/spec/selector/matchLabels", json{{"example.com/app", ""}}));
}

TEST(Validate, ManyErrorsAreAllReportedInPathOrder) {
  json obj = base();
  obj["spec"]["pool"]["maxSize"] = 0;
  obj["spec"]["mode"] = "x";
  obj["spec"]["database"]["reservedConnections"] = -1;
  auto errors = validate(obj);
  ASSERT_EQ(errors.size(), 3u) << all(errors);
  EXPECT_EQ(errors[0].field, "spec.database.reservedConnections");
  EXPECT_EQ(errors[1].field, "spec.mode");
  EXPECT_EQ(errors[2].field, "spec.pool.maxSize");
}

TEST(ApplyDefaults, FillsWhatTheApiServerFills) {
  json d = applyDefaults(base());
  const json& s = d["spec"];
  EXPECT_EQ(s["kinds"], json::array({"Deployment", "StatefulSet"}));
  EXPECT_FALSE(s.contains("containers"));
  EXPECT_EQ(s["mode"], "Enforce");
  EXPECT_EQ(s["priority"], 0);
  EXPECT_EQ(s["suspend"], false);
  EXPECT_EQ(s["pool"]["minIdle"], 0);
  EXPECT_EQ(s["pool"]["acquireTimeout"], "30s");
  EXPECT_EQ(s["pool"]["idleTimeout"], "10m");
  EXPECT_EQ(s["pool"]["maxLifetime"], "30m");
  EXPECT_EQ(s["pool"]["leakDetectionThreshold"], "0s");
  EXPECT_EQ(s["pool"]["processesPerPod"], 1);
  EXPECT_EQ(s["profile"], "Generic");
  EXPECT_EQ(s["delivery"], json({{"method", "Env"}, {"applicationName", "{namespace}/{name}"}}));
  EXPECT_EQ(s["rollout"]["restartOnChange"], true);
  EXPECT_EQ(s["database"]["reservedConnections"], 3);
  EXPECT_FALSE(s["database"].contains("maxConnections"));
  EXPECT_EQ(s["budget"], json({{"onExceeded", "Warn"}, {"weight", 1}, {"terminatingPods", "Ignore"}}));
  EXPECT_EQ(s["usage"]["interval"], "30s");
  EXPECT_EQ(s["usage"]["thresholds"], json({{"saturationPercent", 90}, {"idleInTransaction", "60s"}}));
  EXPECT_FALSE(s["usage"].contains("postgres"));
}

TEST(ApplyDefaults, NestedDefaultsInsideGivenObjects) {
  json d = applyDefaults(with("/spec/usage/postgres", json{{"host", "h"},
                                                           {"database", "d"},
                                                           {"credentialsSecretRef", {{"name", "s"}}},
                                                           {"caSecretRef", {{"name", "ca"}}}}));
  const json& pg = d["spec"]["usage"]["postgres"];
  EXPECT_EQ(pg["port"], 5432);
  EXPECT_EQ(pg["sslMode"], "verify-full");
  EXPECT_EQ(pg["credentialsSecretRef"]["usernameKey"], "username");
  EXPECT_EQ(pg["credentialsSecretRef"]["passwordKey"], "password");
  EXPECT_EQ(pg["caSecretRef"]["key"], "ca.crt");
}

TEST(ApplyDefaults, NullsArePrunedThenDefaulted) {
  json d = applyDefaults(with("/spec/mode", nullptr));
  EXPECT_EQ(d["spec"]["mode"], "Enforce");
}

}  // namespace
}  // namespace poolguard::policy

namespace poolguard::policy {
namespace {

json budget(json spec) {
  return {{"apiVersion", "poolguard.dev/v1alpha1"},
          {"kind", "ClusterConnectionBudget"},
          {"metadata", {{"name", "orders"}}},
          {"spec", std::move(spec)}};
}

std::vector<std::string> budgetErrors(const json& obj) {
  std::vector<std::string> out;
  for (const auto& e : validateBudget(obj)) out.push_back(toString(e));
  return out;
}

TEST(ValidateBudget, EveryRuleOfTheSpecAndItsDefaults) {
  EXPECT_TRUE(budgetErrors(budget(json::object())).empty());
  auto ok = budgetFromJson(budget({{"maxConnections", 200}, {"ceilings", {{"maxSize", 20}}}}));
  ASSERT_TRUE(ok.ok()) << ok.error().message();
  EXPECT_EQ(ok->database, "orders");
  EXPECT_EQ(ok->maxConnections, 200);
  EXPECT_FALSE(ok->reservedConnections) << "unset: the policies' reserve applies";
  EXPECT_EQ(ok->ceilings.maxSize, 20);
  EXPECT_FALSE(ok->ceilings.requireLeakDetection);
  EXPECT_TRUE(ok->allocations.empty());
  EXPECT_EQ(ok->admissionMode, AdmissionMode::kNone);

  auto shared = budgetFromJson(budget(
      {{"admission", {{"mode", "Warn"}}},
       {"allocations",
        {{{"name", "payments"}, {"namespaceSelector", {{"matchLabels", {{"team", "pay"}}}}}, {"maxConnections", 40}},
         {{"name", "rest"}, {"namespaceSelector", json::object()}, {"maxConnections", 30}}}}}));
  ASSERT_TRUE(shared.ok()) << shared.error().message();
  EXPECT_EQ(shared->admissionMode, AdmissionMode::kWarn);
  ASSERT_EQ(shared->allocations.size(), 2u);
  EXPECT_EQ(shared->allocations[0].name, "payments");
  EXPECT_EQ(shared->allocations[0].maxConnections, 40);
  EXPECT_EQ(allocationOf(*shared, {{"team", "pay"}}), 0);
  EXPECT_EQ(allocationOf(*shared, {{"team", "retail"}}), 1) << "the empty selector matches every namespace";

  const std::vector<std::pair<json, std::string>> cases{
      {{{"maxConnections", 0}}, "spec.maxConnections: Invalid value: 0: should be greater than or equal to 1"},
      {{{"maxConnections", "100"}}, "spec.maxConnections: Invalid value: \"100\": must be of type integer"},
      {{{"maxConnections", 10}, {"reservedConnections", 10}},
       "spec.reservedConnections: Invalid value: 10: reservedConnections must be < maxConnections"},
      {{{"ceilings", {{"maxSize", 0}}}}, "spec.ceilings.maxSize: Invalid value: 0"},
      {{{"ceilings", {{"requireLeakDetection", "yes"}}}}, "spec.ceilings.requireLeakDetection: Invalid value"},
      {{{"allocation", json::array()}}, "spec.allocation: unknown field"},
      {{{"allocations", {{{"name", "a"}, {"namespaceSelector", json::object()}}}}},
       "spec.allocations[0].maxConnections: Required value"},
      {{{"allocations", {{{"name", "Team A"}, {"namespaceSelector", json::object()}, {"maxConnections", 5}}}}},
       "spec.allocations[0].name: Invalid value: \"Team A\""},
      {{{"allocations",
         {{{"name", "a"}, {"namespaceSelector", json::object()}, {"maxConnections", 5}},
          {{"name", "a"}, {"namespaceSelector", {{"matchLabels", {{"team", "x"}}}}}, {"maxConnections", 5}}}}},
       "spec.allocations[1]: Duplicate value: {\"name\":\"a\"}; give each item its own name"},
      {{{"allocations",
         {{{"name", "a"},
           {"namespaceSelector", {{"matchExpressions", {{{"key", "team"}, {"operator", "In"}}}}}},
           {"maxConnections", 5}}}}},
       "spec.allocations[0].namespaceSelector.matchExpressions[0].values: Invalid value"},
      {{{"admission", {{"mode", "Block"}}}}, "spec.admission.mode: Unsupported value: \"Block\""},
  };
  for (const auto& [spec, expected] : cases) {
    auto errors = budgetErrors(budget(spec));
    ASSERT_FALSE(errors.empty()) << spec.dump();
    EXPECT_EQ(errors[0].rfind(expected, 0), 0u) << spec.dump() << " gave: " << errors[0];
  }
  json wrongKind = budget(json::object());
  wrongKind["kind"] = "ConnectionPoolPolicy";
  EXPECT_EQ(budgetErrors(wrongKind).at(0).rfind("kind: Unsupported value", 0), 0u);
  json unnamed = budget(json::object());
  unnamed["metadata"].erase("name");
  EXPECT_EQ(budgetErrors(unnamed).at(0).rfind("metadata.name: Required value", 0), 0u);
  auto bad = budgetFromJson(budget({{"maxConnections", 0}}));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message().rfind("ClusterConnectionBudget \"orders\" is invalid: spec.maxConnections: "
                                        "Invalid value: 0",
                                        0),
            0u)
      << bad.error().message();
}

}  // namespace
}  // namespace poolguard::policy
