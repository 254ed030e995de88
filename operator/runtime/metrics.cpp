#include "runtime/metrics.h"

#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <exception>

namespace poolguard::runtime {

std::shared_ptr<prometheus::Registry> metricsRegistry() {
  static auto* registry = new std::shared_ptr<prometheus::Registry>(std::make_shared<prometheus::Registry>());
  return *registry;
}

MetricsServer::MetricsServer() = default;
MetricsServer::~MetricsServer() { stop(); }

Status MetricsServer::start(const std::string& bindAddress, std::shared_ptr<prometheus::Registry> registry) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(bindAddress);
    exposer_->RegisterCollectable(registry);
  } catch (const std::exception& e) {
    exposer_.reset();
    return Error(ErrorCode::kUnavailable, "metrics server on " + bindAddress + ": " + e.what());
  }
  return okStatus();
}

void MetricsServer::stop() { exposer_.reset(); }

int MetricsServer::port() const {
  if (!exposer_) return 0;
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

}  // namespace poolguard::runtime
