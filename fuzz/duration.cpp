// parseDuration / formatDuration: the input is read as a duration string, and its first 8 bytes as a number of
// milliseconds to format. Invariants:
//   - an accepted duration is non-negative, and parseDuration is parseDurationNanos truncated to milliseconds;
//   - formatDuration's output parses back to the same value, and formatting that gives the same text;
//   - a rejected string gets an error that quotes it;
//   - formatDuration of any Millis gives text that parseDuration reads back exactly when it is in range
//     (negative values are formatted with a sign and rejected).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "fuzz_check.h"
#include "policy/parse.h"

namespace {

using poolguard::policy::Millis;
constexpr size_t kMaxInput = 256;
constexpr int64_t kMaxMillis = std::numeric_limits<int64_t>::max() / 1'000'000;  // int64 nanoseconds

void checkFormatRoundTrip(Millis d) {
  using namespace poolguard;
  const std::string f = policy::formatDuration(d);
  FUZZ_CHECK(!f.empty());
  auto back = policy::parseDuration(f);
  if (d.count() < 0) {
    FUZZ_CHECK_MSG(f[0] == '-', f);
    FUZZ_CHECK_MSG(!back.ok(), f);
    return;
  }
  if (d.count() > kMaxMillis) {
    FUZZ_CHECK_MSG(!back.ok(), f);
    return;
  }
  FUZZ_CHECK_MSG(back.ok(), f + (back.ok() ? "" : ": " + back.error().message()));
  FUZZ_CHECK_MSG(*back == d,
                 f + " read back as " + std::to_string(back->count()) + "ms, not " + std::to_string(d.count()) + "ms");
  FUZZ_CHECK_MSG(policy::formatDuration(*back) == f, f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace poolguard;
  if (size > kMaxInput) return -1;
  const std::string text = fuzz::text(data, size);

  auto nanos = policy::parseDurationNanos(text);
  auto millis = policy::parseDuration(text);
  FUZZ_CHECK(nanos.ok() == millis.ok());
  if (nanos) {
    FUZZ_CHECK_MSG(nanos->count() >= 0, text);
    FUZZ_CHECK_MSG(*millis == std::chrono::duration_cast<Millis>(*nanos), text);
    checkFormatRoundTrip(*millis);
  } else {
    const std::string& m = nanos.error().message();
    FUZZ_CHECK_MSG(fuzz::startsWith(m, "invalid duration \"" + text + "\": "), m);
    FUZZ_CHECK(millis.error().message() == m);
    FUZZ_CHECK(nanos.error().code() == ErrorCode::kInvalidArgument);
  }

  if (size >= sizeof(int64_t)) {
    int64_t raw = 0;
    std::memcpy(&raw, data, sizeof raw);
    checkFormatRoundTrip(Millis(raw));
  }
  return 0;
}
