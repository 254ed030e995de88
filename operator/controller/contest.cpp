#include "controller/contest.h"

#include <algorithm>

namespace poolguard::controller {

std::chrono::seconds contestBackoff(int contest, const ContestOptions& options) {
  auto backoff = options.firstBackoff;
  for (int i = 1; i < contest && backoff < options.maxBackoff; ++i) backoff *= 2;
  return std::min(backoff, options.maxBackoff);
}

std::optional<std::chrono::seconds> ContestTracker::onCorrection(Clock::steady_point now) {
  if (backingOff(now)) return std::nullopt;
  // Quiet for two windows after the last back-off: the other manager had stopped, and this is a new fight.
  if (contests_ > 0 && now - until_ > 2 * options_.window) contests_ = 0;
  corrections_.push_back(now);
  while (!corrections_.empty() && now - corrections_.front() > options_.window) corrections_.pop_front();
  if (corrections_.size() <= options_.maxCorrections) return std::nullopt;
  corrections_.clear();
  ++contests_;
  auto backoff = contestBackoff(contests_, options_);
  until_ = now + backoff;
  return backoff;
}

}  // namespace poolguard::controller
