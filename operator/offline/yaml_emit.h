#pragma once
// A deterministic JSON-to-YAML printer for the offline commands' output. Strings a YAML 1.1 reader would take
// for another type ("20", "true", "1h") are quoted, so env values stay strings through kubectl; multi-line
// strings are block literals.
#include <string>

#include <nlohmann/json.hpp>

namespace poolguard::offline {

std::string toYaml(const nlohmann::json& value);

}  // namespace poolguard::offline
