// YAML and JSON text to JSON values, read the way kubectl reads manifests, with limits for hostile input.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "common/json_pointer.h"
#include "policy/parse.h"

namespace poolguard::policy {
namespace {

// The offset of the first byte that is not part of a well-formed UTF-8 sequence, if any.
std::optional<size_t> invalidUtf8At(const std::string& text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > n) return i;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3Fu);
    }
    // Overlong forms, surrogates and values beyond U+10FFFF are not UTF-8 either.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return i;
    }
    i += len;
  }
  return std::nullopt;
}

// yaml-cpp 0.7's LoadAll loops forever on some inputs (a lone ","), appending empty documents until memory runs
// out. Walking the stream with a handler that builds nothing finds that first: a document needs at least one
// byte, so more documents than bytes means the parser is not advancing.
bool yamlStreamRunsAway(const std::string& text) {
  class Discard : public YAML::EventHandler {
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
    Discard discard;
    for (size_t docs = 0; parser.HandleNextDocument(discard); ++docs) {
      if (docs > text.size() + 1) return true;
    }
  } catch (const std::exception&) {
    return false;  // LoadAll reports the syntax error with its position
  }
  return false;
}

// Alias expansion can turn a small file into a huge value ("billion laughs"); this caps the expanded text.
constexpr std::size_t kMaxExpandedBytes = 8 * kMaxInputBytes;

struct LimitExceeded {
  std::string message;
};

std::string mib(std::size_t bytes) { return std::to_string(bytes / (1024 * 1024)) + " MiB"; }

std::string where(const std::string& source, int index, const YAML::Mark& mark) {
  std::string out = source + ": document " + std::to_string(index + 1);
  if (!mark.is_null()) out += " (line " + std::to_string(mark.line + 1) + ")";
  return out;
}

// Integral floats become integers: kubectl decodes YAML and JSON numbers into Go values and re-encodes them,
// so 8.0 reaches the API server as 8. Doing the same keeps offline validation in step with admission.
json number(double d) {
  if (std::isfinite(d) && std::trunc(d) == d && d >= -9.2e18 && d <= 9.2e18) return json(static_cast<int64_t>(d));
  return json(d);
}

std::optional<json> resolveBool(const std::string& s) {
  // YAML 1.1 booleans, as the YAML library behind kubectl resolves them.
  static const std::set<std::string> kTrue{"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"};
  static const std::set<std::string> kFalse{"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"};
  if (kTrue.count(s)) return json(true);
  if (kFalse.count(s)) return json(false);
  return std::nullopt;
}

std::optional<json> resolveInt(const std::string& plain) {
  std::string s;
  for (char c : plain) {
    if (c != '_') s += c;
  }
  if (s.empty()) return std::nullopt;
  bool negative = false;
  size_t i = 0;
  if (s[0] == '+' || s[0] == '-') {
    negative = s[0] == '-';
    i = 1;
  }
  std::string digits = s.substr(i);
  int base = 10;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    base = 16;
    digits = digits.substr(2);
  } else if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'o' || digits[1] == 'O')) {
    base = 8;
    digits = digits.substr(2);
  } else if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'b' || digits[1] == 'B')) {
    base = 2;
    digits = digits.substr(2);
  } else if (digits.size() > 1 && digits[0] == '0') {
    base = 8;
    digits = digits.substr(1);
  }
  if (digits.empty()) return std::nullopt;
  uint64_t v = 0;
  const uint64_t maxBefore = std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(base);
  for (char c : digits) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      return std::nullopt;
    }
    if (d >= base) return std::nullopt;
    // Too large for 64 bits: not an integer, and the caller tries it as a float, as kubectl's YAML reader does.
    if (v > maxBefore) return std::nullopt;
    uint64_t next = v * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
    if (next < v * static_cast<uint64_t>(base)) return std::nullopt;
    v = next;
  }
  if (negative) {
    constexpr uint64_t kMinMagnitude = uint64_t{1} << 63;
    if (v > kMinMagnitude) return std::nullopt;
    if (v == kMinMagnitude) return json(std::numeric_limits<int64_t>::min());
    return json(-static_cast<int64_t>(v));
  }
  if (v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return json(static_cast<int64_t>(v));
  return json(v);
}

std::optional<json> resolveFloat(const std::string& s) {
  static const std::regex kFloat(R"(^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$)");
  if (s == ".inf" || s == ".Inf" || s == ".INF" || s == "+.inf" || s == "+.Inf" || s == "+.INF") {
    return json(std::numeric_limits<double>::infinity());
  }
  if (s == "-.inf" || s == "-.Inf" || s == "-.INF") return json(-std::numeric_limits<double>::infinity());
  if (s == ".nan" || s == ".NaN" || s == ".NAN") return json(std::numeric_limits<double>::quiet_NaN());
  if (s.size() > 400 || !std::regex_match(s, kFloat)) return std::nullopt;
  return number(std::strtod(s.c_str(), nullptr));
}

json resolvePlain(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return json(nullptr);
  if (auto b = resolveBool(s)) return *b;
  if (auto i = resolveInt(s)) return *i;
  if (auto f = resolveFloat(s)) return *f;
  return json(s);
}

class Converter {
 public:
  Converter(std::string source, int index) : source_(std::move(source)), index_(index) {}

  // `path` is the JSON pointer of `node` within the document, for the spellings of plain scalars.
  json convert(const YAML::Node& node, int depth, const std::string& path = "") {
    if (depth > kMaxNestingDepth) {
      throw LimitExceeded{where(source_, index_, node.Mark()) + ": nesting deeper than " +
                          std::to_string(kMaxNestingDepth) + " levels; a policy needs fewer than 10"};
    }
    if (++nodes_ > kMaxNodes) {
      throw LimitExceeded{where(source_, index_, node.Mark()) + ": more than " + std::to_string(kMaxNodes) +
                          " values after alias expansion; remove the anchors and aliases"};
    }
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        return json(nullptr);
      case YAML::NodeType::Scalar:
        return scalar(node, path);
      case YAML::NodeType::Sequence: {
        json arr = json::array();
        for (const auto& item : node) arr.push_back(convert(item, depth + 1, path + "/" + std::to_string(arr.size())));
        return arr;
      }
      case YAML::NodeType::Map:
        return mapping(node, depth, path);
    }
    return json(nullptr);
  }

  // Plain scalars YAML 1.1 reads as something other than a string, as written: the hint in a type error.
  std::map<std::string, std::string> takeSpellings() { return std::move(spellings_); }

 private:
  json scalar(const YAML::Node& node, const std::string& path) {
    const std::string& text = node.Scalar();
    bytes_ += text.size();
    if (bytes_ > kMaxExpandedBytes) {
      throw LimitExceeded{where(source_, index_, node.Mark()) + ": more than " + mib(kMaxExpandedBytes) +
                          " of text after alias expansion; remove the anchors and aliases"};
    }
    const std::string& tag = node.Tag();
    if (tag == "?") {
      json value = resolvePlain(text);
      if (!value.is_string() && spellings_.size() < kMaxSpellings) spellings_.emplace(path, text);
      return value;
    }
    if (tag == "tag:yaml.org,2002:int") {
      if (auto i = resolveInt(text)) return *i;
      throw LimitExceeded{where(source_, index_, node.Mark()) + ": \"" + text +
                          "\" is tagged !!int but is not an integer"};
    }
    if (tag == "tag:yaml.org,2002:float") {
      if (auto i = resolveInt(text)) return *i;
      if (auto f = resolveFloat(text)) return *f;
      throw LimitExceeded{where(source_, index_, node.Mark()) + ": \"" + text +
                          "\" is tagged !!float but is not a number"};
    }
    if (tag == "tag:yaml.org,2002:bool") {
      if (auto b = resolveBool(text)) return *b;
      throw LimitExceeded{where(source_, index_, node.Mark()) + ": \"" + text +
                          "\" is tagged !!bool but is not a boolean"};
    }
    if (tag == "tag:yaml.org,2002:null") return json(nullptr);
    // Quoted ("!"), !!str and application tags: the text as written.
    return json(text);
  }

  static std::string keyOf(const YAML::Node& key) {
    if (key.Type() == YAML::NodeType::Null) return "null";
    return key.Scalar();
  }

  json mapping(const YAML::Node& node, int depth, const std::string& path) {
    json obj = json::object();
    std::vector<YAML::Node> merges;
    for (const auto& kv : node) {
      const YAML::Node& key = kv.first;
      if (key.Type() != YAML::NodeType::Scalar && key.Type() != YAML::NodeType::Null) {
        throw LimitExceeded{where(source_, index_, key.Mark()) +
                            ": a mapping key must be a plain value, not a list or a mapping"};
      }
      std::string name = keyOf(key);
      if (name == "<<" && key.Tag() == "?") {
        merges.push_back(kv.second);
        continue;
      }
      if (obj.contains(name)) {
        throw LimitExceeded{where(source_, index_, key.Mark()) + ": key \"" + name +
                            "\" appears twice in one mapping; keep one"};
      }
      obj[name] = convert(kv.second, depth + 1, path + "/" + jsonPointerToken(name));
    }
    // Merge keys (<<): explicit keys win, then earlier merged mappings win over later ones.
    for (const auto& m : merges) {
      std::vector<YAML::Node> sources;
      if (m.IsMap()) {
        sources.push_back(m);
      } else if (m.IsSequence()) {
        for (const auto& s : m) sources.push_back(s);
      } else {
        throw LimitExceeded{where(source_, index_, m.Mark()) +
                            ": a merge key (<<) takes a mapping or a list of mappings"};
      }
      for (const auto& s : sources) {
        if (!s.IsMap()) {
          throw LimitExceeded{where(source_, index_, s.Mark()) +
                              ": a merge key (<<) takes a mapping or a list of mappings"};
        }
        json merged = convert(s, depth, path);
        for (auto it = merged.begin(); it != merged.end(); ++it) {
          if (!obj.contains(it.key())) obj[it.key()] = it.value();
        }
      }
    }
    return obj;
  }

  static constexpr std::size_t kMaxSpellings = 100'000;

  std::string source_;
  int index_;
  std::map<std::string, std::string> spellings_;
  std::size_t nodes_ = 0;
  std::size_t bytes_ = 0;
};

void normalizeNumbers(json& j) {
  if (j.is_number_float()) {
    j = number(j.get<double>());
  } else if (j.is_structured()) {
    for (auto& child : j) normalizeNumbers(child);
  }
}

// Accepts one JSON value when the text is JSON; nullopt when it is not (then it is read as YAML).
std::optional<json> tryJson(const std::string& text, const std::string& source) {
  auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || (text[first] != '{' && text[first] != '[')) return std::nullopt;
  // nlohmann's parser keeps its own stack, so depth is checked on the events instead of relying on recursion.
  auto limitDepth = [&](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= kMaxNestingDepth) {
      throw LimitExceeded{source + ": document 1: nesting deeper than " + std::to_string(kMaxNestingDepth) +
                          " levels; a policy needs fewer than 10"};
    }
    return true;
  };
  json parsed = json::parse(text, limitDepth, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return std::nullopt;
  normalizeNumbers(parsed);
  return parsed;
}

const char* describe(const json& j) {
  switch (j.type()) {
    case json::value_t::array:
      return "a list";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "a number";
    default:
      return "a value";
  }
}

// The spellings under `prefix` ("/items/3"), re-rooted at that item.
std::map<std::string, std::string> spellingsUnder(const std::map<std::string, std::string>& all,
                                                  const std::string& prefix) {
  std::map<std::string, std::string> out;
  for (auto it = all.lower_bound(prefix + "/"); it != all.end() && it->first.starts_with(prefix + "/"); ++it) {
    out.emplace(it->first.substr(prefix.size()), it->second);
  }
  return out;
}

Status collect(json value, const std::string& source, int index, std::vector<Document>& out,
               std::map<std::string, std::string> spellings = {}) {
  if (value.is_null()) return okStatus();
  if (!value.is_object()) {
    return Error(ErrorCode::kInvalidArgument, source + ": document " + std::to_string(index + 1) +
                                                  ": expected an object "
                                                  "with apiVersion and kind, got " +
                                                  describe(value));
  }
  auto kind = value.find("kind");
  auto items = value.find("items");
  bool isList = kind != value.end() && kind->is_string() && kind->get<std::string>().size() > 4 &&
                kind->get<std::string>().ends_with("List") && items != value.end();
  bool isPlainList = kind != value.end() && kind->is_string() && *kind == "List";
  if (isList || isPlainList) {
    if (items == value.end() || items->is_null()) return okStatus();
    if (!items->is_array()) {
      return Error(ErrorCode::kInvalidArgument,
                   source + ": document " + std::to_string(index + 1) + ": items of a List must be a list");
    }
    int n = 0;
    for (auto& item : *items) {
      if (!item.is_object()) {
        return Error(ErrorCode::kInvalidArgument, source + ": document " + std::to_string(index + 1) + ": items[" +
                                                      std::to_string(n) + "] is " + describe(item) +
                                                      ", expected an object with apiVersion and kind");
      }
      out.push_back(Document{source, index, std::move(item), spellingsUnder(spellings, "/items/" + std::to_string(n))});
      ++n;
    }
    return okStatus();
  }
  out.push_back(Document{source, index, std::move(value), std::move(spellings)});
  return okStatus();
}

}  // namespace

std::string toString(const FieldError& e) { return e.field.empty() ? e.message : e.field + ": " + e.message; }

Result<std::vector<Document>> parseDocuments(const std::string& text, const std::string& source) {
  if (text.size() > kMaxInputBytes) {
    return Error(ErrorCode::kInvalidArgument, source + ": input is " + std::to_string(text.size()) +
                                                  " bytes, more than the " + mib(kMaxInputBytes) +
                                                  " limit; split it into several files");
  }
  std::vector<Document> out;
  try {
    if (auto j = tryJson(text, source)) {
      auto st = collect(std::move(*j), source, 0, out);
      if (!st) return st.error();
      return out;
    }
    if (auto bad = invalidUtf8At(text)) {
      const size_t line =
          1 + static_cast<size_t>(std::count(text.begin(), text.begin() + static_cast<long>(*bad), '\n'));
      const size_t lineStart = text.rfind('\n', *bad == 0 ? 0 : *bad - 1);
      const size_t column = lineStart == std::string::npos || *bad == 0 ? *bad + 1 : *bad - lineStart;
      return Error(ErrorCode::kInvalidArgument, source + ": line " + std::to_string(line) + ", column " +
                                                    std::to_string(column) +
                                                    ": not valid UTF-8; Kubernetes objects are UTF-8 text");
    }
    if (yamlStreamRunsAway(text)) {
      return Error(ErrorCode::kInvalidArgument,
                   source +
                       ": not a YAML document stream (the parser makes no progress); check for a stray "
                       "',' or other punctuation at the top level");
    }
    std::vector<YAML::Node> docs = YAML::LoadAll(text);
    for (size_t i = 0; i < docs.size(); ++i) {
      Converter conv(source, static_cast<int>(i));
      json value = conv.convert(docs[i], 1);
      auto st = collect(std::move(value), source, static_cast<int>(i), out, conv.takeSpellings());
      if (!st) return st.error();
    }
  } catch (const LimitExceeded& e) {
    return Error(ErrorCode::kInvalidArgument, e.message);
  } catch (const YAML::DeepRecursion& e) {
    return Error(ErrorCode::kInvalidArgument, source + ":" + std::to_string(e.mark.line + 1) +
                                                  ": nesting deeper than " + std::to_string(kMaxNestingDepth) +
                                                  " levels; a policy needs fewer than 10");
  } catch (const YAML::Exception& e) {
    std::string msg = source;
    if (!e.mark.is_null()) msg += ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1);
    return Error(ErrorCode::kInvalidArgument, msg + ": not valid YAML: " + e.msg);
  } catch (const std::exception& e) {
    return Error(ErrorCode::kInvalidArgument, source + ": cannot be read as YAML or JSON: " + e.what());
  }
  return out;
}

Result<std::vector<Document>> readDocuments(const std::string& path) {
  std::string text;
  auto readLimited = [&text](std::istream& in) {
    // One byte more than the limit is enough to know the input is too large without reading all of it.
    text.resize(kMaxInputBytes + 1);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    return !in.bad();
  };
  if (path == "-") {
    if (!readLimited(std::cin)) return Error(ErrorCode::kInvalidArgument, "-: cannot read standard input");
  } else {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      return Error(ErrorCode::kInvalidArgument, path + ": is a directory; name the files in it");
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      int err = errno;
      return Error(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kInvalidArgument,
                   path + ": cannot open: " + std::strerror(err));
    }
    if (!readLimited(in)) return Error(ErrorCode::kInvalidArgument, path + ": read failed");
  }
  if (text.size() > kMaxInputBytes) {
    return Error(ErrorCode::kInvalidArgument,
                 path + ": input is more than the " + mib(kMaxInputBytes) + " limit; split it into several files");
  }
  return parseDocuments(text, path);
}

}  // namespace poolguard::policy
