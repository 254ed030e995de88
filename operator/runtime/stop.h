#pragma once
// Cancellation and clock-driven waiting for the runtime's loops. Every long-running piece (watchers, the work
// queue, leader election, the event writer) observes a std::stop_token, so one stop_source cancelled on SIGTERM
// winds the whole process down.
#include <chrono>
#include <stop_token>

#include "common/clock.h"

namespace poolguard::runtime {

// How often a waiter re-reads an injected Clock. Waits are real-time condition-variable waits bounded by this,
// so a ManualClock advanced by a test wakes a waiter within this much real time; with SystemClock a wait still
// ends at its deadline (the bound only adds a cheap wake-up).
inline constexpr std::chrono::milliseconds kDefaultClockPoll{20};

// Waits until `d` has passed on `clock` or `stop` is requested. Returns true when the time passed, false when
// stopped (immediately if the stop was already requested).
bool sleepFor(const Clock& clock, std::chrono::nanoseconds d, std::stop_token stop,
              std::chrono::milliseconds poll = kDefaultClockPoll);

}  // namespace poolguard::runtime
