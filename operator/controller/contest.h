#pragma once
// A write war over one workload's pool settings: another field manager keeps undoing what poolguard applied.
// Answering every change would make the two managers rewrite the pod template (and roll the pods) forever, so
// after more than `maxCorrections` corrections within `window` poolguard stops correcting for a back-off, which
// doubles with each contest that follows (60 s, 2 min, 4 min, ... up to 30 min) and starts over once the other
// manager has stopped: no contest within two windows after the last back-off ended. Pure: time is passed in.
#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>

#include "common/clock.h"

namespace poolguard::controller {

struct ContestOptions {
  size_t maxCorrections = 5;
  std::chrono::seconds window{60};
  std::chrono::seconds firstBackoff{60};
  std::chrono::seconds maxBackoff{30 * 60};
};

// The back-off of the `contest`-th contest in a row (1-based): firstBackoff doubled per contest, capped.
std::chrono::seconds contestBackoff(int contest, const ContestOptions& options = {});

class ContestTracker {
 public:
  explicit ContestTracker(ContestOptions options = {}) : options_(options) {}

  // Counts a correction seen at `now`. When it makes a contest, returns the back-off that starts now.
  std::optional<std::chrono::seconds> onCorrection(Clock::steady_point now);

  bool backingOff(Clock::steady_point now) const { return contests_ > 0 && now < until_; }
  Clock::steady_point until() const { return until_; }
  int contests() const { return contests_; }  // in a row; 0 before the first and after a reset

 private:
  ContestOptions options_;
  std::deque<Clock::steady_point> corrections_;
  Clock::steady_point until_{};
  int contests_ = 0;
};

}  // namespace poolguard::controller
