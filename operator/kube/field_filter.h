#pragma once
// Keeps only named fields while JSON is parsed: what is not kept (managedFields, status, annotations of other
// tools, every spec field decisions never read) is skipped by the parser and never becomes a DOM node, so a
// list page or watch event costs what is kept, not what the API server sent.
//
// A FieldFilter is a tree of keys. An array takes the tree of its elements (items[], containers[]). A node can
// keep everything below it (all()), everything but some keys (all().drop(k)), or only the keys named (keep) and
// those starting with a prefix (keepPrefix, e.g. "poolguard.dev/" among annotations).
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace poolguard::kube {

class FieldFilter {
 public:
  // Keeps everything below (but what drop() names).
  static FieldFilter all();
  // Keeps only what is named below (keep, keepPrefix).
  static FieldFilter only();

  FieldFilter& keep(const std::string& key, FieldFilter child = all());
  FieldFilter& keepPrefix(const std::string& prefix);
  FieldFilter& drop(const std::string& key);  // on an all() node

  // The node for the value of `key` below this one; null when the key is not kept.
  const FieldFilter* child(std::string_view key) const;

  // Parses `text` keeping what the tree names; a discarded value (is_discarded()) when it is not JSON.
  nlohmann::json parse(std::string_view text) const;

  // The tree for a List whose items are objects kept by `item` (apiVersion, kind, metadata.resourceVersion and
  // metadata.continue are kept too), and for a watch event ({type, object}; an ERROR event's Status is kept).
  static FieldFilter listOf(FieldFilter item);
  static FieldFilter watchEventOf(FieldFilter object);

 private:
  bool all_ = false;
  std::map<std::string, FieldFilter, std::less<>> children_;
  std::vector<std::string> prefixes_;
  std::set<std::string, std::less<>> dropped_;
};

}  // namespace poolguard::kube
