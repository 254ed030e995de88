#include "runtime/backoff.h"

#include <algorithm>
#include <cmath>

namespace poolguard::runtime {

Backoff::Backoff(BackoffOptions opts, uint64_t seed) : opts_(opts), rng_(seed) {}

std::chrono::milliseconds Backoff::next() {
  double base = static_cast<double>(opts_.initial.count()) * std::pow(opts_.factor, attempts_);
  double cap = static_cast<double>(opts_.max.count());
  base = std::min(base, cap);
  // Stop growing the exponent once the cap is reached so pow() cannot overflow on long outages.
  if (base < cap) ++attempts_;
  std::uniform_real_distribution<double> u(0.0, opts_.jitter);
  double delay = std::min(base * (1.0 + (opts_.jitter > 0 ? u(rng_) : 0.0)), cap);
  return std::chrono::milliseconds(static_cast<int64_t>(delay));
}

TokenBucket::TokenBucket(const Clock& clock, double ratePerSecond, double burst)
    : clock_(clock), rate_(ratePerSecond), burst_(burst), tokens_(burst), last_(clock.steadyNow()) {}

void TokenBucket::refillLocked() {
  auto now = clock_.steadyNow();
  if (now > last_) {
    double elapsed = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
    last_ = now;
  }
}

bool TokenBucket::tryTake() {
  std::lock_guard lock(mu_);
  refillLocked();
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    return true;
  }
  return false;
}

std::chrono::nanoseconds TokenBucket::reserve() {
  std::lock_guard lock(mu_);
  refillLocked();
  tokens_ -= 1.0;
  if (tokens_ >= 0.0 || rate_ <= 0.0) return std::chrono::nanoseconds::zero();
  return std::chrono::nanoseconds(static_cast<int64_t>(std::ceil(-tokens_ / rate_ * 1e9)));
}

}  // namespace poolguard::runtime
