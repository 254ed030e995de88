// main() of the test binaries that share one local control plane (tests/support/cluster.h): link
// poolguard_test_cluster_main instead of writing it again.
#include <gtest/gtest.h>

#include "support/cluster.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  poolguard::testing::useLocalCluster();
  return RUN_ALL_TESTS();
}
