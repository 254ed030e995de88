// Arbitrary JSON values straight into validate/fromJson (the path admission-like callers take with objects
// from the API server), plus parseDocuments on the same text as JSON.
#include <cstddef>
#include <cstdint>

#include "fuzz_check.h"
#include "policy/parse.h"
#include "policy_checks.h"

namespace {
constexpr size_t kMaxInput = 256 * 1024;
struct TooDeep {};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace poolguard;
  using policy::json;
  if (size > kMaxInput) return -1;
  const std::string text = fuzz::text(data, size);

  // The API server caps object nesting; so does this target, at the same depth parseDocuments enforces.
  auto limitDepth = [](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= policy::kMaxNestingDepth) {
      throw TooDeep{};
    }
    return true;
  };
  json value;
  try {
    value = json::parse(text, limitDepth, /*allow_exceptions=*/false);
  } catch (const TooDeep&) {
    return 0;
  }
  if (value.is_discarded()) return 0;

  // Any JSON value, object or not, gets a verdict and never an exception.
  fuzz::checkPolicyObject(value);

  auto docs = policy::parseDocuments(text, "fuzz.json");
  if (!docs) {
    FUZZ_CHECK_MSG(fuzz::startsWith(docs.error().message(), "fuzz.json"), docs.error().message());
    return 0;
  }
  for (const auto& doc : *docs) fuzz::checkPolicyObject(doc.object);
  return 0;
}
