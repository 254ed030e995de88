// A watch response body, cut into arbitrary chunks, through LineSplitter; each line decoded as the REST
// client decodes watch events; the events played to a real runtime::Watcher through the scripted test client.
//
// Invariants:
//   - LineSplitter gives the same lines (and the same verdict on over-long lines) however the bytes are cut;
//   - lines never exceed the cap and never carry their "\n";
//   - the Watcher never throws on any event or Status, reports every failure with a message, ends a watch on
//     the first failure (410 Gone relists), emits one Applied/Deleted per object event and tracks the newest
//     resourceVersion.
// The chunking is derived from a hash of the input, so a seed file is a plain watch body and a reproducer
// replays identically.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "fake_client.h"
#include "fuzz_check.h"
#include "kube/line_splitter.h"
#include "kube/status.h"
#include "runtime/watcher.h"

namespace {

using namespace poolguard;
using kube::json;
constexpr size_t kMaxInput = 1024 * 1024;

struct Split {
  std::vector<std::string> lines;
  std::optional<std::string> error;
  std::string remainder;
};

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

// Drains every complete line; false once the splitter reports an error.
bool drain(kube::LineSplitter& s, Split& out, size_t cap) {
  while (true) {
    auto line = s.next();
    if (!line) {
      FUZZ_CHECK(!line.error().message().empty());
      out.error = line.error().message();
      return false;
    }
    if (!*line) return true;
    const std::string& l = **line;
    FUZZ_CHECK(l.size() <= cap);
    FUZZ_CHECK(l.find('\n') == std::string::npos);
    out.lines.push_back(l);
  }
}

Split splitChunked(const std::string& body, size_t cap, uint64_t seed) {
  kube::LineSplitter s(cap);
  Split out;
  uint64_t x = seed | 1;
  size_t pos = 0;
  while (pos < body.size()) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    // Mostly small chunks, some large ones, as a TLS record or an HTTP chunk would cut the stream.
    size_t n = (x & 3) == 0 ? 1 + (x >> 8) % 4096 : 1 + (x >> 8) % 17;
    n = std::min(n, body.size() - pos);
    s.feed(std::string_view(body).substr(pos, n));
    pos += n;
    if (!drain(s, out, cap)) return out;
  }
  out.remainder = s.takeRemainder();
  FUZZ_CHECK(s.buffered() == 0);
  return out;
}

Split splitWhole(const std::string& body, size_t cap) {
  kube::LineSplitter s(cap);
  Split out;
  s.feed(body);
  if (drain(s, out, cap)) out.remainder = s.takeRemainder();
  return out;
}

void checkSplitter(const std::string& body, size_t cap, uint64_t seed) {
  Split whole = splitWhole(body, cap);
  Split chunked = splitChunked(body, cap, seed);
  FUZZ_CHECK_MSG(whole.error.has_value() == chunked.error.has_value(),
                 "cap " + std::to_string(cap) + ": whole: " + whole.error.value_or("ok") +
                     "; chunked: " + chunked.error.value_or("ok"));
  FUZZ_CHECK(whole.lines == chunked.lines);
  if (!whole.error) FUZZ_CHECK(whole.remainder == chunked.remainder);
}

// The REST client's decoding of one watch line (rest_client.cpp, RestWatchStream::decode), with the type read
// only when it is a string. ERROR events become the Error their Status maps to; with `asErrorEvent` they are
// handed to the Watcher unchanged as kError events instead, as a scripted stream may do.
Result<std::optional<kube::WatchEvent>> decode(const std::string& line, bool asErrorEvent) {
  json event = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (event.is_discarded() || !event.is_object()) return Error(ErrorCode::kInternal, "undecodable event");
  auto t = event.find("type");
  std::string type = t != event.end() && t->is_string() ? t->get<std::string>() : "";
  json object = event.contains("object") ? std::move(event["object"]) : json::object();
  if (type == "ADDED") return std::optional(kube::WatchEvent{kube::WatchEventType::kAdded, std::move(object)});
  if (type == "MODIFIED") return std::optional(kube::WatchEvent{kube::WatchEventType::kModified, std::move(object)});
  if (type == "DELETED") return std::optional(kube::WatchEvent{kube::WatchEventType::kDeleted, std::move(object)});
  if (type == "BOOKMARK") return std::optional(kube::WatchEvent{kube::WatchEventType::kBookmark, std::move(object)});
  if (type == "ERROR") {
    if (asErrorEvent) return std::optional(kube::WatchEvent{kube::WatchEventType::kError, std::move(object)});
    Error e = kube::errorFromStatus(object, 0);
    FUZZ_CHECK(!e.message().empty());
    return e;
  }
  return Error(ErrorCode::kInternal, "unknown event type \"" + type + "\"");
}

void playToWatcher(const std::vector<Result<std::optional<kube::WatchEvent>>>& steps) {
  runtime::testing::FakeClient client;
  client.pushList(runtime::testing::listPage({}, "1"));
  runtime::testing::WatchScript script;
  script.steps = steps;
  script.endAfterSteps = true;
  client.pushWatch(script);
  runtime::WatcherOptions opts;
  opts.resource = {"", "v1", "configmaps", "ConfigMap", true};
  opts.ns = "fuzz";
  runtime::Watcher watcher(client, opts, /*seed=*/1);

  auto first = watcher.step();  // list
  FUZZ_CHECK(first.events.size() == 1 && first.events[0].type == runtime::WatcherEvent::Type::kRestarted);
  auto open = watcher.step();  // open the scripted watch
  FUZZ_CHECK(!open.error && std::holds_alternative<runtime::watcher_state::Watching>(watcher.state()));

  std::string rv = "1";
  for (const auto& s : steps) {
    auto r = watcher.step();
    if (!s.ok()) {
      FUZZ_CHECK(r.error.has_value() && !r.error->message().empty());
      FUZZ_CHECK(r.events.empty());
      if (s.error().code() == ErrorCode::kGone) {
        FUZZ_CHECK(std::holds_alternative<runtime::watcher_state::Empty>(watcher.state()));
      } else {
        auto* listed = std::get_if<runtime::watcher_state::Listed>(&watcher.state());
        FUZZ_CHECK(listed != nullptr && listed->resourceVersion == rv);
      }
      return;
    }
    const kube::WatchEvent& ev = **s;
    if (ev.type == kube::WatchEventType::kError) {
      // A Status handed through: the watch ends with an error whatever the Status holds.
      FUZZ_CHECK(r.error.has_value() && !r.error->message().empty());
      FUZZ_CHECK(!std::holds_alternative<runtime::watcher_state::Watching>(watcher.state()));
      return;
    }
    FUZZ_CHECK(!r.error);
    if (std::string v = runtime::resourceVersionOf(ev.object); !v.empty()) rv = v;
    FUZZ_CHECK(r.events.size() == (ev.type == kube::WatchEventType::kBookmark ? 0U : 1U));
    for (const auto& out : r.events) {
      // The default decoder keeps the object as a JsonObject record, with kind and apiVersion filled in.
      FUZZ_CHECK(out.object != nullptr);
      const auto& value = runtime::recordAs<runtime::JsonObject>(*out.object).value;
      if (value.is_object()) FUZZ_CHECK(value.contains("kind") && value.contains("apiVersion"));
    }
    auto* watching = std::get_if<runtime::watcher_state::Watching>(&watcher.state());
    FUZZ_CHECK(watching != nullptr);
    FUZZ_CHECK_MSG(watching->resourceVersion == rv, watching->resourceVersion + " != " + rv);
  }
  auto end = watcher.step();  // the scripted stream ends cleanly: resume from the newest resourceVersion
  FUZZ_CHECK(!end.error);
  auto* listed = std::get_if<runtime::watcher_state::Listed>(&watcher.state());
  FUZZ_CHECK(listed != nullptr && listed->resourceVersion == rv);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kMaxInput) return -1;
  const std::string body = fuzz::text(data, size);
  const uint64_t seed = fnv1a(body);

  // A small cap so over-long lines are common, and the large one the events below are read with.
  checkSplitter(body, 24, seed);
  constexpr size_t kCap = 64 * 1024;
  checkSplitter(body, kCap, seed);

  // The stream as the REST client reads it: empty lines skipped, the unterminated rest decoded at the end,
  // the first splitter error ending the stream.
  Split split = splitWhole(body, kCap);
  std::vector<Result<std::optional<kube::WatchEvent>>> steps;
  bool asErrorEvent = (seed >> 40) & 1;
  for (const auto& line : split.lines) {
    if (!line.empty()) steps.push_back(decode(line, asErrorEvent));
  }
  if (split.error) {
    steps.push_back(Error(ErrorCode::kInternal, *split.error));
  } else if (!split.remainder.empty()) {
    steps.push_back(decode(split.remainder, asErrorEvent));
  }
  playToWatcher(steps);
  return 0;
}
