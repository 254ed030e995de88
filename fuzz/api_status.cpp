// errorFromResponse on arbitrary answers: the first line "STATUS [RETRY-AFTER]" gives the HTTP status and the
// Retry-After header, the rest is the body (a metav1.Status, a proxy's HTML page, anything). Also
// errorFromStatus on the body as a watch ERROR event's object.
// Invariants: no exception; the Error keeps the HTTP status; its message is never empty; a Retry-After is never
// negative.
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "fuzz_check.h"
#include "kube/status.h"

namespace {
constexpr size_t kMaxInput = 256 * 1024;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace poolguard;
  if (size > kMaxInput) return -1;
  const auto in = fuzz::splitHttpInput(fuzz::text(data, size), 500);

  Error e = kube::errorFromResponse(in.status, in.body, in.extra);
  FUZZ_CHECK(e.httpStatus() == in.status);
  FUZZ_CHECK(!e.message().empty());
  if (e.retryAfter()) FUZZ_CHECK(e.retryAfter()->count() >= 0);

  nlohmann::json status = nlohmann::json::parse(in.body, nullptr, /*allow_exceptions=*/false);
  if (!status.is_discarded()) {
    Error w = kube::errorFromStatus(status, in.status);
    FUZZ_CHECK(!w.message().empty());
    if (w.retryAfter()) FUZZ_CHECK(w.retryAfter()->count() > 0);
  }
  return 0;
}
