#pragma once
// Invariant checks for the fuzz targets. A failed check prints what broke and aborts, which libFuzzer reports
// as a crash and saves the input as a reproducer.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) ::poolguard::fuzz::fail(__FILE__, __LINE__, #cond, std::string_view()); \
  } while (false)

#define FUZZ_CHECK_MSG(cond, msg)                                           \
  do {                                                                      \
    if (!(cond)) ::poolguard::fuzz::fail(__FILE__, __LINE__, #cond, (msg)); \
  } while (false)

namespace poolguard::fuzz {

[[noreturn]] inline void fail(const char* file, int line, const char* cond, std::string_view detail) {
  std::fprintf(stderr, "%s:%d: invariant failed: %s\n", file, line, cond);
  if (!detail.empty()) std::fprintf(stderr, "  %.*s\n", static_cast<int>(detail.size()), detail.data());
  std::abort();
}

inline std::string text(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

inline bool startsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// Splits "STATUS[ EXTRA]\n" off the front of an input: targets that take an HTTP answer read their status code
// (and, for the API, a Retry-After value) from a first line so that seeds stay readable files. Without such a
// line the status is `fallback` and the whole input is the body.
struct HttpInput {
  int status;
  std::string extra;
  std::string body;
};

inline HttpInput splitHttpInput(const std::string& in, int fallback) {
  HttpInput out{fallback, "", in};
  size_t nl = in.find('\n');
  if (nl == std::string::npos || nl < 3 || nl > 40) return out;
  int status = 0;
  for (size_t i = 0; i < 3; ++i) {
    char c = in[i];
    if (c < '0' || c > '9') return out;
    status = status * 10 + (c - '0');
  }
  if (nl > 3 && in[3] != ' ') return out;
  out.status = status;
  out.extra = nl > 4 ? in.substr(4, nl - 4) : "";
  out.body = in.substr(nl + 1);
  return out;
}

}  // namespace poolguard::fuzz
