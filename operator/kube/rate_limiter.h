#pragma once
// Client-side token bucket, as client-go's flowcontrol: `burst` requests at once, then `qps` per second. It
// reads the injected Clock and never sleeps itself: reserve() takes a token now and says how long the caller
// must wait before using it, so concurrent callers queue fairly and tests advance a ManualClock; tryAcquire()
// is for callers that drop what is over the limit instead of waiting. Thread-safe.
#include <chrono>
#include <mutex>

#include "common/clock.h"

namespace poolguard::kube {

class RateLimiter {
 public:
  // qps <= 0 disables limiting.
  RateLimiter(double qps, int burst, const Clock& clock);

  std::chrono::nanoseconds reserve();
  // Gives back a reserved token that was not used (a request its deadline kept from being sent), so it does not
  // delay the callers after it.
  void release();
  // Takes a token only if one is available now (none is while earlier reservations are still waiting).
  bool tryAcquire();

 private:
  void refillLocked();

  double qps_;
  double burst_;
  const Clock& clock_;
  std::mutex mu_;
  double tokens_;  // may go negative: tokens promised to waiting callers
  Clock::steady_point last_;
};

}  // namespace poolguard::kube
