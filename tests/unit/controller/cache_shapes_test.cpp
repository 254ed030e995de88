// The fields kept while parsing are all the compact cache entries need: filtering first changes nothing in what
// the caches hold.
#include "controller/cache_shapes.h"

#include <gtest/gtest.h>

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

TEST(CacheShapes, FilteringWhileParsingKeepsWhatTheCompactEntriesNeed) {
  EXPECT_EQ(compactWorkload(workloadFields().parse(kDeployment)), compactWorkload(json::parse(kDeployment)));
  EXPECT_EQ(compactHpa(hpaFields().parse(kHpa)), compactHpa(json::parse(kHpa)));
  json filtered = workloadFields().parse(kDeployment);
  EXPECT_FALSE(filtered.contains("status"));
  EXPECT_FALSE(filtered["metadata"].contains("managedFields"));
  EXPECT_FALSE(filtered["metadata"]["annotations"].contains("kubectl.kubernetes.io/last-applied-configuration"));
  EXPECT_FALSE(filtered["spec"]["template"]["spec"]["containers"][0].contains("image"));
}

TEST(CacheShapes, WholeObjectsLoseOnlyManagedFields) {
  json full = json::parse(kDeployment);
  json kept = wholeObjectFields().parse(kDeployment);
  full["metadata"].erase("managedFields");
  EXPECT_EQ(kept, full);
}

}  // namespace
}  // namespace poolguard::controller
