#include "runtime/stop.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>

namespace poolguard::runtime {

bool sleepFor(const Clock& clock, std::chrono::nanoseconds d, std::stop_token stop, std::chrono::milliseconds poll) {
  const auto deadline = clock.steadyNow() + std::chrono::duration_cast<Clock::steady_point::duration>(d);
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  while (!stop.stop_requested()) {
    auto remaining = deadline - clock.steadyNow();
    if (remaining <= Clock::steady_point::duration::zero()) return true;
    auto slice = std::min<std::chrono::nanoseconds>(remaining, poll);
    cv.wait_for(lock, stop, slice, [] { return false; });
  }
  return false;
}

}  // namespace poolguard::runtime
