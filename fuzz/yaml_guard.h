#pragma once
// yaml-cpp 0.7 (Debian 12) loops forever in YAML::LoadAll on some inputs (a lone ",": jbeder/yaml-cpp#1040,
// fixed upstream by PR #1319), appending null documents until memory runs out. parseDocuments calls LoadAll,
// so such input exhausts memory (reproducer: fuzz/crashes/policy_yaml/). Until parseDocuments guards against
// it, the policy targets skip inputs that trigger it, so that fuzzing can reach everything else.
#include <sstream>
#include <string>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

namespace poolguard::fuzz {

// Counts documents the way LoadAll walks them, stopping early; true when the stream does not end.
inline bool yamlLoadAllRunsAway(const std::string& text) {
  class Count : public YAML::EventHandler {
   public:
    void OnDocumentStart(const YAML::Mark&) override {}
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
  };
  std::istringstream in(text);
  try {
    YAML::Parser parser(in);
    Count count;
    // A document needs at least one byte, so more documents than bytes means the parser is not advancing.
    for (size_t docs = 0; parser.HandleNextDocument(count); ++docs) {
      if (docs > text.size() + 1) return true;
    }
  } catch (const std::exception&) {
    return false;  // parseDocuments reports it
  }
  return false;
}

}  // namespace poolguard::fuzz
