// The policy corpus (tests/testdata/policies) offline: every valid file is accepted and converts; every invalid
// file is rejected with the message its `# expect-offline:` (or else `# expect:`) line names. The same corpus
// runs against a real API server in tests/integration/schema.
#include <gtest/gtest.h>

#include "policy/parse.h"
#include "source_dir.h"
#include "support/policy_corpus.h"

namespace poolguard::policy {
namespace {

using poolguard::testing::corpusDirective;
using poolguard::testing::policyCorpus;

TEST(Corpus, ValidPoliciesAreAccepted) {
  auto files = policyCorpus(testing::sourceDir(), "valid");
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
  auto files = policyCorpus(testing::sourceDir(), "invalid");
  ASSERT_GE(files.size(), 30u);
  for (const auto& file : files) {
    std::string expect = corpusDirective(file, "expect-offline");
    if (expect.empty()) expect = corpusDirective(file, "expect");
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
