#pragma once
// Retry pacing driven by an injected Clock: jittered exponential backoff for failing watches and lease calls,
// and a token bucket for global and per-object rate limits.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>

#include "common/clock.h"

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

// A token bucket refilled continuously at `ratePerSecond`, holding at most `burst` tokens; starts full.
// Thread-safe.
class TokenBucket {
 public:
  TokenBucket(const Clock& clock, double ratePerSecond, double burst);
  // Takes a token if one is available now.
  bool tryTake();
  // Takes a token, borrowing from the future when the bucket is empty, and returns how long the caller must
  // wait before acting (zero when a token was available). Successive reservations queue up behind each other.
  std::chrono::nanoseconds reserve();

 private:
  void refillLocked();

  const Clock& clock_;
  double rate_;
  double burst_;
  std::mutex mu_;
  double tokens_;
  Clock::steady_point last_;
};

}  // namespace poolguard::runtime
