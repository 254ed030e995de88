// The whole offline path on arbitrary text: parseDocuments, then validate, render and plan (the workspace, the
// budget, the renderer) with every output format (the YAML and JSON emitters). None may throw; each exits 0, 1 or
// 2; an input error is reported on the error stream with its document; and what render prints as YAML is read
// back by parseDocuments.
#include <cstddef>
#include <cstdint>
#include <sstream>

#include "fuzz_check.h"
#include "offline/commands.h"
#include "policy/parse.h"

namespace {
constexpr size_t kMaxInput = 256 * 1024;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace poolguard;
  if (size > kMaxInput) return -1;
  auto docs = policy::parseDocuments(fuzz::text(data, size), "fuzz.yaml");
  if (!docs) return 0;  // the policy_yaml target checks the parser's errors
  const offline::Loaded loaded{std::move(*docs), {}};
  for (auto run : {offline::runValidateLoaded, offline::runRenderLoaded, offline::runPlanLoaded}) {
    for (const char* output : {"text", "json", "yaml"}) {
      std::ostringstream out, err;
      int rc = -1;
      try {
        rc = run(loaded, output, out, err);
      } catch (const std::exception& e) {
        fuzz::fail(__FILE__, __LINE__, "no exception escapes an offline command", e.what());
      }
      FUZZ_CHECK_MSG(rc == offline::kExitOk || rc == offline::kExitFailed || rc == offline::kExitUsage, err.str());
      if (rc == offline::kExitUsage)
        FUZZ_CHECK_MSG(err.str().find("error: fuzz.yaml: document ") != std::string::npos, err.str());
      if (run == offline::runRenderLoaded && std::string(output) != "text") {
        auto back = policy::parseDocuments(out.str(), "rendered");
        FUZZ_CHECK_MSG(back.ok(), back.ok() ? out.str() : back.error().message() + "\n" + out.str());
      }
    }
  }
  return 0;
}
