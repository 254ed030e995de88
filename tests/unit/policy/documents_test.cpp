#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>

#include "policy/parse.h"

namespace poolguard::policy {
namespace {

std::vector<Document> parseOk(const std::string& text) {
  auto r = parseDocuments(text, "test.yaml");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  return r.ok() ? *r : std::vector<Document>{};
}

std::string parseError(const std::string& text) {
  auto r = parseDocuments(text, "test.yaml");
  EXPECT_FALSE(r.ok()) << "accepted: " << text.substr(0, 200);
  return r.ok() ? "" : r.error().message();
}

TEST(ParseDocuments, MultiDocumentYamlSkipsEmptyDocuments) {
  auto docs = parseOk("---\nkind: A\n---\n# only a comment\n---\n\n---\nkind: B\n...\n");
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].object["kind"], "A");
  EXPECT_EQ(docs[0].index, 0);
  EXPECT_EQ(docs[1].object["kind"], "B");
  EXPECT_EQ(docs[1].index, 3);
  EXPECT_EQ(docs[1].source, "test.yaml");
}

TEST(ParseDocuments, EmptyInputHasNoDocuments) {
  EXPECT_TRUE(parseOk("").empty());
  EXPECT_TRUE(parseOk("   \n# nothing\n").empty());
}

TEST(ParseDocuments, JsonObject) {
  auto docs = parseOk(R"({"kind": "A", "spec": {"n": 5, "f": 1.5, "t": true, "z": null, "s": "5"}})");
  ASSERT_EQ(docs.size(), 1u);
  const auto& spec = docs[0].object["spec"];
  EXPECT_TRUE(spec["n"].is_number_integer());
  EXPECT_TRUE(spec["f"].is_number_float());
  EXPECT_TRUE(spec["t"].is_boolean());
  EXPECT_TRUE(spec["z"].is_null());
  EXPECT_TRUE(spec["s"].is_string());
}

TEST(ParseDocuments, ListKindsAreFlattened) {
  auto docs = parseOk("apiVersion: v1\nkind: List\nitems:\n- kind: A\n- kind: B\n---\nkind: C\n");
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0].object["kind"], "A");
  EXPECT_EQ(docs[1].object["kind"], "B");
  EXPECT_EQ(docs[2].object["kind"], "C");
  EXPECT_EQ(docs[2].index, 1);
  auto typed = parseOk(R"({"kind": "ConnectionPoolPolicyList", "items": [{"kind": "ConnectionPoolPolicy"}]})");
  ASSERT_EQ(typed.size(), 1u);
  EXPECT_EQ(typed[0].object["kind"], "ConnectionPoolPolicy");
  EXPECT_TRUE(parseOk("kind: List\nitems: []\n").empty());
}

TEST(ParseDocuments, ListItemsMustBeObjects) {
  EXPECT_NE(parseError("kind: List\nitems: [1]\n").find("items[0]"), std::string::npos);
  EXPECT_NE(parseError("kind: List\nitems: {a: 1}\n").find("must be a list"), std::string::npos);
}

TEST(ParseDocuments, DocumentsMustBeObjects) {
  EXPECT_NE(parseError("- a\n- b\n").find("expected an object"), std::string::npos);
  EXPECT_NE(parseError("kind: A\n---\njust text\n").find("document 2"), std::string::npos);
}

TEST(ParseDocuments, PlainScalarsAreTypedQuotedStayStrings) {
  auto docs = parseOk(
      "a: 10\nb: \"10\"\nc: '10'\nd: true\ne: \"true\"\nf: null\ng: ~\nh:\ni: 'null'\nj: 1.5\nk: 0x1F\nl: 017\n"
      "m: -3\nn: !!str 42\no: yes\np: off\nq: 1_000\nr: 8.0\ns: 30s\nt: 0o17\nu: 1e3\nv: 12345678901234567890\n"
      "w: 0.1.2\n");
  ASSERT_EQ(docs.size(), 1u);
  const auto& o = docs[0].object;
  EXPECT_EQ(o["a"], 10);
  EXPECT_EQ(o["b"], "10");
  EXPECT_EQ(o["c"], "10");
  EXPECT_EQ(o["d"], true);
  EXPECT_EQ(o["e"], "true");
  EXPECT_TRUE(o["f"].is_null());
  EXPECT_TRUE(o["g"].is_null());
  EXPECT_TRUE(o["h"].is_null());
  EXPECT_EQ(o["i"], "null");
  EXPECT_DOUBLE_EQ(o["j"].get<double>(), 1.5);
  EXPECT_EQ(o["k"], 31);
  EXPECT_EQ(o["l"], 15);
  EXPECT_EQ(o["m"], -3);
  EXPECT_EQ(o["n"], "42");
  EXPECT_EQ(o["o"], true);  // YAML 1.1, as kubectl reads it
  EXPECT_EQ(o["p"], false);
  EXPECT_EQ(o["q"], 1000);
  // An integral float reaches the API server as an integer (kubectl re-encodes numbers).
  EXPECT_TRUE(o["r"].is_number_integer());
  EXPECT_EQ(o["r"], 8);
  EXPECT_EQ(o["s"], "30s");
  EXPECT_EQ(o["t"], 15);
  EXPECT_EQ(o["u"], 1000);
  EXPECT_TRUE(o["v"].is_number_unsigned());
  EXPECT_EQ(o["w"], "0.1.2");
}

TEST(ParseDocuments, MergeKeys) {
  auto docs = parseOk("base: &b {x: 1, y: 2}\nobj:\n  <<: *b\n  y: 3\n");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].object["obj"]["x"], 1);
  EXPECT_EQ(docs[0].object["obj"]["y"], 3);
}

TEST(ParseDocuments, DuplicateKeysAreAnError) {
  auto msg = parseError("spec:\n  a: 1\n  a: 2\n");
  EXPECT_NE(msg.find("\"a\" appears twice"), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 3"), std::string::npos) << msg;
}

TEST(ParseDocuments, ComplexKeysAreAnError) {
  EXPECT_NE(parseError("? [a, b]\n: 1\n").find("mapping key"), std::string::npos);
}

TEST(ParseDocuments, SyntaxErrorsNameTheLine) {
  auto msg = parseError("kind: A\nspec:\n  a: [1, 2\n  b: 3\n");
  EXPECT_NE(msg.find("test.yaml:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not valid YAML"), std::string::npos) << msg;
  EXPECT_FALSE(parseError("a: [1, 2\n").empty());
  EXPECT_FALSE(parseError("a:\n\t- tab indented\n").empty());
}

TEST(ParseDocuments, InvalidJsonFallsBackToYamlAndReportsIt) {
  // Flow YAML that is not JSON still parses.
  auto docs = parseOk("{kind: A, n: 1}");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].object["n"], 1);
  EXPECT_FALSE(parseError("{\"kind\": [}").empty());
}

TEST(ParseDocuments, DeepFlowNestingIsRejected) {
  std::string deep = "a: " + std::string(100, '[') + std::string(100, ']') + "\n";
  auto msg = parseError(deep);
  EXPECT_NE(msg.find("nesting deeper than 64"), std::string::npos) << msg;
  std::string ok = "a: " + std::string(60, '[') + std::string(60, ']') + "\n";
  EXPECT_EQ(parseOk(ok).size(), 1u);
}

TEST(ParseDocuments, DeepJsonNestingIsRejected) {
  std::string deep = "{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}";
  auto msg = parseError(deep);
  EXPECT_NE(msg.find("nesting deeper than 64"), std::string::npos) << msg;
  std::string ok = "{\"a\":" + std::string(62, '[') + std::string(62, ']') + "}";
  EXPECT_EQ(parseOk(ok).size(), 1u);
}

TEST(ParseDocuments, DeepBlockNestingIsRejected) {
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += std::string(static_cast<size_t>(i), ' ') + "k:\n";
  EXPECT_NE(parseError(deep).find("nesting deeper than 64"), std::string::npos);
}

TEST(ParseDocuments, HostileNestingNeverCrashes) {
  // Far beyond any recursion a parser could survive without a guard.
  std::string brackets(4 * 1024 * 1024, '[');
  EXPECT_NE(parseError(brackets).find("nesting"), std::string::npos);
  std::string dashes;
  for (int i = 0; i < 200000; ++i) dashes += "- ";
  dashes += "x\n";
  EXPECT_FALSE(parseError(dashes).empty());
  std::string json = std::string(1000000, '[') + std::string(1000000, ']');
  EXPECT_NE(parseError(json).find("nesting deeper than 64"), std::string::npos);
}

TEST(ParseDocuments, HugeInputIsRejectedWithTheLimit) {
  std::string huge(kMaxInputBytes + 1, '#');
  auto msg = parseError(huge);
  EXPECT_NE(msg.find("8 MiB"), std::string::npos) << msg;
  EXPECT_NE(msg.find("split"), std::string::npos) << msg;
}

TEST(ParseDocuments, AliasExpansionIsCapped) {
  std::string laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  std::string prev = "a";
  for (char c = 'b'; c <= 'j'; ++c) {
    std::string name(1, c);
    laughs += name + ": &" + name + " [";
    for (int i = 0; i < 10; ++i) laughs += (i ? ", *" : "*") + prev;
    laughs += "]\n";
    prev = name;
  }
  auto msg = parseError(laughs);
  EXPECT_NE(msg.find("alias"), std::string::npos) << msg;
}

TEST(ParseDocuments, InvalidUtf8DoesNotThrow) {
  auto r = parseDocuments("kind: \"\xff\xfe\"\n", "bad.yaml");
  if (r.ok()) {
    ASSERT_EQ(r->size(), 1u);
    // Messages built from such values must not throw either.
    auto errors = validate(r->at(0).object);
    EXPECT_FALSE(errors.empty());
  }
}

TEST(ReadDocuments, ReadsAFile) {
  std::string path = ::testing::TempDir() + "/policy_read_test.yaml";
  std::ofstream(path) << "kind: A\n---\nkind: B\n";
  auto r = readDocuments(path);
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ(r->at(1).source, path);
  std::remove(path.c_str());
}

TEST(ReadDocuments, MissingFileAndDirectory) {
  auto missing = readDocuments("/nonexistent/policy.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message().find("/nonexistent/policy.yaml"), std::string::npos);
  auto dir = readDocuments(::testing::TempDir());
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.error().message().find("directory"), std::string::npos);
}

TEST(ReadDocuments, HugeFileIsRejectedWithoutReadingItAll) {
  std::string path = ::testing::TempDir() + "/policy_huge_test.yaml";
  {
    std::ofstream out(path);
    std::string line(1023, '#');
    for (size_t i = 0; i < kMaxInputBytes / 1024 + 2; ++i) out << line << '\n';
  }
  auto r = readDocuments(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("8 MiB"), std::string::npos);
  std::remove(path.c_str());
}

// yaml-cpp 0.7's LoadAll never returns on these; parseDocuments must answer with an error instead.
TEST(ParseDocuments, StreamsThatStallTheYamlParserAreRejected) {
  for (const std::string text : {",", "a: 1\n---\n,\n"}) {
    auto r = parseDocuments(text, "stall.yaml");
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.error().message().find("stall.yaml"), std::string::npos) << r.error().message();
  }
}

TEST(ParseDocuments, InvalidUtf8IsRejectedWithItsLine) {
  auto r = parseDocuments("kind: ConnectionPoolPolicy\nmetadata: {name: \"a\xff\"}\n", "bytes.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("bytes.yaml: line 2"), std::string::npos) << r.error().message();
}

}  // namespace
}  // namespace poolguard::policy
