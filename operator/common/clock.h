#pragma once
// Time is injected: backoff, lease renewal, usage intervals and condition timestamps read a Clock, and tests
// advance a ManualClock instead of sleeping.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>

namespace poolguard {

class Clock {
 public:
  using time_point = std::chrono::system_clock::time_point;
  using steady_point = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  // Wall time, for timestamps written to the API (lastTransitionTime, lease renewTime).
  virtual time_point now() const = 0;
  // Monotonic time, for intervals and deadlines.
  virtual steady_point steadyNow() const = 0;
};

class SystemClock final : public Clock {
 public:
  time_point now() const override { return std::chrono::system_clock::now(); }
  steady_point steadyNow() const override { return std::chrono::steady_clock::now(); }
  static SystemClock& instance();
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(time_point start = time_point{} + std::chrono::hours(24 * 365 * 56))
      : wall_(start), steady_(steady_point{}) {}
  time_point now() const override {
    std::lock_guard l(mu_);
    return wall_;
  }
  steady_point steadyNow() const override {
    std::lock_guard l(mu_);
    return steady_;
  }
  void advance(std::chrono::nanoseconds d) {
    std::lock_guard l(mu_);
    wall_ += std::chrono::duration_cast<time_point::duration>(d);
    steady_ += std::chrono::duration_cast<steady_point::duration>(d);
  }

 private:
  mutable std::mutex mu_;
  time_point wall_;
  steady_point steady_;
};

// RFC 3339 in UTC with second precision, as Kubernetes writes metav1.Time ("2026-11-24T03:50:36Z").
std::string formatRfc3339(Clock::time_point t);
// Parses metav1.Time and metav1.MicroTime; returns false on malformed input.
bool parseRfc3339(const std::string& s, Clock::time_point& out);

}  // namespace poolguard
