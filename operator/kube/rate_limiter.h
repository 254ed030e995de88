#pragma once
// Client-side token bucket, as client-go's flowcontrol: `burst` requests at once, then `qps` per second. It
// reads the injected Clock and never sleeps itself: reserve() takes a token now and says how long the caller
// must wait before using it, so concurrent callers queue fairly and tests advance a ManualClock.
#include <chrono>
#include <mutex>

#include "common/clock.h"

namespace poolguard::kube {

class RateLimiter {
 public:
  // qps <= 0 disables limiting.
  RateLimiter(double qps, int burst, const Clock& clock);

  std::chrono::nanoseconds reserve();

 private:
  double qps_;
  double burst_;
  const Clock& clock_;
  std::mutex mu_;
  double tokens_;  // may go negative: tokens promised to waiting callers
  Clock::steady_point last_;
};

}  // namespace poolguard::kube
