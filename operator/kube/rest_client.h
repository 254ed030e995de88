#pragma once
// The Client over HTTPS. Requests go through kube::HttpEndpoint (kube/http.h), the project's one HTTP request
// path; watch streams use its TLS and configuration directly (rest_client.cpp). cpprestsdk stays out of sight.
//
// Threading: every call blocks the calling thread until the answer (or the retries) are done. Call it from
// threads of your own, never from a cpprestsdk/pplx pool thread: blocking there can starve the pool that has to
// deliver the answer. A WatchStream is read by one thread; cancel() may come from any thread.
//
// Retries: GET, LIST, DELETE, server-side apply and an update carrying metadata.resourceVersion are idempotent and
// are retried on transport failures (and on 429/503 with Retry-After) with jittered exponential backoff. Create
// and other patches are sent once: a retry after an unknown outcome could apply them twice.
#include <chrono>
#include <functional>
#include <memory>

#include "common/clock.h"
#include "kube/client.h"
#include "kube/config.h"
#include "kube/request_observer.h"

namespace poolguard::kube {

struct RestClientOptions {
  double qps = 20;  // client-side rate limit; <= 0 disables it
  int burst = 30;
  int maxAttempts = 4;  // for idempotent requests, including the first
  std::chrono::milliseconds retryBaseDelay{200};
  std::chrono::milliseconds retryMaxDelay{5000};
  // Idle timeout of ordinary requests (cpprestsdk resets it on every chunk; it is not a deadline).
  std::chrono::seconds requestTimeout{30};
  // Added to a watch's timeoutSeconds for its connection's idle timeout, so the server ends the watch first.
  std::chrono::seconds watchIdleMargin{30};
  std::chrono::seconds tokenRefresh{60};
  const Clock* clock = &SystemClock::instance();
  // Waits for the rate limiter and between retries; tests can record instead of sleeping.
  std::function<void(std::chrono::nanoseconds)> sleep;
  std::shared_ptr<RequestObserver> observer;
  std::string userAgent = "poolguard";
};

class RestClient final : public Client {
 public:
  ~RestClient() override;

  Result<json> get(const Resource& r, const std::string& ns, const std::string& name,
                   const std::string& subresource = "") override;
  Result<json> list(const Resource& r, const std::string& ns, const ListOptions& opts = {}) override;
  Result<json> create(const Resource& r, const std::string& ns, const json& obj,
                      const WriteOptions& opts = {}) override;
  Result<json> update(const Resource& r, const std::string& ns, const json& obj,
                      const WriteOptions& opts = {}) override;
  Result<json> patch(const Resource& r, const std::string& ns, const std::string& name, PatchType type,
                     const json& patch, const WriteOptions& opts = {}) override;
  Result<json> apply(const Resource& r, const std::string& ns, const std::string& name, const json& obj,
                     const WriteOptions& opts) override;
  Status remove(const Resource& r, const std::string& ns, const std::string& name,
                const json& deleteOptions = json::object()) override;
  Result<std::unique_ptr<WatchStream>> watch(const Resource& r, const std::string& ns,
                                             const WatchOptions& opts) override;

  const Config& config() const;

 private:
  friend Result<std::unique_ptr<RestClient>> makeRestClient(const Config&, RestClientOptions);
  struct Impl;
  explicit RestClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Checks the TLS material (CA, client certificate and key, and that they belong together) and builds the client.
// Destroy clients before static destruction begins (cpprestsdk's shutdown is fragile).
Result<std::unique_ptr<RestClient>> makeRestClient(const Config& config, RestClientOptions options = {});

// Sizes cpprestsdk's thread pool (default 40 threads). Only effective before the first client is created.
void initializeTransportThreads(size_t threads);

}  // namespace poolguard::kube
