// The policy corpus (tests/testdata/policies) offline: every valid file is accepted and converts; every invalid
// file is rejected with the message its `# expect-offline:` (or else `# expect:`) line names. The same corpus
// runs against a real API server in tests/integration/schema.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "policy/parse.h"
#include "source_dir.h"

namespace poolguard::policy {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> corpus(const std::string& kind) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(testing::sourceDir() + "/tests/testdata/policies/" + kind)) {
    if (e.path().extension() == ".yaml") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string directive(const fs::path& file, const std::string& name) {
  std::ifstream in(file);
  std::string line;
  std::string prefix = "# " + name + ": ";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
  }
  return "";
}

TEST(Corpus, ValidPoliciesAreAccepted) {
  auto files = corpus("valid");
  ASSERT_GE(files.size(), 5u);
  for (const auto& file : files) {
    auto docs = readDocuments(file.string());
    ASSERT_TRUE(docs.ok()) << docs.error().message();
    ASSERT_FALSE(docs->empty()) << file;
    for (const auto& doc : *docs) {
      std::vector<FieldError> errors;
      auto p = fromJson(doc.object, &errors);
      EXPECT_TRUE(p.ok()) << file << ": " << (p.ok() ? "" : p.error().message());
      if (p.ok()) {
        EXPECT_TRUE(validate(toJson(*p)).empty()) << file << ": toJson output does not validate";
      }
    }
  }
}

TEST(Corpus, InvalidPoliciesAreRejectedWithTheExpectedMessage) {
  auto files = corpus("invalid");
  ASSERT_GE(files.size(), 30u);
  for (const auto& file : files) {
    std::string expect = directive(file, "expect-offline");
    if (expect.empty()) expect = directive(file, "expect");
    ASSERT_FALSE(expect.empty()) << file << " has no # expect: line";
    auto docs = readDocuments(file.string());
    std::string messages;
    if (!docs.ok()) {
      messages = docs.error().message();
    } else {
      ASSERT_EQ(docs->size(), 1u) << file;
      auto p = fromJson(docs->front().object);
      ASSERT_FALSE(p.ok()) << file << " was accepted";
      messages = p.error().message();
    }
    EXPECT_NE(messages.find(expect), std::string::npos)
        << file << "\n  expected: " << expect << "\n  got: " << messages;
  }
}

}  // namespace
}  // namespace poolguard::policy
