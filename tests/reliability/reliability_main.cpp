// The entry point of every reliability test binary.
#include <gtest/gtest.h>

#include <cstdlib>

#include "support/cluster.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // These tests stop, restart and reconfigure the cluster's components: never a shared one.
  unsetenv("POOLGUARD_TEST_CLUSTER");
  poolguard::testing::useLocalCluster();
  return RUN_ALL_TESTS();
}
