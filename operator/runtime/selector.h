#pragma once
// Label selector matching for cached objects, with the API server's semantics (metav1.LabelSelector).
#include <string>

#include <nlohmann/json.hpp>

namespace poolguard::runtime {

// Whether `labels` (an object of string values, or null) satisfies `selector` (a metav1.LabelSelector:
// matchLabels and matchExpressions with In, NotIn, Exists, DoesNotExist), matched as common/label_selector.h
// does. As in Kubernetes, an empty selector ({}) matches everything and a null selector matches nothing. An
// unknown operator matches nothing, and so does a selector no API server would accept (a matchLabels value or
// an expression's key or operator that is not a string, an expression that is not an object). Label values
// that are not strings count as absent.
bool matchesLabelSelector(const nlohmann::json& selector, const nlohmann::json& labels);

// The labels of an object (metadata.labels), or null.
const nlohmann::json& labelsOf(const nlohmann::json& obj);

}  // namespace poolguard::runtime
