#include "runtime/selector.h"

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

const std::string* labelValue(const json& labels, const std::string& key) {
  if (!labels.is_object()) return nullptr;
  auto it = labels.find(key);
  if (it == labels.end() || !it->is_string()) return nullptr;
  return it->get_ptr<const std::string*>();
}

bool inValues(const json& values, const std::string& v) {
  if (!values.is_array()) return false;
  for (const auto& x : values) {
    if (x.is_string() && x.get_ref<const std::string&>() == v) return true;
  }
  return false;
}

}  // namespace

bool matchesLabelSelector(const json& selector, const json& labels) {
  if (!selector.is_object()) return false;
  if (auto ml = selector.find("matchLabels"); ml != selector.end() && ml->is_object()) {
    for (const auto& [k, v] : ml->items()) {
      const std::string* have = labelValue(labels, k);
      if (!have || !v.is_string() || *have != v.get_ref<const std::string&>()) return false;
    }
  }
  if (auto me = selector.find("matchExpressions"); me != selector.end() && me->is_array()) {
    for (const auto& expr : *me) {
      std::string key = expr.value("key", "");
      std::string op = expr.value("operator", "");
      const std::string* have = labelValue(labels, key);
      json values = expr.contains("values") ? expr["values"] : json::array();
      if (op == "In") {
        if (!have || !inValues(values, *have)) return false;
      } else if (op == "NotIn") {
        if (have && inValues(values, *have)) return false;
      } else if (op == "Exists") {
        if (!have) return false;
      } else if (op == "DoesNotExist") {
        if (have) return false;
      } else {
        return false;
      }
    }
  }
  return true;
}

}  // namespace poolguard::runtime
