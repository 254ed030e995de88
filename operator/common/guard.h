#pragma once
// The last line of defence of every command: whatever escapes `body` (a library's exception, a bug) becomes one
// line on `err` and exit code 2, never an abort with a core dump in a CI pipeline.
#include <exception>
#include <ostream>
#include <string>

namespace poolguard {

inline constexpr int kExitUnexpected = 2;

template <class Body>
int guardedMain(Body&& body, std::ostream& err) noexcept {
  auto oneLine = [](std::string s) {
    for (char& c : s) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    return s;
  };
  try {
    return body();
  } catch (const std::exception& e) {
    err << "error: unexpected failure: " << oneLine(e.what()) << "; please report it with the input that caused it\n";
  } catch (...) {
    err << "error: unexpected failure; please report it with the input that caused it\n";
  }
  return kExitUnexpected;
}

}  // namespace poolguard
