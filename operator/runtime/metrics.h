#pragma once
// Process-wide Prometheus registry and the /metrics endpoint. prometheus-cpp stays out of public headers: the
// registry is only forward-declared here, and code that registers metrics includes prometheus-cpp itself.
#include <memory>
#include <string>

#include "common/result.h"

namespace prometheus {
class Registry;
class Exposer;
}  // namespace prometheus

namespace poolguard::runtime {

// The registry the runtime's components use unless one is injected. Created on first use, never destroyed
// before exit.
std::shared_ptr<prometheus::Registry> metricsRegistry();

// Serves a registry at /metrics on its own port through prometheus-cpp's embedded server.
class MetricsServer {
 public:
  MetricsServer();
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // bindAddress is "host:port" ("0.0.0.0:8080"; port 0 picks a free port, see port()).
  Status start(const std::string& bindAddress, std::shared_ptr<prometheus::Registry> registry = metricsRegistry());
  void stop();
  // The bound port after start(), 0 before.
  int port() const;

 private:
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace poolguard::runtime
