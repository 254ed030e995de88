// The bad-input corpus (tests/testdata/badinput, written by its generate.py): every file is hostile or broken
// input for one reader, and every reader must answer it with a clear error (a message that says what and, for
// policies and kubeconfigs, where) instead of crashing, throwing or accepting it.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "fake_client.h"
#include "kube/config.h"
#include "kube/line_splitter.h"
#include "kube/status.h"
#include "offline/commands.h"
#include "policy/parse.h"
#include "runtime/watcher.h"
#include "usage/postgres_source.h"
#include "usage/prometheus_source.h"

namespace poolguard {
namespace {

namespace fs = std::filesystem;
using kube::json;

std::string corpusDir() {
  const char* env = std::getenv("POOLGUARD_SOURCE_DIR");
  std::string root = env != nullptr && *env != '\0' ? env : POOLGUARD_SOURCE_DIR_DEFAULT;
  return root + "/tests/testdata/badinput";
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool startsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// Files of one kind, as paths relative to the corpus ("policies/x.yaml"). `recursive` descends into folders.
std::vector<std::string> inputs(const std::string& kind, bool recursive = false) {
  std::vector<std::string> out;
  const fs::path base = fs::path(corpusDir()) / kind;
  std::error_code ec;
  if (!fs::is_directory(base, ec)) return out;
  auto add = [&](const fs::directory_entry& e) {
    if (e.is_regular_file()) out.push_back(fs::relative(e.path(), corpusDir()).generic_string());
  };
  if (recursive) {
    for (const auto& e : fs::recursive_directory_iterator(base)) add(e);
  } else {
    for (const auto& e : fs::directory_iterator(base)) add(e);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string testName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

// "STATUS[ EXTRA]\n" + body, the layout of the prometheus and api-status inputs (and of the fuzz seeds).
struct HttpInput {
  int status = 0;
  std::string extra;
  std::string body;
};

HttpInput httpInput(const std::string& text) {
  HttpInput in;
  size_t nl = text.find('\n');
  EXPECT_NE(nl, std::string::npos) << "the first line must hold the HTTP status";
  if (nl == std::string::npos) return in;
  std::string head = text.substr(0, nl);
  in.status = std::atoi(head.substr(0, 3).c_str());
  in.extra = head.size() > 4 ? head.substr(4) : "";
  in.body = text.substr(nl + 1);
  return in;
}

// ------------------------------------------------------------------------------------------------- policies

class PolicyInput : public ::testing::TestWithParam<std::string> {};

TEST_P(PolicyInput, IsRejectedNamingAFieldOrAPosition) {
  const std::string source = GetParam();
  const std::string text = readFile(corpusDir() + "/" + source);
  try {
    auto docs = policy::parseDocuments(text, source);
    if (!docs) {
      const std::string& m = docs.error().message();
      EXPECT_EQ(docs.error().code(), ErrorCode::kInvalidArgument) << m;
      EXPECT_TRUE(startsWith(m, source + ":")) << m;
      static const std::regex kPosition(R"(document \d+|:\d+(:\d+)?: |line \d+|input is \d+ bytes)");
      EXPECT_TRUE(std::regex_search(m, kPosition)) << "no document, line or size in: " << m;
      return;
    }
    ASSERT_FALSE(docs->empty()) << "neither an error nor a document";
    bool rejected = false;
    for (const auto& doc : *docs) {
      std::vector<policy::FieldError> errors;
      auto p = policy::fromJson(doc.object, &errors);
      if (p) continue;
      rejected = true;
      const std::string& m = p.error().message();
      EXPECT_EQ(p.error().code(), ErrorCode::kInvalid) << m;
      ASSERT_FALSE(errors.empty()) << m;
      bool namesField = false;
      for (const auto& e : errors) {
        EXPECT_FALSE(e.message.empty()) << "field " << e.field;
        if (e.field.empty()) continue;
        namesField = true;
        EXPECT_NE(m.find(e.field), std::string::npos) << "the message does not name " << e.field << ": " << m;
      }
      EXPECT_TRUE(namesField) << m;
    }
    EXPECT_TRUE(rejected) << "every document was accepted";
  } catch (const std::exception& e) {
    FAIL() << "threw instead of answering with an error: " << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(BadInput, PolicyInput, ::testing::ValuesIn(inputs("policies")), testName);

// ------------------------------------------------------------------------------------------------ manifests

class ManifestInput : public ::testing::TestWithParam<std::string> {};

// One document of the set has a value of the wrong type (generate.py says which in the file name). Every command
// names it (file, document, field), exits 2, and still reads the rest: the policy, unless it is the broken
// document, is still validated.
TEST_P(ManifestInput, IsReportedByEveryCommandWhileTheRestIsRead) {
  const std::string source = GetParam();
  const std::string text = readFile(corpusDir() + "/" + source);
  auto docs = policy::parseDocuments(text, source);
  ASSERT_TRUE(docs.ok()) << docs.error().message();
  offline::Loaded loaded{*docs, {}};
  const bool policyBroken = startsWith(fs::path(source).filename().string(), "policy-");
  static const std::regex kLine(R"(^error: )" + std::string("manifests/") +
                                R"([^:]+: document [1-5]: [A-Za-z]+ [^ ]+: [A-Za-z]+[A-Za-z0-9.\[\]]*: .+$)");
  for (auto run : {offline::runValidateLoaded, offline::runRenderLoaded, offline::runPlanLoaded}) {
    for (const char* output : {"text", "json", "yaml"}) {
      std::ostringstream out, err;
      try {
        EXPECT_EQ(run(loaded, output, out, err), offline::kExitUsage) << err.str();
      } catch (const std::exception& e) {
        FAIL() << "threw instead of answering with an error: " << e.what();
      }
      std::istringstream lines(err.str());
      std::string line;
      int errors = 0;
      while (std::getline(lines, line)) {
        if (!startsWith(line, "error: ")) continue;
        ++errors;
        EXPECT_TRUE(std::regex_match(line, kLine)) << "does not name file, document and field: " << line;
      }
      EXPECT_GE(errors, 1) << err.str();
      if (run == offline::runValidateLoaded && std::string(output) == "text" && !policyBroken) {
        EXPECT_NE(out.str().find("ConnectionPoolPolicy shop/orders: valid"), std::string::npos) << out.str();
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(BadInput, ManifestInput, ::testing::ValuesIn(inputs("manifests")), testName);

// ---------------------------------------------------------------------------------------------- kubeconfigs

class KubeconfigInput : public ::testing::TestWithParam<std::string> {};

TEST_P(KubeconfigInput, IsRejectedNamingAFieldOrALine) {
  const std::string path = corpusDir() + "/" + GetParam();
  try {
    auto config = kube::loadKubeconfig(path);
    ASSERT_FALSE(config.ok()) << "accepted: " << kube::describe(*config);
    const std::string& m = config.error().message();
    EXPECT_EQ(config.error().code(), ErrorCode::kInvalidArgument) << m;
    ASSERT_TRUE(startsWith(m, path + ": ")) << m;
    static const std::regex kWhere(
        R"(^(line \d+: .|not a kubeconfig|current-context: .|(contexts|clusters|users)[\[:.]))");
    EXPECT_TRUE(std::regex_search(m.substr(path.size() + 2), kWhere)) << "no field or line in: " << m;
  } catch (const std::exception& e) {
    FAIL() << "threw instead of answering with an error: " << e.what();
  }
}

// kubeconfigs/files/ holds what the kubeconfigs reference, not kubeconfigs.
INSTANTIATE_TEST_SUITE_P(BadInput, KubeconfigInput, ::testing::ValuesIn(inputs("kubeconfigs")), testName);

// ---------------------------------------------------------------------------------------------------- watch

// Watch lines are capped far below the production 32 MiB so that the corpus can hold over-long lines in
// files of ~100 KiB; LineSplitterDefaultCap below covers the real cap.
constexpr size_t kWatchLineCap = 64 * 1024;

struct SplitStream {
  std::vector<std::string> lines;
  std::optional<Error> error;
  std::string remainder;
};

// chunk 0: the whole body at once.
SplitStream split(const std::string& body, size_t chunk) {
  kube::LineSplitter splitter(kWatchLineCap);
  SplitStream out;
  size_t pos = 0;
  do {
    size_t n = chunk == 0 ? body.size() : std::min(chunk, body.size() - pos);
    splitter.feed(std::string_view(body).substr(pos, n));
    pos += n;
    while (true) {
      auto line = splitter.next();
      if (!line) {
        out.error = line.error();
        return out;
      }
      if (!*line) break;
      EXPECT_LE((*line)->size(), kWatchLineCap);
      out.lines.push_back(**line);
    }
  } while (pos < body.size());
  out.remainder = splitter.takeRemainder();
  return out;
}

// How RestWatchStream (kube/rest_client.cpp) decodes one line; its decoder is internal to the REST client, so
// this repeats it. passThrough hands ERROR events to the Watcher as kError events with the Status unchanged,
// as a scripted stream may; otherwise the Status becomes an Error, as the REST client returns it.
Result<std::optional<kube::WatchEvent>> decode(const std::string& line, bool passThrough) {
  json event = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (event.is_discarded() || !event.is_object()) {
    return Error(ErrorCode::kInternal, "undecodable event: " + line.substr(0, 200));
  }
  auto t = event.find("type");
  std::string type = t != event.end() && t->is_string() ? t->get<std::string>() : "";
  json object = event.contains("object") ? std::move(event["object"]) : json::object();
  using T = kube::WatchEventType;
  if (type == "ADDED") return std::optional(kube::WatchEvent{T::kAdded, std::move(object)});
  if (type == "MODIFIED") return std::optional(kube::WatchEvent{T::kModified, std::move(object)});
  if (type == "DELETED") return std::optional(kube::WatchEvent{T::kDeleted, std::move(object)});
  if (type == "BOOKMARK") return std::optional(kube::WatchEvent{T::kBookmark, std::move(object)});
  if (type == "ERROR") {
    if (passThrough) return std::optional(kube::WatchEvent{T::kError, std::move(object)});
    return kube::errorFromStatus(object, 0);
  }
  return Error(ErrorCode::kInternal, "unknown event type \"" + type + "\"");
}

// Plays the body to a Watcher over the scripted client; returns the error messages the watch ended with.
std::vector<std::string> playWatch(const std::string& body, size_t chunk, bool passThrough) {
  SplitStream s = split(body, chunk);
  std::vector<Result<std::optional<kube::WatchEvent>>> steps;
  for (const auto& line : s.lines) {
    if (!line.empty()) steps.push_back(decode(line, passThrough));
  }
  if (s.error) {
    steps.push_back(*s.error);
  } else if (!s.remainder.empty()) {
    steps.push_back(decode(s.remainder, passThrough));
  }

  runtime::testing::FakeClient client;
  client.pushList(runtime::testing::listPage({}, "10"));
  runtime::testing::WatchScript script;
  script.steps = steps;
  script.endAfterSteps = true;
  client.pushWatch(script);
  runtime::WatcherOptions opts;
  opts.resource = {"", "v1", "configmaps", "ConfigMap", true};
  runtime::Watcher watcher(client, opts, /*seed=*/7);

  std::vector<std::string> errors;
  (void)watcher.step();  // list
  (void)watcher.step();  // open the watch
  for (size_t i = 0; i <= steps.size() && std::holds_alternative<runtime::watcher_state::Watching>(watcher.state());
       ++i) {
    auto r = watcher.step();
    if (r.error) {
      EXPECT_FALSE(r.error->message().empty());
      errors.push_back(r.error->message());
    }
  }
  EXPECT_FALSE(std::holds_alternative<runtime::watcher_state::Watching>(watcher.state()))
      << "the watch did not end after its last event";
  return errors;
}

class WatchInput : public ::testing::TestWithParam<std::string> {};

TEST_P(WatchInput, SplitsTheSameHoweverTheBytesArrive) {
  const std::string body = readFile(corpusDir() + "/" + GetParam());
  SplitStream whole = split(body, 0);
  for (size_t chunk : {1, 7, 4096}) {
    SplitStream cut = split(body, chunk);
    // Compared as a whole: printing 64 KiB lines on failure helps nobody.
    EXPECT_TRUE(cut.lines == whole.lines)
        << "chunks of " << chunk << ": " << cut.lines.size() << " lines, not " << whole.lines.size();
    EXPECT_EQ(cut.error.has_value(), whole.error.has_value()) << "chunks of " << chunk;
    if (!whole.error) {
      EXPECT_EQ(cut.remainder, whole.remainder) << "chunks of " << chunk;
    }
  }
}

TEST_P(WatchInput, EndsTheWatchWithAnError) {
  const std::string body = readFile(corpusDir() + "/" + GetParam());
  for (size_t chunk : {0, 1, 4096}) {
    try {
      auto errors = playWatch(body, chunk, /*passThrough=*/false);
      EXPECT_FALSE(errors.empty()) << "chunks of " << chunk << ": the stream was read without an error";
    } catch (const std::exception& e) {
      ADD_FAILURE() << "chunks of " << chunk << ": threw: " << e.what();
    }
  }
}

// The same streams with ERROR events handed to the Watcher as kError events: it reads the Status itself.
TEST_P(WatchInput, WatcherReadsAnyStatusItIsHanded) {
  const std::string body = readFile(corpusDir() + "/" + GetParam());
  try {
    auto errors = playWatch(body, 0, /*passThrough=*/true);
    EXPECT_FALSE(errors.empty()) << "the stream was read without an error";
  } catch (const std::exception& e) {
    FAIL() << "threw: " << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(BadInput, WatchInput, ::testing::ValuesIn(inputs("watch")), testName);

TEST(BadInputWatch, LineSplitterDefaultCap) {
  kube::LineSplitter splitter;
  const std::string chunk(1024 * 1024, 'x');
  std::optional<Error> error;
  for (size_t fed = 0; fed <= kube::LineSplitter::kDefaultMaxLine && !error; fed += chunk.size()) {
    splitter.feed(chunk);
    auto line = splitter.next();
    if (!line) error = line.error();
  }
  ASSERT_TRUE(error.has_value()) << "a line beyond the default cap was buffered without an error";
  EXPECT_NE(error->message().find(std::to_string(kube::LineSplitter::kDefaultMaxLine)), std::string::npos)
      << error->message();
}

// ----------------------------------------------------------------------------------------------- prometheus

class PrometheusErrorInput : public ::testing::TestWithParam<std::string> {};

TEST_P(PrometheusErrorInput, IsAnErrorNamingTheQuery) {
  const HttpInput in = httpInput(readFile(corpusDir() + "/" + GetParam()));
  try {
    auto r = usage::parseQueryResponse(in.status, in.body, "connections");
    ASSERT_FALSE(r.ok()) << "read as " << (r->has_value() ? std::to_string(**r) : std::string("no data"));
    const std::string& m = r.error().message();
    EXPECT_TRUE(startsWith(m, "connections: ")) << m;
    EXPECT_GT(m.size(), std::string("connections: ").size());
    EXPECT_TRUE(r.error().reason() == usage::prometheus_reasons::kQueryFailed ||
                r.error().reason() == usage::prometheus_reasons::kMalformed)
        << r.error().reason();
  } catch (const std::exception& e) {
    FAIL() << "threw instead of answering with an error: " << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(BadInput, PrometheusErrorInput, ::testing::ValuesIn(inputs("prometheus/error")), testName);

// NaN and an empty vector are "no data": never an error, and never zero.
class PrometheusNoDataInput : public ::testing::TestWithParam<std::string> {};

TEST_P(PrometheusNoDataInput, IsNoData) {
  const HttpInput in = httpInput(readFile(corpusDir() + "/" + GetParam()));
  auto r = usage::parseQueryResponse(in.status, in.body, "connections");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_FALSE(r->has_value()) << **r;
}

INSTANTIATE_TEST_SUITE_P(BadInput, PrometheusNoDataInput, ::testing::ValuesIn(inputs("prometheus/nodata")), testName);

// ------------------------------------------------------------------------------------------------- postgres

class PostgresMessageInput : public ::testing::TestWithParam<std::string> {};

// postgres/<class>/...: the class is the reason the message must be given.
TEST_P(PostgresMessageInput, IsClassifiedWithAReadableMessage) {
  const std::string rel = GetParam();
  const std::string cls = fs::path(rel).parent_path().filename().string();
  const std::string expected = cls == "auth"  ? usage::postgres_reasons::kAuthFailed
                               : cls == "tls" ? usage::postgres_reasons::kTls
                                              : usage::postgres_reasons::kUnreachable;
  const std::string text = readFile(corpusDir() + "/" + rel);
  Error e = usage::classifyConnectionError("db.example:5432", text);
  EXPECT_EQ(e.reason(), expected) << e.message();
  EXPECT_TRUE(startsWith(e.message(), "postgres db.example:5432: ")) << e.message();
  EXPECT_GT(e.message().size(), std::string("postgres db.example:5432: ").size());
  EXPECT_EQ(e.message().find('\n'), std::string::npos) << "one line expected: " << e.message();
}

INSTANTIATE_TEST_SUITE_P(BadInput, PostgresMessageInput, ::testing::ValuesIn(inputs("postgres", true)), testName);

// ----------------------------------------------------------------------------------------------- api status

class ApiStatusInput : public ::testing::TestWithParam<std::string> {};

TEST_P(ApiStatusInput, BecomesAnErrorWithTheHttpStatus) {
  const HttpInput in = httpInput(readFile(corpusDir() + "/" + GetParam()));
  try {
    Error e = kube::errorFromResponse(in.status, in.body, in.extra);
    EXPECT_FALSE(e.message().empty());
    EXPECT_EQ(e.httpStatus(), in.status);
    if (e.retryAfter()) {
      EXPECT_GE(e.retryAfter()->count(), 0);
    }
    json parsed = json::parse(in.body, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_discarded()) {
      Error s = kube::errorFromStatus(parsed, in.status);
      EXPECT_FALSE(s.message().empty());
    }
  } catch (const std::exception& e) {
    FAIL() << "threw instead of answering with an error: " << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(BadInput, ApiStatusInput, ::testing::ValuesIn(inputs("api-status")), testName);

// ------------------------------------------------------------------------------------------------- the corpus

TEST(BadInputCorpus, HoldsAtLeast200Inputs) {
  size_t total = 0;
  for (const char* kind : {"policies", "manifests", "kubeconfigs", "watch", "prometheus/error", "prometheus/nodata",
                           "postgres", "api-status"}) {
    size_t n = inputs(kind, std::string(kind) == "postgres").size();
    EXPECT_GT(n, 0U) << kind << " is empty";
    total += n;
  }
  EXPECT_GE(total, 200U) << "in " << corpusDir();
  for (const char* cls : {"auth", "tls", "unreachable"}) {
    EXPECT_FALSE(inputs(std::string("postgres/") + cls).empty()) << cls;
  }
}

}  // namespace
}  // namespace poolguard
