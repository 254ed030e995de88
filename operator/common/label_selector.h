#pragma once
// A Kubernetes label selector (metav1.LabelSelector) and how the API server evaluates it. Policies hold one
// typed; selectors read from cached objects are decoded into it, so there is one matching algorithm.
#include <map>
#include <string>
#include <vector>

namespace poolguard {

struct LabelSelectorRequirement {
  std::string key;
  std::string op;  // In, NotIn, Exists, DoesNotExist
  std::vector<std::string> values;
};

struct LabelSelector {
  std::map<std::string, std::string> matchLabels;
  std::vector<LabelSelectorRequirement> matchExpressions;
};

// Whether `labels` satisfy every matchLabels pair and every requirement; an empty selector matches everything.
// NotIn and DoesNotExist hold for an absent label. A requirement with an unknown operator (one validation would
// have rejected) matches nothing: selecting nothing is the safe reading.
bool matches(const LabelSelector& selector, const std::map<std::string, std::string>& labels);

// The label-selector query string form, as apimachinery's labels.Selector.String(): requirements sorted by
// key, set values sorted ("app=web,canary,env notin (dev),!legacy,tier in (api,web)").
std::string toString(const LabelSelector& selector);

}  // namespace poolguard
