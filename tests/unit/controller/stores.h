#pragma once
// An empty informer store for every kind the controller reads, and the Caches over them, for the controller's unit
// tests (the reconciler's and the event mapping's).
#include "controller/reconciler.h"
#include "runtime/store.h"

namespace poolguard::controller::test_support {

struct Stores {
  runtime::Store policies, clusterPolicies, deployments, statefulSets, daemonSets, cronJobs, jobs, rollouts, hpas,
      configMaps, budgets, namespaces;

  Caches caches() {
    return Caches{.policies = &policies,
                  .deployments = &deployments,
                  .statefulSets = &statefulSets,
                  .hpas = &hpas,
                  .configMaps = &configMaps,
                  .budgets = &budgets,
                  .namespaces = &namespaces,
                  .clusterPolicies = &clusterPolicies,
                  .daemonSets = &daemonSets,
                  .cronJobs = &cronJobs,
                  .rollouts = &rollouts,
                  .jobs = &jobs};
  }
};

}  // namespace poolguard::controller::test_support
