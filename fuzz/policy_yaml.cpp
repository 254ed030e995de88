// parseDocuments on arbitrary text (YAML, JSON, Lists, multi-document), then validate and fromJson on every
// document it yields.
#include <cstddef>
#include <cstdint>

#include "fuzz_check.h"
#include "policy/parse.h"
#include "policy_checks.h"

namespace {
// parseDocuments itself caps input at 8 MiB; the fuzzer explores far smaller inputs (see -max_len in
// scripts/fuzz), and this keeps a hand-fed file from making one run take minutes.
constexpr size_t kMaxInput = 256 * 1024;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace poolguard;
  if (size > kMaxInput) return -1;
  const std::string text = fuzz::text(data, size);
  auto docs = policy::parseDocuments(text, "fuzz.yaml");
  if (!docs) {
    // Errors name the source (and where possible the document and line).
    FUZZ_CHECK_MSG(fuzz::startsWith(docs.error().message(), "fuzz.yaml"), docs.error().message());
    FUZZ_CHECK(docs.error().code() == ErrorCode::kInvalidArgument);
    return 0;
  }
  for (const auto& doc : *docs) {
    FUZZ_CHECK(doc.object.is_object());
    FUZZ_CHECK(doc.source == "fuzz.yaml");
    fuzz::checkPolicyObject(doc.object);
  }
  return 0;
}
