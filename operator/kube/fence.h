#pragma once
// Bounds on the requests of a Kubernetes client, for a leader that must stop writing the moment its lease may be
// lost.
//
// RequestDeadline: while one lives, the requests its thread makes end by the deadline. The REST client waits for
// the rate limiter, sends, waits for the answer and retries only until then; a request still open at the deadline
// is cancelled (its connection closed) and returns kTimeout. Deadlines nest: the earlier one wins.
//
// WriteFence: the time until which writes are allowed. A leader opens it until (start of its last successful
// renewal + renewDeadline) on every renewal, and closes it when it steps down. Nobody else may take the lease
// before (that start + leaseDuration), so writes that end by the fence cannot overlap a successor's.
//
// FencedClient: a Client whose writes (create, update, patch, apply, delete) pass only while the fence is open,
// each under a RequestDeadline at the fence's end. Reads and watches pass through unbounded.
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>

#include "common/clock.h"
#include "kube/client.h"

namespace poolguard::kube {

class RequestDeadline {
 public:
  explicit RequestDeadline(Clock::steady_point at);
  ~RequestDeadline();
  RequestDeadline(const RequestDeadline&) = delete;
  RequestDeadline& operator=(const RequestDeadline&) = delete;

  // The deadline of the calling thread's requests, if any.
  static std::optional<Clock::steady_point> current();

 private:
  std::optional<Clock::steady_point> previous_;
};

class WriteFence {
 public:
  explicit WriteFence(const Clock& clock = SystemClock::instance()) : clock_(clock) {}

  // Writes are allowed until `until` (a later time extends, an earlier one shortens).
  void openUntil(Clock::steady_point until);
  void close();
  // The end of the current window while writes are allowed, nullopt once the fence is closed or its time passed.
  std::optional<Clock::steady_point> openWindow() const;
  const Clock& clock() const { return clock_; }

 private:
  const Clock& clock_;
  mutable std::mutex mu_;
  std::optional<Clock::steady_point> until_;
};

class FencedClient final : public Client {
 public:
  FencedClient(Client& inner, std::shared_ptr<const WriteFence> fence) : inner_(inner), fence_(std::move(fence)) {}

  Result<json> get(const Resource& r, const std::string& ns, const std::string& name,
                   const std::string& subresource = "") override {
    return inner_.get(r, ns, name, subresource);
  }
  Result<json> list(const Resource& r, const std::string& ns, const ListOptions& opts = {}) override {
    return inner_.list(r, ns, opts);
  }
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
                                             const WatchOptions& opts) override {
    return inner_.watch(r, ns, opts);
  }

 private:
  template <typename F>
  auto fenced(const char* verb, const Resource& r, const std::string& name, F&& write) -> decltype(write());

  Client& inner_;
  std::shared_ptr<const WriteFence> fence_;
};

}  // namespace poolguard::kube
