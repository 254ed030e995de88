#include "kube/field_filter.h"

namespace poolguard::kube {

using json = nlohmann::json;

FieldFilter FieldFilter::all() {
  FieldFilter f;
  f.all_ = true;
  return f;
}

FieldFilter FieldFilter::only() { return FieldFilter(); }

FieldFilter& FieldFilter::keep(const std::string& key, FieldFilter child) {
  children_.insert_or_assign(key, std::move(child));
  return *this;
}

FieldFilter& FieldFilter::keepPrefix(const std::string& prefix) {
  prefixes_.push_back(prefix);
  return *this;
}

FieldFilter& FieldFilter::drop(const std::string& key) {
  dropped_.insert(key);
  return *this;
}

const FieldFilter* FieldFilter::child(std::string_view key) const {
  static const FieldFilter everything = all();
  if (auto it = children_.find(key); it != children_.end()) return &it->second;
  if (all_) return dropped_.count(key) ? nullptr : &everything;
  for (const auto& p : prefixes_) {
    if (key.substr(0, p.size()) == p) return &everything;
  }
  return nullptr;
}

namespace {

// A SAX handler that builds only the kept part of the document: a value that is not kept, and everything inside
// it, is read past without creating anything.
class FilteringSax {
 public:
  explicit FilteringSax(const FieldFilter& root) : rootNode_(&root) {}

  json& result() { return root_; }
  bool failed() const { return failed_; }

  bool null() { return place(json(nullptr)); }
  bool boolean(bool v) { return place(json(v)); }
  bool number_integer(json::number_integer_t v) { return place(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return place(json(v)); }
  bool number_float(json::number_float_t v, const json::string_t&) { return place(json(v)); }
  bool string(json::string_t& v) { return place(json(std::move(v))); }
  bool binary(json::binary_t& v) { return place(json::binary(std::move(v))); }
  bool start_object(std::size_t) { return open(json::object(), false); }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open(json::array(), true); }
  bool end_array() { return close(); }
  bool key(json::string_t& k) {
    const Frame& top = stack_.back();
    keyNode_ = top.value ? top.node->child(k) : nullptr;
    key_ = std::move(k);
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    failed_ = true;
    return false;
  }

 private:
  struct Frame {
    json* value;  // null: inside a value that is not kept
    const FieldFilter* node;
    bool array;
  };

  // Stores a value where the parser is; returns where it went and its node (null when not kept).
  std::pair<json*, const FieldFilter*> store(json&& v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return {&root_, rootNode_};
    }
    Frame& top = stack_.back();
    if (!top.value) return {nullptr, nullptr};
    if (top.array) {
      top.value->push_back(std::move(v));
      return {&top.value->back(), top.node};
    }
    if (!keyNode_) return {nullptr, nullptr};
    json& slot = (*top.value)[key_];
    slot = std::move(v);
    return {&slot, keyNode_};
  }
  bool place(json&& v) {
    store(std::move(v));
    return true;
  }
  bool open(json&& empty, bool array) {
    auto [where, node] = store(std::move(empty));
    stack_.push_back({where, node, array});
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }

  const FieldFilter* rootNode_;
  json root_;
  std::vector<Frame> stack_;
  std::string key_;
  const FieldFilter* keyNode_ = nullptr;
  bool failed_ = false;
};

}  // namespace

json FieldFilter::parse(std::string_view text) const {
  FilteringSax sax(*this);
  bool ok = false;
  try {
    ok = json::sax_parse(text.begin(), text.end(), &sax, json::input_format_t::json, /*strict=*/true);
  } catch (const std::exception&) {
    ok = false;
  }
  if (!ok || sax.failed()) return json(json::value_t::discarded);
  return std::move(sax.result());
}

FieldFilter FieldFilter::listOf(FieldFilter item) {
  return only()
      .keep("apiVersion")
      .keep("kind")
      .keep("metadata", only().keep("resourceVersion").keep("continue"))
      .keep("items", std::move(item));
}

FieldFilter FieldFilter::watchEventOf(FieldFilter object) {
  // An ERROR event carries a metav1.Status: its code (410: relist), reason, message and details are kept too.
  for (const char* status : {"code", "reason", "message", "details"}) {
    if (!object.child(status)) object.keep(status);
  }
  return only().keep("type").keep("object", std::move(object));
}

}  // namespace poolguard::kube
