// The fields kept while parsing are all the records need: filtering first changes nothing in what the caches
// hold. And the change filters see what a decision reads, nothing else.
#include "controller/cache_shapes.h"

#include <gtest/gtest.h>

#include "model/records.h"

namespace poolguard::controller {
namespace {

using json = nlohmann::json;

const char* kDeployment = R"({
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "resourceVersion": "7", "generation": 4,
               "creationTimestamp": "2026-01-01T00:00:00Z",
               "labels": {"app": "web", "tier": "front"},
               "annotations": {"poolguard.dev/policy": "p", "deployment.kubernetes.io/revision": "3",
                               "kubectl.kubernetes.io/last-applied-configuration": "{\"big\": true}"},
               "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:spec": {}}}]},
  "spec": {"replicas": 3, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
           "selector": {"matchLabels": {"app": "web"}},
           "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "50%", "maxUnavailable": 0}},
           "template": {"metadata": {"labels": {"app": "web"},
                                     "annotations": {"poolguard.dev/settings-hash": "abc", "prometheus.io/scrape": "true"}},
                        "spec": {"containers": [
                          {"name": "app", "image": "x", "ports": [{"containerPort": 8080}],
                           "env": [{"name": "POOL_MAX_SIZE", "value": "5"}],
                           "envFrom": [{"configMapRef": {"name": "web-deploy-poolguard"}}],
                           "resources": {"limits": {"cpu": "1"}}},
                          {"name": "sidecar", "image": "y"}],
                        "volumes": [{"name": "v", "emptyDir": {}}]}}},
  "status": {"replicas": 3, "readyReplicas": 3, "conditions": [{"type": "Available", "status": "True"}]}
})";

const char* kHpa = R"({
  "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
  "metadata": {"name": "web", "namespace": "shop", "uid": "u2", "resourceVersion": "8",
               "managedFields": [{"manager": "kube-controller-manager"}]},
  "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
           "minReplicas": 2, "maxReplicas": 10,
           "metrics": [{"type": "Resource", "resource": {"name": "cpu"}}]},
  "status": {"currentReplicas": 3, "conditions": [{"type": "ScalingActive", "status": "False"}]}
})";

template <class T>
const T& as(const runtime::ObjectPtr& p) {
  return runtime::recordAs<T>(*p);
}

bool sameWorkload(const model::Workload& a, const model::Workload& b) {
  return a.sameDecisionFields(b) && a.meta == b.meta;
}

TEST(CacheShapes, FilteringWhileParsingKeepsWhatTheRecordsNeed) {
  auto filtered = workloadDecoder()(workloadFields().parse(kDeployment));
  auto full = workloadDecoder()(json::parse(kDeployment));
  EXPECT_TRUE(sameWorkload(as<model::Workload>(filtered), as<model::Workload>(full)));
  auto hpaFiltered = hpaDecoder()(hpaFields().parse(kHpa));
  auto hpaFull = hpaDecoder()(json::parse(kHpa));
  EXPECT_FALSE(hpaChanged(*hpaFiltered, *hpaFull));
  EXPECT_EQ(hpaFiltered->meta, hpaFull->meta);

  json parsed = workloadFields().parse(kDeployment);
  // Of a status only what some kind's facts read is kept (a Job's conditions, type and status alone).
  if (parsed.contains("status")) {
    for (const auto& [key, value] : parsed["status"].items()) {
      EXPECT_EQ(key, "conditions") << parsed["status"].dump();
      for (const auto& c : value) EXPECT_LE(c.size(), 2u) << c.dump();
    }
  }
  EXPECT_FALSE(parsed["metadata"].contains("managedFields"));
  EXPECT_FALSE(parsed["metadata"]["annotations"].contains("kubectl.kubernetes.io/last-applied-configuration"));
  EXPECT_FALSE(parsed["spec"]["template"]["spec"]["containers"][0].contains("image"));
}

TEST(CacheShapes, TheOtherKindsKeepWhatTheirFactsRead) {
  // A DaemonSet's nodes and a CronJob's job template and runs survive the filter; their other fields do not.
  const char* daemonSet = R"({"apiVersion": "apps/v1", "kind": "DaemonSet",
    "metadata": {"name": "agent", "namespace": "shop", "uid": "u1", "resourceVersion": "5"},
    "spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
             "template": {"spec": {"containers": [{"name": "app", "image": "agent:1"}]}}},
    "status": {"desiredNumberScheduled": 5, "numberReady": 4}})";
  const char* cronJob = R"({"apiVersion": "batch/v1", "kind": "CronJob",
    "metadata": {"name": "report", "namespace": "shop", "uid": "u2", "resourceVersion": "6"},
    "spec": {"schedule": "0 * * * *", "concurrencyPolicy": "Replace", "suspend": false,
             "jobTemplate": {"spec": {"parallelism": 2, "backoffLimit": 3,
                                      "template": {"spec": {"containers": [{"name": "job", "image": "r:1"}]}}}}},
    "status": {"active": [{"kind": "Job", "name": "report-1", "uid": "j1"}], "lastScheduleTime": "2026-01-01T00:00:00Z"}})";
  const char* rollout = R"({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
    "metadata": {"name": "web", "namespace": "shop", "uid": "u3", "resourceVersion": "7"},
    "spec": {"replicas": 3, "strategy": {"canary": {"maxSurge": "50%", "trafficRouting": {"nginx": {"stableIngress": "web"}},
                                                   "steps": [{"setWeight": 20}, {"pause": {}}]}},
             "template": {"spec": {"containers": [{"name": "app"}]}}}})";
  for (const char* text : {daemonSet, cronJob, rollout}) {
    auto filtered = workloadDecoder()(workloadFields().parse(text));
    auto full = workloadDecoder()(json::parse(text));
    EXPECT_TRUE(sameWorkload(as<model::Workload>(filtered), as<model::Workload>(full))) << text;
  }
  EXPECT_EQ(as<model::Workload>(workloadDecoder()(workloadFields().parse(daemonSet))).desiredNumberScheduled, 5);
  EXPECT_EQ(as<model::Workload>(workloadDecoder()(workloadFields().parse(cronJob))).activeRuns, 1);
  json parsed = workloadFields().parse(cronJob);
  EXPECT_FALSE(parsed["spec"].contains("schedule"));
  EXPECT_FALSE(parsed["spec"]["jobTemplate"]["spec"].contains("backoffLimit"));
  EXPECT_FALSE(parsed["status"].contains("lastScheduleTime"));
  EXPECT_FALSE(workloadFields().parse(rollout)["spec"]["strategy"]["canary"].contains("steps"));
}

TEST(CacheShapes, AWorkloadRecordHoldsWhatDecisionsRead) {
  auto record = workloadDecoder()(json::parse(kDeployment));
  const auto& w = as<model::Workload>(record);
  EXPECT_EQ(w.meta.name, "web");
  EXPECT_EQ(w.meta.namespace_, "shop");
  EXPECT_EQ(w.meta.uid, "u1");
  EXPECT_EQ(w.meta.resourceVersion, "7");
  EXPECT_EQ(w.meta.generation, 4);
  EXPECT_EQ(w.meta.labels.at("tier"), "front");
  // Only poolguard's annotations, on the workload and its pod template.
  EXPECT_EQ(w.meta.annotations, (std::map<std::string, std::string>{{"poolguard.dev/policy", "p"}}));
  EXPECT_EQ(w.templateAnnotations, (std::map<std::string, std::string>{{"poolguard.dev/settings-hash", "abc"}}));
  EXPECT_EQ(w.replicas, 3);
  EXPECT_EQ(w.strategyType, "RollingUpdate");
  ASSERT_TRUE(w.maxSurge);
  EXPECT_EQ(*w.maxSurge, (model::IntOrPercent{50, true}));
  ASSERT_EQ(w.containers.size(), 2u);
  EXPECT_EQ(w.containers[0].name, "app");
  EXPECT_EQ(w.containers[0].env, (std::vector<model::EnvVar>{{"POOL_MAX_SIZE", "5", false}}));
  ASSERT_EQ(w.containers[0].envFrom.size(), 1u);
  EXPECT_EQ(w.containers[0].envFrom[0].configMapRef->name, "web-deploy-poolguard");
  EXPECT_TRUE(w.containers[1].env.empty());

  auto hpaRecord = hpaDecoder()(json::parse(kHpa));
  const auto& h = as<model::Hpa>(hpaRecord);
  EXPECT_EQ(h.targetKind, "Deployment");
  EXPECT_EQ(h.targetName, "web");
  EXPECT_EQ(h.maxReplicas, 10);
  EXPECT_EQ(scaleTargetRefIndex()(h), (std::vector<std::string>{scaleTargetKey("shop", "Deployment", "web")}));
}

TEST(CacheShapes, TheScaleTargetIndexFollowsUpdatesAndDeletes) {
  runtime::Store store;
  store.addIndex(kScaleTargetIndex, scaleTargetRefIndex());
  json hpa = json::parse(kHpa);
  (void)store.apply(hpaDecoder()(json(hpa)));
  const std::string web = scaleTargetKey("shop", "Deployment", "web");
  const std::string api = scaleTargetKey("shop", "Deployment", "api");
  EXPECT_EQ(store.byIndex(kScaleTargetIndex, web).size(), 1u);
  hpa["metadata"]["resourceVersion"] = "9";
  hpa["spec"]["scaleTargetRef"]["name"] = "api";
  (void)store.apply(hpaDecoder()(json(hpa)));
  EXPECT_TRUE(store.byIndex(kScaleTargetIndex, web).empty());
  EXPECT_EQ(store.byIndex(kScaleTargetIndex, api).size(), 1u);
  (void)store.remove("shop/web");
  EXPECT_TRUE(store.byIndex(kScaleTargetIndex, api).empty());
  EXPECT_TRUE(store.byIndex(kScaleTargetIndex, scaleTargetKey("other", "Deployment", "api")).empty());
}

TEST(CacheShapes, OnlyChangesOfWhatDecisionsReadCount) {
  json base = json::parse(kDeployment);
  auto decode = [](json j) { return workloadDecoder()(workloadFields().parse(j.dump())); };
  auto before = decode(base);

  json statusOnly = base;
  statusOnly["metadata"]["resourceVersion"] = "8";
  statusOnly["status"]["readyReplicas"] = 2;
  EXPECT_FALSE(workloadChanged(*before, *decode(statusOnly)));

  json image = base;  // a new generation that changes nothing poolguard reads
  image["metadata"]["generation"] = 5;
  image["spec"]["template"]["spec"]["containers"][0]["image"] = "x:2";
  image["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "4";
  EXPECT_FALSE(workloadChanged(*before, *decode(image)));

  for (const char* pointer : {"/spec/replicas", "/metadata/labels/tier", "/spec/template/spec/containers/0/env/0/value",
                              "/spec/template/metadata/annotations/poolguard.dev~1settings-hash"}) {
    json changed = base;
    changed[json::json_pointer(pointer)] = changed[json::json_pointer(pointer)].is_number() ? json(7) : json("z");
    EXPECT_TRUE(workloadChanged(*before, *decode(changed))) << pointer;
  }

  json hpa = json::parse(kHpa);
  auto hpaBefore = hpaDecoder()(hpaFields().parse(hpa.dump()));
  json hpaStatus = hpa;
  hpaStatus["metadata"]["resourceVersion"] = "9";
  hpaStatus["status"]["currentReplicas"] = 5;
  EXPECT_FALSE(hpaChanged(*hpaBefore, *hpaDecoder()(hpaFields().parse(hpaStatus.dump()))));
  json hpaMax = hpa;
  hpaMax["spec"]["maxReplicas"] = 20;
  EXPECT_TRUE(hpaChanged(*hpaBefore, *hpaDecoder()(hpaFields().parse(hpaMax.dump()))));
}

TEST(CacheShapes, APolicyIsParsedOnceAndItsStatusWritesChangeNothing) {
  json policy = {
      {"apiVersion", "poolguard.dev/v1alpha1"},
      {"kind", "ConnectionPoolPolicy"},
      {"metadata", {{"name", "p"}, {"namespace", "shop"}, {"uid", "u"}, {"generation", 1}, {"resourceVersion", "1"}}},
      {"spec",
       {{"selector", {{"matchLabels", {{"app", "web"}}}}},
        {"pool", {{"maxSize", 5}}},
        {"database", {{"name", "orders"}}}}}};
  policy["metadata"]["annotations"] = {{"kubectl.kubernetes.io/last-applied-configuration", std::string(4000, 'x')},
                                       {"team", "shop"}};
  auto rec = policyDecoder()(wholeObjectFields().parse(policy.dump()));
  EXPECT_EQ(rec->meta.annotations, (std::map<std::string, std::string>{{"team", "shop"}}))
      << "kubectl's copy of the object is not kept";
  const auto& p = as<model::PolicyObject>(rec);
  ASSERT_TRUE(p.parsed) << p.invalidMessage;
  EXPECT_EQ(p.parsed->spec.pool.maxSize, 5);

  json withStatus = policy;
  withStatus["metadata"]["resourceVersion"] = "2";
  withStatus["status"] = {{"observedGeneration", 1}};
  auto after = policyDecoder()(wholeObjectFields().parse(withStatus.dump()));
  EXPECT_EQ(as<model::PolicyObject>(after).status, (json{{"observedGeneration", 1}}));
  EXPECT_FALSE(policyChanged(*rec, *after));
  json newSpec = policy;
  newSpec["metadata"]["generation"] = 2;
  newSpec["spec"]["pool"]["maxSize"] = 6;
  EXPECT_TRUE(policyChanged(*rec, *policyDecoder()(wholeObjectFields().parse(newSpec.dump()))));

  json invalid = policy;
  invalid["spec"]["pool"]["maxSize"] = -1;
  auto badRecord = policyDecoder()(std::move(invalid));
  const auto& bad = as<model::PolicyObject>(badRecord);
  EXPECT_FALSE(bad.parsed);
  EXPECT_NE(bad.invalidMessage.find("maxSize"), std::string::npos) << bad.invalidMessage;
}

TEST(CacheShapes, WholeObjectsLoseOnlyManagedFields) {
  json full = json::parse(kDeployment);
  json kept = wholeObjectFields().parse(kDeployment);
  full["metadata"].erase("managedFields");
  EXPECT_EQ(kept, full);
}

}  // namespace
}  // namespace poolguard::controller
