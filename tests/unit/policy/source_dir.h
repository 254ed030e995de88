#pragma once
#include <cstdlib>
#include <string>

namespace poolguard::policy::testing {

inline std::string sourceDir() {
  const char* env = std::getenv("POOLGUARD_SOURCE_DIR");
  return env != nullptr && *env != '\0' ? env : POOLGUARD_SOURCE_DIR_DEFAULT;
}

}  // namespace poolguard::policy::testing
