#pragma once
// Retry pacing: jittered exponential backoff for failing watches and lease calls. Rate limits are
// kube::RateLimiter's token bucket (kube/rate_limiter.h).
#include <chrono>
#include <cstdint>
#include <random>

namespace poolguard::runtime {

struct BackoffOptions {
  std::chrono::milliseconds initial{500};
  std::chrono::milliseconds max{30'000};
  double factor = 2.0;
  // Each delay is stretched by a random fraction in [0, jitter) so that many clients failing together (an API
  // server restart) do not retry in lockstep. The stretched delay never exceeds max.
  double jitter = 0.5;
};

// Not thread-safe: each loop owns its own.
class Backoff {
 public:
  explicit Backoff(BackoffOptions opts = {}, uint64_t seed = std::random_device{}());
  // The delay before the next attempt; each call grows the base delay by `factor` up to `max`.
  std::chrono::milliseconds next();
  // After a success: the next failure waits `initial` again.
  void reset() { attempts_ = 0; }
  int attempts() const { return attempts_; }

 private:
  BackoffOptions opts_;
  std::mt19937_64 rng_;
  int attempts_ = 0;
};

}  // namespace poolguard::runtime
