#include "kube/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace poolguard::kube {

RateLimiter::RateLimiter(double qps, int burst, const Clock& clock)
    : qps_(qps), burst_(std::max(1, burst)), clock_(clock), tokens_(burst_), last_(clock.steadyNow()) {}

void RateLimiter::refillLocked() {
  auto now = clock_.steadyNow();
  double elapsed = std::chrono::duration<double>(now - last_).count();
  if (elapsed > 0) {
    tokens_ = std::min(burst_, tokens_ + elapsed * qps_);
    last_ = now;
  }
}

std::chrono::nanoseconds RateLimiter::reserve() {
  if (qps_ <= 0) return std::chrono::nanoseconds(0);
  std::lock_guard lock(mu_);
  refillLocked();
  tokens_ -= 1;
  if (tokens_ >= 0) return std::chrono::nanoseconds(0);
  return std::chrono::nanoseconds(static_cast<int64_t>(std::ceil(-tokens_ / qps_ * 1e9)));
}

void RateLimiter::release() {
  if (qps_ <= 0) return;
  std::lock_guard lock(mu_);
  refillLocked();
  tokens_ = std::min(burst_, tokens_ + 1);
}

bool RateLimiter::tryAcquire() {
  if (qps_ <= 0) return true;
  std::lock_guard lock(mu_);
  refillLocked();
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

}  // namespace poolguard::kube
