#include "usage/libpq.h"

#include <dlfcn.h>

#include <string>

namespace poolguard::usage {

namespace {

// libpq's soname: the ABI the headers describe.
constexpr const char* kLibpqFile = "libpq.so.5";

struct Loaded {
  Libpq table;
  std::string error;  // empty when loaded
};

Loaded load() {
  Loaded l;
  void* handle = ::dlopen(kLibpqFile, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    l.error = std::string("the PostgreSQL client library ") + kLibpqFile + " cannot be loaded (" +
              (why ? why : "unknown error") + "); install it (Debian: apt-get install libpq5)";
    return l;
  }
  // The handle stays open for the life of the process: connections and results point into it.
#define POOLGUARD_LIBPQ_LOOKUP(name)                                               \
  l.table.name = reinterpret_cast<decltype(l.table.name)>(::dlsym(handle, #name)); \
  if (l.table.name == nullptr) {                                                   \
    l.error = std::string("the PostgreSQL client library ") + kLibpqFile +         \
              " has no " #name "; install the libpq5 package of the distribution"; \
    return l;                                                                      \
  }
  POOLGUARD_LIBPQ_FUNCTIONS(POOLGUARD_LIBPQ_LOOKUP)
#undef POOLGUARD_LIBPQ_LOOKUP
  return l;
}

const Loaded& loaded() {
  static const Loaded l = load();
  return l;
}

}  // namespace

Result<const Libpq*> loadLibpq() {
  const Loaded& l = loaded();
  if (!l.error.empty()) return Error(ErrorCode::kUnavailable, l.error);
  return &l.table;
}

const Libpq& libpq() { return loaded().table; }

}  // namespace poolguard::usage
