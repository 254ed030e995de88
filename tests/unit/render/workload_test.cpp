#include "render/workload.h"

#include <set>

#include <gtest/gtest.h>

#include "fixtures.h"

namespace poolguard::render {
namespace {

using policy::DeliveryMethod;
using policy::Profile;
using testing::basePolicy;
using testing::deployment;

// The live object after the API server merged an apply body into it (the parts render owns).
json applied(json live, const DesiredWorkload& d) {
  for (auto it = d.apply["metadata"]["annotations"].begin(); it != d.apply["metadata"]["annotations"].end(); ++it) {
    live["metadata"]["annotations"][it.key()] = it.value();
  }
  const json& tmpl = d.apply["spec"]["template"];
  if (tmpl.contains("metadata")) {
    for (auto it = tmpl["metadata"]["annotations"].begin(); it != tmpl["metadata"]["annotations"].end(); ++it) {
      live["spec"]["template"]["metadata"]["annotations"][it.key()] = it.value();
    }
  }
  for (const auto& want : tmpl["spec"]["containers"]) {
    for (auto& c : live["spec"]["template"]["spec"]["containers"]) {
      if (c["name"] != want["name"]) continue;
      if (want.contains("envFrom")) c["envFrom"] = want["envFrom"];
      if (want.contains("env")) {
        for (const auto& e : want["env"]) {
          bool replaced = false;
          for (auto& have : c["env"]) {
            if (have["name"] == e["name"]) {
              have = e;
              replaced = true;
            }
          }
          if (!replaced) c["env"].push_back(e);
        }
      }
    }
  }
  return live;
}

TEST(RenderWorkload, EnvDeliveryCarriesOnlyOwnedFields) {
  auto d = renderWorkload(basePolicy(), deployment());
  ASSERT_TRUE(d.ok()) << d.error().message();
  const json& body = d->apply;
  EXPECT_EQ(body["apiVersion"], "apps/v1");
  EXPECT_EQ(body["kind"], "Deployment");
  EXPECT_EQ(body["metadata"], json::parse(R"({"name":"orders-api","namespace":"shop",
      "annotations":{"poolguard.dev/policy":"orders-pool"}})"));
  EXPECT_EQ(body["spec"].size(), 1u) << "no selector, replicas or strategy: " << body.dump();
  EXPECT_EQ(body["spec"]["template"]["metadata"]["annotations"]["poolguard.dev/settings-hash"], d->settings.hash);
  const auto& containers = body["spec"]["template"]["spec"]["containers"];
  ASSERT_EQ(containers.size(), 2u);
  EXPECT_EQ(containers[0]["name"], "app");
  EXPECT_EQ(containers[1]["name"], "metrics-sidecar");
  EXPECT_EQ(containers[0].size(), 2u) << "name and env only: " << containers[0].dump();
  EXPECT_EQ(containers[0]["env"][0], json::parse(R"({"name":"POOL_MAX_SIZE","value":"20"})"));
  EXPECT_FALSE(body["spec"]["template"]["spec"].contains("initContainers"));
  EXPECT_FALSE(d->configMap.has_value());
}

TEST(RenderWorkload, SelectsNamedContainersAndReportsMissingOnes) {
  auto p = basePolicy();
  p.spec.containers = {"app", "worker"};
  auto d = renderWorkload(p, deployment());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->containers, std::vector<std::string>{"app"});
  EXPECT_EQ(d->missingContainers, std::vector<std::string>{"worker"});
  EXPECT_EQ(d->apply["spec"]["template"]["spec"]["containers"].size(), 1u);
}

TEST(RenderWorkload, NoneOfTheNamedContainersIsAnErrorThatSaysWhatToDo) {
  auto p = basePolicy();
  p.spec.containers = {"migrate"};  // an init container: never selected
  auto d = renderWorkload(p, deployment());
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().message().find("spec.containers (migrate)"), std::string::npos) << d.error().message();
  EXPECT_NE(d.error().message().find("Deployment shop/orders-api"), std::string::npos);
}

TEST(RenderWorkload, RejectsObjectsThatAreNotWorkloads) {
  auto d = renderWorkload(basePolicy(), json{{"kind", "ReplicaSet"}, {"metadata", {{"name", "x"}}}});
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().message().find("Deployment, StatefulSet, DaemonSet, CronJob or Rollout"), std::string::npos)
      << d.error().message();
}

TEST(RenderWorkload, RestartOnChangeFalseLeavesThePodTemplateAnnotationOut) {
  auto p = basePolicy();
  p.spec.rollout.restartOnChange = false;
  auto d = renderWorkload(p, deployment());
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->apply["spec"]["template"].contains("metadata"));
}

TEST(RenderWorkload, ConfigMapDeliveryKeepsOtherEnvFromSourcesAndOwnsTheConfigMap) {
  auto d = renderWorkload(basePolicy(Profile::kPgBouncer, DeliveryMethod::kConfigMap), deployment());
  ASSERT_TRUE(d.ok());
  const auto& app = d->apply["spec"]["template"]["spec"]["containers"][0];
  EXPECT_FALSE(app.contains("env"));
  EXPECT_EQ(app["envFrom"], json::parse(R"([{"secretRef":{"name":"orders-db-credentials"}},
      {"configMapRef":{"name":"orders-api-deploy-poolguard"}}])"));
  ASSERT_TRUE(d->configMap.has_value());
  const json& cm = *d->configMap;
  EXPECT_EQ(cm["metadata"]["name"], "orders-api-deploy-poolguard");
  EXPECT_EQ(cm["metadata"]["namespace"], "shop");
  EXPECT_EQ(cm["metadata"]["labels"]["app.kubernetes.io/managed-by"], "poolguard");
  EXPECT_EQ(cm["metadata"]["labels"]["poolguard.dev/policy"], "orders-pool");
  EXPECT_EQ(cm["metadata"]["ownerReferences"][0]["uid"], "6f1d2c4e-workload");
  EXPECT_EQ(cm["metadata"]["ownerReferences"][0]["controller"], false);
  EXPECT_EQ(cm["data"]["PGBOUNCER_DEFAULT_POOL_SIZE"], "20");
  EXPECT_EQ(cm["data"]["pgbouncer.ini"], d->settings.pgbouncerIni);

  // Rendering again over the applied object does not duplicate the reference.
  auto again = renderWorkload(basePolicy(Profile::kPgBouncer, DeliveryMethod::kConfigMap), applied(deployment(), *d));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->apply, d->apply);
}

TEST(RenderWorkload, ConfigMapWithoutWorkloadUidHasNoOwnerReference) {
  auto w = deployment();
  w["metadata"].erase("uid");
  auto d = renderWorkload(basePolicy(Profile::kGeneric, DeliveryMethod::kConfigMap), w);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE((*d->configMap)["metadata"].contains("ownerReferences"));
}

TEST(RenderWorkload, ConfigMapNamesDistinguishKindsAndStayWithinLimits) {
  EXPECT_EQ(configMapName(policy::WorkloadKind::kStatefulSet, "db"), "db-sts-poolguard");
  EXPECT_NE(configMapName(policy::WorkloadKind::kDeployment, "db"),
            configMapName(policy::WorkloadKind::kStatefulSet, "db"));
  std::string longA(250, 'a');
  std::string longB = longA;
  longB.back() = 'b';
  auto a = configMapName(policy::WorkloadKind::kDeployment, longA);
  auto b = configMapName(policy::WorkloadKind::kDeployment, longB);
  EXPECT_LE(a.size(), 253u);
  EXPECT_NE(a, b);
}

TEST(RenderWorkload, LongPolicyNamesStayOutOfLabels) {
  auto p = basePolicy(Profile::kGeneric, DeliveryMethod::kConfigMap);
  p.name = std::string(70, 'p');
  auto d = renderWorkload(p, deployment());
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE((*d->configMap)["metadata"]["labels"].contains("poolguard.dev/policy"));
  EXPECT_EQ((*d->configMap)["metadata"]["annotations"]["poolguard.dev/policy"], p.name);
}

TEST(Compare, AppliedWorkloadIsInSync) {
  auto d = renderWorkload(basePolicy(), deployment());
  ASSERT_TRUE(d.ok());
  auto live = applied(deployment(), *d);
  auto c = compare(live, std::nullopt, *d);
  EXPECT_TRUE(c.inSync()) << ::testing::PrintToString(c.differences);
}

TEST(Compare, ReportsWhatEnforceWouldChange) {
  auto d = renderWorkload(basePolicy(), deployment());
  ASSERT_TRUE(d.ok());
  auto live = applied(deployment(), *d);
  auto& env = live["spec"]["template"]["spec"]["containers"][0]["env"];
  for (auto& e : env) {
    if (e["name"] == "POOL_MAX_SIZE") e["value"] = "50";
    if (e["name"] == "POOL_MIN_IDLE")
      e = json{{"name", "POOL_MIN_IDLE"}, {"valueFrom", {{"secretKeyRef", {{"name", "x"}}}}}};
  }
  live["spec"]["template"]["spec"]["containers"][1]["env"] = json::array();
  live["spec"]["template"]["metadata"]["annotations"]["poolguard.dev/settings-hash"] = "0000";
  auto c = compare(live, std::nullopt, *d);
  auto has = [&](const std::string& line) {
    return std::find(c.differences.begin(), c.differences.end(), line) != c.differences.end();
  };
  EXPECT_TRUE(has("container app env POOL_MAX_SIZE: live 50, desired 20")) << ::testing::PrintToString(c.differences);
  EXPECT_TRUE(has("container app env POOL_MIN_IDLE: live valueFrom, desired 5"));
  EXPECT_TRUE(has("container metrics-sidecar env POOL_MAX_SIZE: missing, desired 20"));
  EXPECT_TRUE(has("pod template annotation poolguard.dev/settings-hash: live 0000, desired " + d->settings.hash));
}

TEST(Compare, UntouchedWorkloadReportsEverything) {
  auto d = renderWorkload(basePolicy(), deployment());
  ASSERT_TRUE(d.ok());
  auto c = compare(deployment(), std::nullopt, *d);
  // policy annotation + hash + 7 env entries x 2 containers
  EXPECT_EQ(c.differences.size(), 16u) << ::testing::PrintToString(c.differences);
}

TEST(Compare, ConfigMapDeliveryChecksTheReferenceTheDataAndOverridingEnv) {
  auto p = basePolicy(Profile::kGeneric, DeliveryMethod::kConfigMap);
  auto d = renderWorkload(p, deployment());
  ASSERT_TRUE(d.ok());
  auto live = applied(deployment(), *d);
  EXPECT_TRUE(compare(live, d->configMap, *d).inSync());

  auto c = compare(live, std::nullopt, *d);
  ASSERT_EQ(c.differences.size(), 1u);
  EXPECT_EQ(c.differences[0], "ConfigMap orders-api-deploy-poolguard: missing");

  json liveCm = *d->configMap;
  liveCm["data"]["POOL_MAX_SIZE"] = "99";
  liveCm["data"]["EXTRA_KEY_SOMEONE_ADDED"] = "1";
  c = compare(live, liveCm, *d);
  ASSERT_EQ(c.differences.size(), 1u) << ::testing::PrintToString(c.differences);
  EXPECT_EQ(c.differences[0], "ConfigMap orders-api-deploy-poolguard data POOL_MAX_SIZE: live 99, desired 20");

  live["spec"]["template"]["spec"]["containers"][0]["env"].push_back({{"name", "POOL_MAX_SIZE"}, {"value", "7"}});
  c = compare(live, d->configMap, *d);
  ASSERT_EQ(c.differences.size(), 1u);
  EXPECT_NE(c.differences[0].find("env POOL_MAX_SIZE: live 7 overrides ConfigMap"), std::string::npos);

  live["spec"]["template"]["spec"]["containers"][1].erase("envFrom");
  c = compare(live, d->configMap, *d);
  EXPECT_NE(std::find(c.differences.begin(), c.differences.end(),
                      "container metrics-sidecar envFrom: missing configMapRef orders-api-deploy-poolguard"),
            c.differences.end());
}

// The env entry of `name` in the body's container `container`, or null.
json bodyEnv(const DesiredWorkload& d, const std::string& container, const std::string& name) {
  for (const auto& c : d.apply["spec"]["template"]["spec"]["containers"]) {
    if (c["name"] != container || !c.contains("env")) continue;
    for (const auto& e : c["env"]) {
      if (e["name"] == name) return e;
    }
  }
  return nullptr;
}

// deployment() with one more env entry on its container app.
json deploymentWithAppEnv(const std::string& name, const std::string& value) {
  auto w = deployment();
  w["spec"]["template"]["spec"]["containers"][0]["env"].push_back({{"name", name}, {"value", value}});
  return w;
}

policy::Policy withIdleInTransactionTimeout(Profile profile, DeliveryMethod method = DeliveryMethod::kEnv) {
  auto p = basePolicy(profile, method);
  p.spec.pool.idleInTransactionTimeout = policy::Millis(45'000);
  return p;
}

TEST(RenderWorkload, AContainerThatSetsItsOwnServerOptionsKeepsThem) {
  for (const auto& [profile, variable] : std::vector<std::pair<Profile, std::string>>{
           {Profile::kSQLAlchemy, "PGOPTIONS"},
           {Profile::kSpringHikari, "SPRING_DATASOURCE_HIKARI_DATASOURCEPROPERTIES_OPTIONS"}}) {
    SCOPED_TRACE(policy::toString(profile));
    auto p = withIdleInTransactionTimeout(profile);
    auto w = deploymentWithAppEnv(variable, "-c search_path=shop");
    auto d = renderWorkload(p, w);
    ASSERT_TRUE(d.ok()) << d.error().message();
    EXPECT_TRUE(bodyEnv(*d, "app", variable).is_null()) << "the container's own " << variable << " is not poolguard's";
    EXPECT_EQ(bodyEnv(*d, "metrics-sidecar", variable)["value"], "-c idle_in_transaction_session_timeout=45000");
    EXPECT_EQ(bodyEnv(*d, "app", d->settings.env.front().name)["value"], d->settings.env.front().value)
        << "the other settings are written";
    auto live = applied(w, *d);
    EXPECT_EQ(live["spec"]["template"]["spec"]["containers"][0]["env"][1]["value"], "-c search_path=shop");
    auto c = compare(live, std::nullopt, *d);
    EXPECT_TRUE(c.inSync()) << "nothing Enforce could change: " << ::testing::PrintToString(c.differences);

    // From a Secret or ConfigMap key: the container's too.
    w["spec"]["template"]["spec"]["containers"][0]["env"][1] =
        json{{"name", variable}, {"valueFrom", {{"configMapKeyRef", {{"name", "db"}, {"key", "options"}}}}}};
    d = renderWorkload(p, w);
    ASSERT_TRUE(d.ok());
    EXPECT_TRUE(bodyEnv(*d, "app", variable).is_null());
  }
}

TEST(RenderWorkload, PgOptionsPoolguardWroteBeforeFollowsThePolicy) {
  auto p = withIdleInTransactionTimeout(Profile::kNodePostgres);
  auto w = deploymentWithAppEnv("PGOPTIONS", "-c idle_in_transaction_session_timeout=30000");
  auto d = renderWorkload(p, w);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(bodyEnv(*d, "app", "PGOPTIONS")["value"], "-c idle_in_transaction_session_timeout=45000");
  auto c = compare(w, std::nullopt, *d);
  EXPECT_NE(std::find(c.differences.begin(), c.differences.end(),
                      "container app env PGOPTIONS: live -c idle_in_transaction_session_timeout=30000, desired -c "
                      "idle_in_transaction_session_timeout=45000"),
            c.differences.end())
      << ::testing::PrintToString(c.differences);
  EXPECT_TRUE(compare(applied(w, *d), std::nullopt, *d).inSync());

  // Unset again: poolguard's apply body no longer carries PGOPTIONS, so server-side apply removes the entry it owns.
  d = renderWorkload(basePolicy(Profile::kNodePostgres), applied(w, *d));
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(bodyEnv(*d, "app", "PGOPTIONS").is_null());
}

TEST(RenderWorkload, OnlyServerOptionsYieldToTheContainersOwn) {
  // The workload's own POOL_IDLE_IN_TRANSACTION_TIMEOUT_MS is poolguard's to set, as POOL_MAX_SIZE is.
  auto g = deploymentWithAppEnv("POOL_IDLE_IN_TRANSACTION_TIMEOUT_MS", "1");
  auto d = renderWorkload(withIdleInTransactionTimeout(Profile::kGeneric), g);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(bodyEnv(*d, "app", "POOL_IDLE_IN_TRANSACTION_TIMEOUT_MS")["value"], "45000");
  EXPECT_EQ(bodyEnv(*d, "app", "PGOPTIONS")["value"], "-c idle_in_transaction_session_timeout=45000");
}

TEST(Compare, ConfigMapDeliveryDoesNotReportTheContainersOwnPgOptions) {
  auto p = withIdleInTransactionTimeout(Profile::kGoSQL, DeliveryMethod::kConfigMap);
  auto d = renderWorkload(p, deployment());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ((*d->configMap)["data"]["PGOPTIONS"], "-c idle_in_transaction_session_timeout=45000");
  auto live = applied(deployment(), *d);
  live["spec"]["template"]["spec"]["containers"][0]["env"].push_back(
      {{"name", "PGOPTIONS"}, {"value", "-c search_path=shop"}});
  auto c = compare(live, d->configMap, *d);
  EXPECT_TRUE(c.inSync()) << ::testing::PrintToString(c.differences);

  // A copy of poolguard's form with another value is reported, as any overriding entry is.
  live["spec"]["template"]["spec"]["containers"][0]["env"].back()["value"] =
      "-c idle_in_transaction_session_timeout=1000";
  c = compare(live, d->configMap, *d);
  ASSERT_EQ(c.differences.size(), 1u) << ::testing::PrintToString(c.differences);
  EXPECT_NE(c.differences[0].find("env PGOPTIONS: live -c idle_in_transaction_session_timeout=1000 overrides"),
            std::string::npos);
}

TEST(Compare, MissingContainerIsADifference) {
  auto d = renderWorkload(basePolicy(), deployment());
  ASSERT_TRUE(d.ok());
  auto live = applied(deployment(), *d);
  live["spec"]["template"]["spec"]["containers"].erase(1);
  auto c = compare(live, std::nullopt, *d);
  ASSERT_EQ(c.differences.size(), 1u);
  EXPECT_EQ(c.differences[0], "container metrics-sidecar: missing from the live workload");
}

// A CronJob's pods come from spec.jobTemplate.spec.template: the body writes there, and the comparison reads there.
TEST(RenderWorkload, ACronJobGetsItsSettingsInItsJobTemplate) {
  json cronJob = deployment("report");
  cronJob["apiVersion"] = "batch/v1";
  cronJob["kind"] = "CronJob";
  json podTemplate = cronJob["spec"]["template"];
  cronJob["spec"] = {{"schedule", "0 * * * *"}, {"jobTemplate", {{"spec", {{"template", podTemplate}}}}}};
  auto policy = basePolicy();
  policy.spec.delivery.method = DeliveryMethod::kConfigMap;
  auto d = renderWorkload(policy, cronJob);
  ASSERT_TRUE(d.ok()) << d.error().message();
  EXPECT_EQ(d->apply["apiVersion"], "batch/v1");
  EXPECT_EQ(d->apply["kind"], "CronJob");
  EXPECT_FALSE(d->apply["spec"].contains("template"));
  const json& tmpl = podTemplateOf(d->apply, policy::WorkloadKind::kCronJob);
  EXPECT_EQ(tmpl["metadata"]["annotations"]["poolguard.dev/settings-hash"], d->settings.hash);
  ASSERT_EQ(tmpl["spec"]["containers"].size(), 2u);
  EXPECT_EQ(tmpl["spec"]["containers"][0]["envFrom"].back()["configMapRef"]["name"], "report-cronjob-poolguard");
  ASSERT_TRUE(d->configMap.has_value());
  EXPECT_EQ((*d->configMap)["metadata"]["ownerReferences"][0]["apiVersion"], "batch/v1");
  EXPECT_EQ((*d->configMap)["metadata"]["ownerReferences"][0]["kind"], "CronJob");

  // Untouched, every difference is found in the job template; written there, none is left.
  auto before = compare(cronJob, std::nullopt, *d);
  EXPECT_FALSE(before.inSync());
  json live = cronJob;
  json& liveTemplate = live["spec"]["jobTemplate"]["spec"]["template"];
  liveTemplate["metadata"]["annotations"]["poolguard.dev/settings-hash"] = d->settings.hash;
  for (size_t i = 0; i < 2; ++i)
    liveTemplate["spec"]["containers"][i]["envFrom"] = tmpl["spec"]["containers"][i]["envFrom"];
  live["metadata"]["annotations"]["poolguard.dev/policy"] = policy.name;
  model::Diagnostics diagnostics;
  auto after = compareWorkload(model::decodeWorkload(live, diagnostics), *d);
  EXPECT_TRUE(after.inSync()) << ::testing::PrintToString(after.differences);
}

TEST(RenderWorkload, EachKindHasItsOwnConfigMapName) {
  std::set<std::string> names;
  for (const auto& info : policy::kWorkloadKinds) names.insert(configMapName(info.kind, "web"));
  EXPECT_EQ(names.size(), std::size(policy::kWorkloadKinds));
  EXPECT_EQ(configMapName(policy::WorkloadKind::kDaemonSet, "web"), "web-ds-poolguard");
  EXPECT_EQ(configMapName(policy::WorkloadKind::kRollout, "web"), "web-rollout-poolguard");
}

}  // namespace
}  // namespace poolguard::render
