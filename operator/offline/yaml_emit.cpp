#include "offline/yaml_emit.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace poolguard::offline {
namespace {

using json = nlohmann::json;

bool plainSafe(const std::string& s) {
  if (s.empty()) return false;
  char first = s.front();
  if (!(std::isalpha(static_cast<unsigned char>(first)) || first == '_' || first == '/')) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '/' || c == '-')) return false;
  }
  std::string lower = s;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  static const std::array<const char*, 9> reserved = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"};
  return std::none_of(reserved.begin(), reserved.end(), [&](const char* r) { return lower == r; });
}

bool blockLiteralSafe(const std::string& s) {
  if (s.find('\n') == std::string::npos) return false;
  // Leading spaces on the first line, trailing blank lines, tabs and carriage returns do not survive a literal.
  if (s.front() == ' ' || s.find('\r') != std::string::npos || s.find('\t') != std::string::npos) return false;
  if (s.size() >= 2 && s.substr(s.size() - 2) == "\n\n") return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x20 || c == '\n'; });
}

std::string scalar(const std::string& s) {
  return plainSafe(s) ? s : json(s).dump(-1, ' ', false, json::error_handler_t::replace);
}

void emit(const json& v, int indent, std::string& out);

std::string pad(int n) { return std::string(static_cast<size_t>(n), ' '); }

void emitString(const std::string& s, int indent, std::string& out) {
  if (blockLiteralSafe(s)) {
    out += s.back() == '\n' ? "|\n" : "|-\n";
    size_t start = 0;
    while (start < s.size()) {
      size_t end = s.find('\n', start);
      if (end == std::string::npos) end = s.size();
      std::string line = s.substr(start, end - start);
      out += (line.empty() ? "" : pad(indent) + line) + "\n";
      start = end + 1;
    }
    return;
  }
  out += scalar(s) + "\n";
}

bool isEmptyContainer(const json& v) { return (v.is_object() || v.is_array()) && v.empty(); }

// Writes the value after "key:" or "- " has been written.
void emitValue(const json& v, int indent, std::string& out) {
  if (v.is_object() && !v.empty()) {
    out += "\n";
    emit(v, indent, out);
  } else if (v.is_array() && !v.empty()) {
    out += "\n";
    emit(v, indent, out);
  } else if (isEmptyContainer(v)) {
    out += v.is_object() ? " {}\n" : " []\n";
  } else if (v.is_string()) {
    out += " ";
    emitString(v.get<std::string>(), indent, out);
  } else {
    out += " " + v.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  }
}

void emit(const json& v, int indent, std::string& out) {
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      out += pad(indent) + scalar(it.key()) + ":";
      const json& child = it.value();
      emitValue(child, child.is_array() ? indent : indent + 2, out);
    }
  } else if (v.is_array()) {
    for (const auto& item : v) {
      if (item.is_object() && !item.empty()) {
        // The first key shares the dash's line; the rest align under it.
        std::string nested;
        emit(item, indent + 2, nested);
        out += pad(indent) + "-" + nested.substr(static_cast<size_t>(indent) + 1);
      } else {
        out += pad(indent) + "-";
        emitValue(item, indent + 2, out);
      }
    }
  } else if (v.is_string()) {
    emitString(v.get<std::string>(), indent, out);
  } else {
    out += v.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  }
}

}  // namespace

std::string toYaml(const json& value) {
  std::string out;
  if (isEmptyContainer(value) || !(value.is_object() || value.is_array())) {
    std::string tmp;
    emitValue(value, 0, tmp);
    return tmp.substr(1);
  }
  emit(value, 0, out);
  return out;
}

}  // namespace poolguard::offline
