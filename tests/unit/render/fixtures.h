#pragma once
// Policies and workloads the render tests share, built as structs so the tests do not depend on parsing.
#include <nlohmann/json.hpp>

#include "policy/types.h"

namespace poolguard::render::testing {

inline policy::Policy basePolicy(policy::Profile profile = policy::Profile::kGeneric,
                                 policy::DeliveryMethod method = policy::DeliveryMethod::kEnv) {
  policy::Policy p;
  p.name = "orders-pool";
  p.namespace_ = "shop";
  p.uid = "0b7c1e3a-policy";
  p.creationTimestamp = "2024-05-01T10:00:00Z";
  p.spec.selector.matchLabels = {{"app", "orders"}};
  p.spec.profile = profile;
  p.spec.delivery.method = method;
  p.spec.pool.maxSize = 20;
  p.spec.pool.minIdle = 5;
  p.spec.pool.acquireTimeout = policy::Millis(30'000);
  p.spec.pool.idleTimeout = policy::Millis(600'000);
  p.spec.pool.maxLifetime = policy::Millis(1'800'000);
  p.spec.pool.leakDetectionThreshold = policy::Millis(0);
  p.spec.database.name = "orders-db";
  return p;
}

inline nlohmann::json deployment(const std::string& name = "orders-api") {
  return nlohmann::json::parse(R"({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "NAME", "namespace": "shop", "uid": "6f1d2c4e-workload", "labels": {"app": "orders"}},
    "spec": {
      "replicas": 3,
      "selector": {"matchLabels": {"app": "orders"}},
      "template": {
        "metadata": {"labels": {"app": "orders"}},
        "spec": {
          "initContainers": [{"name": "migrate", "image": "orders:1"}],
          "containers": [
            {"name": "app", "image": "orders:1",
             "env": [{"name": "LOG_LEVEL", "value": "info"}],
             "envFrom": [{"secretRef": {"name": "orders-db-credentials"}}]},
            {"name": "metrics-sidecar", "image": "exporter:2"}
          ]
        }
      }
    }
  })")
      .patch(nlohmann::json::parse(R"([{"op": "replace", "path": "/metadata/name", "value": ")" + name + R"("}])"));
}

}  // namespace poolguard::render::testing
