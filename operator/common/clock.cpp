#include "common/clock.h"

#include <cstdio>
#include <ctime>

namespace poolguard {

SystemClock& SystemClock::instance() {
  static SystemClock clock;
  return clock;
}

std::string formatRfc3339(Clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool parseRfc3339(const std::string& s, Clock::time_point& out) {
  int y, mo, d, h, mi, sec;
  char tail[40] = {0};
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%39s", &y, &mo, &d, &h, &mi, &sec, tail) < 6) return false;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return false;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  std::time_t secs = timegm(&tm);
  out = std::chrono::system_clock::from_time_t(secs);
  const char* p = tail;
  if (*p == '.') {
    ++p;
    long micros = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9') {
      if (digits < 6) {
        micros = micros * 10 + (*p - '0');
        ++digits;
      }
      ++p;
    }
    while (digits++ < 6) micros *= 10;
    out += std::chrono::microseconds(micros);
  }
  if (*p == 'Z' && p[1] == 0) return true;
  int oh, om;
  if ((*p == '+' || *p == '-') && std::sscanf(p + 1, "%2d:%2d", &oh, &om) == 2) {
    auto off = std::chrono::hours(oh) + std::chrono::minutes(om);
    out += (*p == '+') ? -off : off;
    return true;
  }
  return false;
}

}  // namespace poolguard
