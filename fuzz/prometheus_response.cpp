// parseQueryResponse on arbitrary answers: an optional first line "STATUS" gives the HTTP status (200 when
// absent), the rest is the body.
// Invariants: no exception; a value is finite (NaN is "no data", infinities are errors); an error names the
// query, carries one of the source's reasons and never an empty message.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "usage/prometheus_source.h"

namespace {
constexpr size_t kMaxInput = 256 * 1024;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace poolguard;
  namespace reasons = usage::prometheus_reasons;
  if (size > kMaxInput) return -1;
  const auto in = fuzz::splitHttpInput(fuzz::text(data, size), 200);

  auto r = usage::parseQueryResponse(in.status, in.body, "connections");
  if (r) {
    if (*r) FUZZ_CHECK_MSG(std::isfinite(**r), std::to_string(**r));
    // A value is only read from a successful answer.
    FUZZ_CHECK(in.status >= 200 && in.status < 300);
    return 0;
  }
  const Error& e = r.error();
  FUZZ_CHECK_MSG(fuzz::startsWith(e.message(), "connections: "), e.message());
  FUZZ_CHECK(e.message().size() > std::string("connections: ").size());
  FUZZ_CHECK_MSG(e.reason() == reasons::kQueryFailed || e.reason() == reasons::kMalformed, e.reason());
  return 0;
}
