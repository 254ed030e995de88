// The Kubernetes client against a real kube-apiserver and etcd (scripts/local-cluster).
#include <gtest/gtest.h>

#include "support/cluster.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  poolguard::testing::useLocalCluster();
  return RUN_ALL_TESTS();
}
