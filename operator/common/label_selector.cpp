#include "common/label_selector.h"

#include <algorithm>
#include <utility>

namespace poolguard {

bool matches(const LabelSelector& selector, const std::map<std::string, std::string>& labels) {
  for (const auto& [key, value] : selector.matchLabels) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  for (const auto& req : selector.matchExpressions) {
    auto it = labels.find(req.key);
    bool present = it != labels.end();
    bool listed = present && std::find(req.values.begin(), req.values.end(), it->second) != req.values.end();
    if (req.op == "In") {
      if (!listed) return false;
    } else if (req.op == "NotIn") {
      if (listed) return false;
    } else if (req.op == "Exists") {
      if (!present) return false;
    } else if (req.op == "DoesNotExist") {
      if (present) return false;
    } else {
      return false;
    }
  }
  return true;
}

std::string toString(const LabelSelector& selector) {
  std::vector<std::pair<std::string, std::string>> parts;
  for (const auto& [key, value] : selector.matchLabels) parts.emplace_back(key, key + "=" + value);
  for (const auto& req : selector.matchExpressions) {
    auto values = req.values;
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    std::string joined;
    for (const auto& v : values) joined += (joined.empty() ? "" : ",") + v;
    if (req.op == "In") {
      parts.emplace_back(req.key, req.key + " in (" + joined + ")");
    } else if (req.op == "NotIn") {
      parts.emplace_back(req.key, req.key + " notin (" + joined + ")");
    } else if (req.op == "Exists") {
      parts.emplace_back(req.key, req.key);
    } else if (req.op == "DoesNotExist") {
      parts.emplace_back(req.key, "!" + req.key);
    }
  }
  std::stable_sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ",") + p.second;
  return out;
}

}  // namespace poolguard
