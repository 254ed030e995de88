// A candidate in a leader election, as its own process: the integration test runs two and watches them hand
// the Lease over. Prints "LEADING <identity>" when it starts leading and "STOPPED <identity>" when it stops;
// SIGTERM makes it release the Lease and exit 0.
//
//   runtime_leader_helper KUBECONFIG NAMESPACE LEASE IDENTITY LEASE_SECONDS
#include <cstdio>
#include <cstdlib>
#include <string>

#include <spdlog/spdlog.h>

#include "kube/config.h"
#include "kube/rest_client.h"
#include "runtime/leader_election.h"
#include "runtime/signals.h"

int main(int argc, char** argv) {
  using namespace poolguard;
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s KUBECONFIG NAMESPACE LEASE IDENTITY LEASE_SECONDS\n", argv[0]);
    return 2;
  }
  // Logging is set up before any thread starts (as `poolguard run` does), so the threads only read it.
  spdlog::set_level(spdlog::level::info);
  std::stop_source stop;
  runtime::ShutdownSignals signals(stop, std::chrono::seconds(10));
  auto config = kube::loadKubeconfig(argv[1]);
  if (!config) {
    std::fprintf(stderr, "kubeconfig: %s\n", config.error().message().c_str());
    return 1;
  }
  int result = 0;
  {
    auto client = kube::makeRestClient(*config);
    if (!client) {
      std::fprintf(stderr, "client: %s\n", client.error().message().c_str());
      return 1;
    }
    std::string identity = argv[4];
    auto leaseSeconds = std::chrono::seconds(std::atoi(argv[5]));
    runtime::LeaderElectionConfig le;
    le.leaseNamespace = argv[2];
    le.leaseName = argv[3];
    le.identity = identity;
    le.leaseDuration = leaseSeconds;
    le.renewDeadline = leaseSeconds * 2 / 3;
    le.retryPeriod = std::chrono::milliseconds(500);
    le.onStartedLeading = [&](std::stop_token) {
      std::printf("LEADING %s\n", identity.c_str());
      std::fflush(stdout);
    };
    le.onStoppedLeading = [&] {
      std::printf("STOPPED %s\n", identity.c_str());
      std::fflush(stdout);
    };
    runtime::LeaderElector elector(**client, le);
    elector.run(stop.get_token());
    if (!stop.stop_requested()) result = 3;  // leadership lost
  }
  return result;
}
