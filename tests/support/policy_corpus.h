#pragma once
// The policy corpus (tests/testdata/policies/{valid,invalid}), shared by the offline unit test and the
// API-server integration test. Header-only, so a unit test needs no cluster support to use it.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace poolguard::testing {

// The .yaml files of tests/testdata/policies/<kind> ("valid" or "invalid") under sourceDir, sorted.
inline std::vector<std::filesystem::path> policyCorpus(const std::string& sourceDir, const std::string& kind) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(sourceDir + "/tests/testdata/policies/" + kind)) {
    if (e.path().extension() == ".yaml") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The text after `# <name>: ` on the first line of the file that starts with it ("" when none), e.g. the
// `# expect:` and `# expect-offline:` lines of an invalid policy.
inline std::string corpusDirective(const std::filesystem::path& file, const std::string& name) {
  std::ifstream in(file);
  std::string line;
  std::string prefix = "# " + name + ": ";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
  }
  return "";
}

}  // namespace poolguard::testing
