// Go's time.ParseDuration grammar, so that a value the API server's CEL duration() accepts is accepted here
// and the other way round. Signs are rejected: every duration in the API is a length of time.
#include <cstdint>
#include <limits>
#include <string_view>

#include "policy/parse.h"

namespace poolguard::policy {
namespace {

constexpr uint64_t kMaxNanos = (uint64_t{1} << 63) - 1;

struct Unit {
  std::string_view name;
  uint64_t nanos;
};

// Longest names first so "ms" is not read as "m".
constexpr Unit kUnits[] = {
    {"ns", 1},
    {"us", 1'000},
    {"\xC2\xB5s", 1'000},  // U+00B5 micro sign
    {"\xCE\xBCs", 1'000},  // U+03BC Greek small mu
    {"ms", 1'000'000},
    {"s", 1'000'000'000},
    {"m", 60'000'000'000},
    {"h", 3'600'000'000'000},
};

Error durationError(const std::string& text, const std::string& why) {
  return Error(ErrorCode::kInvalidArgument,
               "invalid duration \"" + text + "\": " + why +
                   "; write a non-negative Go duration such as 500ms, 30s, 10m or 1h30m (units ns, us, ms, s, m, h)");
}

}  // namespace

Result<std::chrono::nanoseconds> parseDurationNanos(const std::string& text) {
  std::string_view s = text;
  if (s.empty()) return durationError(text, "empty");
  if (s[0] == '-' || s[0] == '+') return durationError(text, "a sign is not allowed");
  if (s == "0") return std::chrono::nanoseconds{0};
  uint64_t total = 0;
  while (!s.empty()) {
    if (!(s[0] == '.' || (s[0] >= '0' && s[0] <= '9'))) return durationError(text, "expected a number");
    uint64_t whole = 0;
    size_t i = 0;
    bool overflow = false;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (whole > (uint64_t{1} << 63) / 10) overflow = true;
      whole = whole * 10 + static_cast<uint64_t>(s[i] - '0');
      if (whole > (uint64_t{1} << 63)) overflow = true;
      ++i;
    }
    if (overflow) return durationError(text, "out of range (at most about 2562047h)");
    bool haveWhole = i > 0;
    uint64_t frac = 0;
    double scale = 1;
    bool haveFrac = false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      bool fracOverflow = false;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        haveFrac = true;
        // Like Go: digits beyond int64 precision are consumed but ignored.
        if (!fracOverflow) {
          if (frac > (uint64_t{1} << 63) / 10) {
            fracOverflow = true;
          } else {
            uint64_t next = frac * 10 + static_cast<uint64_t>(s[i] - '0');
            if (next > (uint64_t{1} << 63)) {
              fracOverflow = true;
            } else {
              frac = next;
              scale *= 10;
            }
          }
        }
        ++i;
      }
    }
    if (!haveWhole && !haveFrac) return durationError(text, "expected a number");
    s.remove_prefix(i);
    size_t unitLen = 0;
    while (unitLen < s.size() && s[unitLen] != '.' && (s[unitLen] < '0' || s[unitLen] > '9')) ++unitLen;
    if (unitLen == 0) return durationError(text, "missing unit");
    std::string_view unitName = s.substr(0, unitLen);
    const Unit* unit = nullptr;
    for (const auto& u : kUnits) {
      if (u.name == unitName) unit = &u;
    }
    if (unit == nullptr) return durationError(text, "unknown unit \"" + std::string(unitName) + "\"");
    s.remove_prefix(unitLen);
    if (whole > (uint64_t{1} << 63) / unit->nanos) return durationError(text, "out of range (at most about 2562047h)");
    uint64_t v = whole * unit->nanos;
    if (frac > 0) {
      v += static_cast<uint64_t>(static_cast<double>(frac) * (static_cast<double>(unit->nanos) / scale));
      if (v > (uint64_t{1} << 63)) return durationError(text, "out of range (at most about 2562047h)");
    }
    total += v;
    if (total > kMaxNanos) return durationError(text, "out of range (at most about 2562047h)");
  }
  return std::chrono::nanoseconds{static_cast<int64_t>(total)};
}

Result<Millis> parseDuration(const std::string& text) {
  auto ns = parseDurationNanos(text);
  if (!ns) return ns.error();
  return std::chrono::duration_cast<Millis>(*ns);
}

std::string formatDuration(Millis d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    // -INT64_MIN does not exist; the API never carries negative durations, so the floor is harmless.
    ms = ms == std::numeric_limits<int64_t>::min() ? std::numeric_limits<int64_t>::max() : -ms;
  }
  if (ms < 1000) return out + std::to_string(ms) + "ms";
  int64_t hours = ms / 3'600'000;
  int64_t minutes = (ms / 60'000) % 60;
  int64_t seconds = (ms / 1000) % 60;
  int64_t millis = ms % 1000;
  if (hours > 0) out += std::to_string(hours) + "h";
  if (minutes > 0) out += std::to_string(minutes) + "m";
  if (seconds > 0 || millis > 0) {
    out += std::to_string(seconds);
    if (millis > 0) {
      std::string frac = std::to_string(millis + 1000).substr(1);
      while (frac.back() == '0') frac.pop_back();
      out += "." + frac;
    }
    out += "s";
  }
  return out;
}

}  // namespace poolguard::policy
