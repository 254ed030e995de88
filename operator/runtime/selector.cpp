#include "runtime/selector.h"

#include <map>
#include <optional>
#include <utility>

#include "common/label_selector.h"

namespace poolguard::runtime {

using json = nlohmann::json;

const json& labelsOf(const json& obj) {
  static const json kNull;
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return kNull;
  auto l = m->find("labels");
  return l == m->end() ? kNull : *l;
}

namespace {

// Sets `out` from an optional string field; false when the field is there but not a string.
bool stringField(const json& obj, const char* name, std::string& out) {
  auto it = obj.find(name);
  if (it == obj.end()) return true;
  if (!it->is_string()) return false;
  out = it->get<std::string>();
  return true;
}

// The typed selector, or std::nullopt when `selector` can match nothing whatever the labels. A matchLabels or
// matchExpressions that is not an object or array is ignored, as are values that are not strings.
std::optional<LabelSelector> decode(const json& selector) {
  if (!selector.is_object()) return std::nullopt;
  LabelSelector out;
  if (auto ml = selector.find("matchLabels"); ml != selector.end() && ml->is_object()) {
    for (const auto& [k, v] : ml->items()) {
      if (!v.is_string()) return std::nullopt;
      out.matchLabels.emplace(k, v.get<std::string>());
    }
  }
  if (auto me = selector.find("matchExpressions"); me != selector.end() && me->is_array()) {
    for (const auto& expr : *me) {
      LabelSelectorRequirement req;
      if (!expr.is_object() || !stringField(expr, "key", req.key) || !stringField(expr, "operator", req.op)) {
        return std::nullopt;
      }
      if (auto values = expr.find("values"); values != expr.end() && values->is_array()) {
        for (const auto& v : *values) {
          if (v.is_string()) req.values.push_back(v.get<std::string>());
        }
      }
      out.matchExpressions.push_back(std::move(req));
    }
  }
  return out;
}

std::map<std::string, std::string> labelMap(const json& labels) {
  std::map<std::string, std::string> out;
  if (!labels.is_object()) return out;
  for (const auto& [k, v] : labels.items()) {
    if (v.is_string()) out.emplace(k, v.get<std::string>());
  }
  return out;
}

}  // namespace

bool matchesLabelSelector(const json& selector, const json& labels) {
  auto typed = decode(selector);
  return typed && matches(*typed, labelMap(labels));
}

}  // namespace poolguard::runtime
