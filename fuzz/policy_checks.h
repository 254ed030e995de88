#pragma once
// What must hold for any object offered as a ConnectionPoolPolicy, shared by the YAML and JSON targets.
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "policy/parse.h"

namespace poolguard::fuzz {

inline void checkPolicyObject(const policy::json& obj) {
  const std::vector<policy::FieldError> problems = policy::validate(obj);
  for (const auto& p : problems) FUZZ_CHECK_MSG(!p.message.empty(), p.field);

  std::vector<policy::FieldError> reported;
  auto parsed = policy::fromJson(obj, &reported);
  // fromJson and validate agree: the object is accepted exactly when there is nothing to report.
  FUZZ_CHECK(parsed.ok() == problems.empty());
  FUZZ_CHECK(reported.size() == problems.size());
  if (!parsed) {
    // kInternal would mean the schema accepted something the model cannot hold.
    FUZZ_CHECK_MSG(parsed.error().code() == ErrorCode::kInvalid, parsed.error().message());
    FUZZ_CHECK(!parsed.error().message().empty());
    FUZZ_CHECK(parsed.error().causes().size() == problems.size());
    return;
  }
  // An accepted policy written back in its API form is accepted again, and reads back to the same form.
  // (The model keeps metadata.name only, so an object named through generateName cannot round-trip.)
  if (parsed->name.empty()) return;
  const policy::json back = policy::toJson(*parsed);
  // The offline commands print accepted policies as JSON: dump() must not throw (invalid UTF-8 would).
  (void)back.dump();
  auto again = policy::fromJson(back);
  FUZZ_CHECK_MSG(again.ok(), again.ok() ? std::string() : again.error().message() + "\n  from: " + back.dump());
  FUZZ_CHECK_MSG(policy::toJson(*again) == back, back.dump());
}

}  // namespace poolguard::fuzz
