#pragma once
// RFC 6901: one reference token of a JSON pointer ("poolguard.dev/policy" -> "poolguard.dev~1policy").
#include <string>

namespace poolguard {

inline std::string jsonPointerToken(const std::string& key) {
  std::string out;
  out.reserve(key.size());
  for (char c : key) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

}  // namespace poolguard
