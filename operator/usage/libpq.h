#pragma once
// libpq, loaded (dlopen) when the first check of a PostgreSQL server needs it, not at start-up: an operator whose
// policies read no PostgreSQL pays nothing for it, and libpq brings Kerberos, LDAP and GnuTLS along (about 3 MiB of
// resident pages). Only postgres_source.cpp calls libpq, through this table; the members carry libpq's own names.
#include <libpq-fe.h>

#include "common/result.h"

namespace poolguard::usage {

#define POOLGUARD_LIBPQ_FUNCTIONS(X) \
  X(PQclear)                         \
  X(PQconndefaults)                  \
  X(PQconnectdbParams)               \
  X(PQconninfoFree)                  \
  X(PQerrorMessage)                  \
  X(PQexec)                          \
  X(PQexecParams)                    \
  X(PQfinish)                        \
  X(PQgetisnull)                     \
  X(PQgetvalue)                      \
  X(PQntuples)                       \
  X(PQresultErrorField)              \
  X(PQresultStatus)                  \
  X(PQstatus)

struct Libpq {
#define POOLGUARD_LIBPQ_MEMBER(name) decltype(&::name) name = nullptr;
  POOLGUARD_LIBPQ_FUNCTIONS(POOLGUARD_LIBPQ_MEMBER)
#undef POOLGUARD_LIBPQ_MEMBER
};

// The library, loaded on the first call (thread-safe; later calls return the same result). The error names the
// file and the fix (install libpq5).
Result<const Libpq*> loadLibpq();

// The loaded library: only after loadLibpq() succeeded.
const Libpq& libpq();

}  // namespace poolguard::usage
