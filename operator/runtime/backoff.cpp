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

}  // namespace poolguard::runtime
